"""The README's "Using the simulator" walk-through, run as a new user would, from the README itself.

The command blocks marked `<!-- readme-test: run NAME -->` run in order in one "client shell"
(each block under `bash -e -o pipefail`; shell variables and exports carry over to the next
block, as in one terminal). Blocks marked `<!-- readme-test: daemon NAME -->` are what the README
says to start in another terminal: each starts in the background from a fresh environment (no
exports of the client shell), is waited for (its `listening` lines, or its port) and killed at
the end. Placeholders are filled from what the daemons print (KMS_PORT, RPC_PORT, PROXY_PORT) and
from the registration's reply (CLIENT_IP); `/tmp/` becomes a temporary directory and the
repository's `build`, `tests` and `examples` are reached from a scratch working directory, so
nothing is written into the source tree. Each block's result is checked here by its NAME: a
block added to the README without a check here fails the test, and so does a README command that
stops working."""
import json
import os
import pathlib
import re
import select
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import BUILD, REPO, _clean_env

README = REPO / "README.md"
BLOCK = re.compile(r"<!-- readme-test: (run|daemon) ([\w-]+) -->\n```(?:sh|bash)\n(.*?)```", re.S)
# The walk-through, in README order; a block not listed here (or listed but missing) fails.
EXPECTED = [("run", "cvm"), ("run", "verify"), ("daemon", "tappd"), ("run", "tappd-client"),
            ("daemon", "kms"), ("run", "kms-client"), ("run", "tproxy-config"),
            ("daemon", "tproxy"), ("run", "tproxy-register"), ("daemon", "backend"),
            ("run", "proxy-client")]
PLACEHOLDERS = ("KMS_PORT", "RPC_PORT", "PROXY_PORT", "CLIENT_IP")
RUN_TIMEOUT = {"tappd-client": 300}  # npm ci; every other block: 60 s
DAEMON_TIMEOUT = 30
# Shell variables that are not the README's (bash's own).
BASH_OWN = re.compile(r"^(BASH.*|COMP_.*|FUNCNAME|PIPESTATUS|_|LINENO|RANDOM|SRANDOM|SECONDS|"
                      r"EPOCH.*|GROUPS|PPID|UID|EUID|SHELLOPTS|HIST.*|OPTARG|OPTIND|OPTERR|"
                      r"DIRSTACK|MAPFILE|REPLY|COLUMNS|LINES|IFS|PS\d|SHLVL|PWD|OLDPWD)$")


def readme_blocks():
    text = README.read_text()
    return [(kind, name, body) for kind, name, body in BLOCK.findall(text)], text


def test_readme_first_lines_and_links():
    """The README opens with the two commands, and links only to files in the repository."""
    _, text = readme_blocks()
    head = text.split("\n## ", 1)[0]
    assert "make demo" in head and "make test" in head, head
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith("#"):
            anchor = target[1:]
            heads = [re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
                     for h in re.findall(r"^#+ (.*)$", text, re.M)]
            assert anchor in heads, f"README links to a missing section {target}"
            continue
        assert "://" not in target and not target.startswith(("/", "..")), \
            f"README links outside the repository: {target}"
        assert (REPO / target.split("#")[0]).exists(), f"README links to a missing file {target}"


def test_readme_demo_app_is_the_demos():
    """The compose file the README shows is the one `make demo` deploys."""
    text = README.read_text()
    m = re.search(r"<!-- the demo app: [^\n]*-->\n```yaml\n(.*?)```", text, re.S)
    assert m, "the README lost the demo app's compose block"
    demo = (REPO / "scripts" / "demo" / "compose.yaml").read_text()
    body = "\n".join(ln for ln in demo.splitlines() if not ln.startswith("#")) + "\n"
    assert m.group(1) == body


def _flat_keys(doc, prefix=""):
    out = set()
    for k, v in doc.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= _flat_keys(v, name + ".")
        else:
            out.add(name)
    return out


def test_readme_by_hand_configs_use_real_keys(tmp_path):
    """Every key of the README's kms.toml, tproxy.toml and teepod.toml excerpts ("The same by
    hand") is one the daemon knows (its --dump-config lists it), in the section shown."""
    import tomllib
    text = README.read_text()
    part = text.split("### The same by hand", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```toml\n(.*?)```", part, re.S)
    assert len(blocks) == 3, len(blocks)
    wgkey = subprocess.run(["wg", "genkey"], stdout=subprocess.PIPE, check=True,
                           timeout=10).stdout.decode().strip()
    minimal = tmp_path / "tproxy-min.toml"
    minimal.write_text(f'[core.wg]\nprivate_key = "{wgkey}"\n')
    daemons = [("kms", []), ("tproxy", ["-c", str(minimal)]), ("teepod", [])]
    for (name, args), block in zip(daemons, blocks):
        snippet = tomllib.loads(re.sub(r"^(\s*)", "", block, flags=re.M))
        p = subprocess.run([str(BUILD / "src" / name / name), "--dump-config", *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                           env=_clean_env())
        assert p.returncode == 0, p.stderr.decode()
        # a secret (tproxy's private_key) is not printed: the minimal config names it
        known = _flat_keys(tomllib.loads(p.stdout.decode()))
        if args:
            known |= _flat_keys(tomllib.loads(minimal.read_text()))
        unknown = _flat_keys(snippet) - known
        assert not unknown, f"README's {name}.toml names keys {name} does not have: {unknown}"


def test_readme_blocks_are_known():
    blocks, _ = readme_blocks()
    assert [(k, n) for k, n, _ in blocks] == EXPECTED, \
        "the README's readme-test blocks changed: update EXPECTED and the checks here"


# ---- running blocks ----------------------------------------------------------------------------

class Walk:
    """The client shell's state, the daemons, and the placeholders known so far."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.root = tmp / "tmp"           # stands for /tmp/ in the README
        self.root.mkdir()
        self.cwd = tmp / "repo"           # stands for the repository root
        self.cwd.mkdir()
        (self.cwd / "build").symlink_to(BUILD)
        (self.cwd / "tests").symlink_to(REPO / "tests")
        shutil.copytree(REPO / "examples", self.cwd / "examples",
                        ignore=shutil.ignore_patterns("node_modules"))
        self.env = _clean_env()
        self.state = tmp / "shell-state.sh"
        self.state.write_text("")
        base = subprocess.run(["bash", "-c", "compgen -v"], env=self.env, stdout=subprocess.PIPE,
                              timeout=30, check=True).stdout.decode().split()
        self.baseline = set(base)
        self.values = {}
        self.daemons = {}

    def fill(self, text):
        text = re.sub(r"(?<![\w./])/tmp/", f"{self.root}/", text)
        for p in PLACEHOLDERS:
            if p in text:
                assert p in self.values, f"{p} is used before a daemon or reply gave it"
                text = text.replace(p, str(self.values[p]))
        return text

    def run(self, name, body):
        script = self.tmp / f"block-{name}.sh"
        keep = " ".join(sorted(self.baseline))
        script.write_text(
            "set -e -o pipefail\n"
            f"source {self.state}\n"
            + self.fill(body) +
            "\n__keep=' " + keep + " '\n"
            "for __v in $(compgen -v); do\n"
            "  case \"$__keep\" in *\" $__v \"*) continue;; esac\n"
            "  case \"$__v\" in __*) continue;; esac\n"
            "  declare -p \"$__v\" 2>/dev/null || true\n"
            f"done > {self.state}.new\n")
        p = subprocess.run(["bash", str(script)], cwd=self.cwd, env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=RUN_TIMEOUT.get(name, 60))
        out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        assert p.returncode == 0, \
            f"README block {name} failed ({p.returncode}):\n{script.read_text()}\n{out}\n{err}"
        # variables of the block (bash's own left out), for the next block
        lines = [l for l in pathlib.Path(f"{self.state}.new").read_text().splitlines()
                 if not BASH_OWN.match(re.sub(r"^declare -\S+ ([^=]+).*$", r"\1", l))
                 and not re.match(r"^declare -\S*r", l)]
        self.state.write_text("\n".join(lines) + "\n")
        return out, err

    def var(self, name):
        for l in self.state.read_text().splitlines():
            m = re.match(rf'^declare -\S+ {name}="(.*)"$', l)
            if m:
                return m.group(1)
        return None

    def start(self, name, body):
        log = self.tmp / f"daemon-{name}.log"
        f = open(log, "wb")
        proc = subprocess.Popen(["bash", "-c", self.fill(body)], cwd=self.cwd, env=self.env,
                                stdout=subprocess.PIPE, stderr=f, start_new_session=True)
        f.close()
        d = Daemon(name, proc, log)
        self.daemons[name] = d
        return d

    def stop_all(self):
        for d in self.daemons.values():
            d.stop()


class Daemon:
    def __init__(self, name, proc, log):
        self.name, self.proc, self.log_path = name, proc, log
        self.lines = []

    def wait_lines(self, prefixes):
        """Reads stdout lines until one starts with each prefix; returns them in that order."""
        deadline = time.time() + DAEMON_TIMEOUT
        found = {}
        buf = b""
        while len(found) < len(prefixes) and time.time() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.time()))
            if not r:
                break
            c = os.read(self.proc.stdout.fileno(), 4096)
            if not c:
                break
            buf += c
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.decode(errors="replace")
                self.lines.append(line)
                for p in prefixes:
                    if p not in found and line.startswith(p):
                        found[p] = line
        assert len(found) == len(prefixes), \
            f"{self.name} did not print {prefixes} within {DAEMON_TIMEOUT} s: {self.lines}\n" \
            f"{self.log()[-3000:]}"
        return [found[p] for p in prefixes]

    def wait_port(self, host, port):
        deadline = time.time() + DAEMON_TIMEOUT
        while time.time() < deadline:
            assert self.proc.poll() is None, f"{self.name} exited: {self.log()[-3000:]}"
            try:
                socket.create_connection((host, port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"{self.name} did not listen on {host}:{port}: {self.log()[-3000:]}")

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self.proc.stdout.close()


def port_of(line):
    return int(line.rsplit(":", 1)[1])


# ---- the checks, one per block -----------------------------------------------------------------

def check_cvm(w, out, err):
    ext = [l for l in out.splitlines() if l.startswith("Extended RTMR 3: ")]
    assert len(ext) == 5 and all(re.fullmatch(r"Extended RTMR 3: [0-9a-f]{96}", l) for l in ext), out
    for ev in ("system-preparing", "app-id", "compose-hash", "instance-id", "boot-mr-done"):
        assert f"printed the digest extended into RTMR 3 (event '{ev}')" in err, err
    quoted = re.search(r'"rt_mr3":\s*"([0-9a-f]{96})"', out)
    replayed = re.search(r'"rtmr3":\s*"([0-9a-f]{96})"', out)
    assert quoted and replayed and quoted.group(1) == replayed.group(1) != "0" * 96, out
    assert re.fullmatch(r"[0-9a-f]{40}", w.var("APP_ID") or ""), w.state.read_text()
    assert w.var("DSTACK_SIM_DIR") == f"{w.root}/sim"


def check_verify(w, out, err):
    real, sim = (json.loads(l) for l in out.splitlines())
    assert real["status"] == "UpToDate" and real["simulated"] is False, real
    assert sim["status"] == "UpToDate" and sim["simulated"] is True, sim


def check_tappd(w, d):
    d.wait_lines(["listening tappd unix:", "listening dstack unix:"])


def check_tappd_client(w, out, err):
    key = json.loads(out[:out.index("}") + 1])
    assert re.fullmatch(r"[0-9a-f]{64}", key["key"]) and len(key["signature_chain"]) == 2, out
    assert re.search(r"^app_id [0-9a-f]{40} ", out, re.M), out
    assert re.search(r"^event log replays to the quote's RTMR3 [0-9a-f]{96}$", out, re.M), out


def check_kms(w, d):
    (line,) = d.wait_lines(["listening https://127.0.0.1:"])
    w.values["KMS_PORT"] = port_of(line)


def check_kms_client(w, out, err):
    keys = json.loads(out)
    for k in ("ca_cert", "disk_crypt_key", "env_crypt_key", "k256_key"):
        assert keys.get(k), (k, out)
    log = w.daemons["kms"].log()
    assert f"keys for app {w.var('APP_ID')} (newest era" in log, log


def check_tproxy_config(w, out, err):
    assert (w.root / "tp-local.toml").exists()


def check_tproxy(w, d):
    rpc, proxy = d.wait_lines(["listening https://127.0.0.1:", "listening tls://127.0.0.1:"])
    w.values["RPC_PORT"], w.values["PROXY_PORT"] = port_of(rpc), port_of(proxy)


def check_tproxy_register(w, out, err):
    reply = json.loads(out)
    ip = reply["wg"]["client_ip"]
    assert ip.startswith("127.8."), reply  # loopback: a backend on this machine can listen there
    w.values["CLIENT_IP"] = ip
    assert (w.root / "www" / "index.html").read_text() == "hello from the CVM\n"
    log = w.daemons["tproxy"].log()
    assert re.search(rf"info: RegisterCvm from 127\.0\.0\.1:\d+: app {w.var('APP_ID')} instance "
                     rf"[0-9a-f]+, client IP {re.escape(ip)} \(new\)", log), log


def check_backend(w, d):
    d.wait_port(w.values["CLIENT_IP"], 8080)


def check_proxy_client(w, out, err):
    assert out == "hello from the CVM\n", (out, err, w.daemons["tproxy"].log()[-2000:])


CHECKS = {"cvm": check_cvm, "verify": check_verify, "tappd": check_tappd,
          "tappd-client": check_tappd_client, "kms": check_kms, "kms-client": check_kms_client,
          "tproxy-config": check_tproxy_config, "tproxy": check_tproxy,
          "tproxy-register": check_tproxy_register, "backend": check_backend,
          "proxy-client": check_proxy_client}


@pytest.fixture(scope="module")
def tools():
    for b in ("tdxctl/tdxctl", "tappd/tappd", "kms/kms", "tproxy/tproxy"):
        if not (BUILD / "src" / b).exists():
            pytest.fail(f"{b} not built under {BUILD} (set DSTACK_BUILD)")
    missing = [t for t in ("bash", "curl", "python3", "wg", "node", "npm") if not shutil.which(t)]
    if missing:
        pytest.fail(f"the README's walk-through needs {missing}")


def test_readme_walkthrough(tmp_path, tools):
    blocks, _ = readme_blocks()
    assert [(k, n) for k, n, _ in blocks] == EXPECTED
    w = Walk(tmp_path)
    try:
        for kind, name, body in blocks:
            if kind == "daemon":
                CHECKS[name](w, w.start(name, body))
            else:
                out, err = w.run(name, body)
                CHECKS[name](w, out, err)
        # every daemon is still up at the end
        for d in w.daemons.values():
            assert d.proc.poll() is None, f"{d.name} exited: {d.log()[-2000:]}"
    finally:
        w.stop_all()

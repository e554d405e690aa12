"""teepod's web console (web/teepod/console.html) in a real browser: Debian's headless chromium,
driven through playwright-core by tests/browser/driver.mjs, against the real teepod binary
booting the test guest (tests/guest) under QEMU.

The main case goes the way an operator does: open the console, fill the create form (compose
pasted, a port mapping, env vars encrypted in the page), see the VM reach `running` and its boot
progress `done`, read its console output in the logs panel, stop it, remove it. Other cases: the
server's refusals shown in the page with nothing created, and the admin-token prompt.

A failed step leaves a screenshot in the test's tmp folder (its path is printed). teepod, QEMU,
node and chromium are killed at the end (found by the test's folder in /proc/*/cmdline)."""
import contextlib
import hashlib
import json
import os
import pathlib
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import BUILD, REPO, free_port

TEEPOD = BUILD / "src" / "teepod" / "teepod"
BROWSER_DIR = REPO / "tests" / "browser"
DRIVER = BROWSER_DIR / "driver.mjs"
CHROMIUM = "/usr/bin/chromium"
IMAGE_SCRIPT = REPO / "tests" / "guest" / "build-test-image.sh"
NODE = shutil.which("node")
QEMU = shutil.which("qemu-system-x86_64")

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and NODE and shutil.which("npm") and QEMU and
         shutil.which("mkfs.vfat") and shutil.which("mcopy")),
    reason="chromium, node/npm, qemu-system-x86, dosfstools or mtools missing "
           "(scripts/deps.sh installs them)")

COMPOSE = json.dumps({
    "manifest_version": 2,
    "name": "console-app",
    "runner": "docker-compose",
    "docker_compose_file": "services:\n  web:\n    image: nginx\n",
}, indent=2) + "\n"

COMPOSE2 = COMPOSE.replace("console-app", "console-app-v2")


# ---------------------------------------------------------------- processes

def pids_mentioning(needle):
    """Processes whose command line holds needle (a folder of this test), ours excluded."""
    out = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if needle.encode() in cmd:
            out.append(int(entry))
    return out


def kill_mentioning(needle, seconds=10):
    """SIGKILL every process naming needle; waits (bounded) until none is left."""
    deadline = time.monotonic() + seconds
    while True:
        pids = pids_mentioning(needle)
        if not pids:
            return []
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


class LineReader:
    """Lines of a pipe, read with a deadline."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""

    def line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")


# ---------------------------------------------------------------- teepod

@pytest.fixture(scope="module")
def guest_image(tmp_path_factory):
    """The test guest image folder (built once, cached by the script)."""
    out = tmp_path_factory.mktemp("guest-image")
    p = subprocess.run(["bash", str(IMAGE_SCRIPT), str(out)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=900)
    if p.returncode != 0:
        raise AssertionError(f"build-test-image.sh exited {p.returncode}: "
                             f"{p.stderr.decode(errors='replace')[-3000:]}")
    d = pathlib.Path(p.stdout.decode().strip().splitlines()[-1])
    assert (d / "metadata.json").is_file(), d
    return d


class Teepod:
    """`teepod --dev DIR` with DIR/images/<the test image> and DIR/teepod.toml."""

    def __init__(self, tmp, image, toml="", token=None):
        if not TEEPOD.exists():
            pytest.fail(f"teepod not built at {TEEPOD} (set DSTACK_BUILD)")
        self.tmp = tmp
        # QEMU's unix sockets live in the VM folders and their paths must fit in 108 bytes:
        # pytest's tmp_path is too deep, so the teepod folder is a short one of its own
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="tpc-", dir="/tmp"))
        (self.dir / "images").mkdir(parents=True)
        self.image = image.name
        shutil.copytree(image, self.dir / "images" / image.name)
        if token:
            tf = self.dir / "tokens"
            tf.write_text(token + "\n")
            tf.chmod(0o600)
            toml += f'\n[auth]\nenabled = true\ntoken_file = "{tf}"\n'
        (self.dir / "teepod.toml").write_text(toml)
        self.token = token
        self.stderr_path = tmp / "teepod.stderr"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DSTACK_")}
        self.proc = subprocess.Popen([str(TEEPOD), "--dev", str(self.dir)], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=open(self.stderr_path, "wb"))
        reader = LineReader(self.proc.stdout)
        deadline = time.monotonic() + 30
        self.url = None
        while self.url is None:
            line = reader.line(deadline)
            if line is None:
                err = self.stderr()
                self.stop()
                raise AssertionError(f"teepod did not announce its port:\n{err}")
            m = re.fullmatch(r"listening (http://127\.0\.0\.1:\d+)", line.strip())
            if m:
                self.url = m.group(1)
        # keep draining stdout so teepod never blocks on it; ends when teepod exits
        threading.Thread(target=self._drain, args=(self.proc.stdout.fileno(),),
                         daemon=True).start()

    @staticmethod
    def _drain(fd):
        while True:
            try:
                if not os.read(fd, 65536):
                    return
            except OSError:
                return

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""

    def call(self, method, body=None, token=None):
        """(HTTP status, parsed JSON) of POST /prpc/<method>?json."""
        req = urllib.request.Request(f"{self.url}/prpc/{method}?json",
                                     data=json.dumps(body or {}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        tok = token or self.token
        if tok:
            req.add_header("X-Admin-Token", tok)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def vm_dir(self, vm_id):
        return self.dir / "vm" / vm_id

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        # QEMU runs detached in its own session: find it (and anything else) by our folder
        left = kill_mentioning(str(self.dir))
        # what the VMs wrote, kept with the test's files; the folder itself (disks) goes
        for f in list((self.dir / "vm").glob("*/serial.log")) + list((self.dir / "vm").glob("*/qemu.out")):
            dst = self.tmp / "vm-logs" / f.parent.name
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dst / f.name)
        if not left:
            shutil.rmtree(self.dir, ignore_errors=True)
        assert not left, f"processes still running under {self.dir}: {left}"


@pytest.fixture
def teepod_factory(tmp_path):
    started = []

    def make(**kw):
        t = Teepod(tmp_path, **kw)
        started.append(t)
        return t

    yield make
    for t in started:
        t.stop()
        print(f"\n--- teepod stderr (shown when the test fails) ---\n{t.stderr()}")


# ---------------------------------------------------------------- the browser

class DriverError(AssertionError):
    pass


class Browser:
    """tests/browser/driver.mjs: one chromium page, one JSON command per line."""

    def __init__(self, tmp, chromium_args=()):
        if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
            p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                               cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=300)
            assert p.returncode == 0, f"npm ci in tests/browser failed: {p.stdout.decode()[-2000:]}"
        self.tmp = tmp
        self.shots = tmp / "screenshots"
        self.profile = tmp / "chromium-profile"  # fresh for every test
        self.err_path = tmp / "driver.stderr"
        self.proc = subprocess.Popen(
            [NODE, str(DRIVER), "--user-data-dir", str(self.profile), "--shots", str(self.shots),
             "--chromium", CHROMIUM] + [x for a in chromium_args for x in ("--chromium-arg", a)],
            cwd=BROWSER_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(self.err_path, "wb"), start_new_session=True)
        self.reader = LineReader(self.proc.stdout)
        self.n = 0
        line = self.reader.line(time.monotonic() + 90)
        ready = json.loads(line) if line else {}
        if not ready.get("ready"):
            err = self.stderr()
            self.close()
            raise AssertionError(f"the browser did not start: {ready.get('error') or line!r}\n{err}")

    def stderr(self):
        try:
            return self.err_path.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""

    def cmd(self, op, keep_shot=True, **kw):
        """Runs one op; returns the reply (result, at_ms). Raises DriverError on failure, with
        the screenshot the driver took (kept unless keep_shot is false: an expected failure)."""
        self.n += 1
        msg = dict(kw, id=self.n, op=op)
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
        self.proc.stdin.flush()
        wait = kw.get("timeout_ms", 15000) / 1000 + 30
        line = self.reader.line(time.monotonic() + wait)
        if line is None:
            raise DriverError(f"browser: no reply to {op} {kw} within {wait:.0f} s\n{self.stderr()}")
        rep = json.loads(line)
        assert rep.get("id") == self.n, rep
        if not rep["ok"]:
            shot = self.keep(rep.get("screenshot")) if keep_shot else rep.get("screenshot")
            e = DriverError(f"browser {op} {kw}: {rep['error']}\nscreenshot: {shot}")
            e.screenshot = rep.get("screenshot")
            raise e
        return rep

    def keep(self, path):
        """A failure screenshot: printed, and copied to $DSTACK_BUILD/it-screenshots too, since
        pytest prunes old tmp folders (other runs included). Returns the paths."""
        if not path:
            return None
        where = path
        try:
            dst = BUILD / "it-screenshots" / self.tmp.name
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dst)
            where = f"{path} (copy: {dst / pathlib.Path(path).name})"
        except OSError:
            pass
        print(f"\nscreenshot of the failed step: {where}")
        return where

    def __getattr__(self, op):
        if op.startswith("_"):
            raise AttributeError(op)
        return lambda **kw: self.cmd(op, **kw)["result"]

    def close(self):
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(b'{"id":0,"op":"close"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        left = kill_mentioning(str(self.profile))
        assert not left, f"chromium processes left: {left}"


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path)
    yield b
    b.close()


@contextlib.contextmanager
def step(browser, name):
    """A test step: when it fails, the page is kept as a screenshot (path printed)."""
    try:
        yield
    except DriverError:
        raise  # the driver took its own screenshot
    except BaseException:
        try:
            browser.keep(browser.screenshot(name=f"failed-{name}"))
        except Exception as e:  # the browser itself may be the problem
            print(f"\nno screenshot of the failed step {name!r}: {e}")
        raise


def wait_until(what, fn, seconds, interval=0.2):
    deadline = time.monotonic() + seconds
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(interval)


def decrypt_env(blob, private_key):
    """The env encryption of the dstack SDKs, undone: ephemeral X25519 public key (32) || IV (12)
    || AES-256-GCM ciphertext and tag, the key being the raw X25519 shared secret."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    assert len(blob) > 32 + 12 + 16, len(blob)
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(blob[:32]))
    return json.loads(AESGCM(shared).decrypt(blob[32:44], blob[44:], None))


def x25519_keypair():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    k = X25519PrivateKey.generate()
    pub = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return k, pub.hex()


def page_errors(browser):
    """Script errors and CSP violations the page met; the refused API calls a case makes on
    purpose (HTTP 4xx, reported by chromium as failed loads) are not errors of the page."""
    return [e for e in browser.errors()
            if not re.match(r"console: Failed to load resource: the server responded with a "
                            r"status of 4\d\d", e)]


def row(vm_id):
    return f'tr[data-vm-id="{vm_id}"]'


# ---------------------------------------------------------------- cases

def test_console_vm_lifecycle(teepod_factory, guest_image, browser, tmp_path):
    host_port = free_port()
    tp = teepod_factory(image=guest_image, toml=(
        "[cvm.port_mapping]\nenabled = true\naddress = \"127.0.0.1\"\n"
        f"range = [\"tcp:{host_port}-{host_port}\"]\n"))
    kms_key, kms_pub = x25519_keypair()
    env_text = "GREETING=hello world\n# a comment\n\nTOKEN=a=b=c\n"

    with step(browser, "open"):
        browser.goto(url=tp.url + "/")
        browser.wait(selector=f'#create-image option[value="{tp.image}"]', state="attached")
        browser.wait(selector="#create-ports-section", state="visible")
        browser.wait(selector="#vm-empty", state="visible")
        assert browser.text(selector="#server-version").startswith("v")

    with step(browser, "fill the create form"):
        browser.fill(selector="#create-name", value="console-vm")
        browser.select(selector="#create-image", value=tp.image)
        browser.fill(selector="#create-memory", value="512")
        browser.fill(selector="#create-disk", value="2")
        browser.fill(selector="#create-compose", value=COMPOSE)
        browser.click(selector="#create-port-add")
        browser.fill(selector="#create-ports .port-row .port-host", value=str(host_port))
        browser.fill(selector="#create-ports .port-row .port-vm", value="8080")
        browser.fill(selector="#create-env", value=env_text)
        browser.fill(selector="#create-env-pubkey", value=kms_pub)

    with step(browser, "create"):
        t_click = browser.cmd("click", selector="#create-submit")["at_ms"]
        browser.wait_text(selector="#create-result", text="created console-vm", timeout_ms=60000)
        vm_id = browser.attr(selector="#create-result", name="data-vm-id")
        assert re.fullmatch(r"[0-9a-f-]{8,64}", vm_id or ""), vm_id
        assert browser.text(selector="#create-error") == ""
        vm_dir = tp.vm_dir(vm_id)
        assert vm_dir.is_dir()

    with step(browser, "running"):
        t_running = browser.cmd("wait", selector=f'{row(vm_id)}[data-status="running"]',
                                timeout_ms=60000)["at_ms"]
        assert browser.text(selector=f"{row(vm_id)} .vm-name") == "console-vm"
        assert browser.text(selector=f"{row(vm_id)} .vm-status") == "running"

    with step(browser, "boot progress done"):
        t_done = browser.cmd("wait_text", selector=f"{row(vm_id)} .vm-progress", text="done",
                             timeout_ms=180000)["at_ms"]
        assert browser.text(selector=f"{row(vm_id)} .vm-progress") == "done"
        assert browser.text(selector=f"{row(vm_id)} .vm-boot-error") == ""
        app_id = browser.text(selector=f"{row(vm_id)} .vm-app-id")
        assert re.fullmatch(r"[0-9a-f]{40}", app_id), app_id
        # the guest reports its instance id once booted: the next Status poll brings it
        browser.wait(selector=f"{row(vm_id)} .vm-instance:not(:empty)", state="attached",
                     timeout_ms=10000)
        assert re.fullmatch(r"[0-9a-f]{40}", browser.text(selector=f"{row(vm_id)} .vm-instance"))
        assert browser.text(selector=f"{row(vm_id)} .vm-uptime").endswith("s")
    print(f"\nconsole: create clicked -> running {(t_running - t_click) / 1000:.1f} s, "
          f"-> boot progress done {(t_done - t_click) / 1000:.1f} s "
          f"(the list refreshes every 2.5 s)")

    with step(browser, "what the form sent"):
        shared = vm_dir / "shared"
        assert (shared / "app-compose.json").read_text() == COMPOSE
        env = decrypt_env((shared / ".encrypted-env").read_bytes(), kms_key)
        assert env == {"env": [{"key": "GREETING", "value": "hello world"},
                               {"key": "TOKEN", "value": "a=b=c"}]}, env
        assert browser.eval(expr='document.getElementById("create-env").value') == ""
        _, info = tp.call("GetInfo", {"id": vm_id})
        ports = info["info"]["configuration"]["ports"]
        assert [(p["protocol"], p["host_port"], p["vm_port"]) for p in ports] == \
            [("tcp", host_port, 8080)], ports
        assert info["info"]["configuration"]["memory"] == 512

    with step(browser, "port mapping reaches the guest"):
        def page():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{host_port}/", timeout=5) as r:
                    return r.read().decode(errors="replace")
            except OSError:
                return None
        body = wait_until("the guest's page through the mapped port", page, 30, 0.5)
        assert "dstack-test-guest" in body

    with step(browser, "logs"):
        browser.click(selector=f'{row(vm_id)} button[data-action="logs"]')
        browser.wait(selector="#logs-panel", state="visible")
        logs = browser.wait_text(selector="#logs-text", text="test-guest:", timeout_ms=15000)
        sha = hashlib.sha256(COMPOSE.encode()).hexdigest()
        assert f"test-guest: compose sha256 {sha}" in logs, logs[-2000:]
        assert "\x1b" not in logs
        href = browser.attr(selector="#logs-open", name="href")
        assert href == f"/logs?id={vm_id}&follow=false&ansi=false&lines=1000", href
        assert browser.attr(selector="#logs-panel", name="data-vm-id") == vm_id

    with step(browser, "dashboard"):
        app_url = browser.text(selector=f"{row(vm_id)} .vm-url")
        assert app_url.startswith("https://") and app_id in app_url, app_url
        opened = browser.click_popup(selector=f'{row(vm_id)} button[data-action="dashboard"]')
        a, b = urllib.parse.urlsplit(opened), urllib.parse.urlsplit(app_url)
        assert (a.scheme, a.hostname, a.port or 443) == (b.scheme, b.hostname, b.port or 443), \
            (opened, app_url)

    with step(browser, "stop"):
        browser.click(selector=f'{row(vm_id)} button[data-action="stop"]')
        browser.wait(selector=f'{row(vm_id)}[data-status="stopped"]', timeout_ms=30000)
        wait_until("QEMU gone after Stop", lambda: not pids_mentioning(str(vm_dir)), 15)
        assert browser.eval(
            expr=f'document.querySelector(\'{row(vm_id)} button[data-action="start"]\').disabled'
        ) is False
        assert browser.text(selector=f"{row(vm_id)} .vm-action-error") == ""

    with step(browser, "update"):
        browser.click(selector=f'{row(vm_id)} button[data-action="update"]')
        browser.wait(selector=f'#update-panel[data-vm-id="{vm_id}"]', state="visible")
        wait_until("the update form filled from GetInfo",
                   lambda: browser.eval(expr="document.getElementById('update-compose').value")
                   == COMPOSE, 10, 0.2)
        browser.fill(selector="#update-compose", value=COMPOSE2)
        browser.fill(selector="#update-user-config", value="user config <from the console>")
        browser.click(selector="#update-submit")
        browser.wait_text(selector="#update-result", text="updated", timeout_ms=15000)
        assert browser.text(selector="#update-error") == ""
        assert (shared / "app-compose.json").read_text() == COMPOSE2
        assert (shared / ".user-config").read_text() == "user config <from the console>"
        # no env vars given: the encrypted env stays what it was
        assert decrypt_env((shared / ".encrypted-env").read_bytes(), kms_key) == env
        browser.click(selector="#update-cancel")
        browser.wait(selector="#update-panel", state="hidden")

    with step(browser, "start again"):
        t_start = browser.cmd("click", selector=f'{row(vm_id)} button[data-action="start"]')["at_ms"]
        browser.wait(selector=f'{row(vm_id)}[data-status="running"]', timeout_ms=30000)
        sha2 = hashlib.sha256(COMPOSE2.encode()).hexdigest()

        def new_compose_booted():
            browser.click(selector="#logs-refresh")
            return f"test-guest: compose sha256 {sha2}" in browser.text(selector="#logs-text")
        wait_until("the guest booted with the updated compose", new_compose_booted, 120, 1)
        t_done2 = browser.cmd("wait_text", selector=f"{row(vm_id)} .vm-progress", text="done",
                              timeout_ms=60000)["at_ms"]
    print(f"console: start clicked -> boot progress done {(t_done2 - t_start) / 1000:.1f} s")

    with step(browser, "shutdown"):
        browser.click(selector=f'{row(vm_id)} button[data-action="shutdown"]')
        browser.wait(selector=f'{row(vm_id)}[data-status="stopped"]', timeout_ms=60000)
        wait_until("QEMU gone after Shutdown", lambda: not pids_mentioning(str(vm_dir)), 15)
        assert browser.text(selector=f"{row(vm_id)} .vm-action-error") == ""
        assert "killing QEMU" not in tp.stderr()  # a clean ACPI shutdown, not the fallback

    with step(browser, "remove"):
        browser.click(selector=f'{row(vm_id)} button[data-action="remove"]')
        browser.wait(selector=row(vm_id), state="detached", timeout_ms=15000)
        dialogs = browser.dialogs()
        assert len(dialogs) == 1 and dialogs[0].startswith("confirm: Remove VM console-vm"), dialogs
        wait_until("the VM folder removed", lambda: not vm_dir.exists(), 10)
        assert tp.call("Status", {})[1]["vms"] == []
        browser.wait(selector="#vm-empty", state="visible")
        browser.wait(selector="#logs-panel", state="hidden")

    with step(browser, "no page errors"):
        assert page_errors(browser) == []


def test_console_refusals(teepod_factory, guest_image, browser):
    """Port mapping off: the port rows are hidden. Bad input: the server's own error text is
    shown, escaped, and nothing is created; env vars without a key are refused in the page."""
    tp = teepod_factory(image=guest_image)

    with step(browser, "open"):
        browser.goto(url=tp.url + "/")
        browser.wait(selector=f'#create-image option[value="{tp.image}"]', state="attached")
        browser.wait(selector="#create-ports-section", state="hidden")

    with step(browser, "a failed step leaves a screenshot"):
        with pytest.raises(DriverError) as failed:
            browser.cmd("wait", keep_shot=False, selector="#no-such-element", timeout_ms=300)
        shot = pathlib.Path(failed.value.screenshot)
        assert shot.parent == browser.shots and shot.name.endswith("failed-wait.png"), shot
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        shot.unlink()

    with step(browser, "bad name"):
        code, want = tp.call("CreateVm", {"name": "bad name!", "image": tp.image,
                                          "compose_file": COMPOSE, "vcpu": 1, "memory": 512,
                                          "disk_size": 1})
        assert code == 400 and want["error"], (code, want)
        browser.fill(selector="#create-name", value="bad name!")
        browser.fill(selector="#create-memory", value="512")
        browser.fill(selector="#create-compose", value=COMPOSE)
        browser.click(selector="#create-submit")
        shown = browser.wait_text(selector="#create-error", text=want["error"][:20],
                                  timeout_ms=15000)
        assert shown == want["error"], (shown, want)
        assert browser.text(selector="#create-result") == ""

    with step(browser, "env without a key"):
        browser.fill(selector="#create-name", value="good-name")
        browser.fill(selector="#create-env", value="A=1\n")
        browser.click(selector="#create-submit")
        shown = browser.wait_text(selector="#create-error", text="env public key",
                                  timeout_ms=15000)
        assert "env vars" in shown, shown
        browser.fill(selector="#create-env-pubkey", value="12zz")
        browser.click(selector="#create-submit")
        browser.wait_text(selector="#create-error", text="not hex", timeout_ms=15000)
        browser.fill(selector="#create-env-pubkey", value="ab" * 31)
        browser.click(selector="#create-submit")
        browser.wait_text(selector="#create-error", text="32 bytes", timeout_ms=15000)
        browser.fill(selector="#create-env", value="")

    with step(browser, "server text is not HTML"):
        # an image name that the server echoes back in its error, written as markup
        evil = '<b id="injected">x<b>'
        browser.eval(expr=(
            "(() => { const s = document.getElementById('create-image');"
            f" const o = document.createElement('option'); o.value = {json.dumps(evil)};"
            " o.textContent = 'evil'; s.append(o); s.value = o.value; return s.value; })()"))
        browser.click(selector="#create-submit")
        shown = browser.wait_text(selector="#create-error", text=f"image {evil}",
                                  timeout_ms=15000)
        assert browser.count(selector="#injected") == 0

    with step(browser, "nothing created"):
        assert tp.call("Status", {})[1]["vms"] == []
        assert not [p for p in (tp.dir / "vm").iterdir() if not p.name.startswith(".")]
        assert browser.count(selector="#vm-list tr") == 0
        browser.wait(selector="#vm-empty", state="visible")
        # the page stays usable: the failed calls did not stop the periodic refresh
        before = browser.text(selector="#refresh-state")
        wait_until("the list refreshed", lambda: browser.text(selector="#refresh-state") != before,
                   10, 0.5)
        assert page_errors(browser) == []


def test_console_admin_token(teepod_factory, guest_image, browser):
    """With [auth] on, the page loads, asks for the token, keeps it in sessionStorage and sends
    it as X-Admin-Token; a wrong token is refused in the page."""
    token = "console-token-" + os.urandom(8).hex()
    tp = teepod_factory(image=guest_image, token=token)
    assert tp.call("Status", {}, token="x" * 20)[0] == 401

    with step(browser, "asked for the token"):
        browser.goto(url=tp.url + "/")
        browser.wait(selector="#auth", state="visible")
        browser.wait(selector="#auth-token", state="visible")
        assert browser.count(selector="#create-image option") == 0

    with step(browser, "wrong token"):
        browser.fill(selector="#auth-token", value="wrong-token-0123456789")
        browser.click(selector="#auth-submit")
        browser.wait_text(selector="#auth-error", text="refused", timeout_ms=15000)
        browser.wait(selector="#auth", state="visible")

    with step(browser, "right token"):
        browser.fill(selector="#auth-token", value=token)
        browser.click(selector="#auth-submit")
        browser.wait(selector="#auth", state="hidden", timeout_ms=15000)
        browser.wait(selector=f'#create-image option[value="{tp.image}"]', state="attached")
        assert browser.eval(expr="sessionStorage.getItem('teepod-admin-token')") == token
        assert browser.eval(expr="localStorage.length") == 0

    with step(browser, "the token goes with every call"):
        browser.fill(selector="#create-name", value="bad name!")
        browser.fill(selector="#create-compose", value=COMPOSE)
        browser.click(selector="#create-submit")
        browser.wait_text(selector="#create-error", text="name must", timeout_ms=15000)
        browser.wait(selector="#auth", state="hidden")
        assert page_errors(browser) == []



def test_env_layout_is_the_sdks():
    """decrypt_env, which checks what the console encrypts, opens what the published SDK's
    encryptEnvVars makes: the console and the SDK share one layout."""
    sdk = REPO / "tests" / "sdk" / "node_modules" / "sdk058" / "dist" / "encrypt-env-vars.mjs"
    if not sdk.is_file():
        pytest.skip("tests/sdk/node_modules missing (npm ci in tests/sdk)")
    key, pub = x25519_keypair()
    envs = [{"key": "A", "value": "1"}, {"key": "B_2", "value": "x=y z\u00e9"}]
    script = ("const m = await import(process.argv[1]);"
              "const out = await m.encryptEnvVars(JSON.parse(process.argv[2]), process.argv[3]);"
              "process.stdout.write(out);")
    p = subprocess.run([NODE, "--input-type=module", "-e", script, str(sdk), json.dumps(envs), pub],
                       cwd=sdk.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    blob = bytes.fromhex(p.stdout.decode())
    assert decrypt_env(blob, key) == {"env": envs}

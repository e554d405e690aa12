"""Helpers shared by teepod's integration tests (no tests here): the test guest image (built
once, cached outside the clone), a runner for the real teepod binary in dev mode, its JSON
pRPC client, and clean-up of the QEMUs it starts (they run detached, in their own session)."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

from conftest import BUILD, REPO, _clean_env, free_port
from test_kms_common import read_line

TEEPOD = BUILD / "src" / "teepod" / "teepod"
BUILD_SCRIPT = REPO / "tests" / "guest" / "build-test-image.sh"
IMAGE = "dstack-test-0.1.0"
QEMU = shutil.which("qemu-system-x86_64")
COMPOSE = "services:\n  web:\n    image: nginx\n    ports: [\"8080:80\"]\n"


def build_image(outdir):
    p = subprocess.run(["bash", str(BUILD_SCRIPT), str(outdir)], timeout=900,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise AssertionError(f"build-test-image.sh failed: {p.stderr.decode()[-3000:]}")
    return pathlib.Path(p.stdout.decode().strip().splitlines()[-1])


def free_range(n, tries=50):
    """A first port of n consecutive loopback ports that are all free now (bounded tries)."""
    import socket
    for _ in range(tries):
        base = free_port()
        if base + n > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} free consecutive ports in {tries} tries")


class RpcError(Exception):
    def __init__(self, status, message):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def qemu_pids(vm_dir):
    """PIDs of QEMU processes whose command line names vm_dir."""
    pids = []
    needle = str(vm_dir).encode()
    for p in pathlib.Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes()
        except OSError:
            continue
        if b"qemu-system" in cmd and needle in cmd:
            pids.append(int(p.name))
    return pids


def kill_qemus(run_dir, timeout=10):
    """Kills every QEMU of run_dir; bounded wait for them to go."""
    for pid in qemu_pids(run_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while qemu_pids(run_dir) and time.monotonic() < deadline:
        time.sleep(0.1)


class Teepod:
    """The real teepod in dev mode: DIR/images/<IMAGE> from the test image, DIR/teepod.toml from
    extra (TOML text), a free port range for port mappings."""

    def __init__(self, tmp, image_dir, extra="", ports=None, env=None):
        self.dir = pathlib.Path(tmp)
        (self.dir / "images").mkdir(parents=True, exist_ok=True)
        dst = self.dir / "images" / IMAGE
        if not dst.exists():
            shutil.copytree(image_dir, dst)
        if ports:
            self.port_lo, self.port_hi = ports
        else:
            self.port_lo = free_range(10)
            self.port_hi = self.port_lo + 9
        toml = (f"[cvm.port_mapping]\nenabled = true\n"
                f"range = [\"tcp:{self.port_lo}-{self.port_hi}\"]\n"
                "[cvm.auto_restart]\ninterval = 1\nmax_backoff = 4\nmax_retries = 3\n")
        (self.dir / "teepod.toml").write_text(toml + extra)
        self.env = dict(_clean_env(), **(env or {}))
        self.proc = None
        self.token = None

    @property
    def run_dir(self):
        return self.dir / "vm"

    def start(self, expect_fail=False):
        self.errf = open(self.dir / "teepod.err", "ab")
        self.proc = subprocess.Popen([str(TEEPOD), "--dev", str(self.dir)], env=self.env,
                                     stdout=subprocess.PIPE, stderr=self.errf)
        if expect_fail:
            self.proc.wait(timeout=30)
            return self.proc.returncode
        line = read_line(self.proc, time.time() + 30)
        assert line.startswith("listening http://127.0.0.1:"), line
        self.port = int(line.rsplit(":", 1)[1])
        line = read_line(self.proc, time.time() + 10)
        assert line.startswith("listening unix:"), line
        return 0

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def close(self):
        self.stop()
        kill_qemus(self.run_dir)

    def stderr(self):
        try:
            return (self.dir / "teepod.err").read_text(errors="replace")
        except OSError:
            return ""

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def http(self, method, path, body=None, headers=None, timeout=60):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(self.url(path), data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("X-Admin-Token", self.token)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def rpc(self, method, body=None, prefix=""):
        status, data = self.http("POST", f"/prpc/{prefix}{method}?json", body or {})
        if status != 200:
            try:
                msg = json.loads(data).get("error", data.decode())
            except ValueError:
                msg = data.decode(errors="replace")
            raise RpcError(status, msg)
        return json.loads(data) if data.strip() else None

    def create(self, name, compose=COMPOSE, **kw):
        body = dict(name=name, image=IMAGE, compose_file=compose, vcpu=1, memory=512,
                    disk_size=1)
        body.update(kw)
        return self.rpc("CreateVm", body)["id"]

    def info(self, vm_id):
        r = self.rpc("GetInfo", {"id": vm_id})
        assert r["found"], vm_id
        return r["info"]

    def wait(self, vm_id, pred, timeout=90, what="condition"):
        """Polls GetInfo until pred(info); bounded."""
        deadline = time.monotonic() + timeout
        info = None
        while time.monotonic() < deadline:
            info = self.info(vm_id)
            if pred(info):
                return info
            time.sleep(0.3)
        raise AssertionError(f"VM {vm_id}: {what} not reached in {timeout} s; last {info}\n"
                             f"--- teepod stderr ---\n{self.stderr()[-3000:]}")

    def wait_booted(self, vm_id, timeout=120):
        return self.wait(vm_id, lambda i: i["status"] == "running" and
                         i["boot_progress"] == "done", timeout, "boot progress 'done'")

    def wait_status(self, vm_id, status, timeout=60):
        return self.wait(vm_id, lambda i: i["status"] == status, timeout, f"status {status}")

    def qemu_pid(self, vm_id):
        pids = qemu_pids(self.run_dir / vm_id)
        return pids[0] if len(pids) == 1 else None


def fetch(port, path, timeout=10):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read()

"""Helpers shared by the tappd integration tests (no tests here): start `tappd --dev DIR`
(optionally with an extra tappd.toml), talk HTTP over its unix sockets and TCP port, replay
event logs, derive keys the way upstream does."""
import hashlib
import http.client
import json
import os
import pathlib
import socket
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from conftest import BUILD, _clean_env

TAPPD = BUILD / "src" / "tappd" / "tappd"
ZERO48 = bytes(48)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def request(target, method, path, body=None, headers=None, timeout=30):
    """target: a unix socket path (str/Path) or ("host", port). Returns (status, headers, body)."""
    if isinstance(target, tuple):
        c = http.client.HTTPConnection(target[0], target[1], timeout=timeout)
    else:
        c = UnixHTTPConnection(target, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def rpc(target, path, args=None, expect=200):
    """POST JSON; returns the decoded JSON reply (asserting the status)."""
    st, _, body = request(target, "POST", path, args if args is not None else {})
    assert st == expect, f"{path}: HTTP {st}: {body[:500]!r}"
    return json.loads(body) if body else None


def replay(events):
    """RTMR0..3 from an event log (list of dicts), as the SDKs' replayRtmrs() does: every event's
    digest (right-padded to 48 bytes) extends its IMR."""
    rtmr = [ZERO48] * 4
    for e in events:
        d = bytes.fromhex(e["digest"]).ljust(48, b"\0")
        rtmr[e["imr"]] = hashlib.sha384(rtmr[e["imr"]] + d).digest()
    return rtmr


def runtime_digest(name, payload):
    """V1 runtime event digest."""
    return hashlib.sha384((0x08000001).to_bytes(4, "little") + b":" + name.encode() + b":" +
                          payload).digest()


def quote_rtmrs(q):
    """RTMR0..3 and report_data of a TDX v4 quote (TD 1.0 body)."""
    body = q[48:48 + 584]
    rt = [body[328 + 48 * i:328 + 48 * (i + 1)] for i in range(4)]
    return rt, body[520:584]


def hkdf(ikm, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"RATLS", info=info).derive(ikm)


class Tappd:
    """A running `tappd --dev DIR` (with an optional extra config)."""

    def __init__(self, tmp, config=None, args=(), env=None, want=3):
        self.dir = pathlib.Path(tmp) / "dev"
        self.stderr_path = pathlib.Path(tmp) / "tappd.stderr"
        cmd = [str(TAPPD), "--dev", str(self.dir)]
        if config is not None:
            cp = pathlib.Path(tmp) / "extra.toml"
            cp.write_text(config)
            cmd += ["-c", str(cp)]
        cmd += list(args)
        e = _clean_env()
        e.update(env or {})
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr, env=e)
        self.listen = {}
        deadline = time.time() + 60
        while len(self.listen) < want and time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            if line.startswith("listening "):
                _, name, addr = line.split()
                self.listen[name] = addr
        if len(self.listen) < want:
            self.stop()
            raise AssertionError(f"tappd did not start: {self.stderr_path.read_text()}")
        self.tappd_sock = self.listen["tappd"].removeprefix("unix:")
        self.dstack_sock = self.listen["dstack"].removeprefix("unix:")
        hostport = self.listen["external"].removeprefix("http://")
        host, port = hostport.rsplit(":", 1)
        self.external = (host, int(port))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        assert self.proc.returncode in (0, -15), \
            f"tappd exited {self.proc.returncode}: {self.stderr_path.read_text()[-3000:]}"

    def appkeys(self):
        return json.loads((self.dir / "appkeys.json").read_text())

    def tappd(self, method, args=None, expect=200):
        return rpc(self.tappd_sock, f"/prpc/Tappd.{method}?json", args, expect)

    def dstack(self, method, args=None, expect=200):
        return rpc(self.dstack_sock, f"/{method}", args, expect)


@pytest.fixture(scope="session")
def tappd_bin():
    if not TAPPD.exists():
        pytest.fail(f"tappd not built at {TAPPD} (set DSTACK_BUILD)")
    return TAPPD


@pytest.fixture
def tappd(tappd_bin, tmp_path):
    t = Tappd(tmp_path)
    yield t
    t.stop()


@pytest.fixture
def tappd_factory(tappd_bin, tmp_path):
    started = []

    def make(config=None, sub="a", **kw):
        d = tmp_path / sub
        d.mkdir()
        t = Tappd(d, config=config, **kw)
        started.append(t)
        return t

    yield make
    for t in started:
        t.stop()

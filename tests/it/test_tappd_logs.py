"""tappd /logs, Worker.ListContainers and the dashboard against a real container engine:
podman's Docker-compatible API (`podman system service`), with containers started from a local
busybox rootfs (`podman import`). Skipped, saying so, when podman or busybox is not installed;
the Docker byte streams it produces are also recorded in tests/data/docker/ for the unit tests."""
import base64
import json
import os
import pathlib
import shutil
import socket
import subprocess
import time

import pytest

from test_tappd_common import Tappd, request, tappd_bin  # noqa: F401

BUSYBOX = shutil.which("busybox") or "/usr/bin/busybox"


class Podman:
    def __init__(self, root):
        self.root = pathlib.Path(root)
        conf = self.root / "containers.conf"
        conf.write_text('[containers]\ndefault_ulimits = ["nofile=20000:20000", '
                        '"nproc=32768:32768"]\n[engine]\nruntime = "runc"\n'
                        'cgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
        self.env = dict(os.environ, CONTAINERS_CONF=str(conf))
        self.base = ["podman", "--root", str(self.root / "storage"), "--runroot",
                     str(self.root / "run"), "--storage-driver", "vfs"]
        self.sock = self.root / "docker.sock"
        self.service = None

    def run(self, *args, timeout=120):
        return subprocess.run(self.base + list(args), env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, check=True)

    def start(self):
        rootfs = self.root / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy(BUSYBOX, rootfs / "bin" / "busybox")
        for c in ("sh", "echo", "sleep", "printf", "cat"):
            os.symlink("busybox", rootfs / "bin" / c)
        tar = self.root / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
        self.run("import", str(tar), "localhost/tappd-test:latest")
        self.service = subprocess.Popen(
            self.base + ["system", "service", "--time=0", f"unix://{self.sock}"], env=self.env,
            stdout=subprocess.DEVNULL, stderr=open(self.root / "service.log", "wb"))
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.sock.exists():
                try:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(str(self.sock))
                    s.close()
                    break
                except OSError:
                    pass
            time.sleep(0.2)
        else:
            raise AssertionError("podman system service did not come up")
        self.run("run", "-d", "--name", "web", "--network", "none", "localhost/tappd-test:latest",
                 "sh", "-c", "echo out-1; echo err-1 >&2; echo out-2; i=0; "
                 "while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done")
        self.run("run", "-d", "-t", "--name", "tty", "--network", "none",
                 "localhost/tappd-test:latest", "sh", "-c",
                 "printf '\\033[31mred\\033[0m line\\n'; sleep 100000")
        time.sleep(1.5)

    def stop(self):
        try:
            self.run("rm", "-f", "-t", "0", "web", "tty", timeout=60)
        except Exception:
            pass
        if self.service:
            self.service.terminate()
            try:
                self.service.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.service.kill()


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    if not shutil.which("podman") or not shutil.which("runc"):
        pytest.skip("no container engine here (podman + runc not installed); /logs is covered "
                    "by the recorded Docker API streams in the unit tests only")
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox (busybox-static) not installed: no local image for a container")
    p = Podman(tmp_path_factory.mktemp("podman"))
    try:
        p.start()
    except Exception:
        p.stop()
        raise
    yield p
    p.stop()


@pytest.fixture(scope="module")
def tappd_logs(engine, tappd_bin, tmp_path_factory):  # noqa: F811
    t = Tappd(tmp_path_factory.mktemp("tappd"),
              config=f'[default.core]\ndocker_socket = "{engine.sock}"\npublic_logs = true\n')
    yield t
    t.stop()


def get(t, path, timeout=20):
    st, h, body = request(t.external, "GET", path, timeout=timeout)
    return st, h, body


def test_list_containers_and_dashboard(tappd_logs):
    st, _, body = get(tappd_logs, "/prpc/Worker.ListContainers")
    assert st == 200, body
    cs = {c["names"][0]: c for c in json.loads(body)["containers"]}
    assert {"/web", "/tty"} <= set(cs)
    assert cs["/web"]["state"] == "running"
    assert cs["/web"]["image"] == "localhost/tappd-test:latest"
    assert len(cs["/web"]["id"]) == 64 and cs["/web"]["created"] > 0
    st, _, page = get(tappd_logs, "/")
    assert st == 200
    assert b'href="/logs/web?text&amp;bare&amp;timestamps&amp;follow"' in page
    st, _, body = get(tappd_logs, "/metrics")
    assert b'dstack_containers{state="running"}' in body


def test_logs_formats(tappd_logs):
    st, h, body = get(tappd_logs, "/logs/web?text&bare&tail=all")
    assert st == 200 and h["Content-Type"].startswith("text/plain")
    text = body.decode()
    assert text.startswith("out-1\n") and "out-2\n" in text and "tick-1\n" in text
    assert "err-1\n" in text
    # Default items: JSON lines with base64 messages.
    st, _, body = get(tappd_logs, "/logs/web?tail=all")
    items = [json.loads(line) for line in body.decode().splitlines()]
    assert {"channel": "stdout", "message": base64.b64encode(b"out-1\n").decode()} == items[0]
    chans = {base64.b64decode(i["message"]): i["channel"] for i in items}
    assert chans[b"err-1\n"] == "stderr"
    # text items.
    st, _, body = get(tappd_logs, "/logs/web?text&tail=all")
    items = [json.loads(line) for line in body.decode().splitlines()]
    assert {"channel": "stderr", "message": "err-1\n"} in items
    # tail, until, timestamps.
    st, _, body = get(tappd_logs, "/logs/web?text&bare&tail=2")
    assert len(body.decode().splitlines()) == 2
    st, _, body = get(tappd_logs, "/logs/web?text&bare&until=1&tail=all")
    assert st == 200 and body == b""
    st, _, body = get(tappd_logs, "/logs/web?text&bare&since=1d&timestamps&tail=3")
    for line in body.decode().splitlines():
        assert line[:2] == "20" and "T" in line.split(" ")[0]


def test_logs_tty(tappd_logs):
    st, _, body = get(tappd_logs, "/logs/tty?text&bare&tail=all")
    assert st == 200
    assert body.decode().startswith("red line")
    st, _, body = get(tappd_logs, "/logs/tty?text&bare&ansi&tail=all")
    assert body.startswith(b"\x1b[31mred")
    st, _, body = get(tappd_logs, "/logs/tty?text&tail=all")
    assert json.loads(body.decode().splitlines()[0])["channel"] == "console"


def test_logs_follow(tappd_logs):
    s = socket.create_connection(tappd_logs.external, timeout=10)
    s.sendall(b"GET /logs/web?text&bare&follow&tail=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    t0 = time.time()
    while time.time() - t0 < 3 and got.count(b"tick-") < 5:
        got += s.recv(65536)
    assert got.startswith(b"HTTP/1.1 200")
    assert b"Transfer-Encoding: chunked" in got
    assert got.count(b"tick-") >= 5
    s.close()  # the client goes away mid-stream
    # Several followers at once, dropped abruptly.
    socks = []
    for _ in range(8):
        c = socket.create_connection(tappd_logs.external, timeout=10)
        c.sendall(b"GET /logs/web?follow&tail=5 HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(c)
    time.sleep(0.5)
    for c in socks:
        assert c.recv(65536).startswith(b"HTTP/1.1 200")
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        c.close()
    assert tappd_logs.alive()
    st, _, _ = get(tappd_logs, "/prpc/Worker.Version")
    assert st == 200


def test_logs_errors(tappd_logs):
    st, _, body = get(tappd_logs, "/logs/nosuch?text")
    assert st == 404
    assert "nosuch" in json.loads(body)["error"]
    st, _, body = get(tappd_logs, "/logs/..%2Fweb")
    assert st == 400
    assert tappd_logs.alive()

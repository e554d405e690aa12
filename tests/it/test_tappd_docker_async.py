"""The container list never blocks tappd's event loop: the dashboard, /metrics and
Worker.ListContainers wait for a slow Docker engine (a fake one on a unix socket that answers
after a delay, or never) while other clients are served at once."""
import json
import socket
import threading
import time

import pytest

from test_tappd_common import Tappd, request, rpc, tappd_bin  # noqa: F401

CONTAINERS = [
    {"Id": "a" * 64, "Names": ["/web"], "Image": "nginx:1", "ImageID": "sha256:" + "b" * 64,
     "Command": "nginx -g 'daemon off;'", "Created": 1700000000, "State": "running",
     "Status": "Up 5 minutes"},
    {"Id": "c" * 64, "Names": ["/job"], "Image": "busybox", "ImageID": "sha256:" + "d" * 64,
     "Command": "true", "Created": 1700000001, "State": "exited", "Status": "Exited (0)"},
]


class FakeDocker:
    """Answers GET /containers/json after `delay` seconds (None: never), with `reply` (bytes)."""

    def __init__(self, path, delay=2.0, reply=None):
        self.path = str(path)
        self.delay = delay
        body = json.dumps(CONTAINERS).encode()
        self.reply = reply if reply is not None else (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(body) + body)
        self.requests = []
        self.got = threading.Semaphore(0)
        self.stop_ev = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        with c:
            data = b""
            c.settimeout(10)
            try:
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(4096)
                    if not chunk:
                        return
                    data += chunk
            except OSError:
                return
            self.requests.append(data.split(b"\r\n", 1)[0].decode())
            self.got.release()
            if self.delay is None:
                self.stop_ev.wait(30)
                return
            if self.stop_ev.wait(self.delay):
                return
            try:
                c.sendall(self.reply)
            except OSError:
                pass

    def wait_request(self, timeout=10):
        assert self.got.acquire(timeout=timeout), "tappd did not ask the engine"

    def close(self):
        self.stop_ev.set()
        self.sock.close()
        self.thread.join(5)


def start(tmp_path, delay=2.0, reply=None, sub="t"):
    d = tmp_path / sub
    d.mkdir()
    engine = FakeDocker(d / "docker.sock", delay=delay, reply=reply)
    t = Tappd(d, config=f'[default.core]\ndocker_socket = "{engine.path}"\n'
                        'public_logs = true\npublic_sysinfo = true\n')
    return engine, t


def fast_calls(t):
    """GetKey on dstack.sock and Worker.Version on the external port; returns the slowest time."""
    worst = 0.0
    for _ in range(3):
        t0 = time.monotonic()
        r = rpc(t.dstack_sock, "/GetKey", {"path": "/k", "purpose": "p"})
        assert len(r["key"]) == 64
        worst = max(worst, time.monotonic() - t0)
        t0 = time.monotonic()
        st, _, _ = request(t.external, "GET", "/prpc/Worker.Version")
        assert st == 200
        worst = max(worst, time.monotonic() - t0)
    return worst


@pytest.mark.parametrize("path", ["/", "/metrics", "/prpc/Worker.ListContainers"])
def test_slow_engine_does_not_stall_the_loop(tappd_bin, tmp_path, path):  # noqa: F811
    engine, t = start(tmp_path)
    try:
        fast_calls(t)  # warm up (first GetKey, connections)
        out = {}

        def slow():
            t0 = time.monotonic()
            out["resp"] = request(t.external, "GET", path, timeout=20)
            out["took"] = time.monotonic() - t0

        th = threading.Thread(target=slow)
        th.start()
        engine.wait_request()
        assert fast_calls(t) < 0.2, "a concurrent request waited for the Docker engine"
        th.join(20)
        st, h, body = out["resp"]
        assert st == 200, body[:300]
        assert out["took"] >= 1.5  # it really waited for the engine
        assert engine.requests[-1].startswith("GET /containers/json?all=true ")
        if path == "/":
            assert b'href="/logs/web?text&amp;bare&amp;timestamps&amp;follow"' in body
            assert b"Up 5 minutes" in body and b"Worker Information" in body
        elif path == "/metrics":
            assert b'dstack_containers{state="running"} 1' in body
            assert b'dstack_containers{state="other"} 1' in body
        else:
            assert h["X-App-Version"]
            cs = json.loads(body)["containers"]
            assert [c["names"] for c in cs] == [["/web"], ["/job"]]
            assert cs[0]["id"] == "a" * 64 and cs[0]["created"] == 1700000000
            assert cs[1]["state"] == "exited" and cs[1]["status"] == "Exited (0)"
    finally:
        t.stop()
        engine.close()


def test_list_containers_encodings_and_methods(tappd_bin, tmp_path):  # noqa: F811
    engine, t = start(tmp_path, delay=0)
    try:
        # POST JSON (like GET), POST protobuf (octet-stream), and the other pRPC rules.
        st, h, body = request(t.external, "POST", "/prpc/Worker.ListContainers?json", b"{}")
        assert st == 200 and len(json.loads(body)["containers"]) == 2
        st, h, body = request(t.external, "POST", "/prpc/Worker.ListContainers", b"",
                              {"Content-Type": "application/octet-stream"})
        assert st == 200 and h["Content-Type"] == "application/octet-stream"
        assert b"/web" in body and b"nginx:1" in body and body[0] == 0x0a  # field 1 (containers)
        st, _, body = request(t.external, "PUT", "/prpc/Worker.ListContainers?json", b"{}")
        assert st == 405 and "error" in json.loads(body)
        st, _, _ = request(t.external, "GET", "/prpc/Worker.ListContainersX")
        assert st == 404
        st, _, body = request(t.external, "GET", "/prpc/Worker.Version")
        assert st == 200 and json.loads(body)["version"]
    finally:
        t.stop()
        engine.close()


def test_engine_errors(tappd_bin, tmp_path):  # noqa: F811
    bad = [
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 17\r\n\r\n{\"message\":\"no\"}\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{nope",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[]",  # cut off
    ]
    for i, reply in enumerate(bad):
        engine, t = start(tmp_path, delay=0, reply=reply, sub=f"e{i}")
        try:
            st, _, body = request(t.external, "GET", "/prpc/Worker.ListContainers")
            assert st == 400 and "listing containers" in json.loads(body)["error"]
            st, _, body = request(t.external, "GET", "/")
            assert st == 200 and b"Containers are not available" in body
            st, _, body = request(t.external, "GET", "/metrics")
            assert st == 200 and b"dstack_containers" not in body
            assert b"dstack_uptime_seconds" in body
        finally:
            t.stop()
            engine.close()


def test_engine_never_answers_and_clients_leaving(tappd_bin, tmp_path):  # noqa: F811
    engine, t = start(tmp_path, delay=None)
    try:
        # Clients that give up while tappd waits: their lists are dropped, tappd carries on.
        for path in ("/", "/metrics", "/prpc/Worker.ListContainers"):
            s = socket.create_connection(t.external)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            engine.wait_request()
            s.close()
        # Three waiting at once: all time out after 5 s with a clear answer, in parallel.
        res = {}

        def get(path):
            t0 = time.monotonic()
            res[path] = (request(t.external, "GET", path, timeout=30), time.monotonic() - t0)

        ths = [threading.Thread(target=get, args=(p,))
               for p in ("/", "/metrics", "/prpc/Worker.ListContainers")]
        for th in ths:
            th.start()
        for _ in ths:
            engine.wait_request()
        assert fast_calls(t) < 0.2
        for th in ths:
            th.join(30)
        (st, _, body), took = res["/prpc/Worker.ListContainers"]
        assert st == 400 and "timed out" in json.loads(body)["error"].lower()
        assert 4.5 < took < 10
        (st, _, body), _ = res["/"]
        assert st == 200 and b"Containers are not available" in body
        (st, _, body), _ = res["/metrics"]
        assert st == 200 and b"dstack_containers" not in body
        assert t.alive()
        # Shutting down while lists are pending: a clean exit (stop() checks the status).
        pending = []
        for path in ("/", "/prpc/Worker.ListContainers"):
            s = socket.create_connection(t.external)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            pending.append(s)
            engine.wait_request()
        t.stop()
        for s in pending:
            s.close()
    finally:
        t.stop()
        engine.close()

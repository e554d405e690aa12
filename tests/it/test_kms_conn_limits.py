"""KMS under a flood of idle connections (lib/net/http_server.h, connection limits): 2000 TCP
connections that never start their TLS handshake, from one address or spread over several,
do not keep a legitimate client out, neither one from another address nor one from the flood's
own address (clients behind one NAT address), and the server closes them after
handshake_timeout.
`kms --dev` with its default limits: max_conns 1024, max_conns_per_source 128,
handshake_timeout 5 s (idle_timeout stays 60 s)."""
import errno
import resource
import select
import socket
import ssl
import time

import pytest

from test_kms_common import Kms, Sim, kms_bin  # noqa: F401

FLOOD = 2000
SERVE_S = 1.0  # what "served at once" means for the legitimate client


@pytest.fixture
def nofile():
    """Room for the flood in this process and in the KMS (it inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = FLOOD + 2048
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def sim(tmp_path, tdxctl_path):
    return Sim(tmp_path / "sim")


@pytest.fixture
def kms(tmp_path, sim, kms_bin, nofile):
    k = Kms(tmp_path, sim=sim.dir)
    yield k
    k.stop()


def flood(port, sources, n, chunk=100, timeout=20.0):
    """n TCP connections to 127.0.0.1:port, round-robin over the source addresses, that send
    nothing. Opened `chunk` at a time, so that the listen backlog (511) does not overflow:
    an overflowing connection looks established here but may never reach the server. Returns
    (sockets, how many were established)."""
    socks = []
    established = 0
    deadline = time.monotonic() + timeout
    try:
        for start in range(0, n, chunk):
            batch = []
            for i in range(start, min(n, start + chunk)):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                batch.append(s)
                s.bind((sources[i % len(sources)], 0))
                s.setblocking(False)
                e = s.connect_ex(("127.0.0.1", port))
                assert e in (0, errno.EINPROGRESS), errno.errorcode.get(e, e)
            pending = {s.fileno(): s for s in batch}
            p = select.poll()
            for fd in pending:
                p.register(fd, select.POLLOUT)
            while pending and time.monotonic() < deadline:
                for fd, _ in p.poll(100):
                    s = pending.pop(fd)
                    p.unregister(fd)
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        established += 1
            assert not pending, f"{len(pending)} connects still pending after {timeout} s"
            time.sleep(0.01)  # the server accepts them
        return socks, established
    except BaseException:
        close_all(socks)
        raise


def close_all(socks):
    for s in socks:
        s.close()


def wait_closed(socks, want, timeout):
    """Waits until `want` of socks saw EOF or a reset from the server (they never get data),
    or timeout seconds. Returns the sockets still open."""
    left = {s.fileno(): s for s in socks}
    p = select.poll()
    for fd in left:
        p.register(fd, select.POLLIN)
    closed = 0
    deadline = time.monotonic() + timeout
    while left and closed < want and time.monotonic() < deadline:
        for fd, _ in p.poll(100):
            s = left.pop(fd)
            p.unregister(fd)
            try:
                s.recv(1)
            except OSError:
                pass
            closed += 1
    return list(left.values())


def https_get(kms, path="/", source="127.0.0.1", timeout=10):
    """One HTTPS GET from source; returns (status, body, seconds taken)."""
    ctx = ssl.create_default_context(cafile=str(kms.file("root-ca.cert")))
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", kms.port), timeout=timeout,
                                  source_address=(source, 0)) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: kms\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
    dt = time.monotonic() - t0
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body, dt


def timed_app_key(kms, cert, key, source=None):
    t0 = time.monotonic()
    r = kms.get_app_key(cert, key, interface=source)
    return r, time.monotonic() - t0


def test_idle_flood_from_one_address(kms, sim, tmp_path):
    cert, key, _, _ = sim.cvm(tmp_path / "certs", kms.dir, compose=b"app: flood\n")
    base_key, base_s = timed_app_key(kms, cert, key)  # also warms up the collateral cache
    t_flood = time.monotonic()
    socks, established = flood(kms.port, ["127.0.0.2"], FLOOD)
    try:
        assert established == FLOOD
        # Past the per-source cap (128) each new one from 127.0.0.2 closes the oldest of them
        # at once: the last 128 stay.
        held = wait_closed(socks, FLOOD - 128, 4.0)
        assert len(held) == 128, f"{len(held)} flood connections kept"
        st, body, dt = https_get(kms)
        assert st == 200 and body.startswith(b"KMS Server is running!"), body[:200]
        assert dt < SERVE_S, f"GET / took {dt:.3f} s with {FLOOD} idle connections open"
        r, dt_key = timed_app_key(kms, cert, key)
        assert r["disk_crypt_key"] == base_key["disk_crypt_key"]
        assert dt_key < SERVE_S, f"GetAppKey took {dt_key:.3f} s (idle server: {base_s:.3f} s)"
        print(f"\n{FLOOD} idle from one address: GET / {dt:.3f} s, GetAppKey {dt_key:.3f} s "
              f"(without the flood {base_s:.3f} s)")
        # The kept ones are closed after handshake_timeout (5 s), not idle_timeout (60 s).
        left = wait_closed(held, len(held), t_flood + 9.0 - time.monotonic())
        assert not left, f"{len(left)} idle connections still open 9 s after the flood"
    finally:
        close_all(socks)
    assert kms.alive()


def test_idle_flood_same_address_client(kms, sim, tmp_path):
    """127.0.0.2 holds its whole share (128) in idle connections: a legitimate client from the
    same address (another CVM behind the same NAT) is served at once, each of its connections
    closing one of the flood's (the one idle the longest), not refused."""
    cert, key, _, _ = sim.cvm(tmp_path / "certs", kms.dir, compose=b"app: same-address\n")
    base_key, base_s = timed_app_key(kms, cert, key, source="127.0.0.2")  # warms the cache
    socks, established = flood(kms.port, ["127.0.0.2"], FLOOD)
    try:
        assert established == FLOOD
        held = wait_closed(socks, FLOOD - 128, 4.0)
        assert len(held) == 128, f"{len(held)} flood connections kept"
        st, body, dt = https_get(kms, source="127.0.0.2")
        assert st == 200 and body.startswith(b"KMS Server is running!"), body[:200]
        assert dt < SERVE_S, f"GET / from the flood's address took {dt:.3f} s"
        # Room was made by closing exactly one of the flood's connections.
        held = wait_closed(held, 1, 1.0)
        assert len(held) == 127, f"{len(held)} flood connections kept after GET /"
        assert len(wait_closed(held, 1, 0.2)) == 127
        # GET / closed its connection: the flood takes the slot back (closing nobody).
        more, n = flood(kms.port, ["127.0.0.2"], 1)
        socks += more
        assert n == 1
        held += more
        assert len(wait_closed(held, 1, 0.2)) == 128
        r, dt_key = timed_app_key(kms, cert, key, source="127.0.0.2")
        assert r["disk_crypt_key"] == base_key["disk_crypt_key"]
        assert dt_key < SERVE_S, f"GetAppKey took {dt_key:.3f} s (idle server: {base_s:.3f} s)"
        held = wait_closed(held, 1, 1.0)
        assert len(held) == 127, f"{len(held)} flood connections kept after GetAppKey"
        assert more[0] in held  # the oldest went, not the newest
        print(f"\n{FLOOD} idle from 127.0.0.2, client from 127.0.0.2: GET / {dt:.3f} s, "
              f"GetAppKey {dt_key:.3f} s (without the flood {base_s:.3f} s)")
    finally:
        close_all(socks)
    assert kms.alive()


@pytest.fixture
def kms_slow_deadline(tmp_path, sim, kms_bin, nofile):
    """handshake_timeout 30 s: the flood stays until room is made for others."""
    k = Kms(tmp_path, sim=sim.dir, config="handshake_timeout = 30\n")
    yield k
    k.stop()


def test_idle_flood_fills_server(kms_slow_deadline, sim, tmp_path):
    """16 addresses x 125 connections, each address under its share: the server fills up with
    idle connections (1024) and every new one, the flood's or a client's, makes room by closing
    the one idle the longest."""
    kms = kms_slow_deadline
    cert, key, _, _ = sim.cvm(tmp_path / "certs", kms.dir, compose=b"app: full\n")
    base_key, base_s = timed_app_key(kms, cert, key)
    sources = [f"127.0.1.{i}" for i in range(1, 17)]
    socks, established = flood(kms.port, sources, FLOOD)
    try:
        assert established == FLOOD
        held = wait_closed(socks, FLOOD - 1024, 10.0)
        assert len(held) == 1024, f"{len(held)} flood connections kept"
        st, body, dt = https_get(kms)
        assert st == 200 and body.startswith(b"KMS Server is running!"), body[:200]
        assert dt < SERVE_S, f"GET / took {dt:.3f} s with the server full of idle connections"
        # Room was made by closing one flood connection.
        assert len(wait_closed(held, 1, 1.0)) == 1023
        r, dt_key = timed_app_key(kms, cert, key)
        assert r["disk_crypt_key"] == base_key["disk_crypt_key"]
        assert dt_key < SERVE_S, f"GetAppKey took {dt_key:.3f} s (idle server: {base_s:.3f} s)"
        print(f"\n{FLOOD} idle from 16 addresses, server full: GET / {dt:.3f} s, "
              f"GetAppKey {dt_key:.3f} s (without the flood {base_s:.3f} s)")
    finally:
        close_all(socks)
    assert kms.alive()

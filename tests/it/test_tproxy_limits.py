"""tproxy under descriptor pressure: a flood of held passthrough connections to one app must not
starve the other apps or the RPC port, nor make tproxy spin on a listener it cannot accept from;
max_conns beyond what RLIMIT_NOFILE allows is clamped with a warning."""
import os
import re
import socket
import ssl
import subprocess
import threading
import time

import pytest

from tproxy_common import BASE, TPROXY, curl
from test_tproxy import backend, env  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not TPROXY.exists(), reason=f"tproxy not built at {TPROXY}")

LIMIT = 256     # RLIMIT_NOFILE for the tproxy under test: ~40 passthrough connections fill it
FLOOD = 60      # passthrough connections the flood opens (held open until the test ends)
SLOW = 30       # and connections that send only the start of their ClientHello
CPU_MAX = 0.2   # share of one core tproxy may use while the pressure lasts


class Holder:
    """A TCP backend that accepts and holds every connection (a passthrough app that never
    answers), bounded by its own count."""

    def __init__(self, addr, port, most=4 * FLOOD):
        self.ls = socket.create_server((addr, port), backlog=512)
        self.ls.settimeout(0.2)
        self.conns, self.most, self.stop = [], most, False
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        while not self.stop and len(self.conns) < self.most:
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.stop = True
        self.th.join(timeout=5)
        for c in self.conns:
            c.close()
        self.ls.close()


def client_hello(host):
    """The bytes of a ClientHello for host."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=host)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def hello(port, host, partial=False):
    """Connects and sends a ClientHello for host (partial: only its first bytes, as a slow
    client does), then holds the socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    data = client_hello(host)
    s.sendall(data[:16] if partial else data)
    return s


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def cpu_share(pid, seconds):
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0


def health(t):
    return curl(["--cacert", str(t.pki.path("ca.cert")), "--resolve",
                 f"localhost:{t.rpc_port}:127.0.0.1", f"https://localhost:{t.rpc_port}/health"],
                timeout=1)


def fetch(t, host, timeout=1):
    return curl(["--resolve", f"{host}:{t.proxy_port}:127.0.0.1", "--cacert",
                 str(t.pki.path("wild.cert")), f"https://{host}:{t.proxy_port}/"], timeout=timeout)


def log_lines(t):
    return t.log().count("\n")


def test_fd_pressure_spares_other_apps_and_rpc(env):
    """Held passthrough connections to app a, and a few more whose ClientHello never completes
    (one descriptor each: what leaves exactly none), against a tproxy limited to LIMIT
    descriptors. Before the fix the process ran out of descriptors and its listeners spun."""
    t = env.tproxy(wrap=["prlimit", f"--nofile={LIMIT}:{LIMIT}"])
    a = env.cvm("a", sim_dir=env.sim, compose=b"app a")
    b = env.cvm("b", sim_dir=env.sim, compose=b"app b")
    ipa = t.register(a)["wg"]["client_ip"]
    ipb = t.register(b)["wg"]["client_ip"]
    hold = Holder(ipa, 9443)
    backend(env, ipb, 80, "app b")
    name_a = f"{a.app_id}-9443s.{BASE}"
    flood = []
    try:
        for i in range(FLOOD + SLOW):
            try:
                flood.append(hello(t.proxy_port, name_a, partial=i >= FLOOD))
            except OSError:
                pass
        time.sleep(0.5)  # the flood is accepted (or not) meanwhile
        (st, body, err), dt_rpc = timed(lambda: health(t))
        (st_b, body_b, err_b), dt_b = timed(lambda: fetch(t, f"{b.app_id}.{BASE}"))
        nfd = len(os.listdir(f"/proc/{t.proc.pid}/fd"))
        lines0 = log_lines(t)
        cpu = cpu_share(t.proc.pid, 2.0)
        lines = log_lines(t) - lines0
        print(f"cpu {cpu:.1%}, log lines {lines} in 2 s, rpc {dt_rpc:.3f}s ({st}), "
              f"app b {dt_b:.3f}s ({st_b}), held {len(hold.conns)}, fds {nfd}/{LIMIT}")
        assert cpu < CPU_MAX, f"tproxy used {cpu:.0%} of a core under descriptor pressure"
        assert lines < 50, f"{lines} log lines in 2 s:\n{t.log()[-2000:]}"
        assert st == 200 and dt_rpc < 1.0, (st, dt_rpc, err)
        assert st_b == 200 and body_b.startswith(b"app b") and dt_b < 1.0, (st_b, dt_b, err_b)
        assert nfd < LIMIT - 32  # the reserve is untouched
        m = t.metrics()
        cap = m["tproxy_connections_max"]
        assert 0 < cap * 6 < LIMIT
        # app a holds what its share allows; the rest of the flood was refused at once
        assert 0 < len(hold.conns) <= m["tproxy_connections_max_per_app"] < cap
        assert m['tproxy_connections_closed_total{reason="app_full"}'] >= FLOOD - cap
        assert m['tproxy_connections_closed_total{reason="pending_full"}'] >= 1
    finally:
        for s in flood:
            s.close()
        hold.close()
    # the default max_conns (16384) does not fit in 256 descriptors: lowered, said once
    log = t.log()
    assert len(re.findall(r"max_conns 16384 .*RLIMIT_NOFILE 256", log)) == 1, log[-3000:]
    # once the flood is gone, the slots come back
    deadline = time.time() + 10
    while t.metrics()["tproxy_connections_active"] > 0 and time.time() < deadline:
        time.sleep(0.2)
    assert t.metrics()["tproxy_connections_active"] == 0
    st, body, err = t.get(f"{b.app_id}.{BASE}")
    assert st == 200, err


def test_accept_backs_off_when_out_of_descriptors(env):
    """The descriptor limit drops below what tproxy holds (as when something else in the
    process leaks): accept fails with EMFILE; tproxy pauses accepting instead of spinning,
    logs it rate-limited, and accepts again once descriptors are back."""
    t = env.tproxy()
    a = env.cvm("a", sim_dir=env.sim)
    ip = t.register(a)["wg"]["client_ip"]
    backend(env, ip, 80, "app a")
    host = f"{a.app_id}.{BASE}"
    st, body, err = fetch(t, host, timeout=10)
    assert st == 200, err
    pid = t.proc.pid
    hard = 20000
    nfd = len(os.listdir(f"/proc/{pid}/fd"))
    subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={nfd}:{hard}"], check=True, timeout=10)
    flood = []
    try:
        for _ in range(20):
            flood.append(hello(t.proxy_port, host))
        time.sleep(1.0)
        lines0 = log_lines(t)
        cpu = cpu_share(pid, 2.0)
        lines = log_lines(t) - lines0
        print(f"cpu {cpu:.1%}, log lines {lines} in 2 s")
        assert cpu < CPU_MAX, f"tproxy used {cpu:.0%} of a core while accept fails"
        assert lines < 20, f"{lines} log lines in 2 s:\n{t.log()[-2000:]}"
        assert "Too many open files" in t.log()
    finally:
        subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={hard}:{hard}"], check=True,
                       timeout=10)
        for s in flood:
            s.close()
    # descriptors are back: accepting resumes within the back-off
    (st, body, err), dt = timed(lambda: fetch(t, host, timeout=2))
    assert st == 200 and body.startswith(b"app a") and dt < 1.5, (st, dt, err)
    m = t.metrics()
    assert m["tproxy_accept_paused_total"] >= 1


def test_max_conns_clamped_to_the_descriptor_limit(env):
    t = env.tproxy(start=False, extra="max_conns = 100000\n")
    cfg = str(t.dir / "tproxy.toml")
    p = subprocess.run(["prlimit", f"--nofile={LIMIT}:{LIMIT}", str(TPROXY), "-c", cfg,
                        "--check-config"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    m = re.search(r"\[core.proxy\] max_conns 100000 .*RLIMIT_NOFILE.*256.*using (\d+)", err)
    assert m and 0 < int(m.group(1)) * 6 < LIMIT, err
    # far too few descriptors to serve at all: refused with a clear message
    p = subprocess.run(["prlimit", "--nofile=40:40", str(TPROXY), "-c", cfg, "--check-config"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    err = p.stderr.decode()
    assert p.returncode == 3 and "RLIMIT_NOFILE" in err and "40" in err, err

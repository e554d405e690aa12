"""Network harness for the tproxy integration tests (no tests here).

A `Topology` is a set of uniquely named network namespaces: one "gw" namespace, where tproxy
runs, and N "cvm" namespaces, each joined to gw by a veth pair on its own /30 of 172.31.0.0/16
(the "public" network: cvm i reaches tproxy at `topo.gw_ip(i)` and is itself `topo.cvm_ip(i)`).
It starts userspace WireGuard (`wireguard-go`), HTTP/HTTPS/h2c backends and an authoritative
DNS server (knotd) inside the namespaces, and removes every namespace, veth, WireGuard socket
and process it made when it is closed, also when the test failed.

Names: every namespace and WireGuard interface name starts with `topo.prefix`,
`dsq<pid%10000 as 4 digits><letters>` (e.g. `dsq0421a`), so parallel runs and several
topologies in one run do not collide. wireguard-go's control (UAPI) sockets are
`/var/run/wireguard/<ifname>.sock` (`WG_RUN_DIR`) for every namespace alike, which is why an
interface name must be globally unique: `topo.ifname("wg0")` gives `<prefix>wg0`, and the
`wg_*` methods prefix a name that does not start with the prefix already. Linux limits
interface names to 15 characters, so keep suffixes to 6.

Everything that waits is bounded in time and fails with an AssertionError that includes the
relevant log. Logs of the processes started here are files in the topology's temp dir.

Use:

    from tproxy_topo import topo, require   # `topo` is a pytest fixture: Topology(n_cvms=2)

    def test_x(topo):
        priv, pub = wg_genkey()
        ...

or `with Topology(n_cvms=1, tmp=tmp_path) as t: ...`.
"""
import atexit
import ctypes
import ipaddress
import itertools
import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from conftest import free_port  # noqa: F401  (below the ephemeral range: no bind races)

WG_RUN_DIR = pathlib.Path("/var/run/wireguard")
NETNS_DIR = pathlib.Path("/var/run/netns")
PY = sys.executable or "/usr/bin/python3"
IFNAMSIZ = 15
CLONE_NEWNET = 0x40000000

_counter = itertools.count()
_prefix_lock = threading.Lock()


# ---------------------------------------------------------------------------------------------
# requirements

def missing_tools(*tools):
    return [t for t in tools if shutil.which(t) is None]


def require(*tools, root=True):
    """pytest.skip unless running as root and every tool is on PATH (default set: ip,
    wireguard-go, wg)."""
    tools = tools or ("ip", "wireguard-go", "wg")
    if root and os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, TUN devices)")
    miss = missing_tools(*tools)
    if miss:
        pytest.skip(f"missing tools: {', '.join(miss)}")


# ---------------------------------------------------------------------------------------------
# running things in a namespace (ns=None means the test's own namespace)

def ns_argv(ns, argv):
    argv = [str(a) for a in argv]
    return ["ip", "netns", "exec", ns, *argv] if ns else argv


def ns_run(ns, argv, timeout=30, check=True, input=None, text=True, env=None, **kw):
    """subprocess.run(argv) inside namespace ns with stdout/stderr captured. Raises
    AssertionError (with stderr) on a non-zero exit when check, subprocess.TimeoutExpired
    after timeout seconds. env entries are added to the current environment."""
    e = dict(os.environ)
    if env:
        e.update(env)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    if input is not None and text and isinstance(input, bytes):
        text = False
    p = subprocess.run(ns_argv(ns, argv), input=input, text=text, env=e, timeout=timeout, **kw)
    if check and p.returncode != 0:
        err = p.stderr if isinstance(p.stderr, str) else (p.stderr or b"").decode(errors="replace")
        raise AssertionError(f"[{ns or 'default ns'}] {' '.join(map(str, argv))} exited "
                             f"{p.returncode}: {err.strip()}")
    return p


def ns_popen(ns, argv, env=None, **kw):
    """subprocess.Popen(argv) inside namespace ns (`ip netns exec` execs the command, so the
    Popen pid is the command's own pid). Not tracked: use Topology.ns_popen for processes that
    must be stopped at cleanup. env entries are added to the current environment."""
    e = dict(os.environ)
    if env:
        e.update(env)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(ns_argv(ns, argv), env=e, **kw)


_libc = None


def _setns(ns):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / ns, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns({ns}): {os.strerror(e)}")
    finally:
        os.close(fd)


def ns_socket(ns, family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0):
    """A socket of this process that belongs to namespace ns (made on a short-lived thread
    that joined ns; a socket keeps its namespace for life). ns=None: an ordinary socket."""
    if not ns:
        return socket.socket(family, type, proto)
    out = {}

    def mk():
        try:
            _setns(ns)
            out["s"] = socket.socket(family, type, proto)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            out["e"] = e

    t = threading.Thread(target=mk, daemon=True)
    t.start()
    t.join(10)
    if "e" in out:
        raise out["e"]
    if "s" not in out:
        raise AssertionError(f"could not make a socket in namespace {ns}")
    return out["s"]


def ns_connect(ns, host, port, timeout=5):
    """A TCP socket connected from namespace ns to host:port (raises OSError on failure)."""
    fam = socket.AF_INET6 if ":" in str(host) else socket.AF_INET
    s = ns_socket(ns, fam, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect((str(host), int(port)))
        return s
    except BaseException:
        s.close()
        raise


def _connect_host(host):
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(str(host), str(host))


def wait_port(ns, host, port, timeout=10, proc=None, what=None):
    """Waits (at most timeout s) until a TCP connect from namespace ns to host:port succeeds
    (0.0.0.0 means 127.0.0.1). Fails early if proc (a Popen / Proc) has exited."""
    host = _connect_host(host)
    deadline = time.time() + timeout
    last = None
    while True:
        if proc is not None and proc.poll() is not None:
            log = proc.log() if hasattr(proc, "log") else ""
            raise AssertionError(f"{what or 'process'} exited {proc.poll()} before "
                                 f"{host}:{port} accepted connections in {ns}:\n{log[-3000:]}")
        try:
            ns_connect(ns, host, port, timeout=max(0.2, min(1.0, deadline - time.time()))).close()
            return
        except OSError as e:
            last = e
        if time.time() >= deadline:
            log = proc.log()[-3000:] if hasattr(proc, "log") else ""
            raise AssertionError(f"{what or 'nothing'} on {host}:{port} in {ns or 'default ns'} "
                                 f"after {timeout}s: {last}\n{log}")
        time.sleep(0.05)


def _icmp_checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ping(ns, addr, count=1, timeout=10, interval=0.2):
    """ICMP echo (IPv4) from namespace ns to addr with a raw socket: sends a request every
    interval s until count replies came back or timeout s passed; returns the number of
    replies (WireGuard may lose the first packets until the handshake is done)."""
    s = ns_socket(ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = (os.getpid() ^ next(_counter)) & 0xFFFF
    got = set()
    seq = 0
    deadline = time.time() + timeout
    try:
        next_send = 0.0
        while len(got) < count and time.time() < deadline:
            now = time.time()
            if now >= next_send:
                seq += 1
                hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
                payload = b"dstack-topo-ping"
                pkt = struct.pack("!BBHHH", 8, 0, _icmp_checksum(hdr + payload), ident,
                                  seq) + payload
                try:
                    s.sendto(pkt, (str(addr), 0))
                except OSError:
                    pass  # e.g. no route yet
                next_send = now + interval
            s.settimeout(max(0.01, min(next_send, deadline) - time.time()))
            try:
                data, src = s.recvfrom(2048)
            except (socket.timeout, BlockingIOError):
                continue
            ihl = (data[0] & 0x0F) * 4
            typ, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if typ == 0 and rid == ident and src[0] == str(addr):
                got.add(rseq)
    finally:
        s.close()
    return len(got)


# ---------------------------------------------------------------------------------------------
# WireGuard helpers that need no topology

def wg_genkey():
    """(private_b64, public_b64) from `wg genkey` / `wg pubkey` (keys pass on stdin/stdout)."""
    priv = subprocess.run(["wg", "genkey"], stdout=subprocess.PIPE, check=True, timeout=10,
                          text=True).stdout.strip()
    pub = subprocess.run(["wg", "pubkey"], input=priv + "\n", stdout=subprocess.PIPE,
                         check=True, timeout=10, text=True).stdout.strip()
    return priv, pub


def wg_pubkey(priv_b64):
    return subprocess.run(["wg", "pubkey"], input=priv_b64 + "\n", stdout=subprocess.PIPE,
                          check=True, timeout=10, text=True).stdout.strip()


def write_secret(path, data):
    """Writes data (str/bytes) to path with mode 0600 (created 0600, never world-readable)."""
    path = pathlib.Path(path)
    if isinstance(data, str):
        data = data.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data if data.endswith(b"\n") else data + b"\n")
    finally:
        os.close(fd)
    return path


def wg_sock(ifname):
    """Path of wireguard-go's UAPI socket of ifname (same for every namespace)."""
    return WG_RUN_DIR / f"{ifname}.sock"


def wg_uapi(ifname, request, timeout=5):
    """Sends a text UAPI request ("get=1\\n\\n" or "set=1\\n...\\n\\n"; the final blank line is
    added when missing) to ifname's socket and returns the reply text (ends with errno=N for
    set, or the key=value dump then errno=0 for get)."""
    if not request.endswith("\n\n"):
        request = request.rstrip("\n") + "\n\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(wg_sock(ifname)))
        s.sendall(request.encode())
        buf = b""
        while not buf.endswith(b"\n\n"):
            c = s.recv(65536)
            if not c:
                break
            buf += c
    return buf.decode()


def wg_peer(ns, ifname, pubkey, allowed_ips, endpoint=None, keepalive=None,
            preshared_key_file=None, remove=False):
    """`wg set ifname peer pubkey allowed-ips ... [endpoint host:port]
    [persistent-keepalive N] [preshared-key FILE]` (or `remove`). allowed_ips: str or list."""
    if remove:
        return ns_run(ns, ["wg", "set", ifname, "peer", pubkey, "remove"])
    if not isinstance(allowed_ips, str):
        allowed_ips = ",".join(map(str, allowed_ips))
    argv = ["wg", "set", ifname, "peer", pubkey, "allowed-ips", allowed_ips]
    if endpoint:
        argv += ["endpoint", endpoint if isinstance(endpoint, str)
                 else f"{endpoint[0]}:{endpoint[1]}"]
    if keepalive is not None:
        argv += ["persistent-keepalive", str(keepalive)]
    if preshared_key_file:
        argv += ["preshared-key", str(preshared_key_file)]
    return ns_run(ns, argv)


def wg_dump(ns, ifname):
    """`wg show ifname dump` parsed: {"private_key", "public_key", "listen_port", "fwmark",
    "peers": {pubkey: {"preshared_key", "endpoint", "allowed_ips" (list),
    "latest_handshake" (int), "rx", "tx", "keepalive"}}}."""
    lines = ns_run(ns, ["wg", "show", ifname, "dump"]).stdout.splitlines()
    f = lines[0].split("\t")
    out = {"private_key": f[0], "public_key": f[1], "listen_port": int(f[2]), "fwmark": f[3],
           "peers": {}}
    for ln in lines[1:]:
        p = ln.split("\t")
        out["peers"][p[0]] = {
            "preshared_key": p[1], "endpoint": None if p[2] == "(none)" else p[2],
            "allowed_ips": [] if p[3] == "(none)" else p[3].split(","),
            "latest_handshake": int(p[4]), "rx": int(p[5]), "tx": int(p[6]), "keepalive": p[7]}
    return out


def wait_handshake(ns, ifname, pubkey, timeout=15):
    """Waits (bounded) until ifname has completed a handshake with peer pubkey."""
    deadline = time.time() + timeout
    while True:
        peer = wg_dump(ns, ifname)["peers"].get(pubkey)
        if peer and peer["latest_handshake"] > 0:
            return peer
        if time.time() >= deadline:
            raise AssertionError(f"no WireGuard handshake on {ifname} with {pubkey} after "
                                 f"{timeout}s: {peer}")
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# certificates (for tls_backend and tproxy's certs)

def make_cert(directory, names, ca=None, name="cert", days=30):
    """Writes <name>.pem and <name>.key (0600, EC P-256) into directory: a certificate for the
    DNS names / IP addresses in names (first one is the CN; "*.x" wildcards allowed), signed by
    ca=(ca_cert_path, ca_key_path) or self-signed when ca is None. Returns (cert_path,
    key_path). make_cert(d, ["Test CA"], name="ca", ca="self-ca") makes a CA."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = [names] if isinstance(names, str) else list(names)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    is_ca = ca == "self-ca"
    if ca and not is_ca:
        ca_cert = x509.load_pem_x509_certificate(pathlib.Path(ca[0]).read_bytes())
        ca_key = serialization.load_pem_private_key(pathlib.Path(ca[1]).read_bytes(), None)
        issuer = ca_cert.subject
    else:
        ca_key, issuer = key, subject
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=days)))
    if is_ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                          False), critical=True)
    else:
        sans = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    cert = b.sign(ca_key, hashes.SHA256())
    cp, kp = directory / f"{name}.pem", directory / f"{name}.key"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_secret(kp, key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return cp, kp


# ---------------------------------------------------------------------------------------------
# curl

class Resp:
    """status (0 when curl failed: see rc/stderr), http_version ("1.1", "2"), headers (dict,
    lower-case names, last value wins), body (bytes), text, rc, stderr."""

    def __init__(self, status, http_version, headers, body, rc, stderr):
        self.status, self.http_version, self.headers = status, http_version, headers
        self.body, self.rc, self.stderr = body, rc, stderr

    @property
    def text(self):
        return self.body.decode(errors="replace")

    def __repr__(self):
        return (f"Resp(status={self.status}, http={self.http_version}, rc={self.rc}, "
                f"headers={self.headers}, body={self.body[:200]!r}, stderr={self.stderr!r})")


def curl(ns, url, *args, timeout=15):
    """curl -sS url [args...] from namespace ns (e.g. "--resolve", "h:443:1.2.3.4", "--cacert",
    ca, "--http2-prior-knowledge", "-H", "Host: x"). Returns a Resp; never raises on HTTP or
    connection errors (status 0, rc != 0)."""
    with tempfile.TemporaryDirectory(prefix="dsqcurl") as d:
        hp, bp = pathlib.Path(d, "h"), pathlib.Path(d, "b")
        argv = ["curl", "-sS", "--max-time", str(timeout), "-D", hp, "-o", bp,
                "-w", "%{http_code} %{http_version}", *args, url]
        p = ns_run(ns, argv, timeout=timeout + 10, check=False)
        code, _, ver = p.stdout.strip().partition(" ")
        headers = {}
        if hp.exists():
            for ln in hp.read_text(errors="replace").splitlines():
                if ":" in ln and not ln.startswith("HTTP/"):
                    k, _, v = ln.partition(":")
                    headers[k.strip().lower()] = v.strip()
        body = bp.read_bytes() if bp.exists() else b""
        return Resp(int(code) if code.isdigit() else 0, ver, headers, body, p.returncode,
                    p.stderr.strip())


# ---------------------------------------------------------------------------------------------
# processes

class Proc:
    """A process started in a namespace with stdout+stderr going to a log file."""

    def __init__(self, ns, argv, logfile, env=None, what=None, stop_signal=signal.SIGTERM,
                 **kw):
        self.ns, self.argv, self.what = ns, [str(a) for a in argv], what or str(argv[0])
        self.logfile = pathlib.Path(logfile)
        self.stop_signal = stop_signal
        self._log = open(self.logfile, "ab")
        try:
            self.popen = ns_popen(ns, argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                  **kw)
        except BaseException:
            self._log.close()
            raise
        self.pid = self.popen.pid

    def poll(self):
        return self.popen.poll()

    def alive(self):
        return self.popen.poll() is None

    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout=5):
        """stop_signal, then SIGKILL after timeout s; returns the exit code."""
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(self.stop_signal)
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
            except ProcessLookupError:
                pass
        if not self._log.closed:
            self._log.close()
        return self.popen.returncode

    close = stop


class WgIface:
    """A wireguard-go interface: name, ns, sock (UAPI socket path), proc (Proc), address."""

    def __init__(self, topo, ns, name, proc):
        self.topo, self.ns, self.name, self.proc = topo, ns, name, proc
        self.sock = wg_sock(name)
        self.address = None

    def peer(self, pubkey, allowed_ips, endpoint=None, keepalive=None, **kw):
        return wg_peer(self.ns, self.name, pubkey, allowed_ips, endpoint, keepalive, **kw)

    def dump(self):
        return wg_dump(self.ns, self.name)

    def uapi(self, request):
        return wg_uapi(self.name, request)

    def log(self):
        return self.proc.log()

    def close(self):
        rc = self.proc.stop()
        try:
            self.sock.unlink()  # left behind after SIGKILL
        except FileNotFoundError:
            pass
        return rc

    stop = close


class Backend:
    """A backend server: ns, addr, port, url, proc; log(), stop()."""

    def __init__(self, ns, addr, port, proc, scheme, conf_dir=None):
        self.ns, self.addr, self.port, self.proc, self.scheme = ns, addr, port, proc, scheme
        self.conf_dir = conf_dir
        h = _connect_host(addr)
        self.url = f"{scheme}://{'[' + h + ']' if ':' in h else h}:{port}/"

    def log(self):
        s = self.proc.log()
        if self.conf_dir:
            for n in ("error.log", "access.log"):
                p = pathlib.Path(self.conf_dir, n)
                if p.exists():
                    s += f"\n--- {n}\n" + p.read_text(errors="replace")
        return s

    def alive(self):
        return self.proc.alive()

    def poll(self):
        return self.proc.poll()

    def stop(self):
        return self.proc.stop()

    close = stop


_HTTP_SERVER = r'''
import http.server, socket, socketserver, ssl, sys
addr, port, body_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cert, key = sys.argv[4], sys.argv[5]
body = open(body_file, "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def _reply(self, send_body=True):
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Echo-Host", self.headers.get("Host", ""))
        self.send_header("X-Echo-Path", self.path)
        self.send_header("X-Echo-Method", self.command)
        self.send_header("X-Echo-Client", self.client_address[0])
        self.send_header("X-Echo-Body-Length", str(len(data)))
        sni = getattr(self.connection, "dsq_sni", None)
        if cert:
            self.send_header("X-Echo-Sni", sni or "")
        self.end_headers()
        if send_body:
            self.wfile.write(body)
    do_GET = do_POST = do_PUT = do_DELETE = _reply
    def do_HEAD(self):
        self._reply(False)
    def log_message(self, fmt, *a):
        sys.stderr.write("%s %s\n" % (self.client_address[0], fmt % a))
        sys.stderr.flush()
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    allow_reuse_address = True
    daemon_threads = True
    def server_bind(self):  # HTTPServer's does a reverse DNS lookup (getfqdn): no DNS here
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = addr, self.server_address[1]
    def handle_error(self, request, client_address):
        sys.stderr.write("error from %s: %s\n" % (client_address, sys.exc_info()[1]))
        sys.stderr.flush()
srv = S((addr, port), H)
if cert:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    def cb(sock, name, c):
        sock.dsq_sni = name
    ctx.sni_callback = cb
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
print("listening %s:%d" % (addr, srv.server_address[1]), flush=True)
srv.serve_forever()
'''

_NGINX_CONF = """\
user root root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen {listen} http2;
        root {d}/www;
        location / {{
            default_type text/plain;
            add_header X-Echo-Host $host always;
            add_header X-Echo-Path $request_uri always;
            add_header X-Echo-Client $remote_addr always;
            add_header X-Http2 $http2 always;
            try_files /body =404;
        }}
    }}
}}
"""


# ---------------------------------------------------------------------------------------------
# knot

def _txt_rdata(value):
    """A TXT rdata in zone-file syntax: the value split in <=255-byte quoted strings."""
    b = value.encode() if isinstance(value, str) else bytes(value)
    parts = [b[i:i + 255] for i in range(0, len(b), 255)] or [b""]
    out = []
    for p in parts:
        s = ""
        for c in p:
            if c in (0x22, 0x5C):
                s += "\\" + chr(c)
            elif 0x20 <= c < 0x7F:
                s += chr(c)
            else:
                s += f"\\{c:03d}"
        out.append(f'"{s}"')
    return " ".join(out)


def parse_txt(line):
    """kdig +short TXT output line ('"a" "b"') -> the concatenated string."""
    out, i, inq = bytearray(), 0, False
    while i < len(line):
        c = line[i]
        if not inq:
            if c == '"':
                inq = True
            i += 1
            continue
        if c == '"':
            inq = False
        elif c == "\\":
            nxt = line[i + 1:i + 4]
            if nxt[:3].isdigit() and len(nxt) == 3:
                out.append(int(nxt))
                i += 3
            else:
                out += line[i + 1].encode()
                i += 1
        else:
            out += c.encode()
        i += 1
    return out.decode(errors="replace")


class KnotDns:
    """Authoritative knotd for zone_name on address:port (default 127.0.0.1:free_port()) in
    namespace ns (None: the test's own namespace), with config, zone file, storage, rundir and
    control socket in a temp dir, running as root.

    records: {name: txt_value_or_list} for TXT records, or an iterable of (name, rtype, rdata)
    tuples (zone-file rdata syntax). Names are relative to the zone ("_tapp-address.foo" or
    "@"), or absolute with a trailing dot. SOA, NS ns1 and ns1 A 127.0.0.1 are always there.

    set_txt(name, value) / add / delete change the records; reload() writes the zone with a
    new serial, runs `knotc zone-reload` and waits until the new serial is served."""

    def __init__(self, zone_name, records=None, port=None, ns=None, address="127.0.0.1",
                 tmp=None, ttl=1):
        self.zone = zone_name.rstrip(".").lower()
        self.port = int(port or free_port())
        self.ns, self.address, self.ttl = ns, address, ttl
        self._own_tmp = tmp is None
        self.dir = pathlib.Path(tmp or tempfile.mkdtemp(prefix="dsqknot"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.records = {}
        self.serial = int(time.time()) % 1000000000
        if isinstance(records, dict):
            for n, v in records.items():
                self.set_txt(n, v)
        else:
            for n, t, r in records or ():
                self.add(n, t, r)
        self.proc = None
        self.start()

    # names / records
    def fqdn(self, name):
        name = str(name)
        if name in ("@", ""):
            return self.zone + "."
        if name.endswith("."):
            return name.lower()
        n = name.lower()
        if n == self.zone or n.endswith("." + self.zone):
            return n + "."
        return f"{n}.{self.zone}."

    def set_txt(self, name, value):
        """Replaces the TXT records of name with value (str, or a list for several records)."""
        vals = [value] if isinstance(value, (str, bytes)) else list(value)
        self.records[(self.fqdn(name), "TXT")] = [_txt_rdata(v) for v in vals]

    def add(self, name, rtype, rdata):
        self.records.setdefault((self.fqdn(name), rtype.upper()), []).append(str(rdata))

    def delete(self, name, rtype=None):
        n = self.fqdn(name)
        for k in [k for k in self.records if k[0] == n and (rtype is None
                                                             or k[1] == rtype.upper())]:
            del self.records[k]

    # files
    @property
    def conf(self):
        return self.dir / "knot.conf"

    @property
    def zone_file(self):
        return self.dir / "zones" / f"{self.zone}.zone"

    def _control_sock(self):
        p = self.dir / "run" / "knot.sock"
        if len(str(p)) > 100:  # sun_path limit
            if not hasattr(self, "_short_run"):
                self._short_run = pathlib.Path(tempfile.mkdtemp(prefix="dsqk"))
            p = self._short_run / "knot.sock"
        return p

    def _write_zone(self):
        z = self.zone + "."
        lines = [f"$ORIGIN {z}", f"$TTL {self.ttl}",
                 f"@ {self.ttl} IN SOA ns1.{z} hostmaster.{z} {self.serial} 3600 600 86400 1",
                 f"@ {self.ttl} IN NS ns1.{z}", f"ns1.{z} {self.ttl} IN A 127.0.0.1"]
        for (n, t), vals in sorted(self.records.items()):
            for v in vals:
                lines.append(f"{n} {self.ttl} IN {t} {v}")
        self.zone_file.parent.mkdir(exist_ok=True)
        tmp = self.zone_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.zone_file)

    def _write_conf(self):
        for d in ("db", "run", "zones"):
            (self.dir / d).mkdir(exist_ok=True)
        self.conf.write_text(f"""\
server:
    user: root:root
    rundir: "{self.dir / 'run'}"
    listen: {self.address}@{self.port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "{self.dir / 'db'}"
control:
    listen: "{self._control_sock()}"
template:
  - id: default
    storage: "{self.dir / 'zones'}"
    file: "%s.zone"
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none
    semantic-checks: off
zone:
  - domain: {self.zone}
""")

    # process
    def start(self, timeout=15):
        self._write_conf()
        self._write_zone()
        ns_run(None, ["knotc", "-c", self.conf, "conf-check"], timeout=20)
        self.proc = Proc(self.ns, ["knotd", "-c", self.conf], self.dir / "knotd.log",
                         what="knotd")
        self._wait_serial(timeout)

    def knotc(self, *args, timeout=20):
        return ns_run(None, ["knotc", "-c", self.conf, "-s", self._control_sock(), "-t", "10",
                             *args], timeout=timeout)

    def reload(self, timeout=15):
        """Writes the zone with serial+1, `knotc zone-reload`, waits until it is served."""
        self.serial += 1
        self._write_zone()
        self.knotc("zone-reload", self.zone + ".")
        self._wait_serial(timeout)

    def query(self, name, rtype="TXT", timeout=5):
        """kdig +short answers (list of lines) from inside the namespace."""
        p = ns_run(self.ns, ["kdig", f"@{_connect_host(self.address)}", "-p", str(self.port),
                             "+short", "+time=1", "+retry=0", rtype, self.fqdn(name)],
                   timeout=timeout, check=False)
        if p.returncode != 0:
            raise AssertionError(f"kdig failed ({p.returncode}): {p.stderr}{p.stdout}")
        return [ln for ln in p.stdout.splitlines() if ln.strip() and not ln.startswith(";;")]

    def txt(self, name):
        """The TXT values of name as served (each record's strings concatenated)."""
        return [parse_txt(ln) for ln in self.query(name, "TXT")]

    def _wait_serial(self, timeout):
        deadline = time.time() + timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"knotd exited {self.proc.poll()}:\n{self.log()[-3000:]}")
            try:
                soa = self.query("@", "SOA", timeout=3)
                if soa and int(soa[0].split()[2]) == self.serial:
                    return
                last = soa
            except (AssertionError, subprocess.TimeoutExpired, IndexError, ValueError) as e:
                last = e
            if time.time() >= deadline:
                raise AssertionError(f"knotd does not serve serial {self.serial} after "
                                     f"{timeout}s (last: {last}):\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def log(self):
        return self.proc.log() if self.proc else ""

    def stop(self):
        if self.proc:
            self.proc.stop()
        if hasattr(self, "_short_run"):
            shutil.rmtree(self._short_run, ignore_errors=True)
        if self._own_tmp:
            shutil.rmtree(self.dir, ignore_errors=True)

    close = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------------------------
# topology

def _letters(n):
    s = ""
    while True:
        s = chr(ord("a") + n % 26) + s
        n = n // 26 - 1
        if n < 0:
            return s


def _ns_exists_with(prefix):
    try:
        if any(p.name.startswith(prefix) for p in NETNS_DIR.iterdir()):
            return True
    except FileNotFoundError:
        pass
    try:
        return any(p.name.startswith(prefix) for p in WG_RUN_DIR.iterdir())
    except FileNotFoundError:
        return False


def netns_list():
    """Names in `ip netns list`."""
    p = ns_run(None, ["ip", "netns", "list"], timeout=10)
    return [ln.split()[0] for ln in p.stdout.splitlines() if ln.strip()]


class Link:
    """One public link: gw_ns/gw_if/gw_ip <-> cvm_ns/cvm_if/cvm_ip, prefixlen 30."""

    def __init__(self, gw_ns, gw_if, gw_ip, cvm_ns, cvm_if, cvm_ip, prefixlen=30):
        self.gw_ns, self.gw_if, self.gw_ip = gw_ns, gw_if, gw_ip
        self.cvm_ns, self.cvm_if, self.cvm_ip = cvm_ns, cvm_if, cvm_ip
        self.prefixlen = prefixlen


class Topology:
    """gw namespace + n_cvms cvm namespaces, cvm i linked to gw by a veth pair on
    172.31.i.0/30 (gw side `pub<i>` = 172.31.i.1, cvm side `eth0` = 172.31.i.2, with a default
    route via gw). lo is up everywhere. Attributes: prefix, gw (ns name), cvms (ns names),
    links (Link per cvm), tmp (dir for keys, configs and logs).

    Use as a context manager (or the `topo` fixture); close() is idempotent and removes all
    processes started through it, then any process still inside its namespaces, the veths, the
    namespaces, leftover WireGuard sockets of its interfaces, and tmp when it made it."""

    def __init__(self, n_cvms=1, tmp=None, subnet="172.31"):
        self.n_cvms, self.subnet = n_cvms, subnet
        self.prefix = None
        self.namespaces = []
        self.links = []
        self.cvms = []
        self.gw = None
        self._closers = []
        self._ifnames = set()
        self._closed = False
        self._own_tmp = tmp is None
        self._tmp_arg = tmp
        self.tmp = None

    # lifecycle
    def __enter__(self):
        try:
            self.setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, et, ev, tb):
        self.close(raise_errors=et is None)

    def _pick_prefix(self):
        base = f"dsq{os.getpid() % 10000:04d}"
        with _prefix_lock:
            for _ in range(1000):
                p = base + _letters(next(_counter))
                if not _ns_exists_with(p):
                    return p
        raise AssertionError("no free namespace prefix")

    def setup(self):
        self.prefix = self._pick_prefix()
        atexit.register(self.close)
        if self._own_tmp:
            self.tmp = pathlib.Path(tempfile.mkdtemp(prefix=self.prefix + "-"))
        else:
            self.tmp = pathlib.Path(self._tmp_arg) / self.prefix
            self.tmp.mkdir(parents=True, exist_ok=True)
        self.gw = self.add_ns("gw")
        for _ in range(self.n_cvms):
            self.add_cvm()
        return self

    def ifname(self, suffix):
        """<prefix><suffix>, checked against the 15-character limit of interface names."""
        n = suffix if suffix.startswith(self.prefix) else self.prefix + suffix
        if len(n) > IFNAMSIZ:
            raise ValueError(f"interface name {n!r} longer than {IFNAMSIZ} characters")
        return n

    def add_ns(self, suffix):
        name = self.prefix + suffix
        ns_run(None, ["ip", "netns", "add", name], timeout=10)
        self.namespaces.append(name)
        ns_run(None, ["ip", "-n", name, "link", "set", "lo", "up"], timeout=10)
        # a new namespace inherits IPv4 forwarding from the host's (a container runtime on the
        # host turns it on): without it set here, gw would route between the cvm links
        ns_run(name, ["sh", "-c", "echo 0 >/proc/sys/net/ipv4/ip_forward"], timeout=10)
        return name

    def add_cvm(self):
        """Adds one more cvm namespace + link; returns its index."""
        i = len(self.cvms)
        if i > 255:
            raise ValueError("at most 256 cvm namespaces")
        ns = self.add_ns(f"c{i}")
        self.cvms.append(ns)
        net = ipaddress.ip_network(f"{self.subnet}.{i}.0/30")
        gw_ip, cvm_ip = str(net[1]), str(net[2])
        gw_if = f"pub{i}"
        ns_run(None, ["ip", "link", "add", gw_if, "netns", self.gw, "type", "veth", "peer",
                      "name", "eth0", "netns", ns], timeout=10)
        self.links.append(Link(self.gw, gw_if, gw_ip, ns, "eth0", cvm_ip))
        ns_run(None, ["ip", "-n", self.gw, "addr", "add", f"{gw_ip}/30", "dev", gw_if])
        ns_run(None, ["ip", "-n", ns, "addr", "add", f"{cvm_ip}/30", "dev", "eth0"])
        ns_run(None, ["ip", "-n", self.gw, "link", "set", gw_if, "up"])
        ns_run(None, ["ip", "-n", ns, "link", "set", "eth0", "up"])
        ns_run(None, ["ip", "-n", ns, "route", "add", "default", "via", gw_ip])
        return i

    def gw_ip(self, i=0):
        """gw's address on cvm i's link (where cvm i reaches tproxy)."""
        return self.links[i].gw_ip

    def cvm_ip(self, i=0):
        return self.links[i].cvm_ip

    def cvm(self, i=0):
        return self.cvms[i]

    def track(self, obj):
        """Registers obj (anything with close() or stop()) to be closed at cleanup; returns it."""
        self._closers.append(obj)
        return obj

    def close(self, raise_errors=False):
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        errors = []

        def attempt(what, f, *a):
            try:
                f(*a)
            except Exception as e:  # noqa: BLE001 - collected, cleanup goes on
                errors.append(f"{what}: {e}")

        for obj in reversed(self._closers):
            attempt(f"stop {obj!r}", getattr(obj, "close", None) or obj.stop)
        for ns in reversed(self.namespaces):
            attempt(f"kill in {ns}", self._kill_ns_pids, ns)
        for link in self.links:
            if os.path.exists(NETNS_DIR / link.gw_ns):
                ns_run(None, ["ip", "-n", link.gw_ns, "link", "del", link.gw_if], timeout=10,
                       check=False)
        for ns in reversed(self.namespaces):
            attempt(f"delete {ns}", ns_run, None, ["ip", "netns", "delete", ns])
        for n in self._ifnames:
            try:
                wg_sock(n).unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                errors.append(f"unlink {wg_sock(n)}: {e}")
        if self._own_tmp and self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if errors and raise_errors:
            raise AssertionError("topology cleanup: " + "; ".join(errors))

    @staticmethod
    def _kill_ns_pids(ns, timeout=10):
        """SIGKILLs whatever still runs in ns (all of it was started through this topology,
        whose namespaces nobody else uses) and waits until it is gone."""
        if not os.path.exists(NETNS_DIR / ns):
            return
        deadline = time.time() + timeout
        while True:
            p = ns_run(None, ["ip", "netns", "pids", ns], timeout=10, check=False)
            pids = [int(x) for x in p.stdout.split() if x.isdigit()]
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for pid in pids:  # reap our own children
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            if time.time() >= deadline:
                raise AssertionError(f"processes {pids} in {ns} do not die")
            time.sleep(0.05)

    # processes
    def ns_run(self, ns, argv, **kw):
        return ns_run(ns, argv, **kw)

    def ns_popen(self, ns, argv, log=None, **kw):
        """A tracked Proc (stopped at cleanup); output goes to tmp/<log or argv0>.log."""
        name = log or f"{pathlib.Path(str(argv[0])).name}-{next(_counter)}"
        return self.track(Proc(ns, argv, self.tmp / f"{name}.log", **kw))

    def key_file(self, key_b64, name=None):
        """Writes a key to tmp/<name>.key with mode 0600; returns the path."""
        return write_secret(self.tmp / f"{name or 'wg-' + str(next(_counter))}.key", key_b64)

    # WireGuard
    def wg_create(self, ns, ifname, timeout=10, log_level="verbose"):
        """Starts `wireguard-go -f <ifname>` in ns (ifname gets the prefix if it lacks it) and
        waits until its UAPI socket /var/run/wireguard/<ifname>.sock exists and answers get=1.
        No key, address or link state: configure it through the socket (e.g. tproxy does).
        Returns a WgIface (tracked: stopped and its socket removed at cleanup)."""
        ifname = self.ifname(ifname)
        sock = wg_sock(ifname)
        if sock.exists():
            raise AssertionError(f"{sock} exists already")
        self._ifnames.add(ifname)
        proc = Proc(ns, ["wireguard-go", "-f", ifname], self.tmp / f"wg-{ifname}.log",
                    env={"WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": log_level,
                         "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"},
                    what="wireguard-go")
        wi = self.track(WgIface(self, ns, ifname, proc))
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"wireguard-go {ifname} exited {proc.poll()}:\n{proc.log()}")
            if sock.exists():
                try:
                    if "errno=0" in wg_uapi(ifname, "get=1", timeout=2):
                        return wi
                except OSError:
                    pass
            if time.time() >= deadline:
                raise AssertionError(f"no UAPI socket {sock} after {timeout}s:\n{proc.log()}")
            time.sleep(0.05)

    def wg_up(self, ns, ifname, private_key_file, address_cidr, listen_port=None, **kw):
        """wg_create, then `wg set <if> private-key <file> [listen-port N]`,
        `ip addr add <address_cidr> dev <if>`, `ip link set <if> up`. Returns the WgIface."""
        wi = self.wg_create(ns, ifname, **kw)
        argv = ["wg", "set", wi.name, "private-key", str(private_key_file)]
        if listen_port is not None:
            argv += ["listen-port", str(listen_port)]
        ns_run(ns, argv)
        if address_cidr:
            ns_run(ns, ["ip", "addr", "add", address_cidr, "dev", wi.name])
            wi.address = address_cidr
        ns_run(ns, ["ip", "link", "set", wi.name, "up"])
        return wi

    def wg_peer(self, ns, ifname, pubkey, allowed_ips, endpoint=None, keepalive=None, **kw):
        return wg_peer(ns, self.ifname(ifname), pubkey, allowed_ips, endpoint, keepalive, **kw)

    # backends
    def _python_backend(self, ns, addr, port, body, cert, key, scheme, timeout):
        port = int(port or free_port())
        n = next(_counter)
        bf = self.tmp / f"{scheme}-{n}.body"
        bf.write_bytes(body.encode() if isinstance(body, str) else body)
        proc = Proc(ns, [PY, "-u", "-c", _HTTP_SERVER, addr, port, bf, cert or "", key or ""],
                    self.tmp / f"{scheme}-{n}.log", what=f"{scheme} backend")
        be = self.track(Backend(ns, addr, port, proc, scheme))
        wait_port(ns, addr, port, timeout, proc=proc, what=f"{scheme} backend")
        return be

    def http_backend(self, ns, addr="0.0.0.0", port=None, body="ok\n", timeout=10):
        """HTTP/1.1 server (python http.server) in ns on addr:port (port None: free_port()).
        Any method returns 200 with body and headers X-Echo-Host, X-Echo-Path, X-Echo-Method,
        X-Echo-Client (peer address), X-Echo-Body-Length. Returns a Backend once it accepts."""
        return self._python_backend(ns, addr, port, body, None, None, "http", timeout)

    def tls_backend(self, ns, port, certfile, keyfile, body="ok\n", addr="0.0.0.0",
                    timeout=10):
        """Like http_backend over TLS (python ssl; certfile may hold the chain) and also
        X-Echo-Sni (the SNI the client sent)."""
        return self._python_backend(ns, addr, port, body, certfile, keyfile, "https", timeout)

    def h2c_backend(self, ns, port=None, body="ok\n", addr="0.0.0.0", timeout=10):
        """nginx in ns with `listen <addr>:<port> http2;` (cleartext HTTP/2 with prior knowledge
        only; HTTP/1 requests are refused). Answers body with X-Echo-Host, X-Echo-Path,
        X-Echo-Client and X-Http2 (h2c) headers. Config, pid, logs in tmp."""
        port = int(port or free_port())
        d = self.tmp / f"nginx-{next(_counter)}"
        (d / "www").mkdir(parents=True)
        (d / "tmp").mkdir()
        (d / "www" / "body").write_bytes(body.encode() if isinstance(body, str) else body)
        listen = f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
        (d / "nginx.conf").write_text(_NGINX_CONF.format(d=d, listen=listen))
        ns_run(ns, ["nginx", "-t", "-q", "-p", d, "-e", d / "error.log", "-c", d / "nginx.conf"],
               timeout=20)
        proc = Proc(ns, ["nginx", "-p", d, "-e", d / "error.log", "-c", d / "nginx.conf",
                         "-g", "daemon off;"], d / "stdout.log", what="nginx",
                    stop_signal=signal.SIGTERM)
        be = self.track(Backend(ns, addr, port, proc, "http", conf_dir=d))
        wait_port(ns, addr, port, timeout, proc=be, what="nginx h2c backend")
        return be

    # DNS
    def knot(self, zone_name, records=None, port=None, ns="gw", address="127.0.0.1"):
        """A tracked KnotDns in ns ("gw": the gw namespace, None: the test's own namespace)."""
        ns = self.gw if ns == "gw" else ns
        d = self.tmp / f"knot-{next(_counter)}"
        return self.track(KnotDns(zone_name, records, port, ns=ns, address=address, tmp=d))

    # conveniences
    def wait_port(self, ns, host, port, timeout=10, proc=None):
        return wait_port(ns, host, port, timeout, proc)

    def ping(self, ns, addr, count=1, timeout=10):
        return ping(ns, addr, count, timeout)

    def curl(self, ns, url, *args, timeout=15):
        return curl(ns, url, *args, timeout=timeout)


@pytest.fixture
def topo(tmp_path):
    """Topology(n_cvms=2) in tmp_path (skips unless root with ip, wireguard-go and wg)."""
    require()
    with Topology(n_cvms=2, tmp=tmp_path) as t:
        yield t

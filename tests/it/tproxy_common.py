"""Helpers shared by the tproxy integration tests (no tests here): a PKI (the CA CVM certificates
chain to, the RPC server certificate, the proxy's wildcard), simulated CVMs registering with
RA-TLS certificates, a runner for `tproxy -c FILE`, and small HTTP/TLS backends."""
import hashlib
import http.server
import json
import os
import pathlib
import socket
import ssl
import subprocess
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.x509.oid import NameOID

from conftest import BUILD, TDXCTL, _clean_env
from test_kms_common import read_line

TPROXY = BUILD / "src" / "tproxy" / "tproxy"
BASE = "app.test"


# ---- PKI ---------------------------------------------------------------------------------------

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path, data, mode=0o600):
    path = pathlib.Path(path)
    path.write_bytes(data)
    os.chmod(path, mode)


def make_cert(cn, sans, issuer=None, issuer_key=None, ca=False, days=365, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = time.time()
    import datetime
    nb = datetime.datetime.fromtimestamp(now - 3600, datetime.timezone.utc)
    na = datetime.datetime.fromtimestamp(now + days * 86400, datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(cn))
         .issuer_name(issuer.subject if issuer else _name(cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(nb).not_valid_after(na)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]),
                            critical=False)
    cert = b.sign(issuer_key or key, hashes.SHA256())
    return cert, key


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Pki:
    """dir/ca.cert + ca.key (also as tmp-ca.* for `tdxctl gen-ra-cert`), rpc.cert/key for
    localhost, wild.cert/key for *.BASE, backend.cert/key for the TLS backends."""

    def __init__(self, d):
        self.dir = pathlib.Path(d)
        self.dir.mkdir(parents=True, exist_ok=True)
        ca, cak = make_cert("tproxy test CA", None, ca=True)
        self.ca_cert, self.ca_key = ca, cak
        for n in ("ca", "tmp-ca"):
            _write(self.dir / f"{n}.cert", pem(ca), 0o644)
            _write(self.dir / f"{n}.key", key_pem(cak))
        self.issue("rpc", "localhost", ["localhost"])
        self.issue("backend", "backend", ["*." + BASE, "custom.example.org", "other.example.org"])
        w, wk = make_cert("*." + BASE, ["*." + BASE, BASE])
        _write(self.dir / "wild.cert", pem(w), 0o644)
        _write(self.dir / "wild.key", key_pem(wk))

    def issue(self, name, cn, sans):
        c, k = make_cert(cn, sans, self.ca_cert, self.ca_key)
        _write(self.dir / f"{name}.cert", pem(c), 0o644)
        _write(self.dir / f"{name}.key", key_pem(k))
        return self.dir / f"{name}.cert", self.dir / f"{name}.key"

    def path(self, name):
        return self.dir / name


def wg_keypair():
    k = x25519.X25519PrivateKey.generate()
    import base64
    priv = base64.b64encode(k.private_bytes(serialization.Encoding.Raw,
                                            serialization.PrivateFormat.Raw,
                                            serialization.NoEncryption())).decode()
    pub = base64.b64encode(k.public_key().public_bytes(serialization.Encoding.Raw,
                                                       serialization.PublicFormat.Raw)).decode()
    return priv, pub


# ---- simulated CVMs ----------------------------------------------------------------------------

class Cvm:
    """A simulated TD booted the newest way (runtime events app-id, compose-hash, instance-id on
    RTMR3) or the seed way (digest events), with an RA-TLS certificate chained to the test CA."""

    def __init__(self, tmp, pki, name, compose=b"services: {}\n", seed=False, sim_dir=None):
        self.dir = pathlib.Path(tmp) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sim = pathlib.Path(sim_dir) if sim_dir else self.dir / "sim"
        env = _clean_env()
        if not (self.sim / "td.json").exists():
            subprocess.run([str(TDXCTL), "sim", "init", str(self.sim)], check=True, env=env,
                           stdout=subprocess.DEVNULL, timeout=60)
        self.env = dict(env, DSTACK_TEE="sim", DSTACK_SIM_DIR=str(self.sim))
        # Each CVM boots afresh: RTMR3 and its event log back to the state after `sim init`.
        for n in ("td.json", "eventlog.jsonl"):
            saved = self.sim / f".pristine-{n}"
            if not saved.exists():
                saved.write_bytes((self.sim / n).read_bytes())
                os.chmod(saved, 0o600)
            tmp = self.sim / f".{n}.reset"
            tmp.write_bytes(saved.read_bytes())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.sim / n)
        ch = hashlib.sha256(compose).digest()
        self.app_id = ch[:20].hex()
        self.instance_id = None
        if seed:
            # the seed initramfs's fixed three (upstream dstack); names not bound to digests
            self.tdxctl("extend", "-a", "rootfs-hash", "-d", hashlib.sha256(b"rootfs").hexdigest())
            self.tdxctl("extend", "-a", "app-id", "-d", ch.hex())
            self.tdxctl("extend", "-a", "ca-cert-hash", "-d", hashlib.sha256(b"ca").hexdigest())
        else:
            # the newest boot's runtime events, in its order, up to boot-mr-done
            self.instance_id = os.urandom(20).hex()
            for name, payload in (("system-preparing", ""), ("app-id", ch[:20].hex()),
                                  ("compose-hash", ch.hex()), ("instance-id", self.instance_id),
                                  ("boot-mr-done", "")):
                self.tdxctl("extend", "-a", name, "--payload", payload)
        self.cert, self.key = self.dir / "cvm.cert", self.dir / "cvm.key"
        self.tdxctl("gen-ra-cert", "--ca-cert", pki.path("tmp-ca.cert"), "--ca-key",
                    pki.path("tmp-ca.key"), "-c", self.cert, "-k", self.key)
        self.wg_priv, self.wg_pub = wg_keypair()

    def tdxctl(self, *args):
        p = subprocess.run([str(TDXCTL), *map(str, args)], env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        assert p.returncode == 0, f"tdxctl {args}: {p.stderr.decode()}"
        return p


# ---- tproxy ------------------------------------------------------------------------------------

def curl(args, timeout=20):
    c = ["curl", "-sS", "--max-time", str(timeout), "-o", "-", "-w", "\n%{http_code}", *args]
    p = subprocess.run(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout + 10)
    body, _, code = p.stdout.rpartition(b"\n")
    try:
        status = int(code)
    except ValueError:
        status = 0
    return status, body, p.stderr.decode(errors="replace")


class Tproxy:
    """A running `tproxy -c DIR/tproxy.toml` (WireGuard mode "none" unless wg is given): the
    backends of registered CVMs are reached on their client addresses directly (loopback)."""

    def __init__(self, tmp, pki, sim_dir=None, name="tproxy", extra="", wg=None,
                 ip_range="127.77.0.0/24", server_ip="127.77.0.1", netns=None, address="127.0.0.1",
                 start=True, quote="", wrap=()):
        self.dir = pathlib.Path(tmp) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "certbot" / "live").mkdir(parents=True, exist_ok=True)
        self.live = self.dir / "certbot" / "live"
        for src, dst in (("wild.cert", "cert.pem"), ("wild.key", "key.pem")):
            p = self.live / dst
            if not p.exists():
                p.write_bytes(pki.path(src).read_bytes())
                os.chmod(p, 0o600)
        self.pki = pki
        self.netns = netns
        self.wrap = list(wrap)  # a command prefix that execs tproxy (e.g. prlimit --nofile=N)
        wgconf = wg or 'mode = "none"\n'
        sim_line = f'simulator_dir = "{sim_dir}"\n' if sim_dir else ""
        self.config = (
            f'address = "{address}"\nport = 0\n'
            f'[tls]\nkey = "{pki.path("rpc.key")}"\ncerts = "{pki.path("rpc.cert")}"\n'
            f'[tls.mutual]\nca_certs = "{pki.path("ca.cert")}"\n'
            f'[core]\nstate_db = "{self.dir / "tproxy.db"}"\n'
            f'[core.quote]\n{sim_line}{quote}'
            f'[core.certbot]\nworkdir = "{self.dir / "certbot"}"\n'
            f'[core.wg]\n{wgconf}ip = "{server_ip}"\nclient_ip_range = "{ip_range}"\n'
            f'endpoint = "127.0.0.1:51820"\n'
            f'[core.proxy]\ncert_chain = "{self.live / "cert.pem"}"\n'
            f'cert_key = "{self.live / "key.pem"}"\nbase_domain = "{BASE}"\n'
            f'listen_addr = "{address}"\nlisten_port = 0\nworkers = 2\n'
            f'handshake_timeout = 2000\nconnect_timeout = 2000\ncert_poll = 1\n' + extra)
        (self.dir / "tproxy.toml").write_text(self.config)
        self.proc = None
        self.log_path = self.dir / "tproxy.log"
        if start:
            self.start()

    def cmd(self):
        c = self.wrap + [str(TPROXY), "-c", str(self.dir / "tproxy.toml")]
        return (["ip", "netns", "exec", self.netns] + c) if self.netns else c

    def start(self, expect_start=True):
        env = dict(_clean_env(), DSTACK_LOG="debug")
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd(), stdout=subprocess.PIPE, stderr=self.logf,
                                     env=env)
        deadline = time.time() + 30
        self.rpc_port = self.proxy_port = None
        while expect_start and (self.rpc_port is None or self.proxy_port is None):
            line = read_line(self.proc, deadline)
            if line is None:
                raise AssertionError(f"tproxy did not start:\n{self.log()}")
            if line.startswith("listening https://"):
                self.rpc_port = int(line.rsplit(":", 1)[1])
            elif line.startswith("listening tls://"):
                self.proxy_port = int(line.rsplit(":", 1)[1])

    def wait(self, timeout=30):
        return self.proc.wait(timeout=timeout)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
            self.logf.close()
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def rpc(self, method, cvm=None, data=None, cert=None, key=None, host="127.0.0.1"):
        args = ["--cacert", str(self.pki.path("ca.cert")), "--resolve",
                f"localhost:{self.rpc_port}:{host}"]
        cert = cert or (cvm.cert if cvm else None)
        key = key or (cvm.key if cvm else None)
        if cert:
            args += ["--cert", str(cert), "--key", str(key)]
        if data is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(data)]
        args.append(f"https://localhost:{self.rpc_port}/prpc/Tproxy.{method}?json")
        st, body, err = curl(args)
        return st, (json.loads(body) if body.strip().startswith(b"{") else body)

    def register(self, cvm, pub=None):
        st, j = self.rpc("RegisterCvm", cvm, {"client_public_key": pub or cvm.wg_pub})
        assert st == 200, (st, j, self.log()[-3000:])
        return j

    def get(self, host, path="/", port=None, extra=(), cacert=None, ip="127.0.0.1"):
        port = port or self.proxy_port
        args = ["--resolve", f"{host}:{port}:{ip}", "--cacert",
                str(cacert or self.pki.path("wild.cert")), *extra, f"https://{host}:{port}{path}"]
        return curl(args)

    def metrics(self):
        st, body, _ = curl(["--cacert", str(self.pki.path("ca.cert")), "--resolve",
                            f"localhost:{self.rpc_port}:127.0.0.1",
                            f"https://localhost:{self.rpc_port}/metrics"])
        assert st == 200
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


# ---- backends ----------------------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = f"{self.server.tag} {self.path} host={self.headers.get('Host')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class _Server(http.server.ThreadingHTTPServer):
    # listen(5) drops SYNs when many clients connect at once and the (GIL-bound) accept loop
    # lags: the proxy's connect to the backend would then time out
    request_queue_size = 128

    def server_bind(self):  # no reverse DNS lookup of the address (getfqdn) in an offline test
        import socketserver
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class Backend:
    """A threaded HTTP (or HTTPS with certfile) server on addr:port answering "<tag> <path>"."""

    def __init__(self, addr, port, tag, certfile=None, keyfile=None):
        self.srv = _Server((addr, port), _Handler)
        self.srv.daemon_threads = True
        self.srv.tag = tag
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.th = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.1},
                                   daemon=True)
        self.th.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def raw_exchange(port, data, timeout=5, ip="127.0.0.1"):
    """Sends data, returns what comes back until the peer closes (bounded)."""
    s = socket.create_connection((ip, port), timeout=timeout)
    try:
        if data:
            s.sendall(data)
        out = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                c = s.recv(4096)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not c:
                break
            out += c
        return out
    finally:
        s.close()

"""certbot against real servers: knotd serves the zone example.test and takes TSIG-signed
RFC 2136 updates; Pebble is the ACME server and checks DNS-01 at that knotd. certbot issues
*.example.test + example.test and keeps its workdir (credentials.json, backup/, live/)."""
import base64
import datetime
import json
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest

from conftest import BUILD, _clean_env

CERTBOT = BUILD / "src" / "certbot" / "certbot"
ZONE = "example.test"
KEY_NAME = "certbot-key"
SECRET = base64.b64encode(b"certbot test tsig secret, 32 b!!").decode()

pytestmark = pytest.mark.skipif(
    not (shutil.which("knotd") and shutil.which("pebble") and shutil.which("kdig")),
    reason="knotd, kdig and pebble are needed (scripts/deps.sh)")


from conftest import free_port  # noqa: E402  (below the ephemeral range: no bind races)


def wait_port(port, proc, log, deadline=20.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {pathlib.Path(log).read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"port {port} not open: {pathlib.Path(log).read_text()}")


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Knot:
    def __init__(self, d):
        self.dir = d
        self.port = free_port()
        for sub in ("db", "run", "zones"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        z = ZONE + "."
        (d / "zones" / f"{ZONE}.zone").write_text(
            f"$ORIGIN {z}\n$TTL 1\n@ IN SOA ns1.{z} hostmaster.{z} 1 3600 600 86400 1\n"
            f"@ IN NS ns1.{z}\nns1 IN A 127.0.0.1\n")
        self.sock = pathlib.Path(d / "run" / "knot.sock")
        (d / "knot.conf").write_text(f"""\
server:
    user: root:root
    rundir: "{d / 'run'}"
    listen: 127.0.0.1@{self.port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "{d / 'db'}"
control:
    listen: "{self.sock}"
key:
  - id: {KEY_NAME}
    algorithm: hmac-sha256
    secret: {SECRET}
acl:
  - id: update
    key: {KEY_NAME}
    action: update
template:
  - id: default
    storage: "{d / 'zones'}"
    file: "%s.zone"
    zonefile-sync: -1
    semantic-checks: off
zone:
  - domain: {ZONE}
    acl: update
""")
        self.log = d / "knot.log"
        self.proc = subprocess.Popen(["knotd", "-c", str(d / "knot.conf")],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        wait_port(self.port, self.proc, self.log)

    def zone_set(self, owner, rtype, data):
        """Adds a record through knotc (as an operator would have it before certbot)."""
        def knotc(*a):
            r = subprocess.run(["knotc", "-s", str(self.sock), *a], capture_output=True,
                               text=True, timeout=10)
            assert r.returncode == 0 and "error" not in r.stdout.lower(), r.stdout + r.stderr
        knotc("zone-begin", ZONE)
        knotc("zone-set", ZONE, owner, "60", rtype, *data.split(" ", 2))
        knotc("zone-commit", ZONE)

    def caa(self, name):
        out = subprocess.run(["kdig", "+tcp", "+short", "-p", str(self.port), "@127.0.0.1",
                              name, "CAA"], capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        return sorted(l.strip() for l in out.stdout.splitlines() if l.strip())

    def txt(self, name):
        out = subprocess.run(["kdig", "+tcp", "+short", "-p", str(self.port), "@127.0.0.1",
                              name, "TXT"], capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        return [l for l in out.stdout.splitlines() if l.strip()]


def make_tls(d):
    """A CA and a server certificate for 127.0.0.1/localhost (Pebble's HTTPS)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(d / "ca.key"), "-out",
                    str(d / "ca.pem"), "-days", "2", "-subj", "/CN=test ca"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(d / "tls.key"), "-out", str(d / "tls.csr"),
                    "-subj", "/CN=localhost"], check=True, capture_output=True)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    subprocess.run(["openssl", "x509", "-req", "-in", str(d / "tls.csr"), "-CA",
                    str(d / "ca.pem"), "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-out",
                    str(d / "tls.pem"), "-days", "2", "-extfile", str(d / "ext.cnf")],
                   check=True, capture_output=True)


class Pebble:
    def __init__(self, d, dns_port, nonce_reject=0, nosleep=True):
        make_tls(d)
        self.port, self.mgmt = free_port(), free_port()
        (d / "pebble.json").write_text(json.dumps({"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.mgmt}",
            "certificate": str(d / "tls.pem"), "privateKey": str(d / "tls.key"),
            "httpPort": free_port(), "tlsPort": free_port(), "ocspResponderURL": "",
            "externalAccountBindingRequired": False}}))
        env = _clean_env()
        if nosleep:
            env["PEBBLE_VA_NOSLEEP"] = "1"
        # Every order gets fresh authorizations, so every renewal answers challenges.
        env["PEBBLE_AUTHZREUSE"] = "0"
        env.pop("PEBBLE_WFE_NONCEREJECT", None)
        if nonce_reject is not None:
            env["PEBBLE_WFE_NONCEREJECT"] = str(nonce_reject)
        self.log = d / "pebble.log"
        self.proc = subprocess.Popen(
            ["pebble", "-config", str(d / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}"],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env, cwd=d)
        wait_port(self.port, self.proc, self.log)
        self.ca = d / "ca.pem"
        self.url = f"https://127.0.0.1:{self.port}/dir"

    def root(self):
        ctx = ssl.create_default_context(cafile=str(self.ca))
        with urllib.request.urlopen(f"https://127.0.0.1:{self.mgmt}/roots/0", context=ctx,
                                    timeout=10) as r:
            return r.read().decode()


@pytest.fixture
def servers(tmp_path):
    knot, started = None, []

    def start_pebble(**kw):
        started.append(Pebble(tmp_path / "pebble", knot.port, **kw))
        return started[-1]

    try:
        knot = Knot(tmp_path / "knot")
        (tmp_path / "pebble").mkdir()
        yield knot, start_pebble
    finally:
        for p in started:
            stop(p.proc)
        stop(knot and knot.proc)


def acme_config(tmp_path, pebble, provider, max_dns_wait=20, caa=False):
    """certbot.toml for Pebble with the provider's own lines (top-level keys, then tables)."""
    p = tmp_path / "certbot.toml"
    p.write_text(f"""\
workdir = "{tmp_path / 'work'}"
acme_url = "{pebble.url}"
acme_ca_file = "{pebble.ca}"
domains = ["*.{ZONE}", "{ZONE}"]
renew_timeout = 60
max_dns_wait = {max_dns_wait}
auto_set_caa = {"true" if caa else "false"}
{provider}""")
    p.chmod(0o600)
    return p


def config(tmp_path, knot, pebble, zone=ZONE, max_dns_wait=20, extra="", caa=False):
    return acme_config(tmp_path, pebble, f"""\
dns_provider = "rfc2136"
{extra}
[rfc2136]
server = "127.0.0.1"
port = {knot.port}
zone = "{zone}"
tsig_key_name = "{KEY_NAME}"
tsig_secret = "{SECRET}"
""", max_dns_wait, caa)


def certbot(*args, env=None, timeout=90):
    e = _clean_env()
    if env:
        e.update(env)
    return subprocess.run([str(CERTBOT), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=e)


def verify_chain(work, root_pem, tmp_path):
    (tmp_path / "root.pem").write_text(root_pem)
    chain = (work / "live" / "cert.pem").read_text()
    certs = ["-----BEGIN CERTIFICATE-----" + c for c in
             chain.split("-----BEGIN CERTIFICATE-----")[1:]]
    (tmp_path / "leaf.pem").write_text(certs[0])
    (tmp_path / "inter.pem").write_text("".join(certs[1:]))
    v = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "root.pem"),
                        "-untrusted", str(tmp_path / "inter.pem"), str(tmp_path / "leaf.pem")],
                       capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    txt = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(tmp_path / "leaf.pem")],
                         capture_output=True, text=True).stdout
    assert f"DNS:*.{ZONE}" in txt and f"DNS:{ZONE}" in txt


def pubkey(path):
    return subprocess.run(["openssl", "pkey", "-pubout", "-in", str(path)], capture_output=True,
                          text=True, check=True).stdout


def cert_pubkey(path):
    return subprocess.run(["openssl", "x509", "-noout", "-pubkey", "-in", str(path)],
                          capture_output=True, text=True, check=True).stdout


def test_issue_and_force_renew(servers, tmp_path):
    knot, start_pebble = servers
    pebble = start_pebble(nonce_reject=0)
    try:
        cfg = config(tmp_path, knot, pebble)
        r = certbot("renew", "-c", cfg, "--once")
        assert r.returncode == 0, r.stderr + pebble.log.read_text()[-3000:]
        work = tmp_path / "work"
        live_key = work / "live" / "key.pem"
        assert (work / "live" / "cert.pem").is_symlink() and live_key.is_symlink()
        assert os.stat(live_key).st_mode & 0o777 == 0o600
        creds = json.loads((work / "credentials.json").read_text())
        assert creds["account_id"].startswith("https://127.0.0.1:")
        assert os.stat(work / "credentials.json").st_mode & 0o777 == 0o600
        verify_chain(work, pebble.root(), tmp_path)
        assert knot.txt(f"_acme-challenge.{ZONE}") == []
        assert "key_pkcs8" not in r.stderr and SECRET not in r.stderr
        first = os.path.realpath(work / "live" / "cert.pem")

        # Not due: nothing happens.
        r = certbot("renew", "-c", cfg, "--once")
        assert r.returncode == 0, r.stderr
        assert os.path.realpath(work / "live" / "cert.pem") == first

        # --force: a new certificate with the same key, in a new backup directory.
        old_pub = pubkey(live_key)
        r = certbot("renew", "-c", cfg, "--once", "--force")
        assert r.returncode == 0, r.stderr
        second = os.path.realpath(work / "live" / "cert.pem")
        assert second != first and os.path.exists(first)
        assert pubkey(live_key) == old_pub == cert_pubkey(second)
        assert len(list((work / "backup").iterdir())) == 2
        verify_chain(work, pebble.root(), tmp_path)
        assert knot.txt(f"_acme-challenge.{ZONE}") == []
    finally:
        stop(pebble.proc)


def test_bad_nonce_default_rate(servers, tmp_path):
    knot, start_pebble = servers
    pebble = start_pebble(nonce_reject=None)  # Pebble's default: 5% badNonce
    try:
        cfg = config(tmp_path, knot, pebble)
        for i in range(3):
            r = certbot("renew", "-c", cfg, "--once", "--force")
            assert r.returncode == 0, f"round {i}: {r.stderr}"
        assert len(list((tmp_path / "work" / "backup").iterdir())) == 3
        assert knot.txt(f"_acme-challenge.{ZONE}") == []
    finally:
        stop(pebble.proc)


def test_dns_never_propagates(servers, tmp_path):
    """The provider updates a zone knot does not serve: the update is refused (NOTAUTH), or
    when accepted it never shows; either way a clear error, bounded, and nothing left over."""
    knot, start_pebble = servers
    pebble = start_pebble(nonce_reject=0)
    try:
        cfg = config(tmp_path, knot, pebble, zone="other.test", max_dns_wait=3)
        t0 = time.monotonic()
        r = certbot("renew", "-c", cfg, "--once")
        assert r.returncode == 1
        assert time.monotonic() - t0 < 30
        assert "_acme-challenge" in r.stderr, r.stderr
        assert not (tmp_path / "work" / "live").exists()
        assert knot.txt(f"_acme-challenge.{ZONE}") == []
    finally:
        stop(pebble.proc)


def test_killed_mid_order(servers, tmp_path):
    """SIGKILL while certbot waits for Pebble's validation (Pebble's VA sleeps up to 15 s
    here): the old live pair stays, and a rerun completes and leaves no challenge record."""
    knot, start_pebble = servers
    pebble = start_pebble(nonce_reject=0, nosleep=False)
    cfg = config(tmp_path, knot, pebble)
    work = tmp_path / "work"
    # The first pair, made without waiting: a second Pebble that does not sleep is not
    # needed, the first issuance simply takes Pebble's sleep once.
    r = certbot("renew", "-c", cfg, "--once")
    assert r.returncode == 0, r.stderr
    old_cert = os.path.realpath(work / "live" / "cert.pem")
    old_key = os.path.realpath(work / "live" / "key.pem")
    p = subprocess.Popen([str(CERTBOT), "renew", "-c", str(cfg), "--once", "--force"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_clean_env())
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and p.poll() is None:
            if knot.txt(f"_acme-challenge.{ZONE}"):
                break
            time.sleep(0.02)
        assert p.poll() is None, "certbot ended before it could be killed"
    finally:
        p.kill()
        p.wait(10)
    assert os.path.realpath(work / "live" / "cert.pem") == old_cert
    assert os.path.realpath(work / "live" / "key.pem") == old_key
    assert os.path.exists(old_cert) and os.path.exists(old_key)
    r = certbot("renew", "-c", cfg, "--once", "--force")
    assert r.returncode == 0, r.stderr
    assert os.path.realpath(work / "live" / "cert.pem") != old_cert
    assert knot.txt(f"_acme-challenge.{ZONE}") == []
    verify_chain(work, pebble.root(), tmp_path)


def test_tee_quotes_bind_account_and_key(servers, tmp_path, sim):
    """With a TEE (the simulator), acme-account.quote binds the account URI and each
    backup's cert.quote binds the certificate's public key."""
    import hashlib
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    import quoteparse

    knot, start_pebble = servers
    pebble = start_pebble(nonce_reject=0)
    cfg = config(tmp_path, knot, pebble)
    r = certbot("renew", "-c", cfg, "--once", env=sim.env)
    assert r.returncode == 0, r.stderr
    work = tmp_path / "work"
    acct = json.loads((work / "credentials.json").read_text())["account_id"]
    q = json.loads((work / "acme-account.quote").read_text())
    assert isinstance(q["event_log"], str)
    rd = quoteparse.parse(bytes.fromhex(q["quote"]))["report_data"]
    assert rd == hashlib.sha512(b"acme-account:" + acct.encode()).hexdigest()
    backup = pathlib.Path(os.path.realpath(work / "live" / "cert.pem")).parent
    cert = x509.load_pem_x509_certificate((backup / "cert.pem").read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    q = json.loads((backup / "cert.quote").read_text())
    rd = quoteparse.parse(bytes.fromhex(q["quote"]))["report_data"]
    assert rd == hashlib.sha512(b"cert-pubkey:" + spki).hexdigest()


def test_cli(tmp_path):
    r = certbot("cfg")
    assert r.returncode == 0 and 'dns_provider = "cloudflare"' in r.stdout
    out = tmp_path / "c.toml"
    assert certbot("cfg", "-w", out).returncode == 0
    assert os.stat(out).st_mode & 0o777 == 0o600
    # The defaults are not usable on their own: a configuration error names the key.
    r = certbot("renew", "-c", out, "--once")
    assert r.returncode == 3 and "cf_api_token" in r.stderr, r.stderr
    assert certbot("renew", "--bogus").returncode == 2
    assert certbot("frobnicate").returncode == 2
    assert certbot().returncode == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('dns_provider = "rfc2136"\nunknown_key = 1\n')
    r = certbot("renew", "-c", bad)
    assert r.returncode == 3 and "unknown_key" in r.stderr
    secret = "c2VjcmV0IHZhbHVlIHRoYXQgbXVzdCBub3QgbGVhaw=="
    cfg = tmp_path / "s.toml"
    cfg.write_text(f'dns_provider = "rfc2136"\nacme_url = "https://127.0.0.1:1/dir"\n'
                   f'workdir = "{tmp_path / "w"}"\nrenew_timeout = 5\n[rfc2136]\n'
                   f'server = "127.0.0.1"\nzone = "example.test"\ntsig_key_name = "k"\n'
                   f'tsig_secret = "{secret}"\n')
    r = certbot("renew", "-c", cfg, "--once")
    assert r.returncode == 1 and "127.0.0.1:1" in r.stderr
    assert secret not in r.stderr and secret not in r.stdout
    r = certbot("set-caa", "-c", cfg)
    assert r.returncode == 1 and "run certbot init first" in r.stderr
    assert secret not in r.stderr and secret not in r.stdout


class ProblemProxy:
    """HTTPS in front of Pebble: the first `count` POSTs whose path contains `match` get a
    problem document of type `ptype` (with a fresh nonce from Pebble and Retry-After: 1),
    everything else is passed through. Pebble builds its URLs from the Host header, which is
    forwarded as it came, so the directory points at the proxy."""

    def __init__(self, pebble, d, match, ptype, count):
        import http.client
        import http.server
        import threading

        self.injected, self.forwarded = 0, 0
        outer = self
        ctx_up = ssl.create_default_context(cafile=str(pebble.ca))

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _forward(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if method == "POST" and match in self.path and outer.injected < count:
                    outer.injected += 1
                    c = http.client.HTTPSConnection("127.0.0.1", pebble.port, context=ctx_up,
                                                    timeout=10)
                    c.request("HEAD", "/nonce-plz", headers={"Host": self.headers["Host"]})
                    nonce = c.getresponse().getheader("Replay-Nonce")
                    c.close()
                    doc = json.dumps({"type": f"urn:ietf:params:acme:error:{ptype}",
                                      "detail": "injected by the test"}).encode()
                    self.send_response(429 if ptype == "rateLimited" else 500)
                    self.send_header("Content-Type", "application/problem+json")
                    self.send_header("Replay-Nonce", nonce)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", str(len(doc)))
                    self.end_headers()
                    self.wfile.write(doc)
                    return
                outer.forwarded += 1
                c = http.client.HTTPSConnection("127.0.0.1", pebble.port, context=ctx_up,
                                                timeout=20)
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() not in ("connection", "content-length")}
                c.request(method, self.path, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(data)
                c.close()

            def do_GET(self):
                self._forward("GET")

            def do_HEAD(self):
                self._forward("HEAD")

            def do_POST(self):
                self._forward("POST")

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(d / "tls.pem"), str(d / "tls.key"))
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/dir"
        self.ca = pebble.ca
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_server_busy_backoff(servers, tmp_path):
    """serverInternal twice on newOrder: retried after the back-off, then issued. rateLimited
    on every newOrder: a bounded number of tries, then a clear error."""
    knot, start_pebble = servers
    pebble = start_pebble(nonce_reject=0)
    proxy = ProblemProxy(pebble, tmp_path / "pebble", "/order-plz", "serverInternal", 2)
    try:
        cfg = config(tmp_path, knot, proxy)
        r = certbot("renew", "-c", cfg, "--once")
        assert r.returncode == 0, r.stderr
        assert proxy.injected == 2
    finally:
        proxy.close()
    proxy = ProblemProxy(pebble, tmp_path / "pebble", "/order-plz", "rateLimited", 1000)
    try:
        cfg = config(tmp_path, knot, proxy)
        t0 = time.monotonic()
        r = certbot("renew", "-c", cfg, "--once", "--force")
        assert r.returncode == 1
        assert "rateLimited" in r.stderr and "injected by the test" in r.stderr, r.stderr
        assert proxy.injected == 4  # the first try and three retries
        assert time.monotonic() - t0 < 20
        assert knot.txt(f"_acme-challenge.{ZONE}") == []
    finally:
        proxy.close()


def test_init_hook_and_loop(servers, tmp_path):
    """init creates the account once; renew without --once issues, runs renewed_hook, stays
    up for the next round and stops on SIGTERM."""
    knot, start_pebble = servers
    pebble = start_pebble(nonce_reject=0)
    marker = tmp_path / "renewed"
    cfg = config(tmp_path, knot, pebble,
                 extra=f'renewed_hook = "echo renewed >> {marker}"\nrenew_interval = 1\n')
    work = tmp_path / "work"
    r = certbot("init", "-c", cfg)
    assert r.returncode == 0, r.stderr
    acct = json.loads((work / "credentials.json").read_text())["account_id"]
    assert certbot("init", "-c", cfg).returncode == 0
    assert json.loads((work / "credentials.json").read_text())["account_id"] == acct
    assert not (work / "live").exists()
    p = subprocess.Popen([str(CERTBOT), "renew", "-c", str(cfg)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=_clean_env())
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and not marker.exists():
            assert p.poll() is None, p.stderr.read().decode()
            time.sleep(0.1)
        assert marker.read_text() == "renewed\n"
        time.sleep(2.5)  # two more rounds: nothing is due, the hook does not run again
        assert p.poll() is None
        assert marker.read_text() == "renewed\n"
        assert len(list((work / "backup").iterdir())) == 1
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    verify_chain(work, pebble.root(), tmp_path)


def test_caa_at_account_creation_keeps_iodef(servers, tmp_path):
    """A new account sets CAA so that only it may issue, through DNS-01: the operator's iodef
    stays, another CA's issue record goes; set-caa again changes nothing; issuance and a
    forced renewal still work under the records it set."""
    knot, start_pebble = servers
    pebble = start_pebble(nonce_reject=0)
    knot.zone_set(f"{ZONE}.", "CAA", '0 iodef "mailto:security@example.test"')
    knot.zone_set(f"{ZONE}.", "CAA", '0 issue "other-ca.test"')
    cfg = config(tmp_path, knot, pebble, caa=True, extra='caa_issuer = "pebble.test"\n')
    r = certbot("init", "-c", cfg)
    assert r.returncode == 0, r.stderr
    acct = json.loads((tmp_path / "work" / "credentials.json").read_text())["account_id"]
    want = f"pebble.test;validationmethods=dns-01;accounturi={acct}"
    expected = sorted(['0 iodef "mailto:security@example.test"', f'0 issue "{want}"',
                       f'0 issuewild "{want}"'])
    assert knot.caa(ZONE) == expected
    r = certbot("set-caa", "-c", cfg)
    assert r.returncode == 0, r.stderr
    assert knot.caa(ZONE) == expected
    r = certbot("renew", "-c", cfg, "--once")
    assert r.returncode == 0, r.stderr
    r = certbot("renew", "-c", cfg, "--once", "--force")
    assert r.returncode == 0, r.stderr
    assert knot.caa(ZONE) == expected
    verify_chain(tmp_path / "work", pebble.root(), tmp_path)


def test_set_caa_needs_an_account(tmp_path):
    (tmp_path / "c.toml").write_text(f"""workdir = "{tmp_path / 'none'}"
dns_provider = "rfc2136"
[rfc2136]
server = "127.0.0.1"
port = 1
zone = "{ZONE}"
tsig_key_name = "{KEY_NAME}"
tsig_secret = "{SECRET}"
""")
    r = certbot("set-caa", "-c", tmp_path / "c.toml")
    assert r.returncode == 1 and "run certbot init first" in r.stderr, r.stderr


def leaf_sans(work):
    from cryptography import x509
    leaf = x509.load_pem_x509_certificate((work / "live" / "cert.pem").read_bytes())
    ext = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return sorted(ext.value.get_values_for_type(x509.DNSName))


def test_renewal_keeps_the_certificates_names(servers, tmp_path):
    """A due renewal asks for the names of the certificate in place (as upstream), and says so
    when the configured list differs; --force asks for the configured list. The key stays."""
    knot, start_pebble = servers
    pebble = start_pebble(nonce_reject=0)
    try:
        work = tmp_path / "work"
        cfg = config(tmp_path, knot, pebble)
        r = certbot("renew", "-c", cfg, "--once")
        assert r.returncode == 0, r.stderr
        assert leaf_sans(work) == sorted([f"*.{ZONE}", ZONE])
        key = pubkey(work / "live" / "key.pem")
        # the operator adds a name; every certificate is due from now on
        text = cfg.read_text().replace(f'domains = ["*.{ZONE}", "{ZONE}"]',
                                       f'domains = ["*.{ZONE}", "{ZONE}", "www.{ZONE}"]\n'
                                       'renew_days_before = 36500')
        assert text != cfg.read_text()
        cfg.write_text(text)
        first = os.path.realpath(work / "live" / "cert.pem")
        r = certbot("renew", "-c", cfg, "--once")
        assert r.returncode == 0, r.stderr
        second = os.path.realpath(work / "live" / "cert.pem")
        assert second != first  # renewed (due) ...
        assert leaf_sans(work) == sorted([f"*.{ZONE}", ZONE])  # ... for the same names
        assert "renewing the certificate's names" in r.stderr and f"www.{ZONE}" in r.stderr, \
            r.stderr
        assert "`renew --force` requests the configured ones" in r.stderr
        # --force: the configured names, the same key
        r = certbot("renew", "-c", cfg, "--once", "--force")
        assert r.returncode == 0, r.stderr
        assert "--force requests the configured names" in r.stderr, r.stderr
        assert leaf_sans(work) == sorted([f"*.{ZONE}", ZONE, f"www.{ZONE}"])
        assert pubkey(work / "live" / "key.pem") == key
        # the names agree again: renewed without a word about them
        r = certbot("renew", "-c", cfg, "--once")
        assert r.returncode == 0, r.stderr
        assert "the configuration lists" not in r.stderr, r.stderr
        assert leaf_sans(work) == sorted([f"*.{ZONE}", ZONE, f"www.{ZONE}"])
        assert len(list((work / "backup").iterdir())) == 4
        assert knot.txt(f"_acme-challenge.{ZONE}") == []
        assert knot.txt(f"_acme-challenge.www.{ZONE}") == []
    finally:
        stop(pebble.proc)

"""ct_monitor against a real `tproxy --dev` and a loopback stand-in for crt.sh.

tproxy's certbot workdir (DIR/certbot) is filled the way certbot leaves it: backup/<ts>/cert.pem
and key.pem, cert.quote next to them (a simulator quote whose report_data is
SHA-512("cert-pubkey:" || SPKI DER), made with `tdxctl quote`), acme-account.quote next to
credentials.json, and live/ symlinks to the newest backup. The stand-in answers
/?q=<domain>&output=json with crt.sh-shaped JSON, /?d=<id> with a PEM, and takes webhook POSTs."""
import hashlib
import http.server
import json
import os
import pathlib
import subprocess
import threading
import time
import urllib.parse

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import BUILD, TDXCTL, _clean_env
from test_kms_common import read_line
from tproxy_common import TPROXY, key_pem, make_cert, pem

CT_MONITOR = BUILD / "src" / "ct_monitor" / "ct_monitor"
DOMAIN = "app.localhost"

pytestmark = pytest.mark.skipif(not CT_MONITOR.exists() or not TPROXY.exists(),
                                reason="ct_monitor or tproxy not built")


def spki_of(cert):
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


# ---- a crt.sh stand-in -----------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        st = self.server.st
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        with st.lock:
            st.requests.append(self.path)
        if "d" in q:
            c = st.certs.get(int(q["d"][0]))
            if c is None:
                return self._send(404, b"not found", "text/plain")
            return self._send(200, pem(c), "application/x-pem-file")
        if q.get("output") == ["json"]:
            assert q.get("q") == [st.domain] and q.get("limit") == ["10000"], self.path
            if st.raw is not None:
                return self._send(200, st.raw, "application/json")
            rows = [dict(e) for e in st.entries.values()]
            rows.reverse()  # crt.sh lists the newest first; ct_monitor must not care
            return self._send(200, json.dumps(rows).encode(), "application/json")
        return self._send(404, b"?", "text/plain")

    def do_POST(self):
        st = self.server.st
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        if self.path.endswith("/Tproxy.AcmeInfo"):  # a tproxy's answer, replayed over http://
            if st.acme_info is None:
                return self._send(404, b"?", "text/plain")
            return self._send(200, st.acme_info, "application/octet-stream")
        with st.lock:
            st.hooks.append(json.loads(body))
        self._send(st.hook_status, b"{}", "application/json")

    def log_message(self, *a):
        pass


class CrtSh:
    def __init__(self):
        self.domain = DOMAIN
        self.lock = threading.Lock()
        self.entries = {}  # id -> crt.sh JSON row
        self.certs = {}    # id -> certificate
        self.requests = []
        self.hooks = []
        self.hook_status = 200
        self.raw = None    # bytes served instead of the entries
        self.acme_info = None  # bytes served at /prpc/Tproxy.AcmeInfo
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.srv.daemon_threads = True
        self.srv.st = self
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        self.th = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.1},
                                   daemon=True)
        self.th.start()

    def add(self, cid, cert, names=None):
        names = names or [f"*.{DOMAIN}"]
        self.certs[cid] = cert
        self.entries[cid] = {
            "issuer_ca_id": 16418, "issuer_name": "C=US, O=Let's Encrypt, CN=R3",
            "common_name": names[0], "name_value": "\n".join(names), "id": cid,
            "entry_timestamp": "2024-10-25T08:41:40.377", "not_before": "2024-10-25T07:41:40",
            "not_after": "2025-01-23T07:41:39", "serial_number": f"{cid:032x}",
            "result_count": 3}

    def drop(self, cid):
        self.entries.pop(cid, None)
        self.certs.pop(cid, None)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


# ---- tproxy --dev and its certbot workdir ------------------------------------------------------

class Workdir:
    """DIR/certbot as certbot leaves it, with quotes made on the simulated platform sim."""

    def __init__(self, d, sim):
        self.dir = pathlib.Path(d)
        self.sim = sim
        (self.dir / "backup").mkdir(parents=True, exist_ok=True)
        self.n = 0

    def quote(self, report_data):
        p = self.sim.tdxctl.run("quote", input=report_data)
        log = (self.sim.dir / "eventlog.jsonl").read_text()
        return json.dumps({"quote": p.stdout.hex(), "event_log": log})

    def cert_quote(self, spki):
        return self.quote(hashlib.sha512(b"cert-pubkey:" + spki).digest())

    def backup(self, key=None, quote="auto"):
        """A new backup/<ts>/ with a certificate for key (new when None); quote: "auto" = a
        quote for this key, None = no cert.quote, else the text to write."""
        self.n += 1
        ts = f"2024-10-25T07:41:{self.n:02d}.377174477Z"
        b = self.dir / "backup" / ts
        b.mkdir()
        cert, key = make_cert("*." + DOMAIN, ["*." + DOMAIN, DOMAIN], key=key)
        (b / "cert.pem").write_bytes(pem(cert))
        (b / "key.pem").write_bytes(key_pem(key))
        os.chmod(b / "key.pem", 0o600)
        if quote == "auto":
            quote = self.cert_quote(spki_of(cert))
        if quote is not None:
            (b / "cert.quote").write_text(quote)
        live = self.dir / "live"
        live.mkdir(exist_ok=True)
        for n in ("cert.pem", "key.pem"):  # remove + symlink, as certbot does
            (live / n).unlink(missing_ok=True)
            (live / n).symlink_to((b / n).resolve())
        return cert, key


@pytest.fixture
def env(tmp_path, sim):
    d = tmp_path / "tp"
    penv = dict(_clean_env(), DSTACK_SIM_DIR=str(sim.dir), PATH="/nonexistent")
    log = open(tmp_path / "tproxy.log", "wb")
    proc = subprocess.Popen([str(TPROXY), "--dev", str(d)], stdout=subprocess.PIPE, stderr=log,
                            env=penv)
    crt = CrtSh()
    try:
        lines = [read_line(proc, time.time() + 30) for _ in range(2)]
        assert lines[0] and lines[0].startswith("listening https://127.0.0.1:"), lines

        class E:
            pass
        e = E()
        e.tmp, e.sim, e.crt, e.dir = tmp_path, sim, crt, d
        e.port = int(lines[0].rsplit(":", 1)[1])
        # the TD that makes the quotes booted the newest way: its event log names its app
        compose = hashlib.sha256(b'{"name":"tproxy"}').hexdigest()
        e.app_id = compose[:40]
        for name, payload in (("system-preparing", ""), ("app-id", e.app_id),
                              ("compose-hash", compose), ("instance-id", "11" * 20),
                              ("boot-mr-done", "")):
            sim.tdxctl.run("extend", "-a", name, "--payload", payload)
        e.wd = Workdir(d / "certbot", sim)
        e.state = tmp_path / "ct.state"
        e.hook = crt.url + "/hook"

        def run(*extra, state=True, ca=True, check=None, timeout=60, domain=DOMAIN, app="pin"):
            args = [str(CT_MONITOR), "-t", f"https://localhost:{e.port}/prpc", "-d", domain,
                    "--crtsh-url", crt.url, "--once", "--allow-simulator",
                    "--sim-dir", str(sim.dir)]
            if app == "pin":  # the app whose TD makes the quotes (see the event log above)
                args += ["--app-id", e.app_id]
            elif app == "any":
                args += ["--any-app"]
            if state:
                args += ["--state", str(e.state)]
            if ca:
                args += ["--tproxy-ca", str(d / "certs" / "ca.cert")]
            p = subprocess.run(args + list(extra), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=_clean_env(), timeout=timeout)
            p.err = p.stderr.decode(errors="replace")
            if check is not None:
                assert p.returncode == check, (p.returncode, p.err)
            return p
        e.run = run
        yield e
    finally:
        crt.close()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        log.close()


def state_of(e):
    return json.loads(e.state.read_text())


def alarm_lines(err):
    return [ln for ln in err.splitlines() if "ALARM" in ln]


# ---- tests -----------------------------------------------------------------------------------

def test_known_keys_pass_and_foreign_key_alarms(env):
    e = env
    c1, k1 = e.wd.backup()
    c2, k2 = e.wd.backup()
    c2b, _ = e.wd.backup(key=k2)  # a renewal with the same key
    e.crt.add(100, c1)
    e.crt.add(101, c2)
    e.crt.add(102, c2b)
    p = e.run("--webhook", e.hook, check=0)
    assert not alarm_lines(p.err), p.err
    assert "quote verified" in p.err and "SIMULATED" in p.err, p.err
    assert f"counting only those of app {e.app_id}" in p.err and "ANY" not in p.err, p.err
    assert state_of(e)["last_checked"] == 102 and state_of(e)["quotes_seen"] is True
    assert e.crt.hooks == []

    # a certificate for a name under the domain with a key tproxy never made
    foreign, fk = make_cert("evil." + DOMAIN, ["evil." + DOMAIN])
    e.crt.add(103, foreign, names=["evil." + DOMAIN])
    n_req = len(e.crt.requests)
    p = e.run("--webhook", e.hook)
    assert p.returncode == 1, p.err
    lines = alarm_lines(p.err)
    fp = hashlib.sha256(spki_of(foreign)).hexdigest()
    assert len(lines) == 1 and "103" in lines[0] and fp in lines[0], p.err
    assert f"{103:032x}" in lines[0] and "evil." + DOMAIN in lines[0]
    assert len(e.crt.hooks) == 1
    h = e.crt.hooks[0]
    assert h["event"] == "unknown_certificate_key" and h["crtsh_id"] == 103
    assert h["spki_sha256"] == fp and h["names"] == ["evil." + DOMAIN]
    assert h["domain"] == DOMAIN and "ALARM" in h["text"]
    # only the new entry was fetched: the checked ones are not asked for again
    fetched = [r for r in e.crt.requests[n_req:] if "d=" in r]
    assert fetched == ["/?d=103"], fetched
    assert state_of(e)["last_checked"] == 103

    # a restart with the state does not alarm again
    p = e.run("--webhook", e.hook, check=0)
    assert not alarm_lines(p.err) and len(e.crt.hooks) == 1, p.err

    # names outside the domain are not this monitor's business (crt.sh's search is loose)
    other, _ = make_cert("x.example.org", ["x.example.org"])
    e.crt.add(104, other, names=[DOMAIN + ".example.org"])
    p = e.run(check=0)
    assert not alarm_lines(p.err) and state_of(e)["last_checked"] == 104


def test_webhook_failure_alarms_again(env):
    e = env
    c1, _ = e.wd.backup()
    e.crt.add(10, c1)
    e.run(check=0)
    foreign, _ = make_cert("*." + DOMAIN, ["*." + DOMAIN])
    e.crt.add(11, foreign)
    e.crt.add(12, c1)
    e.crt.hook_status = 500
    p = e.run("--webhook", e.hook)
    assert p.returncode == 1 and "webhook" in p.err and "HTTP 500" in p.err, p.err
    assert state_of(e)["last_checked"] == 10  # not past the undelivered alarm
    e.crt.hook_status = 200
    p = e.run("--webhook", e.hook)
    assert p.returncode == 1 and len(alarm_lines(p.err)) == 1, p.err
    assert [h["crtsh_id"] for h in e.crt.hooks] == [11, 11]
    assert state_of(e)["last_checked"] == 12
    e.run("--webhook", e.hook, check=0)


def test_quote_binding_another_key_is_refused(env):
    e = env
    c1, k1 = e.wd.backup()
    # key 3's cert.quote is a genuine quote, but for key 1's report data
    good_for_1 = e.wd.cert_quote(spki_of(c1))
    c3, _ = e.wd.backup(quote=good_for_1)
    # key 4's quote binds key 4 with the account prefix instead of the certificate one
    k4 = ec.generate_private_key(ec.SECP256R1())
    c4, _ = e.wd.backup(key=k4, quote=e.wd.quote(hashlib.sha512(
        b"acme-account:" + spki_of(make_cert("x", None, key=k4)[0])).digest()))
    # key 5's quote is corrupted (one byte of the signature flipped)
    k5 = ec.generate_private_key(ec.SECP256R1())
    c5tmp, _ = make_cert("x", None, key=k5)
    q = json.loads(e.wd.cert_quote(spki_of(c5tmp)))
    raw = bytearray(bytes.fromhex(q["quote"]))
    raw[700] ^= 1
    q["quote"] = raw.hex()
    c5, _ = e.wd.backup(key=k5, quote=json.dumps(q))
    e.crt.add(1, c1)
    e.crt.add(3, c3)
    e.crt.add(4, c4)
    e.crt.add(5, c5)
    p = e.run()
    assert p.returncode == 1, p.err
    ids = sorted(int(ln.split("crt.sh id ")[1].split()[0]) for ln in alarm_lines(p.err))
    assert ids == [3, 4, 5], p.err
    n3 = hashlib.sha256(spki_of(c3)).hexdigest()
    assert any(n3 in ln and "key_not_bound" in ln for ln in p.err.splitlines()), p.err
    n5 = hashlib.sha256(spki_of(c5)).hexdigest()
    assert any(n5 in ln and "NOT known" in ln for ln in p.err.splitlines()), p.err
    # tproxy still lists all of them in hist_keys: that alone never makes a key known
    st, = [ln for ln in p.err.splitlines() if "round:" in ln]
    assert "4 certificates checked, 3 alarm(s)" in st, st


def test_account_quote_and_app_pin(env):
    e = env
    uri = "https://acme.test/acct/7"
    (e.wd.dir / "credentials.json").write_text(json.dumps({"account_id": uri, "credentials": {}}))
    (e.wd.dir / "acme-account.quote").write_text(
        e.wd.quote(hashlib.sha512(b"acme-account:" + uri.encode()).digest()))
    c1, _ = e.wd.backup()
    e.crt.add(7, c1)
    p = e.run(check=0)
    assert f"ACME account {uri}: quote verified" in p.err, p.err
    # pinned to the app that made the quotes (in any case, or in a comma-separated list):
    # known; to other ones: not
    p = e.run("--app-id", e.app_id.upper(), state=False, check=0, app=None)
    assert f"app {e.app_id}" in p.err, p.err
    p = e.run("--app-id", "ab" * 20 + "," + e.app_id, state=False, check=0, app=None)
    p = e.run("--app-id", "ab" * 20, "--app-id", "cd" * 20, state=False, app=None)
    assert p.returncode == 1 and "not one of --app-id" in p.err, p.err
    assert len(alarm_lines(p.err)) == 1
    assert "ACME account" in p.err and "REFUSED" in p.err, p.err
    p = e.run("--app-id", "ab" * 20 + ",CD" + "cd" * 19, state=False, app=None)
    assert p.returncode == 1 and "not one of --app-id" in p.err, p.err
    # --any-app: any genuine TD's quote counts, with a warning
    p = e.run(state=False, check=0, app="any")
    assert "ANY genuine TD counts" in p.err and "quote verified" in p.err, p.err


def test_no_td_trusted_by_default(env):
    """Without --app-id or --any-app ct_monitor does not start: otherwise a TD the tproxy host
    runs itself could quote a key the host made."""
    e = env
    c1, _ = e.wd.backup()
    e.crt.add(1, c1)
    n_req = len(e.crt.requests)
    p = e.run(app=None)
    assert p.returncode == 2 and "no TD is trusted by default" in p.err, p.err
    assert "--app-id" in p.err and "--any-app" in p.err, p.err
    p = e.run("--any-app", "--app-id", e.app_id, app=None)
    assert p.returncode == 2 and "contradict" in p.err, p.err
    assert len(e.crt.requests) == n_req and not e.state.exists()
    h = subprocess.run([str(CT_MONITOR), "--help"], stdout=subprocess.PIPE, timeout=30)
    assert h.returncode == 0 and b"--any-app" in h.stdout and b"--app-id HEX" in h.stdout


def test_legacy_tproxy_without_quotes(env):
    e = env
    c1, _ = e.wd.backup(quote=None)
    e.crt.add(1, c1)
    name = hashlib.sha256(spki_of(c1)).hexdigest()
    # over TLS that is not verified, keys without a quote are ignored: the certificate alarms
    p = e.run(ca=False, state=False)
    assert p.returncode == 1 and len(alarm_lines(p.err)) == 1, p.err
    assert "not verified" in p.err and "IGNORED" in p.err, p.err
    assert f"key {name}: NOT known, tproxy lists it without a quote (AcmeInfo was not read " \
           "over TLS verified with --tproxy-ca)" in p.err, p.err
    assert "WITHOUT attestation" not in p.err, p.err
    # over plain http:// --tproxy-ca verifies nothing: ignored as well (tproxy's own answer,
    # replayed by the stand-in)
    import ssl
    import urllib.request
    req = urllib.request.Request(f"https://localhost:{e.port}/prpc/Tproxy.AcmeInfo", data=b"",
                                 headers={"Accept": "application/octet-stream",
                                          "Content-Type": "application/octet-stream"})
    ctx = ssl.create_default_context(cafile=str(e.dir / "certs" / "ca.cert"))
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        e.crt.acme_info = r.read()
    assert e.crt.acme_info
    p = subprocess.run([str(CT_MONITOR), "-t", f"{e.crt.url}/prpc", "-d", DOMAIN,
                        "--crtsh-url", e.crt.url, "--once", "--app-id", e.app_id,
                        "--tproxy-ca", str(e.dir / "certs" / "ca.cert")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_clean_env(),
                       timeout=60)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 1 and len(alarm_lines(err)) == 1, err
    assert "IGNORED" in err and "WITHOUT attestation" not in err, err
    # over TLS verified with --tproxy-ca: the legacy rule, with a warning
    p = e.run(check=0)
    assert "WITHOUT attestation" in p.err and "IGNORED" not in p.err, p.err
    assert state_of(e)["quotes_seen"] is False
    # --require-quotes: no legacy rule
    p = e.run("--require-quotes", state=False)
    assert p.returncode == 1 and len(alarm_lines(p.err)) == 1, p.err
    # once a quoted key was listed, unquoted keys stop counting, even if the quotes go away
    c2, _ = e.wd.backup()
    e.crt.add(2, c2)
    e.crt.drop(1)
    p = e.run(check=0)
    assert state_of(e)["quotes_seen"] is True
    for q in e.wd.dir.glob("backup/*/cert.quote"):
        q.unlink()
    c3, _ = e.wd.backup(quote=None)
    e.crt.add(3, c3)
    p = e.run()
    assert p.returncode == 1 and "it did before" in p.err, p.err


def test_vanished_last_checked(env):
    e = env
    c1, _ = e.wd.backup()
    for i in (100, 101, 105):
        e.crt.add(i, c1)
    e.run(check=0)
    assert state_of(e)["last_checked"] == 105
    # 105 is gone, 110 is new: checked, then the newest is remembered
    e.crt.drop(105)
    e.crt.add(110, c1)
    p = e.run(check=0)
    assert "no longer holds the last checked entry (id 105)" in p.err, p.err
    assert state_of(e)["last_checked"] == 110
    # every id now below the remembered one: go on from the newest instead of waiting
    e.crt.drop(110)
    p = e.run(check=0)
    assert state_of(e)["last_checked"] == 101
    e.crt.add(102, c1)
    n_req = len(e.crt.requests)
    p = e.run(check=0)
    assert [r for r in e.crt.requests[n_req:] if "d=" in r] == ["/?d=102"]
    assert state_of(e)["last_checked"] == 102


def test_oversized_and_malformed_answers(env):
    e = env
    c1, _ = e.wd.backup()
    e.crt.add(1, c1)
    e.run(check=0)
    before = e.state.read_text()
    e.crt.raw = b"[" + b" " * (64 * 1024 * 1024) + b"]"
    p = e.run()
    assert p.returncode == 4 and "over 64 MiB: refused" in p.err, p.err
    assert e.state.read_text() == before
    for raw, msg in ((b'{"id":1}', "not a JSON array"), (b"<html>rate limited</html>", "array"),
                     (b'[{"id":"7"}]', "id"), (b'[{"id":1},', "element 1")):
        e.crt.raw = raw
        p = e.run()
        assert p.returncode == 4 and "unusable answer" in p.err and msg in p.err, (raw, p.err)
        assert e.state.read_text() == before
    e.crt.raw = None
    e.run(check=0)


def test_errors_and_daemon_mode(env, tmp_path):
    e = env
    c1, _ = e.wd.backup()
    e.crt.add(1, c1)
    # tproxy unreachable: a round error, nothing remembered
    p = subprocess.run([str(CT_MONITOR), "-t", "https://127.0.0.1:1/prpc", "-d", DOMAIN,
                        "--crtsh-url", e.crt.url, "--once", "--state", str(e.state),
                        "--any-app"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_clean_env(),
                       timeout=60)
    assert p.returncode == 4 and b"known keys" in p.stderr, p.stderr
    assert not e.state.exists()
    # bad command lines
    # (each otherwise complete, so that the refusal is for the reason given)
    for args, why in ((["-d", DOMAIN, "--any-app"], b"--tproxy-uri URL is required"),
                      (["-t", "https://x/prpc", "--any-app"], b"--domain DOMAIN is required"),
                      (["-t", "https://x", "-d", "a_b.com", "--any-app"], b"invalid domain"),
                      (["-t", "https://x", "-d", "example.c0m", "--any-app"], b"invalid domain"),
                      (["-t", "https://x", "-d", DOMAIN, "--any-app", "--interval", "0"],
                       b"--interval"),
                      (["-t", "https://x", "-d", DOMAIN, "--app-id", "xyz"], b"not 'xyz'"),
                      (["-t", "https://x", "-d", DOMAIN, "--app-id", "abcd,xyz"], b"not 'xyz'"),
                      (["-t", "https://x", "-d", DOMAIN, "--app-id", ","], b"wants hex"),
                      (["-t", "https://x", "-d", DOMAIN], b"no TD is trusted by default")):
        p = subprocess.run([str(CT_MONITOR), *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=_clean_env(), timeout=30)
        assert p.returncode == 2 and why in p.stderr, (args, p.stderr)
    # a state file that is not one
    e.state.write_text("garbage")
    p = e.run()
    assert p.returncode == 3 and "not a ct_monitor state file" in p.err, p.err
    e.state.unlink()
    # the loop: rounds every --interval, SIGTERM ends it with 0
    args = [str(CT_MONITOR), "-t", f"https://localhost:{e.port}/prpc", "-d", DOMAIN,
            "--crtsh-url", e.crt.url, "--allow-simulator", "--sim-dir", str(e.sim.dir),
            "--interval", "1", "--state", str(e.state), "--app-id", e.app_id]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=_clean_env())
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not (e.state.exists() and
                                               state_of(e)["last_checked"] == 1):
            time.sleep(0.1)
        assert state_of(e)["last_checked"] == 1
        e.crt.add(2, c1)
        while time.time() < deadline and state_of(e)["last_checked"] != 2:
            time.sleep(0.1)
        assert state_of(e)["last_checked"] == 2
    finally:
        proc.terminate()
        rc = proc.wait(timeout=30)
        err = proc.stderr.read().decode(errors="replace")
    assert rc == 0, err
    assert err.count("round:") >= 2, err


def test_with_certbot(env, tmp_path):
    """The workdir the real certbot leaves (ACME against Pebble, DNS-01 through knot, quotes
    from the simulator) is what ct_monitor accepts: the binding is one definition
    (lib/attest/quoted_key.h) on both sides."""
    import shutil
    if not (shutil.which("knotd") and shutil.which("pebble") and shutil.which("kdig")):
        pytest.skip("knotd, kdig and pebble are needed (scripts/deps.sh)")
    import test_certbot as tc
    e = env
    knot = tc.Knot(tmp_path / "knot")
    pebble = None
    try:
        (tmp_path / "pebble").mkdir()
        pebble = tc.Pebble(tmp_path / "pebble", knot.port, nonce_reject=0)
        cfg = tc.config(tmp_path, knot, pebble)
        text = cfg.read_text().replace(f'workdir = "{tmp_path / "work"}"',
                                       f'workdir = "{e.wd.dir}"')
        cfg.write_text(text)
        shutil.rmtree(e.wd.dir / "live")  # tproxy --dev's self-signed pair: certbot starts anew
        r = tc.certbot("renew", "-c", cfg, "--once", env=e.sim.env)
        assert r.returncode == 0, r.stderr
    finally:
        if pebble:
            tc.stop(pebble.proc)
        tc.stop(knot.proc)
    from cryptography import x509
    leaf = x509.load_pem_x509_certificate((e.wd.dir / "live" / "cert.pem").read_bytes())
    acct = json.loads((e.wd.dir / "credentials.json").read_text())["account_id"]
    e.crt.domain = tc.ZONE
    e.crt.add(1, leaf, names=["*." + tc.ZONE, tc.ZONE])
    foreign, _ = make_cert("*." + tc.ZONE, ["*." + tc.ZONE])
    e.crt.add(2, foreign, names=["*." + tc.ZONE])
    p = e.run("--require-quotes", domain=tc.ZONE)
    assert p.returncode == 1, p.err
    assert f"ACME account {acct}: quote verified" in p.err, p.err
    name = hashlib.sha256(spki_of(leaf)).hexdigest()
    assert f"key {name}: known, quote verified" in p.err, p.err
    lines = alarm_lines(p.err)
    assert len(lines) == 1 and "crt.sh id 2 " in lines[0], p.err

"""certbot's DNS code end to end: the Cloudflare provider (through tests/it/certbot_dns_driver)
against a fake Cloudflare API that writes into a real knotd, read back with kdig; the CAA
procedure; retries on 429/500; the c-ares propagation check against knotd."""
import json
import os
import pathlib
import subprocess
import threading
import time

import pytest

from cloudflare_fake import CloudflareFake, Knot

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("DSTACK_BUILD") or REPO / "build")
DRIVER = BUILD / "tests" / "it" / "certbot_dns_driver"
ZONE = "example.test"
TOKEN = "cf-test-token-0123456789"
ACCT = "https://acme-v02.api.letsencrypt.org/acme/acct/424242"
WANT = f"letsencrypt.org;validationmethods=dns-01;accounturi={ACCT}"


@pytest.fixture
def dns(tmp_path):
    if not DRIVER.exists():
        pytest.fail(f"{DRIVER} not built (set DSTACK_BUILD)")
    knot = Knot(tmp_path / "knot", ZONE).start()
    cf = None
    try:
        cf = CloudflareFake(knot, TOKEN).start()
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN + "\n")
        token_file.chmod(0o600)
        yield Env(knot, cf, token_file)
    finally:
        if cf:
            cf.stop()
        knot.stop()


class Env:
    def __init__(self, knot, cf, token_file):
        self.knot, self.cf, self.token_file = knot, cf, token_file

    def run(self, *args, zone_id=True, retries=3, backoff_ms=50, token_file=None, timeout=60,
            extra=()):
        cmd = [str(DRIVER), "--api-url", self.cf.url,
               "--token-file", str(token_file or self.token_file),
               "--retries", str(retries), "--backoff-ms", str(backoff_ms),
               "--timeout-ms", "5000", *extra]
        if zone_id:
            cmd += ["--zone-id", CloudflareFake.ZONE_ID]
        cmd += [str(a) for a in args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        assert p.returncode in (0, 1), f"driver exited {p.returncode}: {p.stderr}{p.stdout}"
        lines = p.stdout.strip().splitlines()
        assert len(lines) == 1, f"driver output: {p.stdout!r} {p.stderr!r}"
        out = json.loads(lines[0])
        out["_rc"] = p.returncode
        out["_all"] = p.stdout + p.stderr
        return out

    def ok(self, *args, **kw):
        out = self.run(*args, **kw)
        assert out["_rc"] == 0, out
        return out

    def caa(self, name):
        return self.knot.query(name, "CAA")


def test_txt_add_list_del(dns):
    name = f"_acme-challenge.{ZONE}"
    rid = dns.ok("txt-add", name, "value-1")["id"]
    rid2 = dns.ok("txt-add", name, "value 2 \"quoted\"")["id"]
    assert dns.knot.query(name, "TXT") == sorted(['"value 2 \\"quoted\\""', '"value-1"'])
    recs = dns.ok("list", name, "TXT")["records"]
    assert sorted((r["id"], r["value"]) for r in recs) == sorted(
        [(rid, "value-1"), (rid2, 'value 2 "quoted"')])
    assert all(r["name"] == name and r["type"] == "TXT" for r in recs)
    dns.ok("del", name, rid)
    assert dns.knot.query(name, "TXT") == ['"value 2 \\"quoted\\""']
    # deleting again: already gone is success
    dns.ok("del", name, rid)
    dns.ok("del", name, rid2)
    assert dns.knot.query(name, "TXT") == []
    assert dns.ok("list", name)["records"] == []
    # the token went as a bearer header, never in a URL
    assert all(TOKEN not in path for _, path in dns.cf.api_calls())


def test_zone_lookup_and_name_servers(dns):
    name = f"_acme-challenge.a.b.{ZONE}"
    rid = dns.ok("txt-add", name, "v", zone_id=False)["id"]
    assert dns.knot.query(name, "TXT") == ['"v"']
    looked = [p for _, p in dns.cf.api_calls("GET", "/zones?name=")]
    # walked up the labels until the zone answered
    assert looked == [f"/zones?name=_acme-challenge.a.b.{ZONE}", f"/zones?name=a.b.{ZONE}",
                      f"/zones?name=b.{ZONE}", f"/zones?name={ZONE}"]
    assert dns.ok("ns", name, zone_id=False)["servers"] == ["ns1.example.test:53",
                                                            "ns2.example.test:53"]
    assert dns.ok("ns", name, extra=["--ns", "127.0.0.1:5353"])["servers"] == ["127.0.0.1:5353"]
    dns.ok("del", name, rid, zone_id=False)
    out = dns.run("txt-add", "_acme-challenge.other.example", "v", zone_id=False)
    assert out["_rc"] == 1 and "no zone" in out["error"], out


def test_caa_set(dns):
    name = f"app.{ZONE}"
    # what an operator had: an iodef, another CA, and an old account of ours
    dns.ok("caa-add", name, 0, "iodef", "mailto:security@example.test")
    dns.ok("caa-add", name, 0, "issue", "otherca.example")
    dns.ok("caa-add", name, 0, "issuewild",
           "letsencrypt.org;validationmethods=dns-01;accounturi=https://x/acct/1")
    dns.ok("txt-add", name, "unrelated")
    dns.ok("caa-set", ACCT, f"*.{name}", name)
    want = sorted(['0 iodef "mailto:security@example.test"', f'0 issue "{WANT}"',
                   f'0 issuewild "{WANT}"'])
    assert dns.caa(name) == want
    assert dns.knot.query(name, "TXT") == ['"unrelated"']
    # the provider's view agrees
    recs = dns.ok("list", name, "CAA")["records"]
    assert sorted(r["value"] for r in recs) == want
    # twice: the same records, the wanted ones not even replaced
    ids = sorted(r["id"] for r in recs)
    dns.ok("caa-set", ACCT, name)
    assert dns.caa(name) == want
    assert sorted(r["id"] for r in dns.ok("list", name, "CAA")["records"]) == ids


def test_caa_set_failure_leaves_guards_then_rerun(dns):
    name = f"guarded.{ZONE}"
    dns.ok("caa-add", name, 0, "iodef", "mailto:security@example.test")
    dns.ok("caa-add", name, 0, "issue", "otherca.example")
    # list, guard, guard are served; from the second listing on Cloudflare fails for good
    dns.cf.fail_next(1000, 500, after=3)
    t0 = time.time()
    out = dns.run("caa-set", ACCT, name, retries=1, backoff_ms=20)
    assert time.time() - t0 < 5
    dns.cf.fail_next(0)
    assert out["_rc"] == 1 and "HTTP 500" in out["error"], out
    served = dns.caa(name)
    # the guards forbid issuance; nothing was removed yet
    assert served == sorted(['0 iodef "mailto:security@example.test"', '0 issue ";"',
                             '0 issue "otherca.example"', '0 issuewild ";"']), served
    # the rerun completes (and does not add the guards twice)
    dns.ok("caa-set", ACCT, name)
    assert dns.caa(name) == sorted(['0 iodef "mailto:security@example.test"',
                                    f'0 issue "{WANT}"', f'0 issuewild "{WANT}"'])


def test_pagination_and_exact_name(dns):
    name = f"_acme-challenge.{ZONE}"
    values = [f"v{i}" for i in range(7)]
    for v in values:
        dns.ok("txt-add", name, v)
    dns.ok("txt-add", f"x.{name}", "other-name")
    before = len(dns.cf.api_calls("GET", "/zones/"))
    recs = dns.ok("list", name, "TXT")["records"]
    assert sorted(r["value"] for r in recs) == values
    pages = dns.cf.api_calls("GET", "/zones/")[before:]
    assert len(pages) == 4  # page size 2
    assert [p.split("page=")[-1] for _, p in pages] == ["1", "2", "3", "4"]
    # a server that ignores the name filter: the client keeps only the exact name
    dns.cf.loose_name_filter = True
    recs = dns.ok("list", name, "TXT")["records"]
    assert sorted(r["value"] for r in recs) == values
    assert len(dns.knot.query(name, "TXT")) == 7


def test_backoff_then_success(dns):
    name = f"_acme-challenge.{ZONE}"
    dns.cf.fail_next(2, 429)
    t0 = time.time()
    rid = dns.ok("txt-add", name, "after-429", retries=4, backoff_ms=100)["id"]
    assert time.time() - t0 >= 0.25  # 100 + 200 ms of pauses
    assert dns.knot.query(name, "TXT") == ['"after-429"']
    # over HTTP, the hook endpoint: two 500s
    import urllib.request
    req = urllib.request.Request(dns.cf.base + "/__test/fail", method="POST",
                                 data=json.dumps({"count": 2, "status": 500}).encode())
    with urllib.request.urlopen(req, timeout=5) as r:
        assert json.load(r)["success"] is True
    dns.ok("del", name, rid, retries=4, backoff_ms=50)
    assert dns.knot.query(name, "TXT") == []
    # a 500 on a POST whose record did get created is caught by "identical record exists"
    rid = dns.ok("txt-add", name, "dup")["id"]
    out = dns.ok("txt-add", name, "dup")
    assert out["id"] == rid


def test_persistent_500_is_a_clear_error(dns):
    dns.cf.fail_next(1000, 500)
    t0 = time.time()
    out = dns.run("txt-add", f"_acme-challenge.{ZONE}", "never", retries=3, backoff_ms=100)
    took = time.time() - t0
    assert out["_rc"] == 1
    assert "HTTP 500" in out["error"] and "injected 500" in out["error"], out
    assert "POST /zones/" in out["error"]
    assert took < 5, took
    assert len(dns.cf.api_calls("POST")) == 4  # 1 + 3 retries
    assert TOKEN not in out["_all"]


def test_auth_and_api_errors(dns, tmp_path):
    bad = tmp_path / "bad-token"
    bad.write_text("wrong-token\n")
    out = dns.run("txt-add", f"_acme-challenge.{ZONE}", "v", token_file=bad)
    assert out["_rc"] == 1 and "HTTP 403" in out["error"] and "Authentication error" in \
        out["error"], out
    assert "wrong-token" not in out["_all"]
    out = dns.run("txt-add", "_acme-challenge.elsewhere.example", "v")
    assert out["_rc"] == 1 and "[1004]" in out["error"], out
    out = dns.run("list", f"a.{ZONE}", extra=["--zone-id", "ffff"], zone_id=False)
    assert out["_rc"] == 1 and "HTTP 404" in out["error"] and "[7003]" in out["error"], out


def test_wait_txt(dns):
    name = f"_acme-challenge.w.{ZONE}"
    server = f"127.0.0.1:{dns.knot.port}"

    def later():
        time.sleep(1.2)
        dns.knot.edit("set", name, "TXT", '"token-value"')

    t = threading.Thread(target=later, daemon=True)
    t0 = time.time()
    t.start()
    out = dns.run("wait", 15000, name, "token-value", server, server)
    t.join(timeout=10)
    assert out["_rc"] == 0, out
    assert 1.0 <= time.time() - t0 < 10
    # a value that never appears: a clear error after max_wait
    t0 = time.time()
    out = dns.run("wait", 1500, name, "other-value", server)
    took = time.time() - t0
    assert out["_rc"] == 1, out
    assert 1.4 <= took < 5, took
    assert "still does not serve" in out["error"] and server in out["error"], out
    assert "TXT records without the value" in out["error"], out
    # a record of several strings (a value longer than 255 bytes) counts as their join
    long_a, long_b = "a" * 255, "b" * 45
    dns.knot.edit("set", name, "TXT", f'"{long_a}" "{long_b}"')
    assert dns.run("wait", 5000, name, long_a + long_b, server)["_rc"] == 0
    out = dns.run("wait", 600, name, long_a, server)
    assert out["_rc"] == 1, out
    # a name with no record at all
    out = dns.run("wait", 600, f"nothing.{ZONE}", "x", server)
    assert out["_rc"] == 1 and "no TXT record" in out["error"], out


# ---- the whole certbot: Pebble issues through the fake Cloudflare -----------------------------

@pytest.fixture
def acme(dns, tmp_path):
    """Pebble (DNS-01 checked at the fake's knotd) and a certbot.toml with dns_provider =
    "cloudflare" pointing at the fake; the propagation check asks the same knotd."""
    import shutil
    if not (shutil.which("pebble") and shutil.which("kdig")):
        pytest.skip("pebble and kdig are needed (scripts/deps.sh)")
    import test_certbot as tc
    (tmp_path / "pebble").mkdir()
    pebble = tc.Pebble(tmp_path / "pebble", dns.knot.port, nonce_reject=0)
    try:
        def config(max_dns_wait=20, caa=False):
            return tc.acme_config(tmp_path, pebble, f"""\
caa_issuer = "pebble.test"
dns_provider = "cloudflare"
cf_api_token = "{TOKEN}"
cf_zone_id = "{CloudflareFake.ZONE_ID}"
cf_api_url = "{dns.cf.url}"
cf_name_servers = ["127.0.0.1:{dns.knot.port}"]
""", max_dns_wait, caa)
        yield tc, pebble, config, tmp_path / "work"
    finally:
        tc.stop(pebble.proc)


def txt_records(cf):
    with cf.lock:
        return [r for r in cf.records.values() if r["type"] == "TXT"]


def test_issue_through_cloudflare(dns, acme, tmp_path):
    """First issuance and a forced renewal with the Cloudflare provider: the records go through
    the API into knot, Pebble validates them there, certbot removes them; CAA set at account
    creation is what kdig reads back."""
    tc, pebble, config, work = acme
    cfg = config(caa=True)
    r = tc.certbot("renew", "-c", cfg, "--once")
    assert r.returncode == 0, r.stderr + pebble.log.read_text()[-3000:]
    tc.verify_chain(work, pebble.root(), tmp_path)
    acct = json.loads((work / "credentials.json").read_text())["account_id"]
    want = f"pebble.test;validationmethods=dns-01;accounturi={acct}"
    assert dns.caa(ZONE) == sorted([f'0 issue "{want}"', f'0 issuewild "{want}"'])
    # two challenges (*.zone and zone share the name): two TXT records created, both deleted
    posts = dns.cf.api_calls("POST", f"/zones/{CloudflareFake.ZONE_ID}/dns_records")
    deletes = dns.cf.api_calls("DELETE", f"/zones/{CloudflareFake.ZONE_ID}/dns_records/")
    # (+ the CAA procedure: two guards and two records added, the guards deleted)
    assert len(posts) == 2 + 4 and len(deletes) == 2 + 2, (posts, deletes)
    assert txt_records(dns.cf) == [] and dns.knot.query(f"_acme-challenge.{ZONE}") == []
    assert TOKEN not in r.stderr
    first = os.path.realpath(work / "live" / "cert.pem")
    key = tc.pubkey(work / "live" / "key.pem")
    r = tc.certbot("renew", "-c", cfg, "--once", "--force")
    assert r.returncode == 0, r.stderr
    assert os.path.realpath(work / "live" / "cert.pem") != first
    assert tc.pubkey(work / "live" / "key.pem") == key
    tc.verify_chain(work, pebble.root(), tmp_path)
    assert txt_records(dns.cf) == [] and dns.knot.query(f"_acme-challenge.{ZONE}") == []
    assert dns.caa(ZONE) == sorted([f'0 issue "{want}"', f'0 issuewild "{want}"'])


def test_dns_never_propagates_through_cloudflare(dns, acme, tmp_path):
    """The API takes the records but knot never serves them: certbot gives up after
    max_dns_wait with an error naming the record, deletes what it created, and the live pair
    in place stays."""
    tc, pebble, config, work = acme
    r = tc.certbot("renew", "-c", config(), "--once")
    assert r.returncode == 0, r.stderr
    old = [os.path.realpath(work / "live" / n) for n in ("cert.pem", "key.pem")]
    backups = sorted((work / "backup").iterdir())
    dns.cf.publish = False
    n_posts = len(dns.cf.api_calls("POST"))
    t0 = time.monotonic()
    r = tc.certbot("renew", "-c", config(max_dns_wait=2), "--once", "--force")
    took = time.monotonic() - t0
    assert r.returncode == 1, r.stderr
    assert 2 <= took < 2 * 2 + 10, took  # the wait is bounded by max_dns_wait
    assert f"_acme-challenge.{ZONE}" in r.stderr and "still does not serve" in r.stderr, r.stderr
    assert f"127.0.0.1:{dns.knot.port}" in r.stderr, r.stderr
    # it created records, and removed every one of them
    assert len(dns.cf.api_calls("POST")) > n_posts
    assert txt_records(dns.cf) == [] and dns.knot.query(f"_acme-challenge.{ZONE}") == []
    assert [os.path.realpath(work / "live" / n) for n in ("cert.pem", "key.pem")] == old
    assert all(os.path.exists(p) for p in old)
    assert sorted((work / "backup").iterdir()) == backups
    tc.verify_chain(work, pebble.root(), tmp_path)
    # once the records show again, the next run completes
    dns.cf.publish = True
    r = tc.certbot("renew", "-c", config(), "--once", "--force")
    assert r.returncode == 0, r.stderr
    assert os.path.realpath(work / "live" / "cert.pem") != old[0]
    assert txt_records(dns.cf) == []

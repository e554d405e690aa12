"""tproxy on loopback (WireGuard mode "none": CVM backends listen on their client addresses):
attested registration, List/Info/AcmeInfo/dashboard, SNI routing through the proxy with curl and
openssl, bad input, certificate reload, restart, dev mode."""
import json
import os
import pathlib
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest
from shutil import which as shutil_which

from conftest import _clean_env
from test_pccs_fetch import pccs  # noqa: F401
from tproxy_common import (BASE, TPROXY, Backend, Cvm, Pki, Tproxy, curl, make_cert, pem,
                           key_pem, raw_exchange, wg_keypair)

pytestmark = pytest.mark.skipif(not TPROXY.exists(), reason=f"tproxy not built at {TPROXY}")


@pytest.fixture
def env(tmp_path):
    pki = Pki(tmp_path / "pki")
    sim = tmp_path / "sim"
    subprocess.run([str(pathlib.Path(TPROXY).parents[1] / "tdxctl" / "tdxctl"), "sim", "init",
                    str(sim)], check=True, stdout=subprocess.DEVNULL, timeout=60)
    procs = []

    class E:
        pass
    e = E()
    e.tmp, e.pki, e.sim = tmp_path, pki, sim

    def tproxy(**kw):
        kw.setdefault("sim_dir", sim)
        t = Tproxy(tmp_path, pki, **kw)
        procs.append(t)
        return t

    def cvm(name, **kw):
        kw.setdefault("sim_dir", None)
        return Cvm(tmp_path, pki, name, **kw)
    e.tproxy, e.cvm = tproxy, cvm
    e.backends = []
    yield e
    for b in e.backends:
        b.close()
    for t in procs:
        t.stop()


def backend(e, *a, **kw):
    b = Backend(*a, **kw)
    e.backends.append(b)
    return b


# ---- registration -------------------------------------------------------------------------------

def test_register_list_info_acme(env):
    t = env.tproxy()
    # The simulated platform is per CVM; the trusted simulator is env.sim: CVMs share it.
    a1 = env.cvm("a1", sim_dir=env.sim)
    r1 = t.register(a1)
    assert r1["wg"]["client_ip"] == "127.77.0.2"
    assert r1["wg"]["server_ip"] == "127.77.0.1"
    assert r1["wg"]["server_endpoint"] == "127.0.0.1:51820"
    assert r1["wg"]["servers"][0]["ip"] == "127.77.0.1"
    assert r1["tappd"] == {"external_port": t.proxy_port, "internal_port": 8090, "domain": BASE,
                           "app_address_ns_prefix": "_dstack-app-address"}
    # same (app, instance, key): same address; a second instance of the app: its own address
    assert t.register(a1)["wg"]["client_ip"] == "127.77.0.2"
    a2 = env.cvm("a2", sim_dir=env.tmp / "sim2")  # another TD: own simulator, not trusted
    st, j = t.rpc("RegisterCvm", a2, {"client_public_key": a2.wg_pub})
    assert st == 400 and "simulator" in j["error"], j
    # a second instance of the app on the trusted platform: same compose, new instance id
    a2 = env.cvm("a2b", sim_dir=env.sim)
    assert a2.app_id == a1.app_id and a2.instance_id != a1.instance_id
    r2 = t.register(a2)
    assert r2["wg"]["client_ip"] == "127.77.0.3"
    # a changed key replaces the peer of that instance, same address
    a2.wg_priv, a2.wg_pub = __import__("tproxy_common").wg_keypair()
    assert t.register(a2)["wg"]["client_ip"] == "127.77.0.3"
    # someone else's key is refused
    st, j = t.rpc("RegisterCvm", a2, {"client_public_key": a1.wg_pub})
    assert st == 400 and "another CVM" in j["error"]

    st, lst = t.rpc("List")
    assert st == 200
    hosts = sorted(lst["hosts"], key=lambda h: h["ip"])
    assert [h["ip"] for h in hosts] == ["127.77.0.2", "127.77.0.3"]
    assert all(h["app_id"] == a1.app_id for h in hosts)
    assert hosts[0]["endpoint"] == f"{a1.app_id}.{BASE}" and hosts[0]["ports"] == [t.proxy_port]
    assert {h["instance_id"] for h in hosts} == {a1.instance_id, a2.instance_id}

    st, info = t.rpc("Info")
    assert st == 200 and info["base_domain"] == BASE and info["hosts"] == 2

    st, acme = t.rpc("AcmeInfo")
    assert st == 200 and acme["account_uri"] == "" and acme["hist_keys"] == []
    # upstream's newest gateway fields, empty while certbot left no quotes
    assert acme["account_quote"] == "" and acme["quoted_hist_keys"] == []
    wd = t.dir / "certbot"
    (wd / "credentials.json").write_text('{"account_id": "https://acme.test/acct/7"}')
    c1, k1 = make_cert("*." + BASE, ["*." + BASE])
    (wd / "backup" / "1").mkdir(parents=True)
    (wd / "backup" / "1" / "cert.pem").write_bytes(pem(c1))
    st, acme = t.rpc("AcmeInfo")
    from cryptography.hazmat.primitives import serialization
    spki = c1.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    assert acme["account_uri"] == "https://acme.test/acct/7"
    assert [bytes.fromhex(h.removeprefix("0x")) for h in acme["hist_keys"]] == [spki]
    assert acme["quoted_hist_keys"] == []
    quote = '{"quote":"00ab","event_log":"[]"}'
    (wd / "backup" / "1" / "cert.quote").write_text(quote)
    (wd / "acme-account.quote").write_text(quote)
    st, acme = t.rpc("AcmeInfo")
    assert acme["account_quote"] == quote
    assert [(bytes.fromhex(q["public_key"].removeprefix("0x")), q["quote"])
            for q in acme["quoted_hist_keys"]] == [(spki, quote)]

    st, page, _ = curl(["--cacert", str(env.pki.path("ca.cert")), "--resolve",
                        f"localhost:{t.rpc_port}:127.0.0.1", f"https://localhost:{t.rpc_port}/"])
    page = page.decode()
    assert st == 200 and "CVM List" in page and "ACME Information" in page
    assert a1.app_id in page and "127.77.0.3" in page and spki.hex() in page
    assert f"https://{a1.app_id}.{BASE}:{t.proxy_port}" in page
    m = t.metrics()
    assert m["tproxy_registrations"] == 2


def test_seed_era_cvm(env):
    c = env.cvm("seed", seed=True, sim_dir=env.sim)
    # Seed-era logs (names not bound to digests) only where the configuration says so.
    strict = env.tproxy(name="strict")
    st, j = strict.rpc("RegisterCvm", c, {"client_public_key": c.wg_pub})
    assert st == 400 and "seed_event_log_not_allowed" in j["error"], j
    t = env.tproxy(quote="allow_seed_event_log = true\n")
    r = t.register(c)
    assert r["wg"]["client_ip"] == "127.77.0.2"
    st, lst = t.rpc("List")
    assert lst["hosts"][0]["app_id"] == c.app_id and lst["hosts"][0]["instance_id"] == "-"


def test_register_forged_identity(env):
    """App A forges app B's identity (B's events extended after A's boot, A's boot events
    renamed in the log, digests unchanged so it replays) to be routed B's decrypted traffic."""
    from test_kms_common import craft_cert, forge_boot_events, load_key, ra_evidence
    t = env.tproxy()
    b = env.cvm("victim", compose=b"victim app\n", sim_dir=env.sim)
    t.register(b)
    a = env.cvm("attacker", compose=b"attacker app\n", sim_dir=env.sim)
    # Root in A's CVM extends RTMR3 with B's identity (the guest agent refuses these names).
    ch = bytes.fromhex(b.app_id)
    import hashlib
    a.tdxctl("extend", "-a", "app-id", "--payload", ch.hex())
    a.tdxctl("extend", "-a", "compose-hash", "--payload",
             hashlib.sha256(b"victim app\n").hexdigest())
    cert, key = a.dir / "late.cert", a.dir / "late.key"
    a.tdxctl("gen-ra-cert", "--ca-cert", env.pki.path("tmp-ca.cert"), "--ca-key",
             env.pki.path("tmp-ca.key"), "-c", cert, "-k", key)
    quote, log = ra_evidence(cert)
    outcomes = {}
    for name, forged in (("late", log), ("renamed", forge_boot_events(log))):
        c, k = craft_cert(a.dir, name + "-forged", env.pki.dir, key=load_key(key), quote=quote,
                          event_log=forged)
        st, j = t.rpc("RegisterCvm", None, {"client_public_key": wg_keypair()[1]}, cert=c,
                      key=k)
        outcomes[name] = "refused" if st == 400 and "bad_event_log" in str(j) else \
            f"HTTP {st}: {str(j)[:100]}"
    st, lst = t.rpc("List")
    apps = sorted((h["app_id"] == b.app_id, h["instance_id"] == b.instance_id)
                  for h in lst["hosts"])
    assert set(outcomes.values()) == {"refused"}, (outcomes, "hosts (is B's app, is B's "
                                                   "instance):", apps)
    assert [h["instance_id"] for h in lst["hosts"]] == [b.instance_id]
    assert "RegisterCvm" in t.log() and "bad_event_log" in t.log()


def test_register_forged_chains_fetch_nothing(env, pccs):  # noqa: F811
    """RegisterCvm with quotes carrying a re-signed Intel PCK leaf (random FMSPC), the PCCS
    taking 3 s per answer: refused at once, the PCCS never asked, and a legitimate CVM
    registering at the same time is answered in well under a second."""
    import concurrent.futures
    from test_kms_common import Sim
    from test_kms_collateral import cvm_with_chain, forged_leaf, intel_chain
    sim = Sim(env.tmp / "fsim")
    t = env.tproxy(sim_dir=sim.dir, quote=f'pccs_url = "{pccs.base("dcap-qvl-tdx")}"\n')
    legit = env.cvm("legit", sim_dir=sim.dir)
    chain = intel_chain()
    forged = [cvm_with_chain(sim, env.pki.dir, env.tmp / "forged", f"f{i}",
                             forged_leaf(chain[0]) + chain[1] + chain[2]) for i in range(6)]
    pccs.get("/__delay?ms=3000")
    base = pccs.requests()

    def register(cert, key, pub):
        t0 = time.monotonic()
        st, j = t.rpc("RegisterCvm", None, {"client_public_key": pub}, cert=cert, key=key)
        return time.monotonic() - t0, st, j

    with concurrent.futures.ThreadPoolExecutor(len(forged) + 1) as ex:
        bad = [ex.submit(register, c, k, wg_keypair()[1]) for c, k in forged]
        time.sleep(0.2)
        took, st, j = register(legit.cert, legit.key, legit.wg_pub)
        results = [f.result(timeout=120) for f in bad]
    assert st == 200, j
    print(f"legitimate RegisterCvm beside {len(forged)} forged quotes: {took:.3f} s")
    assert took < 1.0, f"legitimate RegisterCvm took {took:.2f} s beside the forged quotes"
    for dt, s, b in results:
        assert s == 400 and "quote_invalid" in str(b), b
        assert dt < 1.0
    assert pccs.requests() == base, "collateral was fetched for a forged PCK chain"


def test_register_refusals(env):
    t = env.tproxy()
    c = env.cvm("c", sim_dir=env.sim)
    # no client certificate
    st, j = t.rpc("RegisterCvm", None, {"client_public_key": c.wg_pub})
    assert st == 400 and "no attestation provided" in j["error"]
    # a certificate chained to the CA but without a quote
    cert, key = env.pki.issue("plain", "plain", ["plain"])
    st, j = t.rpc("RegisterCvm", None, {"client_public_key": c.wg_pub}, cert=cert, key=key)
    assert st == 400 and "no_attestation" in j["error"], j
    # a certificate not chained to the CA: the TLS handshake fails
    sc, sk = make_cert("self", ["self"])
    (env.tmp / "self.cert").write_bytes(pem(sc))
    (env.tmp / "self.key").write_bytes(key_pem(sk))
    st, j = t.rpc("RegisterCvm", None, {"client_public_key": c.wg_pub},
                  cert=env.tmp / "self.cert", key=env.tmp / "self.key")
    assert st == 0
    # bad WireGuard keys
    for bad in ("", "AAAA", "x" * 44, c.wg_pub[:-2] + "B=", c.wg_pub[:-1] + "A"):
        st, j = t.rpc("RegisterCvm", c, {"client_public_key": bad})
        assert st == 400 and "client_public_key" in j["error"], (bad, j)
    st, lst = t.rpc("List")
    assert lst["hosts"] == []
    assert t.metrics()["tproxy_register_total{result=\"refused\"}"] >= 5
    assert "refused" in t.log()
    # the simulator is trusted only when configured
    t2 = env.tproxy(name="nosim", sim_dir="")
    st, j = t2.rpc("RegisterCvm", c, {"client_public_key": c.wg_pub})
    assert st == 400 and "simulator" in j["error"], j
    st, lst = t2.rpc("List")
    assert lst["hosts"] == []


# ---- proxy --------------------------------------------------------------------------------------

def test_routes_terminate_port_passthrough(env):
    t = env.tproxy()
    c = env.cvm("c", sim_dir=env.sim)
    ip = t.register(c)["wg"]["client_ip"]
    backend(env, ip, 80, "port80")
    backend(env, ip, 8080, "port8080")
    backend(env, ip, 8443, "tls8443", certfile=str(env.pki.path("backend.cert")),
            keyfile=str(env.pki.path("backend.key")))
    app = c.app_id
    st, body, err = t.get(f"{app}.{BASE}", "/hello")
    assert st == 200 and body.startswith(b"port80 /hello host=" + f"{app}.{BASE}".encode()), err
    st, body, err = t.get(f"{app}-8080.{BASE}", "/x")
    assert st == 200 and body.startswith(b"port8080 /x"), err
    # passthrough: the backend's own certificate (signed by the test CA) is what curl sees
    st, body, err = t.get(f"{app}-8443s.{BASE}", "/pt", cacert=env.pki.path("ca.cert"))
    assert st == 200 and body.startswith(b"tls8443 /pt"), err
    # and the wildcard is not accepted there
    st, body, err = t.get(f"{app}-8443s.{BASE}", "/pt")
    assert st == 0
    # keep-alive: several requests on one connection
    st, body, err = t.get(f"{app}.{BASE}", "/a", extra=["--next", "--resolve",
                                                       f"{app}.{BASE}:{t.proxy_port}:127.0.0.1",
                                                       "--cacert", str(env.pki.path("wild.cert")),
                                                       f"https://{app}.{BASE}:{t.proxy_port}/b"])
    assert body.count(b"port80") == 2
    # openssl s_client sees the wildcard and talks HTTP through it
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{t.proxy_port}",
                        "-servername", f"{app}.{BASE}", "-CAfile", str(env.pki.path("wild.cert")),
                        "-verify_return_error", "-quiet", "-ign_eof"],
                       input=f"GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert b"port80 /s" in p.stdout, p.stderr
    m = t.metrics()
    assert m['tproxy_connections_total{kind="terminated"}'] >= 4
    assert m['tproxy_connections_total{kind="passthrough"}'] >= 2


def test_two_instances_spread_and_failover(env):
    t = env.tproxy()
    c1 = env.cvm("c1", sim_dir=env.sim)
    c2 = env.cvm("c2", sim_dir=env.sim)
    ip1 = t.register(c1)["wg"]["client_ip"]
    ip2 = t.register(c2)["wg"]["client_ip"]
    assert ip1 != ip2
    b1 = backend(env, ip1, 80, "one")
    backend(env, ip2, 80, "two")
    seen = set()
    for i in range(8):
        st, body, err = t.get(f"{c1.app_id}.{BASE}", f"/{i}")
        assert st == 200, err
        seen.add(body.split()[0])
    assert seen == {b"one", b"two"}
    # one instance down: every request still served, by the other
    b1.close()
    env.backends.remove(b1)
    for i in range(6):
        st, body, err = t.get(f"{c1.app_id}.{BASE}", f"/{i}")
        assert st == 200 and body.startswith(b"two"), (st, body, err)


def test_unknown_and_bad_input(env):
    t = env.tproxy()
    c = env.cvm("c", sim_dir=env.sim)
    ip = t.register(c)["wg"]["client_ip"]
    backend(env, ip, 80, "ok")
    # unknown app: an unrecognized_name alert, curl fails
    st, body, err = t.get(f"{'ab' * 20}.{BASE}")
    assert st == 0 and ("alert" in err.lower() or "unrecognized" in err.lower()), err
    # malformed names under the base domain
    for name in (f"{c.app_id}-x.{BASE}", f"zz.{BASE}", f"a.b.{BASE}"):
        st, body, err = t.get(name)
        assert st == 0, name
    # garbage instead of a ClientHello: a fatal alert record, then close
    out = raw_exchange(t.proxy_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out[:1] == b"\x15" and len(out) == 7
    out = raw_exchange(t.proxy_port, os.urandom(3000))
    assert out == b"" or out[:1] == b"\x15"
    # no SNI
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = socket.create_connection(("127.0.0.1", t.proxy_port), timeout=5)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        ctx.wrap_socket(s, server_hostname=None).do_handshake()
    s.close()
    # a silent client is dropped after handshake_timeout (2 s), not kept forever
    s = socket.create_connection(("127.0.0.1", t.proxy_port), timeout=10)
    t0 = time.time()
    assert s.recv(10) == b""
    assert 1.5 < time.time() - t0 < 6
    s.close()
    # a backend port nobody listens on: alert, counted
    st, body, err = t.get(f"{c.app_id}-9999.{BASE}")
    assert st == 0
    # none of it disturbed good traffic
    st, body, err = t.get(f"{c.app_id}.{BASE}")
    assert st == 200 and body.startswith(b"ok"), err
    m = t.metrics()
    assert m['tproxy_connections_closed_total{reason="unknown_app"}'] >= 1
    assert m['tproxy_connections_closed_total{reason="bad_hello"}'] >= 1
    assert m['tproxy_connections_closed_total{reason="no_sni"}'] >= 1
    assert m['tproxy_connections_closed_total{reason="hello_timeout"}'] >= 1
    assert m['tproxy_connections_closed_total{reason="backend_failed"}'] >= 1
    assert m['tproxy_connections_closed_total{reason="bad_sni"}'] >= 1
    # the registration (app and client IP) at info, the unreachable backend at warn
    log = t.log()
    assert re.search(rf"info: RegisterCvm from 127\.0\.0\.1:\d+: app {c.app_id} instance \w+, "
                     rf"client IP {re.escape(ip)} \(new\)", log), log
    assert (f"warn: proxy: {c.app_id}-9999.{BASE}: no instance of app {c.app_id} accepted a "
            f"connection on port 9999 (last tried {ip}: Connection refused)") in log, log


def test_connection_cap_and_idle_timeout(env):
    t = env.tproxy(extra="max_conns = 2\nidle_timeout = 1\n")
    c = env.cvm("c", sim_dir=env.sim)
    ip = t.register(c)["wg"]["client_ip"]
    backend(env, ip, 80, "ok")
    ctx = ssl.create_default_context(cafile=str(env.pki.path("wild.cert")))
    host = f"{c.app_id}.{BASE}"
    held = []
    for _ in range(2):  # two established sessions fill the cap
        s = socket.create_connection(("127.0.0.1", t.proxy_port), timeout=10)
        held.append(ctx.wrap_socket(s, server_hostname=host))
    st, body, err = t.get(host)
    assert st == 0, (st, body)  # the third is closed at once
    # idle sessions end after idle_timeout (1 s, swept every 250 ms)
    t0 = time.time()
    for h in held:
        assert h.recv(10) == b""
        h.close()
    assert time.time() - t0 < 5
    st, body, err = t.get(host)  # room again
    assert st == 200 and body.startswith(b"ok"), err
    m = t.metrics()
    assert m['tproxy_connections_closed_total{reason="full"}'] >= 1
    assert m['tproxy_connections_closed_total{reason="idle_timeout"}'] >= 2
    assert m["tproxy_connections_active"] <= 1


def served_cert(t, host):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", t.proxy_port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=host) as ss:
            return ss.getpeercert(binary_form=True)


def test_cert_reload(env):
    t = env.tproxy()
    c = env.cvm("c", sim_dir=env.sim)
    ip = t.register(c)["wg"]["client_ip"]
    backend(env, ip, 80, "ok")
    host = f"{c.app_id}.{BASE}"
    old = served_cert(t, host)
    # certbot-style swap: new files, symlinks replaced
    nc, nk = make_cert("*." + BASE, ["*." + BASE])
    (t.dir / "new").mkdir()
    (t.dir / "new" / "cert.pem").write_bytes(pem(nc))
    (t.dir / "new" / "key.pem").write_bytes(key_pem(nk))
    for n in ("cert.pem", "key.pem"):
        tmp = t.live / (n + ".tmp")
        tmp.symlink_to(t.dir / "new" / n)
        os.replace(tmp, t.live / n)
    from cryptography.hazmat.primitives import serialization
    want = nc.public_bytes(serialization.Encoding.DER)
    deadline = time.time() + 10
    while served_cert(t, host) != want and time.time() < deadline:
        time.sleep(0.2)
    assert served_cert(t, host) == want
    # a broken new pair: the old one keeps serving, the failure is logged
    (t.dir / "bad").mkdir()
    (t.dir / "bad" / "cert.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n")
    tmp = t.live / "cert.tmp"
    tmp.symlink_to(t.dir / "bad" / "cert.pem")
    os.replace(tmp, t.live / "cert.pem")
    deadline = time.time() + 10
    while "keep" not in t.log().lower() and time.time() < deadline:
        time.sleep(0.2)
    assert served_cert(t, host) == want
    st, body, err = t.get(host)
    assert st == 0  # the wildcard file is no longer what the client trusts: it is the new cert
    # a key that does not match the certificate: also kept
    (t.dir / "bad" / "cert2.pem").write_bytes(pem(make_cert("*." + BASE, ["*." + BASE])[0]))
    tmp = t.live / "cert.tmp"
    tmp.symlink_to(t.dir / "bad" / "cert2.pem")
    os.replace(tmp, t.live / "cert.pem")
    t.proc.send_signal(signal.SIGHUP)
    time.sleep(1.5)
    assert served_cert(t, host) == want
    assert t.proc.poll() is None
    m = t.metrics()
    assert m['tproxy_cert_reloads_total{result="failed"}'] >= 2
    assert m['tproxy_cert_reloads_total{result="ok"}'] >= 1


def test_restart_keeps_registrations(env):
    t = env.tproxy()
    cs = [env.cvm(f"c{i}", sim_dir=env.sim, compose=f"app {i}".encode()) for i in range(3)]
    ips = [t.register(c)["wg"]["client_ip"] for c in cs]
    assert ips == ["127.77.0.2", "127.77.0.3", "127.77.0.4"]
    backend(env, ips[1], 80, "c1")
    t.restart()
    st, lst = t.rpc("List")
    assert sorted(h["ip"] for h in lst["hosts"]) == ips
    # routes are back before anyone registers again
    st, body, err = t.get(f"{cs[1].app_id}.{BASE}")
    assert st == 200 and body.startswith(b"c1"), err
    # and re-registration gives the same addresses
    assert [t.register(c)["wg"]["client_ip"] for c in cs] == ips
    assert oct(os.stat(t.dir / "tproxy.db").st_mode & 0o777) == "0o600"


def test_check_and_dump_config(env, tmp_path):
    priv, _ = __import__("tproxy_common").wg_keypair()
    t = env.tproxy(start=False, wg=f'mode = "none"\nprivate_key = "{priv}"\n')
    cfg = str(t.dir / "tproxy.toml")
    p = subprocess.run([str(TPROXY), "-c", cfg, "--check-config"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0 and b"configuration OK" in p.stdout, p.stderr
    p = subprocess.run([str(TPROXY), "-c", cfg, "--dump-config"], stdout=subprocess.PIPE,
                       timeout=30)
    assert p.returncode == 0 and b'base_domain = "app.test"' in p.stdout
    assert priv.encode() not in p.stdout  # no secret on stdout
    assert b"\n# private_key = (set, not shown)\n" in p.stdout
    # the dump loads back: the hidden key is a comment, so the key is empty again, and with
    # mode = "none" that configuration passes the check and dumps the same otherwise
    dumped = tmp_path / "dumped.toml"
    dumped.write_bytes(p.stdout)
    p2 = subprocess.run([str(TPROXY), "-c", str(dumped), "--check-config"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p2.returncode == 0 and b"configuration OK" in p2.stdout, p2.stderr
    p2 = subprocess.run([str(TPROXY), "-c", str(dumped), "--dump-config"],
                        stdout=subprocess.PIPE, timeout=30)
    assert p2.returncode == 0
    assert p2.stdout == p.stdout.replace(b"# private_key = (set, not shown)",
                                         b'private_key = ""')
    (tmp_path / "bad.toml").write_text('[core.wg]\nclient_ip_range = "10.0.0.0/31"\n')
    p = subprocess.run([str(TPROXY), "-c", cfg, "-c", str(tmp_path / "bad.toml"),
                        "--check-config"], stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 3 and b"client_ip_range" in p.stderr
    missing = tmp_path / "missing.toml"  # named once in the error
    p = subprocess.run([str(TPROXY), "-c", str(missing), "--check-config"],
                       stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 3 and p.stderr.decode().count(str(missing)) == 1, p.stderr
    # a broken proxy certificate is a configuration error
    (t.live / "cert.pem").write_bytes(b"garbage")
    p = subprocess.run([str(TPROXY), "-c", cfg, "--check-config"], stderr=subprocess.PIPE,
                       timeout=30)
    assert p.returncode == 3 and b"certificate" in p.stderr


@pytest.fixture
def devns():
    """A network namespace of our own for dev mode (it makes a WireGuard interface as root)."""
    if os.geteuid() != 0 or not shutil_which("wireguard-go"):
        yield None
        return
    ns = f"tpdev{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=30)
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=30)
    yield ns
    subprocess.run(["ip", "netns", "del", ns], timeout=30)


def test_dev_mode(tmp_path, devns):
    d = tmp_path / "dev"
    env = dict(os.environ)
    env.pop("DSTACK_SIM_DIR", None)
    pre = ["ip", "netns", "exec", devns] if devns else []
    proc = subprocess.Popen(pre + [str(TPROXY), "--dev", str(d)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        from test_kms_common import read_line
        lines = [read_line(proc, time.time() + 30) for _ in range(2)]
        assert lines[0].startswith("listening https://127.0.0.1:"), lines
        assert lines[1].startswith("listening tls://127.0.0.1:"), lines
        rpc = int(lines[0].rsplit(":", 1)[1])
        for f in ("tproxy.toml", "certs/ca.cert", "certs/rpc.cert", "certbot/live/cert.pem",
                  "certbot/live/key.pem"):
            assert (d / f).exists(), f
        assert oct((d / "certbot/live/key.pem").stat().st_mode & 0o777) == "0o600"
        # a CVM on the dev simulator with a certificate from the dev CA registers
        class P:
            pass
        pki = P()
        pki.path = lambda n: d / "certs" / {"tmp-ca.cert": "ca.cert",
                                            "tmp-ca.key": "ca.key"}.get(n, n)
        c = Cvm(tmp_path, pki, "c", sim_dir=d / "sim")
        p = subprocess.run(pre + ["curl", "-sS", "--max-time", "20", "--cacert",
                                  str(d / "certs" / "ca.cert"), "--resolve",
                                  f"localhost:{rpc}:127.0.0.1", "--cert", str(c.cert), "--key",
                                  str(c.key), "-H", "Content-Type: application/json",
                                  "--data-binary", '{"client_public_key":"%s"}' % c.wg_pub,
                                  f"https://localhost:{rpc}/prpc/Tproxy.RegisterCvm?json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        body = p.stdout
        assert p.returncode == 0, p.stderr
        # over WireGuard a 10.4/16 address; without it a loopback one a backend can listen on
        assert json.loads(body)["wg"]["client_ip"] == ("10.4.0.2" if devns else "127.8.0.2"), body
        if devns:  # userspace WireGuard under DIR, the peer configured through its socket
            cfg = (d / "tproxy.toml").read_text()
            assert 'mode = "uapi"' in cfg, cfg
            ifname = cfg.split('interface = "')[1].split('"')[0]
            assert (d / "wg" / f"{ifname}.sock").exists()
            # the usual socket path leads to it too (wg show and friends find it)
            from tproxy_topo import wg_uapi
            out = wg_uapi(ifname, "get=1").encode()
            import base64
            assert base64.b64decode(c.wg_pub).hex().encode() in out, out
            assert b"allowed_ip=10.4.0.2/32" in out, out
        cert = ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(
            (d / "certbot/live/cert.pem").read_text()))
        from cryptography import x509
        sans = x509.load_pem_x509_certificate(cert.encode()).extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        assert "*.app.localhost" in sans
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_dev_mode_without_wireguard(tmp_path):
    """Dev mode where wireguard-go cannot run (here: not on PATH) picks mode "none" and a
    loopback client range, so a backend on this machine listening on the CVM's client address
    is reached through the proxy by <app_id>-<port>.app.localhost."""
    d = tmp_path / "dev"
    env = dict(_clean_env(), PATH="/nonexistent")
    proc = subprocess.Popen([str(TPROXY), "--dev", str(d)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    b = None
    try:
        from test_kms_common import read_line
        lines = [read_line(proc, time.time() + 30) for _ in range(2)]
        assert lines[1] and lines[1].startswith("listening tls://127.0.0.1:"), lines
        rpc, pport = (int(x.rsplit(":", 1)[1]) for x in lines)
        cfg = (d / "tproxy.toml").read_text()
        assert 'mode = "none"' in cfg and 'client_ip_range = "127.8.0.0/16"' in cfg, cfg
        c = Cvm(tmp_path, dev_pki(d), "c", sim_dir=d / "sim")
        st, body, err = curl(["--cacert", str(d / "certs" / "ca.cert"), "--resolve",
                              f"localhost:{rpc}:127.0.0.1", "--cert", str(c.cert), "--key",
                              str(c.key), "-H", "Content-Type: application/json",
                              "--data-binary", '{"client_public_key":"%s"}' % c.wg_pub,
                              f"https://localhost:{rpc}/prpc/Tproxy.RegisterCvm?json"])
        assert st == 200, (st, body, err)
        ip = json.loads(body)["wg"]["client_ip"]
        assert ip == "127.8.0.2", body
        with socket.socket() as s:  # a free port on the client address
            s.bind((ip, 0))
            port = s.getsockname()[1]
        b = Backend(ip, port, "dev")
        host = f"{c.app_id}-{port}.app.localhost"
        st, body, err = curl(["--cacert", str(d / "certbot/live/cert.pem"), "--resolve",
                              f"{host}:{pport}:127.0.0.1", f"https://{host}:{pport}/x"])
        assert st == 200 and body.startswith(b"dev /x"), (st, body, err)
    finally:
        if b:
            b.close()
        proc.terminate()
        proc.wait(timeout=15)


class DevTproxy:
    """`tproxy --dev DIR` in namespace ns (stderr to DIR/../tproxy-N.log)."""

    def __init__(self, d, ns, n):
        env = _clean_env()
        self.d, self.ns = d, ns
        self.log_path = d.parent / f"tproxy-{n}.log"
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, str(TPROXY), "--dev", str(d)],
                                     stdout=subprocess.PIPE, stderr=self.logf, env=env)
        from test_kms_common import read_line
        lines = [read_line(self.proc, time.time() + 30) for _ in range(2)]
        assert lines[0] and lines[0].startswith("listening https://127.0.0.1:"), (lines,
                                                                                  self.log())
        self.rpc = int(lines[0].rsplit(":", 1)[1])

    def log(self):
        return self.log_path.read_text(errors="replace")

    def curl(self, *args):
        p = subprocess.run(["ip", "netns", "exec", self.ns, "curl", "-sS", "--max-time", "20",
                            "--cacert", str(self.d / "certs" / "ca.cert"), "--resolve",
                            f"localhost:{self.rpc}:127.0.0.1", "-w", "\n%{http_code}", *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        body, _, code = p.stdout.rpartition(b"\n")
        return int(code or 0), body, p.stderr.decode(errors="replace")

    def register(self, c):
        return self.curl("--cert", str(c.cert), "--key", str(c.key), "-H",
                         "Content-Type: application/json", "--data-binary",
                         '{"client_public_key":"%s"}' % c.wg_pub,
                         f"https://localhost:{self.rpc}/prpc/Tproxy.RegisterCvm?json")

    def get(self, path):
        return self.curl(f"https://localhost:{self.rpc}{path}")

    def close(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.logf.close()


def dev_pki(d):
    class P:
        pass
    pki = P()
    pki.path = lambda n: d / "certs" / {"tmp-ca.cert": "ca.cert",
                                        "tmp-ca.key": "ca.key"}.get(n, n)
    return pki


def wg_go_pids():
    """Live wireguard-go processes (not zombies waiting for their new parent to reap them)."""
    pids = set()
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except (OSError, ValueError):
            continue
        comm, rest = stat[stat.find("(") + 1:stat.rfind(")")], stat[stat.rfind(")") + 2:]
        if comm == "wireguard-go" and rest[:1] not in ("Z", "X"):
            pids.add(int(pid))
    return pids


def test_dev_mode_restart_after_kill(tmp_path, devns):
    """tproxy --dev killed with SIGKILL and started again at once, a few times: its
    wireguard-go from before is still exiting (it holds the interface name); the new tproxy
    must wait for it, run its own, and have every registration as a peer."""
    if not devns:
        pytest.skip("needs root and wireguard-go")
    d = tmp_path / "dev"
    before = wg_go_pids()
    cvms = []
    t = None
    try:
        for n in range(3):
            t = DevTproxy(d, devns, n)
            c = Cvm(tmp_path, dev_pki(d), f"c{n}", sim_dir=d / "sim",
                    compose=f"app {n}".encode())
            st, body, err = t.register(c)
            assert st == 200, (n, st, body, err, t.log()[-3000:])
            cvms.append(c)
            cfg = (d / "tproxy.toml").read_text()
            ifname = cfg.split('interface = "')[1].split('"')[0]
            from tproxy_topo import wg_uapi
            out = wg_uapi(ifname, "get=1")
            import base64
            for x in cvms:  # every registration so far is a peer of the running wireguard-go
                assert base64.b64decode(x.wg_pub).hex() in out, (n, out, t.log()[-3000:])
            assert out.count("public_key=") == len(cvms), (n, out)
            st, body, err = t.get("/health")
            assert st == 200, (n, st, body)
            # exactly one wireguard-go of ours runs
            assert len(wg_go_pids() - before) == 1, (n, wg_go_pids() - before)
            t.close(signal.SIGKILL)
            t = None
        # a clean stop takes its wireguard-go along
        t = DevTproxy(d, devns, 99)
        st, body, err = t.get("/health")
        assert st == 200, (st, body)
        t.close()
        t = None
        deadline = time.time() + 10
        while wg_go_pids() - before and time.time() < deadline:
            time.sleep(0.1)
        assert not wg_go_pids() - before
    finally:
        if t:
            t.close(signal.SIGKILL)
        for pid in wg_go_pids() - before:  # nothing of ours outlives the test
            os.kill(pid, signal.SIGKILL)


def test_dev_mode_wireguard_go_dies(tmp_path, devns):
    """wireguard-go ends under a running dev tproxy: /health and the dashboard say WireGuard is
    down (not "running"), then it is started again with every registration as a peer."""
    if not devns:
        pytest.skip("needs root and wireguard-go")
    d = tmp_path / "dev"
    before = wg_go_pids()
    t = DevTproxy(d, devns, 0)
    try:
        c = Cvm(tmp_path, dev_pki(d), "c", sim_dir=d / "sim")
        st, body, err = t.register(c)
        assert st == 200, (st, body, err)
        ours = wg_go_pids() - before
        assert len(ours) == 1, ours
        old = ours.pop()
        os.kill(old, signal.SIGKILL)
        seen_down, dash, deadline = None, None, time.time() + 20
        while time.time() < deadline:
            st, body, err = t.get("/health")
            if st == 503 and seen_down is None:
                seen_down = json.loads(body)
                dash = t.get("/")[1].decode()
            if st == 200 and seen_down is not None:
                break
            time.sleep(0.05)
        assert seen_down and seen_down["status"] == "error", (seen_down, t.log()[-2000:])
        assert "running" not in seen_down["wireguard"] and "down" in seen_down["wireguard"]
        assert "DOWN" in dash and f"pid {old}" in dash, dash
        assert st == 200 and json.loads(body)["status"] == "ok", (st, body, t.log()[-2000:])
        assert "runs" in json.loads(body)["wireguard"]
        new = wg_go_pids() - before
        assert len(new) == 1 and old not in new, new
        cfg = (d / "tproxy.toml").read_text()
        ifname = cfg.split('interface = "')[1].split('"')[0]
        from tproxy_topo import wg_uapi
        import base64
        out = wg_uapi(ifname, "get=1")
        assert base64.b64decode(c.wg_pub).hex() in out and "allowed_ip=10.4.0.2/32" in out, out
        assert "exited" in t.log() or "killed" in t.log()
        m = t.get("/metrics")[1].decode()
        assert "tproxy_wg_up 1" in m, m
    finally:
        t.close()
        for pid in wg_go_pids() - before:
            os.kill(pid, signal.SIGKILL)


def nginx_h2c(tmp, addr, port, body):
    """nginx answering HTTP/2 with prior knowledge (h2c) on addr:port."""
    d = pathlib.Path(tmp) / f"nginx-{port}"
    (d / "tmp").mkdir(parents=True, exist_ok=True)
    conf = d / "nginx.conf"
    conf.write_text(
        f"daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n"
        "events {}\nhttp {\n access_log off;\n"
        f" client_body_temp_path {d}/tmp;\n proxy_temp_path {d}/tmp;\n"
        f" fastcgi_temp_path {d}/tmp;\n uwsgi_temp_path {d}/tmp;\n scgi_temp_path {d}/tmp;\n"
        f" server {{\n  listen {addr}:{port} http2;\n"
        f"  location / {{ default_type text/plain; return 200 \"{body}\\n\"; }}\n }}\n}}\n")
    p = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(d)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection((addr, port), timeout=1).close()
            return p
        except OSError:
            time.sleep(0.1)
    p.kill()
    raise AssertionError("nginx did not start: " + (d / "error.log").read_text())


@pytest.mark.skipif(not shutil_which("nginx"), reason="nginx not installed")
def test_h2_route(env):
    t = env.tproxy()
    c = env.cvm("c", sim_dir=env.sim)
    ip = t.register(c)["wg"]["client_ip"]
    ng = nginx_h2c(env.tmp, ip, 8081, "h2 backend")
    try:
        def get_v(host):
            p = subprocess.run(["curl", "-sS", "--max-time", "10", "--http2", "--resolve",
                                f"{host}:{t.proxy_port}:127.0.0.1", "--cacert",
                                str(env.pki.path("wild.cert")), "-w", "\n%{http_version}",
                                f"https://{host}:{t.proxy_port}/"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=20)
            return p.stdout, p.stderr
        out, err = get_v(f"{c.app_id}-8081g.{BASE}")
        assert out == b"h2 backend\n\n2", (out, err)
        # the plain-terminate route never offers h2: curl falls back to HTTP/1.1
        backend(env, ip, 80, "h1")
        out, err = get_v(f"{c.app_id}.{BASE}")
        assert out.startswith(b"h1 /") and out.endswith(b"\n1.1"), (out, err)
        assert t.metrics()['tproxy_connections_total{kind="h2"}'] >= 1
    finally:
        ng.terminate()
        ng.wait(timeout=10)


def _http_exchange(ss, host, path, close):
    """One HTTP/1.1 GET on a TLS socket; returns (status line, body). Bounded by the socket's
    timeout and a 64 KiB cap."""
    ss.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
               f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = ss.recv(4096)
        if not c or len(buf) > 65536:
            raise ConnectionError(f"headers cut short: {buf[:200]!r}")
        buf += c
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    n = next(int(ln.split(":", 1)[1]) for ln in lines[1:]
             if ln.lower().startswith("content-length:"))
    while len(body) < n:
        c = ss.recv(4096)
        if not c:
            raise ConnectionError("body cut short")
        body += c
    return lines[0], body[:n]


def test_cert_swap_under_load(env):
    """certbot replaces live/ while many TLS connections run through the proxy: no connection
    fails (new ones, and keep-alive ones opened before the swap that go on sending requests),
    and new handshakes get the new certificate within a bound (cert_poll = 1 s)."""
    import threading
    from cryptography.hazmat.primitives import serialization
    t = env.tproxy()
    c = env.cvm("c", sim_dir=env.sim)
    ip = t.register(c)["wg"]["client_ip"]
    backend(env, ip, 80, "ok")
    host = f"{c.app_id}.{BASE}"
    old_der = x509_der(env.pki.path("wild.cert"))
    # (its own subject: the client's store looks trust anchors up by name)
    nc, nk = make_cert("renewed." + BASE, ["*." + BASE, BASE])
    new_der = nc.public_bytes(serialization.Encoding.DER)
    ctx = ssl.create_default_context(cadata=env.pki.path("wild.cert").read_text() +
                                     pem(nc).decode())
    lock = threading.Lock()
    stop = threading.Event()
    failures, handshakes, kept = [], [], []  # (what), (time, der), (requests, ders)
    N_SHORT, N_KEEP = 12, 4

    def connect():
        s = socket.create_connection(("127.0.0.1", t.proxy_port), timeout=10)
        try:
            ss = ctx.wrap_socket(s, server_hostname=host)
        except BaseException:
            s.close()
            raise
        der = ss.getpeercert(binary_form=True)
        with lock:
            handshakes.append((time.monotonic(), der))
        return ss, der

    def short(i):
        n = 0
        while not stop.is_set():
            n += 1
            try:
                ss, _ = connect()
                with ss:
                    st, body = _http_exchange(ss, host, f"/s{i}-{n}", close=True)
                if " 200 " not in st + " " or body != f"ok /s{i}-{n} host={host}\n".encode():
                    raise AssertionError(f"{st!r} {body!r}")
            except Exception as ex:  # every failure counts, whatever it is
                with lock:
                    failures.append(f"short {i}/{n}: {ex!r}")

    def keep(i):
        reqs, ders = 0, set()
        try:
            ss, der = connect()
            ders.add(der)
            with ss:
                while not stop.is_set():
                    reqs += 1
                    st, body = _http_exchange(ss, host, f"/k{i}-{reqs}", close=False)
                    if " 200 " not in st + " " or body != f"ok /k{i}-{reqs} host={host}\n".encode():
                        raise AssertionError(f"{st!r} {body!r}")
                    ders.add(ss.getpeercert(binary_form=True))
                    time.sleep(0.02)
        except Exception as ex:
            with lock:
                failures.append(f"keep-alive {i} after {reqs} requests: {ex!r}")
        with lock:
            kept.append((reqs, ders))

    threads = [threading.Thread(target=short, args=(i,), daemon=True) for i in range(N_SHORT)]
    threads += [threading.Thread(target=keep, args=(i,), daemon=True) for i in range(N_KEEP)]
    for th in threads:
        th.start()
    try:
        time.sleep(1.5)
        with lock:
            before = len(handshakes)
        # certbot's swap (certbot_bot.c cert_store): a new backup directory, then live/cert.pem
        # and live/key.pem each a symlink under a temporary name renamed over the old one
        b = t.dir / "certbot" / "backup" / "2030-01-01T00:00:00.000000000Z"
        b.mkdir(parents=True)
        (b / "key.pem").write_bytes(key_pem(nk))
        os.chmod(b / "key.pem", 0o600)
        (b / "cert.pem").write_bytes(pem(nc))
        t_swap = time.monotonic()
        for n in ("cert.pem", "key.pem"):
            tmp = t.live / f".{n}.tmp"
            tmp.symlink_to(b / n)
            os.replace(tmp, t.live / n)
        deadline = t_swap + 15
        while time.monotonic() < deadline:
            with lock:
                if any(der == new_der for _, der in handshakes):
                    break
            time.sleep(0.05)
        time.sleep(2.0)  # more load on the new pair
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=20)
    assert not any(th.is_alive() for th in threads)
    assert failures == [], f"{len(failures)} failed: {failures[:5]}\n{t.log()[-2000:]}"
    assert before >= 20, before  # there was load before the swap
    ders = {der for _, der in handshakes}
    assert ders == {old_der, new_der}, "a handshake saw another certificate"
    t_new = min(ts for ts, der in handshakes if der == new_der)
    t_old = max(ts for ts, der in handshakes if der == old_der)
    bound = 5.0  # cert_poll (1 s), and once more when the pair was caught half-swapped
    assert t_new - t_swap < bound, t_new - t_swap
    assert t_old - t_swap < bound, t_old - t_swap  # no old handshake after the bound
    assert sum(1 for ts, der in handshakes if der == new_der) >= 20
    # the keep-alive connections lived through the swap, on the certificate they began with
    assert len(kept) == N_KEEP
    assert all(reqs >= 20 and ders == {old_der} for reqs, ders in kept), kept
    m = t.metrics()
    assert m['tproxy_cert_reloads_total{result="ok"}'] >= 1


def x509_der(path):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    return x509.load_pem_x509_certificate(pathlib.Path(path).read_bytes()).public_bytes(
        serialization.Encoding.DER)

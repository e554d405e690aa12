"""tappd --dev: every method of tappd.sock (Tappd), dstack.sock (DstackGuest) and the external
port (Worker, dashboard, metrics), talked to as clients do (curl, JSON over unix sockets,
protobuf)."""
import base64
import calendar
import concurrent.futures
import hashlib
import json
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from conftest import TDXCTL
from test_tappd_common import (hkdf, quote_rtmrs, replay, request, rpc, runtime_digest,  # noqa
                               tappd, tappd_bin, tappd_factory)

HASHES = {
    "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512,
    "sha3-256": hashlib.sha3_256, "sha3-384": hashlib.sha3_384, "sha3-512": hashlib.sha3_512,
}


def check_quote_log(quote_hex, event_log_text, want_rd=None):
    q = bytes.fromhex(quote_hex)
    events = json.loads(event_log_text)
    rt, rd = quote_rtmrs(q)
    assert replay(events) == rt
    if want_rd is not None:
        assert rd == want_rd
    return events


def test_tdx_quote_curl_like_readme(tappd):
    # The upstream README's own example, with curl.
    out = subprocess.run(
        ["curl", "-s", "--unix-socket", tappd.tappd_sock, "-d", '{"report_data":"0x1234deadbeef"}',
         "http://localhost/prpc/Tappd.TdxQuote?json"], stdout=subprocess.PIPE, check=True).stdout
    r = json.loads(out)
    assert r["hash_algorithm"] == "sha512"
    assert r["prefix"] == "app-data"
    want = hashlib.sha512(b"app-data:" + bytes.fromhex("1234deadbeef")).digest()
    check_quote_log(r["quote"], r["event_log"], want)


def test_tdx_quote_hash_algorithms(tappd):
    data = b"hello tappd"
    for name, h in HASHES.items():
        r = tappd.tappd("TdxQuote", {"report_data": data.hex(), "hash_algorithm": name})
        assert r["hash_algorithm"] == name
        check_quote_log(r["quote"], r["event_log"], h(b"app-data:" + data).digest().ljust(64, b"\0"))
    # Keccak variants: only check they are accepted and padded.
    for name, n in (("keccak256", 32), ("keccak384", 48), ("keccak512", 64)):
        r = tappd.tappd("TdxQuote", {"report_data": data.hex(), "hash_algorithm": name})
        _, rd = quote_rtmrs(bytes.fromhex(r["quote"]))
        assert rd[n:] == bytes(64 - n) and rd[:n] != bytes(n)
    # Custom prefix.
    r = tappd.tappd("TdxQuote", {"report_data": data.hex(), "hash_algorithm": "sha256",
                                 "prefix": "my-tag"})
    assert r["prefix"] == "my-tag"
    check_quote_log(r["quote"], r["event_log"],
                    hashlib.sha256(b"my-tag:" + data).digest().ljust(64, b"\0"))
    # raw: exactly 64 bytes; RawQuote is the same.
    raw = bytes(range(64))
    r = tappd.tappd("TdxQuote", {"report_data": raw.hex(), "hash_algorithm": "raw"})
    assert r["prefix"] == "" and r["hash_algorithm"] == "raw"
    check_quote_log(r["quote"], r["event_log"], raw)
    r = tappd.tappd("RawQuote", {"report_data": raw.hex()})
    check_quote_log(r["quote"], r["event_log"], raw)
    for bad in (raw[:63], raw + b"x"):
        e = tappd.tappd("TdxQuote", {"report_data": bad.hex(), "hash_algorithm": "raw"}, expect=400)
        assert "64" in e["error"]
        tappd.tappd("RawQuote", {"report_data": bad.hex()}, expect=400)
    for bad in ("sha1", "SHA256", "blake2b512", "md5"):
        tappd.tappd("TdxQuote", {"report_data": "00", "hash_algorithm": bad}, expect=400)


def test_tappd_routes_and_tdxctl_replay(tappd, tmp_path):
    # /prpc/TdxQuote (without "Tappd.") is the same method; GET works for Empty requests.
    r = rpc(tappd.tappd_sock, "/prpc/TdxQuote?json", {"report_data": "00"})
    events = check_quote_log(r["quote"], r["event_log"])
    # The event log also replays with tdxctl to the quote's RTMRs.
    (tmp_path / "log.json").write_text(r["event_log"])
    out = json.loads(subprocess.run([str(TDXCTL), "eventlog", "replay", str(tmp_path / "log.json")],
                                    stdout=subprocess.PIPE, check=True).stdout)
    rt, _ = quote_rtmrs(bytes.fromhex(r["quote"]))
    text = json.dumps(out)
    for m in rt:
        assert m.hex() in text
    # RTMR0-2 entries carry only digests; RTMR3 runtime events carry their payloads.
    names = [e["event"] for e in events if e["imr"] == 3]
    assert names[:8] == ["system-preparing", "app-id", "compose-hash", "instance-id",
                         "boot-mr-done", "os-image-hash", "key-provider", "system-ready"]
    # Dev mode plays host + KMS: the os-image-hash event is the vm_config's os_image_hash.
    vm = json.loads(json.loads((tappd.dir / "sys-config.json").read_text())["vm_config"])
    osev = next(e for e in events if e["imr"] == 3 and e["event"] == "os-image-hash")
    assert len(vm["os_image_hash"]) == 64 and osev["event_payload"] == vm["os_image_hash"]
    for e in events:
        if e["imr"] < 3:
            assert e["event_payload"] == ""
        elif e["event_type"] == 0x08000001:
            assert bytes.fromhex(e["digest"]) == runtime_digest(e["event"],
                                                                bytes.fromhex(e["event_payload"]))
    st, _, body = request(tappd.tappd_sock, "GET", "/prpc/Tappd.Version")
    assert st == 200 and json.loads(body)["version"]
    st, _, body = request(tappd.tappd_sock, "GET", "/prpc/Tappd.NoSuchMethod")
    assert st == 404
    # tappd.sock serves only Tappd.
    st, _, _ = request(tappd.tappd_sock, "POST", "/GetQuote", {"report_data": ""})
    assert st == 404


def test_derive_key(tappd):
    keys = tappd.appkeys()
    k256 = bytes.fromhex(keys["k256_key"])
    ca = x509.load_pem_x509_certificate(keys["ca_cert"].encode())
    r1 = tappd.tappd("DeriveKey", {"path": "/app/tls", "subject": "app.example",
                                   "alt_names": ["app.example", "www.app.example"],
                                   "usage_server_auth": True})
    r2 = tappd.tappd("DeriveKey", {"path": "/app/tls", "subject": "app.example"})
    r3 = tappd.tappd("DeriveKey", {"path": "/other", "subject": "app.example"})
    key1 = serialization.load_pem_private_key(r1["key"].encode(), None)
    key2 = serialization.load_pem_private_key(r2["key"].encode(), None)
    key3 = serialization.load_pem_private_key(r3["key"].encode(), None)
    # Same path, same key; the key is HKDF(k256 app key, path) as upstream derives it.
    want = int.from_bytes(hkdf(k256, b"/app/tls"), "big")
    assert key1.private_numbers().private_value == want
    assert key2.private_numbers().private_value == want
    assert key3.private_numbers().private_value != want
    leaf = x509.load_pem_x509_certificate(r1["certificate_chain"][0].encode())
    assert r1["certificate_chain"][1] == keys["ca_cert"]
    ca.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes,
                           ec.ECDSA(leaf.signature_hash_algorithm))
    assert leaf.issuer == ca.subject
    assert leaf.subject.rfc4514_string() == "CN=app.example"
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["app.example", "www.app.example"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.ExtendedKeyUsageOID.SERVER_AUTH]
    assert leaf.public_key().public_numbers() == key1.public_key().public_numbers()
    # random_seed gives a fresh key.
    a = tappd.tappd("DeriveKey", {"path": "/app/tls", "random_seed": True})
    b = tappd.tappd("DeriveKey", {"path": "/app/tls", "random_seed": True})
    assert a["key"] != b["key"]
    # RA-TLS: the certificate carries a quote binding its public key.
    r = tappd.tappd("DeriveKey", {"path": "/ra", "subject": "ra", "usage_ra_tls": True})
    leaf = x509.load_pem_x509_certificate(r["certificate_chain"][0].encode())
    ext = leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.62397.1.1"))
    raw = ext.value.value
    assert raw[0] == 0x04  # double-wrapped OCTET STRING
    spki = leaf.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    q = raw[raw.index(b"\x04\x00\x02\x00\x81"):]
    _, rd = quote_rtmrs(q)
    assert rd == hashlib.sha512(b"ratls-cert:" + spki).digest()


def test_get_key_and_k256(tappd):
    k256 = bytes.fromhex(tappd.appkeys()["k256_key"])
    r = tappd.dstack("GetKey", {"path": "/wallet", "purpose": "eth"})
    assert r["key"] == hkdf(k256, b"/wallet").hex()
    assert len(r["signature_chain"]) == 2
    assert all(len(bytes.fromhex(s)) == 65 for s in r["signature_chain"])
    assert r["signature_chain"][1] == tappd.appkeys()["k256_signature"]
    # DeriveK256Key on tappd.sock gives the same key and chain.
    d = tappd.tappd("DeriveK256Key", {"path": "/wallet", "purpose": "eth"})
    assert d["k256_key"] == r["key"]
    assert d["k256_signature_chain"] == r["signature_chain"]
    e = tappd.dstack("GetKey", {"path": "/wallet", "algorithm": "ed25519"})
    assert e["key"] == r["key"]
    tappd.dstack("GetKey", {"path": "/wallet", "algorithm": "rsa"}, expect=400)


def test_sign_verify(tappd):
    k256 = bytes.fromhex(tappd.appkeys()["k256_key"])
    vms = hkdf(k256, b"vms")
    data = b"sign me"
    r = tappd.dstack("Sign", {"algorithm": "ed25519", "data": data.hex()})
    pub = ed25519.Ed25519PrivateKey.from_private_bytes(vms).public_key()
    pub.verify(bytes.fromhex(r["signature"]), data)
    assert len(r["signature_chain"]) == 3
    v = tappd.dstack("Verify", {"algorithm": "ed25519", "data": data.hex(),
                                "signature": r["signature"], "public_key": r["public_key"]})
    assert v["valid"] is True
    r = tappd.dstack("Sign", {"algorithm": "secp256k1", "data": data.hex()})
    sk = ec.derive_private_key(int.from_bytes(vms, "big"), ec.SECP256K1())
    sig = bytes.fromhex(r["signature"])
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    sk.public_key().verify(der, data, ec.ECDSA(hashes.SHA256()))
    v = tappd.dstack("Verify", {"algorithm": "secp256k1", "data": (data + b"x").hex(),
                                "signature": r["signature"], "public_key": r["public_key"]})
    assert v["valid"] is False
    tappd.dstack("Sign", {"algorithm": "secp256k1_prehashed", "data": "00" * 31}, expect=400)
    tappd.dstack("Verify", {"algorithm": "secp256k1", "data": "00", "signature": "00",
                            "public_key": "00"}, expect=400)


def test_dstack_quote_info_version(tappd):
    r = tappd.dstack("GetQuote", {"report_data": "deadbeef"})
    check_quote_log(r["quote"], r["event_log"], bytes.fromhex("deadbeef").ljust(64, b"\0"))
    assert r["report_data"] == "deadbeef" + "00" * 60
    assert json.loads(r["vm_config"])["cpu_count"] == 1
    tappd.dstack("GetQuote", {"report_data": "00" * 65}, expect=400)
    # GET with the input in the query string.
    st, _, body = request(tappd.dstack_sock, "GET", "/GetQuote?report_data=abcd")
    assert st == 200
    check_quote_log(json.loads(body)["quote"], json.loads(body)["event_log"],
                    bytes.fromhex("abcd").ljust(64, b"\0"))
    info = tappd.dstack("Info")
    compose = (tappd.dir / "app-compose.json").read_bytes()
    assert info["compose_hash"] == hashlib.sha256(compose).hexdigest()
    assert info["app_id"] == hashlib.sha256(compose).hexdigest()[:40]
    assert info["app_name"] == "dstack-dev"
    vm = json.loads(info["vm_config"])
    assert len(info["os_image_hash"]) == 64 and info["os_image_hash"] == vm["os_image_hash"]
    tcb = json.loads(info["tcb_info"])
    assert tcb["compose_hash"] == info["compose_hash"]
    assert tcb["os_image_hash"] == info["os_image_hash"]
    assert replay(tcb["event_log"])[3].hex() == tcb["rtmr3"]
    assert tappd.tappd("Info")["app_id"] == info["app_id"]
    v = tappd.dstack("Version")
    assert set(v) == {"version", "rev"}
    att = tappd.dstack("Attest", {"report_data": "ff"})
    raw = bytes.fromhex(att["attestation"])
    assert raw[:2] == b"\0\0"


def test_get_tls_key(tappd):
    r = tappd.dstack("GetTlsKey", {"subject": "tls", "alt_names": ["a.example"],
                                   "usage_ra_tls": True, "usage_client_auth": True,
                                   "not_before": 1700000000, "not_after": 1900000000})
    leaf = x509.load_pem_x509_certificate(r["certificate_chain"][0].encode())
    assert calendar.timegm(leaf.not_valid_before.utctimetuple()) == 1700000000
    assert calendar.timegm(leaf.not_valid_after.utctimetuple()) == 1900000000
    leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.62397.1.2"))
    r2 = tappd.dstack("GetTlsKey", {"subject": "tls"})
    assert r2["key"] != r["key"]


def test_emit_event(tappd):
    tappd.dstack("EmitEvent", {"event": "deploy", "payload": b"v1.2".hex()})
    r = tappd.dstack("GetQuote", {"report_data": ""})
    events = check_quote_log(r["quote"], r["event_log"])
    last = events[-1]
    assert last["imr"] == 3 and last["event"] == "deploy"
    assert bytes.fromhex(last["event_payload"]) == b"v1.2"
    assert bytes.fromhex(last["digest"]) == runtime_digest("deploy", b"v1.2")


def test_emit_event_concurrent(tappd):
    n = 48

    def emit(i):
        return rpc(tappd.dstack_sock, "/EmitEvent",
                   {"event": f"par-{i}", "payload": i.to_bytes(2, "big").hex()})

    with concurrent.futures.ThreadPoolExecutor(12) as ex:
        list(ex.map(emit, range(n)))
    r = tappd.dstack("GetQuote", {"report_data": ""})
    events = check_quote_log(r["quote"], r["event_log"])
    par = [e["event"] for e in events if e["event"].startswith("par-")]
    assert sorted(par) == sorted(f"par-{i}" for i in range(n))


def test_protobuf_mode(tappd):
    # TdxQuoteArgs{report_data = 1: bytes} as protobuf; the reply is TdxQuoteResponse protobuf.
    rd = b"\x01\x02"
    body = b"\x0a" + bytes([len(rd)]) + rd
    st, h, out = request(tappd.tappd_sock, "POST", "/prpc/Tappd.TdxQuote", body)
    assert st == 200
    assert h.get("Content-Type") == "application/octet-stream"
    assert out[0] == 0x0a  # field 1 (quote), length-delimited
    ln, i, shift = 0, 1, 0
    while True:
        b = out[i]
        ln |= (b & 0x7f) << shift
        i += 1
        shift += 7
        if b < 0x80:
            break
    q = out[i:i + ln]
    _, got = quote_rtmrs(q)
    assert got == hashlib.sha512(b"app-data:" + rd).digest()
    st, _, _ = request(tappd.tappd_sock, "POST", "/prpc/Tappd.TdxQuote", b"\xff\xff\xff")
    assert st == 400


def test_worker_external(tappd):
    ext = tappd.external
    st, h, body = request(ext, "GET", "/prpc/Worker.Info")
    assert st == 200
    info = json.loads(body)
    assert set(info) == {"app_id", "app_cert", "tcb_info"}
    assert info["app_id"] == tappd.dstack("Info")["app_id"]
    assert json.loads(info["tcb_info"])["rtmr3"]  # public_tcbinfo is on in the demo app
    st, h, body = request(ext, "GET", "/prpc/Worker.Version")
    assert st == 200 and h.get("X-App-Version") == json.loads(body)["version"]
    # No container engine in this test: a clear error, not an empty list.
    st, _, body = request(ext, "GET", "/prpc/Worker.ListContainers")
    assert st == 400 and "error" in json.loads(body)
    st, h, body = request(ext, "GET", "/")
    assert st == 200 and h["Content-Type"].startswith("text/html")
    assert info["app_id"].encode() in body and b"Worker Information" in body
    st, h, body = request(ext, "GET", "/metrics")
    assert st == 200 and b"dstack_uptime_seconds" in body
    # The external port serves only Worker.
    st, _, _ = request(ext, "POST", "/prpc/Tappd.TdxQuote?json", {"report_data": ""})
    assert st == 404


def test_public_flags_off(tappd_factory):
    t = tappd_factory("[default.core]\npublic_logs = false\npublic_sysinfo = false\n"
                      "public_tcbinfo = false\n")
    ext = t.external
    st, _, body = request(ext, "GET", "/logs/web?text")
    assert st == 403 and b"public_logs" in body
    st, _, body = request(ext, "GET", "/metrics")
    assert st == 403
    st, _, body = request(ext, "GET", "/prpc/Worker.Info")
    assert st == 200 and json.loads(body)["tcb_info"] == ""
    st, _, body = request(ext, "GET", "/")
    assert st == 200 and b"not public" in body.lower()
    # The internal sockets still give everything.
    assert json.loads(t.dstack("Info")["tcb_info"])["mrtd"]


def test_restart_keeps_state(tappd_factory):
    t = tappd_factory(sub="x")
    t.dstack("EmitEvent", {"event": "before-restart", "payload": ""})
    info = t.dstack("Info")
    t.stop()
    from test_tappd_common import Tappd
    t2 = Tappd(t.dir.parent)
    try:
        info2 = t2.dstack("Info")
        assert info2["app_id"] == info["app_id"]
        assert info2["instance_id"] == info["instance_id"]
        r = t2.dstack("GetQuote", {"report_data": ""})
        events = check_quote_log(r["quote"], r["event_log"])
        assert [e["event"] for e in events].count("system-ready") == 1
        assert events[-1]["event"] == "before-restart"
    finally:
        t2.stop()


def test_external_https_and_app_key_attestation(tappd_bin, tmp_path):  # noqa: F811
    import datetime
    import ssl

    from test_tappd_common import Tappd
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "tls.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (tmp_path / "tls.cert").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    t = Tappd(tmp_path, want=4, config=(
        '[external-https]\naddress = "127.0.0.1"\nport = 0\n'
        f'[external-https.tls]\nkey = "{tmp_path}/tls.key"\ncerts = "{tmp_path}/tls.cert"\n'))
    try:
        url = t.listen["external-https"]
        host, port = url.removeprefix("https://").rsplit(":", 1)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        import http.client
        c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=20)
        c.request("GET", "/prpc/Worker.Version")
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["version"]
        # Worker.GetAttestationForAppKey: report data names the app's signing key.
        c.request("POST", "/prpc/Worker.GetAttestationForAppKey?json",
                  body=json.dumps({"algorithm": "secp256k1"}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        body = json.loads(r.read())
        assert r.status == 200, body
        vms = hkdf(bytes.fromhex(t.appkeys()["k256_key"]), b"vms")
        pub = ec.derive_private_key(int.from_bytes(vms, "big"), ec.SECP256K1()).public_key() \
            .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
        want = ("dip1::secp256k1c-pk:" + base64.urlsafe_b64encode(pub).decode().rstrip("="))
        check_quote_log(body["quote"], body["event_log"], want.encode().ljust(64, b"\0"))
        c.request("POST", "/prpc/Worker.GetAttestationForAppKey?json",
                  body=json.dumps({"algorithm": "rsa"}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        assert r.status == 400
        c.close()
    finally:
        t.stop()


def test_dev_os_image_hash_sys_config(tappd_bin, tmp_path):
    from test_tappd_common import Tappd
    # A dev directory of an earlier version (vm_config without an os_image_hash) is upgraded;
    # a user's own sys-config.json is left alone and its os_image_hash is what gets recorded.
    old = ('{"kms_urls":[],"gateway_urls":[],"pccs_url":null,"docker_registry":null,'
           '"host_api_url":null,"vm_config":"{\\"os_image_hash\\":\\"\\",'
           '\\"cpu_count\\":1,\\"memory_size\\":1073741824}"}')
    mine = {"kms_urls": [], "vm_config": json.dumps({"os_image_hash": "ab" * 32, "cpu_count": 2})}
    for sub, text, want in (("old", old, None), ("mine", json.dumps(mine), "ab" * 32)):
        d = tmp_path / sub
        (d / "dev").mkdir(parents=True)
        (d / "dev" / "sys-config.json").write_text(text)
        t = Tappd(d)
        try:
            vm = json.loads(json.loads((t.dir / "sys-config.json").read_text())["vm_config"])
            info = t.dstack("Info")
            if want is None:
                assert len(vm["os_image_hash"]) == 64 and vm["os_image_hash"] != "0" * 64
                want = vm["os_image_hash"]
            else:
                assert vm["cpu_count"] == 2
            assert info["os_image_hash"] == want
            assert json.loads(info["vm_config"])["os_image_hash"] == want
        finally:
            t.stop()

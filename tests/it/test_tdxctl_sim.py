"""tdxctl against the simulated TEE: quote, report, show, extend and its event log, concurrent
extends, gen-ra-cert."""
import concurrent.futures
import hashlib
import json
import os
import stat

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import quoteparse
from conftest import Tdxctl

ZERO48 = bytes(48)
OID_QUOTE = x509.ObjectIdentifier("1.3.6.1.4.1.62397.1.1")
OID_EVENT_LOG = x509.ObjectIdentifier("1.3.6.1.4.1.62397.1.2")


def rtmr_chain(digests, start=ZERO48):
    m = start
    for d in digests:
        m = hashlib.sha384(m + d.ljust(48, b"\0")).digest()
    return m


def quote_info(sim, report_data, tmp_path, name="q.bin"):
    q = sim.tdxctl.run("quote", input=report_data).stdout
    path = tmp_path / name
    path.write_bytes(q)
    return q, sim.tdxctl.json("quote-info", path)


def replay(t, path):
    return t.json("eventlog", "replay", path)


def test_quote_fields(sim, tmp_path):
    rd = bytes(range(64))
    q, info = quote_info(sim, rd, tmp_path)
    assert info["version"] == 4
    assert info["tee_type"] == "TDX"
    assert info["body_type"] == "td10"
    assert info["report_data"] == rd.hex()
    assert info["rt_mr3"] == ZERO48.hex()
    assert info["quote_size"] == len(q)
    # Cross-check with an independent reader of the quote bytes.
    ref = quoteparse.parse(q)
    for k in ("mr_td", "rt_mr0", "rt_mr1", "rt_mr2", "rt_mr3", "xfam", "td_attributes",
              "qe_vendor_id", "signature", "attestation_key"):
        assert info[k] == ref[k], k
    # The simulated boot events replay to RTMR0..2 of the quote.
    r = replay(sim.tdxctl, sim.eventlog)
    for i in range(4):
        assert r[f"rtmr{i}"] == info[f"rt_mr{i}"]


def test_quote_from_stdin_quote_info(sim):
    q = sim.tdxctl.run("quote", input=b"\x11" * 64).stdout
    info = sim.tdxctl.json("quote-info", "-", input=q)
    assert info["report_data"] == "11" * 64
    info2 = sim.tdxctl.json("quote-info", "--hex", "-", input=q.hex().encode() + b"\n")
    assert info2 == info


def test_report_and_show(sim):
    rep = sim.tdxctl.run("report", input=b"\x22" * 64).stdout
    assert len(rep) == 1024
    assert rep[128:192] == b"\x22" * 64  # REPORTMACSTRUCT.report_data
    show = sim.tdxctl.json("show")
    for k in ("attributes", "xfam", "mrtd", "mrconfigid", "mrowner", "mrownerconfig",
              "rtmr0", "rtmr1", "rtmr2", "rtmr3", "servtd_hash"):
        assert k in show, k
    assert show["mrtd"] == rep[512 + 16:512 + 64].hex()
    assert show["rtmr3"] == ZERO48.hex()


def test_extend_twice(sim, tmp_path):
    d1 = hashlib.sha256(b"compose").digest()
    d2 = hashlib.sha384(b"app").digest()
    p1 = sim.tdxctl.run("extend", "-a", "compose-hash", "-d", d1.hex())
    out1 = p1.stdout.decode()
    assert out1 == f"Extended RTMR 3: {d1.hex()}{'00' * 16}\n"
    # stdout is upstream's line; stderr says what the printed value is
    assert ("printed the digest extended into RTMR 3 (event 'compose-hash'), not the RTMR's "
            "new value") in p1.stderr.decode(), p1.stderr
    out2 = sim.tdxctl.run("extend", "--associated-data", "app-id", "--digest", d2.hex(),
                          "--index", "3", "--event-type", "1", "-v", "1").stdout.decode()
    assert out2 == f"Extended RTMR 3: {d2.hex()}\n"

    _, info = quote_info(sim, bytes(64), tmp_path)
    assert info["rt_mr3"] == rtmr_chain([d1, d2]).hex()
    r = replay(sim.tdxctl, sim.eventlog)
    assert [r[f"rtmr{i}"] for i in range(4)] == [info[f"rt_mr{i}"] for i in range(4)]

    # The event log holds the two seed-era lines, keys in upstream order.
    lines = [json.loads(l) for l in sim.eventlog.read_text().splitlines()]
    rt3 = [l for l in lines if l["imr"] == 3]
    assert [l["associated_data"] for l in rt3] == ["compose-hash", "app-id"]
    assert rt3[0]["digest"] == d1.ljust(48, b"\0").hex()
    assert list(rt3[0].keys()) == ["imr", "event_type", "digest", "associated_data"]
    assert stat.S_IMODE(os.stat(sim.eventlog).st_mode) == 0o600


def test_extend_other_index_and_empty_digest(sim, tmp_path):
    _, before = quote_info(sim, bytes(64), tmp_path, "a.bin")
    out = sim.tdxctl.run("extend", "-i", "2", "-a", "x").stdout.decode()
    assert out == f"Extended RTMR 2: {ZERO48.hex()}\n"
    _, after = quote_info(sim, bytes(64), tmp_path, "b.bin")
    assert after["rt_mr2"] == rtmr_chain([ZERO48], bytes.fromhex(before["rt_mr2"])).hex()
    assert after["rt_mr3"] == before["rt_mr3"]
    r = replay(sim.tdxctl, sim.eventlog)
    assert r["rtmr2"] == after["rt_mr2"]


def test_extend_runtime_event(sim, tmp_path):
    """--payload: a runtime event as the guest agent emits it (digest over type, name and
    payload), replayable and quoted like any other."""
    payload = bytes(range(20))
    want = hashlib.sha384((0x08000001).to_bytes(4, "little") + b":instance-id:" + payload).digest()
    out = sim.tdxctl.run("extend", "-a", "instance-id", "--payload", payload.hex()).stdout.decode()
    assert out == f"Extended RTMR 3: {want.hex()}\n"
    last = json.loads(sim.eventlog.read_text().splitlines()[-1])
    assert last == {"imr": 3, "event_type": 0x08000001, "digest": want.hex(),
                    "event": "instance-id", "event_payload": payload.hex()}
    _, info = quote_info(sim, bytes(64), tmp_path)
    r = replay(sim.tdxctl, sim.eventlog)
    assert r["rtmr3"] == info["rt_mr3"]
    for args in (["-a", "x", "-p", "zz"], ["-a", "x", "-p", "00", "-d", "00"],
                 ["-a", "x", "-p", "00", "-i", "2"]):
        p = sim.tdxctl.run("extend", *args, check=False)
        assert p.returncode == 2, args


def test_extend_bad_arguments(sim):
    for args in (["-d", "00" * 49, "-a", "x"],   # digest over 48 bytes
                 ["-d", "zz", "-a", "x"],         # not hex
                 ["-i", "4", "-a", "x"],          # index out of range
                 ["-v", "2", "-a", "x"],          # unsupported version
                 ["-d", "00"]):                   # associated data missing
        p = sim.tdxctl.run("extend", *args, check=False)
        assert p.returncode != 0, args
        assert p.stdout == b""
        assert len(p.stderr.decode().strip().splitlines()) == 1, p.stderr
    assert not sim.eventlog.exists() or all(
        json.loads(l)["imr"] != 3 for l in sim.eventlog.read_text().splitlines())


def test_concurrent_extend(sim, tmp_path):
    def worker(tag):
        for i in range(25):
            d = hashlib.sha384(f"{tag}-{i}".encode()).digest()
            sim.tdxctl.run("extend", "-a", f"{tag}-{i}", "-d", d.hex())

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        list(ex.map(worker, ["a", "b"]))

    lines = [json.loads(l) for l in sim.eventlog.read_text().splitlines()]
    rt3 = [l for l in lines if l["imr"] == 3]
    assert len(rt3) == 50
    assert sorted(l["associated_data"] for l in rt3) == sorted(
        f"{t}-{i}" for t in "ab" for i in range(25))
    _, info = quote_info(sim, bytes(64), tmp_path)
    # The log order is the extend order: the python chain over the log equals the quote.
    assert rtmr_chain([bytes.fromhex(l["digest"]) for l in rt3]).hex() == info["rt_mr3"]
    assert replay(sim.tdxctl, sim.eventlog)["rtmr3"] == info["rt_mr3"]


def make_ca(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cp, kp = tmp_path / "ca.pem", tmp_path / "ca.key"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    os.chmod(kp, 0o600)
    return cert, key, cp, kp


def der_octet_string(v: bytes) -> bytes:
    """Content of a DER OCTET STRING, checking there is nothing else."""
    assert v[0] == 0x04
    n = v[1]
    if n < 0x80:
        return v[2:2 + n] if len(v) == 2 + n else None
    k = n & 0x7F
    ln = int.from_bytes(v[2:2 + k], "big")
    assert len(v) == 2 + k + ln
    return v[2 + k:]


def test_gen_ra_cert(sim, tmp_path):
    sim.tdxctl.run("extend", "-a", "app-id", "-d", "ab" * 20)
    ca, ca_key, cp, kp = make_ca(tmp_path)
    out_c, out_k = tmp_path / "out" / "cert.pem", tmp_path / "out" / "key.pem"
    out_c.parent.mkdir()
    p = sim.tdxctl.run("gen-ra-cert", "--ca-cert", cp, "--ca-key", kp,
                       "-c", out_c, "-k", out_k)
    assert p.stdout == b""
    cert = x509.load_pem_x509_certificate(out_c.read_bytes())
    key = serialization.load_pem_private_key(out_k.read_bytes(), None)
    assert b"BEGIN PRIVATE KEY" in out_k.read_bytes()
    assert stat.S_IMODE(os.stat(out_k).st_mode) == 0o600
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "RA-TLS TEMP Cert"
    assert cert.issuer == ca.subject
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                           ec.ECDSA(cert.signature_hash_algorithm))

    oids = [e.oid for e in cert.extensions]
    assert oids.index(OID_QUOTE) < oids.index(OID_EVENT_LOG)
    qext = cert.extensions.get_extension_for_oid(OID_QUOTE)
    eext = cert.extensions.get_extension_for_oid(OID_EVENT_LOG)
    assert not qext.critical and not eext.critical
    quote = der_octet_string(qext.value.value)
    evlog = der_octet_string(eext.value.value)
    assert quote is not None and evlog is not None
    assert evlog == sim.eventlog.read_bytes()

    point = cert.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint)
    assert len(point) == 65
    ref = quoteparse.parse(quote)
    assert ref["report_data"] == hashlib.sha512(point).hexdigest()
    info = sim.tdxctl.json("quote-info", "-", input=quote)
    assert info["report_data"] == hashlib.sha512(point).hexdigest()
    assert info["rt_mr3"] == rtmr_chain([bytes.fromhex("ab" * 20)]).hex()


def test_gen_ra_cert_failures_leave_no_files(sim, tmp_path):
    ca, ca_key, cp, kp = make_ca(tmp_path)
    # Key output in a missing directory: no certificate left behind either.
    out_c, out_k = tmp_path / "cert.pem", tmp_path / "missing" / "key.pem"
    p = sim.tdxctl.run("gen-ra-cert", "--ca-cert", cp, "--ca-key", kp, "-c", out_c, "-k", out_k,
                       check=False)
    assert p.returncode == 1
    assert len(p.stderr.decode().strip().splitlines()) == 1
    assert not out_c.exists() and not out_k.exists()
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith("cert")] == []
    # A CA key that does not belong to the CA certificate.
    other = tmp_path / "other.key"
    other.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    out_k = tmp_path / "key.pem"
    p = sim.tdxctl.run("gen-ra-cert", "--ca-cert", cp, "--ca-key", other, "-c", out_c,
                       "-k", out_k, check=False)
    assert p.returncode == 1
    assert not out_c.exists() and not out_k.exists()
    # Garbage CA certificate.
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    p = sim.tdxctl.run("gen-ra-cert", "--ca-cert", bad, "--ca-key", kp, "-c", out_c,
                       "-k", out_k, check=False)
    assert p.returncode == 1
    assert not out_c.exists() and not out_k.exists()
    assert len(p.stderr.decode().strip().splitlines()) == 1


def test_no_tee(tdxctl, tmp_path):
    # Without DSTACK_TEE and without TDX hardware nothing is available: one clear error line.
    if os.path.exists("/dev/tdx_guest") or os.path.exists("/sys/kernel/config/tsm/report"):
        import pytest
        pytest.skip("TDX hardware present")
    p = tdxctl.run("quote", input=bytes(64), check=False)
    assert p.returncode == 1 and p.stdout == b""
    assert len(p.stderr.decode().strip().splitlines()) == 1
    # DSTACK_TEE=sim with an uninitialised directory.
    p = tdxctl.run("quote", input=bytes(64), check=False,
                   env={"DSTACK_TEE": "sim", "DSTACK_SIM_DIR": str(tmp_path / "none")})
    assert p.returncode == 1 and p.stdout == b""
    assert len(p.stderr.decode().strip().splitlines()) == 1


def test_ratls_info(sim, tmp_path):
    # A lone seed-era app-id (another TD) is not a boot: no identity, and the reason says why.
    other = tmp_path / "other"
    sim.tdxctl.run("sim", "init", other)
    t2 = Tdxctl(dict(sim.env, DSTACK_SIM_DIR=str(other)))
    t2.run("extend", "-a", "app-id", "-d", "cd" * 32)
    ca, ca_key, cp, kp = make_ca(tmp_path)
    c0, k0 = tmp_path / "c0.pem", tmp_path / "k0.pem"
    t2.run("gen-ra-cert", "--ca-cert", cp, "--ca-key", kp, "-c", c0, "-k", k0)
    info = t2.json("ratls-info", c0)
    assert info["app_id"] is None and "rootfs-hash" in info["identity_error"]
    # The newest boot's events: the app id is the app-id event's payload.
    for name, payload in (("system-preparing", ""), ("app-id", "cd" * 20),
                          ("boot-mr-done", "")):
        sim.tdxctl.run("extend", "-a", name, "--payload", payload)
    c, k = tmp_path / "c.pem", tmp_path / "k.pem"
    sim.tdxctl.run("gen-ra-cert", "--ca-cert", cp, "--ca-key", kp, "-c", c, "-k", k)
    ev = tmp_path / "ev"
    qf = tmp_path / "qf"
    info = sim.tdxctl.json("ratls-info", "--eventlog-out", ev, "--quote-out", qf, c)
    assert info["report_data_binds_key"] is True
    assert info["app_id"] == "cd" * 20 and info["era"] == "newest"
    assert info["subject"] == "CN=RA-TLS TEMP Cert"
    assert info["issuer"] == "CN=Test CA"
    assert ev.read_bytes() == sim.eventlog.read_bytes()
    assert info["quote"] == sim.tdxctl.json("quote-info", qf)
    # DER input works too.
    der = x509.load_pem_x509_certificate(c.read_bytes()).public_bytes(serialization.Encoding.DER)
    assert sim.tdxctl.json("ratls-info", "-", input=der)["app_id"] == "cd" * 20
    # A certificate without the quote extension.
    p = sim.tdxctl.run("ratls-info", cp, check=False)
    assert p.returncode == 1 and p.stdout == b""
    assert len(p.stderr.decode().strip().splitlines()) == 1


def python_ratls_cert(quote: bytes, evlog: bytes, key, wrap=True):
    """An RA-TLS certificate made with python's cryptography (interop check)."""
    import datetime

    def octet(b):
        n = len(b)
        if n < 0x80:
            hdr = bytes([0x04, n])
        else:
            ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
            hdr = bytes([0x04, 0x80 | len(ln)]) + ln
        return hdr + b

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "py")])
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
         .public_key(key.public_key()).serial_number(1)
         .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.UnrecognizedExtension(OID_QUOTE, octet(quote) if wrap else quote),
                        critical=False)
         .add_extension(x509.UnrecognizedExtension(OID_EVENT_LOG, octet(evlog)),
                        critical=False))
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_ratls_info_python_made_certs(sim, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    good_q = sim.tdxctl.run("quote", input=hashlib.sha512(point).digest()).stdout
    other_q = sim.tdxctl.run("quote", input=bytes(64)).stdout
    f = tmp_path / "c.pem"
    f.write_bytes(python_ratls_cert(good_q, b"", key))
    info = sim.tdxctl.json("ratls-info", f)
    assert info["report_data_binds_key"] is True and info["app_id"] is None
    f.write_bytes(python_ratls_cert(other_q, b"", key))
    assert sim.tdxctl.json("ratls-info", f)["report_data_binds_key"] is False
    # Single-wrapped (raw quote directly in extnValue): rejected as malformed.
    f.write_bytes(python_ratls_cert(good_q, b"", key, wrap=False))
    p = sim.tdxctl.run("ratls-info", f, check=False)
    assert p.returncode == 1 and p.stdout == b""
    assert "Bad message" in p.stderr.decode()

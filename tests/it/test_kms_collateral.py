"""The KMS and a slow or failing PCCS: collateral is fetched only for quotes whose PCK chain leads
to Intel's root, off the event loop (other clients are served meanwhile), once per platform at a
time, and a failed fetch is remembered briefly instead of being retried by every request."""
import concurrent.futures
import json
import os
import re
import struct
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import VECTORS
from test_kms_common import Kms, Sim, craft_cert, kms_bin, load_key, ra_evidence  # noqa: F401
from test_pccs_fetch import pccs  # noqa: F401

FMSPC_OID_DER = bytes.fromhex("060a2a864886f84d010d0104")  # 1.2.840.113741.1.13.1.4
DELAY_MS = 3000


def intel_chain():
    """The PCK chain (leaf, Platform CA, root) of a real Intel TDX quote."""
    q = (VECTORS / "dcap-qvl" / "tdx_quote").read_bytes()
    return re.findall(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", q, re.S)


def forged_leaf(leaf_pem):
    """Intel's PCK leaf with a random FMSPC, re-signed by a key of ours (same names, same
    validity): what an attacker uses to make the KMS ask the PCCS for any FMSPC."""
    leaf = x509.load_pem_x509_certificate(leaf_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder().subject_name(leaf.subject).issuer_name(leaf.issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(leaf.not_valid_before).not_valid_after(leaf.not_valid_after))
    for ext in leaf.extensions:
        v = ext.value
        if ext.oid.dotted_string == "1.2.840.113741.1.13.1":
            raw = bytearray(v.value)
            i = raw.index(FMSPC_OID_DER) + len(FMSPC_OID_DER)
            assert raw[i:i + 2] == b"\x04\x06"
            raw[i + 2:i + 8] = os.urandom(6)
            v = x509.UnrecognizedExtension(ext.oid, bytes(raw))
        elif isinstance(v, x509.AuthorityKeyIdentifier) or isinstance(v, x509.SubjectKeyIdentifier):
            continue
        b = b.add_extension(v, ext.critical)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def with_chain(quote, chain_pem):
    """A v4 TDX quote with its PCK chain (certification data type 5 inside type 6) replaced;
    every length field is rewritten. The signed header and body are untouched, so report_data
    still binds the certificate key."""
    off = 48 + 584
    (sig_len,) = struct.unpack_from("<I", quote, off)
    p = off + 4 + 128
    ctype, csize = struct.unpack_from("<HI", quote, p)
    assert ctype == 6
    inner = p + 6 + 384 + 64
    (auth_len,) = struct.unpack_from("<H", quote, inner)
    t5 = inner + 2 + auth_len
    assert struct.unpack_from("<H", quote, t5)[0] == 5
    qe_part = quote[p + 6:t5]
    cert6 = qe_part + struct.pack("<HI", 5, len(chain_pem)) + chain_pem
    sig = quote[off + 4:off + 4 + 128] + struct.pack("<HI", 6, len(cert6)) + cert6
    return quote[:off] + struct.pack("<I", len(sig)) + sig


def cvm_with_chain(sim, kms, out, name, chain_pem):
    """An RA-TLS client certificate from the simulated TD whose quote carries chain_pem."""
    cert, key = sim.ra_cert(out, kms.dir, name=name)
    quote, log = ra_evidence(cert)
    return craft_cert(out, name + "-x", kms.dir, key=load_key(key),
                      quote=with_chain(quote, chain_pem), event_log=log)


def timed(kms, cert, key, method="GetAppKey"):
    t0 = time.monotonic()
    st, body = kms.call(method, cert, key)
    return time.monotonic() - t0, st, body


@pytest.fixture
def setup(tmp_path, pccs, kms_bin, tdxctl_path):  # noqa: F811
    sim = Sim(tmp_path / "sim")
    kms = Kms(tmp_path, sim=sim.dir,
              config=f'[core.quote]\npccs_url = "{pccs.base("dcap-qvl-tdx")}"\n')
    try:
        legit = sim.cvm(tmp_path / "legit", kms.dir)[:2]
        yield sim, kms, pccs, legit
    finally:
        kms.stop()


def test_forged_pck_chains_fetch_nothing(setup, tmp_path):
    """8 quotes with re-signed PCK leaves (random FMSPCs) while the PCCS takes 3 s per answer:
    each is refused at once, the PCCS is never asked, and a legitimate GetAppKey sent at the
    same time is served in well under a second."""
    sim, kms, pccs, (cert, key) = setup
    pccs.get(f"/__delay?ms={DELAY_MS}")
    chain = intel_chain()
    forged = [cvm_with_chain(sim, kms, tmp_path / "f", f"f{i}",
                             forged_leaf(chain[0]) + chain[1] + chain[2]) for i in range(8)]
    base = pccs.requests()
    with concurrent.futures.ThreadPoolExecutor(9) as ex:
        bad = [ex.submit(timed, kms, c, k) for c, k in forged]
        time.sleep(0.2)
        took, st, body = timed(kms, cert, key)
        results = [f.result(timeout=120) for f in bad]
    assert st == 200, body[:300]
    assert took < 1.0, f"legitimate GetAppKey took {took:.2f} s behind the forged quotes"
    for t, s, b in results:
        assert s == 400 and json.loads(b)["error"].startswith("quote_invalid"), b[:300]
        assert "PCK chain" in json.loads(b)["error"]
        assert t < 1.0
    assert pccs.requests() == base, "collateral was fetched for a forged PCK chain"


def test_fetch_off_the_loop_once_and_failure_cached(setup, tmp_path):
    """A quote with a genuine Intel PCK chain needs collateral from the (slow, failing) PCCS:
    other clients are served while it is fetched, two such requests share one fetch, and the
    failure is answered from memory for a while instead of asking the PCCS again."""
    sim, kms, pccs, (cert, key) = setup
    pccs.get(f"/__delay?ms={DELAY_MS}")
    pccs.fail(True)
    chain = b"".join(intel_chain())
    genuine = [cvm_with_chain(sim, kms, tmp_path / "g", f"g{i}", chain) for i in range(2)]
    base = pccs.requests()
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        waiting = [ex.submit(timed, kms, c, k) for c, k in genuine]
        time.sleep(0.5)
        took, st, body = timed(kms, cert, key)
        results = [f.result(timeout=120) for f in waiting]
    assert st == 200, body[:300]
    assert took < 1.0, f"legitimate GetAppKey took {took:.2f} s while collateral was fetched"
    for t, s, b in results:
        err = json.loads(b)["error"]
        assert s == 400 and err.startswith("collateral_unavailable"), err
        assert t >= DELAY_MS / 1000 * 0.9, f"answered after {t:.2f} s: no fetch?"
    one_fetch = pccs.requests() - base
    assert one_fetch == 1, f"{one_fetch} PCCS requests: the two waiters did not share one fetch"

    # Within the failure's lifetime: refused at once, the PCCS is not asked again.
    t, s, b = timed(kms, *genuine[0])
    err = json.loads(b)["error"]
    assert s == 400 and err.startswith("collateral_unavailable") and "retried in" in err, err
    assert t < 1.0
    assert pccs.requests() - base == one_fetch
    assert kms.alive()

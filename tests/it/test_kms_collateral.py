"""The KMS and a slow PCCS: collateral is fetched only for quotes a real platform's QE signed
(PCK chain to Intel's root, QE report and quote signatures), so forged quotes never reach the
PCCS and never slow anyone down. (The fetch itself, off the event loop, once per platform, with
failures remembered, is tested with a real Intel quote in tests/unit/test_ratls_verify.c: no
quote a test can make here is signed by a real QE.)"""
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


def cvm_with_chain(sim, ca_dir, out, name, chain_pem):
    """An RA-TLS client certificate (signed by ca_dir's tmp-ca) from the simulated TD whose
    quote carries chain_pem."""
    cert, key = sim.ra_cert(out, ca_dir, name=name)
    quote, log = ra_evidence(cert)
    return craft_cert(out, name + "-x", ca_dir, key=load_key(key),
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


def refused_beside_legit(setup, bad, what, reason):
    """Sends every certificate of bad at once while the PCCS takes DELAY_MS per answer, and a
    legitimate GetAppKey 0.2 s later: each bad one is refused with reason within a second, the
    legitimate one is served within a second, and the PCCS is never asked."""
    sim, kms, pccs, (cert, key) = setup
    pccs.get(f"/__delay?ms={DELAY_MS}")
    base = pccs.requests()
    with concurrent.futures.ThreadPoolExecutor(len(bad) + 1) as ex:
        waiting = [ex.submit(timed, kms, c, k) for c, k in bad]
        time.sleep(0.2)
        took, st, body = timed(kms, cert, key)
        results = [f.result(timeout=120) for f in waiting]
    assert st == 200, body[:300]
    print(f"legitimate GetAppKey next to {len(bad)} {what}: {took:.3f} s; refused in "
          f"{max(r[0] for r in results):.3f} s at most")
    assert took < 1.0, f"legitimate GetAppKey took {took:.2f} s beside the {what}"
    for t, s, b in results:
        err = json.loads(b)["error"]
        assert s == 400 and err.startswith(reason), err
        assert t < 1.0
    assert pccs.requests() == base, f"collateral was fetched for {what}"
    assert kms.alive()


def test_forged_pck_chains_fetch_nothing(setup, tmp_path):
    """8 quotes with re-signed PCK leaves (random FMSPCs), the PCCS taking 3 s per answer."""
    sim, kms = setup[:2]
    chain = intel_chain()
    forged = [cvm_with_chain(sim, kms.dir, tmp_path / "f", f"f{i}",
                             forged_leaf(chain[0]) + chain[1] + chain[2]) for i in range(8)]
    refused_beside_legit(setup, forged, "forged PCK chains", "quote_invalid: DCAP: PCK chain")


def rewrap(pem, width):
    """The same certificate as PEM text with another line width (and CRLF line ends)."""
    body = b"".join(pem.strip().splitlines()[1:-1])
    lines = [body[i:i + width] for i in range(0, len(body), width)]
    return b"\r\n".join([b"-----BEGIN CERTIFICATE-----", *lines, b"-----END CERTIFICATE-----"]) \
        + b"\r\n"


def test_genuine_chain_forged_quote_fetches_nothing(setup, tmp_path):
    """Intel's real PCK chain is public (it is in every quote): carried by a quote whose QE
    report and signature it did not make, in several spellings of the same certificates."""
    sim, kms = setup[:2]
    chain = intel_chain()
    spellings = [b"".join(chain)] + [b"".join(rewrap(c, w) for c in chain) for w in (76, 48)]
    genuine = [cvm_with_chain(sim, kms.dir, tmp_path / "g", f"g{i}", c)
               for i, c in enumerate(spellings)]
    refused_beside_legit(setup, genuine, "quotes no QE signed", "quote_invalid")

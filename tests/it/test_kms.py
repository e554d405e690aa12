"""KMS integration: `kms --dev DIR` on a simulated platform, simulated CVMs asking for their keys
with curl and RA-TLS client certificates (upstream dstack)."""
import hashlib
import json
import os
import pathlib
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import _clean_env
from test_kms_common import (KMS, Kms, Sim, expected_seed, hexb, key_view, kms_bin,  # noqa: F401
                             load_key, scalar_of)


@pytest.fixture
def sim(tmp_path, tdxctl_path):
    return Sim(tmp_path / "sim")


@pytest.fixture
def kms(tmp_path, sim, kms_bin):
    k = Kms(tmp_path, sim=sim.dir)
    yield k
    k.stop()


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_dev_layout_and_public_endpoints(kms, sim):
    d = kms.dir
    for n in ("root-ca.key", "root-k256.key", "tmp-ca.key"):
        assert mode(d / n) == 0o600, n
    for n in ("root-ca.cert", "tmp-ca.cert", "kms.toml"):
        assert (d / n).is_file(), n
    assert mode(d) == 0o700
    assert kms.url.startswith("https://127.0.0.1:")
    # The dev config trusts exactly this simulated platform.
    toml = (d / "kms.toml").read_text()
    assert f'simulator_dir = "{sim.dir}"' in toml
    assert "allow_simulator = true" in toml and "allow_all = false" in toml

    from test_kms_common import curl
    st, body = curl(kms.url + "/", cacert=d / "root-ca.cert")
    assert st == 200 and body.startswith(b"KMS Server is running!\n")
    st, body = curl(kms.url + "/health", cacert=d / "root-ca.cert")
    assert st == 200 and json.loads(body)["status"] == "ok"

    # The server certificate chains to the root CA and is itself an RA-TLS certificate.
    st, body = kms.call("GetMeta")
    assert st == 200
    meta = json.loads(body)
    assert meta["ca_cert"] == (d / "root-ca.cert").read_text()
    assert meta["is_dev"] is True
    k256 = (d / "root-k256.key").read_bytes()
    from cryptography.hazmat.primitives.asymmetric import ec
    pub = ec.derive_private_key(int.from_bytes(k256, "big"), ec.SECP256K1()).public_key()
    assert bytes.fromhex(meta["k256_pubkey"]) == pub.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    st, body = kms.call("GetTempCaCert")
    tmp = json.loads(body)
    assert tmp["temp_ca_cert"] == (d / "tmp-ca.cert").read_text()
    assert tmp["temp_ca_key"] == (d / "tmp-ca.key").read_text()
    # Root secrets are never in the log.
    log = kms.log()
    assert (d / "root-ca.key").read_text().splitlines()[1] not in log
    assert k256.hex() not in log


def test_dump_and_check_config(kms, tmp_path):
    env = kms.env()
    p = subprocess.run([str(KMS), "--dev", str(kms.dir), "--dump-config"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode() in (kms.dir / "kms.toml").read_text()
    p = subprocess.run([str(KMS), "--dev", str(kms.dir), "--check-config"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0 and b"configuration OK" in p.stdout, p.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[core.allowed_mr]\nmrtd = [\"abcd\"]\n")
    p = subprocess.run([str(KMS), "--dev", str(kms.dir), "-c", str(bad), "--check-config"],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 3 and b"96 hex" in p.stderr
    # a missing file: named once ("config: PATH: No such file or directory")
    missing = tmp_path / "missing.toml"
    p = subprocess.run([str(KMS), "-c", str(missing), "--check-config"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 3 and p.stderr.decode().count(str(missing)) == 1, p.stderr
    # no configuration at all: the missing key file, then what to pass
    p = subprocess.run([str(KMS)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    assert p.returncode == 1 and b"pass -c FILE, or --dev DIR" in p.stderr, p.stderr


def test_onboard_options_checked_first(tmp_path, kms_bin):
    """--source/--exit outside 'kms onboard' is a usage error (2) before any configuration is
    read or any file made, even with --dump-config or --dev."""
    d = tmp_path / "never"
    for args in (["--source", "https://127.0.0.1:1", "--dump-config"],
                 ["--source", "https://127.0.0.1:1", "--dev", str(d)],
                 ["--exit", "-c", str(tmp_path / "missing.toml")],
                 ["onboard", "--dev", str(d)]):
        p = subprocess.run([str(KMS), *args], env=_clean_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        assert p.returncode == 2 and b"belong to 'kms onboard'" in p.stderr, (args, p.stderr)
        assert p.stdout == b"" and not d.exists(), args


def test_kms_init(tmp_path, kms_bin):
    d = tmp_path / "keys"
    p = subprocess.run([str(KMS), "init", str(d)], env=_clean_env(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0, p.stderr
    assert mode(d / "root-ca.key") == 0o600 and mode(d / "root-k256.key") == 0o600
    assert len((d / "root-k256.key").read_bytes()) == 32
    before = (d / "root-ca.key").read_bytes()
    assert before.decode().splitlines()[1] not in p.stdout.decode()
    p = subprocess.run([str(KMS), "init", str(d)], env=_clean_env(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert p.returncode != 0 and b"not overwriting" in p.stderr
    assert (d / "root-ca.key").read_bytes() == before


def test_get_app_key_seed(kms, sim, tmp_path):
    certs = tmp_path / "certs"
    cert, key, app_hex, rootfs_hex = sim.cvm(certs, kms.dir, compose=b"app: one\n")
    r = kms.get_app_key(cert, key)
    want = expected_seed(kms.dir, app_hex, rootfs_hex)
    # Seed-era JSON: bytes as "0x" + hex (what the seed initramfs feeds cryptsetup).
    assert r["disk_crypt_key"].startswith("0x")
    assert hexb(r["disk_crypt_key"]) == want["disk_crypt_key"]
    assert len(hexb(r["disk_crypt_key"])) == 138
    assert hexb(r["env_crypt_key"]) == want["env_crypt_key"]
    assert hexb(r["k256_key"]) == want["k256_key"]
    assert len(hexb(r["k256_signature"])) == 65
    assert scalar_of(r["app_key"].encode()) == want["app_key_scalar"]
    assert r["ca_cert"] == (kms.dir / "root-ca.cert").read_text()
    # certificate_chain = [app cert, root CA]; the app cert is a CA for CN <app_id>.local with
    # the caller's RA-TLS extensions, issued by the root.
    chain = [x509.load_pem_x509_certificate(c.encode()) for c in r["certificate_chain"]]
    assert len(chain) == 2
    app_cert, root = chain
    assert app_cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == \
        app_hex + ".local"
    assert app_cert.issuer == root.subject
    assert app_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert app_cert.public_key().public_numbers() == \
        load_key_from_pem(r["app_key"]).public_key().public_numbers()
    app_cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.62397.1.1"))
    p = subprocess.run(["openssl", "verify", "-CAfile", str(kms.dir / "root-ca.cert"),
                        "-partial_chain", "/dev/stdin"], input=r["certificate_chain"][0].encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr

    # Same app, a new RA-TLS certificate (another boot): the same keys.
    cert2, key2, _, _ = sim.cvm(certs, kms.dir, compose=b"app: one\n")
    r2 = kms.get_app_key(cert2, key2)
    assert key_view(r2) == key_view(r)
    # Another compose file: other keys (the k256 and env keys too).
    cert3, key3, app3, _ = sim.cvm(certs, kms.dir, compose=b"app: two\n")
    assert app3 != app_hex
    r3 = kms.get_app_key(cert3, key3)
    for f in ("disk_crypt_key", "env_crypt_key", "k256_key", "app_key"):
        assert r3[f] != r[f], f
    # The rootfs hash changes the seed disk key only.
    cert4, key4, _, _ = sim.cvm(certs, kms.dir, compose=b"app: one\n", rootfs=b"rootfs v2")
    r4 = kms.get_app_key(cert4, key4)
    assert r4["disk_crypt_key"] != r["disk_crypt_key"]
    assert r4["env_crypt_key"] == r["env_crypt_key"] and r4["app_key"] == r["app_key"]

    # POST JSON with the newest request shape works the same; api_version 2 is refused.
    st, body = kms.call("GetAppKey", cert, key, data='{"api_version":1,"vm_config":""}',
                        query="?json")
    assert st == 200 and key_view(json.loads(body)) == key_view(r)
    assert kms.refused("GetAppKey", cert, key, data='{"api_version":2}') == "bad_request"
    assert "keys for app " + app_hex in kms.log()


def load_key_from_pem(pem):
    return serialization.load_pem_private_key(pem.encode(), None)


def test_restart_same_keys(kms, sim, tmp_path):
    cert, key, _, _ = sim.cvm(tmp_path / "certs", kms.dir)
    r1 = kms.get_app_key(cert, key)
    root_before = (kms.dir / "root-ca.key").read_bytes()
    kms.restart()
    assert (kms.dir / "root-ca.key").read_bytes() == root_before
    r2 = kms.get_app_key(cert, key)
    assert key_view(r2) == key_view(r1)


def test_env_pubkey_matches_app_key(kms, sim, tmp_path):
    cert, key, app_hex, _ = sim.cvm(tmp_path / "certs", kms.dir)
    r = kms.get_app_key(cert, key)
    st, body = kms.call("GetAppEnvEncryptPubKey", query=f"?app_id={app_hex}")
    assert st == 200, body
    pk = json.loads(body)
    from cryptography.hazmat.primitives.asymmetric import x25519
    secret = x25519.X25519PrivateKey.from_private_bytes(hexb(r["env_crypt_key"]))
    assert bytes.fromhex(pk["public_key"]) == secret.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert len(bytes.fromhex(pk["signature"])) == 65
    assert len(bytes.fromhex(pk["signature_v1"])) == 65
    assert pk["timestamp"] > 1_700_000_000
    # POST JSON too; bad app ids are refused.
    st, body = kms.call("GetAppEnvEncryptPubKey", data=json.dumps({"app_id": app_hex}))
    assert st == 200 and json.loads(body)["public_key"] == pk["public_key"]
    assert kms.refused("GetAppEnvEncryptPubKey", data='{"app_id":""}') == "bad_request"


def test_prefixless_prpc_routes(kms, sim, tmp_path):
    """Every KMS method also answers at /prpc/<Method> (the npm SDK calls
    /prpc/GetAppEnvEncryptPubKey?json), with the same replies and refusals."""
    from test_kms_common import curl
    ca = kms.file("root-ca.cert")
    cert, key, app_hex, _ = sim.cvm(tmp_path / "certs", kms.dir)
    body = json.dumps({"app_id": app_hex})
    st, b1 = curl(f"{kms.url}/prpc/GetAppEnvEncryptPubKey?json", cacert=ca, data=body)
    assert st == 200, b1
    st, b2 = kms.call("GetAppEnvEncryptPubKey", data=body)
    assert st == 200
    assert json.loads(b1)["public_key"] == json.loads(b2)["public_key"]
    st, b = curl(f"{kms.url}/prpc/GetMeta", cacert=ca)
    assert st == 200 and json.loads(b)["is_dev"] is True
    # the secret methods too, with the same "0x" bytes encoding
    st, b = curl(f"{kms.url}/prpc/GetAppKey?json", cacert=ca, cert=cert, key=key, data="{}")
    assert st == 200, b
    plain = json.loads(b)
    assert plain["env_crypt_key"].startswith("0x")
    assert key_view(plain) == key_view(kms.get_app_key(cert, key))
    st, b = curl(f"{kms.url}/prpc/GetAppKey?json", cacert=ca, data="{}")
    assert st == 400 and json.loads(b)["error"].startswith("no_client_cert:")
    # unknown methods and other prefixes are still 404
    for path in ("/prpc/NoSuchMethod", "/prpc/KMS.KMS.GetMeta", "/prpc/Tappd.GetMeta",
                 "/prpc/getMeta"):
        st, _ = curl(kms.url + path, cacert=ca)
        assert st == 404, path


def metrics(kms):
    from test_kms_common import curl
    st, body = curl(kms.url + "/metrics", cacert=kms.file("root-ca.cert"))
    assert st == 200, body
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split(" ")
            out[name] = float(value)
    return out


def test_metrics(kms, sim, tmp_path):
    """GET /metrics: per-phase CPU time (Prometheus text) that grows with the work done."""
    m0 = metrics(kms)
    for name in ("kms_tls_handshake_cpu_seconds", "kms_verify_cpu_seconds",
                 "kms_derive_cpu_seconds"):
        assert name + "_sum" in m0 and name + "_count" in m0
    assert m0["process_cpu_seconds_total"] > 0
    assert m0["kms_tls_handshake_cpu_seconds_count"] >= 1  # this very connection
    cert, key, _, _ = sim.cvm(tmp_path / "certs", kms.dir)
    for _ in range(3):
        kms.get_app_key(cert, key)
    assert kms.refused("GetAppKey", data="{}") == "no_client_cert"
    m1 = metrics(kms)
    # 4 calls + the metrics request: 5 handshakes; 4 verifications (the refused one too),
    # 3 derivations
    hs = "kms_tls_handshake_cpu_seconds_count"
    assert m1[hs] - m0[hs] == 5
    assert m1["kms_verify_cpu_seconds_count"] - m0["kms_verify_cpu_seconds_count"] == 4
    assert m1["kms_derive_cpu_seconds_count"] - m0["kms_derive_cpu_seconds_count"] == 3
    assert m1["kms_keys_granted_total"] - m0["kms_keys_granted_total"] == 3
    assert m1["kms_requests_refused_total"] - m0["kms_requests_refused_total"] == 1
    spent = {n: m1[n + "_sum"] - m0[n + "_sum"] for n in
             ("kms_tls_handshake_cpu_seconds", "kms_verify_cpu_seconds", "kms_derive_cpu_seconds")}
    assert all(v > 0 for v in spent.values()), spent
    cpu = m1["process_cpu_seconds_total"] - m0["process_cpu_seconds_total"]
    assert sum(spent.values()) <= cpu
    from test_kms_common import curl
    st, _ = curl(kms.url + "/metrics", cacert=kms.file("root-ca.cert"), data="x")
    assert st == 405

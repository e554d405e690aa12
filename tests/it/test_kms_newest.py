"""Newest-era guests: a CVM booted the way the newest guest agent does it (tappd --dev emits the
runtime events app-id, compose-hash, instance-id, os-image-hash on RTMR3) asks the KMS for its
keys; they match upstream dstack's derivation, done independently here, and the signatures recover to
the KMS root k256 key (checked with @noble/curves when the SDK test modules are installed)."""
import hashlib
import json
import pathlib
import shutil
import subprocess

import pytest

from conftest import REPO, _clean_env
from test_kms_common import Kms, expected_newest, hexb, kms_bin, scalar_of  # noqa: F401
from test_tappd_common import Tappd, tappd_bin  # noqa: F401

NODE_MODULES = REPO / "tests" / "sdk" / "node_modules"


def runtime_events(sim_dir):
    out = {}
    for line in (pathlib.Path(sim_dir) / "eventlog.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e.get("imr") == 3 and "event" in e and e["event"] not in out:
            out[e["event"]] = bytes.fromhex(e.get("event_payload", ""))
    return out


def recover_check(messages):
    """[(hex message, hex 65-byte signature)] -> compressed public keys (hex) via node."""
    if not shutil.which("node") or not (NODE_MODULES / "@noble" / "curves").is_dir():
        return None
    script = (
        "const {secp256k1}=require('@noble/curves/secp256k1');"
        "const {keccak_256}=require('@noble/hashes/sha3');"
        "const inp=JSON.parse(require('fs').readFileSync(0,'utf8'));"
        "console.log(JSON.stringify(inp.map(([m,s])=>{const b=Buffer.from(s,'hex');"
        "return secp256k1.Signature.fromCompact(b.subarray(0,64)).addRecoveryBit(b[64])"
        ".recoverPublicKey(keccak_256(Buffer.from(m,'hex'))).toHex(true);})));")
    env = dict(_clean_env(), NODE_PATH=str(NODE_MODULES))
    p = subprocess.run(["node", "-e", script], input=json.dumps(messages).encode(), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout)


def test_newest_guest_keys(tmp_path, tappd_bin, kms_bin, tdxctl_path):
    (tmp_path / "guest").mkdir()
    t = Tappd(tmp_path / "guest")
    try:
        sim_dir = t.dir / "sim"
        kms = Kms(tmp_path, sim=sim_dir)
        try:
            ev = runtime_events(sim_dir)
            compose = (t.dir / "app-compose.json").read_bytes()
            app = hashlib.sha256(compose).digest()[:20]
            assert ev["app-id"] == app and len(ev["instance-id"]) == 20
            env = dict(_clean_env(), DSTACK_TEE="sim", DSTACK_SIM_DIR=str(sim_dir))
            cert, key = tmp_path / "g.cert", tmp_path / "g.key"
            from conftest import TDXCTL
            subprocess.run([str(TDXCTL), "gen-ra-cert", "--ca-cert", str(kms.dir / "tmp-ca.cert"),
                            "--ca-key", str(kms.dir / "tmp-ca.key"), "-c", str(cert), "-k",
                            str(key)], env=env, check=True, timeout=60)
            r = kms.get_app_key(cert, key)
            want = expected_newest(kms.dir, app, ev["instance-id"])
            assert hexb(r["disk_crypt_key"]) == want["disk_crypt_key"]
            assert len(hexb(r["disk_crypt_key"])) == 32
            assert hexb(r["env_crypt_key"]) == want["env_crypt_key"]
            assert hexb(r["k256_key"]) == want["k256_key"]
            assert scalar_of(r["app_key"].encode()) == want["app_key_scalar"]
            assert hexb(r["os_image_hash"]) == ev["os-image-hash"]
            assert "newest era" in kms.log()

            meta = json.loads(kms.call("GetMeta")[1])
            st, body = kms.call("GetAppEnvEncryptPubKey", query="?app_id=" + app.hex())
            pk = json.loads(body)
            from cryptography.hazmat.primitives.asymmetric import ec, x25519
            from cryptography.hazmat.primitives import serialization
            pub = x25519.X25519PrivateKey.from_private_bytes(hexb(r["env_crypt_key"])) \
                .public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
            assert bytes.fromhex(pk["public_key"]) == pub
            k256_pub = ec.derive_private_key(int.from_bytes(hexb(r["k256_key"]), "big"),
                                             ec.SECP256K1()).public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
            ts = pk["timestamp"].to_bytes(8, "big")
            msgs = [
                ((b"dstack-kms-issued:" + app + k256_pub).hex(), hexb(r["k256_signature"]).hex()),
                ((b"dstack-env-encrypt-pubkey:" + app + pub).hex(), pk["signature"]),
                ((b"dstack-env-encrypt-pubkey:" + app + ts + pub).hex(), pk["signature_v1"]),
            ]
            got = recover_check(msgs)
            if got is None:
                pytest.skip("node / @noble/curves not available for the signature check")
            assert got == [meta["k256_pubkey"]] * 3
        finally:
            kms.stop()
    finally:
        t.stop()

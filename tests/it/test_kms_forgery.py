"""The identity forgery through the event log, tried as an attacker would against the KMS.

App A runs in its own CVM (tappd --dev on a simulated TD). It wants app B's keys, or the KMS's
root keys where the onboarding policy pins the KMS app's id. It extends RTMR3 with B's app-id and
compose-hash events after its boot (through the guest agent if it lets it, or as root in its CVM
with tdxctl), gets a quote for a key of its own, renames its boot's app-id and compose-hash
entries in the event log (digests unchanged, so the log still replays) and presents quote and
log in a certificate signed by the temporary CA, which every guest holds. Every path must be
refused, and a CVM that really booted as the pinned app must still be served."""
import hashlib
import json
import os
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import TDXCTL, _clean_env
from test_kms_common import (Kms, Sim, craft_cert, expected_newest,  # noqa: F401
                             forge_boot_events, hexb, kms_bin, ra_evidence, ratls_report_data)
from test_tappd_common import Tappd, request, tappd_bin  # noqa: F401

B_COMPOSE = b'{"name":"victim","docker_compose_file":"services: {}"}'
B_HASH = hashlib.sha256(B_COMPOSE).digest()
B_APP = B_HASH[:20]


def present(kms, out, name, quote, log, key, method="GetAppKey"):
    """Calls method with a temporary-CA certificate for key carrying quote and log; returns
    (HTTP status, body)."""
    c, k = craft_cert(out, name, kms.dir, key=key, quote=quote, event_log=log)
    return kms.call(method, c, k)


def not_b_keys(kms, st, body):
    """The message for a forgery that got through: whose keys were handed out."""
    if st != 200:
        return f"HTTP {st}: {body[:300]!r}"
    r = json.loads(body)
    want = expected_newest(kms.dir, B_APP, b"")
    same = [f for f in ("env_crypt_key", "k256_key") if hexb(r[f]) == want[f]]
    return f"forged identity accepted: {same or 'no'} key(s) equal app B's"


@pytest.fixture
def guest(tmp_path, tappd_bin, kms_bin, tdxctl_path):
    """App A's CVM (tappd --dev) and a KMS trusting its simulated platform."""
    (tmp_path / "a").mkdir()
    t = Tappd(tmp_path / "a")
    kms = None
    try:
        kms = Kms(tmp_path, sim=t.dir / "sim")
        yield t, kms
    finally:
        if kms:
            kms.stop()
        t.stop()


def test_guest_agent_refuses_boot_event_names(guest):
    t, _ = guest
    before = t.dstack("GetQuote", {"report_data": ""})["event_log"]
    for name in ("app-id", "compose-hash", "instance-id", "key-provider", "system-ready",
                 "boot-mr-done", "os-image-hash", "rootfs-hash", "ca-cert-hash",
                 "system-preparing", "init-script-hash", "storage-fs", "app-id:x",
                 "compose-hash:"):
        st, _, body = request(t.dstack_sock, "POST", "/EmitEvent",
                              {"event": name, "payload": B_APP.hex()})
        assert 400 <= st < 500 and b"reserved" in body, (name, st, body)
    # Nothing was extended or logged; other names still work.
    assert t.dstack("GetQuote", {"report_data": ""})["event_log"] == before
    t.dstack("EmitEvent", {"event": "app-id-of-my-peer", "payload": B_APP.hex()})


def tdxctl(env, *args):
    subprocess.run([str(TDXCTL), *map(str, args)], env=env, check=True,
                   stdout=subprocess.DEVNULL, timeout=60)


def test_app_keys_forgery(guest, tmp_path):
    t, kms = guest
    sim_env = dict(_clean_env(), DSTACK_TEE="sim", DSTACK_SIM_DIR=str(t.dir / "sim"))
    # Before the attack, A asks as itself and gets A's keys.
    own_cert, own_key = tmp_path / "own.cert", tmp_path / "own.key"
    tdxctl(sim_env, "gen-ra-cert", "--ca-cert", kms.dir / "tmp-ca.cert", "--ca-key",
           kms.dir / "tmp-ca.key", "-c", own_cert, "-k", own_key)
    info = t.dstack("Info")
    a_app = bytes.fromhex(info["app_id"])
    r = kms.get_app_key(own_cert, own_key)
    assert hexb(r["k256_key"]) == expected_newest(kms.dir, a_app, b"")["k256_key"]

    # Root in A's CVM extends RTMR3 with B's identity events (the guest agent refuses them).
    for name, payload in (("app-id", B_APP), ("compose-hash", B_HASH)):
        tdxctl(sim_env, "extend", "-a", name, "--payload", payload.hex())
    key = ec.generate_private_key(ec.SECP256R1())
    q = t.dstack("GetQuote", {"report_data": ratls_report_data(key).hex()})
    quote, log = bytes.fromhex(q["quote"]), q["event_log"].encode()
    out = tmp_path / "forged"
    seedish = json.loads(log)  # the boot's app-id turned into a seed-era line instead
    next(e for e in seedish if e["imr"] == 3 and e["event"] == "app-id")["event_type"] = 1
    variants = {
        "late": log,                          # B's events left as they are, after A's boot
        "renamed": forge_boot_events(log),    # A's boot events renamed; the log still replays
        "seedish": json.dumps(seedish).encode(),
    }
    outcomes = {}
    for name, forged in variants.items():
        st, body = present(kms, out, name, quote, forged, key)
        refused = st == 400 and json.loads(body)["error"].startswith("bad_event_log")
        outcomes[name] = "refused" if refused else not_b_keys(kms, st, body)
    assert set(outcomes.values()) == {"refused"}, outcomes
    assert "refused: bad_event_log" in kms.log()


def test_onboarding_forgery(tmp_path, kms_bin, tdxctl_path):
    """A KMS whose onboarding policy pins the KMS app's id must not release its root keys to an
    app that forges that id."""
    sim = Sim(tmp_path / "sim")
    kms_compose = b'{"name":"kms","docker_compose_file":"services: {kms: {}}"}'
    kms_hash = hashlib.sha256(kms_compose).digest()
    kms_app = kms_hash[:20]
    source = Kms(tmp_path, name="source", sim=sim.dir,
                 config=f'[core.onboard.allowed_mr]\napp_ids = ["{kms_app.hex()}"]\n')
    try:
        a_hash = hashlib.sha256(b"attacker").digest()
        sim.newest_boot(a_hash[:20], a_hash)
        sim.tdxctl("extend", "-a", "app-id", "--payload", kms_app.hex())
        sim.tdxctl("extend", "-a", "compose-hash", "--payload", kms_hash.hex())
        cert, key = sim.ra_cert(tmp_path / "a", source.dir)
        quote, log = ra_evidence(cert)
        from test_kms_common import load_key
        outcomes = {}
        for name, forged in (("late", log), ("renamed", forge_boot_events(log))):
            c, k = craft_cert(tmp_path / "forged", name, source.dir, key=load_key(key),
                              quote=quote, event_log=forged)
            st, body = source.call("GetKmsKey", c, k)
            outcomes[name] = "refused" if st == 400 and b"bad_event_log" in body else \
                f"HTTP {st}: {'ROOT KEYS RELEASED' if st == 200 else body[:120]!r}"
        assert set(outcomes.values()) == {"refused"}, outcomes
        assert "ROOT KEYS RELEASED" not in source.log()

        # A TD that booted as the pinned KMS app is served; one that booted as another is not.
        sim.newest_boot(kms_app, kms_hash)
        cert, key = sim.ra_cert(tmp_path / "kms", source.dir)
        st, body = source.call("GetKmsKey", cert, key)
        assert st == 200 and "keys" in json.loads(body), body[:300]
        sim.newest_boot(a_hash[:20], a_hash)
        cert, key = sim.ra_cert(tmp_path / "other", source.dir)
        assert source.refused("GetKmsKey", cert, key) == "app_not_allowed"
    finally:
        source.stop()


def test_seed_logs_need_the_switch(tmp_path, kms_bin, tdxctl_path):
    """Seed-era logs (names not bound to digests) are off unless configured; `--dev` turns them
    on, a production config leaves them off."""
    sim = Sim(tmp_path / "sim")
    strict = Kms(tmp_path, name="strict", sim=sim.dir,
                 config="[core.quote]\nallow_seed_event_log = false\n")
    try:
        cert, key, _, _ = sim.cvm(tmp_path / "certs", strict.dir)
        assert strict.refused("GetAppKey", cert, key) == "seed_event_log_not_allowed"
    finally:
        strict.stop()
    dev = Kms(tmp_path, name="dev", sim=sim.dir)
    try:
        cert, key, _, _ = sim.cvm(tmp_path / "certs2", dev.dir)
        dev.get_app_key(cert, key)
    finally:
        dev.stop()
    from test_kms_common import KMS
    conf = tmp_path / "prod.toml"
    conf.write_text("")
    p = subprocess.run([str(KMS), "-c", str(conf), "--dump-config"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60, env=_clean_env())
    assert b"allow_seed_event_log = false" in p.stdout, p.stdout + p.stderr

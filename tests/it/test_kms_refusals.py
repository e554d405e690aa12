"""Every way a caller can fail to get keys from the KMS: each is refused with its reason code,
the measured values are logged, and nothing is written (the KMS directory is unchanged)."""
import json
import re
import time

import pytest

from test_kms_common import (Kms, Sim, craft_cert, dir_state, kms_bin,  # noqa: F401
                             load_key, ra_evidence)

H48 = "00" * 48


@pytest.fixture
def sim(tmp_path, tdxctl_path):
    return Sim(tmp_path / "sim")


@pytest.fixture
def kms(tmp_path, sim, kms_bin):
    k = Kms(tmp_path, sim=sim.dir)
    yield k
    k.stop()


def test_bad_certificates(kms, sim, tmp_path):
    certs = tmp_path / "certs"
    good_cert, good_key, _, _ = sim.cvm(certs, kms.dir)
    before = dir_state(kms.dir)

    # No client certificate at all.
    assert kms.refused("GetAppKey") == "no_client_cert"
    # A certificate from the temporary CA without a quote.
    c, k = craft_cert(certs, "plain", kms.dir)
    assert kms.refused("GetAppKey", c, k) == "no_attestation"
    # Someone else's quote and event log in a certificate for another key.
    quote, log = ra_evidence(good_cert)
    c, k = craft_cert(certs, "unbound", kms.dir, quote=quote, event_log=log)
    assert kms.refused("GetAppKey", c, k) == "key_not_bound"
    # The right key and quote, but a tampered event log (another app id claimed).
    text = log.decode()
    m = re.search(r'"associated_data":"app-id"', text)
    assert m
    line_start = text.rfind("\n", 0, m.start()) + 1
    dpos = text.index('"digest":"', line_start) + len('"digest":"')
    tampered = text[:dpos] + ("1" if text[dpos] == "0" else "0") + text[dpos + 1:]
    c, k = craft_cert(certs, "tampered", kms.dir, key=load_key(good_key), quote=quote,
                      event_log=tampered.encode())
    assert kms.refused("GetAppKey", c, k) == "event_log_mismatch"
    # A garbled event log.
    c, k = craft_cert(certs, "garbled", kms.dir, key=load_key(good_key), quote=quote,
                      event_log=b"{not json\n")
    assert kms.refused("GetAppKey", c, k) == "bad_event_log"
    # A quote whose body was changed after signing (MRTD byte): DCAP fails.
    bad_quote = bytearray(quote)
    bad_quote[48 + 136] ^= 1
    c, k = craft_cert(certs, "badquote", kms.dir, key=load_key(good_key), quote=bytes(bad_quote),
                      event_log=log)
    assert kms.refused("GetAppKey", c, k) == "quote_invalid"
    # The app-id event on the wrong IMR: it never counts for app identity.
    c, k, _, _ = sim.cvm(certs, kms.dir, app_imr=2)
    assert kms.refused("GetAppKey", c, k) == "missing_event"

    # The good certificate still works, and nothing was written by the refusals.
    kms.get_app_key(good_cert, good_key)
    assert dir_state(kms.dir) == before
    log_text = kms.log()
    assert "refused: key_not_bound" in log_text
    assert "refused: event_log_mismatch" in log_text and "mrtd=" in log_text


def test_policy_refusals(tmp_path, sim, kms_bin):
    certs = tmp_path / "certs"
    cases = [
        ("measurement", f'[core.allowed_mr]\nmrtd = ["{H48}"]\n', "measurement_not_allowed"),
        ("rtmr1", f'[core.allowed_mr]\nrtmr1 = ["{H48}"]\n', "measurement_not_allowed"),
        ("tcb", '[core.allowed_mr]\ntcb_statuses = ["SWHardeningNeeded"]\n',
         "tcb_status_not_allowed"),
        ("nosim", "[core.allowed_mr]\nallow_simulator = false\n", "simulator_not_allowed"),
        ("compose", f'[core.allowed_mr]\ncompose_hashes = ["{"11" * 32}"]\n', "app_not_allowed"),
        ("appid", f'[core.allowed_mr]\napp_ids = ["{"22" * 20}"]\n', "app_not_allowed"),
    ]
    # One KMS directory (same root keys) restarted with each extra policy.
    base = Kms(tmp_path, name="kms", sim=sim.dir)
    cert, key, app_hex, _ = sim.cvm(certs, base.dir)
    ok = base.get_app_key(cert, key)
    base.stop()
    for name, extra, code in cases:
        k = Kms(tmp_path, name="kms", sim=sim.dir, config=extra)
        try:
            before = dir_state(k.dir)
            assert k.refused("GetAppKey", cert, key) == code, name
            assert dir_state(k.dir) == before, name
            assert f"refused: {code}" in k.log() and "rtmr0=" in k.log(), name
        finally:
            k.stop()
    # The lists that name this app let it through, with the same keys as before.
    allow = (f'[core.allowed_mr]\napp_ids = ["{app_hex}"]\n'
             f'compose_hashes = ["{"11" * 32}"]\n')
    k = Kms(tmp_path, name="kms", sim=sim.dir, config=allow)
    try:
        assert k.get_app_key(cert, key)["k256_key"] == ok["k256_key"]
    finally:
        k.stop()


def test_untrusted_simulator(tmp_path, sim, kms_bin):
    """A quote from another simulated platform (another root): refused."""
    other = Sim(tmp_path / "other-sim")
    k = Kms(tmp_path, sim=sim.dir)
    try:
        cert, key, _, _ = other.cvm(tmp_path / "certs", k.dir)
        assert k.refused("GetAppKey", cert, key) == "simulator_not_allowed"
        # The refusal names what this verifier trusts instead (shared code: no daemon's name).
        _, body = k.call("GetAppKey", cert, key)
        err = json.loads(body)["error"]
        assert "which this verifier does not trust" in err, err
        assert f"the simulator at {sim.dir.resolve()} " in err, err
    finally:
        k.stop()


def test_expired_collateral(tmp_path, kms_bin, tdxctl_path):
    now = int(time.time())
    old = Sim(tmp_path / "old-sim", "--not-before", now - 7200, "--not-after", now - 60)
    k = Kms(tmp_path, sim=old.dir)
    try:
        before = dir_state(k.dir)
        cert, key, _, _ = old.cvm(tmp_path / "certs", k.dir)
        assert k.refused("GetAppKey", cert, key) == "collateral_expired"
        assert dir_state(k.dir) == before
    finally:
        k.stop()


def test_onboarding_disabled(tmp_path, sim, kms_bin):
    k = Kms(tmp_path, sim=sim.dir, config="[core.onboard]\nenabled = false\n")
    try:
        cert, key, _, _ = sim.cvm(tmp_path / "certs", k.dir)
        assert k.refused("GetKmsKey", cert, key, data="{}") == "onboarding_disabled"
    finally:
        k.stop()


def test_app_cannot_take_root_keys(tmp_path, sim, kms_bin):
    """A CVM whose measurements pass the app policy but not the onboarding policy gets no root
    keys."""
    k = Kms(tmp_path, sim=sim.dir, config=f'[core.onboard.allowed_mr]\nmrtd = ["{H48}"]\n')
    try:
        cert, key, _, _ = sim.cvm(tmp_path / "certs", k.dir)
        k.get_app_key(cert, key)
        assert k.refused("GetKmsKey", cert, key, data="{}") == "measurement_not_allowed"
        assert "ROOT KEYS RELEASED" not in k.log()
    finally:
        k.stop()

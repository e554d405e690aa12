"""Replication: `kms onboard --source URL` gets the root keys from a running KMS over mutually
attested RA-TLS and then serves identical keys; either side refusing the other leaves the
replica without keys."""
import json
import os
import stat

import pytest

from test_kms_common import Kms, Sim, craft_cert, key_view, kms_bin  # noqa: F401

H48 = "00" * 48
KEY_FILES = ("root-ca.key", "root-ca.cert", "root-k256.key", "tmp-ca.key", "tmp-ca.cert")


@pytest.fixture
def sim(tmp_path, tdxctl_path):
    return Sim(tmp_path / "sim")


@pytest.fixture
def source(tmp_path, sim, kms_bin):
    k = Kms(tmp_path, name="source", sim=sim.dir)
    yield k
    k.stop()


def test_replica_serves_identical_keys(tmp_path, sim, source):
    replica = Kms(tmp_path, name="replica", sim=sim.dir, source=source.url)
    try:
        for n in KEY_FILES:
            assert (replica.dir / n).read_bytes() == (source.dir / n).read_bytes(), n
        for n in ("root-ca.key", "root-k256.key", "tmp-ca.key"):
            assert stat.S_IMODE(os.stat(replica.dir / n).st_mode) == 0o600, n
        assert "ROOT KEYS RELEASED" in source.log()
        assert "the source KMS passed attestation" in replica.log()

        certs = tmp_path / "certs"
        cert, key, _, _ = sim.cvm(certs, source.dir, compose=b"replicated app\n")
        a = source.get_app_key(cert, key)
        b = replica.get_app_key(cert, key)
        assert key_view(a) == key_view(b)
        # Both publish the same root and env keys.
        assert json.loads(source.call("GetMeta")[1])["k256_pubkey"] == \
            json.loads(replica.call("GetMeta")[1])["k256_pubkey"]
        q = "?app_id=" + "ab" * 20
        assert json.loads(source.call("GetAppEnvEncryptPubKey", query=q)[1])["public_key"] == \
            json.loads(replica.call("GetAppEnvEncryptPubKey", query=q)[1])["public_key"]
        # After a restart (plain `kms --dev`, no onboarding) the replica still serves them.
        replica.source = None
        replica.restart()
        assert key_view(replica.get_app_key(cert, key)) == key_view(a)
    finally:
        replica.stop()


def onboard_fails(tmp_path, sim, source_url, config=None, name="replica"):
    r = Kms(tmp_path, name=name, sim=sim.dir, source=source_url, config=config,
            expect_start=False)
    rc = r.wait(timeout=60)
    assert rc != 0, "onboarding should have failed"
    for n in KEY_FILES:
        assert not (r.dir / n).exists(), f"{n} written despite the refusal"
    return r.log()


def test_replica_refuses_source(tmp_path, sim, source):
    log = onboard_fails(tmp_path, sim, source.url,
                        config=f'[core.onboard.allowed_mr]\nmrtd = ["{H48}"]\n')
    assert "measurement_not_allowed" in log and "failed attestation" in log
    assert "ROOT KEYS RELEASED" not in source.log()


def test_source_refuses_replica(tmp_path, sim, kms_bin):
    src = Kms(tmp_path, name="strict", sim=sim.dir,
              config=f'[core.onboard.allowed_mr]\nrtmr2 = ["{H48}"]\n')
    try:
        log = onboard_fails(tmp_path, sim, src.url)
        assert "refused" in log and "measurement_not_allowed" in log
        assert "GetKmsKey" in src.log() and "refused: measurement_not_allowed" in src.log()
    finally:
        src.stop()


def test_source_without_attestation(tmp_path, sim, source):
    """A source whose TLS certificate is not an RA-TLS certificate is not trusted."""
    plain_cert, plain_key = craft_cert(tmp_path / "plain", "server", source.dir)
    src = Kms(tmp_path, name="plain-src", sim=sim.dir,
              config=f'[tls]\nra_tls = false\nkey = "{plain_key}"\ncerts = "{plain_cert}"\n')
    try:
        log = onboard_fails(tmp_path, sim, src.url)
        assert "no_attestation" in log
    finally:
        src.stop()


def test_onboard_refuses_existing_keys(tmp_path, sim, source):
    other = Kms(tmp_path, name="other", sim=sim.dir)
    other.stop()
    before = (other.dir / "root-ca.key").read_bytes()
    log = ""
    r = Kms(tmp_path, name="other", sim=sim.dir, source=source.url, expect_start=False)
    assert r.wait(timeout=60) != 0
    log = r.log()
    assert "already exist" in log
    assert (other.dir / "root-ca.key").read_bytes() == before


def test_onboard_exit_and_bad_url(tmp_path, sim, source):
    r = Kms(tmp_path, name="cold", sim=sim.dir, source=source.url, args=["--exit"],
            expect_start=False)
    assert r.wait(timeout=60) == 0, r.log()
    assert (r.dir / "root-k256.key").read_bytes() == (source.dir / "root-k256.key").read_bytes()
    log = onboard_fails(tmp_path, sim, source.url.replace("https://", "http://"), name="badurl")
    assert "https://" in log

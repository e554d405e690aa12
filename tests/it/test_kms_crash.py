"""`kms --dev DIR` started on what a kill (SIGKILL) while creating its root keys leaves behind
(the issue: a kill left some key files and kms refused to start forever). Creation stages the
five files in DIR/.kms-root-keys.new (0700), writes the marker `complete` there (the commit),
then links them into place. Each state a kill can leave is laid out here by hand, from the keys
of a reference KMS; the next start must serve, with keys made afresh (killed before the commit)
or exactly the staged keys (after it), never a mix. The kills themselves, at every step, are in
tests/unit/test_kms_config.c (test_store_crash) and test_fileset.c."""
import json
import os
import stat

import pytest

from test_kms_common import Kms, Sim, kms_bin  # noqa: F401

FILES = ("root-ca.key", "root-k256.key", "tmp-ca.key", "root-ca.cert", "tmp-ca.cert")
STAGING = ".kms-root-keys.new"
STEPS = 11  # 5 staged files, the commit marker, 5 links


@pytest.fixture(scope="module")
def sim(tmp_path_factory, tdxctl_path):
    return Sim(tmp_path_factory.mktemp("sim") / "sim")


@pytest.fixture(scope="module")
def ref_keys(tmp_path_factory, sim, kms_bin):
    """The five key files of a KMS that made them without a crash."""
    tmp = tmp_path_factory.mktemp("ref")
    k = Kms(tmp, sim=sim.dir)
    k.stop()
    return {n: (k.dir / n).read_bytes() for n in FILES}


def mode_of(name):
    return 0o644 if name.endswith(".cert") else 0o600


def killed_after(d, step, keys, torn=False):
    """DIR as a kill after creation step `step` leaves it (torn: plus a half-written next file)."""
    staging = d / STAGING
    staging.mkdir(parents=True, mode=0o700)
    os.chmod(staging, 0o700)
    for i, n in enumerate(FILES[:min(step, 5)]):
        p = staging / f"file-{i}"
        p.write_bytes(keys[n])
        os.chmod(p, mode_of(n))
    if torn and step < 5:
        p = staging / f"file-{step}"
        p.write_bytes(keys[FILES[step]][:17])
        os.chmod(p, 0o600)
    if step >= 6:
        (staging / "complete").write_bytes(b"")
    for i, n in enumerate(FILES[:max(0, step - 6)]):
        os.link(staging / f"file-{i}", d / n)


def key_files(d):
    return {n: (d / n).read_bytes() for n in FILES if (d / n).exists()}


def serves(k):
    st, body = k.call("GetMeta")
    assert st == 200, body
    assert json.loads(body)["ca_cert"] == (k.dir / "root-ca.cert").read_text()
    st, body = k.call("GetTempCaCert")
    assert st == 200 and json.loads(body)["temp_ca_key"] == (k.dir / "tmp-ca.key").read_text()


@pytest.mark.parametrize("step", range(1, STEPS + 1))
def test_start_after_kill(tmp_path, sim, ref_keys, kms_bin, step):
    d = tmp_path / "kms"
    killed_after(d, step, ref_keys, torn=step % 2 == 1)
    k = Kms(tmp_path, sim=sim.dir)
    try:
        serves(k)
        after = key_files(d)
        assert set(after) == set(FILES)
        assert not (d / STAGING).exists()
        for n in FILES:
            assert stat.S_IMODE((d / n).stat().st_mode) == mode_of(n), n
        if step >= 6:
            # committed: the staged keys were completed, not replaced
            assert after == ref_keys
            assert "finished creating the root key files" in k.log()
        else:
            assert all(after[n] != ref_keys[n] for n in FILES if n.endswith(".key"))
            assert f"removed {d / STAGING}" in k.log()
        k.restart()  # and it stays startable, with the same keys
        serves(k)
        assert key_files(d) == after
    finally:
        k.stop()


def test_foreign_file_in_the_way(tmp_path, sim, ref_keys, kms_bin):
    """A committed set whose target was replaced meanwhile: kms refuses, replaces nothing."""
    d = tmp_path / "kms"
    killed_after(d, 7, ref_keys)
    (d / "tmp-ca.cert").write_text("not ours\n")
    k = Kms(tmp_path, sim=sim.dir, expect_start=False)
    assert k.wait(timeout=60) == 1
    assert "cannot be completed" in k.log()
    assert (d / "tmp-ca.cert").read_text() == "not ours\n"
    assert (d / STAGING).is_dir()

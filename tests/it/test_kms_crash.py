"""`kms --dev DIR` killed (SIGKILL) while it creates its root keys, at every step of the
creation (DSTACK_KMS_TEST_CRASH_STEP): the next start must succeed and serve, with either keys
made afresh (crash before the commit) or exactly the keys already committed (crash after it),
and never a mix (the issue: a kill left some key files and kms refused to start forever)."""
import json
import os
import signal
import stat

import pytest

from test_kms_common import Kms, Sim, kms_bin  # noqa: F401

FILES = ("root-ca.key", "root-k256.key", "tmp-ca.key", "root-ca.cert", "tmp-ca.cert")
STAGING = ".kms-root-keys.new"
STEPS = 11  # 5 staged files, the commit marker, 5 links


class CrashingKms(Kms):
    def __init__(self, *a, crash_step=None, **kw):
        self.crash_step = crash_step
        super().__init__(*a, **kw)

    def env(self):
        e = super().env()
        if self.crash_step is not None:
            e["DSTACK_KMS_TEST_CRASH_STEP"] = str(self.crash_step)
        return e


def crash(tmp_path, sim, step):
    """kms --dev killed by the test hook at step; returns its directory."""
    k = CrashingKms(tmp_path, sim=sim.dir, crash_step=step, expect_start=False)
    try:
        rc = k.proc.wait(timeout=20)
    except Exception:
        k.stop(check=False)
        pytest.fail(f"kms did not stop at creation step {step}: {k.log()[-2000:]}")
    k.stderr.close()
    assert rc == -signal.SIGKILL, k.log()
    return k.dir


@pytest.fixture(scope="module")
def sim(tmp_path_factory, tdxctl_path):
    return Sim(tmp_path_factory.mktemp("sim") / "sim")


def key_files(d):
    return {n: (d / n).read_bytes() for n in FILES if (d / n).exists()}


def serves(k):
    st, body = k.call("GetMeta")
    assert st == 200, body
    meta = json.loads(body)
    assert meta["ca_cert"] == (k.dir / "root-ca.cert").read_text()
    st, body = k.call("GetTempCaCert")
    assert st == 200 and json.loads(body)["temp_ca_key"] == (k.dir / "tmp-ca.key").read_text()


@pytest.mark.parametrize("step", range(1, STEPS + 1))
def test_kill_while_creating_root_keys(tmp_path, sim, kms_bin, step):
    d = crash(tmp_path, sim, step)
    staging = d / STAGING
    before = key_files(d)
    assert staging.is_dir()
    assert stat.S_IMODE(staging.stat().st_mode) == 0o700
    staged = {}
    for i, n in enumerate(FILES):
        p = staging / f"file-{i}"
        if p.exists():
            assert stat.S_IMODE(p.stat().st_mode) == (0o644 if n.endswith(".cert") else 0o600)
            staged[n] = p.read_bytes()
    assert len(staged) == min(step, 5)
    # Before the commit (steps 1..5) no key file is in place; after it, the linked ones are.
    if step <= 6:
        assert before == {}
    else:
        assert list(before) == list(FILES[:step - 6])

    k2 = Kms(tmp_path, sim=sim.dir)
    try:
        serves(k2)
        after = key_files(d)
        assert set(after) == set(FILES)
        assert not staging.exists()
        for n in ("root-ca.key", "root-k256.key", "tmp-ca.key"):
            assert stat.S_IMODE((d / n).stat().st_mode) == 0o600, n
        for n in ("root-ca.cert", "tmp-ca.cert"):
            assert stat.S_IMODE((d / n).stat().st_mode) == 0o644, n
        if step >= 6:
            # committed: the staged keys were completed, not replaced
            assert after == staged
            assert "finished creating the root key files" in k2.log()
        else:
            assert f"removed {staging}" in k2.log()
        k2.restart()  # and it stays startable
        serves(k2)
    finally:
        k2.stop()


def test_kill_while_completing(tmp_path, sim, kms_bin):
    """A second crash, while the next start completes the committed keys."""
    d = crash(tmp_path, sim, 8)
    staged = {n: (d / STAGING / f"file-{i}").read_bytes() for i, n in enumerate(FILES)}
    crash(tmp_path, sim, 3)  # the completion: after its third link
    assert list(key_files(d)) == list(FILES[:3])
    k2 = Kms(tmp_path, sim=sim.dir)
    try:
        serves(k2)
        assert key_files(d) == staged
    finally:
        k2.stop()


def test_foreign_file_in_the_way(tmp_path, sim, kms_bin):
    """A committed set whose target was replaced meanwhile: kms refuses, replaces nothing."""
    d = crash(tmp_path, sim, 7)
    (d / "tmp-ca.cert").write_text("not ours\n")
    k2 = Kms(tmp_path, sim=sim.dir, expect_start=False)
    assert k2.wait(timeout=60) == 1
    assert "cannot be completed" in k2.log()
    assert (d / "tmp-ca.cert").read_text() == "not ours\n"
    assert (d / STAGING).is_dir()

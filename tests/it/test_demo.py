"""scripts/attest-demo.sh (the attestation path without a VM) against the binaries under test."""
import os
import subprocess

from conftest import BUILD, REPO


def test_demo(tdxctl_path):
    env = dict(os.environ, DSTACK_BUILD=str(BUILD))
    for k in ("DSTACK_TEE", "DSTACK_SIM_DIR"):
        env.pop(k, None)
    p = subprocess.run([str(REPO / "scripts" / "attest-demo.sh")], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert out.rstrip().splitlines()[-1] == "RTMR3 from quote == RTMR3 from event log replay: yes"
    assert "report_data_binds_key  true" in out
    assert len(out.splitlines()) < 60

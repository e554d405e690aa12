"""scripts/attest-demo.sh (the attestation path without a VM) against the binaries under test."""
import os
import subprocess

import pytest

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


# ---- make demo's driver (scripts/demo/demo.py): stopping leaves nothing behind ----------------

def _demo_leftovers(pid, work):
    """What a demo run of pid with work folder `work` could leave: its namespace, wireguard-go's
    control socket, processes naming the work folder."""
    left = []
    if os.path.exists(f"/run/netns/dstack-demo-{pid}"):
        left.append(f"namespace dstack-demo-{pid}")
    sock = f"/var/run/wireguard/dsdemo{pid % 100000}.sock"
    if os.path.exists(sock):
        left.append(sock)
    left += [f"pid {p}" for p in _pids_naming(work)]
    return left


def _pids_naming(work, also=b""):
    """Processes whose command line names the folder `work` (and holds `also`)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if str(work).encode() in cmd and also in cmd:
                out.append(int(entry))
    return out


def _run_until(p, markers, then, timeout=180):
    """Reads the demo p's output until one of markers shows (bounded), calls then(), and reads
    the rest until it exits; (all output as text, then()'s value). p is killed if still there."""
    import select
    import time
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while not any(m in out for m in markers):
            assert time.monotonic() < deadline and p.poll() is None, out.decode()
            r, _, _ = select.select([p.stdout], [], [], 1)
            if r:
                out += os.read(p.stdout.fileno(), 65536)
        v = then()
        rest, _ = p.communicate(timeout=120)
        out += rest
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return out.decode(), v


def _demo_argv(image, apps, work=None):
    return ["/usr/bin/python3", str(REPO / "scripts" / "demo" / "demo.py"), "--build", str(BUILD),
            "--image", str(image), "--apps", str(apps)] + (["--work", str(work)] if work else [])


def test_demo_failure_is_reported_and_cleaned_up(tmp_path):
    """A step that fails (here: no guest image) ends the demo with the reason and exit 1, with
    the namespace and every daemon started so far gone."""
    work = tmp_path / "work"
    p = subprocess.Popen(_demo_argv(tmp_path / "no-image", tmp_path / "no-apps", work),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = p.communicate(timeout=120)
    out = out.decode()
    assert p.returncode == 1, out
    assert "demo: FAILED:" in out and "measure" in out, out
    assert _demo_leftovers(p.pid, work) == []


@pytest.fixture(scope="module")
def demo_images(tmp_path_factory):
    from guest_registry import build_app_images
    from guest_stack import build_guest_image
    return (build_guest_image(tmp_path_factory.mktemp("images")),
            build_app_images(tmp_path_factory.mktemp("apps")))


def test_demo_failure_after_daemons_started_is_cleaned_up(tmp_path, demo_images):
    """A step that fails once kms and the registry run (here: no app image to push) stops them
    and deletes the namespace; the work folder is kept for its logs and named."""
    image, _ = demo_images
    work = tmp_path / "work"
    (tmp_path / "no-apps").mkdir()
    p = subprocess.Popen(_demo_argv(image, tmp_path / "no-apps", work),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = p.communicate(timeout=180)
    out = out.decode()
    assert p.returncode == 1, out
    assert "demo: FAILED: no image layout" in out, out
    assert (work / "logs" / "kms.log").exists() and (work / "logs" / "registry.log").exists()
    assert f"logs are in {work}/logs" in out
    assert _demo_leftovers(p.pid, work) == []


@pytest.mark.parametrize("sig", ["SIGINT", "SIGHUP"])
def test_demo_interrupted_while_booting_stops_everything(tmp_path, demo_images, sig):
    """Ctrl-C (SIGINT), or the terminal gone (SIGHUP), while the VM boots: the VM, every daemon
    and the namespace go, exit 130."""
    import signal
    image, apps = demo_images
    work = tmp_path / "tmp"  # the demo makes its own work folder in $TMPDIR
    work.mkdir()
    p = subprocess.Popen(_demo_argv(image, apps), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=dict(os.environ, TMPDIR=str(work)))

    def interrupt():  # once QEMU runs (the guest has started to report)
        qemu_seen = bool(_pids_naming(work, b"qemu-system"))
        p.send_signal(getattr(signal, sig))
        return qemu_seen
    text, qemu_seen = _run_until(p, (b" s  starting", b"tboot"), interrupt)
    assert qemu_seen, text
    assert p.returncode == 130, text
    assert "demo: interrupted" in text and "nothing left running" in text, text
    assert _demo_leftovers(p.pid, work) == []
    assert list(work.iterdir()) == []  # its work folder held the demo's KMS root keys


def test_demo_reports_a_daemon_that_dies(tmp_path, demo_images):
    """tproxy killed while the VM boots: the demo says which daemon stopped, stops the rest and
    exits 1 (the same check runs while it waits for Ctrl-C after `demo ready`)."""
    import signal
    image, apps = demo_images
    work = tmp_path / "work"
    p = subprocess.Popen(_demo_argv(image, apps, work), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)

    def kill_tproxy():
        tproxy = [pid for pid in _pids_naming(work, b"tproxy.toml")
                  if open(f"/proc/{pid}/comm").read().strip() == "tproxy"]
        assert len(tproxy) == 1, tproxy
        os.kill(tproxy[0], signal.SIGKILL)
    text, _ = _run_until(p, (b"== booting",), kill_tproxy)
    assert p.returncode == 1, text
    assert "demo: FAILED: tproxy (exit status -9) stopped" in text, text
    assert "nothing left running" in text, text
    assert _demo_leftovers(p.pid, work) == []

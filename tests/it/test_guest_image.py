"""The guest image (guest/build-image.sh): it builds or comes from the cache intact, its metadata
and measurements are right, it rebuilds bit for bit, it boots under QEMU as teepod starts it
(stage 1 verifies the root and execs tboot), a tampered rootfs stops the boot, and the demo
apps' images reach a local registry."""
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import BUILD, REPO, TDXCTL
from guest_image import make_config_disk
from guest_registry import GuestRegistry, build_app_images

BUILD_SCRIPT = REPO / "guest" / "build-image.sh"
REPRO_SCRIPT = REPO / "guest" / "check-reproducible.sh"
TBOOT_LINE = re.compile(rb"^tboot \d+\.\d+\.\d+", re.M)
QEMU = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"


def project_version():
    m = re.search(r"version\s*:\s*'([0-9.]+)'", (REPO / "meson.build").read_text())
    return m.group(1)


def build_image(outdir, *extra, env=None, timeout=1500):
    e = dict(os.environ)
    e.update(env or {})
    t0 = time.monotonic()
    p = subprocess.run(["bash", str(BUILD_SCRIPT), str(BUILD), str(outdir), *extra], env=e,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    took = time.monotonic() - t0
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, f"build-image.sh exited {p.returncode}: {err[-4000:]}"
    d = pathlib.Path(p.stdout.decode().strip().splitlines()[-1])
    return d, json.loads((d / "metadata.json").read_text()), took, err


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    d, meta, took, err = build_image(tmp_path_factory.mktemp("images"))
    print(f"image {d.name}: {took:.1f} s ({'cached' if 'cached:' in err else 'built'})")
    return d, meta


class HostChannel(threading.Thread):
    """teepod's side of the host channel: connects to QEMU's host.sock, records every line
    the guest sends and answers each request with an empty result."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = str(path)
        self.lines = []
        self.stop = False

    def run(self):
        s = None
        while not self.stop:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.path)
                break
            except OSError:
                s.close()
                s = None
                time.sleep(0.05)
        if not s:
            return
        s.settimeout(0.2)
        buf = b""
        while not self.stop:
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.lines.append(line)
                try:
                    rid = json.loads(line).get("id")
                    s.sendall(json.dumps({"id": rid, "result": {}}).encode() + b"\n")
                except (ValueError, AttributeError, OSError):
                    pass
        s.close()


def boot(image_dir, meta, vm_dir, rootfs=None, wait_for=TBOOT_LINE, timeout=120):
    """Boots the image as teepod does (TCG, -no-reboot, disks with their serials, host channel
    on a virtio port) until WAIT_FOR shows in the serial log or QEMU exits. Returns (seconds to
    the line or None, serial log, QEMU's exit code or None when it was still running, the host
    channel's lines)."""
    vm_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(vm_dir / "hda.img"), "1G"],
                   check=True, timeout=30)
    make_config_disk(vm_dir / "config.img", {"app-compose.json": b"{}"})
    serial = vm_dir / "serial.log"
    rootfs = rootfs or image_dir / meta["rootfs"]
    argv = ["timeout", str(timeout + 10), QEMU, "-accel", "tcg", "-cpu", "max",
            "-machine", "q35", "-smp", "2", "-m", "1024", "-nographic", "-nodefaults",
            "-no-user-config", "-no-reboot",
            "-chardev", f"file,id=serial0,path={serial}", "-serial", "chardev:serial0",
            "-kernel", str(image_dir / meta["kernel"]), "-initrd", str(image_dir / meta["initrd"]),
            "-drive", f"file={vm_dir / 'hda.img'},if=none,id=hd0,format=qcow2",
            "-device", "virtio-blk-pci,drive=hd0",
            "-drive", f"file={rootfs},if=none,id=rootfs,format=raw,readonly=on",
            "-device", "virtio-blk-pci,drive=rootfs,serial=dstack-rootfs",
            "-drive", f"file={vm_dir / 'config.img'},if=none,id=cfg,format=raw,readonly=on",
            "-device", "virtio-blk-pci,drive=cfg,serial=dstack-config",
            "-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
            "-device", "virtio-serial-pci,id=vser0",
            "-chardev", "socket,id=hostch,path=host.sock,server=on,wait=off",
            "-device", "virtserialport,bus=vser0.0,chardev=hostch,name=org.dstack.host.0",
            "-append", meta["cmdline"]]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=vm_dir, stdout=subprocess.DEVNULL,
                            stderr=open(vm_dir / "qemu.err", "wb"), stdin=subprocess.DEVNULL)
    host = HostChannel(vm_dir / "host.sock")
    host.start()
    seen = None
    rc = None
    try:
        while time.monotonic() - t0 < timeout:
            log = serial.read_bytes() if serial.exists() else b""
            if seen is None and wait_for.search(log):
                seen = time.monotonic() - t0
                break
            rc = proc.poll()
            if rc is not None:
                time.sleep(0.2)
                break
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        host.stop = True
        host.join(timeout=5)
    return seen, serial.read_bytes() if serial.exists() else b"", rc, host.lines


def test_files_match_sha256sum(image):
    d, meta = image
    names = sorted(l.split()[1] for l in (d / "sha256sum.txt").read_text().splitlines())
    assert names == sorted(["metadata.json", "vmlinuz", "initrd.img", "rootfs.img",
                            "measurements.json"])
    subprocess.run(["sha256sum", "--quiet", "--strict", "-c", "sha256sum.txt"], cwd=d,
                   check=True, timeout=120)
    assert d.name == f"dstack-{project_version()}"


def test_metadata(image):
    d, meta = image
    for k in ("kernel", "initrd", "rootfs", "cmdline", "rootfs_hash", "version", "shared_mode"):
        assert isinstance(meta[k], str) and meta[k], k
    assert meta["is_dev"] is False
    assert meta["version"] == project_version()
    assert meta["shared_mode"] == "disk"
    assert re.fullmatch(r"[0-9a-f]{64}", meta["rootfs_hash"])
    words = meta["cmdline"].split()
    assert f"dstack.rootfs_hash={meta['rootfs_hash']}" in words
    blocks = [int(w.split("=", 1)[1]) for w in words if w.startswith("dstack.rootfs_data_blocks=")]
    assert len(blocks) == 1 and blocks[0] * 4096 < (d / meta["rootfs"]).stat().st_size
    for w in ("console=ttyS0", "panic=-1", "apparmor=0"):
        assert w in words
    pk = meta["packages"]
    assert isinstance(pk, list) and all(isinstance(p, str) and len(p.split()) == 2 for p in pk)
    names = {p.split()[0] for p in pk}
    for n in ("podman", "crun", "netavark", "docker-compose", "cryptsetup-bin", "e2fsprogs",
              "wireguard-tools", "iproute2", "kmod", "ca-certificates", "libssl3",
              "libjansson4"):
        assert n in names, n
    assert any(n.startswith("linux-image-6.12") and n.endswith("-cloud-amd64") for n in names)
    assert "systemd-sysv" not in names and "openssh-server" not in names


def test_dev_image(image, tmp_path):
    d, meta = image
    dd, dmeta, took, err = build_image(tmp_path / "images", "--dev")
    assert dd.name == f"dstack-{project_version()}-dev"
    assert dmeta["is_dev"] is True
    names = {p.split()[0] for p in dmeta["packages"]}
    assert "busybox-static" in names and "busybox-static" not in {p.split()[0] for p in meta["packages"]}
    assert dmeta["rootfs_hash"] != meta["rootfs_hash"]
    subprocess.run(["sha256sum", "--quiet", "--strict", "-c", "sha256sum.txt"], cwd=dd,
                   check=True, timeout=120)
    print(f"dev image: {took:.1f} s")


def test_measure_matches(image):
    d, meta = image
    p = subprocess.run([str(TDXCTL), "measure", str(d), "--vcpu", "1", "--memory", "1024M",
                        "--json"], stdout=subprocess.PIPE, check=True, timeout=300)
    assert json.loads(p.stdout) == json.loads((d / "measurements.json").read_text())


def test_boot_to_tboot(image, tmp_path):
    d, meta = image
    seen, log, rc, host = boot(d, meta, tmp_path / "vm")
    text = log.decode(errors="replace")
    assert seen is not None, f"no tboot line (QEMU rc {rc}):\n{text[-3000:]}"
    assert "tboot-init: root mounted (erofs, verified)" in text, text[-3000:]
    assert "tboot-init: error" not in text
    print(f"boot to the tboot line: {seen:.1f} s")


def test_tampered_rootfs_stops_boot(image, tmp_path):
    d, meta = image
    bad = tmp_path / "rootfs.img"
    shutil.copyfile(d / meta["rootfs"], bad)
    with open(bad, "r+b") as f:
        f.seek(1100)        # inside the first data block: the erofs superblock
        b = f.read(1)
        f.seek(1100)
        f.write(bytes([b[0] ^ 0x01]))
    seen, log, rc, host = boot(d, meta, tmp_path / "vm", rootfs=bad,
                               wait_for=re.compile(rb"^tboot \d", re.M), timeout=90)
    text = log.decode(errors="replace")
    assert seen is None, "the guest ran tboot from a tampered rootfs"
    assert rc is not None, "QEMU did not power off after the verity failure"
    assert re.search(r"tboot-init: error: rootfs verification failed", text), text[-3000:]
    notes = [json.loads(l) for l in host]
    errs = [n for n in notes if n.get("params", {}).get("event") == "boot.error"]
    assert errs and "verification failed" in errs[0]["params"]["payload"], host


def test_reproducible():
    if os.environ.get("DSTACK_SKIP_REPRO"):
        pytest.skip("DSTACK_SKIP_REPRO set")
    p = subprocess.run(["bash", str(REPRO_SCRIPT), str(BUILD)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=1800)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, err[-4000:]
    print("\n".join(l for l in err.splitlines() if "took" in l))


def test_registry_push_and_inspect(tmp_path):
    apps = build_app_images(tmp_path / "apps")
    with GuestRegistry(tmp_path / "registry") as reg:
        names = reg.push_apps(apps)
        assert "dstack-demo-web:latest" in names and "library/dstack-demo-sdk:latest" in names
        web = reg.inspect("dstack-demo-web:latest")
        sdk = reg.inspect("library/dstack-demo-sdk:latest")
    assert web["Architecture"] == "amd64" and len(web["Layers"]) == 1
    idx = json.loads((apps / "dstack-demo-web" / "index.json").read_text())
    assert web["Digest"] == idx["manifests"][0]["digest"]
    assert sdk["Env"] and any(e.startswith("NODE_PATH=") for e in sdk["Env"])

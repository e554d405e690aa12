"""The test guest teepod's tests boot (tests/guest): its build is cached and reproducible, and
under QEMU (TCG) it keeps the guest side of docs/teepod.md: it reads the config disk labelled
DSTACKSHR, reports boot progress and instance info over the host channel (virtio-serial port
org.dstack.host.0, one JSON object per line), serves a page through the forwarded port, and
powers off on the ACPI power button."""
import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import free_port
from guest_image import BUILD_SCRIPT, build_test_guest, make_config_disk

QEMU = shutil.which("qemu-system-x86_64")
PROGRESS = ["init", "config disk mounted", "network up", "app started", "done"]
LINE_MAX = 65536

pytestmark = pytest.mark.skipif(
    not QEMU or not shutil.which("mkfs.vfat") or not shutil.which("mcopy"),
    reason="qemu-system-x86, dosfstools or mtools missing (scripts/deps.sh installs them)")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    d, meta, took, _ = build_test_guest(tmp_path_factory.mktemp("image"))
    print(f"\ntest guest image: {d} in {took:.1f} s")
    return d, meta


class Guest:
    """One QEMU run of the image: the host channel is answered by a thread that records every
    request with its arrival time; QMP on demand; QEMU killed by stop()."""

    def __init__(self, image, workdir, config_img=None, host_channel=True, attend=True,
                 spaced=False):
        self.image, self.meta = image
        self.attend = attend  # whether anyone connects to the channel's socket
        # replies as teepod writes them, or with JSON's optional whitespace
        self.separators = (", ", ": ") if spaced else (",", ":")
        self.dir = workdir
        self.config_img = config_img
        self.host_channel = host_channel
        self.port = free_port()
        self.serial = workdir / "serial.log"
        self.requests = []          # (monotonic time, parsed object)
        self.bad_lines = []
        self.cond = threading.Condition()
        self.proc = None
        self.sock = None
        self.thread = None
        self.t0 = None

    def argv(self):
        d = self.dir
        a = ["timeout", "120", QEMU, "-accel", "tcg", "-m", "512", "-smp", "1",
             "-nographic", "-nodefaults", "-no-user-config",
             "-serial", f"file:{self.serial}",
             "-kernel", str(self.image / self.meta["kernel"]),
             "-initrd", str(self.image / self.meta["initrd"]),
             "-append", self.meta["cmdline"]]
        if self.config_img:
            a += ["-drive", f"file={self.config_img},if=none,id=cfg,format=raw,readonly=on",
                  "-device", "virtio-blk-pci,drive=cfg,serial=dstack-config"]
        if self.host_channel:
            a += ["-device", "virtio-serial-pci",
                  "-chardev", f"socket,id=hostch,path={d}/host.sock,server=on,wait=off",
                  "-device", "virtserialport,chardev=hostch,name=org.dstack.host.0"]
        a += ["-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.port}-:8080",
              "-device", "virtio-net-pci,netdev=n0",
              "-qmp", f"unix:{d}/qmp.sock,server=on,wait=off"]
        return a

    def start(self):
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=open(self.dir / "qemu.out", "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        if self.host_channel and self.attend:
            self.sock = self._connect(self.dir / "host.sock")
            self.thread = threading.Thread(target=self._serve, daemon=True)
            self.thread.start()

    def _connect(self, path, seconds=20):
        deadline = time.monotonic() + seconds
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"QEMU exited {self.proc.returncode}: {self.qemu_out()}")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(path))
                return s
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _serve(self):
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self._answer(line)
            if len(buf) >= LINE_MAX:
                with self.cond:
                    self.bad_lines.append(buf[:200])
                    self.cond.notify_all()
                buf = b""

    def _answer(self, line):
        now = time.monotonic()
        try:
            req = json.loads(line)
            ok = isinstance(req, dict)
        except ValueError:
            ok = False
        if not ok:
            with self.cond:
                self.bad_lines.append(line[:200])
                self.cond.notify_all()
            reply = {"id": None, "error": {"message": "not a JSON object"}}
        else:
            reply = {"id": req.get("id"), "result": {}}
            with self.cond:
                self.requests.append((now, req))
                self.cond.notify_all()
        try:
            self.sock.sendall(json.dumps(reply, separators=self.separators).encode() + b"\n")
        except OSError:
            pass

    def events(self, name=None):
        with self.cond:
            reqs = list(self.requests)
        out = []
        for t, r in reqs:
            p = r.get("params") or {}
            if r.get("method") == "Notify" and (name is None or p.get("event") == name):
                out.append((t, p.get("event"), p.get("payload")))
        return out

    def progress(self):
        return [p for _, _, p in self.events("boot.progress")]

    def wait_event(self, event, payload=None, seconds=100):
        deadline = time.monotonic() + seconds
        with self.cond:
            while True:
                for t, r in self.requests:
                    p = r.get("params") or {}
                    if p.get("event") == event and (payload is None or p.get("payload") == payload):
                        return t
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(
                        f"no {event} {payload or ''} within {seconds} s; got {self.events()}; "
                        f"serial:\n{self.serial_text()[-3000:]}")
                self.cond.wait(min(left, 0.5))

    def wait_serial(self, needle, seconds=100):
        deadline = time.monotonic() + seconds
        while needle not in self.serial_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"{needle!r} not on the serial console within {seconds} s:\n"
                                     f"{self.serial_text()[-3000:]}")
            time.sleep(0.2)
        return time.monotonic()

    def serial_text(self):
        try:
            return self.serial.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def qemu_out(self):
        try:
            return (self.dir / "qemu.out").read_text(errors="replace")[-2000:]
        except FileNotFoundError:
            return ""

    def qmp(self, command, seconds=10):
        """Runs one QMP command on a fresh connection; returns its reply."""
        s = self._connect(self.dir / "qmp.sock", seconds)
        s.settimeout(seconds)
        f = s.makefile("rwb")
        try:
            greeting = json.loads(f.readline(LINE_MAX))
            assert "QMP" in greeting, greeting
            for cmd in ({"execute": "qmp_capabilities"}, {"execute": command}):
                f.write(json.dumps(cmd).encode() + b"\n")
                f.flush()
                for _ in range(50):  # events may come before the reply
                    msg = json.loads(f.readline(LINE_MAX))
                    if "return" in msg or "error" in msg:
                        break
                else:
                    raise AssertionError(f"no reply to {cmd}")
                assert "return" in msg, msg
            return msg
        finally:
            f.close()
            s.close()

    def http_get(self, seconds=30):
        deadline = time.monotonic() + seconds
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5) as r:
                    return r.status, r.read().decode(errors="replace")
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.sock:
            self.sock.close()
        if self.thread:
            self.thread.join(timeout=5)


@pytest.fixture
def guest_factory(image, tmp_path):
    guests = []

    def make(name="vm", **kw):
        d = tmp_path / name
        d.mkdir()
        g = Guest(image, d, **kw)
        guests.append(g)
        return g

    yield make
    for g in guests:
        g.stop()


def test_metadata(image):
    d, meta = image
    assert meta["kernel"] == "vmlinuz" and meta["initrd"] == "initrd.img"
    assert meta["shared_mode"] == "disk" and meta["is_dev"] is True
    assert meta["cmdline"].startswith("console=ttyS0")
    assert d.name == f"dstack-test-{meta['version']}"
    for key in ("kernel", "initrd"):
        assert (d / meta[key]).is_file() and (d / meta[key]).stat().st_size > 0
    with open(d / "initrd.img", "rb") as f:
        assert f.read(2) == b"\x1f\x8b"


def test_boot_report_serve_poweroff(guest_factory, tmp_path, record_property):
    compose = json.dumps({"manifest_version": 2, "name": "it-guest",
                          "docker_compose_file": "services: {}\n"}).encode()
    want_sha = hashlib.sha256(compose).hexdigest()
    instance_id = "0123456789abcdef0123456789abcdef01234567"
    cfg = tmp_path / "config.img"
    make_config_disk(cfg, {
        "app-compose.json": compose,
        ".instance_info": json.dumps({"instance_id": instance_id}).encode()})

    g = guest_factory(config_img=cfg)
    g.start()
    t_done = g.wait_event("boot.progress", "done")
    first = g.events("boot.progress")[0][0]
    print(f"\ntest guest boot (TCG): first progress {first - g.t0:.1f} s, "
          f"done {t_done - g.t0:.1f} s after QEMU start")
    record_property("boot_first_progress_s", round(first - g.t0, 2))
    record_property("boot_done_s", round(t_done - g.t0, 2))

    assert g.progress() == PROGRESS
    assert not g.bad_lines
    ids = [r.get("id") for _, r in g.requests]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids), ids
    assert not g.events("boot.error")

    infos = g.events("instance.info")
    assert len(infos) == 1
    info = json.loads(infos[0][2])
    assert info["compose_sha256"] == want_sha
    assert info["instance_id"] == instance_id
    serial = g.serial_text()
    assert f"test-guest: compose sha256 {want_sha}" in serial
    assert "test-guest: init" in serial
    assert "warning" not in serial, serial

    status, page = g.http_get()
    assert status == 200
    assert "dstack-test-guest" in page and want_sha in page

    assert g.proc.poll() is None
    t_down = time.monotonic()
    g.qmp("system_powerdown")
    try:
        rc = g.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"QEMU still running 30 s after system_powerdown:\n"
                             f"{g.serial_text()[-3000:]}")
    print(f"test guest poweroff: {time.monotonic() - t_down:.1f} s after system_powerdown")
    assert rc == 0, (rc, g.qemu_out())
    assert [p for _, _, p in g.events("shutdown.progress")] == ["stopping"]


def test_random_instance_id(guest_factory, tmp_path):
    """Without .instance_info the guest makes up a fresh 40-hex id. The replies here carry
    JSON's optional whitespace, which the guest reads as well."""
    compose = b'{"name":"x"}'
    cfg = tmp_path / "config.img"
    make_config_disk(cfg, {"app-compose.json": compose})
    g = guest_factory(config_img=cfg, spaced=True)
    g.start()
    g.wait_event("boot.progress", "done")
    info = json.loads(g.events("instance.info")[0][2])
    assert info["compose_sha256"] == hashlib.sha256(compose).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{40}", info["instance_id"]), info
    assert info["instance_id"] != "0" * 40
    assert "no reply" not in g.serial_text()


def test_no_config_disk(guest_factory):
    """The disk missing is a boot.error, and the guest carries on to serve and report done."""
    g = guest_factory()
    g.start()
    g.wait_event("boot.progress", "done")
    errors = [p for _, _, p in g.events("boot.error")]
    assert len(errors) == 1 and "DSTACKSHR" in errors[0], errors
    assert g.progress() == [p for p in PROGRESS if p != "config disk mounted"]
    assert not g.events("instance.info")
    status, page = g.http_get()
    assert status == 200 and "dstack-test-guest" in page


@pytest.mark.parametrize("channel", ["absent", "unattended"])
def test_no_host_channel(guest_factory, tmp_path, channel):
    """Without the virtio-serial port, or with nobody on its host side, the guest warns and
    boots on: one write that does not go through turns the channel off."""
    cfg = tmp_path / "config.img"
    make_config_disk(cfg, {"app-compose.json": b"{}"})
    g = guest_factory(config_img=cfg, host_channel=(channel != "absent"),
                      attend=False)
    g.start()
    g.wait_serial("test-guest: progress: done")
    serial = g.serial_text()
    if channel == "absent":
        assert "test-guest: warning: no host channel" in serial
    else:
        assert serial.count("test-guest: warning: host channel: write failed") == 1, serial
    status, page = g.http_get()
    assert status == 200 and hashlib.sha256(b"{}").hexdigest() in page


def read_sums(entry_line_dir):
    return (entry_line_dir / "SHA256SUMS").read_text()


def downloads_dir():
    """Where build-test-image.sh keeps the .deb files unless told otherwise."""
    d = os.environ.get("DSTACK_TEST_GUEST_DOWNLOADS")
    if d:
        return pathlib.Path(d)
    root = pathlib.Path(os.environ.get("DSTACK_CACHE_DIR") or "/var/cache/dstack")
    return root / "test-guest" / "downloads"


def test_cache_and_reproducible(tmp_path):
    """Two builds into two empty caches give the same bytes; a second call takes the cache;
    an altered cache entry is built again, never handed out."""
    # the .deb files come from the usual downloads folder (checked against the apt lists at
    # each use), so the packages are fetched at most once
    env = {"DSTACK_TEST_GUEST_DOWNLOADS": str(downloads_dir())}
    entries = []
    for i in range(2):
        cache = tmp_path / f"cache{i}"
        d, _, took, err = build_test_guest(tmp_path / f"out{i}",
                                           dict(env, DSTACK_CACHE_DIR=str(cache)))
        assert "built:" in err, err
        print(f"\ncold build {i}: {took:.1f} s")
        found = list((cache / "test-guest").glob("[0-9a-f]*/SHA256SUMS"))
        assert len(found) == 1, found
        entries.append(found[0].parent)
    assert entries[0].name == entries[1].name
    assert read_sums(entries[0]) == read_sums(entries[1])
    for name in ("metadata.json", "vmlinuz", "initrd.img"):
        a = (tmp_path / "out0" / d.name / name).read_bytes()
        b = (tmp_path / "out1" / d.name / name).read_bytes()
        assert a == b, name

    cache0 = {"DSTACK_CACHE_DIR": str(tmp_path / "cache0")}
    d, _, took, err = build_test_guest(tmp_path / "out2", dict(env, **cache0))
    assert "cached:" in err and "built:" not in err, err
    print(f"cached build: {took:.2f} s")
    assert (d / "initrd.img").read_bytes() == (tmp_path / "out0" / d.name / "initrd.img").read_bytes()

    # one flipped byte in the cached initrd: the entry is not trusted, the image is rebuilt
    victim = entries[0] / d.name / "initrd.img"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    d, _, took, err = build_test_guest(tmp_path / "out3", dict(env, **cache0))
    assert "built:" in err, err
    assert (d / "initrd.img").read_bytes() == (tmp_path / "out1" / d.name / "initrd.img").read_bytes()
    assert read_sums(entries[0]) == read_sums(entries[1])

    # a missing SHA256SUMS is the same: rebuilt
    (entries[0] / "SHA256SUMS").unlink()
    d, _, took, err = build_test_guest(tmp_path / "out4", dict(env, **cache0))
    assert "built:" in err, err
    assert read_sums(entries[0]) == read_sums(entries[1])


def test_build_usage():
    p = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 2 and b"usage" in p.stderr


def test_altered_download_fetched_again(image, tmp_path):
    """A kept .deb whose bytes differ from the apt lists' SHA256 is downloaded again, and the
    image comes out the same."""
    shared = downloads_dir()
    show = subprocess.run(["apt-cache", "show", "--no-all-versions", "busybox-static"],
                          stdout=subprocess.PIPE, check=True, timeout=60).stdout.decode()
    busybox_sha = re.search(r"^SHA256: ([0-9a-f]{64})$", show, re.M).group(1)
    private = tmp_path / "downloads"
    private.mkdir()
    for deb in shared.glob("[0-9a-f]*.deb"):
        shutil.copyfile(deb, private / deb.name)
    small = private / f"{busybox_sha}.deb"
    if small.is_file():
        data = bytearray(small.read_bytes())
        data[100] ^= 0xFF
        small.write_bytes(bytes(data))
    else:
        small.write_bytes(b"not the package\n" * 64)
    d, _, _, err = build_test_guest(tmp_path / "out", {
        "DSTACK_CACHE_DIR": str(tmp_path / "cache"), "DSTACK_TEST_GUEST_DOWNLOADS": str(private)})
    assert "built:" in err, err
    assert hashlib.sha256(small.read_bytes()).hexdigest() == busybox_sha
    want, _ = image
    for name in ("metadata.json", "vmlinuz", "initrd.img"):
        assert (d / name).read_bytes() == (want / name).read_bytes(), name

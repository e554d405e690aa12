"""The guest end to end: teepod boots the real image (QEMU, TCG) with tboot, which gets its keys
from a real KMS over RA-TLS, opens its LUKS2 disk, registers with a real tproxy over
wireguard-go and starts a compose app from a local registry; the app answers HTTPS through
tproxy. All daemons run in one network namespace made for the test (guest_stack.py)."""
import hashlib
import json
import os
import pathlib
import subprocess
import time

import pytest

from conftest import BUILD
from guest_stack import BASE, GuestStack, build_guest_image

QEMU_IMG = "qemu-img"
QEMU_IO = "qemu-io"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

WEB = """services:
  web:
    image: dstack-demo-web
    ports: ["80:8080", "8080:8080"]
    volumes: ["appdata:/data"]
    environment:
      DSTACK_APP_ID: ${GREETING:-none}
  sdk:
    image: dstack-demo-sdk
    ports: ["8081:8081"]
    volumes: ["/var/run/dstack.sock:/var/run/dstack.sock", "/var/run/tappd.sock:/var/run/tappd.sock"]
volumes:
  appdata: {}
"""


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return build_guest_image(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def stack(image, tmp_path_factory):
    with GuestStack(tmp_path_factory.mktemp("stack"), image) as s:
        yield s


def wait_boot(s, vm_id, timeout=240):
    """Until the guest reports `running` (or an error); returns the VM info."""
    deadline = time.monotonic() + timeout
    info = None
    since = len(s.serial(vm_id))  # the serial log is appended across boots
    while time.monotonic() < deadline:
        info = s.teepod.info(vm_id)
        if info.get("boot_error"):
            raise AssertionError(f"boot error: {info['boot_error']}\n{s.serial(vm_id)[-6000:]}")
        if info.get("boot_progress") == "running":
            return info
        if info["status"] in ("exited", "stopped") or "boot stopped" in s.serial(vm_id)[since:]:
            break
        time.sleep(1)
    raise AssertionError(f"VM {vm_id} not running in {timeout} s: {info}\n"
                         f"{s.serial(vm_id)[-6000:]}")


def wait_error(s, vm_id, timeout=240):
    deadline = time.monotonic() + timeout
    info = None
    while time.monotonic() < deadline:
        info = s.teepod.info(vm_id)
        if info.get("boot_error"):
            return info
        if info.get("boot_progress") == "running":
            break
        time.sleep(1)
    raise AssertionError(f"VM {vm_id}: no boot error in {timeout} s: {info}\n"
                         f"{s.serial(vm_id)[-6000:]}")


def get_app(s, app_id, port, path="/", timeout=60):
    """GET https://<app_id>-<port>.<base><path> through tproxy, retried until 200 (bounded)."""
    host = f"{app_id}-{port}.{BASE}"
    deadline = time.monotonic() + timeout
    r = None
    while time.monotonic() < deadline:
        r = s.via_proxy(host, path)
        if r.status == 200:
            return r
        time.sleep(1)
    raise AssertionError(f"{host}{path}: {r}\n{s.tproxy.log()[-3000:]}")


def replay(events):
    rtmr = bytes(48)
    for e in events:
        if e["imr"] == 3:
            rtmr = hashlib.sha384(rtmr + bytes.fromhex(e["digest"])).digest()
    return rtmr


def quote_rtmr3(quote_hex):
    q = bytes.fromhex(quote_hex)
    # v4 header 48 bytes; TD report: rtmr3 at 48 + 16+48+48+8+8+8+48+48+48+48 + 3*48
    off = 48 + 16 + 48 * 2 + 8 * 3 + 48 * 4 + 48 * 3
    return q[off:off + 48]


def app_document(compose, name, allowed_envs):
    """An app-compose.json as the SDKs write it (sorted keys, compact), with allowed_envs."""
    doc = {"allowed_envs": allowed_envs, "docker_compose_file": compose, "gateway_enabled": True,
           "kms_enabled": True, "local_key_provider_enabled": False, "manifest_version": 2,
           "name": name, "no_instance_id": False, "public_logs": True, "public_sysinfo": True,
           "public_tcbinfo": True, "runner": "docker-compose", "secure_time": False}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def encrypt_env(pub_hex, env):
    """The SDK's encryptEnvVars: X25519 ephemeral key || AES-256-GCM IV || ciphertext+tag of
    {"env":[{"key","value"}...]}, keyed by the raw shared secret."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    eph = X25519PrivateKey.generate()
    shared = eph.exchange(X25519PublicKey.from_public_bytes(bytes.fromhex(pub_hex.removeprefix("0x"))))
    iv = os.urandom(12)
    body = json.dumps({"env": [{"key": k, "value": v} for k, v in env.items()]}).encode()
    return (eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) + iv +
            AESGCM(shared).encrypt(iv, body, None)).hex()


@pytest.fixture(scope="module")
def app_a(stack):
    """App A: WEB with an encrypted environment for the KMS's env key of this app; only
    GREETING is allowed, DROPME must not reach the app."""
    doc = app_document(WEB, "app-a", ["GREETING"])
    app_id = hashlib.sha256(doc.encode()).hexdigest()[:40]
    pub = stack.kms_rpc("GetAppEnvEncryptPubKey", {"app_id": app_id})["public_key"]
    env = encrypt_env(pub, {"GREETING": "hello-from-env", "DROPME": "not-allowed"})
    vm = stack.teepod.create("app-a", doc, encrypted_env=env)
    t0 = time.monotonic()
    info = wait_boot(stack, vm)
    took = time.monotonic() - t0
    print(f"app-a: create -> running in {took:.1f} s")
    return vm, info


def test_deploy_reaches_app_through_tproxy(stack, app_a):
    vm, info = app_a
    app_id = info["app_id"]
    assert len(app_id) == 40
    r = get_app(stack, app_id, 8080)
    assert b"dstack" in r.body
    # the encrypted environment reached the app, decrypted in the TD; only the allowed name
    assert b"hello-from-env" in r.body, r.body
    serial = stack.serial(vm)
    assert "DROPME is not in allowed_envs: dropped" in serial
    assert "not-allowed" not in serial and "hello-from-env" not in serial  # values never logged
    # <app_id>.<base_domain> alone: port 80 of the app
    r = stack.via_proxy(f"{app_id}.{BASE}")
    assert r.status == 200 and b"dstack demo" in r.body, r
    # the container's output through tappd's /logs (podman's Docker API), on tappd's port
    r = get_app(stack, app_id, 8090, "/logs/tapp_web_1?text&tail=50")
    assert b"dstack-demo-web: serving on :8080" in r.body, r.body[-2000:]
    # tproxy lists the VM with its WireGuard address
    st, lst = stack.tproxy_rpc("List")
    assert st == 200, lst
    hosts = [h for h in lst["hosts"] if h["app_id"] == app_id]
    assert hosts and hosts[0]["ip"].startswith("10.4.0."), lst


def test_sdk_inside_app_gets_quote_and_key(stack, app_a):
    vm, info = app_a
    r = get_app(stack, info["app_id"], 8081, "/")
    res = json.loads(r.body)
    q = res["quote"]
    events = json.loads(q["event_log"])
    assert replay(events) == quote_rtmr3(q["quote"])
    names = [e["event"] for e in events if e["imr"] == 3]
    assert names[:7] == ["system-preparing", "app-id", "compose-hash", "instance-id",
                         "sys-config", "storage-options", "boot-mr-done"], names
    assert "system-ready" in names
    assert len(bytes.fromhex(res["key"]["key"])) == 32
    assert res["info"]["app_id"] == info["app_id"]


def test_reboot_keeps_data(stack, app_a):
    vm, info = app_a
    first = get_app(stack, info["app_id"], 8080, "/first").body
    assert first.strip()
    t0 = time.monotonic()
    stack.teepod.rpc("ShutdownVm", {"id": vm})
    stack.teepod.wait_status(vm, "stopped", timeout=120)
    assert "shutting down (power button)" in stack.serial(vm)
    print(f"app-a: ACPI shutdown took {time.monotonic() - t0:.1f} s")
    stack.teepod.rpc("StartVm", {"id": vm})
    wait_boot(stack, vm)
    again = get_app(stack, info["app_id"], 8080, "/first").body
    assert again == first


OTHER = """services:
  web:
    image: dstack-demo-web
    ports: ["8080:8080"]
    environment:
      WHICH: other
"""


def qemu_io(img, cmd):
    p = subprocess.run([QEMU_IO, "-f", "qcow2", "-c", cmd, str(img)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


def disk_head(img, n=64 * 1024):
    """sha256 of the guest-visible first n bytes of a qcow2 disk (read shared: its VM may run)."""
    raw = pathlib.Path(str(img) + ".head.raw")
    try:
        p = subprocess.run([QEMU_IMG, "convert", "-U", "-f", "qcow2", "-O", "raw", str(img),
                            str(raw)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        assert p.returncode == 0, p.stderr.decode()
        with open(raw, "rb") as f:
            return hashlib.sha256(f.read(n)).hexdigest()
    finally:
        raw.unlink(missing_ok=True)


def test_other_compose_other_identity_and_keys(stack, app_a):
    vm_a, info_a = app_a
    vm = stack.teepod.create("app-b", WEB.replace("appdata", "bdata"))
    try:
        info = wait_boot(stack, vm)
        assert info["app_id"] != info_a["app_id"]
        ka = json.loads(get_app(stack, info_a["app_id"], 8081).body)["key"]["key"]
        kb = json.loads(get_app(stack, info["app_id"], 8081).body)["key"]["key"]
        assert ka != kb
    finally:
        stack.teepod.rpc("StopVm", {"id": vm})


def test_modified_boot_gets_no_keys(stack):
    """The KMS allows exactly the image's measurements (tdxctl measure): the same image booted
    with one more word on its command line, or with 512 more (zero) bytes after its initrd
    (both RTMR2; the kernel still boots it), is refused its keys."""
    cmd = stack.add_image("dstack-cmdline", cmdline_extra="dstack.extra=1")
    ird = stack.add_image("dstack-initrd", initrd_extra=bytes(512))
    vms = [stack.teepod.create("app-cmdline", OTHER, image=cmd),
           stack.teepod.create("app-initrd", OTHER, image=ird)]
    try:
        for vm in vms:
            info = wait_error(stack, vm)
            assert "no app keys" in info["boot_error"], info["boot_error"]
            assert info["boot_progress"] != "running"
            assert "tboot 0.1.0 starting" in stack.serial(vm)  # it booted, and was refused
        # the KMS says which register it refused
        assert stack.kms.log().count("RTMR2 is not in the allowed list") >= 2, stack.kms.log()[-3000:]
    finally:
        for vm in vms:
            stack.teepod.rpc("StopVm", {"id": vm})


def test_disk_refusals_change_nothing(stack, app_a):
    """A LUKS2 header changed by the host is refused before cryptsetup opens it, and a disk
    of another app does not open with this app's key: both stop the boot, nothing is written."""
    vm_a, info_a = app_a
    t = stack.teepod
    if t.info(vm_a)["status"] == "running":
        t.rpc("ShutdownVm", {"id": vm_a})
        t.wait_status(vm_a, "stopped", timeout=120)
    disk_a = t.run_dir / vm_a / "hda.img"
    # another app's VM handed app A's disk
    vm_c = t.create("app-c", OTHER, stopped=True)
    disk_c = t.run_dir / vm_c / "hda.img"
    subprocess.run(["cp", "--sparse=always", str(disk_a), str(disk_c)], check=True, timeout=120)
    before_c = disk_head(disk_c, 17 * 1024 * 1024 // 65536 * 65536)
    t.rpc("StartVm", {"id": vm_c})
    # app A's own disk with one byte of its header's JSON changed
    before = disk_head(disk_a)
    qemu_io(disk_a, "write -P 0x20 5000 1")
    tampered = disk_head(disk_a)
    assert tampered != before
    t.rpc("StartVm", {"id": vm_a})
    try:
        info_c = wait_error(stack, vm_c)
        assert "does not open with this app's key" in info_c["boot_error"], info_c["boot_error"]
        info = wait_error(stack, vm_a)
        assert "LUKS2 header is refused" in info["boot_error"], info["boot_error"]
    finally:
        for v in (vm_a, vm_c):
            t.rpc("StopVm", {"id": v})
            t.wait_status(v, "stopped")
    assert disk_head(disk_a) == tampered
    assert disk_head(disk_c, 17 * 1024 * 1024 // 65536 * 65536) == before_c
    # the byte put back (read from the copy handed to app C), app A boots and finds its data
    orig = qemu_io(disk_c, "read -v 5000 1")
    byte = orig.split(":", 1)[1].split()[0]
    qemu_io(disk_a, f"write -P 0x{byte} 5000 1")
    assert disk_head(disk_a) == before
    t.rpc("StartVm", {"id": vm_a})
    wait_boot(stack, vm_a)
    assert get_app(stack, info_a["app_id"], 8080, "/first").body.strip()


def test_kms_down_then_back(stack):
    """No KMS at boot: the boot stops with an error teepod shows, the disk stays blank; with
    the KMS back, a restart boots."""
    t = stack.teepod
    stack.kms.stop(check=False)
    vm = t.create("app-e", OTHER.replace("other", "e"))
    try:
        info = wait_error(stack, vm, timeout=300)
        assert "no app keys" in info["boot_error"], info["boot_error"]
        st = t.rpc("Status", {})
        assert any(v["id"] == vm and v["boot_error"] for v in st["vms"])
        disk = t.run_dir / vm / "hda.img"
        assert disk_head(disk) == hashlib.sha256(bytes(64 * 1024)).hexdigest()
    finally:
        stack.kms.start()
    t.rpc("StopVm", {"id": vm})
    t.wait_status(vm, "stopped")
    t.rpc("StartVm", {"id": vm})
    info = wait_boot(stack, vm)
    assert get_app(stack, info["app_id"], 8080).status == 200
    t.rpc("StopVm", {"id": vm})

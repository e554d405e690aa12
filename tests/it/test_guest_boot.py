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
from guest_stack import BASE, GuestStack, build_guest_image, start_registry_in

QEMU_IMG = "qemu-img"
QEMU_IO = "qemu-io"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

WEB = """services:
  web:
    image: dstack-demo-web
    ports: ["8080:8080"]
    volumes: ["appdata:/data"]
    environment:
      GREETING: ${GREETING:-none}
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
    with GuestStack(tmp_path_factory.mktemp("stack"), image,
                    registry=start_registry_in) as s:
        yield s


def wait_boot(s, vm_id, timeout=240):
    """Until the guest reports `running` (or an error); returns the VM info."""
    deadline = time.monotonic() + timeout
    info = None
    while time.monotonic() < deadline:
        info = s.teepod.info(vm_id)
        if info.get("boot_error"):
            raise AssertionError(f"boot error: {info['boot_error']}\n{s.serial(vm_id)[-6000:]}")
        if info.get("boot_progress") == "running":
            return info
        if info["status"] in ("exited", "stopped") or "boot stopped" in s.serial(vm_id):
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


@pytest.fixture(scope="module")
def app_a(stack):
    vm = stack.teepod.create("app-a", WEB)
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

"""The demo's walkthrough in a real browser: the stack `make demo` starts (scripts/demo/stack.py:
kms, tproxy over wireguard-go, knot, a registry and teepod in a namespace of their own, forwarded
to the host's loopback), and Debian's headless chromium driving teepod's console as a user does:
paste scripts/demo/compose.yaml, deploy, watch the status reach running and the guest's boot
progress `running`, open Logs and Dashboard (the app's tappd page through tproxy), then the app's
own page and its quote through tproxy. Each step leaves a screenshot in the test's folder
(screenshots/); a failed step's is kept and its path printed.

chromium resolves the demo's names to the proxy with --host-resolver-rules and accepts exactly
the proxy's demo certificate (--ignore-certificate-errors-spki-list with its key), nothing else."""
import hashlib
import json
import pathlib
import re
import shutil
import sys
import tempfile

import pytest

from conftest import BUILD, REPO
from guest_registry import build_app_images
from guest_stack import build_guest_image
from test_teepod_console import (CHROMIUM, NODE, QEMU, Browser, page_errors, pids_mentioning,
                                 row, step, wait_until)

sys.path.insert(0, str(REPO / "scripts" / "demo"))
import stack as demo_stack  # noqa: E402  (scripts/demo/stack.py)

COMPOSE = (REPO / "scripts" / "demo" / "compose.yaml").read_text()

pytestmark = pytest.mark.skipif(
    not (pathlib.Path(CHROMIUM).exists() and NODE and QEMU and shutil.which("wireguard-go") and
         shutil.which("knotd") and shutil.which("docker-registry")),
    reason="chromium, node, qemu, wireguard-go, knot or docker-registry missing "
           "(scripts/deps.sh installs them)")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    image = build_guest_image(tmp_path_factory.mktemp("images"))
    apps = build_app_images(tmp_path_factory.mktemp("apps"))
    keep = tmp_path_factory.mktemp("demo-logs")
    # a short folder: QEMU's unix sockets live under it
    work = pathlib.Path(tempfile.mkdtemp(prefix="dcw-", dir="/tmp"))
    try:
        with demo_stack.Stack(work, BUILD, image, apps) as s:
            yield s
            for f in list((work / "logs").glob("*.log")) + \
                    list((work / "teepod" / "vm").glob("*/serial.log")):
                shutil.copy(f, keep / f"{f.parent.name}-{f.name}")
        # closed: its namespace is gone, and with it every process the demo started
        assert not pathlib.Path(f"/run/netns/{s.ns.name}").exists()
        assert s.close_errors == []
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def browser(demo, tmp_path):
    proxy_cert = demo.proxy_cert
    b = Browser(tmp_path, chromium_args=[
        f"--host-resolver-rules=MAP *.{demo_stack.BASE_DOMAIN} 127.0.0.1, "
        f"MAP *.{demo_stack.CUSTOM_ZONE} 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={demo_stack.spki_sha256_b64(proxy_cert)}"])
    yield b
    b.close()


def shot(browser, name):
    path = browser.screenshot(name=name)
    print(f"screenshot: {path}")
    return path


def test_console_walkthrough(demo, browser):
    console = f"http://127.0.0.1:{demo.ports['teepod']}/"
    proxy = demo.ports["proxy"]

    with step(browser, "open the console"):
        browser.goto(url=console)
        browser.wait(selector=f'#create-image option[value="{demo.image_name}"]', state="attached")
        browser.wait(selector="#vm-empty", state="visible")
        shot(browser, "console")

    with step(browser, "paste the compose file"):
        browser.fill(selector="#create-name", value="demo")
        browser.select(selector="#create-image", value=demo.image_name)
        browser.fill(selector="#create-vcpu", value="1")
        browser.fill(selector="#create-memory", value="1024")
        browser.fill(selector="#create-disk", value="1")
        browser.fill(selector="#create-compose", value=COMPOSE)
        shot(browser, "compose pasted")

    with step(browser, "deploy"):
        browser.click(selector="#create-submit")
        browser.wait_text(selector="#create-result", text="created demo", timeout_ms=60000)
        vm_id = browser.attr(selector="#create-result", name="data-vm-id")
        assert re.fullmatch(r"[0-9a-f-]{8,64}", vm_id or ""), vm_id
        assert browser.text(selector="#create-error") == ""

    with step(browser, "running"):
        browser.wait(selector=f'{row(vm_id)}[data-status="running"]', timeout_ms=60000)
        browser.wait_text(selector=f"{row(vm_id)} .vm-progress", text="running",
                          timeout_ms=300000)
        assert browser.text(selector=f"{row(vm_id)} .vm-boot-error") == ""
        app_id = browser.text(selector=f"{row(vm_id)} .vm-app-id")
        # the console sent the file as it is; the app id is that of the SDKs' document for it
        doc = json.dumps({"allowed_envs": [], "docker_compose_file": COMPOSE,
                          "gateway_enabled": True, "kms_enabled": True,
                          "local_key_provider_enabled": False, "manifest_version": 2,
                          "name": "demo", "no_instance_id": False, "public_logs": True,
                          "public_sysinfo": True, "public_tcbinfo": True,
                          "runner": "docker-compose", "secure_time": False},
                         sort_keys=True, separators=(",", ":"))
        assert app_id == hashlib.sha256(doc.encode()).hexdigest()[:40], app_id
        shot(browser, "running")

    with step(browser, "logs"):
        browser.click(selector=f'{row(vm_id)} button[data-action="logs"]')
        browser.wait(selector="#logs-panel", state="visible")
        logs = browser.wait_text(selector="#logs-text", text=f"tboot: info: app id {app_id}",
                                 timeout_ms=15000)
        assert "tboot-init: root mounted (erofs, verified)" in logs, logs[-2000:]
        shot(browser, "logs")

    with step(browser, "dashboard"):
        app_url = browser.text(selector=f"{row(vm_id)} .vm-url")
        assert app_url == f"https://{app_id}-8090.{demo_stack.BASE_DOMAIN}:{proxy}", app_url
        opened = browser.click_popup(selector=f'{row(vm_id)} button[data-action="dashboard"]')
        assert opened.rstrip("/") == app_url, (opened, app_url)
        # the page the button opens, loaded for real: tappd's page, through tproxy and WireGuard
        browser.goto(url=app_url + "/")
        browser.wait_text(selector="h1", text="Worker Information", timeout_ms=30000)
        body = browser.text(selector="body")
        assert app_id in body, body[:2000]
        shot(browser, "dashboard")

    with step(browser, "the app through tproxy"):
        url = f"https://{app_id}.{demo_stack.BASE_DOMAIN}:{proxy}/"
        browser.goto(url=url)
        browser.wait_text(selector="h1", text="dstack demo", timeout_ms=30000)
        shot(browser, "app")

        def quote_page():
            browser.goto(url=url + "attest/quote.json")
            return '"quote"' in (browser.text(selector="body") or "")
        wait_until("the app's quote page", quote_page, 90, 2)
        shot(browser, "quote")

    with step(browser, "container logs through the dashboard port"):
        browser.goto(url=f"{app_url}/logs/tapp_attest_1?text&tail=20")
        browser.wait_text(selector="body", text="dstack-attest: TdxQuote", timeout_ms=60000)
        shot(browser, "container logs")

    with step(browser, "stop from the console"):
        browser.goto(url=console)
        browser.click(selector=f'{row(vm_id)} button[data-action="stop"]')
        browser.wait(selector=f'{row(vm_id)}[data-status="stopped"]', timeout_ms=30000)
        vm_dir = demo.work / "teepod" / "vm" / vm_id
        wait_until("QEMU gone after Stop", lambda: not pids_mentioning(str(vm_dir)), 15)
        shot(browser, "stopped")

    with step(browser, "no page errors"):
        assert page_errors(browser) == []

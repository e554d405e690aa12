"""teepod with real QEMU (TCG) booting the test guest (tests/guest): create, boot progress over
the host channel, a forwarded port, logs, graceful shutdown, hard stop, update, remove, the
simulated TDX module (quotes that verify and match `tdxctl measure`), a restart of teepod with
running VMs, automatic restart after a QEMU is killed, and the refusals that change nothing."""
import base64
import hashlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

from conftest import TDXCTL, free_port
from teepod_common import (COMPOSE, IMAGE, QEMU, TEEPOD, RpcError, Teepod, build_image, fetch,
                           kill_qemus, qemu_pids)

pytestmark = pytest.mark.skipif(not QEMU, reason="qemu-system-x86 missing (scripts/deps.sh)")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return build_image(tmp_path_factory.mktemp("image"))


@pytest.fixture
def teepod(tmp_path, image):
    t = Teepod(tmp_path / "tp", image)
    t.start()
    yield t
    t.close()


def run_listing(t):
    """Every file under the run folder (to show that a refusal changed nothing)."""
    root = t.run_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# ---- one booted VM, shared by the tests that only look at it ---------------------------------

@pytest.fixture(scope="module")
def booted(tmp_path_factory, image):
    t = Teepod(tmp_path_factory.mktemp("booted"), image)
    t.start()
    try:
        hp = t.port_lo
        t0 = time.monotonic()
        vm = t.create("web-1", ports=[{"protocol": "tcp", "host_port": hp, "vm_port": 8080}])
        info = t.wait_booted(vm)
        print(f"\nCreateVm -> boot progress 'done': {time.monotonic() - t0:.1f} s")
        yield t, vm, info, hp
    finally:
        t.close()


def test_create_boots_and_reports(booted):
    t, vm, info, hp = booted
    assert info["name"] == "web-1" and info["status"] == "running"
    doc = (t.run_dir / vm / "shared" / "app-compose.json").read_bytes()
    chash = hashlib.sha256(doc).hexdigest()
    assert info["app_id"] == chash[:40]
    assert json.loads(doc)["docker_compose_file"] == COMPOSE
    # the guest read the config disk and reported what it found over the host channel
    assert len(info["instance_id"]) == 40
    inst = json.loads((t.run_dir / vm / "shared" / ".instance_info").read_text())
    assert inst["compose_sha256"] == chash and inst["instance_id"] == info["instance_id"]
    assert oct((t.run_dir / vm / "shared" / ".instance_info").stat().st_mode & 0o777) == "0o600"
    events = [e["body"] for e in info["events"] if e["event"] == "boot.progress"]
    assert events == ["init", "config disk mounted", "network up", "app started", "done"]
    # the port forward reaches the guest's page
    page = fetch(hp, "/").decode()
    assert "dstack-test-guest" in page and chash in page
    assert f"hostfwd=tcp:127.0.0.1:{hp}-:8080" in info["qemu_command"]
    assert info["app_url"].startswith(f"https://{info['app_id']}-8090.")
    # files with secrets or the guest's state are not world-readable
    for name in ("vm-manifest.json", "vm-state.json", "config.img", "hda.img"):
        assert (t.run_dir / vm / name).stat().st_mode & 0o077 == 0, name


def test_status_paging_keyword_and_seed_list(booted):
    t, vm, _, _ = booted
    s = t.rpc("Status", {"brief": True})
    assert s["total"] == 1 and s["port_mapping_enabled"] is True
    assert s["vms"][0]["configuration"]["compose_file"] == ""  # brief
    assert t.rpc("Status", {"keyword": "web-"})["total"] == 1
    assert t.rpc("Status", {"keyword": "nothing"})["total"] == 0
    assert t.rpc("Status", {"page": 2, "page_size": 1})["vms"] == []
    # the seed's names and the newest ones, with and without a prefix
    assert t.rpc("ListVms", prefix="Teepod.")["vms"][0]["id"] == vm
    assert t.rpc("Status", {}, prefix="Vmm.")["total"] == 1
    assert t.rpc("Status", {}, prefix="Teepod.")["total"] == 1
    assert t.rpc("Version")["version"]
    meta = t.rpc("GetMeta")
    assert meta["resources"]["max_allocable_vcpu"] >= 1 and meta["gateway"]["agent_port"] == 8090
    assert t.rpc("ListGpus")["gpus"] == []
    imgs = t.rpc("ListImages")["images"]
    assert [i["name"] for i in imgs] == [IMAGE] and imgs[0]["is_dev"] is True


def test_logs(booted):
    t, vm, _, _ = booted
    st, body = t.http("GET", f"/logs?id={vm}&follow=false&ansi=false")
    assert st == 200 and b"test-guest: progress: done" in body
    st, body = t.http("GET", f"/logs?id={vm}&lines=2")
    assert st == 200 and body.count(b"\n") == 2
    # QEMU's own output (stdout and stderr share qemu.out)
    with open(t.run_dir / vm / "qemu.out", "ab") as f:
        f.write(b"qemu-said-this\n")
    st, body = t.http("GET", f"/logs?id={vm}&ch=stderr&lines=1")
    assert st == 200 and body == b"qemu-said-this\n"
    assert t.http("GET", "/logs?id=nope")[0] == 404
    assert t.http("GET", f"/logs?id={vm}&ch=bogus")[0] == 400
    assert t.http("GET", f"/logs?id={vm}&lines=x")[0] == 400


def test_logs_follow_streams_new_output(booted):
    t, vm, _, _ = booted
    s = socket.create_connection(("127.0.0.1", t.port), timeout=10)
    s.sendall(f"GET /logs?id={vm}&follow=true&lines=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    got = b""
    deadline = time.monotonic() + 10
    while b"progress: done" not in got and time.monotonic() < deadline:
        got += s.recv(65536)
    assert b"200 OK" in got and b"chunked" in got.lower()
    # append to the serial log as QEMU would: the follower sends it within a poll period
    with open(t.run_dir / vm / "serial.log", "ab") as f:
        f.write(b"marker-from-the-test\n")
    deadline = time.monotonic() + 10
    while b"marker-from-the-test" not in got and time.monotonic() < deadline:
        got += s.recv(65536)
    s.close()
    assert b"marker-from-the-test" in got


def test_simulated_tdx_quote_matches_offline_measurement(booted, tmp_path):
    t, vm, info, hp = booted
    quote = bytes.fromhex(fetch(hp, "/quote.hex").decode().strip())
    (tmp_path / "q.bin").write_bytes(quote)
    sim = t.dir / "sim"
    v = subprocess.run([str(TDXCTL), "verify", "--quote", str(tmp_path / "q.bin"), "--collateral",
                        str(sim / "collateral"), "--allow-simulator", "--sim-root",
                        str(sim / "root_ca.pem")], capture_output=True, timeout=60)
    assert v.returncode == 0, v.stdout + v.stderr
    res = json.loads(v.stdout)
    assert res["status"] == "UpToDate" and res["simulated"] is True
    qi = json.loads(subprocess.run([str(TDXCTL), "quote-info", str(tmp_path / "q.bin")],
                                   capture_output=True, check=True, timeout=30).stdout)
    body = qi.get("td") or qi.get("body") or qi
    # MRTD and RTMR0-2 are what `tdxctl measure` computes offline for this image and shape
    m = json.loads(subprocess.run([str(TDXCTL), "measure", str(t.dir / "images" / IMAGE),
                                   "--vcpu", "1", "--memory", "512", "--json"],
                                  capture_output=True, check=True, timeout=60).stdout)
    assert body["mr_td"] == m["mrtd"]
    assert [body["rt_mr0"], body["rt_mr1"], body["rt_mr2"]] == [m["rtmr0"], m["rtmr1"], m["rtmr2"]]
    # mrconfigid binds the compose hash; report_data is the guest's
    doc = (t.run_dir / vm / "shared" / "app-compose.json").read_bytes()
    assert body["mr_config_id"] == "01" + hashlib.sha256(doc).hexdigest() + "00" * 15
    assert body["report_data"] == b"test-guest".hex() + "00" * 54
    # RTMR3 holds exactly the guest's one extend; RTMR2 could not be extended by the guest
    digest = bytes.fromhex(fetch(hp, "/rtmr3-digest.hex").decode().strip())
    assert body["rt_mr3"] == hashlib.sha384(b"\0" * 48 + digest).hexdigest()
    assert fetch(hp, "/rtmr2-extend.txt").strip() == b"refused"
    # the boot event log the host handed the guest replays to the quote's RTMR0-2
    (tmp_path / "ccel.bin").write_bytes(base64.b64decode(fetch(hp, "/ccel.b64")))
    rp = json.loads(subprocess.run([str(TDXCTL), "eventlog", "replay", str(tmp_path / "ccel.bin")],
                                   capture_output=True, check=True, timeout=30).stdout)
    assert [rp["rtmr0"], rp["rtmr1"], rp["rtmr2"]] == [m["rtmr0"], m["rtmr1"], m["rtmr2"]]
    # the guest never sees a simulator key: nothing of sim/ is on its config disk
    listing = subprocess.run(["mdir", "-/", "-b", "-i", str(t.run_dir / vm / "config.img"), "::/"],
                             capture_output=True, timeout=30,
                             env=dict(os.environ, MTOOLS_SKIP_CHECK="1")).stdout.decode()
    assert ".key" not in listing and "app-compose.json" in listing


# ---- lifecycle --------------------------------------------------------------------------------

def test_shutdown_update_restart_stop_remove(teepod):
    t = teepod
    vm = t.create("life")
    t.wait_booted(vm)
    pid = t.qemu_pid(vm)
    assert pid
    # graceful: ACPI power button, the guest says it is stopping, QEMU exits by itself
    t0 = time.monotonic()
    t.rpc("ShutdownVm", {"id": vm})
    info = t.wait_status(vm, "stopped", 60)
    print(f"\nShutdownVm -> stopped: {time.monotonic() - t0:.1f} s")
    assert info["shutdown_progress"] == "stopping"
    assert not qemu_pids(t.run_dir / vm)
    # a stopped VM is not restarted automatically
    time.sleep(2)
    assert t.info(vm)["status"] == "stopped"
    # update: a new compose (new compose hash, same app id and disk), more memory
    old = t.info(vm)
    disk = (t.run_dir / vm / "hda.img").stat().st_ino
    new_compose = COMPOSE + "  db:\n    image: redis\n"
    t.rpc("UpdateVm", {"id": vm, "compose_file": new_compose, "memory": 600})
    assert t.info(vm)["configuration"]["memory"] == 600
    t.rpc("StartVm", {"id": vm})
    info = t.wait_booted(vm)
    doc = (t.run_dir / vm / "shared" / "app-compose.json").read_bytes()
    assert json.loads(doc)["docker_compose_file"] == new_compose
    assert info["app_id"] == old["app_id"]
    assert (t.run_dir / vm / "hda.img").stat().st_ino == disk
    inst = json.loads((t.run_dir / vm / "shared" / ".instance_info").read_text())
    assert inst["compose_sha256"] == hashlib.sha256(doc).hexdigest()
    # the instance id survives a reboot (the guest reads it back from the config disk)
    assert inst["instance_id"] == old["instance_id"]
    with pytest.raises(RpcError) as e:
        t.rpc("StartVm", {"id": vm})
    assert "already running" in e.value.message
    with pytest.raises(RpcError) as e:
        t.rpc("RemoveVm", {"id": vm})
    assert e.value.status == 400 and "stop it first" in e.value.message
    with pytest.raises(RpcError) as e:
        t.rpc("ResizeVm", {"id": vm, "vcpu": 2})
    assert "stop the VM" in e.value.message
    # hard stop
    t.rpc("StopVm", {"id": vm})
    t.wait_status(vm, "stopped", 20)
    # a larger disk is grown in place; a smaller one is refused
    t.rpc("ResizeVm", {"id": vm, "disk_size": 2, "vcpu": 2})
    out = subprocess.run(["qemu-img", "info", "--output=json", str(t.run_dir / vm / "hda.img")],
                         capture_output=True, check=True, timeout=30).stdout
    assert json.loads(out)["virtual-size"] == 2 << 30
    assert t.info(vm)["configuration"]["vcpu"] == 2
    with pytest.raises(RpcError) as e:
        t.rpc("ResizeVm", {"id": vm, "disk_size": 1})
    assert "cannot shrink" in e.value.message
    t.rpc("RemoveVm", {"id": vm})
    assert not (t.run_dir / vm).exists()
    assert t.rpc("Status")["total"] == 0
    with pytest.raises(RpcError) as e:
        t.rpc("StartVm", {"id": vm})
    assert "not found" in e.value.message
    assert t.rpc("GetInfo", {"id": vm})["found"] is False


def test_restart_of_teepod_adopts_running_vms(teepod):
    t = teepod
    a = t.create("keep-a")
    b = t.create("keep-b")
    t.wait_booted(a)
    t.wait_booted(b)
    pids = {a: t.qemu_pid(a), b: t.qemu_pid(b)}
    stopped = t.create("keep-stopped", stopped=True)
    t.stop()
    # QEMUs outlive teepod
    assert all(pids[v] in qemu_pids(t.run_dir / v) for v in pids)
    t.start()
    for v in (a, b):
        info = t.info(v)
        assert info["status"] == "running", info
        assert qemu_pids(t.run_dir / v) == [pids[v]], "restarted instead of adopted"
    assert t.info(stopped)["status"] == "stopped"
    assert not qemu_pids(t.run_dir / stopped)
    # adopted VMs are still managed: stop one hard
    t.rpc("StopVm", {"id": a})
    t.wait_status(a, "stopped", 20)
    assert not qemu_pids(t.run_dir / a)
    # a VM marked started whose QEMU is gone is started at the next start of teepod
    t.stop()
    kill_qemus(t.run_dir / b)
    t.start()
    info = t.wait_booted(b)
    assert t.qemu_pid(b) not in (None, pids[b])
    assert t.info(a)["status"] == "stopped"
    print(f"\nre-adopted 2 VMs; restarted 1 whose QEMU was gone")


def test_auto_restart_after_kill(teepod):
    t = teepod
    vm = t.create("crashy")
    t.wait_booted(vm)
    pid = t.qemu_pid(vm)
    os.kill(pid, signal.SIGKILL)
    t.wait(vm, lambda i: t.qemu_pid(vm) not in (None, pid), 30, "a new QEMU")
    t.wait_booted(vm)
    st, body = t.http("GET", "/metrics")
    assert b"teepod_vm_restarts_total 1" in body


def test_half_done_removal_is_finished_at_start(teepod):
    t = teepod
    vm = t.create("gone", stopped=True)
    t.stop()
    (t.run_dir / vm / ".removing").write_text("")
    t.start()
    assert not (t.run_dir / vm).exists()
    assert t.rpc("Status")["total"] == 0


# ---- refusals ---------------------------------------------------------------------------------

def test_refusals_change_nothing(teepod):
    t = teepod
    keep = t.create("holder", stopped=True,
                    ports=[{"protocol": "tcp", "host_port": t.port_lo, "vm_port": 80}])
    before = run_listing(t)
    busy = socket.socket()
    busy.bind(("127.0.0.1", t.port_lo + 1))
    busy.listen(1)
    cases = [
        (dict(name="bad name"), "name must be"),
        (dict(name="x" * 65), "name must be"),
        (dict(name="../x"), "name must be"),
        (dict(image="nope"), "does not exist"),
        (dict(image="../images"), "not an image name"),
        (dict(vcpu=0), "vcpu must be"),
        (dict(vcpu=100000), "over the limit"),
        (dict(memory=10**9), "over the limit"),
        (dict(disk_size=101), "max_disk_size"),
        (dict(compose_file=""), "empty"),
        (dict(compose_file="services: [unclosed"), "not valid YAML"),
        (dict(compose_file="- a\n- b\n"), "must be a mapping"),
        (dict(compose_file='{"runner":"docker-compose"}'), "needs docker_compose_file"),
        (dict(compose_file='{"runner":"rm -rf","docker_compose_file":""}'), "runner must be"),
        (dict(app_id="zz"), "app_id must be"),
        (dict(ports=[{"protocol": "tcp", "host_port": t.port_lo, "vm_port": 80}]),
         "belongs to VM holder"),
        (dict(ports=[{"protocol": "tcp", "host_port": t.port_lo + 1, "vm_port": 80}]),
         "already in use"),
        (dict(ports=[{"protocol": "tcp", "host_port": 1, "vm_port": 80}]), "outside the allowed"),
        (dict(ports=[{"protocol": "sctp", "host_port": t.port_lo + 2, "vm_port": 80}]),
         "tcp or udp"),
        (dict(ports=[{"protocol": "tcp", "host_port": t.port_lo + 2, "vm_port": 80,
                      "host_address": "0.0.0.0"}]), "host_address must be"),
        (dict(ports=[{"protocol": "tcp", "host_port": t.port_lo + 2, "vm_port": 80}] * 2),
         "listed twice"),
        (dict(kms_urls=["ftp://x"]), "not an http(s) URL"),
        (dict(encrypted_env="00" * (300 * 1024)), "encrypted_env is over"),
        (dict(gpus={"gpus": [{"slot": "01:00.0"}]}), "no GPUs"),
    ]
    try:
        for kw, want in cases:
            body = dict(name="ok", image=IMAGE, compose_file=COMPOSE, vcpu=1, memory=512,
                        disk_size=1)
            body.update(kw)
            with pytest.raises(RpcError) as e:
                t.rpc("CreateVm", body)
            assert e.value.status == 400, (kw, e.value)
            assert want in e.value.message, (kw, e.value.message)
    finally:
        busy.close()
    meta = t.rpc("GetMeta")["resources"]
    with pytest.raises(RpcError) as e:
        t.create("big", vcpu=meta["max_allocable_vcpu"] + 1)
    assert "over the limit" in e.value.message
    # oversized bodies are refused by the server before any handler
    s = socket.create_connection(("127.0.0.1", t.port), timeout=10)
    s.sendall(b"POST /prpc/CreateVm?json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
              b"\r\nContent-Length: %d\r\n\r\n" % (5 * 1024 * 1024))
    assert s.recv(4096).startswith(b"HTTP/1.1 413")
    s.close()
    assert t.http("POST", "/prpc/NoSuchMethod?json", {})[0] == 404
    assert run_listing(t) == before
    assert t.rpc("Status")["total"] == 1
    t.rpc("RemoveVm", {"id": keep})


def test_compose_hash_matches_create(teepod):
    t = teepod
    h = t.rpc("GetComposeHash", {"name": "hashme", "compose_file": COMPOSE})["hash"]
    vm = t.create("hashme", stopped=True)
    doc = (t.run_dir / vm / "shared" / "app-compose.json").read_bytes()
    assert h == hashlib.sha256(doc).hexdigest()
    assert t.info(vm)["app_id"] == h[:40]
    # an app-compose.json document is kept byte for byte; a pinned app id is kept
    doc2 = json.dumps({"manifest_version": 2, "name": "x", "runner": "docker-compose",
                       "docker_compose_file": COMPOSE, "kms_enabled": False}, indent=1)
    vm2 = t.create("doc", compose=doc2, stopped=True, app_id="AB" * 20)
    assert (t.run_dir / vm2 / "shared" / "app-compose.json").read_text() == doc2
    assert t.info(vm2)["app_id"] == "ab" * 20
    # the seed's CreateVM under its own name
    vm3 = t.rpc("CreateVM", dict(name="seed", image=IMAGE, compose_file=COMPOSE, vcpu=1,
                                 memory=512, disk_size=1, stopped=True), prefix="Teepod.")["id"]
    assert (t.run_dir / vm3 / "shared" / "docker-compose.yaml").read_text() == COMPOSE


# ---- auth and configuration --------------------------------------------------------------------

def test_admin_token(tmp_path, image):
    tok = "t0ken-" + os.urandom(12).hex()
    tf = tmp_path / "tokens"
    tf.write_text(f"# admin\n{tok}\n")
    os.chmod(tf, 0o600)
    t = Teepod(tmp_path / "tp", image, extra=f'[auth]\nenabled = true\ntoken_file = "{tf}"\n')
    t.start()
    try:
        assert t.http("GET", "/health")[0] == 200
        assert t.http("POST", "/prpc/Status?json", {})[0] == 401
        # the console page (code only) loads without a token; it then asks for one
        assert t.http("GET", "/")[0] == 200
        assert t.http("GET", "/metrics")[0] == 401
        assert t.http("POST", "/prpc/Status?json", {}, {"X-Admin-Token": tok + "x"})[0] == 401
        assert t.http("POST", "/prpc/Status?json", {}, {"X-Admin-Token": tok})[0] == 200
        assert t.http("POST", "/prpc/Status?json", {}, {"Authorization": f"Bearer {tok}"})[0] == 200
        basic = base64.b64encode(f"admin:{tok}".encode()).decode()
        assert t.http("POST", "/prpc/Status?json", {}, {"Authorization": f"Basic {basic}"})[0] == 200
        assert tok not in t.stderr()
    finally:
        t.close()
    # a token file others can read is refused at start-up
    os.chmod(tf, 0o644)
    t2 = Teepod(tmp_path / "tp2", image, extra=f'[auth]\nenabled = true\ntoken_file = "{tf}"\n')
    assert t2.start(expect_fail=True) != 0
    assert "readable by others" in t2.stderr()


def test_check_and_dump_config(tmp_path, image):
    t = Teepod(tmp_path / "tp", image)
    p = subprocess.run([str(TEEPOD), "--dev", str(t.dir), "--check-config"], capture_output=True,
                       timeout=30, env=t.env)
    assert p.returncode == 0 and b"configuration OK (simulated TDX, tcg backend" in p.stdout
    p = subprocess.run([str(TEEPOD), "--dev", str(t.dir), "--dump-config"], capture_output=True,
                       timeout=30, env=t.env)
    assert p.returncode == 0 and b"[cvm.port_mapping]" in p.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('platform = "sev"\n')
    p = subprocess.run([str(TEEPOD), "--dev", str(t.dir), "-c", str(bad)], capture_output=True,
                       timeout=30, env=t.env)
    assert p.returncode == 3 and b"platform" in p.stderr


# ---- GetAppEnvEncryptPubKey through a real KMS ----------------------------------------------

def test_env_pubkey_from_kms_checked_like_the_sdk(tmp_path, image):
    from test_kms_common import Kms
    (tmp_path / "k").mkdir()
    kms = Kms(tmp_path / "k")
    t = Teepod(tmp_path / "tp", image, extra=f'[cvm]\nkms_urls = ["{kms.url}"]\n')
    t.start()
    try:
        app = "ab" * 20
        r = t.rpc("GetAppEnvEncryptPubKey", {"app_id": app})
        assert len(bytes.fromhex(r["public_key"])) == 32
        assert len(bytes.fromhex(r["signature_v1"])) == 65 and r["timestamp"] > 0
        for prefix in ("Vmm.", "Teepod."):
            assert t.rpc("GetAppEnvEncryptPubKey", {"app_id": app}, prefix=prefix)["public_key"] \
                == r["public_key"]
        # the published SDK recovers the KMS's root k256 key from what teepod passed on
        meta = json.loads(subprocess.run(
            ["curl", "-sk", "-X", "POST", "-H", "Content-Type: application/json", "-d", "{}",
             f"{kms.url}/prpc/GetMeta?json"], capture_output=True, check=True, timeout=30).stdout)
        sdk = pathlib.Path(__file__).resolve().parents[1] / "sdk"
        if not (sdk / "node_modules" / "sdk058").exists():
            pytest.skip("tests/sdk/node_modules missing (npm ci in tests/sdk)")
        script = ("import { verifyEnvEncryptPublicKey } from 'sdk058';\n"
                  "const [pub, sig, app, ts] = process.argv.slice(2);\n"
                  "const b = h => Uint8Array.from(Buffer.from(h, 'hex'));\n"
                  "console.log(verifyEnvEncryptPublicKey(b(pub), b(sig), app, BigInt(ts)));\n")
        (sdk / ".teepod-envkey.mjs").write_text(script)
        try:
            out = subprocess.run(["node", ".teepod-envkey.mjs", r["public_key"], r["signature_v1"],
                                  app, str(r["timestamp"])], cwd=sdk, capture_output=True,
                                 timeout=60, check=True).stdout.decode().strip()
        finally:
            (sdk / ".teepod-envkey.mjs").unlink()
        assert out == "0x" + meta["k256_pubkey"].removeprefix("0x")
        with pytest.raises(RpcError) as e:
            t.rpc("GetAppEnvEncryptPubKey", {"app_id": ""})
        assert "app_id must be" in e.value.message
        assert "kms_pubkeys is empty" in t.stderr()
        t.close()
        # pinned root keys: the KMS's own must be among them
        root = meta["k256_pubkey"].removeprefix("0x")
        for pins, ok in ((["02" + "11" * 32], False), (["02" + "11" * 32, root], True)):
            tp = Teepod(tmp_path / f"tp-{ok}", image,
                        extra=f'[cvm]\nkms_urls = ["{kms.url}"]\nkms_pubkeys = {json.dumps(pins)}\n')
            tp.start()
            try:
                if ok:
                    assert tp.rpc("GetAppEnvEncryptPubKey", {"app_id": app})["public_key"] == \
                        r["public_key"]
                else:
                    with pytest.raises(RpcError) as e:
                        tp.rpc("GetAppEnvEncryptPubKey", {"app_id": app})
                    assert "not one of [cvm] kms_pubkeys" in e.value.message
            finally:
                tp.close()
    finally:
        t.close()
        kms.stop(check=False)


def test_env_pubkey_refuses_a_kms_it_cannot_reach(tmp_path, image):
    port = free_port()
    t = Teepod(tmp_path / "tp", image,
               extra=f'[cvm]\nkms_urls = ["https://127.0.0.1:{port}"]\n')
    t.start()
    try:
        with pytest.raises(RpcError) as e:
            t.rpc("GetAppEnvEncryptPubKey", {"app_id": "ab" * 20})
        assert e.value.status == 400 and f"127.0.0.1:{port}" in e.value.message
        # the loop kept serving meanwhile
        assert t.http("GET", "/health")[0] == 200
    finally:
        t.close()


def test_serial_log_rotation(tmp_path, image):
    t = Teepod(tmp_path / "tp", image, extra="[cvm.log]\nmax_bytes = 4096\nmax_backups = 2\n")
    t.start()
    try:
        vm = t.create("chatty", stopped=True)
        log = t.run_dir / vm / "serial.log"
        for round_ in range(3):
            with open(log, "ab") as f:
                f.write(f"round {round_}\n".encode() * 1000)
            deadline = time.monotonic() + 15
            while log.stat().st_size > 4096 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert log.stat().st_size <= 4096, "not rotated within 15 s"
        backups = sorted(p.name for p in log.parent.glob("serial.log.*"))
        assert backups == ["serial.log.1", "serial.log.2"]
        assert b"round 2" in (log.parent / "serial.log.1").read_bytes()
        assert b"round 1" in (log.parent / "serial.log.2").read_bytes()
        assert (log.parent / "serial.log.1").stat().st_mode & 0o077 == 0
    finally:
        t.close()


def test_qemu_refusal_is_reported(tmp_path, image):
    # a QEMU that cannot run this VM (here: an option it does not know, through a wrapper)
    wrapper = tmp_path / "qemu-wrapper"
    wrapper.write_text("#!/bin/sh\necho 'qemu-system-x86_64: -bogus: invalid option' >&2\nexit 1\n")
    wrapper.chmod(0o755)
    t = Teepod(tmp_path / "tp", image, extra=f'qemu_path = "{wrapper}"\n')
    # qemu_path is a top-level key: put it first
    toml = (t.dir / "teepod.toml").read_text()
    (t.dir / "teepod.toml").write_text(f'qemu_path = "{wrapper}"\n' +
                                       toml.replace(f'qemu_path = "{wrapper}"\n', ""))
    t.start()
    try:
        vm = t.create("doomed")
        info = t.wait(vm, lambda i: "given up" in i["boot_error"], 60, "restarts given up")
        assert "invalid option" in info["boot_error"], info["boot_error"]
        assert info["status"] == "stopped"
    finally:
        t.close()


def test_host_accounting_counts_started_vms(tmp_path, image):
    # 3 vCPUs and 1500 MB for the whole host; VMs that are started count, stopped ones do not
    t = Teepod(tmp_path / "tp", image,
               extra="[cvm]\nmax_allocable_vcpu = 3\nmax_allocable_memory_in_mb = 1500\n")
    t.start()
    try:
        a = t.create("two", vcpu=2, memory=512)
        t.create("idle", vcpu=3, memory=1500, stopped=True)  # fits alone, not started
        with pytest.raises(RpcError) as e:
            t.create("more", vcpu=2, memory=256)
        assert "not enough vCPUs left on this host: 2 of 3 allocated, 2 asked" in e.value.message
        with pytest.raises(RpcError) as e:
            t.create("fat", vcpu=1, memory=1000)
        assert "not enough memory left" in e.value.message
        b = t.create("one", vcpu=1, memory=256)
        with pytest.raises(RpcError) as e:
            t.rpc("StartVm", {"id": [v["id"] for v in t.rpc("Status")["vms"]
                                     if v["name"] == "idle"][0]})
        assert "not enough vCPUs" in e.value.message
        t.rpc("StopVm", {"id": a})
        t.rpc("StopVm", {"id": b})
    finally:
        t.close()


def test_cross_site_requests_refused(teepod):
    t = teepod
    body = json.dumps({"name": "csrf", "image": IMAGE, "compose_file": COMPOSE, "vcpu": 1,
                       "memory": 256, "disk_size": 1, "stopped": True}).encode()
    # a form or a simple fetch from another site: text/plain, or GET with a query
    assert t.http("POST", "/prpc/CreateVm?json", body, {"Content-Type": "text/plain"})[0] == 415
    q = "name=csrf&image=" + IMAGE + "&compose_file=a:%20b&vcpu=1&memory=256&disk_size=1"
    assert t.http("GET", "/prpc/CreateVm?" + q)[0] == 415
    assert t.http("GET", "/prpc/StopVm?id=x")[0] == 415
    # another site's page, and a page reached through DNS rebinding
    assert t.http("POST", "/prpc/CreateVm?json", body, {"Origin": "http://evil.example"})[0] == 403
    assert t.http("POST", "/prpc/Status?json", {}, {"Host": "evil.example"})[0] == 403
    assert t.http("GET", "/logs?id=x", None, {"Host": f"evil.example:{t.port}"})[0] == 403
    assert t.rpc("Status")["total"] == 0
    # the console's own requests pass: same Origin, JSON
    st, _ = t.http("POST", "/prpc/Status?json", {}, {"Origin": f"http://127.0.0.1:{t.port}"})
    assert st == 200
    assert t.http("GET", "/prpc/Status?json")[0] == 200  # read-only methods may be GETs


def test_check_config_changes_nothing_and_one_teepod_per_run_path(teepod):
    t = teepod
    vm = t.create("later", stopped=True)
    t.stop()
    # marked started but not running: only a real start may start it
    (t.run_dir / vm / "vm-state.json").write_text('{"started":true}\n')
    p = subprocess.run([str(TEEPOD), "--dev", str(t.dir), "--check-config"], capture_output=True,
                       timeout=30, env=t.env)
    assert p.returncode == 0, p.stderr
    assert b"1 VMs" in p.stdout
    time.sleep(1)
    assert not qemu_pids(t.run_dir / vm)
    t.start()
    t.wait(vm, lambda i: i["status"] == "running", 30, "started by the real start")
    # a second teepod on the same run_path refuses to start
    t2 = Teepod(t.dir, None)
    assert t2.start(expect_fail=True) != 0
    assert "another teepod uses this run_path" in t2.stderr()
    t.rpc("StopVm", {"id": vm})


def test_logs_longer_than_a_mebibyte_come_whole(teepod):
    t = teepod
    vm = t.create("biglog", stopped=True)
    data = b"".join(b"line %07d\n" % i for i in range(300000))  # 3.6 MB
    (t.run_dir / vm / "serial.log").write_bytes(data)
    st, body = t.http("GET", f"/logs?id={vm}")
    assert st == 200 and body == data


def test_reload_vms_picks_up_new_folders(tmp_path, image):
    # a VM made by another teepod, its folder moved into this one's run_path
    a = Teepod(tmp_path / "a", image)
    a.start()
    try:
        vm = a.create("moved", stopped=True)
    finally:
        a.close()
    b = Teepod(tmp_path / "b", image)
    b.start()
    try:
        assert b.rpc("Status")["total"] == 0
        (a.run_dir / vm).rename(b.run_dir / vm)
        r = b.rpc("ReloadVms")
        assert r["loaded"] == 1
        info = b.info(vm)
        assert info["name"] == "moved" and info["status"] == "stopped"
        assert b.rpc("ReloadVms")["loaded"] == 0
    finally:
        b.close()

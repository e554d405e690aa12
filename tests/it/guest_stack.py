"""The whole VM path for integration tests and bench/boot (no tests here): the guest image, and
the stack `make demo` starts (scripts/demo/stack.py: kms, tproxy over wireguard-go, knot, a
docker-registry and teepod in one network namespace made for the run, so the guests reach them
at 10.0.2.2 and nothing touches the machine's own network), with the calls the tests make.

    with GuestStack(tmp_path, image_dir) as s:
        vm = s.teepod.create("app", compose, vcpu=1, memory=1024)
        ...

teepod is spoken to over its unix socket; the other daemons with curl inside the namespace.
Everything started here is stopped when the stack closes, QEMUs included (deleting the
namespace ends whatever is left in it)."""
import json
import os
import pathlib
import subprocess
import sys

from conftest import BUILD, REPO
from guest_registry import build_app_images
from teepod_common import Teepod
from tproxy_topo import curl as ns_curl

sys.path.insert(0, str(REPO / "scripts" / "demo"))
import stack as demo_stack  # noqa: E402  (scripts/demo/stack.py)

IMAGE_SCRIPT = REPO / "guest" / "build-image.sh"
BASE = demo_stack.BASE_DOMAIN
HOST = demo_stack.GUEST_HOST
# the demo apps the tests deploy (guest/apps/build-app-images.sh)
TEST_APPS = ("dstack-demo-web", "dstack-demo-sdk", "dstack-demo-app")


def build_guest_image(outdir, timeout=2400):
    """guest/build-image.sh BUILD OUTDIR (from the cache when it can); the image folder."""
    p = subprocess.run(["bash", str(IMAGE_SCRIPT), str(BUILD), str(outdir)], timeout=timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise AssertionError(f"build-image.sh failed: {p.stderr.decode(errors='replace')[-4000:]}")
    return pathlib.Path(p.stdout.decode().strip().splitlines()[-1])


class StackTeepod(Teepod):
    """teepod_common.Teepod's calls (rpc, create, info, wait_status, run_dir) on the stack's
    teepod, over its unix socket; the stack starts and stops it."""

    def __init__(self, stack):
        self.stack = stack
        self.dir = stack.work / "teepod"
        self.image_name = stack.image_name
        self.token = None
        self.proc = None

    def http(self, method, path, body=None, headers=None, timeout=60):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        c = demo_stack.UnixHTTPConnection(self.stack.teepod_sock, timeout)
        try:
            h = {"Content-Type": "application/json", "Host": "localhost"}
            h.update(headers or {})
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def create(self, name, compose, **kw):
        body = dict(name=name, image=self.image_name, compose_file=compose, vcpu=1,
                    memory=1024, disk_size=1)
        body.update(kw)
        return self.rpc("CreateVm", body)["id"]

    def stderr(self):
        return self.stack.find("teepod").tail(6000)


class StackDaemon:
    """stop/start/log of one of the stack's daemons (the tests stop and start the KMS)."""

    def __init__(self, stack, name):
        self.stack, self.name = stack, name

    @property
    def port(self):
        return self.stack.ports[self.name]

    def log(self):
        return self.stack.find(self.name).tail(1 << 20)

    def stop(self, check=False):
        self.stack.restart(self.name, stopped=True)

    def start(self):
        self.stack.restart(self.name)


class GuestStack:
    def __init__(self, tmp, image_dir, vcpu=1, memory_mb=1024, apps=TEST_APPS, kms_extra=""):
        self.tmp = pathlib.Path(tmp)
        self.image_dir = pathlib.Path(image_dir)
        self.meta = json.loads((self.image_dir / "metadata.json").read_text())
        self.apps_dir = build_app_images(self.tmp / "apps") if apps else self.tmp / "apps"
        self.s = demo_stack.Stack(self.tmp / "stack", BUILD, self.image_dir, self.apps_dir,
                                  vcpu=vcpu, memory_mb=memory_mb, apps=apps, kms_extra=kms_extra)

    def __enter__(self):
        self.s.__enter__()
        self.ns = self.s.ns.name
        self.teepod = StackTeepod(self.s)
        self.kms = StackDaemon(self.s, "kms")
        self.tproxy = StackDaemon(self.s, "tproxy")
        self.mr = self.s.measurements
        return self

    def __exit__(self, *a):
        errors = self.s.close()
        assert not errors, errors

    def via_proxy(self, host, path="/", *args, timeout=20):
        """An HTTPS request through tproxy for host (SNI routing), from inside the namespace."""
        port = self.s.ports["proxy"]
        return ns_curl(self.ns, f"https://{host}:{port}{path}", "--resolve",
                       f"{host}:{port}:127.0.0.1", "--cacert", str(self.s.demo_ca),
                       *args, timeout=timeout)

    def add_image(self, name, cmdline_extra=None, initrd_extra=None):
        """A copy of the image under another name with its command line or initrd changed (the
        files are hard links, but metadata.json and a changed initrd)."""
        dst = self.teepod.dir / "images" / name
        dst.mkdir()
        for f in self.image_dir.iterdir():
            if f.name == "metadata.json" or (initrd_extra and f.name == "initrd.img"):
                continue
            os.link(f, dst / f.name)
        meta = dict(self.meta)
        if cmdline_extra:
            meta["cmdline"] = meta["cmdline"] + " " + cmdline_extra
        if initrd_extra:
            (dst / "initrd.img").write_bytes((self.image_dir / "initrd.img").read_bytes() +
                                             initrd_extra)
        (dst / "metadata.json").write_text(json.dumps(meta))
        return name

    def kms_rpc(self, method, data):
        """The KMS's pRPC (JSON) from inside the namespace (teepod's kms_urls name the address
        the guests use, 10.0.2.2, which only exists for them)."""
        r = ns_curl(self.ns, f"https://127.0.0.1:{self.s.ports['kms']}/prpc/{method}?json", "-k",
                    "-H", "Content-Type: application/json", "--data-binary", json.dumps(data))
        assert r.status == 200, r
        return json.loads(r.body)

    def tproxy_rpc(self, method, data=None):
        """tproxy's pRPC (JSON) from inside the namespace; (status, parsed body)."""
        port = self.s.ports["tproxy_rpc"]
        args = ["--cacert", str(self.s.root_ca), "--resolve", f"localhost:{port}:127.0.0.1"]
        if data is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(data)]
        r = ns_curl(self.ns, f"https://localhost:{port}/prpc/Tproxy.{method}?json", *args)
        return r.status, (json.loads(r.body) if r.body.strip().startswith(b"{") else r.body)

    def serial(self, vm_id):
        return self.s.serial(vm_id)


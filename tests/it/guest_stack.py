"""The whole VM path for integration tests (no tests here): the guest image, and kms, tproxy
(over wireguard-go), a docker-registry and teepod, all inside one network namespace made for
the test, so the guests (QEMU user networking) reach them at 10.0.2.2 and nothing touches the
machine's own network.

    with GuestStack(tmp_path, image_dir) as s:
        vm = s.teepod.create("app", compose, vcpu=1, memory=1024)
        ...

teepod is spoken to over its unix socket (reachable from the test's namespace); the other
daemons through `ns_run`/`curl` inside the namespace. Everything started here is stopped when
the stack closes, QEMUs included (the topology kills whatever is left in its namespace)."""
import http.client
import json
import os
import pathlib
import shutil
import socket
import subprocess
import time

from conftest import BUILD, REPO, _clean_env, free_port
from guest_registry import REGISTRY_BIN, GuestRegistry, build_app_images
from teepod_common import Teepod, kill_qemus
from test_kms_common import Kms, read_line
from tproxy_common import BASE, Pki, Tproxy, _write, key_pem, make_cert, pem
from tproxy_topo import Topology, curl as ns_curl, ns_popen, ns_run

TDXCTL = BUILD / "src" / "tdxctl" / "tdxctl"
IMAGE_SCRIPT = REPO / "guest" / "build-image.sh"
WG_NET = "10.4.0"
HOST = "10.0.2.2"  # the namespace's loopback as QEMU's user network shows it to the guest


def build_guest_image(outdir, timeout=2400):
    """guest/build-image.sh BUILD OUTDIR (from the cache when it can); the image folder."""
    p = subprocess.run(["bash", str(IMAGE_SCRIPT), str(BUILD), str(outdir)], timeout=timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise AssertionError(f"build-image.sh failed: {p.stderr.decode(errors='replace')[-4000:]}")
    return pathlib.Path(p.stdout.decode().strip().splitlines()[-1])


def measure(image_dir, vcpu, memory_mb):
    p = subprocess.run([str(TDXCTL), "measure", str(image_dir), "--vcpu", str(vcpu),
                        "--memory", f"{memory_mb}M", "--json"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120, env=_clean_env())
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.path = str(path)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


class NsTeepod(Teepod):
    """teepod in a namespace, spoken to over its unix socket."""

    def __init__(self, tmp, image_dir, ns, image_name, extra="", env=None):
        self.ns = ns
        self.dir = pathlib.Path(tmp)
        (self.dir / "images").mkdir(parents=True, exist_ok=True)
        dst = self.dir / "images" / image_name
        if not dst.exists():
            dst.mkdir()
            for f in pathlib.Path(image_dir).iterdir():  # hard links: the rootfs is large
                try:
                    os.link(f, dst / f.name)
                except OSError:
                    shutil.copy2(f, dst / f.name)
        self.image_name = image_name
        self.port_lo, self.port_hi = 20000, 20009
        (self.dir / "teepod.toml").write_text(
            extra + "[cvm.auto_restart]\nenabled = false\n")
        self.env = dict(_clean_env(), **(env or {}))
        self.proc = None
        self.token = None

    def start(self, expect_fail=False):
        self.errf = open(self.dir / "teepod.err", "ab")
        self.proc = ns_popen(self.ns, [str(pathlib.Path(BUILD) / "src" / "teepod" / "teepod"),
                                       "--dev", str(self.dir)], env=self.env,
                             stdout=subprocess.PIPE, stderr=self.errf)
        line = read_line(self.proc, time.time() + 30)
        assert line and line.startswith("listening http://127.0.0.1:"), (line, self.stderr())
        self.port = int(line.rsplit(":", 1)[1])
        line = read_line(self.proc, time.time() + 10)
        assert line and line.startswith("listening unix:"), line
        self.sock = line.split(":", 1)[1].strip()
        return 0

    def http(self, method, path, body=None, headers=None, timeout=60):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        c = UnixHTTPConnection(self.sock, timeout=timeout)
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


class NsKms(Kms):
    def __init__(self, tmp, ns, **kw):
        self.ns = ns
        super().__init__(tmp, **kw)

    def cmd(self):
        return ["ip", "netns", "exec", self.ns] + super().cmd()


class RootPki(Pki):
    """tproxy_common.Pki with the KMS root CA as its CA: tproxy's RPC certificate must chain
    to the root the guest learns from the KMS, and the guests' app certificates chain to it
    too."""

    def __init__(self, d, root_cert, root_key):
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        self.dir = pathlib.Path(d)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_cert = x509.load_pem_x509_certificate(pathlib.Path(root_cert).read_bytes())
        self.ca_key = serialization.load_pem_private_key(pathlib.Path(root_key).read_bytes(), None)
        _write(self.dir / "ca.cert", pem(self.ca_cert), 0o644)
        self.issue("rpc", "tproxy", ["localhost", HOST])
        w, wk = make_cert("*." + BASE, ["*." + BASE, BASE])
        _write(self.dir / "wild.cert", pem(w), 0o644)
        _write(self.dir / "wild.key", key_pem(wk))


class GuestStack:
    def __init__(self, tmp, image_dir, vcpu=1, memory_mb=1024, registry=None, kms_extra=""):
        self.tmp = pathlib.Path(tmp)
        self.image_dir = pathlib.Path(image_dir)
        self.meta = json.loads((self.image_dir / "metadata.json").read_text())
        self.vcpu, self.memory_mb = vcpu, memory_mb
        self.registry_setup = registry
        self.kms_extra = kms_extra
        self.topo = None
        self.kms = self.tproxy = self.teepod = None

    def __enter__(self):
        try:
            self.setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *a):
        self.close()

    def policy(self, mr):
        return (f'[core.allowed_mr]\nallow_simulator = true\nmrtd = ["{mr["mrtd"]}"]\n'
                f'rtmr0 = ["{mr["rtmr0"]}"]\nrtmr1 = ["{mr["rtmr1"]}"]\n'
                f'rtmr2 = ["{mr["rtmr2"]}"]\n')

    def setup(self):
        self.topo = Topology(n_cvms=0, tmp=self.tmp).__enter__()
        gw = self.topo.gw
        self.sim = self.tmp / "sim"
        subprocess.run([str(TDXCTL), "sim", "init", str(self.sim)], check=True,
                       stdout=subprocess.DEVNULL, timeout=60, env=_clean_env())
        self.mr = measure(self.image_dir, self.vcpu, self.memory_mb)
        self.kms_port = free_port()  # fixed: a KMS restarted by a test comes back on it
        self.kms = NsKms(self.tmp, gw, sim=self.sim,
                         config=f"port = {self.kms_port}\n" + self.policy(self.mr) + self.kms_extra)
        # tproxy, its WireGuard interface made by wireguard-go in the namespace
        self.pki = RootPki(self.tmp / "pki", self.kms.dir / "root-ca.cert",
                           self.kms.dir / "root-ca.key")
        gw_if = self.topo.wg_create(gw, "tp")
        ns_run(gw, ["ip", "addr", "add", f"{WG_NET}.1/24", "dev", gw_if.name])
        ns_run(gw, ["ip", "link", "set", gw_if.name, "up"])
        from tproxy_topo import wg_genkey
        priv, _ = wg_genkey()
        self.wg_port = free_port()
        wg = (f'mode = "uapi"\ninterface = "{gw_if.name}"\nprivate_key = "{priv}"\n'
              f'listen_port = {self.wg_port}\npoll_interval = 1\n')
        t = Tproxy(self.tmp, self.pki, sim_dir=self.sim, wg=wg, ip_range=f"{WG_NET}.0/24",
                   server_ip=f"{WG_NET}.1", netns=gw, address="127.0.0.1", start=False)
        t.config = t.config.replace('endpoint = "127.0.0.1:51820"',
                                    f'endpoint = "{HOST}:{self.wg_port}"')
        (t.dir / "tproxy.toml").write_text(t.config)
        t.start()
        self.tproxy = t
        # the registry the guest pulls from
        self.registry = self.registry_setup(self.topo) if self.registry_setup else None
        reg = f'docker_registry = "http://{HOST}:{self.registry.port}"\n' if self.registry else ""
        extra = (f'[cvm]\nmax_allocable_vcpu = 16\nmax_allocable_memory_in_mb = 16384\nkms_urls = ["https://{HOST}:{self.kms.port}"]\n'
                 f'gateway_urls = ["https://{HOST}:{t.rpc_port}"]\n{reg}'
                 f'[gateway]\nbase_domain = "{BASE}"\nport = {t.proxy_port}\n')
        self.teepod = NsTeepod(self.tmp / "teepod", self.image_dir, gw,
                               self.image_dir.name, extra=extra,
                               env={"DSTACK_SIM_DIR": str(self.sim)})
        self.teepod.start()

    def via_proxy(self, host, path="/", *args, timeout=20):
        """An HTTPS request through tproxy for host (SNI routing), from inside the namespace."""
        port = self.tproxy.proxy_port
        return ns_curl(self.topo.gw, f"https://{host}:{port}{path}", "--resolve",
                       f"{host}:{port}:127.0.0.1", "--cacert", str(self.pki.path("wild.cert")),
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
        r = ns_curl(self.topo.gw, f"https://127.0.0.1:{self.kms.port}/prpc/{method}?json", "-k",
                    "-H", "Content-Type: application/json", "--data-binary", json.dumps(data))
        assert r.status == 200, r
        return json.loads(r.body)

    def tproxy_rpc(self, method, data=None):
        """tproxy's pRPC (JSON) from inside the namespace; (status, parsed body)."""
        port = self.tproxy.rpc_port
        args = ["--cacert", str(self.pki.path("ca.cert")), "--resolve",
                f"localhost:{port}:127.0.0.1"]
        if data is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(data)]
        r = ns_curl(self.topo.gw, f"https://localhost:{port}/prpc/Tproxy.{method}?json", *args)
        return r.status, (json.loads(r.body) if r.body.strip().startswith(b"{") else r.body)

    def serial(self, vm_id):
        try:
            return (self.teepod.run_dir / vm_id / "serial.log").read_text(errors="replace")
        except OSError:
            return ""

    def close(self):
        for what in (self.teepod, self.tproxy):
            try:
                if what:
                    what.close() if hasattr(what, "close") else what.stop()
            except Exception:
                pass
        if self.teepod:
            kill_qemus(self.teepod.run_dir)
        if self.kms:
            try:
                self.kms.stop(check=False)
            except Exception:
                pass
        if self.registry:
            try:
                self.registry.stop()
            except Exception:
                pass
        if self.topo:
            self.topo.close(raise_errors=False)


def start_registry_in(topo):
    """docker-registry in topo's gw namespace holding the demo app images (built or cached by
    guest/apps/build-app-images.sh), pushed as NAME:latest and library/NAME:latest."""
    apps = build_app_images(topo.tmp / "apps")
    reg = NsRegistry(topo.gw, topo.tmp / "registry")
    reg.start()
    reg.push_apps(apps)
    return reg


class NsRegistry(GuestRegistry):
    """guest_registry.GuestRegistry run in a namespace (its pushes run there too)."""

    def __init__(self, ns, d):
        super().__init__(d)
        self.ns = ns

    def start(self, timeout=20):
        (self.dir / "storage").mkdir(parents=True, exist_ok=True)
        cfg = self.dir / "config.yml"
        cfg.write_text(json.dumps({
            "version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.dir / "storage")}},
            "http": {"addr": self.address}}))
        self.log = open(self.dir / "registry.log", "wb")
        self.proc = ns_popen(self.ns, [REGISTRY_BIN, "serve", str(cfg)], stdout=self.log,
                             stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ns_curl(self.ns, f"http://{self.address}/v2/", timeout=2).status == 200:
                return self
            time.sleep(0.2)
        raise AssertionError("docker-registry did not answer: " +
                             (self.dir / "registry.log").read_text(errors="replace")[-2000:])

    def push(self, layout, name, tag_in_layout="latest", timeout=300):
        ns_run(self.ns, ["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                         f"oci:{layout}:{tag_in_layout}", f"docker://{self.address}/{name}"],
               timeout=timeout)

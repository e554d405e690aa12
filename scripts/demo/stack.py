"""The demo's stack: a docker-registry, kms, tproxy (WireGuard through the kernel or wireguard-go),
a knot DNS server and teepod, started from generated configs in one work directory, inside one
network namespace made for the demo. QEMU's user network shows that namespace's loopback to the
guest as 10.0.2.2, so the guest reaches every daemon there and nothing touches the host's own
network. The web console, tproxy's proxy and its dashboard are forwarded from 127.0.0.1 on the
host into the namespace, on the same port numbers.

    with Stack(work, build, image_dir, apps_dir) as s:
        vm = s.teepod_rpc("CreateVm", {...})

Everything started here is stopped when the stack closes (QEMU included), the namespace is
deleted, and a daemon that dies early is reported with the end of its log."""
import ctypes
import datetime
import http.client
import ipaddress
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import threading
import time

GUEST_HOST = "10.0.2.2"      # the namespace's loopback as QEMU's user network shows it
WG_NET = "10.4.0"            # tproxy's WireGuard network (tproxy is .1, guests from .2)
BASE_DOMAIN = "app.localhost"  # *.localhost resolves to loopback in curl and browsers
CUSTOM_ZONE = "demo.localhost"
CUSTOM_NAME = "secure." + CUSTOM_ZONE  # the app's own domain, TLS passthrough to port 8443
CLONE_NEWNET = 0x40000000
MAX_FORWARDED = 256          # connections a forwarder relays at once
IDLE_TIMEOUT = 300           # seconds a forwarded connection may stay silent


class StackError(Exception):
    pass


def free_ports(n, host="127.0.0.1"):
    """n distinct free TCP port numbers (all probes held open until every one is chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write(path, data, mode=0o644):
    """A new file with its mode from the start (an old one, or a link, is removed first)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path


def toml_list(items):
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


# ---- certificates ------------------------------------------------------------------------------

def _cert(subject_cn, issuer_cert, issuer_key, key, sans=(), ips=(), ca=False, days=30):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer_cert.subject if issuer_cert else name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    alt = [x509.DNSName(n) for n in sans] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if alt:
        b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256())


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.generate_private_key(ec.SECP256R1())


def _pem_cert(c):
    from cryptography.hazmat.primitives import serialization
    return c.public_bytes(serialization.Encoding.PEM)


def _pem_key(k):
    from cryptography.hazmat.primitives import serialization
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def _load(cert_path, key_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    return (x509.load_pem_x509_certificate(pathlib.Path(cert_path).read_bytes()),
            serialization.load_pem_private_key(pathlib.Path(key_path).read_bytes(), None))


def spki_sha256_b64(cert_path):
    """base64(sha256(SubjectPublicKeyInfo)) of a PEM certificate (Chromium's
    --ignore-certificate-errors-spki-list takes it)."""
    import base64
    import hashlib
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    c = x509.load_pem_x509_certificate(pathlib.Path(cert_path).read_bytes())
    spki = c.public_key().public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


# ---- the namespace -----------------------------------------------------------------------------

class Netns:
    def __init__(self, name):
        self.name = name
        self.fd = None

    def create(self):
        run(["ip", "netns", "add", self.name])
        self.fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY | os.O_CLOEXEC)
        run(self.argv(["ip", "link", "set", "lo", "up"]))
        # a namespace inherits nothing but these defaults; the demo routes nothing
        for k in ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"):
            run(self.argv(["sh", "-c", f"echo 0 > /proc/sys/{k}"]), check=False)

    def argv(self, argv):
        return ["ip", "netns", "exec", self.name] + [str(a) for a in argv]

    def pids(self):
        p = subprocess.run(["ip", "netns", "pids", self.name], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, timeout=10)
        return [int(x) for x in p.stdout.split() if x.isdigit()]

    def delete(self):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while pids and self.pids() and time.monotonic() < deadline:
                time.sleep(0.1)
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        p = subprocess.run(["ip", "netns", "delete", self.name], stderr=subprocess.PIPE,
                           text=True, timeout=10)
        if p.returncode != 0 and os.path.exists(f"/run/netns/{self.name}"):
            raise StackError(f"ip netns delete {self.name}: {p.stderr.strip()}")


def run(argv, check=True, timeout=120, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    p = subprocess.run([str(a) for a in argv], timeout=timeout, text=True, **kw)
    if check and p.returncode != 0:
        raise StackError(f"{' '.join(map(str, argv))} exited {p.returncode}: "
                         f"{(p.stderr or p.stdout or '').strip()[-2000:]}")
    return p


_libc = ctypes.CDLL(None, use_errno=True)


class Forwarder(threading.Thread):
    """127.0.0.1:port on the host to 127.0.0.1:port in the namespace. The listening socket is
    made in the host's namespace; this thread then enters the demo's namespace (setns applies to
    the calling thread and the threads it starts), so every outgoing connection is made there."""

    def __init__(self, ns):
        super().__init__(daemon=True, name="forward")
        self.ns = ns
        self.error = None
        self.lsock = socket.socket()
        try:
            self.lsock.bind(("127.0.0.1", 0))  # held from now on: nobody takes the number
            self.lsock.listen(64)
        except OSError:
            self.lsock.close()
            raise
        self.port = self.lsock.getsockname()[1]
        self.slots = threading.BoundedSemaphore(MAX_FORWARDED)

    def run(self):
        if _libc.setns(self.ns.fd, CLONE_NEWNET) != 0:
            self.error = f"setns: {os.strerror(ctypes.get_errno())}"
            self.lsock.close()
            return
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if not self.slots.acquire(blocking=False):
                c.close()  # at the cap: refuse rather than queue without bound
                continue
            threading.Thread(target=self.relay, args=(c,), daemon=True).start()

    def relay(self, c):
        try:
            try:
                u = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            except OSError:
                return
            # a connection idle for IDLE_TIMEOUT in one direction is dropped
            u.settimeout(IDLE_TIMEOUT)
            c.settimeout(IDLE_TIMEOUT)
            with u:
                t = threading.Thread(target=self.pump, args=(u, c), daemon=True)
                t.start()
                self.pump(c, u)
                t.join(timeout=600)
        finally:
            c.close()
            self.slots.release()

    @staticmethod
    def pump(src, dst):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                dst.sendall(b)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self):
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()


# ---- daemons -----------------------------------------------------------------------------------

class Daemon:
    """A process in the namespace, its output in WORK/logs/<name>.log."""

    def __init__(self, stack, name, argv, env=None, announces=False):
        self.stack, self.name = stack, name
        self.log_path = stack.work / "logs" / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.logf = open(self.log_path, "ab")
        e = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C.UTF-8"}
        e.update(env or {})
        # stdout: read for the listening lines, else straight to the log
        self.proc = subprocess.Popen(stack.ns.argv(argv), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if announces else self.logf,
                                     stderr=self.logf, env=e, start_new_session=True)

    def announce(self, prefixes, timeout=30):
        """Reads stdout until one line starting with each prefix; {prefix: line}."""
        found = {}
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        os.set_blocking(fd, False)
        while len(found) < len(prefixes):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise StackError(f"{self.name} did not start: {self.tail()}")
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                time.sleep(0.05)
                continue
            if not chunk:
                time.sleep(0.05)
                continue
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace").strip()
                for p in prefixes:
                    if text.startswith(p) and p not in found:
                        found[p] = text
        # from now on whatever it prints goes to its log (a full pipe would stall it)
        os.set_blocking(fd, True)
        threading.Thread(target=self._drain, args=(self.proc.stdout, buf), daemon=True).start()
        return found

    def _drain(self, pipe, pending):
        try:
            with open(self.log_path, "ab") as log:
                log.write(pending)
                while True:
                    b = pipe.read1(65536)
                    if not b:
                        return
                    log.write(b)
                    log.flush()
        except (OSError, ValueError):
            return

    def tail(self, n=3000):
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.logf.close()


class Stack:
    def __init__(self, work, build, image_dir, apps_dir, vcpu=1, memory_mb=1024,
                 apps=("dstack-demo-app",), kms_extra=""):
        """apps: the image layouts of apps_dir the registry serves (as NAME and library/NAME);
        kms_extra: more kms.toml text (tests)."""
        self.work = pathlib.Path(work)
        self.apps, self.kms_extra = tuple(apps), kms_extra
        self.build = pathlib.Path(build)
        self.image_dir = pathlib.Path(image_dir)
        self.apps_dir = pathlib.Path(apps_dir)
        self.vcpu, self.memory_mb = vcpu, memory_mb
        self.ns = Netns(f"dstack-demo-{os.getpid()}")
        self.daemons = []
        self.forwarders = {}
        self.ports = {}
        self.wg_sock = None

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *a):
        self.close()

    def bin(self, name):
        return self.build / "src" / name / name

    # -- the steps --

    def start(self):
        # a new folder, or an empty one: keys, disks and state of an earlier run are not reused
        if self.work.exists() and any(self.work.iterdir()):
            raise StackError(f"{self.work} is not empty: give a new or empty folder")
        self.work.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.work, 0o700)
        self.ns.create()
        # the simulated TDX platform every daemon trusts (the host plays the TDX module)
        self.sim = self.work / "sim"
        run([self.bin("tdxctl"), "sim", "init", self.sim], timeout=60)
        mr = json.loads(run([self.bin("tdxctl"), "measure", self.image_dir, "--vcpu",
                             self.vcpu, "--memory", f"{self.memory_mb}M", "--json"]).stdout)
        self.measurements = mr
        # the forwarded ports are held on the host from here on (the namespace is new: the same
        # numbers are free in it); the others are only used inside the namespace
        for k in ("teepod", "proxy", "tproxy_rpc"):
            self.forwarders[k] = Forwarder(self.ns)
            self.ports[k] = self.forwarders[k].port
        for k, port in zip(("kms", "wg", "registry", "dns"), free_ports(4)):
            self.ports[k] = port
        self.start_kms(mr)
        self.start_registry()
        self.start_dns()
        self.start_tproxy()
        self.start_teepod()
        for f in self.forwarders.values():
            f.start()

    def daemon(self, name, argv, env=None, announces=False):
        d = Daemon(self, name, argv, env, announces)
        d.spec = (argv, env, announces)
        self.daemons.append(d)
        return d

    def find(self, name):
        return next(d for d in self.daemons if d.name == name)

    def restart(self, name, stopped=False):
        """The daemon `name` started again from the same command and config (its ports are in
        its config); with stopped=True only stopped, until another restart(name)."""
        old = self.find(name)
        old.stop()
        i = self.daemons.index(old)
        if stopped:
            return
        argv, env, announces = old.spec
        d = Daemon(self, name, argv, env, announces)
        d.spec = old.spec
        self.daemons[i] = d
        if name == "kms":
            d.announce(["listening https://"])
        elif announces:
            raise StackError(f"restart of {name}: its announcements are not known")
        return d

    def start_kms(self, mr):
        d = self.work / "kms"
        certs = d / "certs"
        run([self.bin("kms"), "init", certs])
        policy = "".join(f'{k} = {toml_list([mr[k]])}\n' for k in ("mrtd", "rtmr0", "rtmr1",
                                                                  "rtmr2"))
        self.kms_toml = write(d / "kms.toml", f"""\
# kms.toml of the demo (scripts/demo/stack.py wrote it)
address = "127.0.0.1"
port = {self.ports["kms"]}

[tls]
key = ""
certs = ""
ra_tls = true          # the KMS's own TLS certificate carries its quote

[tls.mutual]
ca_certs = "{certs}/tmp-ca.cert"

[core]
root_ca_cert = "{certs}/root-ca.cert"
root_ca_key = "{certs}/root-ca.key"
k256_key = "{certs}/root-k256.key"
tmp_ca_cert = "{certs}/tmp-ca.cert"
tmp_ca_key = "{certs}/tmp-ca.key"
tee = "sim"            # real TDX: remove these two lines
sim_dir = "{self.sim}"

[core.quote]
simulator_dir = "{self.sim}"   # real TDX: pccs_url = "https://..." instead

# the guest image this KMS gives keys to (tdxctl measure IMAGE --vcpu {self.vcpu} --memory {self.memory_mb}M)
[core.allowed_mr]
allow_simulator = true  # real TDX: false
{policy}{self.kms_extra}""")
        self.root_ca = certs / "root-ca.cert"
        k = self.daemon("kms", [self.bin("kms"), "-c", self.kms_toml], announces=True)
        k.announce(["listening https://"])

    def start_registry(self):
        d = self.work / "registry"
        cfg = write(d / "config.yml", json.dumps({
            "version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(d / "storage")}},
            "http": {"addr": f"127.0.0.1:{self.ports['registry']}"}}))
        self.daemon("registry", ["docker-registry", "serve", cfg])
        self.wait_http(f"http://127.0.0.1:{self.ports['registry']}/v2/", "docker-registry")
        for app in self.apps:
            layout = self.apps_dir / app
            if not (layout / "index.json").is_file():
                raise StackError(f"no image layout {layout} (guest/apps/build-app-images.sh "
                                 f"makes it)")
            for name in (layout.name, f"library/{layout.name}"):
                run(self.ns.argv(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                                  f"oci:{layout}:latest",
                                  f"docker://127.0.0.1:{self.ports['registry']}/{name}:latest"]),
                    timeout=300)

    def wait_http(self, url, what, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = run(self.ns.argv(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                  "--max-time", "2", url]), check=False, timeout=10)
            if p.stdout.strip() == "200":
                return
            time.sleep(0.2)
        raise StackError(f"{what} does not answer at {url}")

    def start_dns(self):
        """knot, authoritative for demo.localhost: the app's own domain is published there as
        _dstack-app-address.<name> TXT "<app_id>:8443" (set_custom_domain)."""
        d = self.work / "dns"
        (d / "storage").mkdir(parents=True, exist_ok=True)
        self.dns_dir = d
        self.dns_serial = 1
        self.dns_records = {}
        self.write_zone()
        conf = write(d / "knot.conf", f"""\
server:
    user: root:root
    rundir: "{d}"
    listen: 127.0.0.1@{self.ports["dns"]}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "{d / "storage"}"
control:
    listen: "{d / "knot.sock"}"
zone:
  - domain: {CUSTOM_ZONE}
    storage: "{d}"
    file: "zone"
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none
""")
        self.knot_conf = conf
        self.daemon("knot", ["knotd", "-c", conf])
        self.wait_dns_serial()

    def write_zone(self):
        recs = "".join(f'{n} 0 IN TXT "{v}"\n' for n, v in sorted(self.dns_records.items()))
        write(self.dns_dir / "zone", f"""\
$ORIGIN {CUSTOM_ZONE}.
@ 0 IN SOA ns1 hostmaster {self.dns_serial} 60 60 600 0
@ 0 IN NS ns1
ns1 0 IN A 127.0.0.1
secure 0 IN A 127.0.0.1
{recs}""")

    def wait_dns_serial(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = run(self.ns.argv(["kdig", "@127.0.0.1", "-p", self.ports["dns"], "+short",
                                  "+time=1", "+retry=0", "SOA", CUSTOM_ZONE]),
                    check=False, timeout=10)
            f = p.stdout.split()
            if len(f) > 2 and f[2] == str(self.dns_serial):
                return
            time.sleep(0.2)
        raise StackError(f"knot does not serve {CUSTOM_ZONE} serial {self.dns_serial}: "
                         f"{self.daemons[-1].tail()}")

    def set_custom_domain(self, app_id, port=8443):
        self.dns_records[f"_dstack-app-address.{CUSTOM_NAME.split('.')[0]}"] = f"{app_id}:{port}"
        self.dns_serial += 1
        self.write_zone()
        run(self.ns.argv(["knotc", "-c", self.knot_conf, "-s", self.dns_dir / "knot.sock",
                          "zone-reload", CUSTOM_ZONE + "."]), timeout=20)
        self.wait_dns_serial()

    def start_wireguard(self):
        """The interface tproxy's peers are set on: the kernel's WireGuard when it has one,
        else wireguard-go's (configured through its UAPI socket). Returns (name, mode)."""
        name = f"dsdemo{os.getpid() % 100000}"
        if run(self.ns.argv(["ip", "link", "add", name, "type", "wireguard"]),
               check=False).returncode == 0:
            mode = "syncconf"
        else:
            sock = pathlib.Path("/var/run/wireguard") / f"{name}.sock"
            d = self.daemon("wireguard-go", ["wireguard-go", "-f", name],
                            env={"WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": "error",
                                 "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"})
            deadline = time.monotonic() + 10
            while not sock.exists():
                if time.monotonic() > deadline or not d.alive():
                    raise StackError(f"wireguard-go made no {sock}: {d.tail()}")
                time.sleep(0.05)
            self.wg_sock = sock
            mode = "uapi"
        run(self.ns.argv(["ip", "addr", "add", f"{WG_NET}.1/24", "dev", name]))
        run(self.ns.argv(["ip", "link", "set", name, "up"]))
        return name, mode

    def start_tproxy(self):
        d = self.work / "tproxy"
        pki = d / "certs"
        root_cert, root_key = _load(self.root_ca, self.work / "kms" / "certs" / "root-ca.key")
        # RPC: chained to the KMS root, which is what the guest trusts after GetTempCaCert
        k = _new_key()
        c = _cert("tproxy", root_cert, root_key, k, sans=["localhost"],
                  ips=[GUEST_HOST, "127.0.0.1"])
        write(pki / "rpc.key", _pem_key(k), 0o600)
        write(pki / "rpc.cert", _pem_cert(c))
        write(pki / "ca.cert", _pem_cert(root_cert))
        # the proxy's *.app.localhost certificate, from a CA made for the demo (on a real host
        # this is certbot's Let's Encrypt wildcard)
        ca_key = _new_key()
        ca = _cert("dstack demo CA", None, None, ca_key, ca=True)
        write(self.work / "demo-ca.cert", _pem_cert(ca))
        wk = _new_key()
        wc = _cert("*." + BASE_DOMAIN, ca, ca_key, wk, sans=["*." + BASE_DOMAIN, BASE_DOMAIN])
        live = d / "certbot" / "live"
        write(live / "cert.pem", _pem_cert(wc) + _pem_cert(ca))
        write(live / "key.pem", _pem_key(wk), 0o600)
        self.demo_ca = self.work / "demo-ca.cert"
        self.proxy_cert = live / "cert.pem"
        ifname, mode = self.start_wireguard()
        wgkey = run(["wg", "genkey"]).stdout.strip()
        self.tproxy_toml = write(d / "tproxy.toml", f"""\
# tproxy.toml of the demo (scripts/demo/stack.py wrote it)
address = "127.0.0.1"
port = {self.ports["tproxy_rpc"]}

[tls]
key = "{pki}/rpc.key"
certs = "{pki}/rpc.cert"

[tls.mutual]
ca_certs = "{pki}/ca.cert"

[core]
state_db = "{d}/tproxy.db"

[core.quote]
simulator_dir = "{self.sim}"   # real TDX: pccs_url = "https://..." instead

[core.certbot]
workdir = "{d}/certbot"

[core.wg]
mode = "{mode}"
interface = "{ifname}"
private_key = "{wgkey}"
ip = "{WG_NET}.1"
client_ip_range = "{WG_NET}.0/24"
listen_port = {self.ports["wg"]}
endpoint = "{GUEST_HOST}:{self.ports["wg"]}"   # real host: its public address
poll_interval = 1

[core.proxy]
cert_chain = "{live}/cert.pem"
cert_key = "{live}/key.pem"
base_domain = "{BASE_DOMAIN}"   # real host: your domain (a wildcard DNS record to this host)
listen_addr = "127.0.0.1"
listen_port = {self.ports["proxy"]}
dns_servers = "127.0.0.1:{self.ports["dns"]}"
dns_min_ttl = 0
""", 0o600)
        t = self.daemon("tproxy", [self.bin("tproxy"), "-c", self.tproxy_toml], announces=True)
        t.announce(["listening https://", "listening tls://"])

    def start_teepod(self):
        d = self.work / "teepod"
        img = d / "images" / self.image_dir.name
        img.mkdir(parents=True, exist_ok=True)
        for f in self.image_dir.iterdir():
            try:
                os.link(f, img / f.name)  # the root filesystem is large
            except OSError:
                shutil.copy2(f, img / f.name)
        self.image_name = self.image_dir.name
        self.teepod_sock = d / "teepod.sock"
        self.teepod_toml = write(d / "teepod.toml", f"""\
# teepod.toml of the demo (scripts/demo/stack.py wrote it)
image_path = "{d}/images"
run_path = "{d}/vm"
address = "127.0.0.1"
port = {self.ports["teepod"]}
unix_socket = "{self.teepod_sock}"
platform = "sim"       # real TDX: "tdx" (or "auto"), with qemu_path a TDX-enabled QEMU
sim_dir = "{self.sim}"

[cvm]
kms_urls = ["https://{GUEST_HOST}:{self.ports["kms"]}"]
gateway_urls = ["https://{GUEST_HOST}:{self.ports["tproxy_rpc"]}"]
docker_registry = "http://{GUEST_HOST}:{self.ports["registry"]}"
max_allocable_vcpu = 8
max_allocable_memory_in_mb = 8192
cid_start = {30000 + os.getpid() % 10000}
cid_pool_size = 100

[cvm.auto_restart]
enabled = false

[gateway]
base_domain = "{BASE_DOMAIN}"
port = {self.ports["proxy"]}
tappd_port = 8090
""")
        t = self.daemon("teepod", [self.bin("teepod"), "-c", self.teepod_toml], announces=True)
        t.announce(["listening http://", "listening unix:"])

    # -- talking to it --

    def teepod_rpc(self, method, body=None, timeout=60):
        """teepod's pRPC (JSON), over its unix socket (reachable from the host's namespace)."""
        c = UnixHTTPConnection(self.teepod_sock, timeout)
        try:
            c.request("POST", f"/prpc/{method}?json", body=json.dumps(body or {}),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        if r.status != 200:
            raise StackError(f"teepod {method}: HTTP {r.status}: {data[:500]!r}")
        try:
            return json.loads(data or b"{}")
        except ValueError:
            raise StackError(f"teepod {method}: not JSON: {data[:200]!r}")

    def dead(self):
        """What stopped working: the first daemon that exited, or a forwarder that failed;
        (name, its log's end) or None."""
        d = next((d for d in self.daemons if not d.alive()), None)
        if d:
            return f"{d.name} (exit status {d.proc.returncode})", d.tail(1500)
        f = next((f for f in self.forwarders.values() if f.error), None)
        return (f"the forwarder of port {f.port}", f.error) if f else None

    def serial(self, vm_id):
        try:
            return (self.work / "teepod" / "vm" / vm_id / "serial.log").read_text(errors="replace")
        except OSError:
            return ""

    # -- the end --

    def close(self):
        """Stops the VMs, the daemons and the forwarders, and deletes the namespace (whatever
        is left in it goes too). Each step runs even when an earlier one failed; signals are
        held off meanwhile, so a second Ctrl-C cannot cut the clean-up short."""
        held = {}
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                held[sig] = signal.signal(sig, signal.SIG_IGN)
            except ValueError:  # not the main thread: nothing to hold off
                pass
        errors = []
        try:
            teepod = next((d for d in self.daemons if d.name == "teepod"), None)
            if teepod and teepod.alive():
                try:  # the VMs first, so no QEMU outlives teepod
                    for vm in self.teepod_rpc("Status", {}, timeout=10).get("vms", []):
                        self.teepod_rpc("StopVm", {"id": vm.get("id", "")}, timeout=30)
                except Exception as e:
                    errors.append(f"stopping the VMs: {e}")
            for f in self.forwarders.values():
                f.stop()
            for d in reversed(self.daemons):
                try:
                    d.stop()
                except Exception as e:
                    errors.append(f"stopping {d.name}: {e}")
            try:
                self.ns.delete()
            except Exception as e:
                errors.append(str(e))
            if self.wg_sock:
                try:
                    self.wg_sock.unlink()
                except FileNotFoundError:
                    pass
                except OSError as e:
                    errors.append(f"{self.wg_sock}: {e}")
        finally:
            for sig, h in held.items():
                signal.signal(sig, h)
        self.close_errors = errors
        return errors


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s

"""Helpers shared by the KMS integration tests (no tests here): start `kms --dev DIR` (or
`kms onboard`), make simulated CVMs (tdxctl extend + gen-ra-cert on a simulated platform), call
the KMS with curl and mutual TLS, craft bad client certificates, and derive the expected keys
independently (upstream dstack) from the root key files."""
import datetime
import hashlib
import json
import os
import pathlib
import select
import shutil
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

from conftest import BUILD, TDXCTL, _clean_env

KMS = BUILD / "src" / "kms" / "kms"
OID_QUOTE = x509.ObjectIdentifier("1.3.6.1.4.1.62397.1.1")
OID_EVENT_LOG = x509.ObjectIdentifier("1.3.6.1.4.1.62397.1.2")


def read_line(proc, deadline):
    """One stdout line of proc, or None at EOF / when the deadline passes."""
    buf = b""
    while time.time() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.time()))
        if not r:
            return None
        c = os.read(proc.stdout.fileno(), 1)
        if not c:
            return None
        if c == b"\n":
            return buf.decode(errors="replace")
        buf += c
    return None


class Kms:
    """A running `kms [onboard --source URL] --dev DIR [-c extra.toml]`."""

    def __init__(self, tmp, name="kms", sim=None, config=None, source=None, args=(),
                 expect_start=True):
        self.tmp = pathlib.Path(tmp)
        self.dir = self.tmp / name
        self.name = name
        self.sim = sim
        self.config = config
        self.source = source
        self.args = list(args)
        self.proc = None
        self.start(expect_start)

    def cmd(self):
        c = [str(KMS)]
        if self.source:
            c += ["onboard", "--source", self.source]
        c += ["--dev", str(self.dir)]
        if self.config is not None:
            cp = self.tmp / f"{self.name}-extra.toml"
            cp.write_text(self.config)
            c += ["-c", str(cp)]
        return c + self.args

    def env(self):
        e = _clean_env()
        if self.sim:
            e["DSTACK_SIM_DIR"] = str(self.sim)
        return e

    def start(self, expect_start=True):
        self.stderr_path = self.tmp / f"{self.name}.stderr"
        self.stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.cmd(), stdout=subprocess.PIPE, stderr=self.stderr,
                                     env=self.env())
        self.url = None
        if not expect_start:
            return
        deadline = time.time() + 60
        while time.time() < deadline:
            line = read_line(self.proc, deadline)
            if line is None:
                break
            if line.startswith("listening https://"):
                self.url = line.split()[1]
                break
        if not self.url:
            self.stop(check=False)
            raise AssertionError(f"kms did not start: {self.log()}")
        self.port = int(self.url.rsplit(":", 1)[1])

    def wait(self, timeout=60):
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.stderr.close()

    def log(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self, check=True):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        if check:
            assert self.proc.returncode in (0, -15), \
                f"kms exited {self.proc.returncode}: {self.log()[-3000:]}"

    def restart(self):
        self.stop()
        self.start()

    def file(self, name):
        return self.dir / name

    def call(self, method, cert=None, key=None, data=None, query="", cacert=True,
             interface=None):
        """curl https://…/prpc/KMS.<method>[?query]: GET without data, POST with; from the
        local address `interface` when given. Returns (HTTP status, body bytes); status 0 when
        curl could not talk HTTP at all."""
        return curl(f"{self.url}/prpc/KMS.{method}{query}", cacert=self.file("root-ca.cert")
                    if cacert else None, cert=cert, key=key, data=data, interface=interface)

    def get_app_key(self, cert, key, **kw):
        st, body = self.call("GetAppKey", cert, key, **kw)
        assert st == 200, f"GetAppKey: HTTP {st}: {body[:600]!r}\n{self.log()[-2000:]}"
        return json.loads(body)

    def refused(self, method, cert=None, key=None, **kw):
        """Calls method expecting a refusal; returns the reason code."""
        st, body = self.call(method, cert, key, **kw)
        assert st == 400, f"{method}: expected a refusal, got HTTP {st}: {body[:300]!r}"
        err = json.loads(body)["error"]
        return err.split(":", 1)[0]


def curl(url, cacert=None, cert=None, key=None, data=None, timeout=30, interface=None):
    c = ["curl", "-sS", "--max-time", str(timeout), "-o", "-", "-w", "\n%{http_code}"]
    if interface:
        c += ["--interface", interface]
    if cacert:
        c += ["--cacert", str(cacert)]
    if cert:
        c += ["--cert", str(cert), "--key", str(key)]
    if data is not None:
        c += ["-H", "Content-Type: application/json", "--data-binary", data]
    c.append(url)
    p = subprocess.run(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout + 10)
    out = p.stdout
    body, _, code = out.rpartition(b"\n")
    try:
        status = int(code)
    except ValueError:
        status = 0
    return status, body


class Sim:
    """A simulated TDX platform whose TD can be 'rebooted' (RTMR3 and its event log back to the
    state after `tdxctl sim init`), so each CVM starts with a fresh RTMR3."""

    def __init__(self, path, *init_args):
        self.dir = pathlib.Path(path)
        env = _clean_env()
        subprocess.run([str(TDXCTL), "sim", "init", str(self.dir), *map(str, init_args)],
                       check=True, env=env, stdout=subprocess.DEVNULL, timeout=60)
        self.env = dict(env, DSTACK_TEE="sim", DSTACK_SIM_DIR=str(self.dir))
        self.pristine = {n: (self.dir / n).read_bytes() for n in ("td.json", "eventlog.jsonl")}

    def reboot(self):
        for n, b in self.pristine.items():
            p = self.dir / n
            tmp = self.dir / (n + ".reset")
            tmp.write_bytes(b)
            os.chmod(tmp, 0o600)
            os.replace(tmp, p)

    def tdxctl(self, *args, check=True):
        p = subprocess.run([str(TDXCTL), *map(str, args)], env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        if check and p.returncode:
            raise AssertionError(f"tdxctl {args}: {p.stderr.decode()}")
        return p

    def extend(self, name, digest_hex, imr=3):
        self.tdxctl("extend", "-i", imr, "-d", digest_hex, "-a", name)

    def cvm(self, out_dir, ca_dir, compose=b"services: {}\n", rootfs=b"rootfs v1",
            app_imr=3, reboot=True):
        """A seed-era boot (upstream dstack): rootfs-hash, app-id, ca-cert-hash on RTMR3,
        then `tdxctl gen-ra-cert` with the KMS's temporary CA. Returns (cert, key, app_id hex,
        rootfs hash hex)."""
        if reboot:
            self.reboot()
        rootfs_hash = hashlib.sha256(rootfs).hexdigest()
        app_hash = hashlib.sha256(compose).hexdigest()
        ca_hash = hashlib.sha256((pathlib.Path(ca_dir) / "root-ca.cert").read_bytes()).hexdigest()
        self.extend("rootfs-hash", rootfs_hash)
        self.extend("app-id", app_hash, imr=app_imr)
        self.extend("ca-cert-hash", ca_hash)
        return self.ra_cert(out_dir, ca_dir) + (app_hash[:40], rootfs_hash)

    def newest_boot(self, app, compose_hash, instance_id=None, reboot=True):
        """The newest guest's boot events (upstream dstack) up to boot-mr-done: runtime
        events whose names are bound to their digests. Returns the instance id."""
        if reboot:
            self.reboot()
        inst = instance_id if instance_id is not None else os.urandom(20)
        for name, payload in (("system-preparing", b""), ("app-id", app),
                              ("compose-hash", compose_hash), ("instance-id", inst),
                              ("boot-mr-done", b"")):
            self.tdxctl("extend", "-a", name, "--payload", payload.hex())
        return inst

    def ra_cert(self, out_dir, ca_dir, name="cvm"):
        out = pathlib.Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        n = len(list(out.glob(f"{name}*.cert")))
        cert, key = out / f"{name}{n}.cert", out / f"{name}{n}.key"
        self.tdxctl("gen-ra-cert", "--ca-cert", pathlib.Path(ca_dir) / "tmp-ca.cert",
                    "--ca-key", pathlib.Path(ca_dir) / "tmp-ca.key", "-c", cert, "-k", key)
        return cert, key


# ---- crafted client certificates -------------------------------------------------------------

def der_octet(b):
    n = len(b)
    if n < 0x80:
        ln = bytes([n])
    else:
        nb = n.to_bytes((n.bit_length() + 7) // 8, "big")
        ln = bytes([0x80 | len(nb)]) + nb
    return b"\x04" + ln + b


def der_unwrap(v):
    assert v[0] == 0x04
    if v[1] < 0x80:
        return v[2:2 + v[1]]
    k = v[1] & 0x7f
    n = int.from_bytes(v[2:2 + k], "big")
    return v[2 + k:2 + k + n]


def ra_evidence(cert_path):
    """(quote, event log) of an RA-TLS certificate file."""
    c = x509.load_pem_x509_certificate(pathlib.Path(cert_path).read_bytes())
    q = der_unwrap(c.extensions.get_extension_for_oid(OID_QUOTE).value.value)
    try:
        ev = der_unwrap(c.extensions.get_extension_for_oid(OID_EVENT_LOG).value.value)
    except x509.ExtensionNotFound:
        ev = b""
    return q, ev


def craft_cert(out_dir, name, ca_dir, key=None, quote=None, event_log=None):
    """A client certificate signed by the KMS's temporary CA, for key (a new P-256 key when
    None), carrying the given RA-TLS extensions (none when quote is None). Returns the paths."""
    ca_dir = pathlib.Path(ca_dir)
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "tmp-ca.cert").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "tmp-ca.key").read_bytes(), None)
    if key is None:
        key = ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crafted")]))
         .issuer_name(ca_cert.subject)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(datetime.datetime(2020, 1, 1))
         .not_valid_after(datetime.datetime(2090, 1, 1)))
    if quote is not None:
        b = b.add_extension(x509.UnrecognizedExtension(OID_QUOTE, der_octet(quote)), False)
        b = b.add_extension(x509.UnrecognizedExtension(OID_EVENT_LOG, der_octet(event_log or b"")),
                            False)
    cert = b.sign(ca_key, hashes.SHA256())
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cp, kp = out / f"{name}.cert", out / f"{name}.key"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    os.chmod(kp, 0o600)
    return cp, kp


def forge_boot_events(log, names=("app-id", "compose-hash")):
    """The identity forgery: the first event of each name on RTMR3 (the boot's own) gets another
    event type and name, its digest unchanged, so the log still replays and events of those names
    that the app extended later come first for a verifier that looks names up. log: event log
    bytes, a JSON array or JSON lines; returned in the same form."""
    text = log.decode()
    array = text.lstrip().startswith("[")
    events = json.loads(text) if array else [json.loads(l) for l in text.splitlines() if l.strip()]
    seen = set()
    for e in events:
        name = e.get("event", e.get("associated_data"))
        if e.get("imr") == 3 and name in names and name not in seen:
            seen.add(name)
            e["event_type"] = 0x80000001
            for k in ("event", "associated_data"):
                if k in e:
                    e[k] = "renamed-" + name
    assert seen == set(names), f"the log has no boot events {set(names) - seen}"
    if array:
        return json.dumps(events).encode()
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def ratls_report_data(key):
    """report_data an RA-TLS certificate for key must carry: SHA-512 of the public point."""
    return hashlib.sha512(key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)).digest()


def load_key(path):
    return serialization.load_pem_private_key(pathlib.Path(path).read_bytes(), None)


# ---- expected keys, derived independently ------------------------------------------------------

def hkdf(ikm, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"RATLS", info=info).derive(ikm)


def scalar_of(pem_or_key):
    k = pem_or_key if hasattr(pem_or_key, "private_numbers") else \
        serialization.load_pem_private_key(pem_or_key, None)
    return k.private_numbers().private_value.to_bytes(32, "big")


def pkcs8_p256(scalar):
    """The 138-byte PKCS#8 DER form (ring / rcgen layout) of a P-256 scalar."""
    k = ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())
    pub = k.public_key().public_bytes(serialization.Encoding.X962,
                                      serialization.PublicFormat.UncompressedPoint)
    return (bytes.fromhex("308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420")
            + scalar + bytes.fromhex("a144034200") + pub)


def dh_secret(root, info):
    return hashlib.sha256(pkcs8_p256(hkdf(root, info))).digest()


def expected_seed(kms_dir, app_hex, rootfs_hex):
    root = scalar_of((pathlib.Path(kms_dir) / "root-ca.key").read_bytes())
    k256 = (pathlib.Path(kms_dir) / "root-k256.key").read_bytes()
    app = bytes.fromhex(app_hex)
    return {
        "app_key_scalar": hkdf(root, app_hex.encode() + b"app-key"),
        "disk_crypt_key": pkcs8_p256(hkdf(root, app_hex.encode() + rootfs_hex.encode() +
                                          b"app-disk-crypt-key")),
        "env_crypt_key": dh_secret(root, app + b"env-encrypt-key"),
        "k256_key": hkdf(k256, app + b"app-key"),
    }


def expected_newest(kms_dir, app, instance_id):
    root = scalar_of((pathlib.Path(kms_dir) / "root-ca.key").read_bytes())
    k256 = (pathlib.Path(kms_dir) / "root-k256.key").read_bytes()
    return {
        "app_key_scalar": hkdf(root, app + b"app-ca"),
        "disk_crypt_key": dh_secret(root, app + instance_id + b"app-disk-crypt-key"),
        "env_crypt_key": dh_secret(root, app + b"env-encrypt-key"),
        "k256_key": hkdf(k256, app + b"app-key"),
    }


def hexb(s):
    """bytes of a JSON bytes field ("0x" + hex or plain hex)."""
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


KEY_FIELDS = ("ca_cert", "disk_crypt_key", "env_crypt_key", "k256_key", "k256_signature",
              "app_key")


def key_view(resp):
    """The deterministic part of an AppKeyResponse (the app certificate is made fresh)."""
    return {k: resp[k] for k in KEY_FIELDS} | {"root": resp["certificate_chain"][1]}


def dir_state(path):
    """Names, sizes, modes and mtimes of everything under path (for 'nothing written')."""
    out = {}
    for p in sorted(pathlib.Path(path).rglob("*")):
        st = p.lstat()
        out[str(p)] = (st.st_size, st.st_mode, st.st_mtime_ns)
    return out


@pytest.fixture(scope="session")
def kms_bin():
    if not KMS.exists():
        pytest.fail(f"kms not built at {KMS} (set DSTACK_BUILD)")
    if not shutil.which("curl"):
        pytest.skip("curl not installed")
    return KMS

"""make demo: deploy scripts/demo/compose.yaml on the simulated TDX and reach it over TLS.

    demo.py --build DIR --image IMAGE_DIR --apps APPS_DIR [--work DIR]

Starts the stack (stack.py), deploys the app through teepod's API as the console does, prints
the VM's boot phases as they come, then checks everything it claims and prints the URLs that
work with a curl line for each, and `demo ready`. Then it waits for Ctrl-C; with DEMO_CHECK=1 it
stops there. Every check that fails ends the demo with exit 1 and the reason; either way the VM
and every daemon are stopped. DEMO_T0 (seconds since the epoch) is when `make demo` started,
DEMO_SINCE names that moment in the `demo ready` line."""
import argparse
import hashlib
import html
import json
import os
import pathlib
import re
import shutil
import signal
import ssl
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from stack import BASE_DOMAIN, CUSTOM_NAME, WG_NET, Stack, StackError  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
BOOT_TIMEOUT = 300   # create -> running; TCG on a busy machine
CHECK_TIMEOUT = 90   # each check, retried until it passes


class DemoFailed(Exception):
    pass


def say(msg=""):
    print(msg, flush=True)


def printable(text, limit=4000):
    """The end of text a guest or a daemon wrote, without control characters (a guest must not
    drive the terminal)."""
    return re.sub(r"[^\n\t\x20-\x7e\u00a0-\uffff]", "?", text[-limit:])


def app_compose(compose_yaml, name):
    """The app-compose.json the console and the SDKs make from a docker-compose file."""
    doc = {"allowed_envs": [], "docker_compose_file": compose_yaml, "gateway_enabled": True,
           "kms_enabled": True, "local_key_provider_enabled": False, "manifest_version": 2,
           "name": name, "no_instance_id": False, "public_logs": True, "public_sysinfo": True,
           "public_tcbinfo": True, "runner": "docker-compose", "secure_time": False}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def curl(url, *args, timeout=15):
    """curl from the host (through the forwarded ports); (status, body bytes)."""
    # the app controls what it answers: at most 4 MiB of it is read
    p = subprocess.run(["curl", "-sS", "--max-time", str(timeout), "--max-filesize", "4194304",
                        "-o", "-", "-w",
                        "\n%{http_code}", *args, url], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout + 10)
    body, _, code = p.stdout.rpartition(b"\n")
    try:
        return int(code), body
    except ValueError:
        return 0, p.stderr


def until(what, fn, timeout=CHECK_TIMEOUT, stack=None):
    """fn() until it returns a true value (bounded); the value. fn may raise DemoFailed to give
    the reason it is not there yet."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except DemoFailed as e:
            last = e
        dead = stack.dead() if stack else None
        if dead:
            raise DemoFailed(f"{what}: {dead[0]} stopped: {printable(dead[1])}")
        if time.monotonic() > deadline:
            raise DemoFailed(f"{what}: not after {timeout} s ({last})")
        time.sleep(1)


EV_RUNTIME = 0x08000001


def runtime_digest(e):
    """The digest a runtime event must have for its name and payload (version 1:
    SHA-384(le32(type) ":" name ":" payload); version 2: SHA-384 of {"name","payload","type"})."""
    name, payload = e.get("event", ""), bytes.fromhex(e.get("event_payload", ""))
    if e.get("version") == 2:
        text = json.dumps({"name": name, "payload": payload.hex(), "type": EV_RUNTIME},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha384(text.encode()).hexdigest()
    return hashlib.sha384(struct.pack("<I", EV_RUNTIME) + b":" + name.encode() + b":" +
                          payload).hexdigest()


def rtmr3_replay(events):
    m = bytes(48)
    for e in events:
        if e.get("imr") == 3:
            m = hashlib.sha384(m + bytes.fromhex(e["digest"])).digest()
    return m.hex()


# TD quote v4: header 48 bytes, then the TD report body (TEE_TCB_SVN 16, MRSEAM, MRSIGNERSEAM,
# SEAMATTRIBUTES, TDATTRIBUTES, XFAM, MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG, RTMR0..3, ...)
Q_MRTD = 48 + 16 + 48 * 2 + 8 * 3
Q_MRCONFIGID = Q_MRTD + 48
Q_RTMR0 = Q_MRTD + 48 * 4
Q_RTMR3 = Q_RTMR0 + 48 * 3
Q_REPORT_DATA = Q_RTMR3 + 48


class Demo:
    def __init__(self, s, t0):
        self.s, self.t0 = s, t0
        self.proxy = s.ports["proxy"]

    def elapsed(self):
        return time.monotonic() - self.t0

    def ok(self, msg):
        say(f"   ok  {msg}")

    def app_url(self, host, path="/"):
        return f"https://{host}:{self.proxy}{path}"

    def get(self, host, path="/", ca=None):
        return curl(self.app_url(host, path), "--cacert", str(ca or self.s.demo_ca))

    # -- deploy and boot --

    def deploy(self):
        compose = (HERE / "compose.yaml").read_text()
        # the docker-compose file as it is, as the console sends it: teepod wraps it into the
        # app-compose.json the SDKs make, whose hash is the app's identity
        r = self.s.teepod_rpc("CreateVm", {"name": "demo", "image": self.s.image_name,
                                           "compose_file": compose, "vcpu": self.s.vcpu,
                                           "memory": self.s.memory_mb, "disk_size": 1})
        self.vm = r["id"]
        self.t_create = time.monotonic()
        info = self.info()
        self.app_id = info["app_id"]
        say(f"== deployed: VM {self.vm}, app id {self.app_id}")
        doc = app_compose(compose, "demo")
        self.compose_hash = hashlib.sha256(doc.encode()).digest()
        if self.compose_hash.hex()[:40] != self.app_id:
            raise DemoFailed("teepod's app id is not sha256(app-compose.json)[:40] of the "
                             "document the SDKs make")
        say("   app id = sha256(app-compose.json)[:40], the document the SDKs make of the file")
        # the app's own domain, published before it boots (tproxy asks DNS at connection time)
        self.s.set_custom_domain(self.app_id)

    def info(self):
        r = self.s.teepod_rpc("GetInfo", {"id": self.vm})
        if not r.get("found"):
            raise DemoFailed(f"teepod no longer knows VM {self.vm}")
        return r["info"]

    def wait_boot(self):
        """Prints each boot phase as teepod reports it; polls the app's URL meanwhile, so the
        first HTTPS 200 is timed when it happens."""
        say("== booting (QEMU/TCG: a simulated TD; phases as the guest reports them)")
        seen = None
        self.first_200 = None
        host = f"{self.app_id}.{BASE_DOMAIN}"
        deadline = time.monotonic() + BOOT_TIMEOUT
        while True:
            info = self.info()
            p = info.get("boot_progress") or info.get("status")
            if p != seen:  # the guest's own words: made printable
                say(f"   {time.monotonic() - self.t_create:5.1f} s  {printable(str(p), 300)}")
                seen = p
            if info.get("boot_error"):
                raise DemoFailed(f"boot error: {printable(info['boot_error'])}\n"
                                 f"{printable(self.s.serial(self.vm))}")
            if info.get("status") in ("exited", "stopped"):
                raise DemoFailed(f"the VM stopped: {printable(self.s.serial(self.vm))}")
            if p == "running" and self.first_200 is None:
                st, _ = self.get(host)
                if st == 200:
                    self.first_200 = time.monotonic() - self.t_create
            if p == "running" and self.first_200 is not None:
                return info
            dead = self.s.dead()
            if dead:
                raise DemoFailed(f"{dead[0]} stopped: {printable(dead[1])}")
            if time.monotonic() > deadline:
                raise DemoFailed(f"not running after {BOOT_TIMEOUT} s: {info}\n"
                                 f"{printable(self.s.serial(self.vm))}")
            time.sleep(0.5)

    # -- the checks --

    def check_web(self):
        host = f"{self.app_id}.{BASE_DOMAIN}"
        st, body = self.get(host)
        if st != 200 or b"dstack demo" not in body:
            raise DemoFailed(f"{host}: HTTP {st}: {body[:300]!r}")
        # <app_id>-<port>: any port of the app by number (80 is what <app_id> alone reaches)
        host80 = f"{self.app_id}-80.{BASE_DOMAIN}"
        st, body80 = self.get(host80)
        if st != 200 or body80 != body:
            raise DemoFailed(f"{host80}: HTTP {st}: {body80[:300]!r}")
        self.ok(f"https://{host} and https://{host80}: the app's page, through tproxy and "
                f"WireGuard")

    def fetch_json(self, host, path, ca=None):
        def get():
            st, body = self.get(host, path, ca)
            if st != 200:
                raise DemoFailed(f"{host}{path}: HTTP {st}: {body[:200]!r}")
            try:
                return json.loads(body)
            except ValueError:
                raise DemoFailed(f"{host}{path}: not JSON yet")
        return until(f"{host}{path}", get, stack=self.s)

    def check_quote(self):
        """The quote attest got from tappd: verifies (tdxctl verify --allow-simulator), its RTMR3
        replays from the event log, and its report_data binds the certificate attest serves."""
        host = f"{self.app_id}.{BASE_DOMAIN}"
        q = self.fetch_json(host, "/attest/quote.json")
        st, cert_pem = self.get(host, "/attest/cert.pem")
        if st != 200:
            raise DemoFailed(f"/attest/cert.pem: HTTP {st}")
        quote = bytes.fromhex(q["quote"])
        with tempfile.NamedTemporaryFile("w", suffix=".hex") as f:
            f.write(q["quote"])
            f.flush()
            p = subprocess.run([str(self.s.bin("tdxctl")), "verify", "--quote", f.name, "--hex",
                                "--collateral", str(self.s.sim / "collateral"),
                                "--allow-simulator", "--sim-root",
                                str(self.s.sim / "root_ca.pem")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        try:
            v = json.loads(p.stdout)
        except ValueError:
            v = {"error": p.stderr.decode(errors="replace")}
        if p.returncode != 0 or not v.get("simulated"):
            raise DemoFailed(f"tdxctl verify: {v}")
        self.ok(f"the quote from inside the app verifies: status {v.get('status')}, "
                f"simulated TD (tdxctl verify --allow-simulator)")
        # a valid quote of which TD: the image booted (MRTD, RTMR0-2 as tdxctl measure computes
        # them offline) and this app (MRCONFIGID = 01 || compose hash)
        mr = self.s.measurements
        got = {"mrtd": quote[Q_MRTD:Q_MRTD + 48].hex()}
        for i in range(3):
            got[f"rtmr{i}"] = quote[Q_RTMR0 + 48 * i:Q_RTMR0 + 48 * (i + 1)].hex()
        bad = [k for k, v in got.items() if v != str(mr.get(k, "")).lower()]
        if bad:
            raise DemoFailed(f"the quote's {', '.join(bad)} differ from the image's measurements")
        if quote[Q_MRCONFIGID:Q_MRCONFIGID + 48] != b"\x01" + self.compose_hash + bytes(15):
            raise DemoFailed("the quote's MRCONFIGID is not 01 || this app's compose hash")
        self.ok("its MRTD and RTMR0-2 are the image's (tdxctl measure), its MRCONFIGID this "
                "app's compose hash")
        events = json.loads(q["event_log"])
        rt3 = quote[Q_RTMR3:Q_RTMR3 + 48].hex()
        if rtmr3_replay(events) != rt3:
            raise DemoFailed("RTMR3 of the quote differs from the replay of its event log")
        names = [e.get("event") for e in events if e.get("imr") == 3]
        if "app-id" not in names or "compose-hash" not in names:
            raise DemoFailed(f"boot events missing from the event log: {names}")
        for e in events:
            if e.get("imr") == 3 and e.get("event_type") == EV_RUNTIME and \
                    runtime_digest(e) != e.get("digest", "").lower():
                raise DemoFailed(f"event {e.get('event')}: its digest is not that of its name "
                                 f"and payload")
        app_ev = next(e for e in events if e.get("event") == "app-id")
        if app_ev.get("event_payload", "").lower() != self.app_id:
            raise DemoFailed(f"the event log's app-id {app_ev.get('event_payload')} is not "
                             f"{self.app_id}")
        self.ok(f"RTMR3 {rt3[:16]}… replays from the event log ({len(names)} events, each "
                f"digest that of its name and payload: {', '.join(names[:4])}, …), "
                f"app-id = {self.app_id[:12]}…")
        want = hashlib.sha512(b"app-data:" + cert_pem).digest()
        if quote[Q_REPORT_DATA:Q_REPORT_DATA + 64] != want:
            raise DemoFailed("the quote's report_data does not bind the served certificate")
        self.cert_pem = cert_pem
        self.ok("report_data = sha512(\"app-data:\" + the app's certificate): the quote vouches "
                "for that TLS key")

    def check_passthrough(self):
        """secure.demo.localhost: tproxy reads _dstack-app-address TXT from knot and passes the
        TLS through to port 8443 of the app; the certificate is the app's own, chained to the
        KMS root, and the one the quote binds."""
        ctx = ssl.create_default_context(cafile=str(self.s.root_ca))

        def handshake():
            try:
                with socket.create_connection(("127.0.0.1", self.proxy), timeout=10) as raw:
                    with ctx.wrap_socket(raw, server_hostname=CUSTOM_NAME) as t:
                        der = t.getpeercert(binary_form=True)
                        t.sendall(b"GET /quote.json HTTP/1.0\r\nHost: " + CUSTOM_NAME.encode() +
                                  b"\r\n\r\n")
                        data = b""
                        while len(data) < 4 << 20:
                            b = t.recv(65536)
                            if not b:
                                break
                            data += b
                        return der, data
            except (OSError, ssl.SSLError) as e:
                raise DemoFailed(f"TLS to {CUSTOM_NAME}: {e}")
        der, data = until(CUSTOM_NAME, handshake, stack=self.s)
        if ssl.DER_cert_to_PEM_cert(der).encode().replace(b"\n", b"") != \
                self.cert_pem.replace(b"\n", b""):
            raise DemoFailed(f"{CUSTOM_NAME} served another certificate than the quote binds")
        if b'"quote"' not in data:
            raise DemoFailed(f"{CUSTOM_NAME}/quote.json: {data[:300]!r}")
        self.ok(f"https://{CUSTOM_NAME}: TLS passthrough to the app's port 8443 "
                f"(_dstack-app-address TXT from knot), the app's own certificate, verified "
                f"against the KMS root")

    def check_logs(self):
        host = f"{self.app_id}-8090.{BASE_DOMAIN}"

        def logs(container, text):
            st, body = self.get(host, f"/logs/{container}?text&tail=20")
            if st != 200 or text not in body:
                raise DemoFailed(f"/logs/{container}: HTTP {st}: {body[-300:]!r}")
            return body
        until("web's logs", lambda: logs("tapp_web_1", b"dstack-demo-web: serving"),
              stack=self.s)
        until("attest's logs", lambda: logs("tapp_attest_1", b"dstack-attest: TdxQuote"),
              stack=self.s)
        self.ok(f"https://{host}/logs/tapp_attest_1: the container's output, through the app's "
                f"dashboard port")

    def check_tproxy(self):
        """tproxy's dashboard has a row for the app, with its WireGuard address."""
        def listed():
            st, body = curl(f"https://localhost:{self.s.ports['tproxy_rpc']}/", "--cacert",
                            str(self.s.root_ca))
            if st != 200:
                raise DemoFailed(f"tproxy's dashboard: HTTP {st}")
            for tr in re.findall(r"<tr>(.*?)</tr>", body.decode(errors="replace"), re.S):
                cells = [html.unescape(re.sub(r"<[^>]*>", "", c)).strip()
                         for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
                if cells and cells[0] == self.app_id:
                    ip = next((c for c in cells if c.startswith(f"{WG_NET}.")), None)
                    if not ip:
                        raise DemoFailed(f"tproxy's dashboard row has no WireGuard address: "
                                         f"{cells}")
                    return ip
            raise DemoFailed("tproxy's dashboard has no row for the app")
        ip = until("tproxy's dashboard", listed, stack=self.s)
        self.ok(f"tproxy's dashboard lists the app at its WireGuard address {ip}")

    def urls(self):
        s, app, p = self.s, self.app_id, self.proxy
        w = s.work
        say("== what works now (from this host; *.localhost is 127.0.0.1)")
        say(f"   console         http://127.0.0.1:{s.ports['teepod']}/")
        say(f"   app             https://{app}.{BASE_DOMAIN}:{p}/")
        say(f"     curl --cacert {w}/demo-ca.cert https://{app}.{BASE_DOMAIN}:{p}/")
        say(f"   its quote       https://{app}.{BASE_DOMAIN}:{p}/attest/quote.json")
        say(f"     curl --cacert {w}/demo-ca.cert https://{app}.{BASE_DOMAIN}:{p}/attest/quote.json")
        say(f"   dashboard       https://{app}-8090.{BASE_DOMAIN}:{p}/")
        say(f"     curl --cacert {w}/demo-ca.cert https://{app}-8090.{BASE_DOMAIN}:{p}/")
        say(f"   container logs  https://{app}-8090.{BASE_DOMAIN}:{p}/logs/tapp_attest_1?text")
        say(f"     curl --cacert {w}/demo-ca.cert 'https://{app}-8090.{BASE_DOMAIN}:{p}"
            f"/logs/tapp_attest_1?text'")
        say(f"   own domain      https://{CUSTOM_NAME}:{p}/quote.json (TLS passthrough)")
        say(f"     curl --cacert {s.root_ca} https://{CUSTOM_NAME}:{p}/quote.json")
        say(f"   tproxy          https://localhost:{s.ports['tproxy_rpc']}/")
        say(f"     curl --cacert {s.root_ca} https://localhost:{s.ports['tproxy_rpc']}/")
        say(f"   configs         {s.kms_toml}  {s.tproxy_toml}  {s.teepod_toml}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--apps", required=True)
    ap.add_argument("--work")
    a = ap.parse_args()
    if os.geteuid() != 0:
        say("demo: needs root (network namespaces, WireGuard)")
        return 1
    t_make = float(os.environ.get("DEMO_T0") or 0) or None
    t0 = time.monotonic() - ((time.time() - t_make) if t_make else 0)
    check = os.environ.get("DEMO_CHECK") == "1"
    work = pathlib.Path(a.work or tempfile.mkdtemp(prefix="dstack-demo."))
    interrupted = []

    def on_signal(sig, _):
        interrupted.append(sig)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    say(f"== starting kms, tproxy, knot, a registry and teepod (work directory {work})")
    rc = 1
    s = Stack(work, a.build, a.image, a.apps)
    try:
        with s:
            say(f"   console: http://127.0.0.1:{s.ports['teepod']}/   "
                f"(stack up at {time.monotonic() - t0:.1f} s)")
            d = Demo(s, t0)
            d.deploy()
            d.wait_boot()
            say(f"== checking (CreateVm → first HTTPS 200 through tproxy: {d.first_200:.1f} s)")
            d.check_web()
            d.check_quote()
            d.check_passthrough()
            d.check_logs()
            d.check_tproxy()
            d.urls()
            since = os.environ.get("DEMO_SINCE", "make demo") if t_make else "start"
            say(f"demo ready in {d.elapsed():.1f} s from {since} "
                f"(CreateVm → first HTTPS 200: {d.first_200:.1f} s)")
            if not check:
                say("Ctrl-C stops the VM and every daemon")
                try:
                    while True:  # until Ctrl-C, or until a daemon stops working
                        time.sleep(2)
                        dead = s.dead()
                        if dead:
                            raise DemoFailed(f"{dead[0]} stopped: {printable(dead[1])}")
                except KeyboardInterrupt:
                    pass
            rc = 0
            say("== stopping the VM and the daemons")
    except KeyboardInterrupt:
        say("demo: interrupted; stopping the VM and the daemons")
        rc = 130
    except Exception as e:  # every failure ends here with its reason, the stack closed
        say(f"demo: FAILED: {e}")
        say(f"demo: logs are in {work}/logs and {work}/teepod/vm")
        rc = 1
    left = getattr(s, "close_errors", [])
    for e in left:
        say(f"demo: clean-up: {e}")
    # the work folder holds this demo's KMS root keys: kept only when asked for, or for the
    # logs of a failed run
    if rc != 1 and not a.work:
        shutil.rmtree(work, ignore_errors=True)
    if left:
        say("demo: stopped, but the clean-up failed (above)")
        return 1
    say("demo: stopped, nothing left running")
    return rc


if __name__ == "__main__":
    sys.exit(main())

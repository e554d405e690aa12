"""A fake Cloudflare API v4 (the DNS calls certbot makes) in front of a real knotd.

`Knot` runs an authoritative knotd for one zone on 127.0.0.1 (config, zone file, storage and
control socket in a temp dir) and edits it with `knotc zone-begin/zone-set/zone-unset/
zone-commit`, so that kdig sees what the API calls did.

`CloudflareFake` is an HTTP server on 127.0.0.1 in a thread of the test's process with
Cloudflare's envelope ({"success", "errors", "messages", "result"[, "result_info"]}), a bearer
token check, and:

    GET    /client/v4/zones?name=N                   the zone when N is its name
    GET    /client/v4/zones/<id>                     the zone with its name_servers
    GET    /client/v4/zones/<id>/dns_records?name=&type=&page=&per_page=
                                                     paginated (page_size caps per_page)
    POST   /client/v4/zones/<id>/dns_records         TXT {content} or CAA {data:{flags,tag,value}}
    DELETE /client/v4/zones/<id>/dns_records/<rid>   404 when absent
    POST   /__test/fail {"count": N, "status": 500, "after": K}
                                                     after K more calls that are served, the
                                                     next N API calls answer status

`loose_name_filter` makes listings ignore the name filter (every record of the type comes
back), so that the client's own exact-name filter is exercised. `publish = False` makes the API
accept records (and list and delete them) without ever writing them into knot: a DNS that never
propagates. `calls` records every API call
as (method, path with query)."""

import json
import os
import pathlib
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def _free_port():
    from conftest import free_port
    return free_port()


def _quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Knot:
    def __init__(self, tmp, zone, port=None):
        self.zone = zone.rstrip(".").lower()
        self.dir = pathlib.Path(tmp)
        self.port = int(port or _free_port())
        self.proc = None
        self.lock = threading.Lock()
        for d in ("db", "run", "zones"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        self.sock = self.dir / "run" / "knot.sock"
        if len(str(self.sock)) > 100:  # sun_path limit
            import tempfile
            self.sock = pathlib.Path(tempfile.mkdtemp(prefix="cfk")) / "knot.sock"

    @property
    def conf(self):
        return self.dir / "knot.conf"

    def start(self, timeout=15):
        z = self.zone + "."
        (self.dir / "zones" / f"{self.zone}.zone").write_text(
            f"$ORIGIN {z}\n$TTL 1\n"
            f"@ 1 IN SOA ns1.{z} hostmaster.{z} 1 3600 600 86400 1\n"
            f"@ 1 IN NS ns1.{z}\nns1.{z} 1 IN A 127.0.0.1\n")
        self.conf.write_text(f"""\
server:
    rundir: "{self.dir / 'run'}"
    listen: 127.0.0.1@{self.port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "{self.dir / 'db'}"
control:
    listen: "{self.sock}"
template:
  - id: default
    storage: "{self.dir / 'zones'}"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
    semantic-checks: off
zone:
  - domain: {self.zone}
""")
        if os.geteuid() == 0:
            self.conf.write_text(self.conf.read_text().replace(
                "server:\n", "server:\n    user: root:root\n", 1))
        self.log_file = open(self.dir / "knotd.log", "wb")
        self.proc = subprocess.Popen(["knotd", "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"knotd exited {self.proc.returncode}: {self.log()}")
            try:
                if self.query("@", "SOA") and self.sock.exists():
                    return self
            except (AssertionError, subprocess.TimeoutExpired):
                pass
            if time.time() > deadline:
                raise AssertionError(f"knotd does not answer after {timeout}s: {self.log()}")
            time.sleep(0.1)

    def log(self):
        try:
            return (self.dir / "knotd.log").read_text()[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc:
            self.log_file.close()

    def fqdn(self, name):
        n = name.rstrip(".").lower()
        if n in ("@", ""):
            n = self.zone
        return n + "."

    def _knotc(self, *args, check=True):
        p = subprocess.run(["knotc", "-s", str(self.sock), "-t", "10", *args],
                           capture_output=True, text=True, timeout=20)
        if check and p.returncode != 0:
            raise RuntimeError(f"knotc {args[0]}: {p.stdout}{p.stderr}")
        return p

    def edit(self, op, name, rtype, rdata, ttl=120):
        """op "set" or "unset" of one record, in its own transaction."""
        with self.lock:
            self._knotc("zone-begin", self.zone)
            try:
                if op == "set":
                    self._knotc("zone-set", self.zone, self.fqdn(name), str(ttl), rtype, rdata)
                else:
                    self._knotc("zone-unset", self.zone, self.fqdn(name), rtype, rdata)
                self._knotc("zone-commit", self.zone)
            except BaseException:
                self._knotc("zone-abort", self.zone, check=False)
                raise

    def query(self, name, rtype="TXT"):
        p = subprocess.run(["kdig", "@127.0.0.1", "-p", str(self.port), "+short", "+time=1",
                            "+retry=0", rtype, self.fqdn(name)],
                           capture_output=True, text=True, timeout=5)
        if p.returncode != 0:
            raise AssertionError(f"kdig failed ({p.returncode}): {p.stderr}{p.stdout}")
        return sorted(ln.strip() for ln in p.stdout.splitlines()
                      if ln.strip() and not ln.startswith(";;"))


class CloudflareFake:
    ZONE_ID = "023e105f4ecef8ad9ca31a8372d0c353"

    def __init__(self, knot, token, page_size=2, name_servers=("ns1.example.test",
                                                                "ns2.example.test")):
        self.knot = knot
        self.token = token
        self.page_size = page_size
        self.name_servers = list(name_servers)
        self.loose_name_filter = False
        self.publish = True
        self.records = {}  # id -> dict(id, type, name, content, data?, rdata)
        self.calls = []
        self.fail_count = 0
        self.fail_status = 500
        self.fail_after = 0
        self.lock = threading.Lock()
        self.httpd = None

    # server
    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n > 65536:
                    raise ValueError("body too long")
                return self.rfile.read(n) if n else b""

            def _send(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method):
                try:
                    body = self._body()
                    status, obj = fake._dispatch(method, self.path, self.headers, body)
                except Exception as e:  # a bug of the fake shows as a 500 with its text
                    status, obj = 500, _env(None, errors=[(9999, f"fake: {e!r}")])
                self._send(status, obj)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)

    @property
    def base(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def url(self):
        return self.base + "/client/v4"

    # test hooks (also reachable over HTTP: POST /__test/fail)
    def fail_next(self, count, status=500, after=0):
        with self.lock:
            self.fail_count, self.fail_status = int(count), int(status)
            self.fail_after = int(after)

    def api_calls(self, method=None, prefix=""):
        with self.lock:
            return [c for c in self.calls
                    if (method is None or c[0] == method) and c[1].startswith(prefix)]

    # the API
    def _dispatch(self, method, raw_path, headers, body):
        u = urlsplit(raw_path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        if u.path == "/__test/fail" and method == "POST":
            req = json.loads(body or b"{}")
            self.fail_next(req.get("count", 1), req.get("status", 500), req.get("after", 0))
            return 200, _env({})
        if not u.path.startswith("/client/v4/"):
            return 404, _env(None, errors=[(7000, "No route for that URI")])
        path = u.path[len("/client/v4"):]
        with self.lock:
            self.calls.append((method, path + (("?" + u.query) if u.query else "")))
            if self.fail_after > 0:
                self.fail_after -= 1
            elif self.fail_count > 0:
                self.fail_count -= 1
                st = self.fail_status
                return st, _env(None, errors=[(10000 + st, f"injected {st}")])
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 403, _env(None, errors=[(10000, "Authentication error")])
        parts = [p for p in path.split("/") if p]
        if parts == ["zones"] and method == "GET":
            name = q.get("name", "")
            zones = [self._zone()] if name.rstrip(".").lower() == self.knot.zone else []
            return 200, _env(zones, info={"page": 1, "per_page": 20, "count": len(zones),
                                          "total_count": len(zones), "total_pages": 1})
        if len(parts) < 2 or parts[0] != "zones" or parts[1] != self.ZONE_ID:
            return 404, _env(None, errors=[(7003, "Could not route to /zones/..., perhaps "
                                                  "your object identifier is invalid?")])
        if len(parts) == 2 and method == "GET":
            return 200, _env(self._zone())
        if len(parts) == 3 and parts[2] == "dns_records" and method == "GET":
            return self._list(q)
        if len(parts) == 3 and parts[2] == "dns_records" and method == "POST":
            return self._create(json.loads(body))
        if len(parts) == 4 and parts[2] == "dns_records" and method == "DELETE":
            return self._delete(parts[3])
        return 405, _env(None, errors=[(10405, "Method not allowed")])

    def _zone(self):
        return {"id": self.ZONE_ID, "name": self.knot.zone, "status": "active",
                "name_servers": self.name_servers}

    def _list(self, q):
        try:
            per_page = max(1, min(int(q.get("per_page", "100")), self.page_size))
            page = max(1, int(q.get("page", "1")))
        except ValueError:
            return 400, _env(None, errors=[(1004, "bad paging")])
        name = q.get("name", "").rstrip(".").lower()
        with self.lock:
            recs = [r for r in self.records.values()
                    if (not name or self.loose_name_filter or r["name"] == name)
                    and (not q.get("type") or r["type"] == q["type"])]
        total = len(recs)
        pages = max(1, (total + per_page - 1) // per_page)
        out = [{k: v for k, v in r.items() if k not in _PRIVATE}
               for r in recs[(page - 1) * per_page:page * per_page]]
        return 200, _env(out, info={"page": page, "per_page": per_page, "count": len(out),
                                    "total_count": total, "total_pages": pages})

    def _create(self, req):
        rtype, name, ttl = req.get("type"), str(req.get("name", "")), req.get("ttl", 1)
        name = name.rstrip(".").lower()
        if not (name == self.knot.zone or name.endswith("." + self.knot.zone)):
            return 400, _env(None, errors=[(1004, "DNS Validation Error: name outside zone")])
        if rtype == "TXT":
            content = req.get("content")
            if not isinstance(content, str):
                return 400, _env(None, errors=[(9021, "Invalid TXT content")])
            rec = {"type": "TXT", "name": name, "content": content, "rdata": _quote(content)}
        elif rtype == "CAA":
            d = req.get("data") or {}
            if (not isinstance(d.get("flags"), int) or not isinstance(d.get("tag"), str)
                    or not isinstance(d.get("value"), str)):
                return 400, _env(None, errors=[(1004, "DNS Validation Error: bad CAA data")])
            content = f'{d["flags"]} {d["tag"]} {_quote(d["value"])}'
            rec = {"type": "CAA", "name": name, "content": content,
                   "data": {"flags": d["flags"], "tag": d["tag"], "value": d["value"]},
                   "rdata": content}
        else:
            return 400, _env(None, errors=[(1004, f"unsupported type {rtype!r}")])
        with self.lock:
            for r in self.records.values():
                if r["type"] == rec["type"] and r["name"] == name and r["rdata"] == rec["rdata"]:
                    return 400, _env(None, errors=[(81058,
                                                    "An identical record already exists.")])
            rec.update(id=uuid.uuid4().hex, ttl=ttl, proxied=False, published=self.publish)
            self.records[rec["id"]] = rec
        if rec["published"]:
            self.knot.edit("set", name, rec["type"], rec["rdata"])
        return 200, _env({k: v for k, v in rec.items() if k not in _PRIVATE})

    def _delete(self, rid):
        with self.lock:
            rec = self.records.pop(rid, None)
        if rec is None:
            return 404, _env(None, errors=[(81044, "Record does not exist.")])
        if rec["published"]:
            self.knot.edit("unset", rec["name"], rec["type"], rec["rdata"])
        return 200, _env({"id": rid})


_PRIVATE = ("rdata", "published")  # the fake's own fields, never in an answer


def _env(result, errors=(), info=None):
    e = {"success": not errors, "errors": [{"code": c, "message": m} for c, m in errors],
         "messages": [], "result": result}
    if info is not None:
        e["result_info"] = info
    return e

#!/usr/bin/python3
"""A small PCCS-compatible HTTP server for tests: serves the recorded responses of
tests/data/pccs (see record.py there) on loopback, by path + query.

  pccs_server.py [--data DIR] [--host 127.0.0.1] [--port 0] [--default-set NAME]
                 [--lifetime SECONDS] [--exit-on-stdin-eof]

The chosen port is printed alone on the first line of stdout. Each recorded set is served under
"/<set>" (base URL http://127.0.0.1:PORT/<set>); with --default-set, also without the prefix.
Query values match case-insensitively (FMSPC), extra query parameters are ignored, unknown
paths / FMSPCs answer 404 like the PCS does.

Control endpoints (not counted):
  GET /__stats          {"requests": N, "by_path": {"/tcb": n, ...}, "failing": bool}
  GET /__fail?on=1|0    answer every collateral request with 503 while on
  GET /__delay?ms=N     wait N ms (at most 60000) before answering each collateral request
  GET /__reset          zero the counters
The server stops after --lifetime seconds (default 600), or when stdin closes with
--exit-on-stdin-eof, so a test that dies never leaves it behind for long.
"""
import argparse
import http.server
import json
import os
import pathlib
import sys
import threading
import time
import urllib.parse

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent / "data" / "pccs"


class State:
    def __init__(self, data_dir, default_set):
        self.data_dir = pathlib.Path(data_dir)
        index = json.loads((self.data_dir / "index.json").read_text())
        self.sets = index["sets"]
        self.default_set = default_set
        if default_set and default_set not in self.sets:
            raise SystemExit(f"unknown set {default_set}")
        self.lock = threading.Lock()
        self.requests = 0
        self.by_path = {}
        self.failing = False
        self.delay = 0.0  # seconds before answering a collateral request (/__delay?ms=N)

    def count(self, path):
        with self.lock:
            self.requests += 1
            self.by_path[path] = self.by_path.get(path, 0) + 1

    def find(self, set_name, path, query):
        for r in self.sets.get(set_name, []):
            if r["path"] != path:
                continue
            ok = True
            for k, v in r["query"].items():
                got = query.get(k)
                if not got or got[0].lower() != v.lower():
                    ok = False
                    break
            if ok:
                return r
        return None

    def load(self, route):
        body = (self.data_dir / route["body"]).read_bytes()
        headers = []
        for line in (self.data_dir / route["headers"]).read_text().splitlines():
            if line.strip():
                k, v = line.split(":", 1)
                headers.append((k.strip(), v.strip()))
        return body, headers


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pccs-test/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def reply(self, status, body, headers=(("Content-Type", "application/json"),)):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        st = self.server.state
        u = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(u.query)
        path = u.path
        if path == "/__stats":
            with st.lock:
                j = {"requests": st.requests, "by_path": dict(st.by_path), "failing": st.failing}
            return self.reply(200, json.dumps(j).encode())
        if path == "/__fail":
            with st.lock:
                st.failing = query.get("on", ["1"])[0] not in ("0", "false")
            return self.reply(200, b"{}")
        if path == "/__delay":
            with st.lock:
                st.delay = min(float(query.get("ms", ["0"])[0]), 60000.0) / 1000.0
            return self.reply(200, b"{}")
        if path == "/__reset":
            with st.lock:
                st.requests = 0
                st.by_path = {}
            return self.reply(200, b"{}")

        set_name = None
        parts = path.split("/", 2)
        if len(parts) >= 3 and parts[1] in st.sets:
            set_name, path = parts[1], "/" + parts[2]
        elif st.default_set:
            set_name = st.default_set
        st.count(path)
        with st.lock:
            failing, delay = st.failing, st.delay
        if delay:
            time.sleep(delay)
        if failing:
            return self.reply(503, b'{"error":"service unavailable (test)"}')
        if set_name is None:
            return self.reply(404, b"")
        route = st.find(set_name, path, query)
        if route is None:
            return self.reply(404, b"")
        body, headers = st.load(route)
        self.reply(route.get("status", 200), body, headers)

    def do_POST(self):
        self.reply(405, b"")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--default-set")
    ap.add_argument("--lifetime", type=float, default=600)
    ap.add_argument("--exit-on-stdin-eof", action="store_true")
    a = ap.parse_args()

    srv = Server((a.host, a.port), Handler)
    srv.state = State(a.data, a.default_set)
    print(srv.server_address[1], flush=True)

    def stop_later():
        srv.shutdown()

    timer = threading.Timer(a.lifetime, stop_later)
    timer.daemon = True
    timer.start()
    if a.exit_on_stdin_eof:
        def watch():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except OSError:
                pass
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()

"""tappd under bad input: oversized bodies, invalid JSON/protobuf, wrong types, unknown fields,
non-hex and over-long report data, bad event names, path traversal in container names,
slow-loris clients. Each gets a clear 4xx, leaves no partial event-log entry, and the daemon
keeps answering others. Also the command line (--check-config, --dump-config)."""
import json
import socket
import subprocess
import time

from test_tappd_common import (TAPPD, request, rpc, tappd, tappd_bin,  # noqa: F401
                               tappd_factory)


def n_events(t):
    r = t.dstack("GetQuote", {"report_data": ""})
    return len(json.loads(r["event_log"]))


def raw_exchange(target, data, timeout=10):
    """Sends raw bytes and returns everything read until the server closes (or timeout)."""
    if isinstance(target, tuple):
        s = socket.create_connection(target, timeout=timeout)
    else:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(target)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


def status_of(raw):
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.") else None


def test_oversized_body(tappd):
    size = 11 * 1024 * 1024
    head = (f"POST /GetQuote HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    out = raw_exchange(tappd.dstack_sock, head + b"{" * 65536)
    assert status_of(out) == 413
    # A chunked body over the cap, too.
    head = b"POST /GetQuote HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"100000\r\n" + b"a" * 0x100000 + b"\r\n"
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(tappd.dstack_sock)
    s.sendall(head)
    got = b""
    try:
        for _ in range(12):
            s.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    assert status_of(got) == 413
    assert tappd.dstack("Version")["version"]


def test_bad_json_and_types(tappd):
    before = n_events(tappd)
    cases = [
        ("/GetQuote", b'{"report_data":'),                 # truncated JSON
        ("/GetQuote", b'[1,2]'),                            # not an object
        ("/GetQuote", b'{"report_data": 5}'),               # wrong type
        ("/GetQuote", b'{"report_data": "zz"}'),            # not hex
        ("/GetQuote", b'{"report_data": "abc"}'),           # odd hex
        ("/GetQuote", b'{"report_data": "' + b"00" * 65 + b'"}'),  # longer than 64 bytes
        ("/GetKey", b'{"path": ["a"]}'),
        ("/GetTlsKey", b'{"alt_names": "x"}'),
        ("/GetTlsKey", b'{"alt_names": ["bad name"]}'),
        ("/EmitEvent", b'{"event": "", "payload": ""}'),
        ("/EmitEvent", b'{"event": "a\\nb", "payload": ""}'),
        ("/EmitEvent", b'{"event": "big", "payload": "' + b"00" * 70000 + b'"}'),
        ("/EmitEvent", b'{"event": "x", "payload": "nothex"}'),
        ("/Sign", b'{"algorithm": "rsa", "data": ""}'),
        ("/NoSuchMethod", b'{}'),
    ]
    for path, body in cases:
        st, h, out = request(tappd.dstack_sock, "POST", path, body,
                             {"Content-Type": "application/json"})
        assert 400 <= st < 500, (path, body[:40], st, out)
        assert "error" in json.loads(out), out
    # Nothing reached the event log.
    assert n_events(tappd) == before
    # Unknown fields are ignored; "0x" prefixes are accepted.
    r = tappd.dstack("GetQuote", {"report_data": "0xabcd", "unknown": {"x": 1}})
    assert r["report_data"].startswith("abcd00")
    # Garbage protobuf on the legacy socket.
    st, _, _ = request(tappd.tappd_sock, "POST", "/prpc/Tappd.DeriveKey", b"\x0a\xff\xff\xff\x0f")
    assert st == 400
    # Other HTTP methods.
    st, _, _ = request(tappd.dstack_sock, "DELETE", "/GetQuote")
    assert st == 405
    # A broken request line.
    out = raw_exchange(tappd.dstack_sock, b"GARBAGE\r\n\r\n")
    assert status_of(out) == 400
    assert tappd.alive()


def test_log_path_traversal(tappd):
    ext = tappd.external
    for path in ["/logs/..%2F..%2Fetc%2Fpasswd", "/logs/a%2Fb", "/logs/.hidden", "/logs/-x",
                 "/logs/a%00b", "/logs/" + "a" * 300, "/logs/a%20b", "/logs/"]:
        st, _, body = request(ext, "GET", path)
        assert st == 400, (path, st, body)
    st, _, _ = request(ext, "GET", "/logs/web?since=yesterday")
    assert st == 400
    st, _, _ = request(ext, "GET", "/logs/web?tail=-3")
    assert st == 400
    st, _, _ = request(ext, "POST", "/logs/web", b"")
    assert st == 405
    # No container engine here: 502, not a crash.
    st, _, _ = request(ext, "GET", "/logs/web")
    assert st == 502
    assert tappd.alive()


def test_slow_loris(tappd_factory):
    t = tappd_factory("[default]\nrequest_timeout = 2\nkeep_alive = 2\n")
    ext = t.external
    slow = socket.create_connection(ext, timeout=10)
    slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    idle = [socket.create_connection(ext, timeout=10) for _ in range(30)]
    t0 = time.time()
    closed_at = None
    while time.time() - t0 < 8:
        # Others are served meanwhile.
        st, _, _ = request(ext, "GET", "/prpc/Worker.Version", timeout=5)
        assert st == 200
        try:
            slow.sendall(b"X")
            time.sleep(0.4)
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.time()
            break
        slow.settimeout(0.01)
        try:
            data = slow.recv(4096)
            if data or data == b"":
                closed_at = time.time()
                if data:
                    assert status_of(data) == 408
                break
        except socket.timeout:
            pass
        slow.settimeout(10)
    assert closed_at is not None and closed_at - t0 < 6, "slow client was never cut off"
    slow.close()
    for s in idle:
        s.close()
    assert t.dstack("Version")["version"]


def test_cli(tappd_bin, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[default]\nworkerz = 1\n")
    p = subprocess.run([str(TAPPD), "-c", str(bad), "--check-config"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert p.returncode == 3 and b"workerz" in p.stderr
    bad.write_text("[internal]\naddress = \"unix:relative\"\n")
    p = subprocess.run([str(TAPPD), "-c", str(bad), "--dump-config"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert p.returncode == 3 and b"absolute" in p.stderr
    missing = tmp_path / "missing.toml"  # named once in the error
    p = subprocess.run([str(TAPPD), "-c", str(missing), "--check-config"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.returncode == 3 and p.stderr.decode().count(str(missing)) == 1, p.stderr
    p = subprocess.run([str(TAPPD), "--dump-config"], stdout=subprocess.PIPE, check=True)
    dump = p.stdout.decode()
    assert '[internal]\naddress = "unix:/var/run/tappd.sock"' in dump
    assert "[external-https.tls]" in dump
    # The dump is a valid config that gives the same dump.
    again = tmp_path / "again.toml"
    again.write_text(dump)
    p2 = subprocess.run([str(TAPPD), "-c", str(again), "--dump-config"], stdout=subprocess.PIPE,
                        check=True)
    assert p2.stdout.decode() == dump
    # --check-config also loads the app keys.
    dev = tmp_path / "dev"
    p = subprocess.run([str(TAPPD), "--dev", str(dev), "--check-config"], stdout=subprocess.PIPE,
                       check=True)
    assert b"k256 key" in p.stdout
    p = subprocess.run([str(TAPPD), "--bogus"], stderr=subprocess.PIPE)
    assert p.returncode == 2

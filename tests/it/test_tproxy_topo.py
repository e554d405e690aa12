"""Tests of the tproxy network harness itself (tproxy_topo.py), without tproxy: namespaces and
veths, wireguard-go peers (configured with `wg` and through the text UAPI), the HTTP/HTTPS/h2c
backends, knotd, and that everything is gone afterwards."""
import os
import pathlib
import stat

import pytest

from tproxy_topo import (WG_RUN_DIR, Topology, make_cert, netns_list, ns_connect, ns_run,
                         require, topo, wait_handshake, wg_dump, wg_genkey, wg_pubkey,
                         wg_uapi)  # noqa: F401  (topo is a fixture)


def b64_to_hex(k):
    import base64
    return base64.b64decode(k).hex()


def test_public_links(topo):
    for i in range(2):
        assert topo.ping(topo.cvm(i), topo.gw_ip(i), count=2, timeout=5) == 2
        assert topo.ping(topo.gw, topo.cvm_ip(i), count=1, timeout=5) == 1
    be = topo.http_backend(topo.gw, "0.0.0.0", body="public\n")
    r = topo.curl(topo.cvm(1), f"http://{topo.gw_ip(1)}:{be.port}/x")
    assert (r.status, r.body) == (200, b"public\n"), r
    assert r.headers["x-echo-client"] == topo.cvm_ip(1)
    # cvm namespaces are not joined to each other
    assert topo.ping(topo.cvm(0), topo.cvm_ip(1), count=1, timeout=1) == 0


def test_wireguard_both_ways(topo):
    gw_priv, gw_pub = wg_genkey()
    c_priv, c_pub = wg_genkey()
    assert wg_pubkey(gw_priv) == gw_pub
    gkf, ckf = topo.key_file(gw_priv, "gw"), topo.key_file(c_priv, "c0")
    assert stat.S_IMODE(os.stat(gkf).st_mode) == 0o600
    port = 51820
    g = topo.wg_up(topo.gw, "wgs", gkf, "10.77.0.1/24", listen_port=port)
    c = topo.wg_up(topo.cvm(0), "wgc", ckf, "10.77.0.2/24")
    assert g.name.startswith(topo.prefix) and len(g.name) <= 15
    assert g.sock == WG_RUN_DIR / f"{g.name}.sock" and g.sock.exists()
    g.peer(c_pub, "10.77.0.2/32")
    c.peer(gw_pub, ["10.77.0.0/24"], endpoint=(topo.gw_ip(0), port), keepalive=5)

    assert topo.ping(topo.cvm(0), "10.77.0.1", count=3, timeout=15) == 3, g.log()[-2000:]
    assert topo.ping(topo.gw, "10.77.0.2", count=3, timeout=10) == 3
    peer = wait_handshake(topo.gw, g.name, c_pub, timeout=10)
    assert peer["endpoint"].startswith(topo.cvm_ip(0) + ":")
    d = wg_dump(topo.cvm(0), c.name)
    assert d["public_key"] == c_pub and d["peers"][gw_pub]["keepalive"] == "5"

    # TCP both ways over the tunnel addresses, bound to the WireGuard address only
    be = topo.http_backend(topo.cvm(0), "10.77.0.2", body="over wg\n")
    r = topo.curl(topo.gw, f"http://10.77.0.2:{be.port}/p?q=1", "-H", "Host: app.example")
    assert r.status == 200 and r.body == b"over wg\n", r
    assert r.headers["x-echo-host"] == "app.example"
    assert r.headers["x-echo-path"] == "/p?q=1"
    assert r.headers["x-echo-client"] == "10.77.0.1"
    be2 = topo.http_backend(topo.gw, "10.77.0.1", body="back\n")
    s = ns_connect(topo.cvm(0), "10.77.0.1", be2.port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"back\n"), data
    # the backend is not reachable on the public address (bound to the WG one)
    r = topo.curl(topo.gw, f"http://{topo.cvm_ip(0)}:{be.port}/", timeout=3)
    assert r.status == 0


def test_wg_create_and_uapi(topo):
    """The way tproxy configures its own interface: wireguard-go only, then the text UAPI."""
    g = topo.wg_create(topo.gw, "tp")
    assert "errno=0" in g.uapi("get=1")
    gw_priv, gw_pub = wg_genkey()
    c_priv, c_pub = wg_genkey()
    reply = wg_uapi(g.name, f"set=1\nprivate_key={b64_to_hex(gw_priv)}\nlisten_port=51999\n"
                            f"replace_peers=true\npublic_key={b64_to_hex(c_pub)}\n"
                            f"replace_allowed_ips=true\nallowed_ip=10.78.0.2/32\n")
    assert reply.strip() == "errno=0", reply
    ns_run(topo.gw, ["ip", "addr", "add", "10.78.0.1/24", "dev", g.name])
    ns_run(topo.gw, ["ip", "link", "set", g.name, "up"])
    d = g.dump()
    assert d["public_key"] == gw_pub and d["listen_port"] == 51999
    assert d["peers"][c_pub]["allowed_ips"] == ["10.78.0.2/32"]

    c = topo.wg_up(topo.cvm(1), "c1", topo.key_file(c_priv), "10.78.0.2/24")
    c.peer(gw_pub, "10.78.0.0/24", endpoint=f"{topo.gw_ip(1)}:51999")
    assert topo.ping(topo.cvm(1), "10.78.0.1", count=2, timeout=15) == 2, g.log()[-2000:]


def test_knot_txt_and_reload(topo):
    require("knotd", "knotc", "kdig")
    dns = topo.knot("app.test", {"_dstack-app-address.foo": "abc123:8080"})
    assert dns.txt("_dstack-app-address.foo") == ["abc123:8080"]
    assert dns.txt("_dstack-app-address.foo.app.test.") == ["abc123:8080"]
    p = ns_run(topo.gw, ["kdig", "@127.0.0.1", "-p", dns.port, "+short", "TXT",
                         "_dstack-app-address.foo.app.test"])
    assert p.stdout.strip() == '"abc123:8080"'
    # knot listens in gw only
    p = ns_run(None, ["kdig", "@127.0.0.1", "-p", dns.port, "+short", "+time=1", "+retry=0",
                      "TXT", "_dstack-app-address.foo.app.test"], check=False, timeout=10)
    assert '"abc123:8080"' not in p.stdout

    long_value = "x" * 300 + ' "quoted" \\ done'
    dns.set_txt("_dstack-app-address.foo", "def456:443")
    dns.set_txt("_tapp-address.bar", [long_value, "second"])
    dns.add("www", "A", "10.1.2.3")
    dns.reload()
    assert dns.txt("_dstack-app-address.foo") == ["def456:443"]
    assert sorted(dns.txt("_tapp-address.bar")) == sorted([long_value, "second"])
    assert dns.query("www", "A") == ["10.1.2.3"]
    dns.delete("_tapp-address.bar")
    dns.reload()
    assert dns.txt("_tapp-address.bar") == []


def test_knot_default_namespace(tmp_path):
    require("knotd", "knotc", "kdig")
    with Topology(n_cvms=0, tmp=tmp_path) as t:
        dns = t.knot("example.test", [("_tapp-address.x", "TXT", '"v1"')], ns=None)
        assert dns.txt("_tapp-address.x") == ["v1"]
        dns.set_txt("_tapp-address.x", "v2")
        dns.reload()
        assert dns.txt("_tapp-address.x") == ["v2"]


def test_h2c_backend(topo):
    be = topo.h2c_backend(topo.cvm(0), body="h2 body\n")
    r = topo.curl(topo.cvm(0), f"http://127.0.0.1:{be.port}/a/b", "--http2-prior-knowledge",
                  "-H", "Host: h2.example")
    assert r.status == 200 and r.http_version == "2" and r.body == b"h2 body\n", (r, be.log())
    assert r.headers["x-echo-host"] == "h2.example" and r.headers["x-http2"] == "h2c"
    assert r.headers["x-echo-path"] == "/a/b"
    r = topo.curl(topo.gw, f"http://{topo.cvm_ip(0)}:{be.port}/", "--http2-prior-knowledge")
    assert r.status == 200 and r.http_version == "2", r


def test_tls_backend(topo, tmp_path):
    ca = make_cert(tmp_path / "ca", ["Test CA"], ca="self-ca", name="ca")
    cert, key = make_cert(tmp_path / "leaf", ["app.example", "*.app.example"], ca=ca)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    be = topo.tls_backend(topo.cvm(0), None, cert, key, body="tls\n")
    r = topo.curl(topo.gw, f"https://x.app.example:{be.port}/", "--cacert", ca[0],
                  "--resolve", f"x.app.example:{be.port}:{topo.cvm_ip(0)}")
    assert r.status == 200 and r.body == b"tls\n", (r, be.log())
    assert r.headers["x-echo-sni"] == "x.app.example"
    assert r.headers["x-echo-host"] == f"x.app.example:{be.port}"
    r = topo.curl(topo.gw, f"https://other.example:{be.port}/", "--cacert", ca[0],
                  "--resolve", f"other.example:{be.port}:{topo.cvm_ip(0)}")
    assert r.status == 0 and r.rc != 0  # name mismatch
    assert be.alive()


def _gone(prefix, pids, socks):
    left = [n for n in netns_list() if n.startswith(prefix)]
    alive = [p for p in pids if pathlib.Path(f"/proc/{p}").exists()
             and "zombie" not in pathlib.Path(f"/proc/{p}/status").read_text().lower()]
    return left, alive, [s for s in socks if s.exists()]


def test_cleanup(tmp_path):
    require("ip", "wireguard-go", "wg", "knotd", "knotc", "kdig")
    with Topology(n_cvms=2) as t:
        prefix, tmp = t.prefix, t.tmp
        priv, _ = wg_genkey()
        w = t.wg_up(t.gw, "wg0", t.key_file(priv), "10.79.0.1/24", listen_port=51820)
        w2 = t.wg_create(t.cvm(1), "x")
        be = t.http_backend(t.cvm(0))
        h2 = t.h2c_backend(t.cvm(1))
        dns = t.knot("c.test", {"a": "b"})
        # a stray process that nobody tracks
        stray = ns_run(t.cvm(0), ["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"]).stdout
        pids = [w.proc.pid, w2.proc.pid, be.proc.pid, h2.proc.pid, dns.proc.pid, int(stray)]
        socks = [w.sock, w2.sock]
        assert len([n for n in netns_list() if n.startswith(prefix)]) == 3
    assert _gone(prefix, pids, socks) == ([], [], [])
    assert not tmp.exists()

    # also when the body fails, and with a caller-provided tmp dir (kept)
    with pytest.raises(RuntimeError):
        with Topology(n_cvms=1, tmp=tmp_path) as t:
            prefix = t.prefix
            w = t.wg_create(t.cvm(0), "wg0")
            be = t.http_backend(t.cvm(0))
            pids, socks = [w.proc.pid, be.proc.pid], [w.sock]
            raise RuntimeError("test body failed")
    assert _gone(prefix, pids, socks) == ([], [], [])
    assert (tmp_path / prefix).is_dir()


def test_prefixes_unique(tmp_path):
    require("ip")
    with Topology(n_cvms=0, tmp=tmp_path) as a, Topology(n_cvms=0, tmp=tmp_path) as b:
        assert a.prefix != b.prefix
        assert not a.prefix.startswith(b.prefix) and not b.prefix.startswith(a.prefix)
        assert a.prefix.startswith(f"dsq{os.getpid() % 10000:04d}")
        with pytest.raises(ValueError):
            a.ifname("toolongsuffix")

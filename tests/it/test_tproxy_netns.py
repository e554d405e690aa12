"""tproxy end to end over real WireGuard (wireguard-go) in network namespaces: tproxy in "gw",
two simulated CVMs of one app in "c0"/"c1". Each CVM registers with its RA-TLS certificate over
the public link, brings up its WireGuard peer from the reply and serves HTTP and TLS on its
WireGuard address; clients in gw reach them through tproxy by SNI (curl --resolve, openssl), a
custom domain by TXT records from knot, and tproxy restarts without losing anything."""
import json
import subprocess
import time

import pytest

from tproxy_common import BASE, TPROXY, Cvm, Pki, Tproxy
from tproxy_topo import curl as ns_curl, ns_run, require, topo, wg_genkey  # noqa: F401

pytestmark = pytest.mark.skipif(not TPROXY.exists(), reason=f"tproxy not built at {TPROXY}")

WG_NET = "10.66.0"


def rpc_from(topo, i, t, cvm, method, data):
    """A pRPC call from cvm namespace i to tproxy over the public link."""
    r = ns_curl(topo.cvm(i), f"https://localhost:{t.rpc_port}/prpc/Tproxy.{method}?json",
                "--resolve", f"localhost:{t.rpc_port}:{topo.gw_ip(i)}",
                "--cacert", str(t.pki.path("ca.cert")), "--cert", str(cvm.cert),
                "--key", str(cvm.key), "-H", "Content-Type: application/json",
                "--data-binary", json.dumps(data))
    return r.status, (json.loads(r.body) if r.body.startswith(b"{") else r.body)


def bring_up(topo, i, reply, priv):
    """The CVM's side of the tunnel, from the RegisterCvm reply (as the guest's boot does)."""
    wg = reply["wg"]
    key = topo.key_file(priv, f"c{i}.key")
    iface = topo.wg_up(topo.cvm(i), f"c{i}", key, wg["client_ip"] + "/24")
    iface.peer(wg["server_public_key"], wg["server_ip"] + "/32",
               endpoint=wg["server_endpoint"], keepalive=1)
    return iface


def via_proxy(topo, t, host, *args, path="/"):
    return ns_curl(topo.gw, f"https://{host}:{t.proxy_port}{path}", "--resolve",
                   f"{host}:{t.proxy_port}:127.0.0.1", "--cacert",
                   str(t.pki.path("wild.cert")), *args)


@pytest.fixture
def world(topo, tmp_path):
    require("ip", "wireguard-go", "wg", "knotd", "kdig")
    pki = Pki(tmp_path / "pki")
    # gw: the interface tproxy configures through wireguard-go's control socket
    gw_if = topo.wg_create(topo.gw, "tp")
    ns_run(topo.gw, ["ip", "addr", "add", f"{WG_NET}.1/24", "dev", gw_if.name])
    ns_run(topo.gw, ["ip", "link", "set", gw_if.name, "up"])
    sim = tmp_path / "sim"
    subprocess.run([str(TPROXY.parents[1] / "tdxctl" / "tdxctl"), "sim", "init", str(sim)],
                   check=True, stdout=subprocess.DEVNULL, timeout=60)
    priv, _ = wg_genkey()
    c0 = Cvm(tmp_path, pki, "c0", sim_dir=sim)
    c1 = Cvm(tmp_path, pki, "c1", sim_dir=sim)  # same compose: a second instance of the app
    app = c0.app_id
    dns = topo.knot("example.org", {"_dstack-app-address.custom": f"{app}:8443",
                                    "_tapp-address.other": f"{app}:8443"})
    wg = (f'mode = "uapi"\ninterface = "{gw_if.name}"\nprivate_key = "{priv}"\n'
          f'listen_port = 51820\npoll_interval = 1\n')
    extra = f'dns_servers = "127.0.0.1:{dns.port}"\ndns_min_ttl = 0\n'
    t = Tproxy(tmp_path, pki, sim_dir=sim, wg=wg, ip_range=f"{WG_NET}.0/24",
               server_ip=f"{WG_NET}.1", netns=topo.gw, address="0.0.0.0", extra=extra,
               start=False)
    # the endpoint CVMs use: gw's address on the public links (any of them is local to gw)
    t.config = t.config.replace('endpoint = "127.0.0.1:51820"',
                                f'endpoint = "{topo.gw_ip(0)}:51820"')
    (t.dir / "tproxy.toml").write_text(t.config)
    t.start()
    ifaces, backends = [], []
    try:
        for i, c in enumerate((c0, c1)):
            st, reply = rpc_from(topo, i, t, c, "RegisterCvm", {"client_public_key": c.wg_pub})
            assert st == 200, (st, reply, t.log()[-2000:])
            assert reply["wg"]["client_ip"] == f"{WG_NET}.{2 + i}"
            ifaces.append(bring_up(topo, i, reply, c.wg_priv))
            ip = reply["wg"]["client_ip"]
            backends.append(topo.http_backend(topo.cvm(i), addr=ip, port=80, body=f"cvm{i}\n"))
            backends.append(topo.http_backend(topo.cvm(i), addr=ip, port=8080,
                                              body=f"cvm{i}-8080\n"))
            cert, key = pki.path("backend.cert"), pki.path("backend.key")
            backends.append(topo.tls_backend(topo.cvm(i), 8443, str(cert), str(key),
                                             body=f"cvm{i}-tls\n", addr=ip))
        yield topo, t, (c0, c1), dns
    finally:
        t.stop()


def test_wireguard_routes(world):
    topo, t, (c0, c1), dns = world
    app = c0.app_id
    # tproxy's own interface got both peers through the control socket
    dump = ns_run(topo.gw, ["wg", "show", t.config.split('interface = "')[1].split('"')[0],
                            "allowed-ips"]).stdout
    assert f"{WG_NET}.2/32" in dump and f"{WG_NET}.3/32" in dump
    # terminated, default port 80, spread over both instances
    seen = set()
    for _ in range(8):
        r = via_proxy(topo, t, f"{app}.{BASE}")
        assert r.status == 200, (r, t.log()[-2000:])
        seen.add(r.body.strip())
    assert seen == {b"cvm0", b"cvm1"}, t.log()[-3000:]
    # explicit port
    r = via_proxy(topo, t, f"{app}-8080.{BASE}")
    assert r.status == 200 and r.body.strip() in (b"cvm0-8080", b"cvm1-8080")
    assert r.headers["x-echo-client"].startswith(f"{WG_NET}.1")  # arrived over the tunnel
    # passthrough: the CVM's own certificate, end to end
    r = ns_curl(topo.gw, f"https://{app}-8443s.{BASE}:{t.proxy_port}/", "--resolve",
                f"{app}-8443s.{BASE}:{t.proxy_port}:127.0.0.1", "--cacert",
                str(t.pki.path("ca.cert")))
    assert r.status == 200 and r.body.strip() in (b"cvm0-tls", b"cvm1-tls")
    assert r.headers["x-echo-sni"] == f"{app}-8443s.{BASE}"
    # custom domains: TXT _dstack-app-address, and the legacy _tapp-address
    for name in ("custom.example.org", "other.example.org"):
        r = ns_curl(topo.gw, f"https://{name}:{t.proxy_port}/", "--resolve",
                    f"{name}:{t.proxy_port}:127.0.0.1", "--cacert", str(t.pki.path("ca.cert")))
        assert r.status == 200 and r.body.strip() in (b"cvm0-tls", b"cvm1-tls"), (name, r)
    # a name without a record
    r = ns_curl(topo.gw, f"https://nothing.example.org:{t.proxy_port}/", "--resolve",
                f"nothing.example.org:{t.proxy_port}:127.0.0.1", "-k")
    assert r.status == 0
    # openssl s_client through the tunnel
    p = ns_run(topo.gw, ["openssl", "s_client", "-connect", f"127.0.0.1:{t.proxy_port}",
                         "-servername", f"{app}.{BASE}", "-CAfile", str(t.pki.path("wild.cert")),
                         "-verify_return_error", "-quiet", "-ign_eof"],
               input="GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", check=False)
    assert "cvm" in p.stdout, p.stderr
    # handshakes were read back from the interface
    deadline = time.time() + 10
    while time.time() < deadline:
        r = ns_curl(topo.gw, f"https://localhost:{t.rpc_port}/prpc/Tproxy.List?json",
                    "--resolve", f"localhost:{t.rpc_port}:127.0.0.1", "--cacert",
                    str(t.pki.path("ca.cert")))
        hosts = json.loads(r.body)["hosts"]
        if all(h["last_handshake"] > 0 for h in hosts):
            break
        time.sleep(0.5)
    assert len(hosts) == 2 and all(h["last_handshake"] > 0 for h in hosts), hosts


def test_restart_keeps_tunnels(world):
    topo, t, (c0, c1), dns = world
    app = c0.app_id
    r = via_proxy(topo, t, f"{app}.{BASE}")
    assert r.status == 200
    t.stop()
    # the interface is reconfigured from the store by the next start
    t.start()
    seen = set()
    deadline = time.time() + 20
    while seen != {b"cvm0", b"cvm1"} and time.time() < deadline:
        r = via_proxy(topo, t, f"{app}.{BASE}")
        if r.status == 200:
            seen.add(r.body.strip())
    assert seen == {b"cvm0", b"cvm1"}, t.log()[-2000:]
    # the CVMs re-register (a reboot) and keep their addresses
    for i, c in enumerate((c0, c1)):
        st, reply = rpc_from(topo, i, t, c, "RegisterCvm", {"client_public_key": c.wg_pub})
        assert st == 200 and reply["wg"]["client_ip"] == f"{WG_NET}.{2 + i}"

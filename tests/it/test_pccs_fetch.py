"""Collateral fetching from a PCCS: tests/it/pccs_server.py serves recorded PCS responses
(tests/data/pccs), and `tdxctl verify --pccs-url` fetches, caches and verifies with them."""
import json
import pathlib
import select
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from conftest import REPO

SERVER = pathlib.Path(__file__).resolve().parent / "pccs_server.py"
DATA = REPO / "tests" / "data" / "pccs"

QVL_TDX_TIME = 1752919234
QVL_TDX_EXPIRY = 1752919235  # earliest nextUpdate (the PCK CRL's)
QVL_SGX_TIME = 1752919277


class Pccs:
    def __init__(self, root):
        self.root = root

    def base(self, set_name):
        return f"{self.root}/{set_name}"

    def get(self, path, timeout=10):
        with urllib.request.urlopen(self.root + path, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()

    def requests(self):
        return json.loads(self.get("/__stats")[2])["requests"]

    def fail(self, on):
        self.get(f"/__fail?on={1 if on else 0}")


@pytest.fixture
def pccs():
    p = subprocess.Popen([sys.executable, str(SERVER), "--lifetime", "300",
                          "--exit-on-stdin-eof"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        ready, _, _ = select.select([p.stdout], [], [], 15)
        assert ready, "pccs_server.py did not print its port"
        port = int(p.stdout.readline())
        yield Pccs(f"http://127.0.0.1:{port}")
    finally:
        p.stdin.close()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
        p.stdout.close()


# ---- the server itself ----------------------------------------------------------------------

def test_server_serves_recorded_bytes(pccs, vectors):
    coll = json.loads((vectors / "dcap-qvl" / "tdx_quote_collateral.json").read_text())
    st, hdrs, body = pccs.get("/dcap-qvl-tdx/tdx/certification/v4/tcb?fmspc=b0c06f000000")
    assert st == 200
    assert body == ('{"tcbInfo":' + coll["tcb_info"] + ',"signature":"'
                    + coll["tcb_info_signature"] + '"}').encode()
    assert urllib.parse.unquote(hdrs["TCB-Info-Issuer-Chain"]) == coll["tcb_info_issuer_chain"]
    st, hdrs, body = pccs.get("/dcap-qvl-tdx/sgx/certification/v4/pckcrl?ca=platform&encoding=der")
    assert body == bytes.fromhex(coll["pck_crl"])
    assert urllib.parse.unquote(hdrs["SGX-PCK-CRL-Issuer-Chain"]) == coll["pck_crl_issuer_chain"]
    st, _, body = pccs.get("/dcap-qvl-tdx/sgx/certification/v4/rootcacrl")
    assert bytes.fromhex(body.decode()) == bytes.fromhex(coll["root_ca_crl"])
    with pytest.raises(urllib.error.HTTPError) as e:
        pccs.get("/dcap-qvl-tdx/tdx/certification/v4/tcb?fmspc=000000000000")
    assert e.value.code == 404
    assert pccs.requests() == 4
    pccs.fail(True)
    with pytest.raises(urllib.error.HTTPError) as e:
        pccs.get("/dcap-qvl-tdx/tdx/certification/v4/qe/identity")
    assert e.value.code == 503
    pccs.fail(False)
    assert pccs.get("/dcap-qvl-tdx/tdx/certification/v4/qe/identity")[0] == 200
    assert pccs.requests() == 6


def test_recordings_up_to_date(tmp_path, vectors):
    """record.py reproduces the committed recordings byte for byte."""
    import shutil
    out = tmp_path / "pccs"
    shutil.copytree(DATA, out)
    subprocess.run([sys.executable, str(out / "record.py"), str(vectors)], check=True, timeout=60)
    for f in DATA.rglob("*"):
        if f.is_file():
            assert (out / f.relative_to(DATA)).read_bytes() == f.read_bytes(), f


# ---- tdxctl verify --pccs-url ---------------------------------------------------------------

@pytest.fixture
def verify(tdxctl):
    p = tdxctl.run("verify", "--help", check=False)
    if p.returncode != 0 or b"pccs-url" not in p.stdout + p.stderr:
        pytest.skip("tdxctl verify --pccs-url not built yet")

    def run(quote, url, now, cache_dir, check=True):
        return tdxctl.run("verify", "--quote", quote, "--pccs-url", url, "--now", now,
                          check=check, env={"DSTACK_DCAP_CACHE_DIR": str(cache_dir)})
    return run


def status_of(p):
    return json.loads(p.stdout)["status"]


def test_verify_tdx_via_pccs(verify, pccs, vectors, tmp_path):
    q = vectors / "dcap-qvl" / "tdx_quote"
    cache = tmp_path / "cache"
    p = verify(q, pccs.base("dcap-qvl-tdx"), QVL_TDX_TIME, cache)
    assert status_of(p) == "UpToDate"
    assert pccs.requests() == 4
    assert (cache / "tdx-b0c06f000000-platform.json").stat().st_mode & 0o777 == 0o600
    # Second verification: collateral from the cache, no request.
    p = verify(q, pccs.base("dcap-qvl-tdx"), QVL_TDX_TIME, cache)
    assert status_of(p) == "UpToDate"
    assert pccs.requests() == 4
    # PCCS-style base URL with the API suffix.
    p = verify(q, pccs.base("dcap-qvl-tdx") + "/sgx/certification/v4/", QVL_TDX_TIME,
               tmp_path / "cache2")
    assert status_of(p) == "UpToDate"
    assert pccs.requests() == 8


def test_verify_sgx_via_pccs(verify, pccs, vectors, tmp_path):
    p = verify(vectors / "dcap-qvl" / "sgx_quote", pccs.base("dcap-qvl-sgx"), QVL_SGX_TIME,
               tmp_path / "cache")
    j = json.loads(p.stdout)
    assert j["status"] == "ConfigurationAndSWHardeningNeeded"
    assert sorted(j["advisory_ids"]) == ["INTEL-SA-00289", "INTEL-SA-00615"]


def test_stale_collateral_never_used(verify, pccs, vectors, tmp_path):
    q = vectors / "dcap-qvl" / "tdx_quote"
    cache = tmp_path / "cache"
    assert status_of(verify(q, pccs.base("dcap-qvl-tdx"), QVL_TDX_TIME, cache)) == "UpToDate"
    pccs.fail(True)
    # Still valid: served from the cache while the PCCS is down.
    assert status_of(verify(q, pccs.base("dcap-qvl-tdx"), QVL_TDX_TIME, cache)) == "UpToDate"
    n = pccs.requests()
    # Past the earliest nextUpdate the cached entry is stale: re-fetch, which fails -> error.
    p = verify(q, pccs.base("dcap-qvl-tdx"), QVL_TDX_EXPIRY, cache, check=False)
    assert p.returncode != 0
    assert pccs.requests() > n
    pccs.fail(False)
    # Fresh collateral fetched at that time is expired too: the verifier says so.
    p = verify(q, pccs.base("dcap-qvl-tdx"), QVL_TDX_EXPIRY + 1, cache, check=False)
    assert p.returncode != 0


def test_verify_pccs_down_no_cache(verify, pccs, vectors, tmp_path):
    pccs.fail(True)
    p = verify(vectors / "dcap-qvl" / "tdx_quote", pccs.base("dcap-qvl-tdx"), QVL_TDX_TIME,
               tmp_path / "cache", check=False)
    assert p.returncode != 0

"""tdxctl verify: the DCAP verification table of tests/vectors/README.md, byte flips,
expired collateral, revoked PCK certificates and simulator quotes, through the CLI."""
import calendar
import json
import shutil
import subprocess
import time

import pytest

# quote, collateral (file or directory), time, status or None, advisories, error substring
ROWS = [
    ("dcap-qvl/tdx_quote", "dcap-qvl/tdx_quote_collateral.json", 1752919234, "UpToDate", [],
     None, "b0c06f000000", "TDX"),
    ("dcap-qvl/sgx_quote", "dcap-qvl/sgx_quote_collateral.json", 1752919277,
     "ConfigurationAndSWHardeningNeeded", ["INTEL-SA-00289", "INTEL-SA-00615"], None,
     "00a067110000", "SGX"),
    ("zkdcap/quote_tdx_00806f050000.dat", "zkdcap", 1737467060, "OutOfDate",
     ["INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"], None, "00806f050000", "TDX"),
    ("dcap-qvl/tdx_quote_outdated", "dcap-qvl/tdx_quote_outdated_collateral.json", 1774003274,
     None, None, "no matching TCB level", None, None),
    ("go-tdx-guest/tdx_prod_quote_SPR_E4.dat", "go-tdx-guest", 1688173200, None, None,
     "no matching TCB level", None, None),
    ("go-tdx-guest/tdx_prod_quote_SPR_E4.dat", "go-tdx-guest", 2619302400, None, None,
     "TCB info expired", None, None),
]


def verify(tdxctl, quote, collateral, now=None, *extra, env=None):
    args = ["verify", "--quote", quote, "--collateral", collateral]
    if now is not None:
        args += ["--now", now]
    p = tdxctl.run(*args, *extra, check=False, env=env)
    assert p.returncode in (0, 1), p.stderr
    out = p.stdout.decode()
    assert out.count("\n") == 1 or "--json" in extra, out
    return p.returncode, json.loads(out)


def unix(date):
    return calendar.timegm(time.strptime(date, "%Y-%m-%dT%H:%M:%SZ"))


@pytest.mark.parametrize("row", ROWS, ids=[f"{r[0]}@{r[2]}" for r in ROWS])
def test_table(tdxctl, vectors, row):
    quote, coll, now, status, adv, err, fmspc, tee = row
    rc, j = verify(tdxctl, vectors / quote, vectors / coll, now)
    if status is None:
        assert rc == 1
        assert list(j) == ["error"]
        assert err in j["error"]
        return
    assert rc == 0, j
    assert j["status"] == status
    assert j["advisory_ids"] == adv
    assert j["fmspc"] == fmspc
    assert j["tee_type"] == tee
    assert j["simulated"] is False
    # one second past the earliest nextUpdate the collateral is expired
    exp = unix(j["collateral_expiry"])
    rc, j2 = verify(tdxctl, vectors / quote, vectors / coll, exp)
    assert rc == 0 and j2 == j
    rc, j3 = verify(tdxctl, vectors / quote, vectors / coll, exp + 1)
    assert rc == 1
    assert f"expired at {j['collateral_expiry']}" in j3["error"]


def test_expired_without_now_suggests_now(tdxctl, vectors):
    """Old collateral checked at the current time: the JSON error as always, and a hint on
    stderr to pass --now with a time it was valid (the earliest nextUpdate)."""
    p = tdxctl.run("verify", "--quote", vectors / "dcap-qvl/tdx_quote", "--collateral",
                   vectors / "dcap-qvl/tdx_quote_collateral.json", check=False)
    assert p.returncode == 1
    assert "expired at" in json.loads(p.stdout)["error"]
    err = p.stderr.decode()
    assert "pass --now UNIX" in err and "earliest nextUpdate is 2025-07-19T10:00:35Z = 1752919235" \
        in err, err


def test_json_detail_and_hex(tdxctl, vectors, tmp_path):
    hexq = tmp_path / "q.hex"
    hexq.write_text("0x" + (vectors / "dcap-qvl/tdx_quote").read_bytes().hex() + "\n")
    rc, j = verify(tdxctl, hexq, vectors / "dcap-qvl/tdx_quote_collateral.json", 1752919234,
                   "--hex", "--json")
    assert rc == 0
    assert j["status"] == "UpToDate"
    assert j["platform_status"] == "UpToDate" and j["qe_status"] == "UpToDate"
    assert j["pck_ca"] == "platform"
    assert j["body"]["version"] == 4
    assert j["body"]["tee_type"] == "TDX"
    # hex text that is not hex
    hexq.write_text("zz")
    rc, j = verify(tdxctl, hexq, vectors / "dcap-qvl/tdx_quote_collateral.json", 1752919234,
                   "--hex")
    assert rc == 1 and "hex" in j["error"]


FLIPS = [
    (0x00, 3, "unsupported quote version"),
    (0x278, 0x10, "certification data size"),
    (0x1329, None, "PCK chain"),
    (0xF5F, None, "PCK chain"),
    (0xB77, None, "PCK chain"),
    (0x1343, None, "PCK chain"),
    (0x1E, 0x32, "quote signature invalid"),
    (0x3C, 0x32, "quote signature invalid"),
]


@pytest.mark.parametrize("off,val,err", FLIPS, ids=[hex(f[0]) for f in FLIPS])
def test_byte_flips(tdxctl, vectors, tmp_path, off, val, err):
    data = bytearray((vectors / "go-tdx-guest/tdx_prod_quote_SPR_E4.dat").read_bytes())
    data[off] = data[off] ^ 1 if val is None else val
    q = tmp_path / "q.dat"
    q.write_bytes(bytes(data))
    rc, j = verify(tdxctl, q, vectors / "go-tdx-guest", 1688173200)
    assert rc == 1
    assert err in j["error"]


def test_trailing_bytes(tdxctl, vectors, tmp_path):
    """Bytes after the signature data (real quotes are zero padded; this one by 70 bytes, like
    dstack's ra-tls/assets/tdx_quote) are accepted and counted."""
    data = (vectors / "dcap-qvl/tdx_quote").read_bytes()
    coll = vectors / "dcap-qvl/tdx_quote_collateral.json"
    q = tmp_path / "q.dat"
    for body, n in ((data, 70), (data[:-70], 0), (data + b"extra", 75)):
        q.write_bytes(body)
        rc, j = verify(tdxctl, q, coll, 1752919234)
        assert rc == 0 and j["status"] == "UpToDate", j
        assert j["trailing_bytes"] == n
    rc, j = verify(tdxctl, vectors / "zkdcap/quote_tdx_00806f050000.dat", vectors / "zkdcap",
                   1737467060)
    assert rc == 0 and j["trailing_bytes"] == 3065


# Certification data of dcap-qvl/tdx_quote: PCK chain PEM from byte 1258 (leaf), 3031
# (platform CA), 3987 (root) to the final "\n" (4934) and NUL (4935).
CHAIN_FLIPS = [  # all accepted before the chain text was checked strictly
    (4276, 0x01, "PCK chain"),  # in the root's subject: dropped, the chain anchored by name
    (3987, 0x01, "PCK chain"),  # the root's BEGIN line: the block was skipped as text
    (3962, 0x01, "PCK chain"),  # the platform CA's END line: took the root block with it
    (3966, 0x04, "PCK chain"),
    (4934, 0x01, "PCK chain"),  # the "\n" after the last END line
    (4935, 0x20, "PCK chain"),  # the final NUL
]


@pytest.mark.parametrize("off,mask,err", CHAIN_FLIPS, ids=[str(f[0]) for f in CHAIN_FLIPS])
def test_chain_text_flips(tdxctl, vectors, tmp_path, off, mask, err):
    """Single-bit flips in the PCK chain text that were accepted before."""
    data = bytearray((vectors / "dcap-qvl/tdx_quote").read_bytes())
    data[off] ^= mask
    q = tmp_path / "q.dat"
    q.write_bytes(bytes(data))
    rc, j = verify(tdxctl, q, vectors / "dcap-qvl/tdx_quote_collateral.json", 1752919234)
    assert rc == 1, j
    assert err in j["error"]


def test_intel_test_root_rejected(tdxctl, vectors, tmp_path):
    # the TCB info signed under Intel's *test* root
    c = json.loads((vectors / "dcap-qvl/tdx_quote_collateral.json").read_text())
    c["tcb_info_issuer_chain"] = (vectors / "dstack-teekit/intel-sample-tdx/tcbSignChain.pem"
                                  ).read_text()
    f = tmp_path / "c.json"
    f.write_text(json.dumps(c))
    rc, j = verify(tdxctl, vectors / "dcap-qvl/tdx_quote", f, 1752919234)
    assert rc == 1
    assert "root CA not trusted (Intel test root?)" in j["error"]


def test_usage(tdxctl, vectors):
    p = tdxctl.run("verify", "--collateral", vectors / "zkdcap", check=False)
    assert p.returncode == 2
    p = tdxctl.run("verify", "--quote", vectors / "dcap-qvl/tdx_quote", check=False)
    assert p.returncode == 2
    p = tdxctl.run("verify", "--quote", vectors / "dcap-qvl/tdx_quote", "--collateral",
                   vectors / "zkdcap", "--pccs-url", "http://127.0.0.1:1", check=False)
    assert p.returncode == 2
    p = tdxctl.run("verify", "--help")
    assert b"--allow-simulator" in p.stdout
    rc, j = verify(tdxctl, vectors / "dcap-qvl/tdx_quote", vectors / "no-such-dir", 1)
    assert rc == 1 and "collateral" in j["error"]


def test_pccs_unreachable(tdxctl, vectors, tmp_path):
    p = tdxctl.run("verify", "--quote", vectors / "dcap-qvl/tdx_quote", "--pccs-url",
                   "http://127.0.0.1:9", "--now", "1752919234", check=False,
                   env={"DSTACK_DCAP_CACHE_DIR": str(tmp_path / "cache")})
    assert p.returncode == 1
    assert "error" in json.loads(p.stdout)


def sim_quote(sim, tmp_path):
    q = tmp_path / "sim.quote"
    q.write_bytes(sim.tdxctl.run("quote", input=b"\x11" * 64).stdout)
    return q


def test_simulator(sim, tdxctl, vectors, tmp_path):
    q = sim_quote(sim, tmp_path)
    coll = sim.dir / "collateral"
    # not trusted without the flag
    rc, j = verify(tdxctl, q, coll)
    assert rc == 1 and "root CA not trusted" in j["error"]
    # with it (root from the collateral directory), as dcap-qvl JSON and as PCS files
    rc, j = verify(tdxctl, q, coll, None, "--allow-simulator")
    assert rc == 0, j
    assert j["status"] == "UpToDate" and j["simulated"] is True
    assert j["advisory_ids"] == [] and j["tee_type"] == "TDX"
    rc, j = verify(tdxctl, q, coll / "collateral.json", None, "--allow-simulator")
    assert rc == 0 and j["simulated"] is True
    pcs = tmp_path / "pcs"
    shutil.copytree(coll, pcs)
    (pcs / "collateral.json").unlink()
    rc, j = verify(tdxctl, q, pcs, None, "--allow-simulator")
    assert rc == 0 and j["simulated"] is True
    # the root of another simulator is not this one
    other = tmp_path / "other"
    tdxctl.run("sim", "init", other)
    rc, j = verify(tdxctl, q, coll, None, "--allow-simulator", "--sim-root",
                   other / "root_ca.pem")
    assert rc == 1 and "root CA not trusted" in j["error"]
    # collateral expired by one second
    rc, j = verify(tdxctl, q, coll, None, "--allow-simulator")
    exp = unix(j["collateral_expiry"])
    rc, j = verify(tdxctl, q, coll, exp + 1, "--allow-simulator")
    assert rc == 1 and "expired at" in j["error"]
    # an Intel quote with the simulator's collateral
    rc, j = verify(tdxctl, vectors / "dcap-qvl/tdx_quote", coll, None, "--allow-simulator")
    assert rc == 1


def openssl(*args, cwd=None):
    subprocess.run(["openssl", *map(str, args)], check=True, cwd=cwd, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE)


def make_crl(workdir, ca_cert, ca_key, revoked_cert, out_der):
    """A CRL by ca_cert listing revoked_cert, made with the openssl CLI."""
    workdir.mkdir()
    serial = subprocess.run(["openssl", "x509", "-in", revoked_cert, "-noout", "-serial"],
                            check=True, stdout=subprocess.PIPE).stdout.decode()
    serial = serial.strip().split("=")[1]
    subject = subprocess.run(["openssl", "x509", "-in", revoked_cert, "-noout", "-subject",
                              "-nameopt", "compat"], check=True,
                             stdout=subprocess.PIPE).stdout.decode().strip()[len("subject="):]
    stamp = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() - 3600))
    (workdir / "index.txt").write_text(
        f"R\t491231235959Z\t{stamp}\t{serial}\tunknown\t{subject}\n")
    (workdir / "crlnumber").write_text("01\n")
    (workdir / "ca.cnf").write_text(
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\n"
        "default_md = sha256\ndefault_crl_days = 1\n")
    openssl("ca", "-config", "ca.cnf", "-gencrl", "-keyfile", ca_key, "-cert", ca_cert,
            "-out", "crl.pem", cwd=workdir)
    openssl("crl", "-in", workdir / "crl.pem", "-outform", "der", "-out", out_der)


def test_revoked_pck(sim, tdxctl, tmp_path):
    q = sim_quote(sim, tmp_path)
    coll = tmp_path / "coll"
    shutil.copytree(sim.dir / "collateral", coll)
    (coll / "collateral.json").unlink()
    rc, j = verify(tdxctl, q, coll, None, "--allow-simulator", "--sim-root",
                   sim.dir / "root_ca.pem")
    assert rc == 0, j
    # the PCK certificate in the PCK CRL of the simulator's platform CA
    make_crl(tmp_path / "ca1", sim.dir / "pck_ca.pem", sim.dir / "pck_ca.key",
             sim.dir / "pck.pem", coll / "pck_crl.der")
    rc, j = verify(tdxctl, q, coll, None, "--allow-simulator", "--sim-root",
                   sim.dir / "root_ca.pem")
    assert rc == 1
    assert j["error"] == "PCK chain: certificate revoked"
    # the platform CA in the root CA CRL
    shutil.copy(sim.dir / "collateral" / "pck_crl.der", coll / "pck_crl.der")
    make_crl(tmp_path / "ca2", sim.dir / "root_ca.pem", sim.dir / "root_ca.key",
             sim.dir / "pck_ca.pem", coll / "root_ca_crl.der")
    rc, j = verify(tdxctl, q, coll, None, "--allow-simulator", "--sim-root",
                   sim.dir / "root_ca.pem")
    assert rc == 1
    assert "certificate revoked" in j["error"]

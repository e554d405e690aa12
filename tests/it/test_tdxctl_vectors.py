"""tdxctl quote-info and eventlog replay on real vectors (tests/vectors)."""
import json

import pytest

import quoteparse

QUOTES = [
    # path, hex, version, tee_type, body_type, fmspc (from the PCK leaf)
    ("dcap-qvl/tdx_quote", False, 4, "TDX", "td10", "b0c06f000000"),
    ("dcap-qvl/tdx-quote.hex", True, 4, "TDX", "td10", None),
    ("dcap-qvl/quote-from-tappd.hex", True, 4, "TDX", "td10", None),
    ("dcap-qvl/tdx_quote_outdated", False, 5, "TDX", "td15", "90c06f000000"),
    ("dcap-qvl/sgx_quote", False, 3, "SGX", "sgx", "00a067110000"),
    ("zkdcap/quote_tdx_00806f050000.dat", False, 4, "TDX", "td10", "00806f050000"),
    ("go-tdx-guest/tdx_prod_quote_SPR_E4.dat", False, 4, "TDX", "td10", None),
    ("go-tdx-guest/ccel/cos-113-tdx-quote.dat", False, 4, "TDX", "td10", None),
    ("dstack/ra-tls_tdx_quote", False, 4, "TDX", "td10", None),
]

TD_KEYS = ["tee_tcb_svn", "mr_seam", "mr_signer_seam", "seam_attributes", "td_attributes",
           "xfam", "mr_td", "mr_config_id", "mr_owner", "mr_owner_config", "rt_mr0", "rt_mr1",
           "rt_mr2", "rt_mr3", "report_data"]
SGX_KEYS = ["cpu_svn", "misc_select", "attributes", "mr_enclave", "mr_signer", "isv_prod_id",
            "isv_svn", "report_data"]


def load_quote(path, hexfmt):
    data = path.read_bytes()
    if hexfmt:
        t = data.decode().strip()
        data = bytes.fromhex(t[2:] if t.startswith("0x") else t)
    return data


@pytest.mark.parametrize("rel,hexfmt,version,tee,body,fmspc", QUOTES,
                         ids=[q[0] for q in QUOTES])
def test_quote_info_vectors(tdxctl, vectors, rel, hexfmt, version, tee, body, fmspc):
    path = vectors / rel
    args = ["quote-info"] + (["--hex"] if hexfmt else []) + [path]
    p = tdxctl.run(*args)
    assert p.stderr == b""
    info = json.loads(p.stdout)
    assert isinstance(info, dict)
    assert info["version"] == version
    assert info["tee_type"] == tee
    assert info["body_type"] == body
    assert info["att_key_type"] == 2
    assert info["qe_vendor_id"] == "939a7233f79c4ca9940a0db3957f0607"
    ref = quoteparse.parse(load_quote(path, hexfmt))
    for k in (TD_KEYS + (["tee_tcb_svn2", "mr_service_td"] if body == "td15" else [])
              if tee == "TDX" else SGX_KEYS):
        assert info[k] == ref[k], k
    for k in ("user_data", "qe_svn", "pce_svn", "signature", "attestation_key", "quote_size"):
        assert info[k] == ref[k], k
    if fmspc:
        assert info["fmspc"].lower() == fmspc


def test_quote_info_dcap_qvl_snapshot_values(tdxctl, vectors):
    """Spot values from dcap-qvl's parse snapshot of the same quote."""
    info = tdxctl.json("quote-info", vectors / "dcap-qvl/tdx_quote")
    assert info["user_data"] == "889b7d6ff9df2405b240a830e73faf3d00000000"
    assert info["tee_tcb_svn"] == "06010300000000000000000000000000"
    assert info["mr_seam"].startswith("5b38e33a6487958b72c3c12a938eaa5e")
    assert info["quote_size"] < (vectors / "dcap-qvl/tdx_quote").stat().st_size


def test_quote_info_hex_equals_binary(tdxctl, vectors):
    a = tdxctl.json("quote-info", vectors / "dcap-qvl/tdx_quote")
    data = (vectors / "dcap-qvl/tdx_quote").read_bytes()
    b = tdxctl.json("quote-info", "--hex", "-", input=("0x" + data.hex()).encode())
    assert a == b


# Expected RTMRs of the CCEL logs (vectors/README.md); "0" = 48 zero bytes.
CCEL = {
    "trustee/eventlog/CCEL_data": (
        "2dc712306a963eadb894ad47dbaa17df44814151555aee11cbb843becca88950ffd079664902e6f22c66f7c8213543f4",
        "0fa3be56af61208bbd179dc7b124988eb929319154663c539d6f46445ecac2fec287075047ff7bd1922829fec28cd3cf",
        "0", "0"),
    "trustee/eventlog/CCEL_data_ovmf": (
        "8566f998798db09443b244c62de9a3041fb02e2e6936c4396d784bba2e90177329ec5aba3bb484404f2ab9cc90abe193",
        "775b9f6bfe99f8a31396f0d0218e67ffa796d3b96ccf961cbb0deba48c79c00f082cda1a5567c1c16305f1fc210c13c6",
        "94eaf7a7bf398ed8d888c91057ae0261802e4f3df084213a76ca7f0b5055ac9d2241de43cd58d9e8b49c503bbf25f34a",
        "0"),
    "trustee/eventlog/CCEL_data_grub": (
        "cec0a104f691f60da2387fea3c2de00c4ac035e2bb479ff02edcce69039d9e9907f0b3e55031da3dc7038f423adebd79",
        "6c289e0c62182d41ebe97bdbc9872d10998a08eaa86adcdc684001a363207ee72942c7522cdf00a4bbc3d784bed7b670",
        "08919d017ba0e52cd6d966351c7de16fe76c1d3d3d3da4554239e4c7d16cb8b82a94e7eaea3a0e6e18eb690b999fd31e",
        "0"),
    "trustee/eventlog/CCEL_data_gcp": (
        "3300980705adf09d28b707b79699d9874892164280832be2c386a715b6e204e0897fb564a064f810659207ba862b304f",
        "204d49f78d29918fe7b2f694e76653861a0c2a018987d2c3a54266eff737232524cf0af68c4d180e2f8c2c0937f21967",
        "0", "0"),
    "trustee/eventlog/CCEL_data_grub_gke": (
        "bc9945139042cf2cc75caf920aa57f14884ecfd7e893bccc51250c8ce90eb53ce72741e6adaa18183eb1331a87d4544a",
        "c17cb288a4dee302bb9ed8d27257a168f3264ad68cab53757f37eeaa7039657fa887cad65cf910e0fdc435ff110f8a7b",
        "334aeba2c985f8886cea97d1ecffbd512769d528b9a94009583db667ad7d2faa7d37fa145d75b192ceee2d2f10b2eb6d",
        "0"),
    "go-tdx-guest/ccel/ccel_data.dat": (
        "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6",
        "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1",
        "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1",
        "0"),
    "dstack/ccel.bin": (
        "274c2344116db7c663470693b5ba62b8621eac28cb41d2f816ddf188f9f423f900a1c44d32386fd3c993dc814e62af9d",
        "bdcf4ee0f7fdfe7c73fbb19ded73193aee23a6726b86d3b282ea097cf4c9ed7a0db21b5c1ccd513e410d90e310836b26",
        "0", "0"),
}


@pytest.mark.parametrize("rel", sorted(CCEL))
def test_eventlog_replay_ccel(tdxctl, vectors, rel):
    p = tdxctl.run("eventlog", "replay", vectors / rel)
    assert p.stderr == b""
    got = json.loads(p.stdout)
    assert sorted(got) == ["rtmr0", "rtmr1", "rtmr2", "rtmr3"]
    for i, want in enumerate(CCEL[rel]):
        assert got[f"rtmr{i}"] == ("00" * 48 if want == "0" else want), f"rtmr{i}"


def test_eventlog_replay_stdin(tdxctl, vectors):
    data = (vectors / "dstack/ccel.bin").read_bytes()
    got = tdxctl.json("eventlog", "replay", "-", input=data)
    assert got["rtmr0"] == CCEL["dstack/ccel.bin"][0]


def test_eventlog_ccel_matches_quote(tdxctl, vectors):
    """The cos-113 quote's RTMR0..2 equal the replay of the log its machine wrote."""
    info = tdxctl.json("quote-info", vectors / "go-tdx-guest/ccel/cos-113-tdx-quote.dat")
    got = tdxctl.json("eventlog", "replay", vectors / "go-tdx-guest/ccel/ccel_data.dat")
    for i in range(3):
        assert got[f"rtmr{i}"] == info[f"rt_mr{i}"]


def test_eventlog_replay_sm3_log_rejected(tdxctl, vectors):
    p = tdxctl.run("eventlog", "replay", vectors / "trustee/eventlog/CCEL_data_csv",
                   check=False)
    assert p.returncode == 1
    assert p.stdout == b""
    assert len(p.stderr.decode().strip().splitlines()) == 1


def test_eventlog_replay_json(tdxctl, tmp_path):
    import hashlib
    d = [hashlib.sha384(b"a").digest(), hashlib.sha384(b"b").digest()]
    seed = "".join(json.dumps({"imr": 3, "event_type": 1, "digest": x.hex(),
                               "associated_data": n}, separators=(",", ":")) + "\n"
                   for x, n in zip(d, ["app-id", "compose-hash"]))
    f = tmp_path / "seed.jsonl"
    f.write_text(seed)
    m = bytes(48)
    for x in d:
        m = hashlib.sha384(m + x).digest()
    got = tdxctl.json("eventlog", "replay", f)
    assert got == {"rtmr0": "00" * 48, "rtmr1": "00" * 48, "rtmr2": "00" * 48,
                   "rtmr3": m.hex()}
    # Newest format: a JSON array of events (digest given; no runtime type so not recomputed).
    arr = [{"imr": 3, "event_type": 1, "digest": x.hex(), "event": n, "event_payload": ""}
           for x, n in zip(d, ["a", "b"])]
    f2 = tmp_path / "arr.json"
    f2.write_text(json.dumps(arr))
    assert tdxctl.json("eventlog", "replay", f2)["rtmr3"] == m.hex()
    # One bad line fails the whole log.
    f.write_text(seed + "garbage\n")
    p = tdxctl.run("eventlog", "replay", f, check=False)
    assert p.returncode == 1 and p.stdout == b""
    assert len(p.stderr.decode().strip().splitlines()) == 1

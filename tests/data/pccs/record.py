#!/usr/bin/python3
"""Builds the recorded PCCS / Intel PCS responses in this directory from the test vectors
(tests/vectors): one sub-directory per set, body files, header files ("Name: value" lines)
and index.json, which tests/it/pccs_server.py serves by path + query.

Run from anywhere: python3 tests/data/pccs/record.py [VECTORS_DIR]. The output is committed;
re-running it reproduces the same bytes.

Sets:
  dcap-qvl-tdx, dcap-qvl-sgx, dcap-qvl-tdx-outdated: rebuilt byte-exactly from the dcap-qvl
    collateral JSON (body {"tcbInfo":<tcb_info>,"signature":"<hex>"}, chain headers URL-encoded
    PEM, PCK CRL DER, root CA CRL served as hex text like PCCS does).
  zkdcap: the zkdcap PCS files (TDX + SGX TCB info and QE identity, platform + processor PCK CRL,
    root CA CRL as DER); the TCB chain header is tcb_signing_cert.pem + the Intel root, the PCK
    CRL chain header the intermediate + root from the quote's PCK chain (zkdcap has no header).
  go-tdx-guest: the go-tdx-guest PCS samples, with the older "SGX-TCB-Info-Issuer-Chain"
    header spelling and the v4 "PCK-CRL-Issuer-Chain" one.
  dcap-qvl-tdx-pcs: like dcap-qvl-tdx but without /rootcacrl (as the Intel PCS); the root CA
    CRL is served at /IntelSGXRootCA.der for a configured root CRL URL.
"""
import json
import pathlib
import re
import sys
import urllib.parse

HERE = pathlib.Path(__file__).resolve().parent
VECTORS = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "tests" / "vectors"

PEM_RE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", re.S)


def enc(pem):
    """URL-encodes a PEM chain the way the PCS does (everything but unreserved characters)."""
    if isinstance(pem, bytes):
        pem = pem.decode()
    return urllib.parse.quote(pem, safe="")


class Set:
    def __init__(self, name):
        self.name = name
        self.dir = HERE / name
        self.dir.mkdir(exist_ok=True)
        self.routes = []

    def add(self, path, query, body_name, body, headers, ctype):
        (self.dir / body_name).write_bytes(body)
        hdr_name = body_name.rsplit(".", 1)[0] + ".hdr"
        lines = [f"Content-Type: {ctype}"] + [f"{k}: {v}" for k, v in headers]
        (self.dir / hdr_name).write_text("\n".join(lines) + "\n")
        self.routes.append({"path": path, "query": query, "status": 200,
                            "body": f"{self.name}/{body_name}",
                            "headers": f"{self.name}/{hdr_name}"})


def qvl_set(name, coll_file, tee, ca, root_crl_route=True):
    c = json.loads((VECTORS / "dcap-qvl" / coll_file).read_text())
    fmspc = json.loads(c["tcb_info"])["fmspc"]
    s = Set(name)
    tcb = ('{"tcbInfo":' + c["tcb_info"] + ',"signature":"' + c["tcb_info_signature"] + '"}').encode()
    s.add(f"/{tee}/certification/v4/tcb", {"fmspc": fmspc}, "tcb.json", tcb,
          [("TCB-Info-Issuer-Chain", enc(c["tcb_info_issuer_chain"]))], "application/json")
    qe = ('{"enclaveIdentity":' + c["qe_identity"] + ',"signature":"' + c["qe_identity_signature"]
          + '"}').encode()
    s.add(f"/{tee}/certification/v4/qe/identity", {}, "qe_identity.json", qe,
          [("SGX-Enclave-Identity-Issuer-Chain", enc(c["qe_identity_issuer_chain"]))],
          "application/json")
    s.add("/sgx/certification/v4/pckcrl", {"ca": ca, "encoding": "der"}, f"pckcrl_{ca}.der",
          bytes.fromhex(c["pck_crl"]),
          [("SGX-PCK-CRL-Issuer-Chain", enc(c["pck_crl_issuer_chain"]))], "application/pkix-crl")
    if root_crl_route:
        s.add("/sgx/certification/v4/rootcacrl", {}, "rootcacrl.hex", c["root_ca_crl"].encode(),
              [], "application/x-pem-file")
    else:
        s.add("/IntelSGXRootCA.der", {}, "IntelSGXRootCA.der", bytes.fromhex(c["root_ca_crl"]),
              [], "application/pkix-crl")
    return s


def zkdcap_set():
    z = VECTORS / "zkdcap"
    root_pem = (VECTORS / "root-ca" / "Intel_SGX_Root_CA.pem").read_bytes()
    if not root_pem.endswith(b"\n"):
        root_pem += b"\n"
    quote = (z / "quote_tdx_00806f050000.dat").read_bytes()
    certs = PEM_RE.findall(quote)
    assert len(certs) == 3, "zkdcap quote PCK chain"
    pck_chain = b"".join(c if c.endswith(b"\n") else c + b"\n" for c in certs[1:])
    tcb_chain = (z / "tcb_signing_cert.pem").read_bytes()
    if not tcb_chain.endswith(b"\n"):
        tcb_chain += b"\n"
    tcb_chain += root_pem
    s = Set("zkdcap")
    for tee, f in (("tdx", "tcbinfov3_00806f050000.json"), ("sgx", "tcbinfov3_00906ED50000.json")):
        body = (z / f).read_bytes()
        fmspc = json.loads(body)["tcbInfo"]["fmspc"]
        s.add(f"/{tee}/certification/v4/tcb", {"fmspc": fmspc}, f"tcb_{tee}_{fmspc.lower()}.json",
              body, [("TCB-Info-Issuer-Chain", enc(tcb_chain))], "application/json")
    for tee in ("tdx", "sgx"):
        s.add(f"/{tee}/certification/v4/qe/identity", {}, f"qe_identity_{tee}.json",
              (z / f"qeidentityv2_{tee}.json").read_bytes(),
              [("SGX-Enclave-Identity-Issuer-Chain", enc(tcb_chain))], "application/json")
    # The processor CRL's issuer is the Processor CA, which is not in this quote's chain: its
    # chain header is left to the platform one (only the platform CRL is used with this quote).
    for ca in ("platform", "processor"):
        s.add("/sgx/certification/v4/pckcrl", {"ca": ca, "encoding": "der"}, f"pckcrl_{ca}.der",
              (z / f"pck_{ca}_crl.der").read_bytes(),
              [("SGX-PCK-CRL-Issuer-Chain", enc(pck_chain))], "application/pkix-crl")
    s.add("/sgx/certification/v4/rootcacrl", {}, "rootcacrl.der",
          (z / "intel_root_ca_crl.der").read_bytes(), [], "application/pkix-crl")
    return s


def go_tdx_guest_set():
    g = VECTORS / "go-tdx-guest"
    s = Set("go-tdx-guest")
    body = (g / "sample_tcbInfo_response").read_bytes()
    fmspc = json.loads(body)["tcbInfo"]["fmspc"]
    s.add("/tdx/certification/v4/tcb", {"fmspc": fmspc}, "tcb.json", body,
          [("SGX-TCB-Info-Issuer-Chain", enc((g / "tcbInfoIssuerChain.pem").read_bytes()))],
          "application/json")
    s.add("/tdx/certification/v4/qe/identity", {}, "qe_identity.json",
          (g / "sample_qeIdentity_response").read_bytes(),
          [("SGX-Enclave-Identity-Issuer-Chain",
            enc((g / "qeIdentityIssuerChain.pem").read_bytes()))], "application/json")
    s.add("/sgx/certification/v4/pckcrl", {"ca": "platform", "encoding": "der"},
          "pckcrl_platform.der", (g / "pckcrl").read_bytes(),
          [("PCK-CRL-Issuer-Chain", enc((g / "pckCrlIssuerChain.pem").read_bytes()))],
          "application/pkix-crl")
    s.add("/sgx/certification/v4/rootcacrl", {}, "rootcacrl.der", (g / "rootcrl.der").read_bytes(),
          [], "application/pkix-crl")
    return s


def main():
    sets = [
        qvl_set("dcap-qvl-tdx", "tdx_quote_collateral.json", "tdx", "platform"),
        qvl_set("dcap-qvl-sgx", "sgx_quote_collateral.json", "sgx", "processor"),
        qvl_set("dcap-qvl-tdx-outdated", "tdx_quote_outdated_collateral.json", "tdx", "platform"),
        qvl_set("dcap-qvl-tdx-pcs", "tdx_quote_collateral.json", "tdx", "platform",
                root_crl_route=False),
        zkdcap_set(),
        go_tdx_guest_set(),
    ]
    index = {"comment": "Recorded PCCS/PCS responses; built by record.py from tests/vectors",
             "sets": {s.name: s.routes for s in sets}}
    (HERE / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

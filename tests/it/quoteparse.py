"""A small independent reader of DCAP quote headers and bodies, to cross-check tdxctl."""
import struct

TD10_FIELDS = [
    ("tee_tcb_svn", 16), ("mr_seam", 48), ("mr_signer_seam", 48), ("seam_attributes", 8),
    ("td_attributes", 8), ("xfam", 8), ("mr_td", 48), ("mr_config_id", 48), ("mr_owner", 48),
    ("mr_owner_config", 48), ("rt_mr0", 48), ("rt_mr1", 48), ("rt_mr2", 48), ("rt_mr3", 48),
    ("report_data", 64),
]
TD15_EXTRA = [("tee_tcb_svn2", 16), ("mr_service_td", 48)]
SGX_FIELDS = [
    ("cpu_svn", 16), ("misc_select", 4), (None, 28), ("attributes", 16), ("mr_enclave", 32),
    (None, 32), ("mr_signer", 32), (None, 96), ("isv_prod_id", 2), ("isv_svn", 2), (None, 60),
    ("report_data", 64),
]


def parse(q: bytes) -> dict:
    version, att_key_type, tee_type, qe_svn, pce_svn = struct.unpack_from("<HHIHH", q, 0)
    out = {
        "version": version, "att_key_type": att_key_type, "tee_type_raw": tee_type,
        "qe_svn": qe_svn, "pce_svn": pce_svn,
        "qe_vendor_id": q[12:28].hex(), "user_data": q[28:48].hex(),
    }
    off = 48
    if version == 5:
        body_type, body_size = struct.unpack_from("<HI", q, 48)
        off += 6
    elif tee_type == 0x81:
        body_type, body_size = 2, 584
    else:
        body_type, body_size = 1, 384
    out["body_type"] = {1: "sgx", 2: "td10", 3: "td15"}[body_type]
    fields = SGX_FIELDS if body_type == 1 else TD10_FIELDS + (TD15_EXTRA if body_type == 3 else [])
    p = off
    for name, n in fields:
        if name:
            raw = q[p:p + n]
            if name in ("misc_select", "isv_prod_id", "isv_svn"):
                out[name] = int.from_bytes(raw, "little")
            else:
                out[name] = raw.hex()
        p += n
    assert p == off + body_size
    sig_len = struct.unpack_from("<I", q, p)[0]
    out["signed_len"] = p
    out["signature"] = q[p + 4:p + 68].hex()
    out["attestation_key"] = q[p + 68:p + 132].hex()
    out["quote_size"] = p + 4 + sig_len
    return out

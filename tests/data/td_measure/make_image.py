#!/usr/bin/python3
"""Writes the synthetic image folders the td_measure tests measure (run once; the output is
committed next to this script):

  img/       kernel (a small PE32+ signed with osslsigncode, so it carries a certificate table),
             initrd, metadata.json (no firmware: simulated MRTD)
  img-tdvf/  the same kernel and initrd and a small firmware with TDVF metadata (ovmf.fd)

The PE lists its sections out of file order and has bytes after the last section, so the
Authenticode rules (sorting, trailing data, excluded fields) all matter.
Usage: make_image.py OUTDIR (needs osslsigncode and openssl)."""
import json
import os
import struct
import subprocess
import sys
import tempfile


def pe_image():
    file_align = 0x200
    # (name, file offset, raw bytes) - listed in the section table in this order
    secs = [
        (b".data", 0x600, bytes((i * 7 + 3) & 0xFF for i in range(0x200))),
        (b".text", 0x200, bytes((i * 13 + 1) & 0xFF for i in range(0x400))),
        (b".bss", 0, b""),  # no raw data: not hashed
    ]
    trailing = b"trailing-bytes-after-the-sections!!!!!!!"  # 40 bytes, file stays 8-aligned
    nsec = len(secs)
    e_lfanew = 0x80
    opt_size = 240  # PE32+ with 16 data directories
    size_of_headers = 0x200
    out = bytearray(size_of_headers)
    out[0:2] = b"MZ"
    struct.pack_into("<I", out, 0x3C, e_lfanew)
    out[e_lfanew:e_lfanew + 4] = b"PE\0\0"
    coff = e_lfanew + 4
    struct.pack_into("<HHIIIHH", out, coff, 0x8664, nsec, 0x5F5E100, 0, 0, opt_size, 0x0206)
    opt = coff + 20
    struct.pack_into("<HBBIIIIIQIIHHHHHHIIIIHHQQQQII", out, opt,
                     0x20B, 2, 20, 0x400, 0x200, 0, 0x1000, 0x1000, 0x140000000,
                     0x1000, file_align, 0, 0, 0, 0, 0, 0, 0, 0x4000, size_of_headers,
                     0xDEADBEEF,  # CheckSum: excluded from the hash
                     10, 0, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
    sec_table = opt + opt_size
    for i, (name, off, raw) in enumerate(secs):
        struct.pack_into("<8sIIIIIIHHI", out, sec_table + 40 * i, name, max(len(raw), 0x100),
                         0x1000 * (i + 1), len(raw), off if raw else 0, 0, 0, 0, 0, 0x60000020)
    body = bytearray(0x800 - size_of_headers)
    for name, off, raw in secs:
        if raw:
            body[off - size_of_headers:off - size_of_headers + len(raw)] = raw
    return bytes(out) + bytes(body) + trailing


def guid(s):
    a, b, c, d, e = s.split("-")
    return (bytes.fromhex(a)[::-1] + bytes.fromhex(b)[::-1] + bytes.fromhex(c)[::-1] +
            bytes.fromhex(d) + bytes.fromhex(e))


def tdvf_image():
    """64 KiB: BFV data at 0x1000 (8 KiB, MR.EXTEND), the TDVF descriptor at 0x100, and the
    OVMF GUIDed table before the last 32 bytes."""
    size = 0x10000
    fw = bytearray(size)
    for i in range(0x2000):
        fw[0x1000 + i] = (i * 31 + 5) & 0xFF
    sections = [
        # data_offset, raw_size, gpa, mem_size, type, attributes
        (0x1000, 0x2000, 0xFFFF0000, 0x2000, 0, 1),   # BFV, MR.EXTEND
        (0x3000, 0x0800, 0x00800000, 0x2000, 1, 1),   # CFV: raw shorter than memory
        (0, 0, 0x00809000, 0x1000, 2, 0),             # TD HOB: page add only
        (0, 0, 0x01000000, 0x4000, 4, 2),             # PermMem: PAGE.AUG, nothing
    ]
    for i in range(0x800):
        fw[0x3000 + i] = (i * 3) & 0xFF
    desc = 0x100
    struct.pack_into("<4sIII", fw, desc, b"TDVF", 16 + 32 * len(sections), 1, len(sections))
    for i, s in enumerate(sections):
        struct.pack_into("<IIQQII", fw, desc + 16 + 32 * i, *s)
    # GUIDed table: [metadata offset entry][footer] ending at size - 32
    entry = struct.pack("<I", size - desc) + struct.pack("<H", 4 + 18) + \
        guid("e47a6535-984a-4798-865e-4685a7bf8ec2")
    other = b"\x11" * 6 + struct.pack("<H", 6 + 18) + guid("00000000-1111-2222-3333-444444444444")
    table = other + entry
    footer_len = len(table) + 18
    table += struct.pack("<H", footer_len) + guid("96b582de-1fb2-45f7-baea-a366c55a082d")
    end = size - 32
    fw[end - len(table):end] = table
    return bytes(fw)


def main():
    out = sys.argv[1]
    with tempfile.TemporaryDirectory() as t:
        with open(os.path.join(t, "u.efi"), "wb") as f:
            f.write(pe_image())
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        os.path.join(t, "k.pem"), "-out", os.path.join(t, "c.pem"), "-subj",
                        "/CN=dstack td_measure test", "-days", "3650"], check=True,
                       capture_output=True)
        subprocess.run(["osslsigncode", "sign", "-h", "sha384", "-certs", os.path.join(t, "c.pem"),
                        "-key", os.path.join(t, "k.pem"), "-in", os.path.join(t, "u.efi"),
                        "-out", os.path.join(t, "s.efi")], check=True, capture_output=True)
        kernel = open(os.path.join(t, "s.efi"), "rb").read()
    initrd = bytes((i * 5 + 7) & 0xFF for i in range(3000))
    meta = {"kernel": "bzImage", "initrd": "initramfs.cpio.gz",
            "cmdline": "console=ttyS0 dstack.rootfs_hash=ab12 caf\u00e9 \U0001F600",
            "version": "0.0.1"}
    for name, extra in (("img", {}), ("img-tdvf", {"bios": "ovmf.fd"})):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "bzImage"), "wb").write(kernel)
        open(os.path.join(d, "initramfs.cpio.gz"), "wb").write(initrd)
        open(os.path.join(d, "metadata.json"), "w").write(json.dumps({**meta, **extra}) + "\n")
        if extra:
            open(os.path.join(d, "ovmf.fd"), "wb").write(tdvf_image())


if __name__ == "__main__":
    main()

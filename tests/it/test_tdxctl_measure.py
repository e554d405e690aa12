"""tdxctl measure: MRTD and RTMR0-2 of an image folder, checked against a computation written
here from the rules alone (Python hashlib, the Authenticode digest from osslsigncode), the CCEL it
writes replayed by tdxctl eventlog, the errors, and the Authenticode digest of a real Debian
kernel against osslsigncode."""
import glob
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess

import pytest

from conftest import BUILD, REPO

DATA = REPO / "tests" / "data" / "td_measure"
OSSL = shutil.which("osslsigncode")


def sha384(b):
    return hashlib.sha384(b).digest()


def replay(digests):
    mr = bytes(48)
    for d in digests:
        mr = sha384(mr + d)
    return mr


def ossl_digest(path):
    """The SHA-384 Authenticode digest osslsigncode computes for a file it can verify."""
    p = subprocess.run([OSSL, "verify", "-in", str(path)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    text = p.stdout.decode(errors="replace")
    assert "Message digest algorithm  : SHA384" in text, text
    m = re.search(r"Calculated message digest : ([0-9A-F]{96})", text)
    assert m, text
    return bytes.fromhex(m.group(1))


def var_data(guid, name, data=b""):
    return guid + struct.pack("<QQ", len(name), len(data)) + name.encode("utf-16-le") + data


GLOBAL = bytes.fromhex("61dfe48bca93d211aa0d00e098032b8c")
IMAGE_DB = bytes.fromhex("cbb219d73a3d9645a3bcdad00e67656f")
BOOT0000 = bytes.fromhex(
    "090100002c0055006900410070007000000004071400c9bdb87cebf8344faaea3ee4af6516a1040614"
    "0021aa2c4614760345836e8ab6f46623317fff0400")


def expected(img, vcpus, memory_mb, kernel_digest, mrtd_tdvf=None):
    meta = json.loads((img / "metadata.json").read_text())
    fw = (img / meta["bios"]).read_bytes() if "bios" in meta else b""
    fw_hash = sha384(fw)
    sizes = struct.pack("<II", vcpus, memory_mb)
    rtmr0 = replay(
        [sha384(b"dstack-sim/rtmr0/td-hob/v1" + sizes),
         sha384(b"dstack-sim/rtmr0/cfv/v1" + fw_hash)] +
        [sha384(var_data(GLOBAL, n)) for n in ("SecureBoot", "PK", "KEK")] +
        [sha384(var_data(IMAGE_DB, n)) for n in ("db", "dbx")] +
        [sha384(bytes(4))] +
        [sha384(b"dstack-sim/rtmr0/acpi/v1" + bytes([i]) + sizes) for i in range(3)] +
        [sha384(b"\0\0"), sha384(BOOT0000)])
    rtmr1 = replay([kernel_digest,
                    sha384(b"Calling EFI Application from Boot Option"),
                    sha384(bytes(4)),
                    sha384(b"Exit Boot Services Invocation"),
                    sha384(b"Exit Boot Services Returned with Success")])
    opts = (meta.get("cmdline", "") + " initrd=initrd").encode("utf-16-le") + b"\0\0"
    rtmr2 = replay([sha384(opts), sha384((img / meta["initrd"]).read_bytes())])
    mrtd = mrtd_tdvf if mrtd_tdvf is not None else sha384(b"dstack-sim/mrtd/v1" + fw_hash)
    return {"mrtd": mrtd.hex(), "rtmr0": rtmr0.hex(), "rtmr1": rtmr1.hex(),
            "rtmr2": rtmr2.hex()}


def tdvf_mrtd(fw):
    """MRTD replayed from TDVF metadata (TDX module ABI: MEM.PAGE.ADD / MR.EXTEND blocks)."""
    end = len(fw) - 32
    table_len = struct.unpack_from("<H", fw, end - 18)[0]
    lo, pos = end - table_len, end - 18
    meta_guid = bytes.fromhex("35657ae44a989847865e4685a7bf8ec2")
    desc = None
    while pos - 18 >= lo:
        elen = struct.unpack_from("<H", fw, pos - 18)[0]
        if fw[pos - 16:pos] == meta_guid:
            desc = len(fw) - struct.unpack_from("<I", fw, pos - 22)[0]
            break
        pos -= elen
    assert desc is not None and fw[desc:desc + 4] == b"TDVF"
    n = struct.unpack_from("<I", fw, desc + 12)[0]
    stream = b""
    for i in range(n):
        off, raw, gpa, size, _typ, attr = struct.unpack_from("<IIQQII", fw, desc + 16 + 32 * i)
        mem = fw[off:off + raw] + bytes(size - raw)
        for page in range(size // 4096):
            if not attr & 2:
                stream += (b"MEM.PAGE.ADD".ljust(16, b"\0") +
                           struct.pack("<Q", gpa + page * 4096)).ljust(128, b"\0")
            if attr & 1:
                for c in range(16):
                    at = page * 4096 + c * 256
                    stream += (b"MR.EXTEND".ljust(16, b"\0") +
                               struct.pack("<Q", gpa + at)).ljust(128, b"\0")
                    stream += mem[at:at + 256]
    return sha384(stream)


needs_ossl = pytest.mark.skipif(OSSL is None, reason="osslsigncode is not installed "
                                "(scripts/deps.sh installs it)")


@needs_ossl
@pytest.mark.parametrize("name", ["img", "img-tdvf"])
@pytest.mark.parametrize("vcpus,memory,memory_mb", [(1, "512", 512), (4, "2G", 2048)])
def test_measure_matches_rules(tdxctl, tmp_path, name, vcpus, memory, memory_mb):
    img = DATA / name
    kd = ossl_digest(img / "bzImage")
    assert tdxctl.run("measure", "--pe", img / "bzImage").stdout.decode().strip() == kd.hex()
    mrtd = tdvf_mrtd((img / "ovmf.fd").read_bytes()) if name == "img-tdvf" else None
    want = expected(img, vcpus, memory_mb, kd, mrtd)
    ccel = tmp_path / "ccel.bin"
    got = tdxctl.json("measure", img, "--vcpu", vcpus, "--memory", memory, "--json",
                      "--ccel", ccel)
    assert got["simulated"] == (["rtmr0"] if mrtd else ["mrtd", "rtmr0"])
    for k, v in want.items():
        assert got[k] == v, k
    # the boot event log replays to the same registers (RTMR3 untouched)
    rep = tdxctl.json("eventlog", "replay", ccel)
    assert [rep["rtmr0"], rep["rtmr1"], rep["rtmr2"], rep["rtmr3"]] == \
        [want["rtmr0"], want["rtmr1"], want["rtmr2"], "00" * 48]
    # the text output carries the same values
    text = tdxctl.run("measure", img, "--vcpu", vcpus, "--memory", memory).stdout.decode()
    assert f"rtmr1: {want['rtmr1']}\n" in text and "(simulated)" in text
    assert text.startswith(f"mrtd:  {want['mrtd']}")


def copy_image(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_measure_changes(tdxctl, tmp_path):
    img = copy_image(DATA / "img", tmp_path / "img")

    def m(*extra):
        return tdxctl.json("measure", img, "--vcpu", 2, "--memory", "1G", "--json", *extra)

    base = m()
    assert tdxctl.json("measure", img, "--vcpu", 3, "--memory", "1G", "--json")["rtmr0"] != \
        base["rtmr0"]
    meta = json.loads((img / "metadata.json").read_text())
    meta["cmdline"] += " x"
    (img / "metadata.json").write_text(json.dumps(meta))
    now = m()
    assert [k for k in base if base[k] != now[k]] == ["rtmr2"]


def test_measure_errors(tdxctl, tmp_path):
    img = copy_image(DATA / "img", tmp_path / "img")
    p = tdxctl.run("measure", img, check=False)
    assert p.returncode == 2 and b"--vcpu and --memory are required" in p.stderr
    for bad in (["--vcpu", "0", "--memory", "1G"], ["--vcpu", "x", "--memory", "1G"],
                ["--vcpu", "1", "--memory", "1.5G"], ["--vcpu", "1", "--memory", "0"],
                ["--vcpu", "1", "--memory", "1000K"]):
        p = tdxctl.run("measure", img, *bad, check=False)
        assert p.returncode == 2, bad
    p = tdxctl.run("measure", "--vcpu", "1", "--memory", "1G", check=False)
    assert p.returncode == 2
    p = tdxctl.run("measure", img, "--vcpu", "1", "--memory", "1G", "--bogus", check=False)
    assert p.returncode == 2
    # a bad image: the reason from image_meta_load
    meta = json.loads((img / "metadata.json").read_text())
    meta["kernel"] = "bz"
    (img / "metadata.json").write_text(json.dumps(meta))
    p = tdxctl.run("measure", img, "--vcpu", "1", "--memory", "1G", check=False)
    assert p.returncode == 1 and p.stdout == b""
    assert 'metadata.json: kernel "bz" does not exist' in p.stderr.decode()
    meta["kernel"] = "../img/bzImage"
    (img / "metadata.json").write_text(json.dumps(meta))
    p = tdxctl.run("measure", img, "--vcpu", "1", "--memory", "1G", check=False)
    assert p.returncode == 1 and b"not a plain relative name" in p.stderr
    # a kernel that is not a PE
    meta["kernel"] = "initramfs.cpio.gz"
    (img / "metadata.json").write_text(json.dumps(meta))
    p = tdxctl.run("measure", img, "--vcpu", "1", "--memory", "1G", check=False)
    assert p.returncode == 1 and b"not a well-formed PE/COFF image" in p.stderr
    p = tdxctl.run("measure", "--pe", img / "initramfs.cpio.gz", check=False)
    assert p.returncode == 1 and b"not a well-formed PE/COFF image" in p.stderr
    p = tdxctl.run("measure", tmp_path / "none", "--vcpu", "1", "--memory", "1G", check=False)
    assert p.returncode == 1 and b"none" in p.stderr


def debian_kernel():
    """A signed Debian cloud kernel: $DSTACK_TEST_KERNEL, or downloaded once with apt-get into
    the build folder. None when neither works (no network)."""
    if os.environ.get("DSTACK_TEST_KERNEL"):
        return os.environ["DSTACK_TEST_KERNEL"]
    cache = BUILD / "test-cache" / "debian-kernel"
    found = glob.glob(str(cache / "x" / "boot" / "vmlinuz-*"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    try:
        dep = subprocess.run(["apt-cache", "depends", "linux-image-6.12-cloud-amd64"],
                             stdout=subprocess.PIPE, timeout=60, check=True).stdout.decode()
        m = re.search(r"Depends: (linux-image-6\.12\S+-cloud-amd64)\b", dep)
        if not m:
            return None
        subprocess.run(["apt-get", "download", m.group(1)], cwd=cache, timeout=600, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deb = glob.glob(str(cache / "*.deb"))[0]
        subprocess.run(["dpkg-deb", "-x", deb, str(cache / "x")], timeout=300, check=True)
        os.unlink(deb)
        for d in ("lib", "usr", "etc"):  # keep the kernel only
            shutil.rmtree(cache / "x" / d, ignore_errors=True)
    except (subprocess.SubprocessError, OSError, IndexError):
        return None
    found = glob.glob(str(cache / "x" / "boot" / "vmlinuz-*"))
    return found[0] if found else None


@needs_ossl
def test_authenticode_debian_kernel(tdxctl, tmp_path):
    k = debian_kernel()
    if not k:
        pytest.skip("no Debian kernel (set DSTACK_TEST_KERNEL or allow apt-get download)")
    # Debian signs with SHA-256; re-sign a copy with SHA-384 so osslsigncode computes that
    # digest. The certificate table is excluded, so every variant hashes the same.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    tmp_path / "k.pem", "-out", tmp_path / "c.pem", "-subj", "/CN=t", "-days",
                    "1"], check=True, capture_output=True, timeout=60)
    subprocess.run([OSSL, "remove-signature", "-in", k, "-out", tmp_path / "u.efi"], check=True,
                   capture_output=True, timeout=120)
    subprocess.run([OSSL, "sign", "-h", "sha384", "-certs", tmp_path / "c.pem", "-key",
                    tmp_path / "k.pem", "-in", tmp_path / "u.efi", "-out", tmp_path / "s.efi"],
                   check=True, capture_output=True, timeout=120)
    want = ossl_digest(tmp_path / "s.efi").hex()
    for f in (k, tmp_path / "u.efi", tmp_path / "s.efi"):
        assert tdxctl.run("measure", "--pe", f).stdout.decode().strip() == want, f
    # one byte of code changed: another digest
    data = bytearray(open(k, "rb").read())
    data[len(data) // 2] ^= 1
    (tmp_path / "m.efi").write_bytes(bytes(data))
    assert tdxctl.run("measure", "--pe", tmp_path / "m.efi").stdout.decode().strip() != want

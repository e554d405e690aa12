"""tdxctl hash (iohash), hex, help texts and error behaviour."""
import hashlib
import os

import pytest

DATA = bytes(range(256)) * 1000 + b"tail"

ALGS = ["sha256", "sha384", "sha512", "sha224", "sha512-224", "sha512-256", "sha3-224",
        "sha3-256", "sha3-384", "sha3-512"]


def py_hash(alg, data):
    name = {"sha512-224": "sha512_224", "sha512-256": "sha512_256"}.get(alg, alg.replace("-", "_"))
    return hashlib.new(name, data).hexdigest()


@pytest.mark.parametrize("alg", ALGS)
def test_hash_stdin_to_stdout(tdxctl, alg):
    p = tdxctl.run("hash", alg, input=DATA)
    assert p.stdout == DATA
    assert p.stderr.decode() == py_hash(alg, DATA) + "\n"


def test_hash_blake2(tdxctl):
    for alg, ref in (("blake2b512", hashlib.blake2b(DATA)),
                     ("blake2b256", hashlib.blake2b(DATA, digest_size=32)),
                     ("blake2s256", hashlib.blake2s(DATA))):
        p = tdxctl.run("hash", alg, "-o", "!", input=DATA)
        assert p.stdout == b""
        assert p.stderr.decode() == ref.hexdigest() + "\n"


def test_hash_keccak_known_vectors(tdxctl):
    p = tdxctl.run("hash", "keccak256", "-o", "!", input=b"")
    assert p.stderr.decode().strip() == \
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    p = tdxctl.run("hash", "keccak256", "-o", "!", input=b"abc")
    assert p.stderr.decode().strip() == \
        "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"


def test_hash_files_and_binary(tdxctl, tmp_path):
    src, dst, hf = tmp_path / "in", tmp_path / "out", tmp_path / "h"
    src.write_bytes(DATA)
    p = tdxctl.run("hash", "sha256", "-i", src, "-o", dst, "-t", hf)
    assert p.stdout == b"" and p.stderr == b""
    assert dst.read_bytes() == DATA
    assert hf.read_text() == hashlib.sha256(DATA).hexdigest() + "\n"
    p = tdxctl.run("hash", "sha384", "-b", "-i", src, "-o", "!", "-t", "-")
    assert p.stdout == hashlib.sha384(DATA).digest()
    # Options after the algorithm or before it (iohash order).
    p = tdxctl.run("hash", "-o", "!", "-t", "-", "sha3-256", input=b"x")
    assert p.stdout.decode() == hashlib.sha3_256(b"x").hexdigest() + "\n"
    assert [f.name for f in tmp_path.iterdir() if ".tmp." in f.name] == []


def test_hash_errors(tdxctl, tmp_path):
    p = tdxctl.run("hash", "md5", input=b"x", check=False)
    assert p.returncode != 0 and p.stdout == b""
    assert len(p.stderr.decode().strip().splitlines()) == 1
    out = tmp_path / "missing" / "out"
    p = tdxctl.run("hash", "sha256", "-o", out, input=b"x", check=False)
    assert p.returncode == 1 and p.stdout == b""
    assert len(p.stderr.decode().strip().splitlines()) == 1
    assert not out.exists()
    p = tdxctl.run("hash", "sha256", "-i", tmp_path / "nope", "-o", tmp_path / "o", check=False)
    assert p.returncode == 1 and not (tmp_path / "o").exists()
    assert sorted(os.listdir(tmp_path)) == []


def test_hex(tdxctl, tmp_path):
    assert tdxctl.run("hex", input=b"\x00\xffA").stdout == b"00ff41\n"
    f = tmp_path / "f"
    f.write_bytes(DATA)
    assert tdxctl.run("hex", f).stdout == DATA.hex().encode() + b"\n"
    assert tdxctl.run("hex", "-", input=b"").stdout == b"\n"
    p = tdxctl.run("hex", tmp_path / "nope", check=False)
    assert p.returncode == 1 and p.stdout == b""
    assert "nope" in p.stderr.decode()


@pytest.mark.parametrize("cmd", ["report", "quote", "extend", "show", "hex", "gen-ra-cert",
                                 "quote-info", "eventlog", "hash", "sim", "ratls-info"])
def test_help(tdxctl, cmd):
    p = tdxctl.run(cmd, "--help")
    assert p.stdout.startswith(b"Usage: tdxctl ")
    assert p.stderr == b""


def test_main_usage(tdxctl):
    p = tdxctl.run("--help")
    assert b"gen-ra-cert" in p.stdout and b"quote-info" in p.stdout
    p = tdxctl.run(check=False)
    assert p.returncode == 2
    p = tdxctl.run("frobnicate", check=False)
    assert p.returncode == 2 and p.stdout == b""
    assert len(p.stderr.decode().strip().splitlines()) == 1


def one_error_line(p):
    assert p.returncode == 1, p
    assert p.stdout == b""
    lines = p.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("tdxctl: ")
    return lines[0]


def test_truncated_quote(tdxctl, vectors, tmp_path):
    data = (vectors / "dcap-qvl/tdx_quote").read_bytes()
    for n in (0, 10, 47, 48 + 100, 700, 4000):
        f = tmp_path / f"q{n}"
        f.write_bytes(data[:n])
        line = one_error_line(tdxctl.run("quote-info", f, check=False))
        assert f"quote-info: parsing {f}" in line
    # Garbage hex.
    f = tmp_path / "bad.hex"
    f.write_text("zz")
    one_error_line(tdxctl.run("quote-info", "--hex", f, check=False))
    one_error_line(tdxctl.run("quote-info", tmp_path / "missing", check=False))
    # Far over any quote size: refused before parsing.
    big = tmp_path / "big"
    big.write_bytes(data + bytes(1 << 20))
    line = one_error_line(tdxctl.run("quote-info", big, check=False))
    assert "too large" in line
    one_error_line(tdxctl.run("quote-info", "-", input=data + bytes(1 << 20), check=False))


def test_quote_info_error_message_names_the_cause(tdxctl, tmp_path):
    f = tmp_path / "x"
    f.write_bytes(b"\x07\x00" + bytes(100))
    line = one_error_line(tdxctl.run("quote-info", f, check=False))
    assert line.startswith(f"tdxctl: quote-info: parsing {f}: ")


def test_quote_short_report_data(sim):
    for n in (0, 10, 63, 65):
        p = sim.tdxctl.run("quote", input=bytes(n), check=False)
        line = one_error_line(p)
        assert "64 bytes" in line
        p = sim.tdxctl.run("report", input=bytes(n), check=False)
        one_error_line(p)


def test_sim_init_bad_dir(tdxctl, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    one_error_line(tdxctl.run("sim", "init", f / "sub", check=False))
    p = tdxctl.run("sim", "init", check=False)
    assert p.returncode == 2

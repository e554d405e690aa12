"""The test guest of tests/guest for integration tests that boot a VM (teepod's among them):
the image, built or taken from the cache, and the config disk teepod would give it.

    from guest_image import build_test_guest, make_config_disk
    image_dir, meta, seconds, log = build_test_guest(tmp_path / "images")
    make_config_disk(tmp_path / "config.img", {"app-compose.json": b"{...}"})

The image folder is OUTDIR/dstack-test-<version>/ with metadata.json (docs/teepod.md), vmlinuz
and initrd.img. The cache is ${DSTACK_CACHE_DIR:-/var/cache/dstack}/test-guest."""
import json
import os
import pathlib
import subprocess
import time

from conftest import REPO

BUILD_SCRIPT = REPO / "tests" / "guest" / "build-test-image.sh"


def build_test_guest(outdir, env=None, timeout=900):
    """Runs tests/guest/build-test-image.sh OUTDIR with ENV added to the environment; returns
    (image folder, its metadata, seconds taken, the script's stderr)."""
    e = dict(os.environ)
    e.update(env or {})
    t0 = time.monotonic()
    p = subprocess.run(["bash", str(BUILD_SCRIPT), str(outdir)], env=e, timeout=timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    took = time.monotonic() - t0
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0:
        raise AssertionError(f"build-test-image.sh exited {p.returncode}: {err[-4000:]}")
    lines = p.stdout.decode().strip().splitlines()
    if not lines:
        raise AssertionError(f"build-test-image.sh printed no image folder: {err[-4000:]}")
    d = pathlib.Path(lines[-1])
    meta = json.loads((d / "metadata.json").read_text())
    return d, meta, took, err


def make_config_disk(path, files):
    """A FAT disk labelled DSTACKSHR holding FILES (name -> bytes), as teepod makes it."""
    path = pathlib.Path(path)
    subprocess.run(["mkfs.vfat", "-n", "DSTACKSHR", "-C", str(path), "4096"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    src = path.parent / (path.name + ".files")
    src.mkdir(exist_ok=True)
    for name, data in files.items():
        (src / name).write_bytes(data)
        subprocess.run(["mcopy", "-i", str(path), str(src / name), "::" + name], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30,
                       env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))

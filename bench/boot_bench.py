"""bench/boot: CreateVm -> first HTTPS 200 through tproxy, for the real guest image on this
machine's QEMU (TCG here), with the time of each boot phase taken from the guest's own
progress reports (teepod keeps them with timestamps). Median of RUNS (default 3) runs, each a
new VM (a new disk to format, images pulled from the local registry)."""
import os
import statistics
import sys
import tempfile
import time
import pathlib

root = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("DSTACK_SOURCE_ROOT", str(root))
sys.path.insert(0, str(root / "tests" / "it"))

from guest_stack import BASE, GuestStack, build_guest_image  # noqa: E402

COMPOSE = """services:
  web:
    image: dstack-demo-web
    ports: ["8080:8080"]
"""

# (phase name, the progress message that ends it)
PHASES = [
    ("QEMU + kernel + stage 1", "tboot 0.1.0 starting"),
    ("config disk", "measuring the app"),
    ("measured (RTMR3)", "requesting app keys"),
    ("keys (KMS, RA-TLS)", "formatting the data disk"),
    ("disk (LUKS2 + mkfs)", "data disk ready"),
    ("tproxy register + WireGuard", "WireGuard up"),
    ("runtime + tappd", "starting the app"),
    ("compose up (pull + start)", "app started"),
]


def run_once(s, i):
    t0 = time.time()
    vm = s.teepod.create(f"bench-{i}", COMPOSE)
    deadline = time.monotonic() + 600
    info = None
    while time.monotonic() < deadline:
        info = s.teepod.info(vm)
        if info.get("boot_error"):
            raise SystemExit(f"boot error: {info['boot_error']}")
        if info.get("boot_progress") == "running":
            break
        time.sleep(0.5)
    else:
        raise SystemExit(f"not running after 600 s: {info}")
    host = f"{info['app_id']}-8080.{BASE}"
    while time.monotonic() < deadline:
        r = s.via_proxy(host, "/", timeout=10)
        if r.status == 200:
            break
        time.sleep(0.2)
    else:
        raise SystemExit(f"{host}: no 200")
    t_end = time.time()
    ev = [(e["body"], e["timestamp"] / 1000.0) for e in s.teepod.info(vm)["events"]
          if e["event"] == "boot.progress"]
    marks, prev = {}, t0
    for name, msg in PHASES:
        ts = next((t for b, t in ev if b.startswith(msg)), None)
        if ts is None:
            continue
        marks[name] = ts - prev
        prev = ts
    marks["app answers through tproxy"] = t_end - prev
    marks["total: create -> HTTPS 200"] = t_end - t0
    s.teepod.rpc("StopVm", {"id": vm})
    s.teepod.wait_status(vm, "stopped")
    s.teepod.rpc("RemoveVm", {"id": vm})
    return marks


def main():
    runs = int(os.environ.get("RUNS", "3"))
    with tempfile.TemporaryDirectory(prefix="bench-boot-") as tmp:
        tmp = pathlib.Path(tmp)
        t = time.time()
        image = build_guest_image(tmp / "images")
        print(f"image {image.name} ready in {time.time() - t:.1f} s", flush=True)
        with GuestStack(tmp / "stack", image) as s:
            results = []
            for i in range(runs):
                m = run_once(s, i)
                results.append(m)
                print(f"run {i + 1}: create -> HTTPS 200 in {m['total: create -> HTTPS 200']:.1f} s",
                      flush=True)
    names = [n for n, _ in PHASES] + ["app answers through tproxy", "total: create -> HTTPS 200"]
    print(f"\nboot phases, median of {runs} (seconds; TCG, 1 vCPU, 1024 MiB)")
    for n in names:
        vals = [r[n] for r in results if n in r]
        if vals:
            print(f"  {n:32s} {statistics.median(vals):7.1f}   ({', '.join(f'{v:.1f}' for v in vals)})")
    total = statistics.median(r["total: create -> HTTPS 200"] for r in results)
    print(f"\ncreate -> reachable: {total:.1f} s (aim <= 30 s here)")


if __name__ == "__main__":
    main()

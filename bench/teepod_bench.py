"""teepod next to plain QEMU: the time from the request (CreateVm, or the shell's exec) to the
test guest's first progress report on its host channel, and the memory per idle VM (RSS of
the QEMUs, plus teepod's own for teepod), for N VMs started at once.

The floor runs each VM's exact QEMU command line (the one teepod used, from GetInfo) in a copy
of its folder (disks and config disk as teepod made them), started by `sh -c exec ...`, with
this script answering the host channel as teepod does."""
import json
import os
import pathlib
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "it"))
from teepod_common import IMAGE, Teepod, build_image, kill_qemus, qemu_pids  # noqa: E402

TIMEOUT = 300


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_teepod(image, work, n):
    # the bench overcommits this host's cores on purpose: 8 one-vCPU VMs
    t = Teepod(work, image, extra="[cvm]\nmax_allocable_vcpu = 64\n")
    t.start()
    try:
        t0 = {}
        ids = []
        errors = []
        threads = []

        def create(i):
            t0[i] = time.time()
            try:
                ids.append((i, t.create(f"b{i}", memory=256)))
            except Exception as e:  # reported below, on the main thread
                errors.append(e)

        for i in range(n):
            th = threading.Thread(target=create, args=(i,))
            th.start()
            threads.append(th)
        for th in threads:
            th.join(60)
        if errors or len(ids) != n:
            raise SystemExit(f"CreateVm failed: {errors}")
        starts = []
        for i, vm in ids:
            info = t.wait(vm, lambda x: any(e["event"] == "boot.progress" for e in x["events"]),
                          TIMEOUT, "first progress")
            first = min(e["timestamp"] for e in info["events"] if e["event"] == "boot.progress")
            starts.append(first / 1000.0 - t0[i])
        for _, vm in ids:
            t.wait_booted(vm, TIMEOUT)
        time.sleep(2)  # idle
        qemu = sum(rss_kib(p) for _, vm in ids for p in qemu_pids(t.run_dir / vm))
        own = rss_kib(t.proc.pid)
        cmds = {vm: t.info(vm)["qemu_command"] for _, vm in ids}
        return starts, (qemu + own) / n, own, t, cmds, [vm for _, vm in ids]
    except BaseException:
        t.close()
        raise


def answer_channel(path, first, done, stop):
    """Connects to QEMU's host.sock (retrying) and answers every line; records when the first
    boot.progress arrives and when 'done' does."""
    deadline = time.time() + TIMEOUT
    s = None
    while time.time() < deadline and not stop.is_set():
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(path))
            break
        except OSError:
            s.close()
            s = None
            time.sleep(0.02)
    if not s:
        return
    s.settimeout(0.5)
    buf = b""
    while not stop.is_set() and time.time() < deadline:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not d:
            break
        buf += d
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                req = json.loads(line)
            except ValueError:
                continue
            p = req.get("params") or {}
            if req.get("method") == "Notify" and p.get("event") == "boot.progress":
                first.setdefault("t", time.time())
                if p.get("payload") == "done":
                    done.set()
            s.sendall(json.dumps({"id": req.get("id"), "result": {}}).encode() + b"\n")
    s.close()


def run_plain(t, cmds, ids, work):
    """The same command lines from a shell, each in a copy of its VM folder."""
    dirs, threads, firsts, dones, t0, procs = [], [], [], [], [], []
    stop = threading.Event()
    for vm in ids:
        src = t.run_dir / vm
        dst = pathlib.Path(work) / vm
        dst.mkdir(parents=True)
        for f in ("hda.img", "config.img"):
            shutil.copy2(src / f, dst / f)
        dirs.append((src, dst))
    kill_qemus(t.run_dir)
    t.stop()
    for vm, (src, dst) in zip(ids, dirs):
        cmd = cmds[vm].replace(str(src), str(dst))
        first, done = {}, threading.Event()
        th = threading.Thread(target=answer_channel, args=(dst / "host.sock", first, done, stop))
        th.start()
        t0.append(time.time())
        procs.append(subprocess.Popen(["sh", "-c", "exec timeout 600 " + cmd], cwd=dst,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
        threads.append(th)
        firsts.append(first)
        dones.append(done)
    try:
        for d in dones:
            d.wait(TIMEOUT)
        starts = [f["t"] - s for f, s in zip(firsts, t0) if "t" in f]
        time.sleep(2)
        rss = sum(rss_kib(p) for _, dst in dirs for p in qemu_pids(dst)) / len(ids)
        return starts, rss
    finally:
        stop.set()
        for p in procs:
            # timeout(1) does not pass SIGKILL on: end the whole session, then any straggler
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(10)
        kill_qemus(pathlib.Path(work))
        for th in threads:
            th.join(5)


def main():
    teepod_bin = sys.argv[1]
    counts = [int(x) for x in sys.argv[2:]] or [1, 8]
    os.environ.setdefault("DSTACK_BUILD", str(pathlib.Path(teepod_bin).parents[2]))
    with tempfile.TemporaryDirectory(prefix="teepod-bench-") as tmp:
        image = build_image(pathlib.Path(tmp) / "image")
        # warm-up: the first QEMU of a run pays for cold caches (its binary, the kernel file);
        # neither side should be charged for it
        _, _, _, t, _, _ = run_teepod(image, pathlib.Path(tmp) / "warmup", 1)
        t.close()
        for n in counts:
            work = pathlib.Path(tmp) / f"n{n}"
            starts, rss, own, t, cmds, ids = run_teepod(image, work / "teepod", n)
            try:
                pstarts, prss = run_plain(t, cmds, ids, work / "plain")
            finally:
                t.close()
            if len(pstarts) != n:
                raise SystemExit(f"plain QEMU: {len(pstarts)} of {n} guests reported progress")
            ts, ps = sum(starts) / n, sum(pstarts) / n
            print(f"{n} VM(s): teepod start {ts:.2f} s, rss/VM {rss / 1024:.1f} MiB "
                  f"(teepod itself {own / 1024:.1f} MiB); plain qemu start {ps:.2f} s, "
                  f"rss/VM {prss / 1024:.1f} MiB")
            print(f"teepod/qemu ({n} VM): start {ts / ps:.2f}, rss {rss / prss:.2f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()

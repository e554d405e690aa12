"""Driver of bench/certbot: one knotd and one Pebble, then each client issues the same
certificate BENCH_ROUNDS times from a fresh account and an empty work folder. Reported per
client: the median wall time to a live certificate and the largest peak RSS (GNU time's
maximum resident set size of the client and the children it waited for), then the ratios. The last line is
    certbot: ours N ms / M MiB, eff N ms / M MiB, time x R, memory x R"""
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "it"))
import test_certbot as acme  # noqa: E402  (Knot, Pebble, config: the test's real servers)


def run_measured(cmd, env, timeout=180):
    """Wall time, peak RSS in KiB, exit status and the tail of stderr of cmd. The RSS comes from
    GNU time, which forks cmd from its own small process: a child forked from this Python
    interpreter would carry the interpreter's RSS into its high-water mark until exec."""
    with tempfile.NamedTemporaryFile(prefix="bench-rss.") as f:
        t0 = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-o", f.name, "-f", "%M %x", *cmd], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
        dt = time.monotonic() - t0
        rss, rc = pathlib.Path(f.name).read_text().split()[-2:]
    return dt, int(rss), int(rc) if p.returncode == 0 else p.returncode, \
        p.stderr.decode(errors="replace")


def ours(binary, tmp, knot, pebble, i):
    d = tmp / f"ours{i}"
    d.mkdir()
    cfg = acme.config(d, knot, pebble)
    return run_measured([binary, "renew", "-c", str(cfg), "--once"], acme._clean_env()), \
        d / "work" / "live" / "cert.pem"


def eff(tmp, knot, pebble, i):
    d = tmp / f"eff{i}"
    d.mkdir()
    creds = d / "rfc2136.ini"
    creds.write_text(f"dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = {knot.port}\n"
                     f"dns_rfc2136_name = {acme.KEY_NAME}\n"
                     f"dns_rfc2136_secret = {acme.SECRET}\n"
                     "dns_rfc2136_algorithm = HMAC-SHA256\n")
    creds.chmod(0o600)
    env = acme._clean_env()
    env["REQUESTS_CA_BUNDLE"] = str(pebble.ca)
    cmd = ["certbot", "certonly", "--non-interactive", "--agree-tos",
           "--register-unsafely-without-email", "--server", pebble.url,
           "--config-dir", str(d / "config"), "--work-dir", str(d / "work"),
           "--logs-dir", str(d / "logs"), "--dns-rfc2136",
           "--dns-rfc2136-credentials", str(creds),
           "--dns-rfc2136-propagation-seconds", "1",
           "--cert-name", "bench", "-d", f"*.{acme.ZONE}", "-d", acme.ZONE]
    return run_measured(cmd, env), d / "config" / "live" / "bench" / "fullchain.pem"


def main():
    binary, rounds = sys.argv[1], int(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="bench-certbot.") as t:
        tmp = pathlib.Path(t)
        knot = acme.Knot(tmp / "knot")
        (tmp / "pebble").mkdir()
        pebble = acme.Pebble(tmp / "pebble", knot.port, nonce_reject=0)
        results = {"ours": [], "eff": []}
        try:
            for i in range(rounds):
                for name in ("ours", "eff"):
                    (dt, rss, rc, err), live = ours(binary, tmp, knot, pebble, i) \
                        if name == "ours" else eff(tmp, knot, pebble, i)
                    if rc != 0 or not live.exists():
                        raise SystemExit(f"certbot bench: {name} failed (exit {rc}): "
                                         f"{err[-3000:]}")
                    results[name].append((dt, rss))
                    print(f"{name:5} round {i + 1}: {dt * 1000:7.0f} ms, peak RSS "
                          f"{rss / 1024:6.1f} MiB", flush=True)
        finally:
            acme.stop(pebble.proc)
            acme.stop(knot.proc)
        med = {k: statistics.median(x[0] for x in v) for k, v in results.items()}
        peak = {k: max(x[1] for x in v) for k, v in results.items()}
        print(f"certbot: ours {med['ours'] * 1000:.0f} ms / {peak['ours'] / 1024:.1f} MiB, "
              f"eff {med['eff'] * 1000:.0f} ms / {peak['eff'] / 1024:.1f} MiB, "
              f"time x {med['eff'] / med['ours']:.2f}, memory x {peak['eff'] / peak['ours']:.1f}")


if __name__ == "__main__":
    main()

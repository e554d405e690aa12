"""Shared fixtures of the integration tests: where the built binaries and the test vectors
are, a runner for tdxctl, and a fresh simulated TDX platform per test."""
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("DSTACK_BUILD") or REPO / "build")
VECTORS = pathlib.Path(os.environ.get("DSTACK_VECTORS") or REPO / "tests" / "vectors")
TDXCTL = BUILD / "src" / "tdxctl" / "tdxctl"


def free_port():
    """A loopback port free for both TCP and UDP, for a server started next. Taken below the
    kernel's ephemeral range (ip_local_port_range, 32768 and up here), so that no outgoing
    connection of a parallel test can take it between this check and the server's bind.
    Bounded: 200 random tries."""
    import random
    import socket
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    low = min(low, 32768)
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        socks = []
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(socket.AF_INET, kind)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free loopback port found in 200 tries")


def _clean_env():
    env = dict(os.environ)
    for k in ("DSTACK_TEE", "DSTACK_SIM_DIR", "DSTACK_LOG"):
        env.pop(k, None)
    return env


class Tdxctl:
    """Runs tdxctl with a given environment; returns the CompletedProcess (bytes)."""

    def __init__(self, env):
        self.env = env

    def run(self, *args, input=None, check=True, env=None, timeout=60):
        e = dict(self.env)
        if env:
            e.update(env)
        p = subprocess.run([str(TDXCTL), *map(str, args)], input=input, env=e,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(
                f"tdxctl {' '.join(map(str, args))} exited {p.returncode}: "
                f"{p.stderr.decode(errors='replace')}")
        return p

    def json(self, *args, **kw):
        import json
        return json.loads(self.run(*args, **kw).stdout)


@pytest.fixture(scope="session")
def tdxctl_path():
    if not TDXCTL.exists():
        pytest.fail(f"tdxctl not built at {TDXCTL} (set DSTACK_BUILD)")
    return TDXCTL


@pytest.fixture
def tdxctl(tdxctl_path):
    """tdxctl without any TEE configured."""
    return Tdxctl(_clean_env())


@pytest.fixture
def sim(tdxctl_path, tmp_path):
    """A freshly initialised simulated platform; .dir is its directory, .tdxctl runs with
    DSTACK_TEE=sim pointing at it."""
    d = tmp_path / "sim"
    env = _clean_env()
    Tdxctl(env).run("sim", "init", d)
    env.update({"DSTACK_TEE": "sim", "DSTACK_SIM_DIR": str(d)})

    class Sim:
        pass

    s = Sim()
    s.dir = d
    s.env = env
    s.tdxctl = Tdxctl(env)
    s.eventlog = d / "eventlog.jsonl"
    return s


@pytest.fixture(scope="session")
def vectors():
    if not VECTORS.is_dir():
        pytest.fail(f"test vectors not found at {VECTORS} (set DSTACK_VECTORS)")
    return VECTORS

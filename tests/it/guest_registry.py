"""A local container registry holding the demo apps' images, for tests that boot a guest.

    from guest_registry import GuestRegistry, build_app_images
    apps = build_app_images(tmp_path / "apps")
    with GuestRegistry(tmp_path / "registry") as reg:
        reg.push(apps / "dstack-demo-web", "dstack-demo-web:latest")
        reg.address        # "127.0.0.1:PORT"; the guest reaches it as 10.0.2.2:PORT

Debian's docker-registry (`docker-registry serve CONFIG`) on a free loopback port with its
storage in a given folder; images are pushed from OCI layouts with skopeo (plain HTTP)."""
import json
import pathlib
import subprocess
import time
import urllib.request

from conftest import REPO, free_port

APPS_SCRIPT = REPO / "guest" / "apps" / "build-app-images.sh"
REGISTRY_BIN = "/usr/bin/docker-registry"


def build_app_images(outdir, timeout=900):
    """Runs guest/apps/build-app-images.sh OUTDIR (or takes its cache); returns OUTDIR."""
    p = subprocess.run(["bash", str(APPS_SCRIPT), str(outdir)], timeout=timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise AssertionError(f"build-app-images.sh exited {p.returncode}: "
                             f"{p.stderr.decode(errors='replace')[-4000:]}")
    return pathlib.Path(p.stdout.decode().strip().splitlines()[-1])


class GuestRegistry:
    """docker-registry on 127.0.0.1:PORT with storage under DIR; stop() (or the with block's
    end) ends it."""

    def __init__(self, dir, port=None):
        self.dir = pathlib.Path(dir)
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc = None

    def start(self, timeout=20):
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "storage").mkdir(exist_ok=True)
        cfg = self.dir / "config.yml"
        # YAML is a superset of JSON: no YAML writer needed
        cfg.write_text(json.dumps({
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.dir / "storage")},
                        "delete": {"enabled": True}},
            "http": {"addr": self.address},
        }))
        self.log = open(self.dir / "registry.log", "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("docker-registry exited: " +
                                     (self.dir / "registry.log").read_text()[-2000:])
            try:
                with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"docker-registry not answering on {self.address}")

    def push(self, layout, name, tag_in_layout="latest", timeout=300):
        """Copies the image TAG_IN_LAYOUT of the OCI layout folder to NAME (repo:tag)."""
        p = subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                            f"oci:{layout}:{tag_in_layout}", f"docker://{self.address}/{name}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"skopeo copy {layout} -> {name}: "
                                 f"{p.stderr.decode(errors='replace')[-2000:]}")

    def push_apps(self, apps_dir):
        """Pushes every demo image of APPS_DIR as NAME:latest and library/NAME:latest."""
        names = []
        for layout in sorted(pathlib.Path(apps_dir).iterdir()):
            if (layout / "index.json").is_file():
                for n in (f"{layout.name}:latest", f"library/{layout.name}:latest"):
                    self.push(layout, n)
                    names.append(n)
        return names

    def inspect(self, name, timeout=60):
        p = subprocess.run(["skopeo", "inspect", "--tls-verify=false",
                            f"docker://{self.address}/{name}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"skopeo inspect {name}: {p.stderr.decode(errors='replace')}")
        return json.loads(p.stdout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

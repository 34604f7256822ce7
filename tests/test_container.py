"""The Docker image, built from the unchanged Dockerfile and run for real.

Without a Docker engine or a registry, this uses Debian's rootful podman,
set up the way that works on such machines: a private ``storage.conf``/``containers.conf`` (overlay, runc,
cgroupfs, ulimits within the host's hard limits), a ``debian:bookworm-slim``
made locally with debootstrap (tests/container/base-image.sh), and
``podman build --pull=never --network=host``. The image is built in the
docker format (``--format docker``), as ``docker build`` does: the OCI
format has no HEALTHCHECK, and podman would drop it.

Then the image is run the way README.rst tells users to (a token in
``BLOBSVC_TOKEN``, a volume on ``/data``, the port published on
127.0.0.1 only) and checked from the outside.

podman's store and the base image are cached between runs in
``$BLOBSVC_TEST_CONTAINER_DIR`` (default
``${XDG_CACHE_HOME:-~/.cache}/blobsvc-container-test``; inspect it with
tests/container/podman.sh). The test removes the containers and volumes it
created, by ID and name, and keeps the latest image as build cache.

Select or leave out with ``-m container`` / ``-m "not container"``.
Without podman (or root) it skips with the reason in the summary, except
under ``CI``, where that is a failure.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from api_client import free_port

pytestmark = pytest.mark.container

REPO = Path(__file__).resolve().parents[1]
BASE_IMAGE_SCRIPT = Path(__file__).resolve().parent / "container" / "base-image.sh"
BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
IMAGE = "localhost/blobsvc-test:latest"
PACKAGES = ("podman buildah runc fuse-overlayfs slirp4netns uidmap debootstrap "
            "containernetworking-plugins iptables")

TOKEN = "container-token-" + uuid.uuid4().hex
#: What the service prints when it refuses to start without credentials.
REFUSAL = "refusing to serve 0.0.0.0 without authentication"
STOP_TIMEOUT = 20
READY_TIMEOUT = 30.0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def cannot_run(reason: str) -> None:
    """Skip, loudly; under CI a missing prerequisite is a failure."""
    if in_ci():
        pytest.fail(f"container test cannot run: {reason} (CI must run it)", pytrace=False)
    pytest.skip(f"CONTAINER TEST NOT RUN: {reason}")


def work_dir() -> Path:
    configured = os.environ.get("BLOBSVC_TEST_CONTAINER_DIR")
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "blobsvc-container-test"


def ulimits() -> tuple[int, int]:
    """nofile and nproc limits a container may get here (root cannot raise them)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if nofile == resource.RLIM_INFINITY:
        nofile = 1024 * 1024
    nproc = int(Path("/proc/sys/kernel/pid_max").read_text())
    hard_nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    if hard_nproc != resource.RLIM_INFINITY:
        nproc = min(nproc, hard_nproc)
    return nofile, nproc


class Podman:
    """podman with the test's private configuration; remembers what it created."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        storage_conf, containers_conf = workdir / "storage.conf", workdir / "containers.conf"
        storage_conf.write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{workdir / "storage"}"\n'
            f'runroot = "{workdir / "run"}"\n')
        nofile, nproc = ulimits()
        containers_conf.write_text(
            "[containers]\n"
            f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n')
        self.env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(storage_conf),
                    "CONTAINERS_CONF": str(containers_conf)}
        self.containers: list[str] = []
        self.volumes: list[str] = []

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True,
                                errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}{result.stderr}")
        return result

    def image_id(self, name: str) -> str | None:
        result = self("image", "inspect", "--format", "{{.Id}}", name, check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def volume(self) -> str:
        name = f"blobsvc-test-{uuid.uuid4().hex[:10]}"
        self("volume", "create", name)
        self.volumes.append(name)
        return name

    def run(self, *args: str) -> str:
        """``podman run -d`` with a fresh name; returns the container ID."""
        name = f"blobsvc-test-{uuid.uuid4().hex[:10]}"
        result = self("run", "-d", "--pull=never", "--name", name, *args, check=False)
        container_id = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        if container_id:
            self.containers.append(container_id)
        assert result.returncode == 0 and container_id, f"podman run failed:\n{result.stderr}"
        return container_id

    def inspect(self, container_id: str) -> dict:
        return json.loads(self("inspect", container_id).stdout)[0]

    def logs(self, container_id: str) -> str:
        result = self("logs", container_id)
        return result.stdout + result.stderr

    def cleanup(self) -> None:
        for container_id in self.containers:
            self("rm", "-f", "-v", "-t", "5", container_id, check=False, timeout=60)
        for name in self.volumes:
            self("volume", "rm", "-f", name, check=False)


class Timings:
    """Seconds per step, reported at the end of the module."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self.started = time.monotonic()

    def measure(self, step: str, action):
        start = time.monotonic()
        result = action()
        self.steps[step] = time.monotonic() - start
        return result

    def summary(self) -> str:
        steps = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in self.steps.items())
        return f"container test: {steps}; whole module {time.monotonic() - self.started:.1f}s"


@pytest.fixture(scope="module")
def timings(request):
    measured = Timings()
    yield measured
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(measured.summary())


@pytest.fixture(scope="module")
def podman(timings):
    if shutil.which("podman") is None:
        cannot_run(f"podman is not installed (apt-get install {PACKAGES})")
    if os.geteuid() != 0:
        cannot_run("rootful podman needs root")
    workdir = work_dir()
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "lock", "w") as lock:
        deadline = time.monotonic() + 1800  # another run may be building
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, f"{workdir} stayed locked by another run"
                time.sleep(1)
        tool = Podman(workdir)
        try:
            yield tool
        finally:
            tool.cleanup()
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def image(podman, timings) -> str:
    """The image built from the repository's Dockerfile; returns its ID."""
    if podman.image_id(BASE_IMAGE) is None:
        if shutil.which("debootstrap") is None:
            cannot_run(f"debootstrap is not installed (apt-get install {PACKAGES})")
        result = timings.measure("base image (debootstrap)", lambda: subprocess.run(
            ["bash", str(BASE_IMAGE_SCRIPT), str(podman.workdir / "base")], env=podman.env,
            capture_output=True, text=True, errors="replace", timeout=1200))
        assert result.returncode == 0, f"base image failed:\n{result.stderr}"
    else:
        timings.steps["base image"] = 0.0  # cached
    previous = podman.image_id(IMAGE)
    timings.measure("podman build", lambda: podman(
        "build", "--pull=never", "--network=host", "--format", "docker", "-t", IMAGE, str(REPO),
        timeout=1800))
    built = podman.image_id(IMAGE)
    assert built is not None
    if previous is not None and previous != built:
        podman("rmi", previous, check=False)  # our own previous build, now untagged
    return built


class Container:
    def __init__(self, podman: Podman, container_id: str, port: int, volume: str | None) -> None:
        self.podman = podman
        self.id = container_id
        self.port = port
        self.volume = volume
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if not self.podman.inspect(self.id)["State"]["Running"]:
                break
            time.sleep(0.1)
        raise AssertionError(f"container not serving on {self.url}:\n{self.podman.logs(self.id)}")

    def volume_dir(self) -> Path:
        mountpoint = self.podman("volume", "inspect", "--format", "{{.Mountpoint}}", self.volume)
        return Path(mountpoint.stdout.strip())


def run_service(podman: Podman, image: str, data: str | None = None) -> Container:
    """The README's ``docker run``, plus the token; ``data`` is a volume name or host dir."""
    port = free_port()
    volume = data or podman.volume()
    container_id = podman.run("-e", f"BLOBSVC_TOKEN={TOKEN}", "-v", f"{volume}:/data",
                              "-p", f"127.0.0.1:{port}:8080", image)
    return Container(podman, container_id, port, volume)


@pytest.fixture(scope="module")
def service(podman, image, timings) -> Container:
    container = timings.measure("run to first 200", lambda: _started(run_service(podman, image)))
    return container


def _started(container: Container) -> Container:
    container.wait_ready()
    return container


def auth() -> dict:
    return {"Authorization": f"Bearer {TOKEN}"}


# -- the image ---------------------------------------------------------------------


def test_image_runs_blobsvc_as_uid_10001_with_a_healthcheck_on_8080(podman, image):
    info = json.loads(podman("image", "inspect", image).stdout)[0]
    config = info["Config"]
    healthcheck = info.get("Healthcheck") or config.get("Healthcheck")  # where podman puts it
    assert config["User"] == "10001:10001"
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Entrypoint"] == ["blobsvc"]
    assert healthcheck is not None, "no HEALTHCHECK in the image (built in OCI format?)"
    assert healthcheck["Test"][0] == "CMD"


# -- running it as the README says ---------------------------------------------------


def test_put_and_get_through_the_container_with_the_token(service):
    payload = os.urandom(2 * 1024 * 1024 + 3)
    put = requests.put(service.url + "/v1/objects/roundtrip/blob.bin", data=payload,
                       headers=auth(), timeout=30)
    get = requests.get(service.url + "/v1/objects/roundtrip/blob.bin", headers=auth(), timeout=30)
    assert put.status_code == 201, put.text
    assert get.status_code == 200
    assert get.content == payload


def test_uploaded_object_lands_in_the_data_volume_on_the_host(service):
    payload = b"written through the container\n" * 1000
    put = requests.put(service.url + "/v1/objects/volume/check.bin", data=payload,
                       headers=auth(), timeout=30)
    assert put.status_code == 201, put.text
    on_host = service.volume_dir() / "volume" / "check.bin"
    assert on_host.read_bytes() == payload
    assert on_host.stat().st_uid == 10001


def test_requests_without_the_token_are_refused(service):
    get = requests.get(service.url + "/v1/objects/roundtrip/blob.bin", timeout=10)
    put = requests.put(service.url + "/v1/objects/anonymous/put.bin", data=b"x", timeout=10)
    assert get.status_code == 401
    assert put.status_code == 401
    assert not (service.volume_dir() / "anonymous").exists()


def test_healthz_answers_200_without_credentials(service):
    response = requests.get(service.url + "/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_podman_healthcheck_run_passes(podman, service):
    result = podman("healthcheck", "run", service.id, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert podman.inspect(service.id)["State"]["Health"]["Status"] == "healthy"


def test_service_in_the_container_is_not_root(podman, service):
    assert podman("exec", service.id, "id", "-u").stdout.strip() == "10001"


def test_one_uid_gid_pair_exists_and_owns_data_and_the_objects(podman, service):
    """uid and gid 10001 are one user and its group, so a host that mounts /data
    (or a ``fsGroup``) sees one owner, never a group that exists nowhere."""
    put = requests.put(service.url + "/v1/objects/owner/dir/x.bin", data=b"owned",
                       headers=auth(), timeout=30)
    assert put.status_code == 201, put.text
    ident = podman("exec", service.id, "id").stdout.split()
    group = podman("exec", service.id, "getent", "group", "10001", check=False).stdout.strip()
    owners = podman("exec", service.id, "stat", "-c", "%n %u:%g %U:%G", "/data", "/data/owner",
                    "/data/owner/dir", "/data/owner/dir/x.bin").stdout.splitlines()
    assert ident[:2] == ["uid=10001(blobsvc)", "gid=10001(blobsvc)"], ident
    assert group.startswith("blobsvc:x:10001:"), f"no group 10001 in the image: {group!r}"
    assert owners == [f"{name} 10001:10001 blobsvc:blobsvc" for name in
                      ("/data", "/data/owner", "/data/owner/dir", "/data/owner/dir/x.bin")]
    on_host = service.volume_dir() / "owner" / "dir" / "x.bin"
    assert (on_host.stat().st_uid, on_host.stat().st_gid) == (10001, 10001)


def test_token_never_appears_in_the_container_log(podman, service):
    requests.get(service.url + "/v1/objects/roundtrip/blob.bin", headers=auth(), timeout=10)
    assert TOKEN not in podman.logs(service.id)


def test_host_directory_mounted_on_data_receives_the_objects(podman, image, tmp_path):
    host_dir = tmp_path / "data"
    host_dir.mkdir()
    os.chown(host_dir, 10001, 10001)  # the image's user must own it, as with docker
    container = run_service(podman, image, data=str(host_dir))
    container.wait_ready()
    put = requests.put(container.url + "/v1/objects/bind/x.bin", data=b"bind mount", headers=auth(),
                       timeout=30)
    assert put.status_code == 201, put.text
    assert (host_dir / "bind" / "x.bin").read_bytes() == b"bind mount"


# -- starting and stopping ----------------------------------------------------------------


def test_start_without_credentials_is_refused_quickly_with_one_line(podman, image):
    started = time.monotonic()
    container_id = podman.run("-p", f"127.0.0.1:{free_port()}:8080", image)
    exit_code = int(podman("wait", container_id, timeout=30).stdout.strip())
    elapsed = time.monotonic() - started
    lines = podman.logs(container_id).splitlines()
    assert exit_code == 2  # non-zero: the configuration error status
    assert elapsed < 10
    assert len(lines) == 1, lines
    assert REFUSAL in lines[0]


def test_podman_stop_is_prompt_and_exits_0(podman, image):
    container = run_service(podman, image)
    container.wait_ready()
    requests.put(container.url + "/v1/objects/stop/x", data=b"x", headers=auth(), timeout=10)
    started = time.monotonic()
    podman("stop", "-t", str(STOP_TIMEOUT), container.id, timeout=STOP_TIMEOUT + 30)
    elapsed = time.monotonic() - started
    state = podman.inspect(container.id)["State"]
    assert elapsed < 5, f"podman stop took {elapsed:.1f}s (timeout {STOP_TIMEOUT}s)"
    assert state["ExitCode"] == 0, podman.logs(container.id)

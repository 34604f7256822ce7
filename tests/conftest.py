"""Shared fixtures: every driver, built the way the service builds it."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from typing import Iterator

import pytest
from api_client import ServerProcess, WebTestClient, wipe
from reports import REPORTS

import blobsvc.config
from blobsvc.http.app import build_app
from blobsvc.storage import create_driver

try:
    from tests.swiftstack import SwiftStack, start_or_skip, start_stack_or_skip
    from tests.swiftstack.cluster import SwiftCluster
except ImportError:  # tests/ is not a package and the repo root not on path
    from swiftstack import SwiftStack, start_or_skip, start_stack_or_skip  # type: ignore[no-redef]
    from swiftstack.cluster import SwiftCluster  # type: ignore[no-redef]

#: Drivers the conformance and API suites run against. The Swift backend
#: joins through its own fixture (see tests/swiftstack).
LOCAL_DRIVERS = ["memory", "filesystem"]

#: Drivers the ``driver`` fixture builds: the local ones, a real Swift, and
#: the client's RemoteDriver talking to a live ``blobsvc serve``, once on the
#: filesystem and once on that Swift.
STORAGE_DRIVERS = LOCAL_DRIVERS + ["swift", "remote", "remote-swift"]


def driver_settings(name: str, tmp_path) -> dict:
    if name == "filesystem":
        return {"root": str(tmp_path / "data"), "fsync": False}
    return {}


@pytest.fixture(params=LOCAL_DRIVERS)
def driver_name(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def swift_stack(tmp_path_factory) -> Iterator[SwiftStack]:
    """One all-in-one Swift for the session; a loud skip (a failure under CI) if it cannot run."""
    stack = start_stack_or_skip(tmp_path_factory.mktemp("swift"))
    yield stack
    stack.discard()


@pytest.fixture(scope="module")
def swift_cluster(tmp_path_factory) -> Iterator[SwiftCluster]:
    """A three-node, three-replica Swift with its replicators, updaters and
    expirer, for one module (two dozen processes: gone when it is done);
    skip-or-fail as for ``swift_stack``."""
    cluster = start_or_skip(SwiftCluster(tmp_path_factory.mktemp("swift-cluster")))
    yield cluster
    cluster.discard()


def swift_settings(stack: SwiftStack, **overrides) -> dict:
    """A Swift driver on its own new container, with 1 MiB segments so SLOs get exercised."""
    settings = {"auth_url": stack.auth_url, "user": stack.user, "key": stack.key,
                "container": f"test-{uuid.uuid4().hex}", "segment_size": 1024 * 1024,
                "timeout": 10.0, "retries": 1, "starting_backoff": 0.05, "max_backoff": 0.1}
    return {**settings, **overrides}


@pytest.fixture
def make_swift_driver(swift_stack):
    """Build Swift drivers on fresh containers (1 MiB segments); all are
    closed afterwards. No grace period unless asked: segments go as soon as
    their object does."""
    built = []

    def make(**overrides):
        overrides.setdefault("segment_grace_seconds", 0)
        # No background collection: tests count requests, and collect when they mean to.
        overrides.setdefault("collect_interval_seconds", 0)
        drv = create_driver("swift", swift_settings(swift_stack, **overrides))
        built.append(drv)
        return drv

    yield make
    for drv in built:
        drv.close()


@pytest.fixture(scope="session")
def remote_server(tmp_path_factory) -> Iterator[ServerProcess]:
    """The service RemoteDriver talks to: the filesystem driver, no size limit."""
    workdir = tmp_path_factory.mktemp("remote")
    server = ServerProcess(workdir, {
        "server": {"host": "127.0.0.1", "port": 0},
        "storage": {"driver": "filesystem", **driver_settings("filesystem", workdir)},
        "log": {"access_log": False},
    }).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def remote_swift_server(tmp_path_factory, swift_stack) -> Iterator[ServerProcess]:
    """The service RemoteDriver talks to on the real Swift: one container for the session."""
    workdir = tmp_path_factory.mktemp("remote-swift")
    settings = swift_settings(swift_stack, segment_grace_seconds=0)
    server = ServerProcess(workdir, {
        "server": {"host": "127.0.0.1", "port": 0},
        "storage": {"driver": "swift", **settings},
        "log": {"access_log": False},
    }).start()
    server.swift_container = settings["container"]
    yield server
    server.stop()


def purge_swift_objects(stack: SwiftStack, container: str) -> None:
    """Delete every object outside ``.blobsvc/`` straight in Swift, the expired
    ones too: the API no longer sees those, yet a listing still names their
    directories, and the next test must start on an empty store."""
    from swiftclient.client import ClientException, Connection

    conn = Connection(authurl=stack.auth_url, user=stack.user, key=stack.key,
                      auth_version="1", retries=2)
    try:
        for entry in conn.get_container(container, full_listing=True)[1]:
            if entry["name"].startswith(".blobsvc/"):
                continue
            try:
                conn.delete_object(container, entry["name"])
            except ClientException as exc:
                if exc.http_status != 404:  # Swift answers 404 for an expired object
                    raise
    finally:
        conn.close()


def remote_driver(server: ServerProcess):
    """A RemoteDriver on ``server``, whose store is emptied first."""
    from blobsvc.client.remote import RemoteDriver

    drv = RemoteDriver.build(url=server.url, retries=1)
    for _ in range(20):  # a few passes at most: every listing is complete
        paths = [entry.path for entry in drv.list_recursive("")]
        if not paths:
            return drv
        for start in range(0, len(paths), 1000):
            drv.client.delete_many(paths[start:start + 1000])
    raise AssertionError("could not empty the remote store")


@pytest.fixture(params=STORAGE_DRIVERS)
def driver(request, tmp_path):
    name = request.param
    if name == "remote-swift":
        server = request.getfixturevalue("remote_swift_server")
        purge_swift_objects(request.getfixturevalue("swift_stack"), server.swift_container)
        drv = remote_driver(server)
        drv.backend_name = "swift"  # Swift's documented departures hold through it too
        yield drv
        drv.close()
        return
    if name == "remote":
        drv = remote_driver(request.getfixturevalue("remote_server"))
        yield drv
        drv.close()
        return
    drv = build_driver(request, name, tmp_path)
    yield drv
    drv.close()


def build_driver(request, name: str, tmp_path):
    """A local driver under ``tmp_path``, or a Swift one on the session's Swift."""
    if name == "swift":
        return create_driver(name, swift_settings(request.getfixturevalue("swift_stack")))
    return create_driver(name, driver_settings(name, tmp_path))


# -- the API suites: every test on every (transport x driver) ----------------

#: The object size limit of the servers the API suites talk to.
MAX_OBJECT_SIZE = 2 * 1024 * 1024
#: Drivers served by a ``blobsvc serve`` process for the socket transport.
SOCKET_DRIVERS = ("filesystem", "memory")
SERVER_SETTINGS = {"max_object_size": MAX_OBJECT_SIZE, "chunk_size": 256 * 1024}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """One ``blobsvc serve`` per driver, started on first use."""
    started: dict[str, ServerProcess] = {}

    def get(driver_name: str) -> ServerProcess:
        if driver_name not in started:
            workdir = tmp_path_factory.mktemp(f"server-{driver_name}")
            config = {
                "server": {"host": "127.0.0.1", "port": 0, **SERVER_SETTINGS},
                "storage": {"driver": driver_name, **driver_settings(driver_name, workdir)},
                "log": {"access_log": False},
            }
            started[driver_name] = ServerProcess(workdir, config).start()
        return started[driver_name]

    yield get
    for server in started.values():
        server.stop()


@pytest.fixture(params=["webtest", "socket"])
def transport(request) -> str:
    return request.param


@pytest.fixture
def client(transport, driver_name, tmp_path, servers):
    if transport == "webtest":
        config = blobsvc.config.build({
            "server": SERVER_SETTINGS,
            "storage": {"driver": driver_name, **driver_settings(driver_name, tmp_path)},
            "log": {"access_log": False},
        })
        driver = create_driver(config.storage.driver, config.storage.params)
        api = WebTestClient(build_app(config, driver))
        yield api
        driver.close()
    else:
        if driver_name not in SOCKET_DRIVERS:
            pytest.skip(f"the socket transport runs {', '.join(SOCKET_DRIVERS)} only")
        api = servers(driver_name).client()
        wipe(api)
        yield api
        api.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[ServerProcess]:
    """The service the S3 API suites talk to: filesystem driver, no auth, loopback."""
    from s3_helpers import filesystem_s3_server

    server = filesystem_s3_server(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3(s3_server):
    """A boto3 client on :func:`s3_server` (see tests/s3_helpers)."""
    from s3_helpers import s3_client

    return s3_client(s3_server.url)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate for IP 127.0.0.1: (cert, key) paths. Under
    CI a missing openssl fails the tests that need it (.ci/run installs it)."""
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("openssl is not installed")
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def pytest_terminal_summary(terminalreporter, config) -> None:
    for text in config.stash.get(REPORTS, []):
        terminalreporter.write_line(text)

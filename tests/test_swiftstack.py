"""The Swift test fixture itself: start, serve, survive restarts, stop."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests
from api_client import ServerProcess
from swiftclient.client import ClientException, Connection

try:
    from tests.swiftstack import (
        SERVERS,
        USER,
        SwiftStack,
        pid_alive,
        require_swift_or_skip,
        start_stack_or_skip,
    )
    from tests.swiftstack import __main__ as swiftstack_cli
except ImportError:  # tests/ is not a package and the repo root not on path
    from swiftstack import (  # type: ignore[no-redef]
        SERVERS,
        USER,
        SwiftStack,
        pid_alive,
        require_swift_or_skip,
        start_stack_or_skip,
    )
    from swiftstack import __main__ as swiftstack_cli  # type: ignore[no-redef]


def _connect(stack: SwiftStack) -> Connection:
    """swiftclient without retries: failures must surface at once."""
    return Connection(authurl=stack.auth_url, user=stack.user, key=stack.key,
                      auth_version="1", retries=0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftStack]:
    """One stack shared by the tests of this module."""
    swift = start_stack_or_skip(tmp_path_factory.mktemp("swift"))
    yield swift
    swift.discard()


def test_put_get_roundtrip(stack: SwiftStack) -> None:
    conn = _connect(stack)
    conn.put_container("fixture")
    body = b"hello swift\n" * 1000
    etag = conn.put_object("fixture", "dir/obj", body)
    headers, got = conn.get_object("fixture", "dir/obj")
    assert got == body
    assert headers["etag"] == etag
    names = [o["name"] for o in conn.get_container("fixture")[1]]
    assert names == ["dir/obj"]


def test_proxy_down_fails_fast_then_recovers(stack: SwiftStack) -> None:
    conn = _connect(stack)
    conn.put_container("restart")
    conn.put_object("restart", "before", b"1")
    old_pid = stack.pids["proxy"]

    stack.stop_proxy()
    assert "proxy" not in stack.pids
    assert not pid_alive(old_pid)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError):
        conn.head_object("restart", "before")
    with pytest.raises(requests.exceptions.ConnectionError):
        _connect(stack).get_auth()
    assert time.monotonic() - started < 2.0

    stack.start_proxy()
    assert stack.pids["proxy"] != old_pid
    assert conn.get_object("restart", "before")[1] == b"1"
    conn.put_object("restart", "after", b"2")
    assert _connect(stack).get_object("restart", "after")[1] == b"2"


def test_backend_down_gives_503_then_recovers(stack: SwiftStack) -> None:
    conn = _connect(stack)
    conn.put_container("backend")
    stack.stop_server("object")
    with pytest.raises(ClientException) as excinfo:
        conn.put_object("backend", "o", b"x")
    assert excinfo.value.http_status == 503
    stack.start_server("object")
    conn.put_object("backend", "o", b"x")
    assert conn.get_object("backend", "o")[1] == b"x"


def test_stop_ends_every_process(tmp_path: Path) -> None:
    swift = start_stack_or_skip(tmp_path / "swift")
    pids = swift.pids
    assert sorted(pids) == sorted(SERVERS)
    assert all(pid_alive(pid) for pid in pids.values())
    _connect(swift).put_container("c")

    swift.stop()
    assert swift.pids == {}
    assert not any(pid_alive(pid) for pid in pids.values())
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids.values())
    swift.stop()  # idempotent
    with pytest.raises(requests.exceptions.ConnectionError):
        _connect(swift).get_auth()

    device = (tmp_path / "swift" / "node" / "d1").resolve()
    swift.discard()  # a device in shared memory goes with it; one on disk stays with its directory
    assert device.exists() == device.is_relative_to(tmp_path)


def test_the_device_holds_the_metadata_swift_keeps_in_xattrs(stack: SwiftStack) -> None:
    conn = _connect(stack)
    conn.put_container("xattrs")
    metadata = {f"X-Object-Meta-K{i:03d}": "v" * 76 for i in range(100)}  # 8 KiB
    conn.put_object("xattrs", "o", b"x", headers=metadata)
    headers = conn.head_object("xattrs", "o")
    assert all(headers[name.lower()] == value for name, value in metadata.items())


def test_run_expirer_deletes_what_is_past_its_delete_at(stack: SwiftStack) -> None:
    conn = _connect(stack)
    conn.put_container("expiring")
    conn.put_object("expiring", "soon", b"x", headers={"X-Delete-At": str(int(time.time()) + 2)})
    conn.put_object("expiring", "kept", b"y")
    time.sleep(3.1)
    assert [o["name"] for o in conn.get_container("expiring")[1]] == ["kept", "soon"]
    stack.run_expirer()
    assert [o["name"] for o in conn.get_container("expiring")[1]] == ["kept"]


# -- python -m tests.swiftstack up DIR: a Swift to try blobsvc on --------------------

REPO = Path(__file__).resolve().parents[1]
EXPORT = re.compile(r"^\s*export (SWIFT_AUTH_URL=\S+ SWIFT_USER=\S+ SWIFT_KEY=\S+)$", re.M)
PIDS = re.compile(r"^pids: (.+)$", re.M)


def _wait_for_output(proc: subprocess.Popen, out: Path, pattern: re.Pattern,
                     timeout: float) -> re.Match:
    """The first match of ``pattern`` in what the command printed so far."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pattern.search(out.read_text())
        if found:
            return found
        assert proc.poll() is None, f"exited {proc.returncode}:\n{out.read_text()}"
        time.sleep(0.1)
    raise AssertionError(f"no {pattern.pattern!r} after {timeout}s:\n{out.read_text()}")


def _parent_of(pid: int) -> int | None:
    """Parent PID from /proc (None once the process is gone or a zombie)."""
    if not pid_alive(pid):
        return None
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_up_command_prints_settings_blobsvc_serves_on_and_sigint_stops_it(tmp_path: Path) -> None:
    require_swift_or_skip()  # installs the cached Swift, as the command itself would
    out = tmp_path / "up.out"
    with open(out, "w") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.swiftstack", "up", str(tmp_path / "swift"),
             "--proxy-port", "0"],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
            # as a shell starts it with "&": SIGINT ignored, which Ctrl-C's handler must undo
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    server = None
    try:
        settings = dict(item.split("=", 1) for item in
                        _wait_for_output(proc, out, EXPORT, 120).group(1).split())
        pids = {name: int(pid) for name, pid in
                (item.split("=") for item in _wait_for_output(proc, out, PIDS, 5).group(1).split())}
        assert sorted(pids) == sorted(SERVERS)
        assert all(_parent_of(pid) == proc.pid for pid in pids.values())
        # The README's next step: blobsvc on the example config, these settings in the environment.
        server = ServerProcess(tmp_path / "blobsvc", (REPO / "config" / "swift.yaml").read_text(),
                               env={**settings, "BLOBSVC_SERVER_PORT": "0"}).start()
        body = os.urandom(100_000)
        put = requests.put(server.url + "/v1/objects/try/it.bin", data=body, timeout=30)
        get = requests.get(server.url + "/v1/objects/try/it.bin", timeout=30)
        assert put.status_code == 201, put.text
        assert get.content == body
        server.stop()

        started = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 0, out.read_text()
        assert time.monotonic() - started < 10
        assert not any(pid_alive(pid) for pid in pids.values()), out.read_text()
        assert "Traceback" not in out.read_text(), out.read_text()
    finally:
        if server is not None:
            server.stop()
        if proc.poll() is None:
            proc.kill()  # its servers die with it (parent-death signal)
            proc.wait()


def test_up_command_defaults_to_the_port_and_user_of_the_example_config() -> None:
    example = (REPO / "config" / "swift.yaml").read_text()
    args = swiftstack_cli.parse(["up", "DIR"])
    assert f"${{SWIFT_AUTH_URL:-http://127.0.0.1:{args.proxy_port}/auth/v1.0}}" in example
    assert f"${{SWIFT_USER:-{USER}}}" in example

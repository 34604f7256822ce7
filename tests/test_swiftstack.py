"""The Swift test fixture itself: start, serve, survive restarts, stop."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
import requests
from swiftclient.client import ClientException, Connection

try:
    from tests.swiftstack import SERVERS, SwiftStack, pid_alive, start_stack_or_skip
except ImportError:  # tests/ is not a package and the repo root not on path
    from swiftstack import SERVERS, SwiftStack, pid_alive, start_stack_or_skip  # type: ignore[no-redef]


def _connect(stack: SwiftStack) -> Connection:
    """swiftclient without retries: failures must surface at once."""
    return Connection(authurl=stack.auth_url, user=stack.user, key=stack.key,
                      auth_version="1", retries=0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftStack]:
    """One stack shared by the tests of this module."""
    swift = start_stack_or_skip(tmp_path_factory.mktemp("swift"))
    yield swift
    swift.stop()


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

"""A live ``blobsvc serve`` in its own process group, for load and fault tests.

:class:`api_client.ServerProcess` (tests/api_client.py) already starts
``python -m blobsvc serve -c CFG`` on port 0, reads the port back and stops
the process by PID; everything here builds on it. What it lacks, and this
module adds:

* :class:`GroupServer` starts the service in a new session, so the
  supervisor and every worker it forks share one process group whose id is
  the supervisor's PID. ``kill_group()`` can then SIGKILL all of them at
  once (a crash that spares no worker), and ``stop()`` makes sure no worker
  outlives the test. Only that group is ever signalled.
* Config builders for the filesystem and Swift drivers.
* :func:`raw_exchange`: bytes exactly as given on a socket, and the answer
  parsed by ``http.client`` (no client-side normalisation of anything).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Iterator, Mapping

import pytest
from api_client import ServerProcess, proc_stats, wait_for
from swiftstack import ci_mode

MiB = 1024 * 1024


# -- configs -----------------------------------------------------------------


def filesystem_config(root: str | os.PathLike, *, fsync: bool = False, **server) -> dict:
    """Filesystem driver under ``root`` on 127.0.0.1, port 0 (kernel's choice)."""
    return {
        "server": {"host": "127.0.0.1", "port": 0, "shutdown_timeout": 5.0, **server},
        "storage": {"driver": "filesystem", "root": str(root), "fsync": fsync},
        "log": {"level": "info", "access_log": False},
    }


def swift_config(stack, container: str | None = None, *, storage: Mapping | None = None,
                 **server) -> dict:
    """Swift driver on ``stack`` (tests/swiftstack), a new container, 1 MiB segments
    so that large objects (SLOs) get exercised by ordinary test sizes."""
    settings = {
        "driver": "swift", "auth_url": stack.auth_url, "user": stack.user, "key": stack.key,
        "container": container or f"live-{uuid.uuid4().hex}", "segment_size": MiB,
        "timeout": 10.0, "retries": 1, "starting_backoff": 0.05, "max_backoff": 0.1,
    }
    settings.update(storage or {})
    return {
        "server": {"host": "127.0.0.1", "port": 0, "shutdown_timeout": 5.0, **server},
        "storage": settings,
        "log": {"level": "info", "access_log": False},
    }


# -- the server --------------------------------------------------------------


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (process group id, state letter) for every process in /proc."""
    return {pid: (int(fields[2]), fields[0]) for pid, fields in proc_stats().items()}


class GroupServer(ServerProcess):
    """``ServerProcess`` whose supervisor leads a process group of its own."""

    def start(self, wait: bool = True, timeout: float = 20.0) -> GroupServer:
        self.port = None  # a restart reads its (new) port from the new log
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "blobsvc", "serve", "-c", str(self.config_path)],
                cwd=self.workdir, env=self.env, stdout=out, stderr=err,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        if wait:
            try:
                self.wait_ready(timeout)
            except BaseException:
                self.stop()  # never leave a server that did not come up
                raise
        return self

    def group_pids(self, zombies: bool = False) -> list[int]:
        """Members of this server's process group (zombies only if asked)."""
        if self.proc is None:
            return []
        return sorted(pid for pid, (pgid, state) in _process_table().items()
                      if pgid == self.proc.pid and (zombies or state != "Z"))

    def kill_group(self, signum: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """Signal the whole group (supervisor and workers) and wait until it is gone.

        Workers orphaned by the supervisor's death are reaped by init; until
        then they are zombies, which ``kill(pid, 0)`` still reports alive. A
        restart after a crash normally comes after that, so this waits for
        the zombies too (and fails if they outlive ``timeout``).
        """
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        if not wait_for(lambda: not self.group_pids(zombies=True), timeout=timeout):
            raise AssertionError(f"process group {self.proc.pid} survived signal {signum}: "
                                 f"{self.group_pids(zombies=True)} (zombies included)")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (ServerProcess.stop), then SIGKILL whatever is left of the group."""
        code = super().stop(timeout)
        if self.proc is not None and self.group_pids():
            self.kill_group(signal.SIGKILL)
        return code

    def readable_stderr_tail(self, lines: int = 40) -> str:
        return "\n".join(self.stderr().splitlines()[-lines:])


@contextlib.contextmanager
def running_server(workdir: Path, config: dict, env: Mapping[str, str] | None = None
                   ) -> Iterator[GroupServer]:
    server = GroupServer(workdir, config, env)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def swift_leftovers(stack, container: str, live_paths: list[str]) -> tuple[list[str], list[str]]:
    """(segments no live manifest lists, tombstones of replaced versions and
    notes of writes in flight) in ``container``."""
    from swiftclient.client import Connection

    conn = Connection(authurl=stack.auth_url, user=stack.user, key=stack.key, auth_version="1",
                      retries=2)
    try:
        private = [o["name"] for o in conn.get_container(container, prefix=".blobsvc/",
                                                         full_listing=True)[1]]
        referenced = set()
        for path in live_paths:
            headers = conn.head_object(container, path)
            if headers.get("x-static-large-object", "").lower() != "true":
                continue
            _, manifest = conn.get_object(container, path, query_string="multipart-manifest=get")
            for entry in json.loads(manifest):
                referenced.add(entry["name"].split("/", 2)[2])
    finally:
        conn.close()
    orphans = [name for name in private
               if name.startswith(".blobsvc/segments/") and name not in referenced]
    tombstones = [name for name in private
                  if name.startswith((".blobsvc/replaced/", ".blobsvc/pending/"))]
    return orphans, tombstones


# -- raw HTTP ----------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)

    def describe(self) -> str:
        return f"{self.status} {dict(self.headers)} {self.body[:300]!r}"


def raw_exchange(host: str, port: int, data: bytes, *, method: str = "GET",
                 timeout: float = 10.0) -> RawResponse:
    """Send ``data`` (a whole request, byte for byte) and read one answer.

    ``method`` only tells the parser whether a body follows (HEAD: none).
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)  # nothing more is coming
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        body = response.read()
        return RawResponse(response.status, response.headers, body)


def request_bytes(method: str, target: str | bytes, headers: Mapping[str, str] | None = None,
                  body: bytes = b"", *, content_length: bool = True) -> bytes:
    """One HTTP/1.1 request, the target exactly as given (no encoding, no normalising)."""
    target = target if isinstance(target, bytes) else target.encode("latin-1")
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1",
             b"Connection: close"]
    headers = dict(headers or {})
    if content_length and body and "Content-Length" not in headers \
            and "Transfer-Encoding" not in headers:
        headers["Content-Length"] = str(len(body))
    for name, value in headers.items():
        lines.append(f"{name}: {value}".encode("latin-1"))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def tool(name: str) -> str:
    """The path of a client tool; under CI a missing one fails the test
    (``.ci/run`` installs them all), elsewhere it skips it."""
    path = shutil.which(name)
    if path is None:
        if ci_mode():
            pytest.fail(f"{name} is not installed; .ci/run installs it")
        pytest.skip(f"{name} is not installed")
    return path


def python_package(name: str) -> ModuleType:
    """A test-only Python package, imported; under CI a missing one fails the
    test (setup.py's ``test`` extra lists it), elsewhere it skips it."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        if ci_mode():
            pytest.fail(f"the Python package {name} is missing ({error}); "
                        "pip install -e '.[test]' installs it")
        pytest.skip(f"the Python package {name} is missing ({error})")

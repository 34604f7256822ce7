"""The client command line (``blobsvc ls|stat|get|put|rm|mv|cp|cat|sign``)
as a user runs it: ``python -m blobsvc`` in real subprocesses against a
live ``blobsvc serve`` (filesystem driver, 127.0.0.1, a free port).

The service requires a credential, so every command also proves the token
(or user) reaches it. Each test works below a prefix of its own.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from api_client import ServerProcess, clean_environ, free_port
from live_server import python_package

from blobsvc.client import Client

TOKEN = "cli-client-token-0123456789"
SIGNING_KEY = "cli-client-signing-key-0123456789abcdef"
PASSWORD = "writer-password"
MiB = 1024 * 1024
REQUEST_ID = r"\(request [0-9a-f]+\)"
#: A download cut short, as urllib3 or the client's own length check reports it.
BROKEN = (r"blobsvc: transport_error: reading \S+: (the connection broke after \d+ bytes, "
          r"\d+ more expected|the answer ended after \d+ of \d+ bytes)")


@pytest.fixture(scope="session")
def service(tmp_path_factory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("cli-client")
    server = ServerProcess(workdir, {
        "server": {"host": "127.0.0.1", "port": 0},
        "storage": {"driver": "filesystem", "root": str(workdir / "data"), "fsync": False},
        "auth": {"anonymous": "none", "signing_key": SIGNING_KEY,
                 "tokens": [{"name": "cli", "token": TOKEN, "access": "write"}],
                 "users": {"writer": {"password": PASSWORD, "access": "write"}}},
        "log": {"access_log": False},
    }).start()
    yield server
    server.stop()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def cli_env(service: ServerProcess, **extra: str) -> dict:
    env = {"BLOBSVC_URL": service.url, "BLOBSVC_TOKEN": TOKEN, **extra}
    return clean_environ({k: v for k, v in env.items() if v is not None})


def blobsvc(service: ServerProcess, *args: str, cwd: Path | None = None, stdin: bytes = b"",
            env: dict | None = None) -> subprocess.CompletedProcess:
    """One command, bytes in and out, stdin a pipe (so never a terminal)."""
    return subprocess.run([sys.executable, "-m", "blobsvc", *args], cwd=cwd,
                          env=env if env is not None else cli_env(service), input=stdin,
                          capture_output=True, timeout=60)


def store(service: ServerProcess, path: str, data: bytes) -> None:
    """Set up an object with the Python client: a test's own command is
    what runs through the command line."""
    with Client(service.url, token=TOKEN) as blobs:
        blobs.put(path, data)


def ok(result: subprocess.CompletedProcess) -> bytes:
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert result.stderr == b"", result.stderr
    return result.stdout


def one_error_line(result: subprocess.CompletedProcess, status: int, pattern: str) -> str:
    """Exit ``status``, nothing on stdout, one line on stderr matching ``pattern``."""
    assert result.returncode == status, (result.returncode, result.stderr)
    assert result.stdout == b"", result.stdout
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(pattern, lines[0]), lines[0]
    return lines[0]


def payload(size: int, seed: str = "x") -> bytes:
    """``size`` bytes of every value, not compressible, not repetitive."""
    blocks = [hashlib.sha512(f"{seed}{counter}".encode()).digest() for counter in range(size // 64 + 1)]
    return b"".join(blocks)[:size]


# -- put, get, ls, stat ----------------------------------------------------------------


def test_put_and_get_round_trip_a_file_byte_for_byte(service, prefix, tmp_path):
    data = payload(300_000) + bytes(range(256))
    (tmp_path / "in.bin").write_bytes(data)
    assert ok(blobsvc(service, "put", "in.bin", f"{prefix}/in.bin", cwd=tmp_path)) == b""
    assert ok(blobsvc(service, "get", f"{prefix}/in.bin", "out.bin", cwd=tmp_path)) == b""
    assert (tmp_path / "out.bin").read_bytes() == data
    assert ok(blobsvc(service, "get", f"{prefix}/in.bin", "-")) == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin", "out.bin"]  # no temp left


def test_put_defaults_to_the_file_name_and_a_slash_means_into(service, prefix, tmp_path):
    (tmp_path / "report.csv").write_bytes(b"a,b\n1,2\n")
    ok(blobsvc(service, "put", "report.csv", f"{prefix}/reports/", cwd=tmp_path))
    ok(blobsvc(service, "get", f"{prefix}/reports/report.csv", cwd=tmp_path / ".."))
    assert (tmp_path.parent / "report.csv").read_bytes() == b"a,b\n1,2\n"
    info = json.loads(ok(blobsvc(service, "stat", "--json", f"{prefix}/reports/report.csv")))
    assert info["content_type"] == "text/csv"  # guessed from the name


def test_get_into_an_existing_directory_keeps_the_object_name(service, prefix, tmp_path):
    store(service, f"{prefix}/d/name.txt", b"named")
    (tmp_path / "here").mkdir()
    ok(blobsvc(service, "get", f"{prefix}/d/name.txt", "here", cwd=tmp_path))
    assert (tmp_path / "here" / "name.txt").read_bytes() == b"named"


def test_ls_lists_one_level_or_everything_below(service, prefix):
    for path in ("a.txt", "b/c.txt", "b/d/e.txt"):
        store(service, f"{prefix}/{path}", path.encode())
    assert ok(blobsvc(service, "ls", prefix)) == f"{prefix}/a.txt\n{prefix}/b/\n".encode()
    assert ok(blobsvc(service, "ls", "-r", prefix)).decode().splitlines() == [
        f"{prefix}/a.txt", f"{prefix}/b/c.txt", f"{prefix}/b/d/e.txt"]
    assert ok(blobsvc(service, "ls", f"{prefix}/a.txt")) == f"{prefix}/a.txt\n".encode()
    assert f"{prefix}/\n".encode() in ok(blobsvc(service, "ls"))


def test_ls_long_shows_size_time_and_etag(service, prefix):
    store(service, f"{prefix}/f/x.bin", b"0123456789")
    lines = ok(blobsvc(service, "ls", "-l", prefix)).decode().splitlines()
    assert len(lines) == 1 and re.fullmatch(
        r" +-  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  - +  " + prefix + "/f/", lines[0]), lines
    line = ok(blobsvc(service, "ls", "-l", f"{prefix}/f")).decode()
    md5 = hashlib.md5(b"0123456789").hexdigest()
    assert re.fullmatch(r" {10}10  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  " + md5 + f"  {prefix}/f/x.bin\n",
                        line), line


def test_stat_shows_metadata_headers_and_type(service, prefix):
    ok(blobsvc(service, "put", "-", f"{prefix}/m.txt", "-m", "color=blue", "-m", "owner=ops team",
               "-H", "Cache-Control: no-cache", "-H", "Content-Type: text/plain; charset=utf-8",
               stdin=b"hello"))
    lines = ok(blobsvc(service, "stat", f"{prefix}/m.txt")).decode().splitlines()
    assert lines[0] == f"path: {prefix}/m.txt"
    assert lines[1] == "size: 5"
    assert re.fullmatch(r"modified: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lines[2])
    assert lines[3:] == [f"etag: {hashlib.md5(b'hello').hexdigest()}",
                         "content-type: text/plain; charset=utf-8", "meta color: blue",
                         "meta owner: ops team", "header Cache-Control: no-cache"]
    info = json.loads(ok(blobsvc(service, "stat", "--json", f"{prefix}/m.txt")))
    assert info["metadata"] == {"color": "blue", "owner": "ops team"}
    assert info["headers"] == {"Cache-Control": "no-cache"} and info["size"] == 5


def test_object_urls_work_as_targets(service, prefix, tmp_path):
    url = f"{service.url}/v1/objects/{prefix}/with%20space.txt"
    env = cli_env(service, BLOBSVC_URL="http://127.0.0.1:1")  # the URL names the service
    ok(blobsvc(service, "put", "-", url, stdin=b"by url", env=env))
    assert ok(blobsvc(service, "get", f"{prefix}/with space.txt", "-")) == b"by url"
    assert ok(blobsvc(service, "get", url, "-", env=env)) == b"by url"


# -- trees, streams ----------------------------------------------------------------------

ODD_NAMES = ["plain.txt", "with space.txt", "ünïcödé ✓.bin", "hash#and?query.txt",
             "per%20cent.txt", "amp&plus+eq=.txt", "quote'dbl\".txt", "empty.bin",
             "deep/er/and deeper/leaf.txt", "deep/er/x.txt", "dots.in.name..txt"]


def test_recursive_put_and_get_copy_a_tree_with_odd_names(service, prefix, tmp_path):
    src = tmp_path / "src"
    expected = {}
    for index, name in enumerate(ODD_NAMES):
        data = b"" if name == "empty.bin" else payload(1000 + 97 * index, name)
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
        expected[name] = data
    ok(blobsvc(service, "put", "-r", "src", f"{prefix}/tree", cwd=tmp_path))
    listed = ok(blobsvc(service, "ls", "-r", f"{prefix}/tree")).decode().splitlines()
    assert listed == sorted(f"{prefix}/tree/{name}" for name in ODD_NAMES)
    ok(blobsvc(service, "get", "-r", f"{prefix}/tree", "back", cwd=tmp_path))
    assert files_below(tmp_path / "back") == expected
    ok(blobsvc(service, "get", "-r", "-c", f"{prefix}/tree", "resumable", cwd=tmp_path))
    assert files_below(tmp_path / "resumable") == expected  # no .part file left


def files_below(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes()
            for path in directory.rglob("*") if path.is_file()}


def test_a_tree_with_a_name_the_service_refuses_names_the_file(service, prefix, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    (tmp_path / "src" / "back\\slash.txt").write_bytes(b"b")
    result = blobsvc(service, "put", "-r", "src", f"{prefix}/t", cwd=tmp_path)
    line = one_error_line(result, 2, r"blobsvc: invalid_path: src/back\\slash.txt: .+")
    assert "backslash" in line
    one_error_line(blobsvc(service, "ls", f"{prefix}/t/"), 1, r"blobsvc: not_found: .+")  # none sent


def test_stdin_is_streamed_up_and_stdout_down(service, prefix):
    data = payload(3 * MiB + 17, "stream")
    ok(blobsvc(service, "put", "-", f"{prefix}/s.bin", stdin=data))
    assert ok(blobsvc(service, "get", f"{prefix}/s.bin", "-")) == data


# -- resumable get -----------------------------------------------------------------------


class CuttingProxy:
    """A proxy on 127.0.0.1 that records each request head and can cut a GET
    answer after ``cut_after`` bytes, as a dropped connection would."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.cut_after: int | None = None
        #: Hold a cut answer's connection open (a stalled network) instead of closing it.
        self.stall = False
        self.heads: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(10)
                self._relay(conn)

    def _relay(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        text = head.decode("latin-1").split("\r\n\r\n", 1)[0]
        self.heads.append(text)
        lines = [line for line in text.split("\r\n") if not line.lower().startswith("connection:")]
        request = ("\r\n".join(lines) + "\r\nConnection: close\r\n\r\n").encode("latin-1")
        limit = self.cut_after if text.startswith("GET ") else None
        sent = 0
        with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10) as upstream:
            upstream.sendall(request)
            while limit is None or sent < limit:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                if limit is not None:
                    chunk = chunk[: limit - sent]
                conn.sendall(chunk)
                sent += len(chunk)
        if self.stall and limit is not None:
            self._stop.wait(30)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()


@pytest.fixture
def proxy(service) -> Iterator[CuttingProxy]:
    relay = CuttingProxy(service.port)
    yield relay
    relay.close()


def interrupted_download(service, proxy, path: str, cwd: Path, cut_after: int) -> None:
    """``get -c`` through the proxy, cut partway: leaves dest.part behind."""
    proxy.cut_after = cut_after
    result = blobsvc(service, "--url", proxy.url, "get", "-c", path, "dest", cwd=cwd)
    one_error_line(result, 3, BROKEN)
    assert not (cwd / "dest").exists()
    proxy.cut_after = None


def test_resumed_get_asks_only_for_the_missing_bytes(service, proxy, prefix, tmp_path):
    data = payload(2 * MiB, "resume")
    store(service, f"{prefix}/big.bin", data)
    interrupted_download(service, proxy, f"{prefix}/big.bin", tmp_path, 700_000)
    part = (tmp_path / "dest.part").read_bytes()
    assert 0 < len(part) < len(data) and data.startswith(part)
    state = json.loads((tmp_path / "dest.part.json").read_text())
    assert state == {"path": f"{prefix}/big.bin", "etag": hashlib.md5(data).hexdigest(),
                     "size": len(data)}
    proxy.heads.clear()
    ok(blobsvc(service, "--url", proxy.url, "get", "-c", f"{prefix}/big.bin", "dest", cwd=tmp_path))
    assert (tmp_path / "dest").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"]
    gets = [head for head in proxy.heads if head.startswith("GET ")]
    assert len(gets) == 1
    assert f"\r\nRange: bytes={len(part)}-\r\n" in gets[0] + "\r\n"
    assert f'\r\nIf-Match: "{hashlib.md5(data).hexdigest()}"\r\n' in gets[0] + "\r\n"


def test_ctrl_c_keeps_a_resumable_download_for_later(service, proxy, prefix, tmp_path):
    data = payload(2 * MiB, "ctrl-c")
    store(service, f"{prefix}/stop.bin", data)
    proxy.cut_after, proxy.stall = 600_000, True
    proc = subprocess.Popen([sys.executable, "-m", "blobsvc", "--url", proxy.url, "get", "-c",
                             f"{prefix}/stop.bin", "dest"], cwd=tmp_path, env=cli_env(service),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        part = tmp_path / "dest.part"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (part.exists() and part.stat().st_size >= 256 * 1024):
            time.sleep(0.05)  # the bytes before the stall have arrived
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out, b"Traceback" in err) == (130, b"", False), err
    kept = part.read_bytes()
    assert len(kept) >= 256 * 1024 and data.startswith(kept)
    assert (tmp_path / "dest.part.json").exists() and not (tmp_path / "dest").exists()
    ok(blobsvc(service, "get", "-c", f"{prefix}/stop.bin", "dest", cwd=tmp_path))
    assert (tmp_path / "dest").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"]


def test_resumed_get_starts_over_when_the_object_changed(service, proxy, prefix, tmp_path):
    old, new = payload(2 * MiB, "old"), payload(2 * MiB, "new")
    store(service, f"{prefix}/v.bin", old)
    interrupted_download(service, proxy, f"{prefix}/v.bin", tmp_path, 500_000)
    assert old.startswith((tmp_path / "dest.part").read_bytes())
    store(service, f"{prefix}/v.bin", new)  # same size, other bytes
    proxy.heads.clear()
    ok(blobsvc(service, "--url", proxy.url, "get", "-c", f"{prefix}/v.bin", "dest", cwd=tmp_path))
    assert (tmp_path / "dest").read_bytes() == new
    gets = [head for head in proxy.heads if head.startswith("GET ")]
    assert len(gets) == 1 and "Range:" not in gets[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"]


def test_resumable_get_of_a_complete_part_only_renames_it(service, proxy, prefix, tmp_path):
    store(service, f"{prefix}/small.txt", b"complete")
    (tmp_path / "dest.part").write_bytes(b"complete")
    (tmp_path / "dest.part.json").write_text(json.dumps(
        {"path": f"{prefix}/small.txt", "etag": hashlib.md5(b"complete").hexdigest(), "size": 8}))
    ok(blobsvc(service, "--url", proxy.url, "get", "-c", f"{prefix}/small.txt", "dest", cwd=tmp_path))
    assert (tmp_path / "dest").read_bytes() == b"complete"
    assert [head.split(" ", 1)[0] for head in proxy.heads] == ["HEAD"]


def test_a_plain_get_cut_short_leaves_nothing(service, proxy, prefix, tmp_path):
    store(service, f"{prefix}/cut.bin", payload(MiB))
    proxy.cut_after = 300_000
    result = blobsvc(service, "--url", proxy.url, "get", f"{prefix}/cut.bin", "dest", cwd=tmp_path)
    one_error_line(result, 3, BROKEN)
    assert list(tmp_path.iterdir()) == []


# -- rm, mv, cp, cat, sign --------------------------------------------------------------


def test_mv_cp_and_cat_work_server_side(service, prefix):
    store(service, f"{prefix}/one", b"first,")
    store(service, f"{prefix}/two", b"second")
    assert ok(blobsvc(service, "mv", f"{prefix}/one", f"{prefix}/part1")) == b""
    assert ok(blobsvc(service, "cp", f"{prefix}/two", f"{prefix}/part2", "-m", "k=v")) == b""
    assert ok(blobsvc(service, "ls", prefix)).decode().split() == [
        f"{prefix}/part1", f"{prefix}/part2", f"{prefix}/two"]
    assert ok(blobsvc(service, "cat", f"{prefix}/all", f"{prefix}/part1", f"{prefix}/part2")) == b""
    assert ok(blobsvc(service, "get", f"{prefix}/all", "-")) == b"first,second"
    assert ok(blobsvc(service, "ls", prefix)).decode().split() == [f"{prefix}/all", f"{prefix}/two"]
    ok(blobsvc(service, "cp", f"{prefix}/two", f"{prefix}/sub/"))
    assert ok(blobsvc(service, "get", f"{prefix}/sub/two", "-")) == b"second"


def test_rm_deletes_objects_and_with_r_whole_trees(service, prefix):
    for path in ("keep.txt", "dir/a", "dir/b/c", "dir/b/d"):
        store(service, f"{prefix}/{path}", b"x")
    one_error_line(blobsvc(service, "rm", f"{prefix}/dir"), 3, r"blobsvc: conflict: .*" + REQUEST_ID)
    assert ok(blobsvc(service, "rm", "-r", f"{prefix}/dir")) == b""
    assert ok(blobsvc(service, "ls", "-r", prefix)) == f"{prefix}/keep.txt\n".encode()
    assert ok(blobsvc(service, "rm", f"{prefix}/keep.txt")) == b""
    one_error_line(blobsvc(service, "rm", f"{prefix}/keep.txt"), 1,
                   rf"blobsvc: not_found: no object at {prefix}/keep.txt " + REQUEST_ID)
    assert ok(blobsvc(service, "rm", "-f", f"{prefix}/keep.txt")) == b""


def test_rm_r_of_an_object_deletes_that_object(service, prefix):
    store(service, f"{prefix}/only.txt", b"x")
    store(service, f"{prefix}/only.txt.keep", b"y")
    assert ok(blobsvc(service, "rm", "-r", f"{prefix}/only.txt")) == b""
    assert ok(blobsvc(service, "ls", prefix)) == f"{prefix}/only.txt.keep\n".encode()
    one_error_line(blobsvc(service, "rm", "-r", f"{prefix}/only.txt"), 1,
                   rf"blobsvc: not_found: no object at {prefix}/only.txt " + REQUEST_ID)


def test_cat_with_missing_chunks_names_them_and_changes_nothing(service, prefix):
    store(service, f"{prefix}/c1", b"one")
    line = one_error_line(blobsvc(service, "cat", f"{prefix}/out", f"{prefix}/c1", f"{prefix}/c2"), 1,
                          r"blobsvc: not_found: .+ " + REQUEST_ID)
    assert f"{prefix}/c2" in line
    assert ok(blobsvc(service, "ls", prefix)) == f"{prefix}/c1\n".encode()


def test_sign_makes_a_url_that_needs_no_credential(service, prefix):
    store(service, f"{prefix}/shared.txt", b"shared")
    env = cli_env(service, BLOBSVC_SIGNING_KEY=SIGNING_KEY)
    url = ok(blobsvc(service, "sign", "--expires", "60", f"{prefix}/shared.txt", env=env)).decode()
    assert url.startswith(f"{service.url}/v1/objects/{prefix}/shared.txt?expires=")
    with urllib.request.urlopen(url.strip(), timeout=10) as answer:
        assert answer.read() == b"shared"
    by_url = ok(blobsvc(service, "sign", f"{service.url}/v1/objects/{prefix}/shared.txt",
                        env=cli_env(service, BLOBSVC_URL="http://127.0.0.1:1",
                                    BLOBSVC_SIGNING_KEY=SIGNING_KEY))).decode()
    assert by_url.startswith(f"{service.url}/v1/objects/{prefix}/shared.txt?expires=")


# -- credentials, errors and exit statuses ------------------------------------------------


def test_user_and_password_from_the_environment(service, prefix):
    env = cli_env(service, BLOBSVC_TOKEN=None, BLOBSVC_USER="writer", BLOBSVC_PASSWORD=PASSWORD)
    ok(blobsvc(service, "put", "-", f"{prefix}/u.txt", stdin=b"basic", env=env))
    assert ok(blobsvc(service, "get", f"{prefix}/u.txt", "-", env=env)) == b"basic"


def test_no_credential_is_refused_with_the_services_words(service, prefix):
    result = blobsvc(service, "ls", prefix, env=cli_env(service, BLOBSVC_TOKEN=None))
    one_error_line(result, 3, r"blobsvc: unauthorized: .+ " + REQUEST_ID)


def test_not_found_exits_1_with_code_message_and_request_id(service, prefix, tmp_path):
    one_error_line(blobsvc(service, "get", f"{prefix}/missing", "-"), 1,
                   rf"blobsvc: not_found: no object at {prefix}/missing " + REQUEST_ID)
    one_error_line(blobsvc(service, "get", f"{prefix}/missing", cwd=tmp_path), 1,
                   rf"blobsvc: not_found: no object at {prefix}/missing " + REQUEST_ID)
    one_error_line(blobsvc(service, "get", "-c", f"{prefix}/missing", cwd=tmp_path), 1,
                   rf"blobsvc: not_found: no object at {prefix}/missing " + REQUEST_ID)
    one_error_line(blobsvc(service, "stat", f"{prefix}/missing"), 1,
                   rf"blobsvc: not_found: no object at {prefix}/missing " + REQUEST_ID)
    one_error_line(blobsvc(service, "ls", f"{prefix}/missing/"), 1,
                   r"blobsvc: not_found: .+ " + REQUEST_ID)
    one_error_line(blobsvc(service, "ls", f"{prefix}/missing"), 1,
                   rf"blobsvc: not_found: no object at {prefix}/missing " + REQUEST_ID)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_precondition_exits_1_and_changes_nothing(service, prefix):
    store(service, f"{prefix}/p.txt", b"original")
    one_error_line(blobsvc(service, "put", "-n", "-", f"{prefix}/p.txt", stdin=b"other"), 1,
                   r"blobsvc: precondition_failed: .+ " + REQUEST_ID)
    one_error_line(blobsvc(service, "put", "--if-match", "0" * 32, "-", f"{prefix}/p.txt",
                           stdin=b"other"), 1, r"blobsvc: precondition_failed: .+")
    assert ok(blobsvc(service, "get", f"{prefix}/p.txt", "-")) == b"original"


@pytest.mark.parametrize("args, fragment", [
    (["put", "-", ], "stdin ('-') needs a TARGET"),
    (["get", "-r", "a", "-"], "stdout ('-') takes one object"),
    (["stat", "a/../b"], "invalid_path: '..' is not allowed"),
    (["put", "-m", "novalue", "-", "x"], "-m takes KEY=VALUE"),
    (["--url", "ftp://host", "ls"], "--url must be http(s)"),
    (["get", "http://127.0.0.1:1/not/objects/x", "-"], "not an object URL"),
])
def test_usage_errors_exit_2_with_one_line(service, args, fragment):
    result = blobsvc(service, *args)
    line = one_error_line(result, 2, r"blobsvc: .+")
    assert fragment in line


def test_sign_without_a_key_says_so(service):
    one_error_line(blobsvc(service, "sign", "a/b"), 2,
                   r"blobsvc: no signing key: the config has no auth.signing_key "
                   r"and BLOBSVC_SIGNING_KEY is not set")


def test_get_into_a_missing_local_directory_names_it(service, prefix, tmp_path):
    store(service, f"{prefix}/x", b"x")
    one_error_line(blobsvc(service, "get", f"{prefix}/x", "nodir/x", cwd=tmp_path), 1,
                   r"blobsvc: nodir: no such directory")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_option_is_a_usage_error(service):
    result = blobsvc(service, "ls", "--no-such-option")
    assert result.returncode == 2 and b"unrecognized arguments: --no-such-option" in result.stderr
    assert b"Traceback" not in result.stderr


def test_a_refused_connection_exits_3(service):
    port = free_port()
    result = blobsvc(service, "--url", f"http://127.0.0.1:{port}", "ls")
    one_error_line(result, 3, rf"blobsvc: transport_error: GET http://127.0.0.1:{port}/v1/objects/: "
                   r"Connection refused")


def test_a_reader_that_goes_away_ends_the_download_quietly(service, prefix):
    store(service, f"{prefix}/pipe.bin", payload(4 * MiB, "pipe"))
    proc = subprocess.Popen([sys.executable, "-m", "blobsvc", "get", f"{prefix}/pipe.bin", "-"],
                            env=cli_env(service), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert len(proc.stdout.read(1)) == 1  # as `| head -c1` does, then goes away
        proc.stdout.close()
        assert proc.wait(30) == 141
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_during_an_upload_exits_130_and_stores_nothing(service, prefix):
    temporary = service.workdir / "data" / ".blobsvc" / "tmp"
    before = set(temporary.glob("*"))
    proc = subprocess.Popen([sys.executable, "-m", "blobsvc", "put", "-", f"{prefix}/int.bin"],
                            env=cli_env(service), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None
        proc.stdin.write(payload(256 * 1024))
        proc.stdin.flush()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not set(temporary.glob("*")) - before:
            time.sleep(0.05)  # the upload is under way once the service has a temporary file
        assert set(temporary.glob("*")) - before, "the upload never reached the service"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert b"Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    one_error_line(blobsvc(service, "stat", f"{prefix}/int.bin"), 1, r"blobsvc: not_found: .+")


# -- progress -------------------------------------------------------------------------------


def on_a_terminal(service, args: list[str], cwd: Path) -> tuple[int, bytes]:
    """Run with stdin, stdout and stderr on a new pseudo-terminal: (status, what it showed)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty has 0 columns
    proc = subprocess.Popen([sys.executable, "-m", "blobsvc", *args], cwd=cwd, env=cli_env(service),
                            stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    shown = b""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's last user is gone
                break
            if not chunk:
                break
            shown += chunk
        return proc.wait(30), shown
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_progress_bar_is_drawn_on_a_terminal_only(service, prefix, tmp_path):
    python_package("tqdm")
    store(service, f"{prefix}/bar.bin", payload(2 * MiB, "bar"))
    status, shown = on_a_terminal(service, ["get", f"{prefix}/bar.bin", "dest"], tmp_path)
    assert status == 0, shown
    assert b"bar.bin: 100%" in shown and b"2.00M/2.00M" in shown, shown
    assert (tmp_path / "dest").read_bytes() == payload(2 * MiB, "bar")
    status, shown = on_a_terminal(service, ["get", "-q", f"{prefix}/bar.bin", "quiet"], tmp_path)
    assert (status, shown) == (0, b"")
    store(service, f"{prefix}/text.txt", b"just the text")
    status, shown = on_a_terminal(service, ["get", f"{prefix}/text.txt", "-"], tmp_path)
    assert (status, shown) == (0, b"just the text")  # no bar mixed into the bytes
    piped = blobsvc(service, "get", f"{prefix}/bar.bin", "piped", cwd=tmp_path)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, b"", b"")
    (tmp_path / "up.bin").write_bytes(payload(MiB, "up"))
    status, shown = on_a_terminal(service, ["put", "up.bin", f"{prefix}/up.bin"], tmp_path)
    assert status == 0 and b"up.bin: 100%" in shown and b"1.00M/1.00M" in shown, shown


def test_a_tree_transfer_draws_one_bar_for_all_its_bytes(service, prefix, tmp_path):
    python_package("tqdm")
    for name in ("a.bin", "sub/b.bin"):
        (tmp_path / "tree" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / name).write_bytes(payload(512 * 1024, name))
    status, shown = on_a_terminal(service, ["put", "-r", "tree", f"{prefix}/tree"], tmp_path)
    assert status == 0 and b"100%" in shown and b"1.00M/1.00M" in shown, shown
    status, shown = on_a_terminal(service, ["get", "-r", f"{prefix}/tree", "back"], tmp_path)
    assert status == 0 and b"100%" in shown and b"1.00M/1.00M" in shown, shown
    assert (tmp_path / "back" / "sub" / "b.bin").read_bytes() == payload(512 * 1024, "sub/b.bin")


def test_the_client_commands_need_none_of_the_servers_libraries():
    """``blobsvc[client]`` is all they need: the server's libraries stay unloaded."""
    probe = ("import sys, blobsvc.clientcli; "
             "print(sorted(m for m in ('cherrypy', 'cheroot', 'yaml', 'prometheus_client') "
             "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=30, env=clean_environ())
    assert (result.returncode, result.stdout, result.stderr) == (0, "[]\n", "")

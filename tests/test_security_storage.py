"""Storage-side security over a real socket: what a hostile client or a hostile file can do.

Each test talks to a live ``blobsvc serve`` (filesystem driver) through raw
requests (``live_server.request_bytes``), so the server sees exactly the
bytes written here, and checks the answer, how fast it came, and the disk:

* ranges: a huge Range header of a shape that made the old parser
  backtrack (cubic time, the worker frozen under the GIL) is answered at once;
* limits: ``cat`` cannot make an object above ``server.max_object_size``,
  however often it names one chunk;
* special files: a FIFO, character devices, a hard link to a file outside
  the root and unreadable files planted in the root are answered promptly
  with a JSON error (never served, never blocking, never a traceback), and
  the server still stops promptly on SIGTERM;
* file modes: objects and directories are private on disk (0600/0700) unless
  the operator configures group access;
* Unicode names: a name not in NFC, or with a bidirectional control, is 400.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from live_server import GroupServer, filesystem_config, raw_exchange, request_bytes

TOKEN = f"OUTSIDE-{uuid.uuid4().hex}"
OBJECT = b"0123456789" * 10
#: Answers that take longer point to a parser or a read that does not end.
PROMPT_SECONDS = 2.0
#: Client timeout: a request still unanswered by then is a failure, not a hang.
CLIENT_TIMEOUT = 10.0


def send(server: GroupServer, method: str, target: str, headers: dict | None = None,
         body: bytes = b""):
    """One request; the answer and the seconds it took."""
    started = time.monotonic()
    res = raw_exchange("127.0.0.1", server.port, request_bytes(method, target, headers, body),
                       method=method, timeout=CLIENT_TIMEOUT)
    return res, time.monotonic() - started


def post_json(server: GroupServer, url: str, document: dict):
    return send(server, "POST", url, {"Content-Type": "application/json"},
                json.dumps(document).encode())


def assert_json_error(res, status: int, code: str) -> dict:
    assert res.status == status, res.describe()
    assert res.headers.get("Content-Type", "").startswith("application/json"), res.describe()
    error = res.json()["error"]
    assert error["code"] == code, res.describe()
    return error


def start(base: Path, config: dict, server_class: type[GroupServer] = GroupServer) -> GroupServer:
    server = server_class(base / "server", config)
    server.start()
    return server


def stop_promptly(server: GroupServer) -> None:
    """SIGTERM must end the service well within its shutdown timeout, cleanly."""
    started = time.monotonic()
    code = server.stop()
    elapsed = time.monotonic() - started
    assert code == 0 and elapsed < 4.0, f"exit {code} after {elapsed:.1f}s:\n" + \
        server.readable_stderr_tail()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One worker, so that a frozen thread would be felt by the next request too."""
    base = tmp_path_factory.mktemp("security")
    server = start(base, filesystem_config(base / "data", workers=1, max_object_size=1024 * 1024))
    res, _ = send(server, "PUT", "/v1/objects/obj", body=OBJECT)
    assert res.status == 201, res.describe()
    yield server
    server.stop()


# -- 4. ranges ----------------------------------------------------------------------

#: Largest header the server accepts is 64 KiB; these are just under.
HOSTILE_RANGES = {
    "spaces around the dash": "bytes=" + " " * 30_000 + "-" + " " * 30_000 + "x",
    "tabs around the dash": "bytes=" + "\t" * 30_000 + "-" + "\t" * 30_000 + "x",
    "spaces, digits, spaces": "bytes=" + " " * 20_000 + "1" * 20_000 + " " * 20_000 + "-x",
}


@pytest.mark.parametrize("value", HOSTILE_RANGES.values(), ids=HOSTILE_RANGES.keys())
def test_hostile_range_header_is_answered_at_once(server, value):
    res, elapsed = send(server, "GET", "/v1/objects/obj", {"Range": value})
    assert res.status == 200, res.describe()  # malformed: ignored, as RFC 9110 says
    assert res.body == OBJECT
    assert elapsed < PROMPT_SECONDS, f"{elapsed:.2f}s for a {len(value)}-byte Range header"
    res, elapsed = send(server, "GET", "/v1/objects/obj", {"Range": "bytes = 10 - 19"})
    assert (res.status, res.body) == (206, OBJECT[10:20])
    assert elapsed < PROMPT_SECONDS


# -- 10. cat and max_object_size ------------------------------------------------


def test_cat_naming_one_chunk_500_times_is_413_and_changes_nothing(server):
    chunk = os.urandom(64 * 1024)
    res, _ = send(server, "PUT", "/v1/objects/cat/chunk", body=chunk)
    assert res.status == 201, res.describe()
    res, elapsed = post_json(server, "/v1/cat", {"path": "cat/out", "chunks": ["cat/chunk"] * 500})
    assert_json_error(res, 413, "too_large")
    assert elapsed < PROMPT_SECONDS, f"{elapsed:.2f}s: the result was joined before the check"
    assert send(server, "GET", "/v1/objects/cat/chunk")[0].body == chunk
    assert send(server, "HEAD", "/v1/objects/cat/out")[0].status == 404


def test_cat_of_exactly_max_object_size_is_created(server):
    chunk = os.urandom(64 * 1024)
    res, _ = send(server, "PUT", "/v1/objects/exact/chunk", body=chunk)
    assert res.status == 201, res.describe()
    res, _ = post_json(server, "/v1/cat", {"path": "exact/out", "chunks": ["exact/chunk"] * 16})
    assert res.status == 201, res.describe()
    assert res.json()["size"] == 1024 * 1024


# -- 19. Unicode names --------------------------------------------------------------

REFUSED_NAMES = {
    "NFD e + combining acute": ("cafe%CC%81", "NFC"),
    "right-to-left override": ("invoice%E2%80%AEfdp.exe", "bidirectional"),
    "first-strong isolate in a directory": ("a%E2%81%A8/b", "bidirectional"),
    "left-to-right mark": ("a%E2%80%8Eb", "bidirectional"),
}


@pytest.mark.parametrize("target, hint", REFUSED_NAMES.values(), ids=REFUSED_NAMES.keys())
def test_names_not_in_nfc_or_with_bidi_controls_are_400(server, target, hint):
    res, _ = send(server, "PUT", "/v1/objects/uni/" + target, body=b"x")
    error = assert_json_error(res, 400, "invalid_path")
    assert hint in error["message"], res.describe()
    assert send(server, "HEAD", "/v1/objects/uni/" + target)[0].status == 400
    res, _ = post_json(server, "/v1/move", {"from": "obj", "to": "uni/cafe\u0301"})
    assert_json_error(res, 400, "invalid_path")
    assert send(server, "GET", "/v1/objects/obj")[0].status == 200


def test_an_nfc_name_is_stored_and_listed_as_sent(server):
    res, _ = send(server, "PUT", "/v1/objects/nfc/caf%C3%A9", body=b"x")
    assert res.status == 201, res.describe()
    listing = send(server, "GET", "/v1/objects/nfc/")[0].json()
    assert [entry["name"] for entry in listing["entries"]] == ["caf\u00e9"]


# -- 13. special files, hard links, unreadable files ------------------------------


def plant(root: Path, outside: Path) -> list[str]:
    """Special files and a hard link in the root; the names planted."""
    root.mkdir(parents=True)
    os.mkfifo(root / "fifo")
    os.mknod(root / "zero", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # endless bytes
    os.mknod(root / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # EPERM on xattrs
    outside.write_text(TOKEN)
    os.link(outside, root / "hard")
    (root / "dir").mkdir()
    os.mkfifo(root / "dir" / "fifo")
    return ["fifo", "zero", "null", "hard", "dir/fifo"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
def test_planted_special_files_and_hard_links_are_not_found_promptly(tmp_path):
    outside = tmp_path / "outside.txt"
    root = tmp_path / "data"
    names = plant(root, outside)
    server = start(tmp_path, filesystem_config(root, workers=1))
    try:
        for name in names:
            for method in ("GET", "HEAD"):
                for headers in ({}, {"Range": "bytes=0-9"}):
                    res, elapsed = send(server, method, "/v1/objects/" + name, headers)
                    assert elapsed < PROMPT_SECONDS, f"{method} {name}: {elapsed:.2f}s"
                    assert res.status == 404, f"{method} {name}: {res.describe()}"
                    assert TOKEN.encode() not in res.body
        for directory, listed in (("", ["dir"]), ("dir/", [])):
            res, elapsed = send(server, "GET", "/v1/objects/" + directory)
            assert res.status == 200 and elapsed < PROMPT_SECONDS, res.describe()
            assert [entry["name"] for entry in res.json()["entries"]] == listed, res.describe()
        res, _ = post_json(server, "/v1/cat", {"path": "stolen", "chunks": ["hard"]})
        assert_json_error(res, 404, "not_found")
        res, _ = post_json(server, "/v1/move", {"from": "hard", "to": "stolen"})
        assert_json_error(res, 404, "not_found")
        res, _ = send(server, "PUT", "/v1/objects/after", body=b"abc")
        assert res.status == 201 and res.json()["etag"] == "900150983cd24fb0d6963f7d28e17f72"
        assert os.getxattr(root / "after", "user.blobsvc.etag") == b"900150983cd24fb0d6963f7d28e17f72", \
            "ETag xattrs were turned off by a planted device"
    finally:
        stop_promptly(server)
    assert outside.read_text() == TOKEN
    assert os.listxattr(outside) == [], "attributes were written through the hard link"
    assert os.path.lexists(root / "hard") and stat.S_ISFIFO(os.lstat(root / "fifo").st_mode)
    assert "Traceback" not in server.stderr(), server.readable_stderr_tail()


class NoDacOverrideServer(GroupServer):
    """The service as root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH: modes apply to it."""

    def start(self, wait: bool = True, timeout: float = 20.0) -> NoDacOverrideServer:
        self.port = None
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--",
                   sys.executable, "-m", "blobsvc", "serve", "-c", str(self.config_path)]
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(command, cwd=self.workdir, env=self.env, stdout=out,
                                         stderr=err, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        if wait:
            try:
                self.wait_ready(timeout)
            except BaseException:
                self.stop()
                raise
        return self


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to drop the capability that ignores modes")
def test_unreadable_files_are_a_typed_error_without_traceback(tmp_path):
    root = tmp_path / "data"
    (root / "closed").mkdir(parents=True)
    (root / "locked").write_bytes(b"unreadable")
    (root / "closed" / "inside").write_bytes(b"behind a closed directory")
    server = start(tmp_path, filesystem_config(root, workers=1), NoDacOverrideServer)
    os.chmod(root / "locked", 0)
    os.chmod(root / "closed", 0)
    try:
        checks = [("GET", "/v1/objects/locked"), ("GET", "/v1/objects/closed/"),
                  ("GET", "/v1/objects/closed/inside"), ("DELETE", "/v1/objects/locked"),
                  ("PUT", "/v1/objects/closed/new")]
        for method, target in checks:
            res, elapsed = send(server, method, target, body=b"x" if method == "PUT" else b"")
            error = assert_json_error(res, 500, "storage_permission_denied")
            assert str(root) not in error["message"], "the answer shows a disk path"
            assert elapsed < PROMPT_SECONDS
        res, _ = send(server, "HEAD", "/v1/objects/locked")
        assert res.status == 500
        res, _ = post_json(server, "/v1/cat", {"path": "out", "chunks": ["closed/inside"]})
        assert_json_error(res, 500, "storage_permission_denied")
    finally:
        os.chmod(root / "closed", 0o700)
        stop_promptly(server)
    assert "Traceback" not in server.stderr(), server.readable_stderr_tail()
    assert (root / "locked").exists()


# -- 18. file modes -------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def start_with_umask(base: Path, config: dict, umask: int) -> GroupServer:
    """The server inherits ``umask``: configured modes must not depend on it."""
    previous = os.umask(umask)
    try:
        return start(base, config)
    finally:
        os.umask(previous)


def write_through_every_route(server: GroupServer) -> None:
    """An object by PUT, one by move into new directories, one by cat."""
    for target in ("/v1/objects/p/q/put", "/v1/objects/chunk"):
        res, _ = send(server, "PUT", target, body=b"data")
        assert res.status == 201, res.describe()
    res, _ = post_json(server, "/v1/move", {"from": "p/q/put", "to": "m/n/moved"})
    assert res.status == 201, res.describe()
    res, _ = post_json(server, "/v1/cat", {"path": "c/d/cat", "chunks": ["chunk"]})
    assert res.status == 201, res.describe()
    res, _ = send(server, "PUT", "/v1/objects/p/q/put", body=b"again")
    assert res.status == 201, res.describe()


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_objects_and_directories_are_private_on_disk(tmp_path, umask):
    root = tmp_path / "data"
    server = start_with_umask(tmp_path, filesystem_config(root, workers=1), umask)
    try:
        write_through_every_route(server)
    finally:
        server.stop()
    for path in ("p/q/put", "m/n/moved", "c/d/cat"):
        assert mode(root / path) == 0o600, f"{path}: {mode(root / path):o}"
    for path in ("p", "p/q", "m", "m/n", "c", "c/d", ".blobsvc", ".blobsvc/tmp"):
        assert mode(root / path) == 0o700, f"{path}: {mode(root / path):o}"


def test_configured_group_modes_apply_whatever_the_umask(tmp_path):
    root = tmp_path / "data"
    config = filesystem_config(root, workers=1)
    config["storage"].update(file_mode="0640", dir_mode="0750")
    server = start_with_umask(tmp_path, config, 0o077)
    try:
        write_through_every_route(server)
    finally:
        server.stop()
    for path in ("p/q/put", "m/n/moved", "c/d/cat"):
        assert mode(root / path) == 0o640, f"{path}: {mode(root / path):o}"
    for path in ("p", "p/q", "m", "m/n", "c", "c/d"):
        assert mode(root / path) == 0o750, f"{path}: {mode(root / path):o}"

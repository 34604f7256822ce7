"""Backend faults as typed errors, readiness, and conditional move and cat.

* Every OSError the filesystem driver meets becomes a typed storage error
  with a precise status and code (injected errors for each operation, and a
  real read-only tmpfs where the tests run as root), answered as JSON and
  logged once, with the object path and without a traceback.
* ``/readyz`` answers 503 with the reason when the filesystem root is
  missing, not a directory, read-only or full.
* ``If-None-Match: *`` and ``If-Match`` apply to the destination of
  ``POST /v1/move`` and ``POST /v1/cat`` (412, nothing changed), on every
  driver; without them the destination is overwritten.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import subprocess

import pytest
import webtest
from api_client import WebTestClient, object_url
from test_openapi import Conformance

import blobsvc.config
from blobsvc.http.app import build_app
from blobsvc.http.errors import status_of
from blobsvc.native.openapi import SPEC
from blobsvc.storage.errors import (
    BackendUnavailable,
    InsufficientStorage,
    InvalidPath,
    StorageError,
    StorageFault,
    StoragePermissionDenied,
)
from blobsvc.storage.filesystem import FilesystemDriver
from blobsvc.storage.memory import MemoryDriver

# -- helpers ------------------------------------------------------------------


def http_client(driver) -> WebTestClient:
    """The service in-process around ``driver``, without an access log."""
    config = blobsvc.config.build({"storage": {"driver": "memory"}, "log": {"access_log": False}})
    return WebTestClient(build_app(config, driver))


def post_json(client, route: str, document: dict, headers: dict | None = None):
    return client.request("POST", route, json.dumps(document).encode(),
                          {"Content-Type": "application/json", **(headers or {})})


def error_of(res, status: int, code: str) -> dict:
    """The JSON error body, checked against ``status`` and ``code``."""
    assert res.status == status, (res.status, res.body)
    assert res.headers["Content-Type"].startswith("application/json")
    assert b"Traceback" not in res.body
    error = json.loads(res.body)["error"]
    assert (error["status"], error["code"]) == (status, code), error
    assert isinstance(error["message"], str) and error["message"]
    return error


def broken(monkeypatch, function: str, code: int) -> None:
    """Make every call of ``os.<function>`` fail with ``code`` (lock files aside:
    they are opened once per process, before any operation)."""
    real = getattr(os, function)

    def fail(*args, **kwargs):
        first = args[0] if args else None
        if isinstance(first, (str, bytes, os.PathLike)) and "/.blobsvc/locks/" in os.fsdecode(first):
            return real(*args, **kwargs)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, function, fail)


@contextlib.contextmanager
def mounted_tmpfs(mount_point, size: str = "2m"):
    """A small tmpfs (root only): real ENOSPC and EROFS; skips where it cannot mount."""
    mount_point.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}); "
                    "the injected errors still cover the code path")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def remount(mount_point, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount_point)], check=True,
                   capture_output=True)


def fill(directory) -> None:
    """Write into ``directory`` until the volume has no block left."""
    with open(os.path.join(directory, "filler"), "wb") as filler:
        with contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()


@pytest.fixture
def root(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def fs(root):
    return FilesystemDriver.build(root=str(root), fsync=False)


def temp_files(fs: FilesystemDriver) -> list[str]:
    return os.listdir(os.path.join(fs.root, ".blobsvc", "tmp"))


def files(fs: FilesystemDriver) -> dict[str, bytes]:
    """Every object's bytes by path, read straight from the disk."""
    found = {}
    for directory, subdirs, names in os.walk(fs.root):
        subdirs[:] = [d for d in subdirs if d != ".blobsvc"]
        for name in names:
            full = os.path.join(directory, name)
            with open(full, "rb") as handle:
                found[os.path.relpath(full, fs.root)] = handle.read()
    return found


# -- filesystem errors, driver level ------------------------------------------

#: errno -> (typed error, code) the driver raises for it.
ERRNO_MAPPING = {
    "EIO": (errno.EIO, BackendUnavailable, "backend_unavailable"),
    "EROFS": (errno.EROFS, BackendUnavailable, "backend_unavailable"),
    "ENAMETOOLONG": (errno.ENAMETOOLONG, InvalidPath, "invalid_path"),
    "EMFILE": (errno.EMFILE, StorageFault, "storage_error"),
    "ESTALE": (errno.ESTALE, StorageFault, "storage_error"),
    "ENOSPC": (errno.ENOSPC, InsufficientStorage, "insufficient_storage"),
    "EDQUOT": (errno.EDQUOT, InsufficientStorage, "insufficient_storage"),
    "EACCES": (errno.EACCES, StoragePermissionDenied, "storage_permission_denied"),
}

#: operation -> (the call, the os function it cannot do without, the path it concerns).
OPERATIONS = {
    "put-open": (lambda fs: fs.put_object("d/obj", b"new"), "open", "d/obj"),
    "put-write": (lambda fs: fs.put_object("d/obj", b"new"), "write", "d/obj"),
    "put-commit": (lambda fs: fs.put_object("d/obj", b"new"), "rename", "d/obj"),
    "get-open": (lambda fs: fs.get_object("d/obj"), "open", "d/obj"),
    "get-read": (lambda fs: fs.get_object("d/obj"), "pread", "d/obj"),
    "stat": (lambda fs: fs.stat_object("d/obj"), "fstat", "d/obj"),
    "list": (lambda fs: fs.list_objects("d"), "listdir", "d"),
    "list-entry": (lambda fs: fs.list_objects("d"), "open", "d/obj"),
    "delete": (lambda fs: fs.delete_object("d/obj"), "unlink", "d/obj"),
    "move": (lambda fs: fs.move_object("d/obj", "e/moved"), "rename", "e/moved"),
    "cat-chunk": (lambda fs: fs.cat_objects("out", ["d/obj", "d/obj"]), "lstat", "out"),
    "cat-read": (lambda fs: fs.cat_objects("out", ["d/obj", "d/obj"]), "pread", "d/obj"),
    "cat-commit": (lambda fs: fs.cat_objects("out", ["d/obj", "d/obj"]), "rename", "out"),
}


@pytest.mark.parametrize("operation", OPERATIONS, ids=list(OPERATIONS))
@pytest.mark.parametrize("name", ERRNO_MAPPING, ids=list(ERRNO_MAPPING))
def test_every_os_error_is_a_typed_storage_error_and_changes_nothing(fs, monkeypatch, operation, name):
    code, expected, error_code = ERRNO_MAPPING[name]
    call, function, path = OPERATIONS[operation]
    fs.put_object("d/obj", b"old")
    broken(monkeypatch, function, code)
    with pytest.raises(expected) as caught:
        call(fs)
    monkeypatch.undo()
    error = caught.value
    assert error.code == error_code
    assert fs.root not in error.message, "the message shows a disk path"
    assert error.path == path and path in error.message
    if expected is StorageFault:
        assert name in error.message, "the message does not name the errno"
    assert files(fs) == {"d/obj": b"old"}
    assert temp_files(fs) == []


def test_storage_fault_is_a_storage_error_with_its_own_code():
    fault = StorageFault("EMFILE on a/b", "a/b")
    assert isinstance(fault, StorageError)
    assert (fault.code, status_of(fault)) == ("storage_error", 500)


def test_a_name_the_filesystem_cannot_hold_is_logged_once_without_traceback(fs, monkeypatch, caplog):
    """A client's error for the client, but the operator learns the volume holds less than the API."""
    broken(monkeypatch, "rename", errno.ENAMETOOLONG)
    with caplog.at_level(logging.INFO), pytest.raises(InvalidPath):
        fs.put_object("d/long-name", b"x")
    records = [r for r in caplog.records if "d/long-name" in r.getMessage()]
    assert len(records) == 1, [r.getMessage() for r in caplog.records]
    assert records[0].exc_info is None


# -- filesystem errors, over HTTP ---------------------------------------------

#: errno -> (status, code) over HTTP.
STATUS_OF = {
    "EIO": (503, "backend_unavailable"),
    "EROFS": (503, "backend_unavailable"),
    "ENAMETOOLONG": (400, "invalid_path"),
    "EMFILE": (500, "storage_error"),
    "ENOSPC": (507, "insufficient_storage"),
    "EDQUOT": (507, "insufficient_storage"),
}

#: request -> (method, target, JSON body, the os function it cannot do without,
#: the object path the error concerns).
REQUESTS = {
    "PUT": ("PUT", object_url("d/obj"), b"new", "rename", "d/obj"),
    "GET": ("GET", object_url("d/obj"), None, "open", "d/obj"),
    "HEAD": ("HEAD", object_url("d/obj"), None, "fstat", "d/obj"),
    "list": ("GET", object_url("d/"), None, "listdir", "d"),
    "DELETE": ("DELETE", object_url("d/obj"), None, "unlink", "d/obj"),
    "move": ("POST", "/v1/move", {"from": "d/obj", "to": "e/moved"}, "rename", "e/moved"),
    "cat": ("POST", "/v1/cat", {"path": "out", "chunks": ["d/obj"]}, "rename", "out"),
}


@pytest.mark.parametrize("request_name", REQUESTS, ids=list(REQUESTS))
@pytest.mark.parametrize("name", STATUS_OF, ids=list(STATUS_OF))
def test_os_errors_answer_their_status_and_code_as_json(fs, monkeypatch, caplog, request_name, name):
    status, code = STATUS_OF[name]
    method, target, body, function, path = REQUESTS[request_name]
    client = http_client(fs)
    fs.put_object("d/obj", b"old")
    broken(monkeypatch, function, ERRNO_MAPPING[name][0])
    with caplog.at_level(logging.INFO):
        if isinstance(body, dict):
            res = post_json(client, target, body)
        else:
            res = client.request(method, target, body)
    monkeypatch.undo()
    if method == "HEAD":
        assert (res.status, res.body) == (status, b"")
    else:
        error = error_of(res, status, code)
        assert fs.root not in error["message"]
        if code == "storage_error":
            assert name in error["message"]
    logged = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert path in logged[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records), "a traceback was logged"
    assert files(fs) == {"d/obj": b"old"}


def test_a_read_only_volume_refuses_writes_with_503_and_still_serves_reads(tmp_path):
    with mounted_tmpfs(tmp_path / "ro") as mount_point:
        fs = FilesystemDriver.build(root=str(mount_point), fsync=True)
        client = http_client(fs)
        fs.put_object("d/obj", b"kept")
        fs.close()  # its lock files are open for writing, which a remount refuses
        remount(mount_point, "ro")
        try:
            for res in (client.request("PUT", object_url("d/obj"), b"new"),
                        client.request("PUT", object_url("new"), b"new"),
                        client.request("DELETE", object_url("d/obj")),
                        post_json(client, "/v1/move", {"from": "d/obj", "to": "moved"}),
                        post_json(client, "/v1/cat", {"path": "out", "chunks": ["d/obj"]})):
                error = error_of(res, 503, "backend_unavailable")
                assert "read-only" in error["message"]
            assert client.request("GET", object_url("d/obj")).body == b"kept"
        finally:
            remount(mount_point, "rw")
        assert files(fs) == {"d/obj": b"kept"}


# -- readiness ----------------------------------------------------------------


def readyz(fs: FilesystemDriver):
    return http_client(fs).request("GET", "/readyz")


def test_readyz_is_200_for_a_writable_root_with_space(fs):
    res = readyz(fs)
    assert res.status == 200, res.body
    assert json.loads(res.body) == {"status": "ready", "driver": "filesystem"}
    assert temp_files(fs) == [], "the probe file was left behind"


def test_readyz_is_503_when_the_root_is_missing(fs, root):
    shutil.rmtree(root)
    assert "does not exist" in error_of(readyz(fs), 503, "backend_unavailable")["message"]


def test_readyz_is_503_when_the_root_is_not_a_directory(fs, root):
    shutil.rmtree(root)
    root.write_bytes(b"a file where the root should be")
    assert "not a directory" in error_of(readyz(fs), 503, "backend_unavailable")["message"]


def test_readyz_is_503_when_the_private_area_is_gone(fs, root):
    """A fresh, empty volume mounted over the root after start-up."""
    shutil.rmtree(root / ".blobsvc")
    assert ".blobsvc/tmp" in error_of(readyz(fs), 503, "backend_unavailable")["message"]


@pytest.mark.parametrize("name, reason", [("EROFS", "read-only"), ("EACCES", "may not access"),
                                          ("EIO", "EIO")])
def test_readyz_is_503_when_the_probe_file_cannot_be_written(fs, monkeypatch, name, reason):
    broken(monkeypatch, "open", getattr(errno, name))
    error = error_of(readyz(fs), 503, "backend_unavailable")
    assert reason in error["message"]
    assert fs.root not in error["message"], "an unauthenticated probe shows a disk path"


def test_readyz_is_503_when_the_volume_has_no_free_block(fs, monkeypatch):
    real = os.statvfs

    def no_free_block(path):
        values = list(real(path))
        values[3] = values[4] = 0  # f_bfree, f_bavail
        return os.statvfs_result(values)

    monkeypatch.setattr(os, "statvfs", no_free_block)
    assert "full" in error_of(readyz(fs), 503, "backend_unavailable")["message"]


def test_readyz_on_a_real_volume_that_turns_read_only_then_full(tmp_path):
    with mounted_tmpfs(tmp_path / "vol") as mount_point:
        fs = FilesystemDriver.build(root=str(mount_point), fsync=True)
        assert readyz(fs).status == 200
        remount(mount_point, "ro")
        try:
            assert "read-only" in error_of(readyz(fs), 503, "backend_unavailable")["message"]
        finally:
            remount(mount_point, "rw")
        assert readyz(fs).status == 200
        fill(mount_point)
        assert "full" in error_of(readyz(fs), 503, "backend_unavailable")["message"]
        os.unlink(mount_point / "filler")
        assert readyz(fs).status == 200


# -- conditional move and cat, over HTTP --------------------------------------


@pytest.fixture
def api(driver):
    """The service around every driver (Swift included), in-process."""
    return http_client(driver)


def put(api, path: str, data: bytes) -> str:
    res = api.request("PUT", object_url(path), data)
    assert res.status == 201, res.body
    return json.loads(res.body)["etag"]


def body_of(api, path: str) -> bytes | None:
    res = api.request("GET", object_url(path))
    return res.body if res.status == 200 else None


def test_move_with_if_none_match_star_onto_an_existing_object_is_412(api):
    put(api, "src", b"new")
    put(api, "dst", b"precious")
    res = post_json(api, "/v1/move", {"from": "src", "to": "dst"}, {"If-None-Match": "*"})
    error_of(res, 412, "precondition_failed")
    assert (body_of(api, "src"), body_of(api, "dst")) == (b"new", b"precious")


def test_move_with_if_none_match_star_onto_a_free_name_moves(api):
    put(api, "src", b"new")
    res = post_json(api, "/v1/move", {"from": "src", "to": "d/dst"}, {"If-None-Match": "*"})
    assert res.status == 201, res.body
    assert (body_of(api, "src"), body_of(api, "d/dst")) == (None, b"new")


def test_move_with_if_match_replaces_only_that_version(api):
    put(api, "src", b"new")
    seen = put(api, "dst", b"v1")
    current = put(api, "dst", b"v2")
    res = post_json(api, "/v1/move", {"from": "src", "to": "dst"}, {"If-Match": f'"{seen}"'})
    error_of(res, 412, "precondition_failed")
    assert (body_of(api, "src"), body_of(api, "dst")) == (b"new", b"v2")
    res = post_json(api, "/v1/move", {"from": "src", "to": "dst"}, {"If-Match": f'"{current}"'})
    assert res.status == 201, res.body
    assert (body_of(api, "src"), body_of(api, "dst")) == (None, b"new")


def test_move_without_preconditions_overwrites(api):
    put(api, "src", b"new")
    put(api, "dst", b"old")
    assert post_json(api, "/v1/move", {"from": "src", "to": "dst"}).status == 201
    assert body_of(api, "dst") == b"new"


def test_cat_with_if_none_match_star_onto_an_existing_object_is_412_and_keeps_the_chunks(api):
    put(api, "c1", b"one")
    put(api, "c2", b"two")
    put(api, "out", b"precious")
    res = post_json(api, "/v1/cat", {"path": "out", "chunks": ["c1", "c2"]}, {"If-None-Match": "*"})
    error_of(res, 412, "precondition_failed")
    assert [body_of(api, p) for p in ("c1", "c2", "out")] == [b"one", b"two", b"precious"]


def test_cat_with_if_match_replaces_only_that_version(api):
    put(api, "c1", b"one")
    current = put(api, "out", b"old")
    res = post_json(api, "/v1/cat", {"path": "out", "chunks": ["c1"]}, {"If-Match": '"0123"'})
    error_of(res, 412, "precondition_failed")
    assert [body_of(api, p) for p in ("c1", "out")] == [b"one", b"old"]
    res = post_json(api, "/v1/cat", {"path": "out", "chunks": ["c1"]}, {"If-Match": f'"{current}"'})
    assert res.status == 201, res.body
    assert [body_of(api, p) for p in ("c1", "out")] == [None, b"one"]


def test_cat_with_if_none_match_star_onto_a_free_name_writes_it(api):
    put(api, "c1", b"one")
    res = post_json(api, "/v1/cat", {"path": "new/out", "chunks": ["c1"]}, {"If-None-Match": "*"})
    assert res.status == 201, res.body
    assert body_of(api, "new/out") == b"one"


def test_move_and_cat_document_their_preconditions_and_412():
    conform = Conformance(SPEC)
    for route in ("/v1/move", "/v1/cat"):
        operation = SPEC["paths"][route]["post"]
        headers = {conform.resolve(p)["name"] for p in operation["parameters"]}
        assert {"If-Match", "If-None-Match"} <= headers, route
        assert "412" in operation["responses"], route
        assert "overwrit" in operation["description"], route


@pytest.mark.parametrize("route, document", [
    ("/v1/move", {"from": "src", "to": "dst"}),
    ("/v1/cat", {"path": "dst", "chunks": ["src"]}),
])
def test_move_and_cat_412_answers_match_the_openapi_document(route, document):
    driver = MemoryDriver.build()
    driver.put_object("src", b"s")
    driver.put_object("dst", b"d")
    config = blobsvc.config.build({"storage": {"driver": "memory"}, "log": {"access_log": False}})
    app = webtest.TestApp(build_app(config, driver))
    res = app.request(route, method="POST", body=json.dumps(document).encode(),
                      headers={"Content-Type": "application/json", "If-None-Match": "*"},
                      expect_errors=True)
    assert res.status_int == 412
    Conformance(SPEC).check(res, route, "POST")

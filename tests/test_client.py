"""blobsvc.client.Client against live services, byte for byte.

What a user of the client relies on: every method round-trips through a
real ``blobsvc serve`` (filesystem, and a subset on a real Swift), every
error code arrives as its exception class, credentials and TLS work, large
bodies stream in little memory, and retries happen only where they cannot
change the outcome (counted on the scripted servers of fault_servers.py).
"""

from __future__ import annotations

import array
import hashlib
import io
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import urllib3
from api_client import ServerProcess, free_port, wait_for
from fault_servers import Fault, FaultServer, answer, error, json_answer, object_info, reset, silent
from live_server import GroupServer, filesystem_config, running_server, swift_config
from reports import REPORTS
from storage_helpers import pattern

from blobsvc.client import (
    BackendUnavailable,
    BadRequest,
    BlobsvcError,
    ChecksumMismatch,
    Client,
    Conflict,
    Forbidden,
    InvalidMetadata,
    InvalidPath,
    MetadataTooLarge,
    NotFound,
    PreconditionFailed,
    RangeNotSatisfiable,
    ServerError,
    TooLarge,
    TransportError,
    Unauthorized,
)
from blobsvc.client.errors import ERROR_CLASSES
from blobsvc.http.errors import VOCABULARY
from blobsvc.storage.contract import ObjectInfo

MiB = 1024 * 1024
SIGNING_KEY = secrets.token_hex(32)
WRITE_TOKEN = secrets.token_hex(16)
READ_TOKEN = secrets.token_hex(16)
ALICE_PASSWORD = secrets.token_hex(12)
#: The object size limit of the service with auth, to meet ``too_large``.
AUTH_MAX_OBJECT_SIZE = MiB


# -- live services ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fs_server(tmp_path_factory) -> Iterator[ServerProcess]:
    """An open service on the filesystem driver, no size limit."""
    workdir = tmp_path_factory.mktemp("client-fs")
    with running_server(workdir, filesystem_config(workdir / "data")) as server:
        yield server


@pytest.fixture(scope="module")
def swift_server(tmp_path_factory, swift_stack) -> Iterator[ServerProcess]:
    """An open service on a real Swift (1 MiB segments, so SLOs get made)."""
    workdir = tmp_path_factory.mktemp("client-swift")
    with running_server(workdir, swift_config(swift_stack)) as server:
        yield server


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory) -> Iterator[ServerProcess]:
    """A service that lets nobody in without a credential, signs URLs, and
    takes objects of at most AUTH_MAX_OBJECT_SIZE."""
    workdir = tmp_path_factory.mktemp("client-auth")
    config = filesystem_config(workdir / "data", max_object_size=AUTH_MAX_OBJECT_SIZE)
    config["auth"] = {
        "anonymous": "none",
        "users": {"alice": {"password": ALICE_PASSWORD, "access": "write"}},
        "tokens": [{"name": "writer", "token": WRITE_TOKEN, "access": "write"},
                   {"name": "reader", "token": READ_TOKEN, "access": "read",
                    "prefix": "public/"}],
        "signing_key": SIGNING_KEY,
    }
    with running_server(workdir, config) as server:
        yield server


@pytest.fixture
def prefix() -> str:
    """A directory of this test's own on a shared service."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(fs_server) -> Iterator[Client]:
    with Client(fs_server.url, retries=1, timeout=30) as blobs:
        yield blobs


@pytest.fixture(params=["filesystem", "swift"])
def live_driver(request) -> str:
    return request.param


@pytest.fixture
def any_client(request, live_driver) -> Iterator[Client]:
    """A client of the filesystem service, then of the Swift one."""
    server = request.getfixturevalue("fs_server" if live_driver == "filesystem"
                                     else "swift_server")
    with Client(server.url, retries=1, timeout=30) as blobs:
        yield blobs


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def chunks_of(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def assert_etag(info: ObjectInfo, data: bytes, driver: str = "filesystem") -> None:
    """The MD5 of the bytes, on every driver: Swift's segmented objects
    (above the 1 MiB segments of the test services) included."""
    assert info.etag == md5_hex(data), driver


# -- objects: put and get --------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1000, 3 * MiB + 7])
def test_put_bytes_then_get_returns_the_same_bytes(any_client, live_driver, prefix, size):
    data = pattern(size, "bytes")
    info = any_client.put(f"{prefix}/obj.bin", data)
    assert (info.path, info.name, info.isdir) == (f"{prefix}/obj.bin", "obj.bin", False)
    assert info.size == size
    assert_etag(info, data, live_driver)
    assert any_client.get(f"{prefix}/obj.bin") == data


@pytest.mark.parametrize("with_size", [True, False], ids=["sized", "chunked"])
def test_put_an_iterator_in_uneven_chunks_round_trips(any_client, live_driver, prefix,
                                                      with_size):
    data = pattern(2 * MiB + 333, "iter")
    pieces = [data[:1], data[1:70000], data[70000:70000], data[70000:]]
    info = any_client.put(f"{prefix}/it", iter(pieces), size=len(data) if with_size else None)
    assert info.size == len(data)
    assert_etag(info, data, live_driver)
    assert any_client.get(f"{prefix}/it") == data


def test_an_iterator_shorter_than_its_size_stores_nothing(client, prefix):
    with pytest.raises((ValueError, TransportError)):
        client.put(f"{prefix}/short", iter([b"abc"]), size=10)
    assert not client.exists(f"{prefix}/short")


def test_an_iterator_longer_than_its_size_stores_nothing(client, prefix):
    with pytest.raises((ValueError, TransportError)):
        client.put(f"{prefix}/long", iter([b"abc", b"defgh"]), size=4)
    assert not client.exists(f"{prefix}/long")


def test_put_a_file_object_sends_it_from_its_start(client, prefix, tmp_path):
    data = pattern(MiB + 5, "file")
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    with open(source, "rb") as file:
        assert client.put(f"{prefix}/f", file).size == len(data)
    assert client.get(f"{prefix}/f") == data


def test_put_file_uploads_a_local_file(any_client, prefix, tmp_path):
    data = pattern(MiB + 5, "put_file")
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    info = any_client.put_file(f"{prefix}/pf", source, content_type="application/x-test")
    assert info.size == len(data) and info.content_type == "application/x-test"
    assert any_client.get(f"{prefix}/pf") == data


def test_put_a_bytesio_sends_what_is_left_of_it(client, prefix):
    body = io.BytesIO(b"skipped|the rest")
    body.seek(8)
    assert client.put(f"{prefix}/bio", body).size == 8
    assert client.get(f"{prefix}/bio") == b"the rest"


def test_put_bytearray_round_trips(client, prefix):
    assert client.put(f"{prefix}/ba", bytearray(b"\x00\xff" * 10)).size == 20
    assert client.get(f"{prefix}/ba") == b"\x00\xff" * 10


@pytest.mark.parametrize("offset,length,expected", [
    (0, 1, b"0"), (0, None, b"0123456789"), (9, 1, b"9"), (3, 4, b"3456"), (7, None, b"789"),
    (8, 100, b"89"),
])
def test_get_a_range_returns_exactly_those_bytes(any_client, prefix, offset, length, expected):
    any_client.put(f"{prefix}/r", b"0123456789")
    assert any_client.get(f"{prefix}/r", offset, length) == expected


def test_open_a_range_tells_the_part_and_the_whole_object(client, prefix):
    client.put(f"{prefix}/r", b"0123456789")
    with client.open(f"{prefix}/r", offset=2, length=3) as download:
        assert download.status == 206 and download.length == 3
        assert download.info.size == 10
        assert download.read() == b"234"


def test_a_range_past_the_end_is_range_not_satisfiable(client, prefix):
    client.put(f"{prefix}/r", b"0123456789")
    with pytest.raises(RangeNotSatisfiable) as caught:
        client.get(f"{prefix}/r", offset=10)
    assert caught.value.status == 416 and caught.value.code == "range_not_satisfiable"


def test_open_rejects_a_negative_offset_or_an_empty_length(client, prefix):
    with pytest.raises(ValueError):
        client.open(f"{prefix}/r", offset=-1)
    with pytest.raises(ValueError):
        client.open(f"{prefix}/r", length=0)


def test_open_reads_in_pieces_and_as_a_file(client, prefix):
    data = pattern(3 * MiB + 1, "open")
    client.put(f"{prefix}/o", data)
    with client.open(f"{prefix}/o") as download:
        assert download.info.size == len(data) and download.info.etag == md5_hex(data)
        head = download.read(10)
        rest = io.BufferedReader(download).read()
    assert head + rest == data
    with client.open(f"{prefix}/o") as download:
        assert b"".join(download) == data


def test_open_closed_early_leaves_the_client_usable(prefix, fs_server):
    with Client(fs_server.url, pool_size=1, retries=0) as blobs:
        blobs.put(f"{prefix}/big", pattern(4 * MiB, "early"))
        for _ in range(3):
            with blobs.open(f"{prefix}/big") as download:
                assert len(download.read(100)) == 100
        assert blobs.get(f"{prefix}/big", 5, 3) == pattern(4 * MiB, "early")[5:8]


def test_download_writes_the_file_whole(any_client, live_driver, prefix, tmp_path):
    data = pattern(2 * MiB + 9, "download")
    stored = any_client.put(f"{prefix}/d", data, metadata={"k": "v"})
    target = tmp_path / "out.bin"
    info = any_client.download(f"{prefix}/d", target)
    assert target.read_bytes() == data
    assert info.size == len(data) and info.etag == stored.etag
    assert_etag(info, data, live_driver)
    assert os.listdir(tmp_path) == ["out.bin"]


def test_download_of_a_missing_object_creates_no_file(client, prefix, tmp_path):
    with pytest.raises(NotFound):
        client.download(f"{prefix}/missing", tmp_path / "out.bin")
    assert os.listdir(tmp_path) == []


def test_if_none_match_with_the_current_etag_is_not_modified(client, prefix):
    info = client.put(f"{prefix}/c", b"cached")
    with client.open(f"{prefix}/c", if_none_match=info.etag) as download:
        assert download.not_modified and download.read() == b""
    with client.open(f"{prefix}/c", if_none_match="0" * 32) as download:
        assert not download.not_modified and download.read() == b"cached"


def test_open_with_a_stale_if_match_is_precondition_failed(client, prefix):
    client.put(f"{prefix}/c", b"cached")
    with pytest.raises(PreconditionFailed):
        client.open(f"{prefix}/c", if_match="0" * 32)


# -- metadata, stored headers, stat ------------------------------------------------


STORED = {"Content-Encoding": "gzip", "Content-Disposition": 'attachment; filename="r.csv"',
          "Content-Language": "fr", "Cache-Control": "max-age=3600",
          "Expires": "Wed, 21 Oct 2037 07:28:00 GMT"}


def test_metadata_and_stored_headers_round_trip(any_client, prefix):
    metadata = {"owner": "data-team", "source": "café ☃", "empty-ish": "-"}
    info = any_client.put(f"{prefix}/m.csv", b"\x1f\x8b gzip bytes", content_type="text/csv",
                          metadata=metadata, headers=STORED)
    assert info.metadata == metadata and dict(info.headers) == STORED
    assert info.content_type == "text/csv"
    stat = any_client.stat(f"{prefix}/m.csv")
    assert stat.metadata == metadata and dict(stat.headers) == STORED
    assert (stat.size, stat.etag, stat.content_type) == (info.size, info.etag, "text/csv")
    with any_client.open(f"{prefix}/m.csv") as download:
        assert download.info.metadata == metadata and dict(download.info.headers) == STORED
        assert download.read() == b"\x1f\x8b gzip bytes"  # served as stored, never decoded


def test_stat_tells_size_etag_time_and_expiry(client, prefix):
    before = time.time()
    info = client.put(f"{prefix}/s", b"12345", delete_after=3600)
    stat = client.stat(f"{prefix}/s")
    assert stat.size == 5 and stat.etag == md5_hex(b"12345") == info.etag
    assert stat.ctime == pytest.approx(info.ctime)
    assert before - 2 <= stat.ctime <= time.time() + 2
    assert stat.expires_at == info.expires_at and stat.expires_at >= int(before) + 3600


def test_exists_tells_present_from_absent(client, prefix):
    client.put(f"{prefix}/e", b"x")
    assert client.exists(f"{prefix}/e") is True
    assert client.exists(f"{prefix}/nope") is False


def test_stat_of_a_missing_object_is_not_found_with_its_request_id(client, prefix):
    with pytest.raises(NotFound) as caught:
        client.stat(f"{prefix}/nope")
    assert caught.value.status == 404 and caught.value.code == "not_found"
    assert caught.value.request_id


def test_update_replaces_metadata_and_headers_and_keeps_the_bytes(any_client, prefix):
    info = any_client.put(f"{prefix}/u", b"bytes", content_type="text/plain",
                          metadata={"a": "1"}, headers={"Cache-Control": "no-cache"})
    updated = any_client.update(f"{prefix}/u", metadata={"b": "2"}, delete_after=600)
    assert updated.metadata == {"b": "2"} and dict(updated.headers) == {}
    assert updated.content_type == "text/plain" and updated.etag == info.etag
    assert updated.expires_at is not None
    stat = any_client.stat(f"{prefix}/u")
    assert stat.metadata == {"b": "2"} and dict(stat.headers) == {}
    assert any_client.get(f"{prefix}/u") == b"bytes"


def test_update_with_a_stale_if_match_changes_nothing(client, prefix):
    client.put(f"{prefix}/u", b"bytes", metadata={"a": "1"})
    with pytest.raises(PreconditionFailed):
        client.update(f"{prefix}/u", metadata={"b": "2"}, if_match="0" * 32)
    assert client.stat(f"{prefix}/u").metadata == {"a": "1"}


# -- conditional writes ----------------------------------------------------------


def test_create_only_put_refuses_an_existing_object_and_changes_nothing(any_client, prefix):
    first = any_client.put(f"{prefix}/once", b"first", if_none_match="*")
    with pytest.raises(PreconditionFailed) as caught:
        any_client.put(f"{prefix}/once", b"second", if_none_match="*")
    assert caught.value.status == 412 and caught.value.code == "precondition_failed"
    assert caught.value.request_id
    assert any_client.get(f"{prefix}/once") == b"first"
    assert any_client.stat(f"{prefix}/once").etag == first.etag


def test_put_if_match_replaces_only_that_version(client, prefix):
    first = client.put(f"{prefix}/v", b"v1")
    second = client.put(f"{prefix}/v", b"v2", if_match=first.etag)
    with pytest.raises(PreconditionFailed):
        client.put(f"{prefix}/v", b"v3", if_match=first.etag)
    assert client.get(f"{prefix}/v") == b"v2"
    assert client.put(f"{prefix}/v", b"v4", if_match=f'"{second.etag}"').size == 2


def test_put_if_match_on_a_missing_object_creates_nothing(client, prefix):
    with pytest.raises(PreconditionFailed):
        client.put(f"{prefix}/v", b"v1", if_match="0" * 32)
    assert not client.exists(f"{prefix}/v")


def test_delete_if_match_deletes_only_that_version(any_client, prefix):
    info = any_client.put(f"{prefix}/d", b"one")
    with pytest.raises(PreconditionFailed):
        any_client.delete(f"{prefix}/d", if_match="0" * 32)
    assert any_client.get(f"{prefix}/d") == b"one"
    any_client.delete(f"{prefix}/d", if_match=info.etag)
    assert not any_client.exists(f"{prefix}/d")


def test_delete_of_a_missing_object_is_not_found(client, prefix):
    with pytest.raises(NotFound):
        client.delete(f"{prefix}/gone")


def test_delete_of_a_non_empty_directory_is_conflict(client, prefix):
    client.put(f"{prefix}/dir/a", b"a")
    with pytest.raises(Conflict) as caught:
        client.delete(f"{prefix}/dir")
    assert caught.value.status == 409 and caught.value.code == "conflict"
    assert client.get(f"{prefix}/dir/a") == b"a"


def test_put_over_a_directory_is_conflict(client, prefix):
    client.put(f"{prefix}/dir/a", b"a")
    with pytest.raises(Conflict):
        client.put(f"{prefix}/dir", b"file where a directory is")
    assert client.get(f"{prefix}/dir/a") == b"a"


# -- checks the service makes ----------------------------------------------------


def test_content_md5_and_sha256_that_match_are_accepted(client, prefix):
    data = b"checked body"
    info = client.put(f"{prefix}/ok", data, content_md5=hashlib.md5(data).digest(),
                      sha256=hashlib.sha256(data).hexdigest())
    assert info.etag == md5_hex(data)


@pytest.mark.parametrize("check", ["content_md5", "sha256"])
def test_a_checksum_that_does_not_match_stores_nothing(client, prefix, check):
    value: bytes | str = hashlib.md5(b"other").digest() if check == "content_md5" \
        else hashlib.sha256(b"other").hexdigest()
    with pytest.raises(ChecksumMismatch) as caught:
        client.put(f"{prefix}/bad", b"checked body", **{check: value})
    assert caught.value.status == 400 and caught.value.code == "checksum_mismatch"
    assert not client.exists(f"{prefix}/bad")


def test_invalid_metadata_is_refused_and_nothing_stored(client, prefix):
    with pytest.raises(InvalidMetadata) as caught:
        client.put(f"{prefix}/meta", b"x", metadata={"no.dots": "v"})
    assert caught.value.code == "invalid_metadata" and caught.value.message
    assert not client.exists(f"{prefix}/meta")


def test_too_much_metadata_is_refused_and_nothing_stored(client, prefix):
    with pytest.raises(MetadataTooLarge) as caught:
        client.put(f"{prefix}/meta", b"x", metadata={"big": "v" * 9000})
    assert caught.value.code == "metadata_too_large"
    assert not client.exists(f"{prefix}/meta")


@pytest.mark.parametrize("path", ["a//b", "/lead", ".blobsvc/x", "nul\x00byte", "back\\slash",
                                  "x" * 256])
def test_an_invalid_path_is_invalid_path(client, path):
    with pytest.raises(InvalidPath) as caught:
        client.put(path, b"x")
    assert caught.value.status == 400 and caught.value.code == "invalid_path"


def test_a_bad_listing_limit_is_bad_request(client):
    with pytest.raises(BadRequest) as caught:
        client.list("", limit=0)
    assert caught.value.status == 400 and caught.value.code == "bad_request"


# -- operations on several objects -------------------------------------------------


def test_delete_many_reports_each_path(any_client, prefix):
    any_client.put(f"{prefix}/a", b"a")
    any_client.put(f"{prefix}/b", b"b")
    result = any_client.delete_many([f"{prefix}/a", f"{prefix}/b", f"{prefix}/c", "a//b"])
    assert sorted(result.deleted) == [f"{prefix}/a", f"{prefix}/b"]
    assert result.not_found == [f"{prefix}/c"]
    assert [(e["path"], e["code"]) for e in result.errors] == [("a//b", "invalid_path")]
    assert not any_client.exists(f"{prefix}/a")


def test_move_renames_with_metadata_and_expiry(any_client, prefix):
    source = any_client.put(f"{prefix}/src", b"moved", metadata={"k": "v"}, delete_after=3600)
    info = any_client.move(f"{prefix}/src", f"{prefix}/sub/dst")
    assert info.path == f"{prefix}/sub/dst" and info.etag == source.etag
    assert info.metadata == {"k": "v"} and info.expires_at == source.expires_at
    assert any_client.get(f"{prefix}/sub/dst") == b"moved"
    assert not any_client.exists(f"{prefix}/src")


def test_move_of_a_missing_source_is_not_found(client, prefix):
    with pytest.raises(NotFound):
        client.move(f"{prefix}/none", f"{prefix}/dst")
    assert not client.exists(f"{prefix}/dst")


def test_create_only_move_onto_an_object_changes_nothing(client, prefix):
    client.put(f"{prefix}/src", b"src")
    client.put(f"{prefix}/dst", b"dst")
    with pytest.raises(PreconditionFailed):
        client.move(f"{prefix}/src", f"{prefix}/dst", if_none_match="*")
    assert client.get(f"{prefix}/src") == b"src" and client.get(f"{prefix}/dst") == b"dst"


def test_copy_keeps_the_source_and_copies_metadata_and_headers(any_client, prefix):
    source = any_client.put(f"{prefix}/src", b"copied", content_type="text/plain",
                            metadata={"k": "v"}, headers={"Cache-Control": "no-store"},
                            delete_after=3600)
    info = any_client.copy(f"{prefix}/src", f"{prefix}/dst")
    assert info.etag == source.etag and info.metadata == {"k": "v"}
    assert dict(info.headers) == {"Cache-Control": "no-store"} and info.expires_at is None
    assert any_client.get(f"{prefix}/dst") == any_client.get(f"{prefix}/src") == b"copied"
    stat = any_client.stat(f"{prefix}/dst")
    assert stat.content_type == "text/plain" and dict(stat.headers) == {"Cache-Control": "no-store"}


def test_copy_replaces_what_it_is_given(any_client, prefix):
    any_client.put(f"{prefix}/src", b"copied", content_type="text/plain", metadata={"k": "v"})
    expires = int(time.time()) + 7200
    info = any_client.copy(f"{prefix}/src", f"{prefix}/dst", metadata={"new": "1"},
                           content_type="application/json",
                           headers={"Content-Language": "de"}, expires_at=expires)
    assert info.metadata == {"new": "1"} and info.content_type == "application/json"
    assert dict(info.headers) == {"Content-Language": "de"} and info.expires_at == expires
    stat = any_client.stat(f"{prefix}/dst")
    assert stat.metadata == {"new": "1"} and stat.expires_at == expires
    assert any_client.stat(f"{prefix}/src").metadata == {"k": "v"}


def test_copy_if_match_on_the_destination(client, prefix):
    client.put(f"{prefix}/src", b"src")
    dst = client.put(f"{prefix}/dst", b"dst")
    with pytest.raises(PreconditionFailed):
        client.copy(f"{prefix}/src", f"{prefix}/dst", if_match="0" * 32)
    assert client.get(f"{prefix}/dst") == b"dst"
    client.copy(f"{prefix}/src", f"{prefix}/dst", if_match=dst.etag)
    assert client.get(f"{prefix}/dst") == b"src"


def test_cat_joins_chunks_and_deletes_them(any_client, prefix):
    parts = [pattern(MiB + 1, "c1"), pattern(10, "c2"), pattern(MiB, "c3")]
    for number, part in enumerate(parts):
        any_client.put(f"{prefix}/up/{number}", part)
    info = any_client.cat(f"{prefix}/joined", [f"{prefix}/up/{n}" for n in range(3)],
                          metadata={"k": "v"}, content_type="application/x-joined")
    assert info.size == sum(map(len, parts)) and info.metadata == {"k": "v"}
    assert info.content_type == "application/x-joined"
    assert any_client.get(f"{prefix}/joined") == b"".join(parts)
    assert not any_client.exists(f"{prefix}/up/0")


def test_cat_with_missing_chunks_names_them_and_changes_nothing(client, prefix):
    client.put(f"{prefix}/up/0", b"zero")
    with pytest.raises(NotFound) as caught:
        client.cat(f"{prefix}/joined", [f"{prefix}/up/0", f"{prefix}/up/1", f"{prefix}/up/2"])
    assert sorted(caught.value.missing) == [f"{prefix}/up/1", f"{prefix}/up/2"]
    assert client.get(f"{prefix}/up/0") == b"zero"
    assert not client.exists(f"{prefix}/joined")


# -- listings ----------------------------------------------------------------------


def test_list_one_level_with_directories(any_client, prefix):
    for name in ["b.txt", "a.txt", "sub/x", "sub/y/z"]:
        any_client.put(f"{prefix}/{name}", name.encode())
    page = any_client.list(prefix)
    assert page.path == f"{prefix}/" and not page.truncated
    assert [(e.name, e.isdir) for e in page] == [("a.txt", False), ("b.txt", False),
                                                ("sub", True)]
    assert [e.size for e in page.entries[:2]] == [5, 5]
    assert page.entries[0].etag == md5_hex(b"a.txt")
    assert [e.path for e in any_client.list(f"{prefix}/sub/")] == [f"{prefix}/sub/x",
                                                                    f"{prefix}/sub/y"]


def test_list_with_prefix_and_recursive(any_client, prefix):
    for name in ["apple", "apricot", "banana", "ap/deep"]:
        any_client.put(f"{prefix}/{name}", b"x")
    assert [e.name for e in any_client.list(prefix, prefix="ap")] == ["ap", "apple", "apricot"]
    assert [e.path for e in any_client.list(prefix, recursive=True)] == [
        f"{prefix}/ap/deep", f"{prefix}/apple", f"{prefix}/apricot", f"{prefix}/banana"]


def test_list_pages_and_iter_list_walks_them_all(any_client, prefix):
    names = [f"n{number:02d}" for number in range(7)]
    for name in names:
        any_client.put(f"{prefix}/{name}", b"x")
    first = any_client.list(prefix, limit=3)
    assert [e.name for e in first] == names[:3] and first.truncated
    second = any_client.list(prefix, limit=3, marker=first.next_marker)
    assert [e.name for e in second] == names[3:6]
    assert [e.name for e in any_client.iter_list(prefix, page_size=2)] == names
    assert [e.path for e in any_client.iter_list(prefix, recursive=True, page_size=3)] == [
        f"{prefix}/{name}" for name in names]


def test_list_of_a_missing_directory_is_not_found(client, prefix):
    with pytest.raises(NotFound):
        client.list(f"{prefix}/nothing")


def test_the_root_listing_holds_a_new_directory(client, prefix):
    client.put(f"{prefix}/x", b"x")
    assert prefix in [e.name for e in client.iter_list("") if e.isdir]


# -- service endpoints, URLs, lifecycle --------------------------------------------


def test_health_and_ready(client):
    assert client.health() is True
    assert client.ready()["status"] == "ready"


def test_url_for_names_the_object(client, fs_server):
    assert client.url_for("a dir/b?.bin") == f"{fs_server.url}/v1/objects/a%20dir/b%3F.bin"
    response = urllib3.request("GET", client.url_for("nothing/here"), retries=False)
    assert response.status == 404


def test_close_and_context_manager_release_the_pool(fs_server, prefix):
    blobs = Client(fs_server.url)
    blobs.put(f"{prefix}/x", b"x")
    blobs.close()
    assert blobs.get(f"{prefix}/x") == b"x"  # a closed client opens new connections
    with Client(fs_server.url + "/") as again:
        assert again.get(f"{prefix}/x") == b"x"


@pytest.mark.parametrize("arguments", [
    {"url": "ftp://127.0.0.1"}, {"url": "127.0.0.1:80"}, {"url": "http://h/?q=1"},
    {"url": "http://h", "token": "t", "user": "u", "password": "p"},
    {"url": "http://h", "user": "u"}, {"url": "http://h", "password": "p"},
])
def test_client_refuses_contradictory_settings(arguments):
    with pytest.raises(ValueError):
        Client(**arguments)


# -- what an earlier review found ---------------------------------------------------


def test_put_a_file_with_a_size_sends_exactly_that_part(prefix, fs_server, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"0123456789")
    with Client(fs_server.url, pool_size=1, retries=0) as blobs, open(source, "rb") as file:
        file.seek(3)
        assert blobs.put(f"{prefix}/part", file, size=4).size == 4
        assert file.tell() == 7
        # the same connection carries the next request: nothing was sent past the part
        assert blobs.get(f"{prefix}/part") == b"3456"
        assert blobs.put(f"{prefix}/rest", file).size == 3
        assert blobs.get(f"{prefix}/rest") == b"789"


def test_put_a_file_shorter_than_its_size_stores_nothing(prefix, fs_server, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"0123456789")
    with Client(fs_server.url, pool_size=1, retries=0) as blobs, open(source, "rb") as file:
        file.seek(8)
        with pytest.raises((ValueError, TransportError, BlobsvcError)):
            blobs.put(f"{prefix}/short", file, size=5)
        assert not blobs.exists(f"{prefix}/short")


def test_put_a_memoryview_counts_its_bytes_not_its_items(prefix, fs_server):
    numbers = array.array("i", range(1000))
    with Client(fs_server.url, pool_size=1, retries=0) as blobs:
        assert blobs.put(f"{prefix}/mv", memoryview(numbers)).size == numbers.itemsize * 1000
        assert blobs.get(f"{prefix}/mv") == numbers.tobytes()
        strided = memoryview(b"abcdef")[::2]
        assert blobs.put(f"{prefix}/strided", strided).size == 3
        assert blobs.get(f"{prefix}/strided") == b"ace"


@pytest.mark.parametrize("kind", ["not-modified", "empty", "empty-range-of-nothing"])
def test_closing_a_download_without_a_body_leaves_the_connection_usable(prefix, fs_server,
                                                                       kind):
    with Client(fs_server.url, pool_size=1, retries=0) as blobs:
        info = blobs.put(f"{prefix}/e", b"" if kind.startswith("empty") else b"content")
        for _ in range(3):
            if kind == "not-modified":
                download = blobs.open(f"{prefix}/e", if_none_match=info.etag)
                assert download.not_modified
            else:
                download = blobs.open(f"{prefix}/e")
                assert download.length == 0
                if kind == "empty-range-of-nothing":
                    assert list(download) == []
            download.close()
            assert blobs.get(f"{prefix}/e") == (b"" if kind.startswith("empty") else b"content")


@pytest.mark.parametrize("value", ["attachment; filename=caf\xe9.txt",
                                   "attachment; filename=\xc3\xa9.txt",  # Latin-1, not UTF-8
                                   "inline; filename=plain.txt"])
def test_stored_headers_come_back_as_sent_on_the_wire(any_client, prefix, value):
    info = any_client.put(f"{prefix}/h", b"x", headers={"Content-Disposition": value})
    assert info.headers["Content-Disposition"] == value
    assert any_client.stat(f"{prefix}/h").headers["Content-Disposition"] == value
    with any_client.open(f"{prefix}/h") as download:
        assert download.info.headers["Content-Disposition"] == value


@pytest.mark.parametrize("path", ["a/../b", "a/./b", "..", ".", "a/..", "./b", "a/b/.."])
def test_a_dot_segment_is_invalid_path_and_never_another_object(prefix, client, path):
    client.put(f"{prefix}/b", b"the other object")
    client.put(f"{prefix}/a/b", b"a nested object")
    target = f"{prefix}/{path}"
    for call in (lambda: client.get(target), lambda: client.stat(target),
                 lambda: client.put(target, b"overwrite?"), lambda: client.delete(target),
                 lambda: client.update(target, metadata={"x": "y"}),
                 lambda: client.list(target), lambda: client.url_for(target)):
        with pytest.raises(InvalidPath):
            call()
    assert client.get(f"{prefix}/b") == b"the other object"
    assert client.get(f"{prefix}/a/b") == b"a nested object"
    assert client.stat(f"{prefix}/b").metadata == {}


# -- errors: one class per code -------------------------------------------------------


def test_every_code_of_the_service_has_its_exception_class():
    assert set(ERROR_CLASSES) == {entry.code for entry in VOCABULARY}


@pytest.mark.parametrize("entry", VOCABULARY, ids=lambda entry: entry.code)
def test_an_error_answer_raises_the_class_of_its_code(entry):
    message = f"scripted {entry.code} ☃"
    with FaultServer([error(entry.status, entry.code, message, "req-1234")]) as server, \
            Client(server.url, retries=0) as blobs:
        with pytest.raises(ERROR_CLASSES[entry.code]) as caught:
            blobs.delete("some/object")
    assert type(caught.value) is ERROR_CLASSES[entry.code]
    assert (caught.value.status, caught.value.code) == (entry.status, entry.code)
    assert (caught.value.message, caught.value.request_id) == (message, "req-1234")
    assert server.attempts == 1


@pytest.mark.parametrize("status,cls", [(502, BackendUnavailable), (500, ServerError),
                                        (404, NotFound), (418, BlobsvcError)])
def test_an_answer_without_the_service_json_raises_by_its_status(status, cls):
    page = answer(status, b"<html>a proxy's page</html>", {"Content-Type": "text/html"})
    with FaultServer([page]) as server, Client(server.url, retries=0) as blobs:
        with pytest.raises(cls) as caught:
            blobs.delete("some/object")
    assert type(caught.value) is cls and caught.value.status == status


# -- retries, counted -----------------------------------------------------------------

READ_FAULTS = {"reset": reset(), "502": error(502, "backend_unavailable"),
               "503": error(503, "backend_unavailable"), "504": error(504, "backend_unavailable")}
EMPTY_LISTING = {"path": "", "entries": [], "truncated": False, "next_marker": None}


@pytest.mark.parametrize("fault", READ_FAULTS.values(), ids=READ_FAULTS.keys())
@pytest.mark.parametrize("read", ["get", "stat", "list", "download"])
def test_reads_are_retried_after_a_reset_or_a_gateway_error(fault, read, tmp_path):
    ok = json_answer(200, EMPTY_LISTING) if read == "list" else answer(200, b"the bytes")
    with FaultServer([fault, ok]) as server, Client(server.url, retries=2) as blobs:
        if read == "get":
            assert blobs.get("a/b") == b"the bytes"
        elif read == "stat":
            assert blobs.stat("a/b").size == len(b"the bytes")
        elif read == "list":
            assert blobs.list("a").entries == []
        else:
            blobs.download("a/b", tmp_path / "b")
            assert (tmp_path / "b").read_bytes() == b"the bytes"
    assert server.attempts == 2
    assert {request.method for request in server.requests} == {"HEAD" if read == "stat" else "GET"}


def test_reads_give_up_after_their_retries():
    with FaultServer([error(503, "backend_unavailable", "down")]) as server, \
            Client(server.url, retries=2) as blobs:
        with pytest.raises(BackendUnavailable) as caught:
            blobs.get("a/b")
    assert caught.value.message == "down"
    assert server.attempts == 3


def _file_body(tmp_path: Path, data: bytes) -> io.BufferedReader:
    """A real file holding b"ab" + data, positioned after the b"ab"."""
    source = tmp_path / "body.bin"
    source.write_bytes(b"ab" + data)
    file = open(source, "rb")
    file.seek(2)
    return file


BODY_KINDS = ["bytes", "file", "bytesio"]
PUT_FAULTS = {"reset-before-body": reset(0), "reset-after-body": reset(None),
              "503": error(503, "backend_unavailable")}


@pytest.mark.parametrize("fault", PUT_FAULTS.values(), ids=PUT_FAULTS.keys())
@pytest.mark.parametrize("kind", BODY_KINDS)
def test_a_create_only_put_of_a_replayable_body_is_retried(fault, kind, tmp_path):
    data = pattern(300_000, kind)
    body = {"bytes": lambda: data, "bytesio": lambda: io.BytesIO(data),
            "file": lambda: _file_body(tmp_path, data)}[kind]()
    with FaultServer([fault, object_info("a/b", len(data))]) as server, \
            Client(server.url, retries=2) as blobs:
        assert blobs.put("a/b", body, if_none_match="*").size == len(data)
    assert server.attempts == 2
    last = server.requests[-1]
    assert last.body == data and last.header("content-length") == str(len(data))
    assert last.header("if-none-match") == "*"
    if isinstance(body, io.BufferedReader):
        body.close()


def test_a_retried_create_only_put_that_meets_its_own_object_says_so():
    with FaultServer([reset(None), error(412, "precondition_failed")]) as server, \
            Client(server.url, retries=2) as blobs:
        with pytest.raises(PreconditionFailed) as caught:
            blobs.put("a/b", b"data", if_none_match="*")
    assert "earlier attempt" in caught.value.message
    assert server.attempts == 2


def test_a_create_only_put_retried_after_a_503_meets_a_plain_412():
    """A 503 stored nothing: the object that refuses the retry is another's."""
    with FaultServer([error(503, "backend_unavailable"),
                      error(412, "precondition_failed", "it exists")]) as server, \
            Client(server.url, retries=2) as blobs:
        with pytest.raises(PreconditionFailed) as caught:
            blobs.put("a/b", b"data", if_none_match="*")
    assert caught.value.message == "it exists"
    assert server.attempts == 2


@pytest.mark.parametrize("fault", [reset(None), error(503, "backend_unavailable")],
                         ids=["reset-after-body", "503"])
def test_a_plain_put_is_not_retried(fault):
    with FaultServer([fault, object_info("a/b", 4)]) as server, \
            Client(server.url, retries=3) as blobs:
        with pytest.raises((TransportError, BackendUnavailable)):
            blobs.put("a/b", b"data")
    assert server.attempts == 1


@pytest.mark.parametrize("if_none_match", [None, "*"], ids=["plain", "create-only"])
@pytest.mark.parametrize("with_size", [True, False], ids=["sized", "chunked"])
def test_a_put_of_an_iterator_is_not_retried_once_its_body_started(if_none_match, with_size):
    sent: list[int] = []

    def body() -> Iterator[bytes]:
        for number in range(8):
            sent.append(number)
            yield pattern(64 * 1024, number)

    with FaultServer([reset(100_000), object_info("a/b", 8 * 64 * 1024)]) as server, \
            Client(server.url, retries=3) as blobs:
        with pytest.raises((TransportError, ValueError)):
            blobs.put("a/b", body(), size=8 * 64 * 1024 if with_size else None,
                      if_none_match=if_none_match)
    assert server.attempts == 1
    assert 0 < len(server.requests[0].body) <= 100_000


@pytest.mark.parametrize("operation", ["delete", "move", "update", "delete_many"])
def test_writes_other_than_put_are_not_retried_on_503(operation):
    with FaultServer([error(503, "backend_unavailable")]) as server, \
            Client(server.url, retries=3) as blobs:
        with pytest.raises(BackendUnavailable):
            {"delete": lambda: blobs.delete("a"), "move": lambda: blobs.move("a", "b"),
             "update": lambda: blobs.update("a", metadata={"k": "v"}),
             "delete_many": lambda: blobs.delete_many(["a"])}[operation]()
    assert server.attempts == 1


# -- answers cut short, silence, refusal ---------------------------------------------


@pytest.mark.parametrize("arrived", [0, 5, 99])
def test_an_answer_cut_short_is_a_transport_error_never_a_short_success(arrived, tmp_path):
    short = answer(200, pattern(arrived, "short"), declared_length=100)
    with FaultServer([short]) as server, Client(server.url, retries=0) as blobs:
        with pytest.raises(TransportError):
            blobs.get("a/b")
        with pytest.raises(TransportError):
            blobs.download("a/b", tmp_path / "b")
        with pytest.raises(TransportError), blobs.open("a/b") as download:
            for _ in download:
                pass
    assert os.listdir(tmp_path) == []


def test_a_listing_cut_short_is_a_transport_error():
    text = json.dumps(EMPTY_LISTING).encode()
    with FaultServer([answer(200, text[:10], declared_length=len(text))]) as server, \
            Client(server.url, retries=0) as blobs:
        with pytest.raises(TransportError):
            blobs.list("a")


@pytest.mark.parametrize("operation", ["stat", "get", "put", "list"])
def test_a_silent_service_times_out_promptly(operation):
    with FaultServer([silent(10)]) as server, \
            Client(server.url, retries=0, timeout=0.5) as blobs:
        started = time.monotonic()
        with pytest.raises(TransportError):
            {"stat": lambda: blobs.stat("a"), "get": lambda: blobs.get("a"),
             "put": lambda: blobs.put("a", b"data"), "list": lambda: blobs.list("")}[operation]()
        waited = time.monotonic() - started
    assert waited < 5, f"the client waited {waited:.1f} s for a service silent for 10 s"


def test_a_refused_connection_is_a_transport_error():
    with FaultServer([answer(200)]) as server:
        url = server.url
    with Client(url, retries=1) as blobs:
        with pytest.raises(TransportError):
            blobs.health()


# -- credentials and signed URLs ------------------------------------------------------


def test_a_token_writes_and_reads(auth_server, prefix):
    with Client(auth_server.url, token=WRITE_TOKEN) as blobs:
        blobs.put(f"{prefix}/t", b"token")
        assert blobs.get(f"{prefix}/t") == b"token"
        assert [e.name for e in blobs.list(prefix)] == ["t"]


def test_a_user_and_password_write_and_read(auth_server, prefix):
    with Client(auth_server.url, user="alice", password=ALICE_PASSWORD) as blobs:
        blobs.put(f"{prefix}/u", b"basic", metadata={"by": "alice"})
        assert blobs.get(f"{prefix}/u") == b"basic"
        assert blobs.stat(f"{prefix}/u").metadata == {"by": "alice"}


@pytest.mark.parametrize("credentials", [{}, {"token": "wrong-" + WRITE_TOKEN},
                                         {"user": "alice", "password": "wrong"},
                                         {"user": "mallory", "password": ALICE_PASSWORD}],
                         ids=["none", "wrong-token", "wrong-password", "unknown-user"])
def test_no_valid_credential_is_unauthorized_and_changes_nothing(auth_server, prefix,
                                                                 credentials):
    with Client(auth_server.url, token=WRITE_TOKEN) as writer:
        writer.put(f"{prefix}/kept", b"kept")
    with Client(auth_server.url, retries=0, **credentials) as blobs:
        for call in (lambda: blobs.put(f"{prefix}/kept", b"overwritten"),
                     lambda: blobs.get(f"{prefix}/kept"), lambda: blobs.delete(f"{prefix}/kept"),
                     lambda: blobs.list(prefix)):
            with pytest.raises(Unauthorized) as caught:
                call()
            assert caught.value.status == 401 and caught.value.code == "unauthorized"
            assert caught.value.request_id
        with pytest.raises(Unauthorized):
            blobs.stat(f"{prefix}/kept")
        assert blobs.health() is True  # the service endpoints stay open
        assert blobs.ready()["status"] == "ready"
    with Client(auth_server.url, token=WRITE_TOKEN) as writer:
        assert writer.get(f"{prefix}/kept") == b"kept"


def test_a_read_token_reads_its_prefix_and_nothing_more(auth_server, prefix):
    with Client(auth_server.url, token=WRITE_TOKEN) as writer:
        writer.put(f"public/{prefix}/p", b"public")
        writer.put(f"{prefix}/private", b"private")
    with Client(auth_server.url, token=READ_TOKEN, retries=0) as reader:
        assert reader.get(f"public/{prefix}/p") == b"public"
        for call in (lambda: reader.put(f"public/{prefix}/p", b"overwritten"),
                     lambda: reader.delete(f"public/{prefix}/p"),
                     lambda: reader.get(f"{prefix}/private")):
            with pytest.raises(Forbidden) as caught:
                call()
            assert caught.value.status == 403 and caught.value.code == "forbidden"
    with Client(auth_server.url, token=WRITE_TOKEN) as writer:
        assert writer.get(f"public/{prefix}/p") == b"public"


def test_a_body_over_the_size_limit_is_too_large_and_stores_nothing(auth_server, prefix):
    with Client(auth_server.url, token=WRITE_TOKEN, retries=0) as blobs:
        with pytest.raises(TooLarge) as caught:
            blobs.put(f"{prefix}/big", pattern(AUTH_MAX_OBJECT_SIZE + 1, "big"))
        assert caught.value.status == 413 and caught.value.code == "too_large"
        assert not blobs.exists(f"{prefix}/big")
        assert blobs.put(f"{prefix}/fits", pattern(AUTH_MAX_OBJECT_SIZE, "fits")).size == MiB


def test_signed_urls_give_their_method_on_their_path_without_a_credential(auth_server, prefix):
    with Client(auth_server.url, token=WRITE_TOKEN, signing_key=SIGNING_KEY) as blobs:
        blobs.put(f"{prefix}/signed", b"signed bytes")
        get_url = blobs.sign(f"{prefix}/signed", expires_in=600)
        put_url = blobs.sign(f"{prefix}/uploaded", "PUT", expires_in=600)
        assert get_url.startswith(blobs.url_for(f"{prefix}/signed") + "?")
    http = urllib3.PoolManager(retries=False)
    assert http.request("GET", get_url).data == b"signed bytes"
    assert http.request("PUT", put_url, body=b"up").status == 201
    assert http.request("PUT", get_url, body=b"x").status == 403  # a GET URL does not write
    other = get_url.replace(f"{prefix}/signed", f"{prefix}/uploaded")
    assert http.request("GET", other).status == 403
    assert http.request("GET", get_url.split("?")[0]).status == 401
    with Client(auth_server.url, token=WRITE_TOKEN) as blobs:
        assert blobs.get(f"{prefix}/uploaded") == b"up"
        assert blobs.get(f"{prefix}/signed") == b"signed bytes"


def test_sign_needs_the_key_and_a_positive_lifetime(auth_server):
    with pytest.raises(ValueError):
        Client(auth_server.url).sign("a/b")
    with pytest.raises(ValueError):
        Client(auth_server.url, signing_key=SIGNING_KEY).sign("a/b", expires_in=0)


# -- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, certificate) -> Iterator[GroupServer]:
    """An open service over HTTPS with a self-signed certificate for 127.0.0.1."""
    cert, key = certificate
    workdir = tmp_path_factory.mktemp("client-tls")
    config = filesystem_config(workdir / "data", port=free_port())
    config["tls"] = {"cert": str(cert), "key": str(key)}
    server = GroupServer(workdir, config)
    try:
        server.start(wait=False)
        server.port = config["server"]["port"]  # start() forgets it: its log says https

        def ready() -> bool:
            assert server.proc is not None and server.proc.poll() is None, server.stderr()
            try:
                with Client(f"https://127.0.0.1:{server.port}", ca_certs=str(cert),
                            retries=0, timeout=2) as probe:
                    return probe.health()
            except TransportError:
                return False

        assert wait_for(ready, timeout=20), server.stderr()
        yield server
    finally:
        server.stop()


def test_tls_refuses_a_certificate_it_cannot_verify(tls_server, prefix):
    with Client(f"https://127.0.0.1:{tls_server.port}", retries=0) as blobs:
        with pytest.raises(TransportError) as caught:
            blobs.put(f"{prefix}/x", b"x")
        assert "certificate" in str(caught.value).lower()
        with pytest.raises(TransportError):
            blobs.health()
    assert not (tls_server.workdir / "data" / prefix).exists()


def test_tls_with_the_ca_bundle_round_trips(tls_server, certificate, prefix):
    cert, _ = certificate
    data = pattern(3 * MiB + 11, "tls")
    with Client(f"https://127.0.0.1:{tls_server.port}", ca_certs=str(cert)) as blobs:
        assert blobs.put(f"{prefix}/tls.bin", iter(chunks_of(data, 100_000))).size == len(data)
        assert blobs.get(f"{prefix}/tls.bin") == data
        assert blobs.get(f"{prefix}/tls.bin", MiB, 10) == data[MiB:MiB + 10]


def test_tls_without_verification_only_when_asked(tls_server, prefix):
    with Client(f"https://127.0.0.1:{tls_server.port}", verify=False) as blobs, \
            pytest.warns(urllib3.exceptions.InsecureRequestWarning):
        blobs.put(f"{prefix}/x", b"unverified")
        assert blobs.get(f"{prefix}/x") == b"unverified"


# -- streaming: memory stays flat -----------------------------------------------------

STREAM_SIZE = 256 * MiB
#: The client's own allocations while 256 MiB pass through it (1 MiB chunks).
STREAM_MEMORY_LIMIT = 8 * MiB


def test_256_mib_stream_up_and_down_in_a_few_mib(request, fs_server, prefix):
    sent = hashlib.sha256()

    def body() -> Iterator[bytes]:
        for number in range(STREAM_SIZE // MiB):
            block = pattern(MiB, number)
            sent.update(block)
            yield block

    received, count = hashlib.sha256(), 0
    tracemalloc.start()
    try:
        with Client(fs_server.url, timeout=120) as blobs:
            info = blobs.put(f"{prefix}/stream", body())
            _, upload_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            with blobs.open(f"{prefix}/stream") as download:
                for chunk in download:
                    received.update(chunk)
                    count += len(chunk)
            _, download_peak = tracemalloc.get_traced_memory()
            blobs.delete(f"{prefix}/stream")
    finally:
        tracemalloc.stop()
    request.config.stash.setdefault(REPORTS, []).append(
        f"client streaming {STREAM_SIZE // MiB} MiB: peak traced memory "
        f"{upload_peak / MiB:.1f} MiB up (chunked iterator), {download_peak / MiB:.1f} MiB down")
    assert info.size == STREAM_SIZE and count == STREAM_SIZE
    assert received.hexdigest() == sent.hexdigest()
    assert upload_peak < STREAM_MEMORY_LIMIT, upload_peak
    assert download_peak < STREAM_MEMORY_LIMIT, download_peak


# -- more of what a user relies on ----------------------------------------------------


def test_a_long_retry_after_does_not_hold_a_read_for_its_length():
    busy = error(503, "backend_unavailable", "busy")
    busy.headers["Retry-After"] = "60"
    with FaultServer([busy, answer(200, b"at last")]) as server, \
            Client(server.url, retries=1) as blobs:
        started = time.monotonic()
        assert blobs.get("a/b") == b"at last"
        waited = time.monotonic() - started
    assert server.attempts == 2
    assert waited < 30, f"a Retry-After of 60 s held the read {waited:.0f} s"


def test_ready_of_a_service_whose_backend_is_down_is_backend_unavailable():
    with FaultServer([error(503, "backend_unavailable", "storage root is missing")]) as server, \
            Client(server.url, retries=1) as blobs:
        with pytest.raises(BackendUnavailable) as caught:
            blobs.ready()
        assert blobs.health() is False
    assert caught.value.message == "storage root is missing"


def test_a_stored_header_that_cannot_travel_is_refused_before_sending(client, prefix):
    with pytest.raises(ValueError):
        client.put(f"{prefix}/euro", b"x", headers={"Content-Disposition": "filename=\u20ac"})
    assert not client.exists(f"{prefix}/euro")
    assert client.put(f"{prefix}/euro", b"x").size == 1


def test_the_client_imports_none_of_the_server_libraries(tmp_path):
    code = ("import sys, blobsvc.client as c\n"
            "c.Client('http://127.0.0.1:1', signing_key='k' * 40).sign('a/b')\n"
            "c.RemoteDriver\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('cherrypy', 'cheroot', 'yaml', 'prometheus_client', 'swiftclient')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_an_unknown_error_code_keeps_its_code_and_takes_its_status_class():
    with FaultServer([error(409, "a_code_of_tomorrow", "new")]) as server, \
            Client(server.url, retries=0) as blobs:
        with pytest.raises(Conflict) as caught:
            blobs.delete("a")
    assert caught.value.code == "a_code_of_tomorrow" and caught.value.message == "new"


def test_a_size_that_contradicts_a_bytes_body_is_refused(client, prefix):
    with pytest.raises(ValueError):
        client.put(f"{prefix}/sized", b"four", size=3)
    assert not client.exists(f"{prefix}/sized")
    assert client.put(f"{prefix}/sized", b"four", size=4).size == 4


# -- answers framed or ranged otherwise (proxies) -------------------------------------


def test_a_chunked_answer_is_read_whole():
    data = pattern(10_000, "chunked")
    with FaultServer([Fault(body=data, chunked=True)]) as server, \
            Client(server.url, retries=0) as blobs:
        assert blobs.get("a/b") == data
        with blobs.open("a/b") as download:
            assert b"".join(download) == data


def test_a_chunked_answer_cut_short_is_a_transport_error():
    with FaultServer([Fault(body=pattern(10_000, "cut"), chunked=True, cut=True)]) as server, \
            Client(server.url, retries=0) as blobs:
        with pytest.raises(TransportError):
            blobs.get("a/b")


@pytest.mark.parametrize("status,content_range,body", [
    (200, None, b"0123456789"),  # a proxy that dropped the Range header
    (206, "bytes 0-2/10", b"012"),  # another range than the one asked for
    (206, "bytes 2-9/10", b"23456789"),  # more than asked for
    (206, None, b"234"),  # no Content-Range at all
], ids=["whole-object", "other-start", "too-long", "unlabelled"])
def test_an_answer_that_is_not_the_range_asked_for_is_never_returned(status, content_range,
                                                                     body):
    headers = {"Content-Range": content_range} if content_range else {}
    with FaultServer([answer(status, body, headers)]) as server, \
            Client(server.url, retries=0) as blobs:
        with pytest.raises(TransportError):
            blobs.get("a/b", offset=2, length=3)
    assert server.requests[0].header("range") == "bytes=2-4"


def test_a_range_answered_whole_from_offset_zero_is_the_range():
    with FaultServer([answer(200, b"0123456789")]) as server, \
            Client(server.url, retries=0) as blobs:
        assert blobs.get("a/b", offset=0, length=100) == b"0123456789"


# -- downloads to one file at once ----------------------------------------------------


def test_two_downloads_to_one_file_at_once_leave_one_whole_file(client, prefix, tmp_path):
    """The first download stalls half-way while a second one to the same
    file completes; each must write a file of its own until it is whole."""
    first, second = pattern(200_000, "first"), pattern(150_000, "second")
    client.put(f"{prefix}/second", second)
    target = tmp_path / "out.bin"
    stalled = Fault(body=first, pause_after=100_000, seconds=2)
    outcome: dict[str, object] = {}
    with FaultServer([stalled]) as server, Client(server.url, retries=0) as slow:
        def slow_download() -> None:
            try:
                outcome["info"] = slow.download("a/first", target)
            except Exception as exc:  # the test reports it below
                outcome["error"] = exc

        thread = threading.Thread(target=slow_download)
        thread.start()
        assert wait_for(lambda: server.attempts == 1, timeout=10)
        time.sleep(0.3)  # the first 100 000 bytes are on their way to the file
        client.download(f"{prefix}/second", target)
        assert target.read_bytes() == second
        thread.join(30)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome
    assert target.read_bytes() == first
    assert os.listdir(tmp_path) == ["out.bin"]


# -- expiry, create-only copies and joins, threads ------------------------------------


@pytest.mark.parametrize("expiry", [{"delete_at": 1}, {"delete_after": -5}],
                         ids=["past-delete-at", "negative-delete-after"])
def test_an_expiry_in_the_past_is_refused_and_nothing_stored(client, prefix, expiry):
    with pytest.raises(BlobsvcError) as caught:
        client.put(f"{prefix}/exp", b"x", **expiry)
    assert caught.value.status == 400
    assert type(caught.value) is ERROR_CLASSES[caught.value.code]
    assert not client.exists(f"{prefix}/exp")


def test_an_object_past_its_expiry_is_gone(client, prefix):
    client.put(f"{prefix}/stays", b"y")
    client.put(f"{prefix}/brief", b"x", delete_at=int(time.time()) + 2)
    assert client.get(f"{prefix}/brief") == b"x"
    assert wait_for(lambda: not client.exists(f"{prefix}/brief"), timeout=10)
    with pytest.raises(NotFound):
        client.get(f"{prefix}/brief")
    assert [e.name for e in client.iter_list(prefix)] == ["stays"]


@pytest.mark.parametrize("operation", ["copy", "cat"])
def test_create_only_copy_and_cat_change_nothing_when_the_target_exists(any_client, prefix,
                                                                        operation):
    any_client.put(f"{prefix}/src", b"source")
    any_client.put(f"{prefix}/dst", b"destination")
    with pytest.raises(PreconditionFailed):
        if operation == "copy":
            any_client.copy(f"{prefix}/src", f"{prefix}/dst", if_none_match="*")
        else:
            any_client.cat(f"{prefix}/dst", [f"{prefix}/src"], if_none_match="*")
    assert any_client.get(f"{prefix}/src") == b"source"
    assert any_client.get(f"{prefix}/dst") == b"destination"


def test_one_client_serves_many_threads(fs_server, prefix):
    """The pool is smaller than the number of threads: connections are
    shared, never mixed up."""
    errors: list[BaseException] = []
    with Client(fs_server.url, pool_size=2) as blobs:
        def work(number: int) -> None:
            try:
                for round_ in range(5):
                    data = pattern(50_000 + number, (number, round_))
                    blobs.put(f"{prefix}/{number}", data)
                    assert blobs.get(f"{prefix}/{number}") == data
                    assert blobs.get(f"{prefix}/{number}", 7, 5) == data[7:12]
            except BaseException as exc:  # the test reports it below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert len(blobs.list(prefix).entries) == 8


def test_a_read_of_zero_bytes_is_empty_not_an_error(client, prefix):
    client.put(f"{prefix}/z", b"0123456789")
    with client.open(f"{prefix}/z") as download:
        assert download.read(0) == b""
        assert download.read(4) == b"0123"
        assert download.read(0) == b""
        assert download.read() == b"456789"


def test_sign_takes_the_method_in_any_case(auth_server, prefix):
    with Client(auth_server.url, token=WRITE_TOKEN, signing_key=SIGNING_KEY) as blobs:
        blobs.put(f"{prefix}/s", b"signed")
        url = blobs.sign(f"{prefix}/s", "get", expires_in=60)
    assert urllib3.request("GET", url, retries=False).data == b"signed"


@pytest.mark.parametrize("name", ["with space", "q?mark", "hash#tag", "per%2Fcent", "plus+semi;",
                                  "café ☃", "dots..", ".hidden", "...", "a=b&c=d", "tilde~"])
def test_names_travel_exactly_as_given(any_client, prefix, name):
    info = any_client.put(f"{prefix}/{name}", name.encode())
    assert info.path == f"{prefix}/{name}" and info.name == name
    assert any_client.get(f"{prefix}/{name}") == name.encode()
    assert any_client.stat(f"{prefix}/{name}").path == f"{prefix}/{name}"
    assert [e.name for e in any_client.list(prefix)] == [name]
    any_client.delete(f"{prefix}/{name}")
    assert not any_client.exists(f"{prefix}/{name}")


def test_an_answer_that_stalls_mid_body_times_out_promptly(tmp_path):
    stalled = Fault(body=pattern(100_000, "stall"), pause_after=50_000, seconds=10)
    with FaultServer([stalled]) as server, \
            Client(server.url, retries=0, timeout=0.5) as blobs:
        started = time.monotonic()
        with pytest.raises(TransportError):
            blobs.download("a/b", tmp_path / "b")
        waited = time.monotonic() - started
    assert waited < 5, f"the client waited {waited:.1f} s for a body stalled for 10 s"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("with_size", [True, False], ids=["sized", "chunked"])
def test_a_streamed_body_over_the_size_limit_is_too_large(auth_server, prefix, with_size):
    def body() -> Iterator[bytes]:
        for number in range(4):
            yield pattern(MiB, number)

    with Client(auth_server.url, token=WRITE_TOKEN, retries=0) as blobs:
        with pytest.raises(TooLarge):
            blobs.put(f"{prefix}/big", body(), size=4 * MiB if with_size else None)
        assert not blobs.exists(f"{prefix}/big")

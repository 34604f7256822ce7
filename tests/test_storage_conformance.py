"""The storage driver contract, checked on every driver alike.

Every test takes the ``driver`` fixture (parametrized over all drivers in
``conftest.py``) and talks to it only through the public driver API, so
the same suite judges the memory, filesystem and Swift backends. One
behaviour per test; contents are compared byte for byte (or by SHA-256 of
the streamed bytes for large objects, which are never held twice).

"Nothing changed" is checked with :func:`snapshot`, a recursive listing
that records every object's bytes and metadata and every directory.

Where a driver documents that it departs from the contract (Swift's large
objects), the test says so with :func:`documented_deviation`: an expected
failure on that driver only, with the reason quoted from its docstring.
Races are hunted for a fixed time (``RACE_SECONDS``), with the
interpreter switching threads as often as it can.
"""

from __future__ import annotations

import hashlib
import random
import sys
import threading
import time
import tracemalloc

import pytest
from storage_helpers import (
    REMOTE_CHECK_BEFORE_BODY,
    REMOTE_OUTSIDE_COMMIT_LOCK,
    SWIFT_CLASH_ACROSS_PROCESSES,
    assert_absent,
    create_only,
    deviation_names,
    documented_deviation,
    driver_chunk_sizes,
    if_match,
    md5_hex,
    misbehaving_cases,
    names,
    pattern,
    populate,
)

from blobsvc.storage.contract import DEFAULT_CONTENT_TYPE, Upload
from blobsvc.storage.errors import (
    ChecksumMismatch,
    Conflict,
    IncompleteBody,
    InvalidPath,
    MissingChunks,
    NotFound,
    PreconditionFailed,
    StorageError,
    TooLarge,
)
from blobsvc.storage.paths import MAX_PATH_BYTES, MAX_SEGMENT_BYTES, RESERVED_PREFIX

# -- helpers ------------------------------------------------------------------


CHUNK_SIZES = driver_chunk_sizes()
LARGEST_CHUNK = max(CHUNK_SIZES)

ROUND_TRIP_SIZES = sorted(
    {0, 1, 2, 7, 4096}
    | {n + delta for n in CHUNK_SIZES for delta in (-1, 0, 1)}
    | {2 * n + 1 for n in CHUNK_SIZES}
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def consume(stream, chunk_sizes: list[int] | None = None) -> tuple[int, str, str]:
    """Read a stream to its end: ``(size, sha256 hex, md5 hex)``; notes each chunk's size."""
    sha256, md5, size = hashlib.sha256(), hashlib.md5(), 0
    with stream:
        for chunk in stream:
            assert isinstance(chunk, bytes)
            sha256.update(chunk)
            md5.update(chunk)
            size += len(chunk)
            if chunk_sizes is not None:
                chunk_sizes.append(len(chunk))
    return size, sha256.hexdigest(), md5.hexdigest()


def snapshot(driver) -> dict:
    """Everything a client can observe: every directory, every object's bytes and info."""
    objects: dict[str, tuple] = {}
    directories: set[str] = set()

    def walk(directory: str) -> None:
        for entry in driver.list_objects(directory):
            if entry.isdir:
                directories.add(entry.path)
                walk(entry.path)
            else:
                info = driver.stat_object(entry.path)
                objects[entry.path] = (driver.get_object(entry.path), info.size, info.etag,
                                       info.content_type, info.ctime)

    walk("")
    return {"objects": objects, "directories": directories}


def contents(driver) -> dict[str, bytes]:
    """Every object's bytes, by path."""
    return {path: state[0] for path, state in snapshot(driver)["objects"].items()}


def call_in_thread(function, timeout: float = 10.0):
    """Run ``function`` in another thread: a driver holding a lock cannot deadlock the test."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = function()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"the driver blocked another caller for more than {timeout}s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def run_concurrently(targets: list, timeout: float = 60.0) -> list:
    """Start every target at once (behind a barrier); return each one's result or exception."""
    barrier = threading.Barrier(len(targets))
    outcomes: list = [None] * len(targets)

    def run(index: int, target) -> None:
        barrier.wait()
        try:
            outcomes[index] = target()
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i, t), daemon=True) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a concurrent call never returned (deadlock?)"
    return outcomes


class ClientGone(Exception):
    """What a request body raises when the client disconnects."""


def body_that_fails(after: list[bytes], error: BaseException):
    yield from after
    raise error



@pytest.fixture
def fine_grained_threads():
    """Switch threads very often, so races show up within few iterations."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


# -- round trips --------------------------------------------------------------


@pytest.mark.parametrize("size", ROUND_TRIP_SIZES)
def test_round_trip_is_byte_exact(driver, size):
    data = pattern(size)
    driver.put_object("obj", data)
    assert driver.get_object("obj") == data


@pytest.mark.parametrize("size", ROUND_TRIP_SIZES)
def test_stream_object_returns_size_and_exact_bytes(driver, size):
    data = pattern(size)
    driver.put_object("obj", data)
    length, stream = driver.stream_object("obj")
    with stream:
        streamed = b"".join(stream)
    assert length == size
    assert streamed == data


@pytest.mark.parametrize("size", ROUND_TRIP_SIZES)
def test_get_object_size_is_the_stored_length(driver, size):
    driver.put_object("obj", pattern(size))
    assert driver.get_object_size("obj") == size


@pytest.mark.parametrize("size", ROUND_TRIP_SIZES)
def test_iterator_upload_in_uneven_chunks_round_trips(driver, size):
    data = pattern(size)
    pieces = [data[i:i + 100_003] for i in range(0, size, 100_003)]
    driver.put_object("obj", iter(pieces))
    assert driver.get_object("obj") == data


# A chunk size that is a multiple of no driver's chunk size, so the body's
# chunk edges and the drivers' never line up.
BIG_CHUNK = 1024 * 1024 + 4099
BIG_CHUNK_COUNT = 64


def big_object_chunks():
    """A 64 MiB+ object, generated chunk by chunk (with one empty chunk inside)."""
    block = pattern(BIG_CHUNK, seed="big")
    for index in range(BIG_CHUNK_COUNT):
        if index == BIG_CHUNK_COUNT // 2:
            yield b""
        yield index.to_bytes(8, "big") + block[8:]


BIG_SIZE = BIG_CHUNK * BIG_CHUNK_COUNT
#: The most a stream may yield at once: it must not hold large objects whole.
MAX_STREAM_CHUNK = 16 * 1024 * 1024


def big_object_digests() -> tuple[str, str]:
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    for chunk in big_object_chunks():
        sha256.update(chunk)
        md5.update(chunk)
    return sha256.hexdigest(), md5.hexdigest()


def big_object_slice(offset: int, length: int) -> bytes:
    """Bytes ``offset .. offset+length`` of the big object, without building it."""
    out, position = [], 0
    for chunk in big_object_chunks():
        start, end = max(offset - position, 0), min(offset + length - position, len(chunk))
        if start < end:
            out.append(chunk[start:end])
        position += len(chunk)
    return b"".join(out)


def test_large_object_round_trips_through_a_stream(driver):
    assert BIG_SIZE > 64 * 1024 * 1024
    expected_sha256, expected_md5 = big_object_digests()
    info = driver.put_object("big/object", big_object_chunks())
    assert info.size == BIG_SIZE
    length, stream = driver.stream_object("big/object")
    assert length == BIG_SIZE
    sizes: list[int] = []
    assert consume(stream, sizes) == (BIG_SIZE, expected_sha256, expected_md5)
    # A stream is a stream: no single chunk holds a large part of the object.
    assert max(sizes) <= MAX_STREAM_CHUNK


def test_etag_of_a_large_object_is_the_md5_of_its_bytes(driver):
    data = pattern(2 * LARGEST_CHUNK + 1)
    info = driver.put_object("large", (data[i:i + 65536] for i in range(0, len(data), 65536)))
    assert info.etag == md5_hex(data)
    assert driver.stat_object("large").etag == md5_hex(data)
    assert [entry.etag for entry in driver.list_objects("")] == [md5_hex(data)]


def test_large_object_ranges_are_exact(driver):
    driver.put_object("big", big_object_chunks())
    offset = 40 * 1024 * 1024 + 12345  # deep inside, across several chunk edges
    length = 3 * LARGEST_CHUNK + 7
    info, stream = driver.open_object("big", offset, length)
    with stream:
        chunks = list(stream)
    assert info.size == BIG_SIZE
    assert b"".join(chunks) == big_object_slice(offset, length)
    assert max(len(chunk) for chunk in chunks) <= MAX_STREAM_CHUNK


# -- put_object ---------------------------------------------------------------


def test_put_bytes_returns_complete_object_info(driver):
    data = b"hello, blob"
    before = time.time()
    info = driver.put_object("dir/sub/hello.txt", data)
    assert info.path == "dir/sub/hello.txt"
    assert info.name == "hello.txt"
    assert info.isdir is False
    assert info.size == len(data)
    assert isinstance(info.ctime, float)
    assert before - 5 <= info.ctime <= time.time() + 5
    assert info.etag == md5_hex(data)
    assert info.content_type == DEFAULT_CONTENT_TYPE


def test_stat_object_matches_the_info_put_object_returned(driver):
    info = driver.put_object("a/b", b"some bytes")
    assert driver.stat_object("a/b") == info


def test_put_iterator_with_empty_chunks_in_the_middle(driver):
    pieces = [b"", b"abc", b"", b"", b"def", b"", b"g", b""]
    info = driver.put_object("obj", iter(pieces))
    assert driver.get_object("obj") == b"abcdefg"
    assert info.size == 7
    assert info.etag == md5_hex(b"abcdefg")


def test_put_generator_of_chunks(driver):
    data = pattern(300_000)
    info = driver.put_object("obj", (data[i:i + 1000] for i in range(0, len(data), 1000)))
    assert driver.get_object("obj") == data
    assert info.etag == md5_hex(data)


def test_put_iterator_of_only_empty_chunks_stores_an_empty_object(driver):
    info = driver.put_object("obj", iter([b"", b""]))
    assert info.size == 0
    assert info.etag == md5_hex(b"")
    assert driver.get_object("obj") == b""


def test_put_empty_bytes_stores_an_empty_object(driver):
    info = driver.put_object("empty", b"")
    assert info.size == 0
    assert info.etag == md5_hex(b"")
    assert driver.get_object("empty") == b""
    assert names(driver.list_objects("")) == ["empty"]


def test_put_upload_keeps_its_content_type(driver):
    info = driver.put_object("page.html", Upload(b"<p>hi</p>", content_type="text/html; charset=utf-8"))
    assert info.content_type == "text/html; charset=utf-8"
    assert driver.stat_object("page.html").content_type == "text/html; charset=utf-8"
    assert driver.get_object("page.html") == b"<p>hi</p>"
    assert info.etag == md5_hex(b"<p>hi</p>")


def test_put_upload_without_content_type_gets_the_default(driver):
    info = driver.put_object("obj", Upload(iter([b"x", b"", b"y"])))
    assert info.content_type == DEFAULT_CONTENT_TYPE
    assert driver.get_object("obj") == b"xy"


def test_content_type_is_replaced_by_an_overwrite(driver):
    driver.put_object("obj", Upload(b"1", content_type="text/plain"))
    driver.put_object("obj", b"2")
    assert driver.stat_object("obj").content_type == DEFAULT_CONTENT_TYPE


def test_overwrite_larger_then_smaller_leaves_no_old_bytes(driver):
    large, small = pattern(LARGEST_CHUNK + 100, seed="large"), b"tiny"
    first = driver.put_object("obj", large)
    second = driver.put_object("obj", small)
    assert driver.get_object("obj") == small
    assert driver.get_object_size("obj") == len(small)
    assert second.etag == md5_hex(small) != first.etag
    assert driver.stat_object("obj").etag == md5_hex(small)
    assert [(e.name, e.size) for e in driver.list_objects("")] == [("obj", len(small))]


def test_overwrite_with_other_bytes_changes_the_etag(driver):
    first = driver.put_object("obj", b"version 1")
    second = driver.put_object("obj", b"version 2")
    assert first.etag != second.etag
    assert driver.stat_object("obj").etag == md5_hex(b"version 2")


def test_distinct_paths_are_distinct_objects(driver):
    populate(driver, {"A": b"upper", "a": b"lower", "a.": b"dot", "a ": b"space"})
    assert contents(driver) == {"A": b"upper", "a": b"lower", "a.": b"dot", "a ": b"space"}


VALID_UNUSUAL_PATHS = {
    "255-byte segment": "x" * MAX_SEGMENT_BYTES,
    "255-byte multibyte segment": "é" * 127 + "a",
    "1024-byte path": "/".join(["p" * 255] * 3 + ["p" * 254, "q"]),
    "dot-prefixed": ".hidden",
    "three dots": "...",
    "dots inside": "a..b",
    "reserved name as a later segment": "x/" + RESERVED_PREFIX,
    "reserved name as a prefix": RESERVED_PREFIX + "x",
    "unicode": "日本/ファイル ü.bin",
    "url-ish characters": "a:b?c#d%2F&e=f+g;h,i'j\"k",
    "spaces": " lead and trail ",
    "tilde and dash": "-~/-",
}


@pytest.mark.parametrize("path", VALID_UNUSUAL_PATHS.values(), ids=VALID_UNUSUAL_PATHS.keys())
def test_unusual_but_valid_paths_round_trip_and_are_listed(driver, path):
    if path == VALID_UNUSUAL_PATHS["1024-byte path"]:
        assert len(path.encode()) == MAX_PATH_BYTES
    data = pattern(10, seed=path)
    info = driver.put_object(path, data)
    assert info.path == path
    assert driver.get_object(path) == data
    assert driver.stat_object(path).size == 10
    parent, _, name = path.rpartition("/")
    assert name in names(driver.list_objects(parent))
    driver.delete_object(path)
    assert driver.list_objects("") == []


# -- streams and ranges -------------------------------------------------------


def test_stream_can_be_closed_early_then_object_overwritten_and_deleted(driver):
    driver.put_object("obj", pattern(2 * LARGEST_CHUNK + 1))
    _, stream = driver.stream_object("obj")
    next(stream)
    stream.close()
    driver.put_object("obj", b"new")
    assert driver.get_object("obj") == b"new"
    driver.delete_object("obj")
    assert_absent(driver, "obj")


def test_stream_closed_before_reading_releases_the_object(driver):
    driver.put_object("obj", pattern(1000))
    for _ in range(3):
        _, stream = driver.stream_object("obj")
        stream.close()
    driver.delete_object("obj")
    assert_absent(driver, "obj")
    driver.put_object("obj", b"again")
    assert driver.get_object("obj") == b"again"


def test_open_object_stream_closed_early_releases_the_object(driver):
    driver.put_object("dir/obj", pattern(2 * LARGEST_CHUNK + 1))
    _, stream = driver.open_object("dir/obj", 10, LARGEST_CHUNK + 10)
    with stream:
        next(stream)
    driver.move_object("dir/obj", "moved")
    driver.delete_object("moved")
    assert driver.list_objects("") == []


def test_stream_opened_before_an_overwrite_yields_the_old_version_whole(driver):
    old = pattern(500_000, seed="old")
    driver.put_object("obj", old)
    length, stream = driver.stream_object("obj")
    driver.put_object("obj", b"new and short")
    assert length == len(old)
    with stream:
        assert b"".join(stream) == old


def test_stream_opened_before_a_delete_yields_the_old_version_whole(driver):
    old = pattern(500_000, seed="old")
    driver.put_object("obj", old)
    length, stream = driver.stream_object("obj")
    driver.delete_object("obj")
    with stream:
        assert b"".join(stream) == old
    assert length == len(old)


#: Big enough that Swift streams it from several segments, not a buffer.
LARGE_STREAM = 8 * LARGEST_CHUNK + 5


def test_large_stream_partly_read_before_an_overwrite_yields_the_old_version_whole(driver):
    old = pattern(LARGE_STREAM, seed="old")
    driver.put_object("obj", iter([old]))
    _, stream = driver.stream_object("obj")
    with stream:
        first = next(stream)
        driver.put_object("obj", iter([pattern(3 * LARGEST_CHUNK, seed="new")]))
        assert first + b"".join(stream) == old


#: The service RemoteDriver talks to on Swift runs with no grace period, so
#: a delete takes a large object's segments at once: a reader already
#: streaming it finishes only if it read them first (README: a reader
#: longer than segment_grace_seconds may be cut off, never sent a wrong byte).
REMOTE_SWIFT_NO_GRACE = ("remote-swift: the test service has segment_grace_seconds 0, so a "
                         "delete may cut off a reader of a large object (never a wrong byte)")


def test_large_stream_opened_before_a_delete_yields_the_old_version_whole(driver, request):
    documented_deviation(request, driver, "remote-swift", REMOTE_SWIFT_NO_GRACE, strict=False)
    old = pattern(LARGE_STREAM, seed="old")
    driver.put_object("obj", iter([old]))
    length, stream = driver.stream_object("obj")
    driver.delete_object("obj")
    with stream:
        assert b"".join(stream) == old
    assert length == len(old)


def test_large_stream_overwritten_mid_read_never_mixes_versions(driver):
    # What every driver guarantees: the old version whole, or an error.
    old = pattern(LARGE_STREAM, seed="old")
    driver.put_object("obj", iter([old]))
    _, stream = driver.stream_object("obj")
    received = []
    try:
        with stream:
            received.append(next(stream))
            driver.put_object("obj", iter([pattern(3 * LARGEST_CHUNK, seed="new")]))
            received.extend(stream)
    except StorageError:
        assert old.startswith(b"".join(received))
    else:
        assert b"".join(received) == old


RANGE_OBJECT_SIZE = 2 * LARGEST_CHUNK + 3


def _ranges() -> dict[str, tuple[int, int | None]]:
    n, size = LARGEST_CHUNK, RANGE_OBJECT_SIZE
    return {
        "whole, no length": (0, None),
        "whole, exact length": (0, size),
        "first byte": (0, 1),
        "first ten": (0, 10),
        "middle": (size // 2 - 50, 100),
        "across the first chunk edge": (n - 1, 2),
        "exactly the second chunk": (n, n),
        "one chunk starting one byte early": (n - 1, n),
        "from the middle to the end": (size // 2, None),
        "last byte": (size - 1, 1),
        "last byte, no length": (size - 1, None),
        "length past the end is clipped": (size - 3, 100),
        "huge length is clipped": (5, 10 * size),
        "zero length at the start": (0, 0),
        "zero length in the middle": (size // 2, 0),
        "zero length at the end": (size, 0),
        "offset at the end": (size, None),
    }


@pytest.mark.parametrize("offset, length", _ranges().values(), ids=_ranges().keys())
def test_open_object_returns_exactly_the_requested_range(driver, offset, length):
    data = pattern(RANGE_OBJECT_SIZE)
    driver.put_object("obj", data)
    info, stream = driver.open_object("obj", offset, length)
    with stream:
        got = b"".join(stream)
    end = len(data) if length is None else offset + length
    assert got == data[offset:end]
    assert info.size == len(data)


def test_open_object_info_equals_stat_object(driver):
    driver.put_object("d/obj", Upload(b"0123456789", content_type="text/plain"))
    info, stream = driver.open_object("d/obj", 2, 3)
    with stream:
        assert b"".join(stream) == b"234"
    assert info == driver.stat_object("d/obj")


@pytest.mark.parametrize("offset, length", [(-1, None), (0, -1), (-5, -5)])
def test_open_object_refuses_negative_offset_or_length(driver, offset, length):
    driver.put_object("obj", b"data")
    with pytest.raises(ValueError):
        driver.open_object("obj", offset, length)


def test_zero_byte_object_streams_nothing(driver):
    driver.put_object("empty", b"")
    length, stream = driver.stream_object("empty")
    with stream:
        assert b"".join(stream) == b""
    assert length == 0


# -- missing objects ----------------------------------------------------------

READ_AND_DELETE_OPERATIONS = {
    "stat_object": lambda drv, path: drv.stat_object(path),
    "get_object_size": lambda drv, path: drv.get_object_size(path),
    "get_object": lambda drv, path: drv.get_object(path),
    "stream_object": lambda drv, path: drv.stream_object(path),
    "open_object": lambda drv, path: drv.open_object(path),
    "open_object range": lambda drv, path: drv.open_object(path, 1, 2),
    "delete_object": lambda drv, path: drv.delete_object(path),
    "move_object source": lambda drv, path: drv.move_object(path, "moved"),
}

MISSING_KINDS = {
    "never existed": "missing",
    "nested, never existed": "no/such/object",
    "below an object": "file/below",
    "prefix of an object": "fil",
    "name inside an existing directory": "dir/missing",
}


@pytest.mark.parametrize("operation", READ_AND_DELETE_OPERATIONS.values(),
                         ids=READ_AND_DELETE_OPERATIONS.keys())
def test_missing_object_is_not_found_and_changes_nothing(driver, operation):
    populate(driver, {"file": b"f", "dir/obj": b"o", "moved": b"destination"})
    before = snapshot(driver)
    assert misbehaving_cases(NotFound, lambda path: operation(driver, path), MISSING_KINDS) == {}
    assert snapshot(driver) == before


@pytest.mark.parametrize("operation", [op for name, op in READ_AND_DELETE_OPERATIONS.items()
                                       if name not in ("delete_object", "move_object source")],
                         ids=[name for name in READ_AND_DELETE_OPERATIONS
                              if name not in ("delete_object", "move_object source")])
def test_reading_a_directory_as_an_object_is_not_found(driver, operation):
    populate(driver, {"dir/obj": b"o"})
    before = snapshot(driver)
    with pytest.raises(NotFound):
        operation(driver, "dir")
    assert snapshot(driver) == before


def test_move_from_a_missing_source_creates_no_destination(driver):
    with pytest.raises(NotFound):
        driver.move_object("missing", "new/dst")
    assert driver.list_objects("") == []


def test_delete_then_recreate(driver):
    driver.put_object("d/obj", b"first")
    driver.delete_object("d/obj")
    assert_absent(driver, "d/obj")
    info = driver.put_object("d/obj", b"second life")
    assert driver.get_object("d/obj") == b"second life"
    assert info.etag == md5_hex(b"second life")
    assert names(driver.list_objects("d")) == ["obj"]


def test_deleting_twice_is_not_found_the_second_time(driver):
    driver.put_object("obj", b"x")
    driver.delete_object("obj")
    with pytest.raises(NotFound):
        driver.delete_object("obj")


# -- listing ------------------------------------------------------------------


def test_empty_root_lists_nothing(driver):
    assert driver.list_objects("") == []


def test_root_lists_objects_and_directories_one_level_deep(driver):
    populate(driver, {"b": b"bb", "a/x": b"ax", "a/y/z": b"ayz", "c": b"c"})
    entries = driver.list_objects("")
    assert [(e.name, e.path, e.isdir) for e in entries] == [
        ("a", "a", True), ("b", "b", False), ("c", "c", False)]


def test_nested_listing_has_full_paths_and_basenames(driver):
    populate(driver, {"a/x": b"ax", "a/y/z": b"ayz", "a/y/w/v": b"v", "b": b"b"})
    assert [(e.name, e.path, e.isdir) for e in driver.list_objects("a")] == [
        ("x", "a/x", False), ("y", "a/y", True)]
    assert [(e.name, e.path, e.isdir) for e in driver.list_objects("a/y")] == [
        ("w", "a/y/w", True), ("z", "a/y/z", False)]
    assert [(e.name, e.path) for e in driver.list_objects("a/y/w")] == [("v", "a/y/w/v")]


def test_directory_entries_have_no_size_or_etag(driver):
    populate(driver, {"d/x": b"123"})
    [entry] = driver.list_objects("")
    assert entry.isdir is True
    assert entry.size is None
    assert entry.etag is None


def test_object_entries_match_stat_object(driver):
    populate(driver, {"d/one": b"1", "d/two": pattern(5000)})
    driver.put_object("d/typed", Upload(b"t", content_type="text/plain"))
    for entry in driver.list_objects("d"):
        info = driver.stat_object(entry.path)
        assert (entry.path, entry.name, entry.isdir, entry.size, entry.etag, entry.content_type) == (
            info.path, info.name, info.isdir, info.size, info.etag, info.content_type)


def test_listing_with_a_trailing_slash_equals_without(driver):
    populate(driver, {"a/x": b"1", "a/y/z": b"2"})
    assert driver.list_objects("a/") == driver.list_objects("a")
    assert driver.list_objects("/") == driver.list_objects("")


def test_listing_is_sorted_by_name(driver):
    all_names = ["b", "B", "a-b", "a.b", "a0", "a", "_", "Z", "z", "ä", "日本", "10", "9", "a b"]
    for name in all_names:
        driver.put_object(name if name != "a" else "a/inner", b"x")
    assert names(driver.list_objects("")) == sorted(all_names)


def test_directory_sorts_by_its_name_not_by_name_with_slash(driver):
    # '-' and '.' sort before '/', '0' after it: a listing that sorts
    # "a/" (as Swift's delimiter listings do) gets this order wrong.
    populate(driver, {"a/inner": b"1", "a-b": b"2", "a.b": b"3", "a0": b"4"})
    assert names(driver.list_objects("")) == ["a", "a-b", "a.b", "a0"]


def test_marker_lists_names_strictly_after_it(driver):
    populate(driver, {name: b"x" for name in ["a", "b", "c", "d"]})
    assert names(driver.list_objects("", marker="b")) == ["c", "d"]


def test_marker_between_names(driver):
    populate(driver, {name: b"x" for name in ["a", "b", "c", "d"]})
    assert names(driver.list_objects("", marker="bb")) == ["c", "d"]
    assert names(driver.list_objects("", marker="")) == ["a", "b", "c", "d"]


def test_marker_after_the_last_name_lists_nothing(driver):
    populate(driver, {"a": b"x", "b": b"x"})
    assert driver.list_objects("", marker="b") == []
    assert driver.list_objects("", marker="zzz") == []


def test_marker_skips_a_directory_with_that_name(driver):
    populate(driver, {"a/1": b"x", "b/1": b"x", "c": b"x", "bb": b"x"})
    assert names(driver.list_objects("", marker="b")) == ["bb", "c"]


def test_marker_in_a_subdirectory(driver):
    populate(driver, {"d/a": b"x", "d/b/c": b"x", "d/c": b"x", "e": b"x"})
    assert names(driver.list_objects("d", marker="a")) == ["b", "c"]


def test_limit_caps_the_listing(driver):
    populate(driver, {name: b"x" for name in ["e", "d", "c/1", "b", "a"]})
    assert names(driver.list_objects("", limit=2)) == ["a", "b"]
    assert names(driver.list_objects("", limit=1)) == ["a"]


def test_limit_larger_than_the_directory_lists_everything(driver):
    populate(driver, {"a": b"x", "b/c": b"x"})
    assert names(driver.list_objects("", limit=100)) == ["a", "b"]


def test_marker_and_limit_page_through_the_whole_listing(driver):
    all_names = [f"{i:03d}" for i in range(25)] + ["sub"]
    for name in all_names:
        driver.put_object(f"d/{name}" if name != "sub" else "d/sub/x", b"x")
    pages, marker = [], None
    for _ in range(len(all_names)):  # bounded: a marker that does not advance must not hang
        page = driver.list_objects("d", marker=marker, limit=7)
        if not page:
            break
        assert len(page) <= 7
        pages.extend(names(page))
        marker = page[-1].name
    assert pages == all_names


def test_listing_a_missing_directory_is_not_found(driver):
    populate(driver, {"x/y": b"1"})
    with pytest.raises(NotFound):
        driver.list_objects("nothing")
    with pytest.raises(NotFound):
        driver.list_objects("x/nothing")


def test_listing_an_object_is_not_found(driver):
    populate(driver, {"obj": b"1", "d/obj": b"2"})
    with pytest.raises(NotFound):
        driver.list_objects("obj")
    with pytest.raises(NotFound):
        driver.list_objects("d/obj")
    with pytest.raises(NotFound):
        driver.list_objects("obj/below")


def test_listing_a_prefix_of_a_directory_name_is_not_found(driver):
    populate(driver, {"ab/c": b"1", "abc/d": b"2"})
    with pytest.raises(NotFound):
        driver.list_objects("a")
    assert names(driver.list_objects("ab")) == ["c"]


def test_reserved_name_never_shows_in_the_root_listing(driver):
    populate(driver, {"a": b"1", "d/e": b"2"})
    driver.put_object("a", b"overwritten")
    driver.delete_object("d/e")
    driver.put_object("-", b"sorts before the reserved name")
    listed = names(driver.list_objects(""))
    assert listed == ["-", "a"]
    assert RESERVED_PREFIX not in names(driver.list_objects("", marker="-"))


def test_reserved_name_is_skipped_before_the_limit_applies(driver):
    populate(driver, {"a": b"1"})  # ".blobsvc" would sort before "a"
    assert names(driver.list_objects("", limit=1)) == ["a"]
    assert names(driver.list_objects("", marker=".", limit=1)) == ["a"]


def test_directory_vanishes_after_its_last_object_is_deleted(driver):
    populate(driver, {"d/e/f": b"1", "keep": b"2"})
    driver.delete_object("d/e/f")
    assert names(driver.list_objects("")) == ["keep"]
    for directory in ("d", "d/e"):
        with pytest.raises(NotFound):
            driver.list_objects(directory)


def test_directory_with_other_objects_survives_a_delete(driver):
    populate(driver, {"d/e/f": b"1", "d/g": b"2"})
    driver.delete_object("d/e/f")
    assert names(driver.list_objects("")) == ["d"]
    assert names(driver.list_objects("d")) == ["g"]
    with pytest.raises(NotFound):
        driver.list_objects("d/e")


def test_directory_vanishes_after_its_last_object_is_moved_out(driver):
    populate(driver, {"d/e/f": b"1"})
    driver.move_object("d/e/f", "g")
    assert names(driver.list_objects("")) == ["g"]
    with pytest.raises(NotFound):
        driver.list_objects("d")


def test_directory_vanishes_after_its_chunks_are_concatenated_elsewhere(driver):
    populate(driver, {"parts/1": b"a", "parts/2": b"b"})
    driver.cat_objects("whole", ["parts/1", "parts/2"])
    assert names(driver.list_objects("")) == ["whole"]
    with pytest.raises(NotFound):
        driver.list_objects("parts")


def test_delete_of_a_name_leaves_similar_names_alone(driver):
    others = {"ab": b"1", "a.b": b"2", "a-b": b"3", "b/a": b"4", "aa/a": b"5", "A": b"6"}
    populate(driver, {"a": b"target", **others})
    driver.delete_object("a")
    assert contents(driver) == others


def test_delete_in_a_directory_leaves_similar_names_alone(driver):
    others = {"x/ab": b"1", "x/a.b": b"2", "xa": b"3", "x/b/a": b"4"}
    populate(driver, {"x/a": b"target", **others})
    driver.delete_object("x/a")
    assert contents(driver) == others
    assert names(driver.list_objects("x")) == ["a.b", "ab", "b"]


# -- directory/object clashes -------------------------------------------------


def test_put_below_an_object_is_a_conflict_and_changes_nothing(driver):
    populate(driver, {"a": b"object"})
    before = snapshot(driver)
    with pytest.raises(Conflict):
        driver.put_object("a/b", b"x")
    with pytest.raises(Conflict):
        driver.put_object("a/b/c", b"x")
    assert snapshot(driver) == before


def test_put_on_a_directory_is_a_conflict_and_changes_nothing(driver):
    populate(driver, {"a/x": b"inside", "a/y/z": b"deeper"})
    before = snapshot(driver)
    with pytest.raises(Conflict):
        driver.put_object("a", b"x")
    with pytest.raises(Conflict):
        driver.put_object("a/y", b"x")
    assert snapshot(driver) == before


def test_delete_of_a_non_empty_directory_is_a_conflict_and_changes_nothing(driver):
    populate(driver, {"a/x": b"inside", "a/y/z": b"deeper"})
    before = snapshot(driver)
    with pytest.raises(Conflict):
        driver.delete_object("a")
    with pytest.raises(Conflict):
        driver.delete_object("a/y")
    assert snapshot(driver) == before


def test_move_below_an_object_is_a_conflict_and_changes_nothing(driver):
    populate(driver, {"a": b"object", "src": b"source"})
    before = snapshot(driver)
    with pytest.raises(Conflict):
        driver.move_object("src", "a/b")
    assert snapshot(driver) == before


def test_move_onto_a_directory_is_a_conflict_and_changes_nothing(driver):
    populate(driver, {"a/x": b"inside", "src": b"source"})
    before = snapshot(driver)
    with pytest.raises(Conflict):
        driver.move_object("src", "a")
    assert snapshot(driver) == before


def test_move_of_a_directory_is_a_conflict_and_changes_nothing(driver):
    populate(driver, {"a/x": b"inside"})
    before = snapshot(driver)
    with pytest.raises(Conflict):
        driver.move_object("a", "b")
    assert snapshot(driver) == before


def test_cat_onto_a_directory_is_a_conflict_and_changes_nothing(driver):
    populate(driver, {"a/x": b"inside", "c1": b"1", "c2": b"2"})
    before = snapshot(driver)
    with pytest.raises(Conflict):
        driver.cat_objects("a", ["c1", "c2"])
    assert snapshot(driver) == before


def test_cat_below_an_object_is_a_conflict_and_changes_nothing(driver):
    populate(driver, {"a": b"object", "c1": b"1", "c2": b"2"})
    before = snapshot(driver)
    with pytest.raises(Conflict):
        driver.cat_objects("a/out", ["c1", "c2"])
    assert snapshot(driver) == before


def test_cat_whose_output_clashes_with_its_own_chunks_is_all_or_nothing(driver):
    # Output "x/out" lies below chunk "x": the contract does not say whether
    # the chunk's removal frees the name first, but either way the call is
    # atomic: a Conflict changes nothing, success leaves exactly the result.
    populate(driver, {"x": b"chunk one", "y": b"+two"})
    before = snapshot(driver)
    try:
        driver.cat_objects("x/out", ["x", "y"])
    except Conflict:
        assert snapshot(driver) == before
    else:
        assert contents(driver) == {"x/out": b"chunk one+two"}


def test_cat_into_the_chunks_own_directory_is_all_or_nothing(driver):
    populate(driver, {"d/1": b"one", "d/2": b"two"})
    before = snapshot(driver)
    try:
        driver.cat_objects("d", ["d/1", "d/2"])
    except Conflict:
        assert snapshot(driver) == before
    else:
        assert contents(driver) == {"d": b"onetwo"}


# -- move ---------------------------------------------------------------------


def test_move_preserves_content_etag_and_content_type(driver):
    data = pattern(LARGEST_CHUNK + 17)
    original = driver.put_object("src", Upload(data, content_type="image/png"))
    moved = driver.move_object("src", "new/place/dst")
    assert driver.get_object("new/place/dst") == data
    assert moved.path == "new/place/dst"
    assert moved.name == "dst"
    assert (moved.size, moved.etag, moved.content_type) == (len(data), original.etag, "image/png")
    assert driver.stat_object("new/place/dst") == moved


def test_move_removes_the_source(driver):
    driver.put_object("src", b"data")
    driver.move_object("src", "dst")
    assert_absent(driver, "src")
    assert names(driver.list_objects("")) == ["dst"]


def test_move_onto_an_existing_object_overwrites_it(driver):
    populate(driver, {"src": b"new content", "dst": pattern(LARGEST_CHUNK + 1, seed="old")})
    driver.move_object("src", "dst")
    assert contents(driver) == {"dst": b"new content"}
    assert driver.stat_object("dst").etag == md5_hex(b"new content")


def test_move_to_itself_is_harmless(driver):
    info = driver.put_object("d/obj", Upload(b"stay", content_type="text/plain"))
    before = snapshot(driver)
    moved = driver.move_object("d/obj", "d/obj")
    assert snapshot(driver) == before
    assert (moved.path, moved.size, moved.etag, moved.content_type) == (
        info.path, info.size, info.etag, info.content_type)


def test_move_from_a_missing_source_leaves_the_destination_untouched(driver):
    populate(driver, {"dst": b"precious"})
    before = snapshot(driver)
    with pytest.raises(NotFound):
        driver.move_object("missing", "dst")
    assert snapshot(driver) == before


def test_move_between_directories(driver):
    populate(driver, {"a/b/src": b"1", "a/keep": b"2"})
    driver.move_object("a/b/src", "a/c/dst")
    assert contents(driver) == {"a/c/dst": b"1", "a/keep": b"2"}
    assert names(driver.list_objects("a")) == ["c", "keep"]


# -- cat ----------------------------------------------------------------------


def test_cat_concatenates_byte_exact_including_empty_chunks(driver):
    chunks = {"up/0": b"", "up/1": b"hello ", "up/2": b"", "up/3": b"world", "up/4": b""}
    populate(driver, chunks)
    info = driver.cat_objects("out", list(chunks))
    assert driver.get_object("out") == b"hello world"
    assert info.path == "out"
    assert info.size == 11
    assert info.isdir is False


def test_cat_result_etag_is_the_md5_of_the_content(driver):
    populate(driver, {"c1": b"abc", "c2": b"def"})
    info = driver.cat_objects("out", ["c1", "c2"])
    assert info.etag == md5_hex(b"abcdef")
    assert driver.stat_object("out").etag == md5_hex(b"abcdef")
    assert info.content_type == DEFAULT_CONTENT_TYPE


def test_cat_removes_the_chunks(driver):
    populate(driver, {"c1": b"1", "c2": b"2", "other": b"o"})
    driver.cat_objects("out", ["c1", "c2"])
    for chunk in ("c1", "c2"):
        assert_absent(driver, chunk)
    assert contents(driver) == {"other": b"o", "out": b"12"}


def test_cat_of_a_single_chunk(driver):
    data = pattern(1000)
    populate(driver, {"only": data})
    driver.cat_objects("out", ["only"])
    assert contents(driver) == {"out": data}


def test_cat_of_only_empty_chunks_is_an_empty_object(driver):
    populate(driver, {"e1": b"", "e2": b""})
    info = driver.cat_objects("out", ["e1", "e2"])
    assert info.size == 0
    assert contents(driver) == {"out": b""}


def test_cat_of_many_chunks(driver):
    rng = random.Random("many")
    chunks = {f"parts/{i:03d}": pattern(rng.randrange(0, 5000), seed=i) for i in range(40)}
    populate(driver, chunks)
    driver.cat_objects("out", list(chunks))
    assert contents(driver) == {"out": b"".join(chunks.values())}


def test_cat_across_driver_chunk_boundaries(driver):
    n = LARGEST_CHUNK
    parts = [pattern(n - 1, 1), pattern(2, 2), pattern(n + 1, 3), b"", pattern(1, 4), pattern(n, 5)]
    chunks = {f"c{i}": part for i, part in enumerate(parts)}
    populate(driver, chunks)
    info = driver.cat_objects("out", list(chunks))
    length, stream = driver.stream_object("out")
    expected = b"".join(parts)
    assert length == len(expected) == info.size
    assert consume(stream)[1] == sha256_hex(expected)


def test_cat_of_the_same_chunk_twice(driver):
    populate(driver, {"c": b"ab"})
    driver.cat_objects("out", ["c", "c"])
    assert contents(driver) == {"out": b"abab"}


def test_cat_into_one_of_its_chunks_overwrites_it(driver):
    populate(driver, {"c1": b"first-", "c2": b"second-", "c3": b"third"})
    driver.cat_objects("c2", ["c1", "c2", "c3"])
    assert contents(driver) == {"c2": b"first-second-third"}


def test_cat_into_its_first_chunk_overwrites_it(driver):
    populate(driver, {"d/c1": b"first-", "d/c2": b"second"})
    driver.cat_objects("d/c1", ["d/c1", "d/c2"])
    assert contents(driver) == {"d/c1": b"first-second"}


def test_cat_onto_an_existing_object_replaces_it(driver):
    populate(driver, {"out": pattern(LARGEST_CHUNK + 1, seed="old"), "c1": b"new"})
    driver.cat_objects("out", ["c1"])
    assert contents(driver) == {"out": b"new"}


def test_cat_into_a_new_directory(driver):
    populate(driver, {"c1": b"1", "c2": b"2"})
    driver.cat_objects("x/y/out", ["c1", "c2"])
    assert contents(driver) == {"x/y/out": b"12"}
    assert names(driver.list_objects("x")) == ["y"]


def test_cat_with_missing_chunks_names_every_one_and_changes_nothing(driver):
    populate(driver, {"c1": b"1", "c3": b"3", "out": b"old output"})
    before = snapshot(driver)
    with pytest.raises(MissingChunks) as caught:
        driver.cat_objects("out", ["c1", "m2", "c3", "d/m4", "m5"])
    assert set(caught.value.missing) == {"m2", "d/m4", "m5"}
    assert snapshot(driver) == before


def test_cat_with_missing_chunks_creates_no_output(driver):
    populate(driver, {"c1": b"1"})
    with pytest.raises(MissingChunks) as caught:
        driver.cat_objects("new/out", ["c1", "missing"])
    assert caught.value.missing == ["missing"]
    assert contents(driver) == {"c1": b"1"}
    with pytest.raises(NotFound):
        driver.list_objects("new")


def test_cat_with_a_missing_chunk_that_is_also_the_output(driver):
    populate(driver, {"c1": b"1"})
    with pytest.raises(MissingChunks) as caught:
        driver.cat_objects("out", ["c1", "out"])
    assert caught.value.missing == ["out"]
    assert contents(driver) == {"c1": b"1"}


def test_cat_with_all_chunks_missing(driver):
    with pytest.raises(MissingChunks) as caught:
        driver.cat_objects("out", ["m1", "m2"])
    assert set(caught.value.missing) == {"m1", "m2"}
    assert driver.list_objects("") == []


def test_missing_chunks_is_a_not_found(driver):
    with pytest.raises(NotFound):
        driver.cat_objects("out", ["missing"])


# -- cat and the size limit ------------------------------------------------------


def test_cat_over_max_size_is_too_large_and_changes_nothing(driver):
    populate(driver, {"c1": b"x" * 600, "c2": b"y" * 600, "out": b"old output"})
    before = snapshot(driver)
    with pytest.raises(TooLarge):
        driver.cat_objects("out", ["c1", "c2"], max_size=1000)
    with pytest.raises(TooLarge):
        driver.cat_objects("new/out", ["c1", "c2"], max_size=1000)
    assert snapshot(driver) == before


def test_cat_of_exactly_max_size_is_stored(driver):
    populate(driver, {"c1": b"x" * 600, "c2": b"y" * 400})
    info = driver.cat_objects("out", ["c1", "c2"], max_size=1000)
    assert info.size == 1000
    assert contents(driver) == {"out": b"x" * 600 + b"y" * 400}


def test_cat_counts_every_repeat_of_a_chunk_against_max_size(driver):
    populate(driver, {"c": b"z" * 100})
    before = snapshot(driver)
    with pytest.raises(TooLarge):
        driver.cat_objects("out", ["c"] * 11, max_size=1000)
    assert snapshot(driver) == before
    driver.cat_objects("out", ["c"] * 10, max_size=1000)
    assert contents(driver) == {"out": b"z" * 1000}


def test_cat_into_one_of_its_chunks_over_max_size_keeps_it(driver):
    populate(driver, {"c1": b"x" * 600, "c2": b"y" * 600})
    before = snapshot(driver)
    with pytest.raises(TooLarge):
        driver.cat_objects("c1", ["c1", "c2"], max_size=1000)
    assert snapshot(driver) == before


def test_cat_refuses_an_oversized_result_before_joining_any_bytes(driver):
    """Hundreds of references to one chunk: refused from the chunk sizes alone.

    Joining first would hold (memory) or write (disk) the whole result.
    """
    size = 1024 * 1024
    populate(driver, {"c": pattern(size)})
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            driver.cat_objects("out", ["c"] * 100, max_size=size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * size, f"{peak} bytes allocated to refuse the cat"
    assert contents(driver) == {"c": pattern(size)}


#: Where each driver reads a chunk while it joins; the test replaces the chunk
#: there, after the driver summed the sizes it saw first.
JOIN_HOOKS = {
    "filesystem": {"small": "_open", "large": "_open"},
    "swift": {"small": "_get", "large": "_manifest_entries"},
}


# Memory sums the sizes and joins under one lock: no chunk can change between.
@pytest.mark.parametrize("driver", sorted(JOIN_HOOKS), indirect=True)
@pytest.mark.parametrize("kind", ["small", "large"])
def test_cat_enforces_max_size_while_joining(driver, monkeypatch, kind):
    """A chunk replaced by a bigger one after the up-front check still hits the limit."""
    first = 100 if kind == "small" else 2 * LARGEST_CHUNK + 1
    bigger = pattern(first + 2 * LARGEST_CHUNK + 1000, seed="bigger")
    populate(driver, {"c1": pattern(first), "c2": b"tail"})
    limit = first + 500
    hook = JOIN_HOOKS[driver.name][kind]
    original = getattr(driver, hook)
    replaced = []

    def replace_then_read(name, *args, **kwargs):
        if name == "c1" and not replaced:
            replaced.append(call_in_thread(lambda: driver.put_object("c1", bigger), 60))
        return original(name, *args, **kwargs)

    monkeypatch.setattr(driver, hook, replace_then_read)
    with pytest.raises(TooLarge):
        driver.cat_objects("out", ["c1", "c2"], max_size=limit)
    monkeypatch.undo()
    assert replaced, f"{hook} was never called for c1: the hook table is out of date"
    assert contents(driver) == {"c1": bigger, "c2": b"tail"}


# -- invalid paths ------------------------------------------------------------

INVALID_PATHS = {
    "empty": "",
    "leading slash": "/a",
    "trailing slash": "a/",
    "double slash": "a//b",
    "dot": ".",
    "dot dot": "..",
    "dot segment": "a/./b",
    "dot-dot segment": "a/../b",
    "leading dot-dot": "../a",
    "NUL": "a\x00b",
    "newline": "a\nb",
    "tab": "a\tb",
    "escape": "\x1b[0m",
    "DEL": "a\x7fb",
    "backslash": "a\\b",
    "256-byte segment": "x" * (MAX_SEGMENT_BYTES + 1),
    "256-byte multibyte segment": "é" * 128,
    "1025-byte path": "/".join(["p" * 255] * 4 + ["q"]),
    "very long path": "/".join(["z" * 200] * 6),
    "reserved": RESERVED_PREFIX,
    "inside reserved": RESERVED_PREFIX + "/tmp",
    "reserved temp file": RESERVED_PREFIX + "/tmp/0.x.tmp",
    "not UTF-8": "a\udcffb",
}

#: Every operation on an invalid path; the other argument is a valid one
#: that exists ("existing", "chunk") or not ("fresh").
PATH_OPERATIONS = {
    "stat_object": lambda drv, p: drv.stat_object(p),
    "get_object_size": lambda drv, p: drv.get_object_size(p),
    "put_object bytes": lambda drv, p: drv.put_object(p, b"new data"),
    "put_object iterator": lambda drv, p: drv.put_object(p, iter([b"new ", b"data"])),
    "put_object Upload": lambda drv, p: drv.put_object(p, Upload(b"new", content_type="text/plain")),
    "get_object": lambda drv, p: drv.get_object(p),
    "stream_object": lambda drv, p: drv.stream_object(p),
    "open_object": lambda drv, p: drv.open_object(p, 0, 1),
    "delete_object": lambda drv, p: drv.delete_object(p),
    "move_object source": lambda drv, p: drv.move_object(p, "fresh"),
    "move_object destination": lambda drv, p: drv.move_object("existing", p),
    "move_object both": lambda drv, p: drv.move_object(p, p),
    "cat_objects output": lambda drv, p: drv.cat_objects(p, ["chunk"]),
    "cat_objects chunk": lambda drv, p: drv.cat_objects("fresh", ["chunk", p]),
    "cat_objects missing chunk": lambda drv, p: drv.cat_objects("fresh", ["missing", p]),
}

INVALID_STATE = {"existing": b"existing object", "chunk": b"chunk", "a/b": b"nested", "dir/x": b"x"}


@pytest.mark.parametrize("operation", PATH_OPERATIONS.values(), ids=PATH_OPERATIONS.keys())
def test_invalid_path_is_refused_and_changes_nothing(driver, operation):
    # Every invalid path in one test per operation: a Swift round trip per
    # case would make the matrix slow.
    populate(driver, INVALID_STATE)
    before = snapshot(driver)
    assert misbehaving_cases(InvalidPath, lambda path: operation(driver, path), INVALID_PATHS) == {}
    assert snapshot(driver) == before


INVALID_DIRECTORIES = {
    name: path for name, path in INVALID_PATHS.items() if path not in ("", "a/")
}
INVALID_DIRECTORIES.update({"two trailing slashes": "a//", "slashes both ends": "/a/", "only slashes": "//"})


def test_listing_an_invalid_directory_is_refused(driver):
    populate(driver, INVALID_STATE)
    assert misbehaving_cases(InvalidPath, driver.list_objects, INVALID_DIRECTORIES) == {}


@pytest.mark.parametrize("path", [None, b"a", 1, ["a"]], ids=["None", "bytes", "int", "list"])
def test_non_string_path_is_invalid(driver, path):
    with pytest.raises(InvalidPath):
        driver.stat_object(path)
    with pytest.raises(InvalidPath):
        driver.put_object(path, b"x")
    assert driver.list_objects("") == []


def test_invalid_path_is_refused_even_when_another_argument_is_missing(driver):
    with pytest.raises(InvalidPath):
        driver.move_object("missing", "a//b")
    with pytest.raises(InvalidPath):
        driver.cat_objects("../out", ["missing"])


# -- checked uploads ----------------------------------------------------------


def test_body_shorter_than_expected_size_is_incomplete_and_stores_nothing(driver):
    populate(driver, {"obj": b"old version"})
    before = snapshot(driver)
    with pytest.raises(IncompleteBody):
        driver.put_object("obj", Upload(iter([b"only ", b"part"]), expected_size=100))
    with pytest.raises(IncompleteBody):
        driver.put_object("new/obj", Upload(b"short", expected_size=6))
    assert snapshot(driver) == before


def test_body_longer_than_expected_size_is_incomplete_and_stores_nothing(driver):
    populate(driver, {"obj": b"old version"})
    before = snapshot(driver)
    with pytest.raises(IncompleteBody):
        driver.put_object("obj", Upload(iter([b"way ", b"too ", b"long"]), expected_size=5))
    assert snapshot(driver) == before


def test_body_of_exactly_the_expected_size_is_stored(driver):
    info = driver.put_object("obj", Upload(iter([b"12", b"345"]), expected_size=5))
    assert info.size == 5
    assert driver.get_object("obj") == b"12345"


def test_body_over_max_size_is_too_large_and_stores_nothing(driver):
    populate(driver, {"obj": b"old version"})
    before = snapshot(driver)
    with pytest.raises(TooLarge):
        driver.put_object("obj", Upload(iter([b"x" * 600, b"y" * 600]), max_size=1000))
    with pytest.raises(TooLarge):
        driver.put_object("new/obj", Upload(b"x" * 1001, max_size=1000))
    assert snapshot(driver) == before


def test_body_of_exactly_max_size_is_stored(driver):
    driver.put_object("obj", Upload(b"x" * 1000, max_size=1000))
    assert driver.get_object("obj") == b"x" * 1000


def test_wrong_content_md5_is_a_checksum_mismatch_and_stores_nothing(driver):
    populate(driver, {"obj": b"old version"})
    before = snapshot(driver)
    with pytest.raises(ChecksumMismatch):
        driver.put_object("obj", Upload(b"new version", content_md5=hashlib.md5(b"other").digest()))
    with pytest.raises(ChecksumMismatch):
        driver.put_object("new/obj", Upload(iter([b"a", b"b"]), content_md5=b"\0" * 16))
    assert snapshot(driver) == before


def test_right_content_md5_is_stored(driver):
    data = pattern(LARGEST_CHUNK + 3)
    info = driver.put_object("obj", Upload(data, content_md5=hashlib.md5(data).digest()))
    assert info.size == len(data)
    assert driver.get_object("obj") == data


def test_wrong_sha256_is_a_checksum_mismatch_and_stores_nothing(driver):
    populate(driver, {"obj": b"old version"})
    before = snapshot(driver)
    with pytest.raises(ChecksumMismatch):
        driver.put_object("obj", Upload(b"new version", sha256_hex=sha256_hex(b"other")))
    with pytest.raises(ChecksumMismatch):
        driver.put_object("new/obj", Upload(iter([b"a", b"b"]), sha256_hex="0" * 64))
    assert snapshot(driver) == before


def test_right_sha256_in_any_case_is_stored(driver):
    driver.put_object("lower", Upload(b"data", sha256_hex=sha256_hex(b"data")))
    driver.put_object("upper", Upload(b"data", sha256_hex=sha256_hex(b"data").upper()))
    assert contents(driver) == {"lower": b"data", "upper": b"data"}


def test_failing_precondition_stores_nothing(driver):
    populate(driver, {"obj": b"old version"})
    before = snapshot(driver)

    def refuse(current):
        raise PreconditionFailed("no", "obj")

    with pytest.raises(PreconditionFailed):
        driver.put_object("obj", Upload(b"new version", precondition=refuse))
    with pytest.raises(PreconditionFailed):
        driver.put_object("new/obj", Upload(iter([b"a", b"b"]), precondition=refuse))
    assert snapshot(driver) == before


def test_precondition_receives_the_current_object_info(driver):
    driver.put_object("obj", Upload(b"current", content_type="text/plain"))
    current = driver.stat_object("obj")
    seen = []
    driver.put_object("obj", Upload(b"next", precondition=seen.append))
    assert seen == [current]
    assert driver.get_object("obj") == b"next"


def test_precondition_receives_none_when_the_object_is_absent(driver):
    seen = []
    driver.put_object("d/obj", Upload(b"first", precondition=seen.append))
    assert seen == [None]
    assert driver.get_object("d/obj") == b"first"


def test_precondition_sees_the_version_committed_while_the_body_arrived(driver, request):
    documented_deviation(request, driver, "remote", REMOTE_CHECK_BEFORE_BODY)
    driver.put_object("obj", b"original")

    def body():
        yield b"slow "
        call_in_thread(lambda: driver.put_object("obj", b"concurrent"))
        yield b"upload"

    seen = []
    driver.put_object("obj", Upload(body(), precondition=seen.append))
    assert [info.etag for info in seen] == [md5_hex(b"concurrent")]
    assert driver.get_object("obj") == b"slow upload"


def test_delete_precondition_receives_the_current_object_info(driver):
    driver.put_object("obj", b"current")
    current = driver.stat_object("obj")
    seen = []
    driver.delete_object("obj", precondition=seen.append)
    assert seen == [current]
    assert_absent(driver, "obj")


def test_failing_delete_precondition_keeps_the_object(driver):
    populate(driver, {"d/obj": b"keep me"})
    before = snapshot(driver)

    def refuse(current):
        raise PreconditionFailed("no", "d/obj")

    with pytest.raises(PreconditionFailed):
        driver.delete_object("d/obj", precondition=refuse)
    assert snapshot(driver) == before


LARGE = 2 * LARGEST_CHUNK + 1


def large_body(seed: object = "new") -> list[bytes]:
    """More than two driver chunks, in uneven pieces (an upload of unknown size)."""
    data = pattern(LARGE, seed=seed)
    return [data[i:i + 300_007] for i in range(0, len(data), 300_007)]


def refuse(current):
    raise PreconditionFailed("refused", None)


LARGE_UPLOAD_FAILURES = {
    "expected_size too large": (lambda body: Upload(body, expected_size=LARGE + 1), IncompleteBody),
    "expected_size too small": (lambda body: Upload(body, expected_size=LARGE - 1), IncompleteBody),
    "max_size exceeded": (lambda body: Upload(body, max_size=LARGE - 1), TooLarge),
    "wrong content_md5": (lambda body: Upload(body, content_md5=b"\1" * 16), ChecksumMismatch),
    "wrong sha256": (lambda body: Upload(body, sha256_hex="1" * 64), ChecksumMismatch),
    "precondition fails": (lambda body: Upload(body, precondition=refuse), PreconditionFailed),
}


@pytest.mark.parametrize("make_upload, error", LARGE_UPLOAD_FAILURES.values(),
                         ids=LARGE_UPLOAD_FAILURES.keys())
def test_failed_large_upload_stores_nothing_and_keeps_the_old_large_version(driver, make_upload, error):
    driver.put_object("obj", iter(large_body(seed="old")))
    before = snapshot(driver)
    with pytest.raises(error):
        driver.put_object("obj", make_upload(iter(large_body())))
    with pytest.raises(error):
        driver.put_object("new/obj", make_upload(iter(large_body())))
    assert snapshot(driver) == before


def test_passing_checks_store_a_large_upload(driver):
    data = pattern(LARGE, seed="new")
    seen = []
    upload = Upload(iter(large_body()), expected_size=LARGE, max_size=LARGE,
                    content_md5=hashlib.md5(data).digest(), sha256_hex=sha256_hex(data),
                    precondition=seen.append, content_type="video/mp4")
    info = driver.put_object("obj", upload)
    assert (info.size, info.content_type, seen) == (LARGE, "video/mp4", [None])
    assert driver.get_object("obj") == data


def test_overwrite_of_a_large_object_by_another(driver):
    driver.put_object("obj", iter(large_body(seed="first")))
    second = pattern(LARGE + 12345, seed="second")
    driver.put_object("obj", iter([second[:LARGEST_CHUNK], second[LARGEST_CHUNK:]]))
    assert driver.get_object("obj") == second
    driver.delete_object("obj")
    assert driver.list_objects("") == []


def test_move_of_a_large_object(driver):
    data = pattern(LARGE, seed="new")
    original = driver.put_object("src", Upload(iter(large_body()), content_type="video/mp4"))
    moved = driver.move_object("src", "d/dst")
    assert (moved.size, moved.etag, moved.content_type) == (LARGE, original.etag, "video/mp4")
    assert contents(driver) == {"d/dst": data}
    driver.delete_object("d/dst")
    assert driver.list_objects("") == []


def test_move_of_a_large_object_onto_another_large_object(driver):
    data = pattern(LARGE, seed="new")
    driver.put_object("src", iter(large_body()))
    driver.put_object("dst", iter(large_body(seed="old")))
    driver.move_object("src", "dst")
    assert contents(driver) == {"dst": data}


def test_cat_of_large_chunks_repeated_and_into_one_of_them(driver):
    big1, big2 = pattern(LARGE, seed=1), pattern(LARGEST_CHUNK, seed=2)
    driver.put_object("c1", iter([big1]))
    driver.put_object("c2", iter([big2]))
    driver.put_object("c3", b"small")
    info = driver.cat_objects("c2", ["c1", "c2", "c3", "c1", "c2"])
    expected = big1 + big2 + b"small" + big1 + big2
    assert info.size == len(expected)
    length, stream = driver.stream_object("c2")
    assert (length, consume(stream)[1]) == (len(expected), sha256_hex(expected))
    assert names(driver.list_objects("")) == ["c2"]


def test_delete_of_a_large_cat_result_leaves_nothing_behind(driver):
    driver.put_object("c1", iter([pattern(LARGE, seed=1)]))
    driver.put_object("c2", iter([pattern(LARGE, seed=2)]))
    driver.cat_objects("d/out", ["c1", "c2", "c1"])
    driver.delete_object("d/out")
    assert driver.list_objects("") == []
    driver.put_object("d/out", b"reborn")
    assert contents(driver) == {"d/out": b"reborn"}


def test_large_object_entry_in_a_listing_matches_stat_object(driver):
    driver.put_object("d/large", Upload(iter(large_body()), content_type="video/mp4"))
    [entry] = driver.list_objects("d")
    info = driver.stat_object("d/large")
    assert (entry.size, entry.etag, entry.content_type) == (info.size, info.etag, info.content_type)
    assert entry.size == LARGE


# -- move and cat preconditions ---------------------------------------------------
#
# The destination of a move or cat is judged like the target of a PUT: the
# precondition gets its current version (or None) right before the commit,
# and a refusal changes nothing: the source and the chunks stay.

SWIFT_CHECK_THEN_WRITE = ("Swift: write preconditions are checked with a HEAD right before "
                          "the commit (check-then-write: a write of the same name, from this "
                          "process or another, can come in between)")


MOVE_AND_CAT = {
    "move": lambda driver, dst, precondition: driver.move_object("src", dst, precondition=precondition),
    "cat": lambda driver, dst, precondition: driver.cat_objects(dst, ["src", "c2"],
                                                                precondition=precondition),
}
MOVE_AND_CAT_RESULT = {"move": b"source", "cat": b"source+chunk"}


@pytest.fixture(params=MOVE_AND_CAT, ids=list(MOVE_AND_CAT))
def write_to(request, driver):
    """``write_to(dst, precondition)``: a move of ``src`` or a cat of ``src`` and ``c2``."""
    populate(driver, {"src": b"source", "c2": b"+chunk"})
    operation = MOVE_AND_CAT[request.param]
    call = lambda dst, precondition=None: operation(driver, dst, precondition)  # noqa: E731
    call.kind = request.param
    return call


def test_move_or_cat_precondition_receives_the_destination_info(driver, write_to):
    driver.put_object("d/dst", Upload(b"old", content_type="text/plain"))
    current = driver.stat_object("d/dst")
    seen = []
    write_to("d/dst", seen.append)
    assert seen == [current]
    assert driver.get_object("d/dst") == MOVE_AND_CAT_RESULT[write_to.kind]


def test_move_or_cat_precondition_receives_none_when_the_destination_is_absent(driver, write_to):
    seen = []
    write_to("new/dst", seen.append)
    assert seen == [None]
    assert driver.get_object("new/dst") == MOVE_AND_CAT_RESULT[write_to.kind]


def test_move_or_cat_create_only_onto_an_existing_object_changes_nothing(driver, write_to):
    populate(driver, {"d/dst": b"precious"})
    before = snapshot(driver)
    with pytest.raises(PreconditionFailed):
        write_to("d/dst", create_only)
    assert snapshot(driver) == before


def test_move_or_cat_create_only_onto_an_absent_destination_writes_it(driver, write_to):
    info = write_to("d/dst", create_only)
    assert info.path == "d/dst"
    assert driver.get_object("d/dst") == MOVE_AND_CAT_RESULT[write_to.kind]
    assert_absent(driver, "src")


def test_move_or_cat_if_match_replaces_only_the_version_seen(driver, write_to):
    seen = driver.put_object("dst", b"version one")
    driver.put_object("dst", b"version two")
    before = snapshot(driver)
    with pytest.raises(PreconditionFailed):
        write_to("dst", if_match(seen.etag))
    assert snapshot(driver) == before
    write_to("dst", if_match(driver.stat_object("dst").etag))
    assert driver.get_object("dst") == MOVE_AND_CAT_RESULT[write_to.kind]


def test_move_or_cat_if_match_on_an_absent_destination_changes_nothing(driver, write_to):
    before = snapshot(driver)
    with pytest.raises(PreconditionFailed):
        write_to("dst", if_match(md5_hex(b"anything")))
    assert snapshot(driver) == before


def test_move_or_cat_from_missing_sources_is_not_found_before_the_precondition(driver):
    populate(driver, {"dst": b"precious"})
    before = snapshot(driver)
    with pytest.raises(NotFound):
        driver.move_object("missing", "dst", precondition=refuse)
    with pytest.raises(MissingChunks):
        driver.cat_objects("dst", ["missing"], precondition=refuse)
    assert snapshot(driver) == before


def test_move_to_itself_checks_the_precondition(driver):
    populate(driver, {"obj": b"stay"})
    before = snapshot(driver)
    with pytest.raises(PreconditionFailed):
        driver.move_object("obj", "obj", precondition=create_only)
    info = driver.move_object("obj", "obj", precondition=if_match(md5_hex(b"stay")))
    assert info.etag == md5_hex(b"stay")
    assert snapshot(driver) == before


def test_cat_into_one_of_its_chunks_with_a_failing_precondition_changes_nothing(driver):
    populate(driver, {"c1": b"first-", "c2": b"second"})
    before = snapshot(driver)
    with pytest.raises(PreconditionFailed):
        driver.cat_objects("c2", ["c1", "c2"], precondition=create_only)
    assert snapshot(driver) == before
    driver.cat_objects("c2", ["c1", "c2"], precondition=if_match(md5_hex(b"second")))
    assert contents(driver) == {"c2": b"first-second"}


def test_large_move_or_cat_with_a_failing_precondition_changes_nothing(driver):
    driver.put_object("src", iter(large_body()))
    driver.put_object("big", iter(large_body(seed="big")))
    driver.put_object("dst", iter(large_body(seed="old")))
    before = snapshot(driver)
    with pytest.raises(PreconditionFailed):
        driver.move_object("src", "dst", precondition=create_only)
    with pytest.raises(PreconditionFailed):
        driver.cat_objects("dst", ["src", "big"], precondition=create_only)
    with pytest.raises(PreconditionFailed):  # into one of its own chunks
        driver.cat_objects("big", ["src", "big"], precondition=create_only)
    assert snapshot(driver) == before
    driver.cat_objects("big", ["src", "big"], precondition=if_match(driver.stat_object("big").etag))
    assert driver.get_object("big") == pattern(LARGE, seed="new") + pattern(LARGE, seed="big")


def test_move_or_cat_precondition_holds_off_writers_of_the_destination(driver, write_to, request):
    """Checked and committed as one step: a PUT of the destination waits for both."""
    documented_deviation(request, driver, "swift", SWIFT_CHECK_THEN_WRITE)
    documented_deviation(request, driver, "remote", REMOTE_OUTSIDE_COMMIT_LOCK)
    populate(driver, {"dst": b"old"})
    writer: list[threading.Thread] = []

    def precondition(current):
        thread = threading.Thread(target=driver.put_object, args=("dst", b"concurrent"), daemon=True)
        thread.start()
        writer.append(thread)
        thread.join(0.5)
        assert thread.is_alive(), "a PUT of the destination committed between check and commit"
        assert current is not None and current.etag == md5_hex(b"old")

    write_to("dst", precondition)
    writer[-1].join(10)
    assert driver.get_object("dst") == b"concurrent"


# -- aborted uploads ----------------------------------------------------------


@pytest.mark.parametrize("wrap", [lambda body: body, lambda body: Upload(body, content_type="text/plain")],
                         ids=["iterator", "Upload"])
@pytest.mark.parametrize("sent", [[], [b"partial"], [b"x" * 100_000] * 30], ids=["at once", "midway", "late"])
def test_body_that_raises_propagates_and_stores_nothing(driver, wrap, sent):
    populate(driver, {"obj": b"old version", "d/other": b"o"})
    before = snapshot(driver)
    gone = ClientGone("client disconnected")
    with pytest.raises(ClientGone) as caught:
        driver.put_object("obj", wrap(body_that_fails(sent, gone)))
    assert caught.value is gone
    with pytest.raises(ClientGone):
        driver.put_object("new/dir/obj", wrap(body_that_fails(sent, ClientGone())))
    assert snapshot(driver) == before


def test_path_is_writable_again_after_an_aborted_upload(driver):
    with pytest.raises(ClientGone):
        driver.put_object("d/obj", body_that_fails([b"abc"], ClientGone()))
    driver.put_object("d/obj", b"complete")
    assert contents(driver) == {"d/obj": b"complete"}


def test_upload_in_progress_is_invisible(driver):
    populate(driver, {"existing": b"old version"})
    seen = {}

    def observe():
        seen["existing"] = driver.get_object("existing")
        seen["root"] = names(driver.list_objects(""))
        with pytest.raises(NotFound):
            driver.stat_object("new/obj")
        with pytest.raises(NotFound):
            driver.list_objects("new")

    def body(path):
        yield b"first half, "
        call_in_thread(observe)
        yield b"second half"

    driver.put_object("existing", body("existing"))
    assert seen == {"existing": b"old version", "root": ["existing"]}
    driver.put_object("new/obj", body("new/obj"))
    assert contents(driver) == {"existing": b"first half, second half",
                                "new/obj": b"first half, second half"}


# -- concurrency --------------------------------------------------------------

WRITERS = 8
#: How long each race-hunting test keeps trying.
RACE_SECONDS = 1.0


def writer_payload(index: int) -> bytes:
    # Different sizes, so a torn read cannot pass for a whole version.
    return pattern(150_000 + index * 4099, seed=f"writer-{index}")


def test_concurrent_writers_leave_exactly_one_whole_version(driver, fine_grained_threads):
    payloads = [writer_payload(i) for i in range(WRITERS)]

    def writer(data: bytes):
        return lambda: driver.put_object("shared", (data[i:i + 16384] for i in range(0, len(data), 16384)))

    outcomes = run_concurrently([writer(p) for p in payloads])
    assert not [o for o in outcomes if isinstance(o, BaseException)]
    final = driver.get_object("shared")
    assert sha256_hex(final) in {sha256_hex(p) for p in payloads}
    info = driver.stat_object("shared")
    assert (info.size, info.etag) == (len(final), md5_hex(final))


def test_put_object_returns_its_own_version_under_concurrent_overwrites(driver, fine_grained_threads):
    payloads = [writer_payload(i)[:5000 + i] for i in range(WRITERS)]
    mismatches = []
    # Swift: a write Swift answers 202 (it already held a newer version)
    # describes that newer version, as the driver documents (its MD5 is
    # Swift's to report, and Swift reports none): another writer's, never
    # anything else.
    on_swift = "swift" in deviation_names(driver)
    others = {(len(p), md5_hex(p)) for p in payloads} if on_swift else set()

    def writer(data: bytes):
        def run():
            deadline = time.monotonic() + RACE_SECONDS
            for round_ in range(30):
                if round_ >= 3 and time.monotonic() > deadline:
                    break
                info = driver.put_object("shared", data)
                if (info.size, info.etag) not in {(len(data), md5_hex(data)), *others}:
                    mismatches.append(info)
        return run

    outcomes = run_concurrently([writer(p) for p in payloads])
    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert mismatches == []


def test_reader_always_sees_one_whole_version_while_writers_overwrite(driver, fine_grained_threads):
    payloads = [writer_payload(i) for i in range(WRITERS)]
    versions = {sha256_hex(p): len(p) for p in payloads}
    driver.put_object("shared", payloads[0])
    finished: list[int] = []
    reads: list[tuple] = []

    def writer(data: bytes):
        def run():
            try:
                for _ in range(3):
                    driver.put_object("shared", data)
            finally:
                finished.append(1)
        return run

    def reader():
        while len(finished) < WRITERS or len(reads) < 5:
            info, stream = driver.open_object("shared")
            size, sha256, md5 = consume(stream)
            reads.append((info.size, info.etag, size, sha256, md5))

    outcomes = run_concurrently([reader] + [writer(p) for p in payloads])
    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert reads
    for info_size, info_etag, size, sha256, md5 in reads:
        assert sha256 in versions            # one whole written version...
        assert size == versions[sha256]
        assert (info_size, info_etag) == (size, md5)  # ...described by its own info


def test_put_into_a_directory_that_others_keep_emptying(driver):
    # Each worker puts then deletes its own object in d/e/f, so the
    # directories keep vanishing (with a worker's last object) and coming
    # back (with another's put): every call must still succeed. The race is
    # narrow, so the workers go on for a fixed time.
    deadline = time.monotonic() + RACE_SECONDS
    errors: list[BaseException] = []

    def worker(index: int):
        def run():
            while time.monotonic() < deadline and not errors:
                try:
                    driver.put_object(f"d/e/f/{index}", b"%d" % index)
                    driver.delete_object(f"d/e/f/{index}")
                except BaseException as exc:
                    errors.append(exc)
        return run

    run_concurrently([worker(i) for i in range(4)])
    assert errors == []
    assert driver.list_objects("") == []


def test_concurrent_puts_into_one_new_directory_all_succeed(driver, fine_grained_threads):
    outcomes = run_concurrently([lambda i=i: driver.put_object(f"fresh/sub/{i}", b"%d" % i)
                                 for i in range(WRITERS)])
    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert contents(driver) == {f"fresh/sub/{i}": b"%d" % i for i in range(WRITERS)}


def test_concurrent_object_and_directory_of_one_name_exactly_one_wins(driver, fine_grained_threads,
                                                                      request):
    documented_deviation(request, driver, "remote-swift", SWIFT_CLASH_ACROSS_PROCESSES, strict=False)
    deadline, round_ = time.monotonic() + RACE_SECONDS, 0
    while round_ < 50 and (round_ < 3 or time.monotonic() < deadline):
        round_ += 1
        name = f"n{round_}"
        outcomes = run_concurrently([
            lambda name=name: driver.put_object(name, b"object"),
            lambda name=name: driver.put_object(f"{name}/child", b"child"),
        ])
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(errors) == 1 and isinstance(errors[0], Conflict), outcomes
        state = {path: data for path, data in contents(driver).items()
                 if path == name or path.startswith(f"{name}/")}
        assert state in ({name: b"object"}, {f"{name}/child": b"child"})


def test_errors_are_storage_errors(driver):
    # The HTTP layer maps StorageError subclasses; nothing else may escape.
    populate(driver, {"obj": b"1", "d/x": b"2"})
    for call in (lambda: driver.get_object("obj/below"), lambda: driver.put_object("obj/below", b""),
                 lambda: driver.delete_object("d"), lambda: driver.list_objects("obj"),
                 lambda: driver.move_object("d", "obj/x"), lambda: driver.cat_objects("d", ["obj"])):
        with pytest.raises(StorageError):
            call()

"""The object model of the storage contract, checked on every driver alike.

What an object carries besides its bytes (user metadata, stored
representation headers, content type, expiry) and the operations that came
with it: ``update_object``, ``copy_object``, prefix and recursive listings,
``delete_objects`` and ``reap_expired``. As in test_storage_conformance.py,
every test takes the ``driver`` fixture (parametrized over all drivers in
``conftest.py``) and talks to it only through the public driver API; one
behaviour per test; bytes and metadata are compared exactly.

"Nothing changed" is checked with :func:`snapshot`, which records every
directory and every object's bytes, info, metadata, stored headers and
expiry.

Expiry is whole Unix seconds, so an object is made to expire by writing
it with the nearest expiry a write can still beat (:func:`soon`) and
waiting until that second is past (:func:`wait_past`): about a second per
test, never more than two.

Where the reference (memory) driver is known to depart from the contract,
the test says so with :func:`known_hole`: a strict expected failure on that
driver only, which turns into a failure once the hole is closed.
"""

from __future__ import annotations

import gzip
import math
import time

import pytest
from conftest import swift_settings
from storage_helpers import (
    REMOTE_DASH_IS_UNDERSCORE,
    assert_absent,
    create_only,
    documented_deviation,
    driver_chunk_sizes,
    if_match,
    md5_hex,
    misbehaving_cases,
    names,
    pattern,
    populate,
)

from blobsvc.http.preconditions import write_precondition
from blobsvc.storage import ObjectInfo, ObjectMeta, Upload, create_driver
from blobsvc.storage.contract import DEFAULT_CONTENT_TYPE
from blobsvc.storage.errors import (
    Conflict,
    InvalidMetadata,
    InvalidPath,
    MetadataTooLarge,
    MissingChunks,
    NotFound,
    PreconditionFailed,
)
from blobsvc.storage.metadata import MAX_METADATA_BYTES, MAX_METADATA_ITEMS
from blobsvc.storage.paths import RESERVED_PREFIX

# -- helpers ------------------------------------------------------------------


LARGEST_CHUNK = max(driver_chunk_sizes())

#: More than two driver chunks, and more than the 1 MiB segments the Swift
#: fixture uses, so Swift stores it as a large object (segments + manifest).
LARGE = 2 * LARGEST_CHUNK + 1


def large_body(seed: object = "large") -> list[bytes]:
    """:data:`LARGE` bytes in uneven pieces (an upload of unknown size)."""
    data = pattern(LARGE, seed=seed)
    return [data[i:i + 300_007] for i in range(0, len(data), 300_007)]


def read(driver, path: str, offset: int = 0, length: int | None = None) -> tuple[ObjectInfo, bytes]:
    """``open_object``'s info and the bytes of its stream."""
    info, stream = driver.open_object(path, offset, length)
    with stream:
        return info, b"".join(stream)


def carried(info: ObjectInfo) -> tuple:
    """What an object carries besides its bytes, as plain values."""
    return (info.content_type, dict(info.metadata or {}), dict(info.headers), info.expires_at)


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
                assert info.metadata is not None
                objects[entry.path] = (driver.get_object(entry.path), info.size, info.etag,
                                       info.ctime, *carried(info))

    walk("")
    return {"objects": objects, "directories": directories}


def contents(driver) -> dict[str, bytes]:
    """Every object's bytes, by path."""
    return {path: state[0] for path, state in snapshot(driver)["objects"].items()}


def paths_of(entries: list[ObjectInfo]) -> list[str]:
    return [entry.path for entry in entries]


def page_through(listing, key, limit: int) -> list[str]:
    """Every entry of ``listing(marker=..., limit=...)``, page after page,
    each page's last ``key`` the next marker; bounded, so a marker that does
    not advance fails instead of hanging."""
    seen: list[str] = []
    marker = None
    for _ in range(200):
        page = listing(marker=marker, limit=limit)
        assert len(page) <= limit
        if not page:
            return seen
        seen.extend(key(entry) for entry in page)
        marker = key(page[-1])
    raise AssertionError(f"paging never ended: {seen}")


def known_hole(request, driver, driver_name: str, reason: str) -> None:
    """Expect this test to fail on ``driver_name``, which is known to depart
    from the contract here; strict, so the call must go once it conforms."""
    documented_deviation(request, driver, driver_name, reason)


#: How long before its expiry a test's object is written: time enough for
#: a write, even to Swift, which refuses an expiry that is already past.
EXPIRY_MARGIN = 0.6


def soon() -> int:
    """The nearest whole-second expiry at least :data:`EXPIRY_MARGIN` away."""
    return math.ceil(time.time() + EXPIRY_MARGIN)


def wait_past(expires_at: int) -> None:
    """Sleep until the second ``expires_at`` has begun: the object is then gone."""
    while (left := expires_at + 0.02 - time.time()) > 0:
        time.sleep(min(left, 0.1))


def an_hour_from_now() -> int:
    return int(time.time()) + 3600


@pytest.fixture
def eager_driver(request, driver):
    """``driver``, except that on Swift the segments of a deleted or
    replaced large object go at once (no grace period): a copy that still
    leaned on its source's segments then shows at once."""
    if driver.name != "swift":
        yield driver
        return
    eager = create_driver("swift", swift_settings(request.getfixturevalue("swift_stack"),
                                                  segment_grace_seconds=0))
    yield eager
    eager.close()


# -- user metadata --------------------------------------------------------------

#: Names as given, values exactly as they must come back.
GIVEN_METADATA = {
    "Owner": "alice",
    "MiXeD_Case-9": "kept as given",
    "a_b": "underscore and dash are different names",
    "a-b": "dash and underscore are different names",
    "_": "one underscore",
    "n" * 128: "the longest name",
    "unicode": "café, 日本語, ÿ and 🙂",
    "spacing": "  leading, inner\ttab, trailing  ",
    "punctuation": '50% "quoted"; a=b, c: d/e?f#g&h\\i',
    "empty": "",
}
STORED_METADATA = {name.lower(): value for name, value in GIVEN_METADATA.items()}


def test_metadata_round_trips_with_lower_cased_names(driver, request):
    documented_deviation(request, driver, "remote", REMOTE_DASH_IS_UNDERSCORE)
    info = driver.put_object("d/obj", Upload(b"bytes", meta=ObjectMeta(metadata=GIVEN_METADATA)))
    opened, data = read(driver, "d/obj")
    assert data == b"bytes"
    assert info.metadata == STORED_METADATA
    assert driver.stat_object("d/obj").metadata == STORED_METADATA
    assert opened.metadata == STORED_METADATA


def test_object_without_metadata_has_empty_metadata_not_none(driver):
    info = driver.put_object("obj", b"bytes")
    opened, _ = read(driver, "obj")
    assert (info.metadata, driver.stat_object("obj").metadata, opened.metadata) == ({}, {}, {})
    assert (info.headers, driver.stat_object("obj").headers, opened.headers) == ({}, {}, {})
    assert driver.stat_object("obj").expires_at is None


def _exactly(total: int, entries: int, multibyte: bool) -> dict[str, str]:
    """Metadata of exactly ``total`` UTF-8 bytes, names included, in
    ``entries`` short entries plus one big value."""
    metadata = {f"K{index:03d}": "v" for index in range(entries)}  # 4 + 1 bytes each
    room = total - 5 * entries - len("big")
    filler = "é" * (room // 2) + "x" * (room % 2) if multibyte else "x" * room
    metadata["big"] = filler
    return metadata


def _utf8_size(metadata: dict[str, str]) -> int:
    return sum(len(name.encode()) + len(value.encode()) for name, value in metadata.items())


AT_THE_LIMIT = {
    "one ASCII value": _exactly(MAX_METADATA_BYTES, 0, multibyte=False),
    "one two-byte-character value": _exactly(MAX_METADATA_BYTES, 0, multibyte=True),
    "63 entries and a big value": _exactly(MAX_METADATA_BYTES, MAX_METADATA_ITEMS - 1,
                                           multibyte=True),
    "a 128-byte name": {"n" * 128: "v" * (MAX_METADATA_BYTES - 128)},
}


@pytest.mark.parametrize("metadata", AT_THE_LIMIT.values(), ids=AT_THE_LIMIT.keys())
def test_exactly_8_kib_of_metadata_is_stored_whole(driver, metadata):
    assert MAX_METADATA_BYTES == 8 * 1024
    assert _utf8_size(metadata) == MAX_METADATA_BYTES
    driver.put_object("obj", Upload(b"x", meta=ObjectMeta(metadata=metadata)))
    expected = {name.lower(): value for name, value in metadata.items()}
    assert driver.stat_object("obj").metadata == expected
    assert read(driver, "obj")[0].metadata == expected


def _one_over(metadata: dict[str, str]) -> dict[str, str]:
    over = dict(metadata)
    name = next(reversed(over))
    over[name] += "x"
    assert _utf8_size(over) == MAX_METADATA_BYTES + 1
    return over


#: ObjectMeta arguments a write must refuse, by the error it raises.
REFUSED_META = {
    "metadata over 8 KiB": (MetadataTooLarge, {
        **{f"{case}, one byte over": {"metadata": _one_over(metadata)}
           for case, metadata in AT_THE_LIMIT.items()},
        "over only in UTF-8 bytes": {"metadata": {"big": "é" * 4095}},
        "over only with the names counted": {"metadata": {f"{i:0128d}": "v" * 63 for i in range(64)}},
        # Each name is a response header; http.client refuses over 100 of them.
        "one name more than allowed": {"metadata": {f"k{i}": "v"
                                                    for i in range(MAX_METADATA_ITEMS + 1)}},
    }),
    "bad metadata names": (InvalidMetadata, {
        "empty": {"metadata": {"": "v"}},
        "129 bytes": {"metadata": {"n" * 129: "v"}},
        "space": {"metadata": {"two words": "v"}},
        "dot": {"metadata": {"dot.name": "v"}},
        "colon": {"metadata": {"x:y": "v"}},
        "slash": {"metadata": {"a/b": "v"}},
        "non-ASCII": {"metadata": {"naïve": "v"}},
        "newline": {"metadata": {"a\nb": "v"}},
        "same name in two cases": {"metadata": {"Name": "1", "name": "2"}},
    }),
    "control characters in values": (InvalidMetadata, {
        "newline": {"metadata": {"k": "a\nb"}},
        "carriage return": {"metadata": {"k": "a\rb"}},
        "header injection": {"metadata": {"k": "v\r\nX-Injected: 1"}},
        "NUL": {"metadata": {"k": "a\x00b"}},
        "escape": {"metadata": {"k": "\x1b[31m"}},
        "DEL": {"metadata": {"k": "a\x7f"}},
        "a lone surrogate, which no bytes can carry": {"metadata": {"k": "a\ud800"}},
    }),
    "stored headers": (InvalidMetadata, {
        "not a stored header": {"headers": {"X-Custom": "1"}},
        "content type is not a stored header": {"headers": {"Content-Type": "text/plain"}},
        "control character": {"headers": {"Content-Disposition": "inline\r\nX-Injected: 1"}},
        "control character in the content type": {"content_type": "text/plain\n"},
        "a content type a header cannot carry": {"content_type": "text/plain\u0100"},
    }),
    "stored header over 4 KiB": (MetadataTooLarge, {
        "Cache-Control": {"headers": {"Cache-Control": "x" * (4 * 1024 + 1)}},
    }),
    "expiry not in whole seconds": (InvalidMetadata, {
        "float": {"expires_at": time.time() + 3600.5},
        "string": {"expires_at": "4102444800"},
        "bool": {"expires_at": True},
    }),
}


@pytest.mark.parametrize("error, cases", REFUSED_META.values(), ids=REFUSED_META.keys())
def test_refused_metadata_stores_nothing(driver, error, cases):
    driver.put_object("obj", Upload(b"previous", meta=ObjectMeta(
        content_type="text/plain", metadata={"kept": "yes"}, headers={"Cache-Control": "no-cache"})))
    before = snapshot(driver)
    writes = {
        "put over an object": lambda meta: driver.put_object(
            "obj", Upload(b"new", meta=ObjectMeta(**meta))),
        "put of a new object": lambda meta: driver.put_object(
            "new/obj", Upload(b"new", meta=ObjectMeta(**meta))),
        "update": lambda meta: driver.update_object("obj", ObjectMeta(**meta)),
    }
    for write in writes.values():
        assert misbehaving_cases(error, write, cases) == {}
    assert snapshot(driver) == before


def test_changing_a_returned_info_changes_nothing_stored(driver):
    meta = ObjectMeta(metadata={"k": "v"}, headers={"Cache-Control": "no-cache"})
    returned = [driver.put_object("obj", Upload(b"x", meta=meta)), driver.stat_object("obj"),
                read(driver, "obj")[0]]
    for info in returned:
        try:
            info.metadata["k"] = "changed"
            info.headers["Cache-Control"] = "changed"
        except TypeError:
            pass  # read-only mappings are just as good
    assert carried(driver.stat_object("obj"))[1:3] == ({"k": "v"}, {"Cache-Control": "no-cache"})


# -- stored headers and content type ----------------------------------------------

STORED_HEADERS = {
    "Content-Encoding": "gzip",
    "Content-Disposition": "attachment; filename=\"report.csv.gz\"; filename*=UTF-8''r%C3%A9port.csv.gz",
    "Content-Language": "de-CH, en",
    "Cache-Control": "public, max-age=31536000, immutable",
    "Expires": "Thu, 01 Dec 2033 16:00:00 GMT",
}


def test_stored_headers_and_content_type_round_trip_in_canonical_spelling(driver):
    given = {name.lower(): value for name, value in STORED_HEADERS.items()}
    meta = ObjectMeta(content_type="text/csv; charset=utf-8", headers=given)
    info = driver.put_object("report", Upload(b"a,b\n1,2\n", meta=meta))
    opened, data = read(driver, "report")
    assert data == b"a,b\n1,2\n"
    for seen in (info, driver.stat_object("report"), opened):
        assert seen.content_type == "text/csv; charset=utf-8"
        assert seen.headers == STORED_HEADERS
        assert seen.expires_at is None  # the Expires header is not the object's expiry


def test_gzip_body_is_returned_as_stored_and_ranges_count_stored_bytes(driver):
    body = gzip.compress(pattern(5000, seed="text"), mtime=0)
    meta = ObjectMeta(content_type="text/plain", headers={"Content-Encoding": "gzip"})
    info = driver.put_object("text.gz", Upload(body, meta=meta))
    assert (info.size, info.etag) == (len(body), md5_hex(body))
    assert driver.get_object("text.gz") == body
    for offset, length in [(0, 2), (3, 10), (len(body) - 7, None), (len(body) // 2, 100)]:
        opened, got = read(driver, "text.gz", offset, length)
        end = len(body) if length is None else offset + length
        assert got == body[offset:end]
        assert opened.size == len(body)
        assert opened.headers == {"Content-Encoding": "gzip"}


# -- metadata through move, copy, cat and overwrite ---------------------------------

FULL_META = ObjectMeta(content_type="image/png", metadata={"Owner": "alice", "note": "ünïcode"},
                       headers={"Cache-Control": "no-cache", "Content-Language": "fr"})


def test_metadata_survives_a_move_onto_another_object(driver):
    driver.put_object("src", Upload(b"moved bytes", meta=FULL_META))
    driver.put_object("d/dst", Upload(b"old", meta=ObjectMeta(metadata={"old": "1"})))
    expected = carried(driver.stat_object("src"))
    moved = driver.move_object("src", "d/dst")
    assert carried(moved) == expected
    assert carried(driver.stat_object("d/dst")) == expected
    assert driver.get_object("d/dst") == b"moved bytes"


def test_copy_carries_the_source_metadata(driver):
    driver.put_object("src", Upload(b"copied bytes", meta=FULL_META))
    driver.put_object("d/dst", Upload(b"old", meta=ObjectMeta(metadata={"old": "1"})))
    expected = carried(driver.stat_object("src"))
    copied = driver.copy_object("src", "d/dst")
    assert carried(copied) == expected
    assert carried(driver.stat_object("d/dst")) == expected
    assert carried(driver.stat_object("src")) == expected


def test_cat_result_carries_the_meta_given_to_cat_not_the_chunks(driver):
    driver.put_object("c1", Upload(b"one ", meta=FULL_META))
    driver.put_object("c2", Upload(b"two", meta=ObjectMeta(metadata={"chunk": "2"})))
    meta = ObjectMeta(content_type="text/plain", metadata={"Joined": "yes"},
                      headers={"Content-Disposition": "inline"})
    info = driver.cat_objects("out", ["c1", "c2"], meta=meta)
    expected = ("text/plain", {"joined": "yes"}, {"Content-Disposition": "inline"}, None)
    assert carried(info) == expected
    assert carried(driver.stat_object("out")) == expected
    assert driver.get_object("out") == b"one two"


def test_cat_without_meta_carries_none_of_the_chunks(driver):
    driver.put_object("c1", Upload(b"one ", meta=FULL_META))
    driver.put_object("c2", Upload(b"two", meta=FULL_META))
    driver.cat_objects("c1", ["c1", "c2"])  # into its own first chunk
    assert carried(driver.stat_object("c1")) == (DEFAULT_CONTENT_TYPE, {}, {}, None)
    assert contents(driver) == {"c1": b"one two"}


def test_overwrite_without_metadata_clears_it(driver):
    driver.put_object("obj", Upload(b"first", meta=ObjectMeta(
        content_type="text/plain", metadata={"k": "v"}, headers={"Content-Encoding": "gzip"},
        expires_at=an_hour_from_now())))
    driver.put_object("obj", b"second")
    assert carried(driver.stat_object("obj")) == (DEFAULT_CONTENT_TYPE, {}, {}, None)
    assert carried(read(driver, "obj")[0]) == (DEFAULT_CONTENT_TYPE, {}, {}, None)


# -- update_object ------------------------------------------------------------------


def test_update_replaces_metadata_headers_and_expiry_keeping_bytes_and_etag(driver):
    before = driver.put_object("obj", Upload(b"the bytes", meta=ObjectMeta(
        content_type="text/plain", metadata={"old": "1"},
        headers={"Content-Encoding": "gzip", "Cache-Control": "no-cache"},
        expires_at=an_hour_from_now())))
    new = ObjectMeta(metadata={"New": "2"}, headers={"Content-Disposition": "inline"})
    updated = driver.update_object("obj", new)
    expected = ("text/plain", {"new": "2"}, {"Content-Disposition": "inline"}, None)
    assert carried(updated) == expected
    assert carried(driver.stat_object("obj")) == expected
    opened, data = read(driver, "obj")
    assert carried(opened) == expected
    assert data == b"the bytes"
    assert (opened.size, opened.etag) == (before.size, before.etag)
    assert (updated.size, updated.etag) == (before.size, before.etag)


def test_update_keeps_the_content_type_unless_one_is_given(driver):
    driver.put_object("obj", Upload(b"{}", content_type="text/plain"))
    driver.update_object("obj", ObjectMeta(metadata={"k": "v"}))
    assert driver.stat_object("obj").content_type == "text/plain"
    driver.update_object("obj", ObjectMeta(content_type="application/json"))
    info = driver.stat_object("obj")
    assert (info.content_type, info.metadata) == ("application/json", {})
    assert driver.get_object("obj") == b"{}"


def test_update_with_if_match_of_the_current_etag_applies(driver):
    info = driver.put_object("obj", b"bytes")
    driver.update_object("obj", ObjectMeta(metadata={"k": "v"}), precondition=if_match(info.etag))
    assert driver.stat_object("obj").metadata == {"k": "v"}


UPDATE_REFUSALS = {
    "If-Match of another ETag": write_precondition({"If-Match": f'"{md5_hex(b"other")}"'}, "PUT"),
    "If-None-Match: *": create_only,
}


@pytest.mark.parametrize("precondition", UPDATE_REFUSALS.values(), ids=UPDATE_REFUSALS.keys())
def test_update_refused_by_its_precondition_changes_nothing(driver, precondition):
    driver.put_object("obj", Upload(b"bytes", meta=FULL_META))
    before = snapshot(driver)
    with pytest.raises(PreconditionFailed):
        driver.update_object("obj", ObjectMeta(content_type="text/plain", metadata={"k": "v"},
                                               expires_at=an_hour_from_now()),
                             precondition=precondition)
    assert snapshot(driver) == before


def test_update_of_a_missing_object_is_not_found_and_creates_nothing(driver):
    populate(driver, {"file": b"f", "dir/obj": b"o"})
    before = snapshot(driver)
    missing = {"never existed": "missing", "nested": "no/such/object", "below an object": "file/x",
               "a directory": "dir", "in a directory": "dir/missing"}
    update = lambda path: driver.update_object(path, ObjectMeta(metadata={"k": "v"}))  # noqa: E731
    assert misbehaving_cases(NotFound, update, missing) == {}
    assert snapshot(driver) == before


def test_update_of_a_large_object_keeps_every_byte_and_the_etag(driver):
    data = b"".join(large_body())
    before = driver.put_object("big", Upload(iter(large_body()), meta=FULL_META))
    driver.update_object("big", ObjectMeta(metadata={"after": "update"}))
    info, got = read(driver, "big")
    assert got == data
    assert (info.size, info.etag) == (LARGE, before.etag)
    assert carried(info) == ("image/png", {"after": "update"}, {}, None)


# -- copy_object --------------------------------------------------------------------

COPY_SIZES = [0, 1, LARGEST_CHUNK + 1, 2 * LARGEST_CHUNK + 1]


@pytest.mark.parametrize("size", COPY_SIZES)
def test_copy_is_byte_exact_and_leaves_the_source_unchanged(driver, size):
    data = pattern(size, seed="copy")
    driver.put_object("src", Upload(data, content_type="video/mp4"))
    source = snapshot(driver)["objects"]["src"]
    copied = driver.copy_object("src", "d/dst")
    assert (copied.path, copied.name, copied.isdir, copied.size) == ("d/dst", "dst", False, size)
    assert driver.get_object("d/dst") == data
    info = driver.stat_object("d/dst")
    assert (info.size, info.etag, info.content_type) == (size, copied.etag, "video/mp4")
    assert snapshot(driver)["objects"]["src"] == source


@pytest.mark.parametrize("data", [b"", b"x", b"a small object"], ids=["0 bytes", "1 byte", "small"])
def test_copy_of_a_plain_object_has_the_source_etag(driver, data):
    source = driver.put_object("src", data)
    copied = driver.copy_object("src", "dst")
    assert copied.etag == source.etag == md5_hex(data)
    assert driver.stat_object("dst").etag == md5_hex(data)


def test_copy_replaces_an_existing_destination(driver):
    driver.put_object("src", b"new bytes")
    driver.put_object("dst", Upload(pattern(LARGEST_CHUNK + 3, seed="old"),
                                    meta=ObjectMeta(metadata={"old": "yes"})))
    driver.copy_object("src", "dst")
    assert contents(driver) == {"src": b"new bytes", "dst": b"new bytes"}
    assert driver.stat_object("dst").metadata == {}


def test_copy_create_only_onto_an_existing_object_changes_nothing(driver):
    populate(driver, {"src": b"source", "dst": b"precious"})
    before = snapshot(driver)
    with pytest.raises(PreconditionFailed):
        driver.copy_object("src", "dst", precondition=create_only)
    assert snapshot(driver) == before


def test_copy_create_only_onto_an_absent_destination_writes_it(driver):
    driver.put_object("src", b"source")
    driver.copy_object("src", "new/dst", precondition=create_only)
    assert contents(driver) == {"src": b"source", "new/dst": b"source"}


def test_copy_that_would_clash_with_a_directory_is_a_conflict_and_changes_nothing(driver):
    populate(driver, {"src": b"source", "dir/obj": b"o", "file": b"f"})
    before = snapshot(driver)
    with pytest.raises(Conflict):
        driver.copy_object("src", "dir")
    with pytest.raises(Conflict):
        driver.copy_object("src", "file/below")
    assert snapshot(driver) == before


def test_copy_from_a_missing_source_is_not_found_and_changes_nothing(driver):
    populate(driver, {"file": b"f", "dir/obj": b"o", "dst": b"destination"})
    before = snapshot(driver)
    missing = {"never existed": "missing", "nested": "no/such/object", "below an object": "file/x",
               "in a directory": "dir/missing"}
    copy = lambda src: driver.copy_object(src, "dst")  # noqa: E731
    assert misbehaving_cases(NotFound, copy, missing) == {}
    assert misbehaving_cases(NotFound, lambda src: driver.copy_object(src, "new/dst"), missing) == {}
    assert snapshot(driver) == before


def test_copy_with_new_meta_carries_only_that_meta(driver):
    driver.put_object("src", Upload(b"bytes", meta=FULL_META))
    source = carried(driver.stat_object("src"))
    meta = ObjectMeta(content_type="text/plain", metadata={"Fresh": "1"},
                      headers={"Content-Disposition": "inline"})
    copied = driver.copy_object("src", "dst", meta=meta)
    expected = ("text/plain", {"fresh": "1"}, {"Content-Disposition": "inline"}, None)
    assert carried(copied) == expected
    assert carried(driver.stat_object("dst")) == expected
    assert carried(driver.stat_object("src")) == source
    assert driver.get_object("dst") == b"bytes"


def test_copy_onto_itself_with_new_meta_replaces_the_meta(driver):
    before = driver.put_object("obj", Upload(b"same bytes", meta=FULL_META))
    meta = ObjectMeta(content_type="text/plain", metadata={"Changed": "yes"})
    driver.copy_object("obj", "obj", meta=meta)
    info, data = read(driver, "obj")
    assert carried(info) == ("text/plain", {"changed": "yes"}, {}, None)
    assert (data, info.size, info.etag) == (b"same bytes", before.size, before.etag)
    assert paths_of(driver.list_recursive("")) == ["obj"]


@pytest.mark.parametrize("size", [5, LARGE], ids=["small", "large"])
def test_copy_stays_readable_after_its_source_is_deleted(eager_driver, size):
    driver = eager_driver
    data = pattern(size, seed="survivor")
    driver.put_object("src", iter([data[i:i + 300_007] for i in range(0, size, 300_007)]))
    driver.copy_object("src", "copy")
    driver.delete_object("src")
    assert_absent(driver, "src")
    info, got = read(driver, "copy")
    assert (got, info.size) == (data, size)
    assert paths_of(driver.list_recursive("")) == ["copy"]


# -- expiry ---------------------------------------------------------------------------


def test_expiry_is_in_the_info(driver):
    expires_at = an_hour_from_now()
    info = driver.put_object("obj", Upload(b"x", meta=ObjectMeta(expires_at=expires_at)))
    assert info.expires_at == expires_at
    assert driver.stat_object("obj").expires_at == expires_at
    assert read(driver, "obj")[0].expires_at == expires_at
    assert driver.get_object("obj") == b"x"


EXPIRED_READS = {
    "stat_object": lambda drv, path: drv.stat_object(path),
    "get_object_size": lambda drv, path: drv.get_object_size(path),
    "get_object": lambda drv, path: drv.get_object(path),
    "stream_object": lambda drv, path: drv.stream_object(path),
    "open_object": lambda drv, path: drv.open_object(path),
    "open_object range": lambda drv, path: drv.open_object(path, 1, 2),
}


def test_expired_object_is_not_found_by_any_read(driver):
    expires_at = soon()
    driver.put_object("obj", Upload(b"short-lived", meta=ObjectMeta(expires_at=expires_at)))
    driver.put_object("d/obj", Upload(b"nested", meta=ObjectMeta(expires_at=expires_at)))
    assert driver.get_object("obj") == b"short-lived"
    wait_past(expires_at)
    for path in ("obj", "d/obj"):
        assert misbehaving_cases(NotFound, lambda read_, path=path: read_(driver, path),
                                 EXPIRED_READS) == {}


LISTINGS = {
    "list_objects": (lambda drv, path, **kw: drv.list_objects(path, **kw), lambda e: e.name),
    "list_recursive": (lambda drv, path, **kw: drv.list_recursive(path, **kw), lambda e: e.path),
}


@pytest.mark.parametrize("listing, key", LISTINGS.values(), ids=LISTINGS.keys())
def test_expired_object_is_left_out_of_listings(driver, listing, key):
    expires_at = soon()
    driver.put_object("d/gone", Upload(b"x", meta=ObjectMeta(expires_at=expires_at)))
    driver.put_object("d/stays", b"y")
    driver.put_object("d/later", Upload(b"z", meta=ObjectMeta(expires_at=an_hour_from_now())))
    assert len(listing(driver, "d")) == 3
    wait_past(expires_at)
    assert paths_of(listing(driver, "d")) == ["d/later", "d/stays"]
    assert listing(driver, "d", prefix="g") == []


@pytest.mark.parametrize("listing, key", LISTINGS.values(), ids=LISTINGS.keys())
def test_page_of_only_expired_entries_still_returns_the_next_live_ones(driver, listing, key):
    expires_at = soon()
    driver.put_object("d/a", b"live")
    for path in ("d/b1", "d/b2", "d/b3"):
        driver.put_object(path, Upload(b"x", meta=ObjectMeta(expires_at=expires_at)))
    populate(driver, {"d/c": b"live", "d/e": b"live"})
    wait_past(expires_at)
    first = listing(driver, "d", limit=1)
    assert len(first) == 1
    after_first = listing(driver, "d", marker=key(first[0]), limit=1)
    assert len(after_first) == 1 and after_first[0].path == "d/c"
    assert listing(driver, "d", marker=key(first[0]), limit=2)[1].path == "d/e"
    assert page_through(lambda **kw: listing(driver, "d", **kw), key, limit=1) == [
        key(entry) for entry in listing(driver, "d")]
    assert paths_of(listing(driver, "d")) == ["d/a", "d/c", "d/e"]


def test_directory_of_only_expired_objects_is_not_found(driver):
    expires_at = soon()
    driver.put_object("d/gone", Upload(b"x", meta=ObjectMeta(expires_at=expires_at)))
    driver.put_object("keep", b"y")
    wait_past(expires_at)
    with pytest.raises(NotFound):
        driver.list_objects("d")
    with pytest.raises(NotFound):
        driver.list_recursive("d")


def test_directory_of_only_expired_objects_leaves_its_parent_listing(driver, request):
    known_hole(request, driver, "swift",
               "swift: a directory only expired objects keep is listed (empty) until "
               "Swift's object-expirer removes them: a delimited listing names the "
               "directory without saying whether anything live is below")
    expires_at = soon()
    driver.put_object("d/gone", Upload(b"x", meta=ObjectMeta(expires_at=expires_at)))
    driver.put_object("keep", b"y")
    wait_past(expires_at)
    assert names(driver.list_objects("")) == ["keep"]


CLASHES_WITH_THE_EXPIRED = {
    "below an expired object": ("e", "e/new"),
    "onto a directory of expired objects": ("e/old", "e"),
}


@pytest.mark.parametrize("expiring, path", CLASHES_WITH_THE_EXPIRED.values(),
                         ids=CLASHES_WITH_THE_EXPIRED.keys())
def test_write_where_only_expired_objects_were_does_not_clash(driver, expiring, path):
    expires_at = soon()
    driver.put_object(expiring, Upload(b"x", meta=ObjectMeta(expires_at=expires_at)))
    wait_past(expires_at)
    driver.put_object(path, b"new")
    assert contents(driver) == {path: b"new"}
    assert_absent(driver, expiring)


def test_delete_of_an_expired_object_is_not_found(driver):
    expires_at = soon()
    for path in ("obj", "other"):
        driver.put_object(path, Upload(b"x", meta=ObjectMeta(expires_at=expires_at)))
    driver.put_object("keep", b"y")
    wait_past(expires_at)
    with pytest.raises(NotFound):
        driver.delete_object("obj")
    outcome = driver.delete_objects(["other"])
    assert (outcome.deleted, outcome.not_found, outcome.errors) == ([], ["other"], [])
    assert contents(driver) == {"keep": b"y"}


EXPIRED_SOURCE_WRITES = {
    "move": lambda drv, src, dst: drv.move_object(src, dst),
    "copy": lambda drv, src, dst: drv.copy_object(src, dst),
}


@pytest.mark.parametrize("write", EXPIRED_SOURCE_WRITES.values(), ids=EXPIRED_SOURCE_WRITES.keys())
def test_move_or_copy_from_an_expired_source_is_not_found_and_writes_nothing(driver, write):
    expires_at = soon()
    driver.put_object("src", Upload(b"x", meta=ObjectMeta(expires_at=expires_at)))
    driver.put_object("dst", b"destination")
    wait_past(expires_at)
    with pytest.raises(NotFound):
        write(driver, "src", "dst")
    with pytest.raises(NotFound):
        write(driver, "src", "new/dst")
    assert contents(driver) == {"dst": b"destination"}


def test_cat_with_an_expired_chunk_is_missing_that_chunk_and_changes_nothing(driver):
    expires_at = soon()
    driver.put_object("c1", b"live ")
    driver.put_object("c2", Upload(b"expired", meta=ObjectMeta(expires_at=expires_at)))
    driver.put_object("out", b"previous")
    wait_past(expires_at)
    with pytest.raises(MissingChunks) as raised:
        driver.cat_objects("out", ["c1", "c2"])
    assert raised.value.missing == ["c2"]
    assert contents(driver) == {"c1": b"live ", "out": b"previous"}


def test_create_only_put_over_an_expired_object_succeeds(driver):
    expires_at = soon()
    driver.put_object("obj", Upload(b"old", meta=ObjectMeta(metadata={"old": "1"},
                                                            expires_at=expires_at)))
    wait_past(expires_at)
    info = driver.put_object("obj", Upload(b"new", precondition=create_only))
    assert info.expires_at is None
    assert driver.get_object("obj") == b"new"
    assert carried(driver.stat_object("obj")) == (DEFAULT_CONTENT_TYPE, {}, {}, None)


def test_update_of_an_expired_object_is_not_found(driver):
    expires_at = soon()
    driver.put_object("obj", Upload(b"x", meta=ObjectMeta(expires_at=expires_at)))
    wait_past(expires_at)
    with pytest.raises(NotFound):
        driver.update_object("obj", ObjectMeta(metadata={"k": "v"}))
    assert_absent(driver, "obj")


def test_expiry_survives_a_move(driver):
    expires_at = soon()
    driver.put_object("src", Upload(b"x", meta=ObjectMeta(metadata={"k": "v"}, expires_at=expires_at)))
    moved = driver.move_object("src", "d/dst")
    assert moved.expires_at == expires_at
    assert driver.stat_object("d/dst").expires_at == expires_at
    wait_past(expires_at)
    assert_absent(driver, "d/dst")
    assert driver.list_recursive("") == []


def test_copy_without_meta_does_not_copy_the_expiry(driver):
    expires_at = soon()
    driver.put_object("src", Upload(b"x", meta=ObjectMeta(metadata={"k": "v"}, expires_at=expires_at)))
    copied = driver.copy_object("src", "dst")
    assert (copied.expires_at, copied.metadata) == (None, {"k": "v"})
    wait_past(expires_at)
    assert_absent(driver, "src")
    info, data = read(driver, "dst")
    assert (data, info.expires_at, info.metadata) == (b"x", None, {"k": "v"})


def test_update_can_set_an_expiry(driver):
    driver.put_object("obj", Upload(b"x", meta=ObjectMeta(metadata={"k": "v"})))
    expires_at = soon()
    updated = driver.update_object("obj", ObjectMeta(expires_at=expires_at))
    assert updated.expires_at == expires_at
    assert driver.get_object("obj") == b"x"
    wait_past(expires_at)
    assert_absent(driver, "obj")


def test_update_can_remove_an_expiry(driver):
    expires_at = soon()
    driver.put_object("obj", Upload(b"x", meta=ObjectMeta(expires_at=expires_at)))
    updated = driver.update_object("obj", ObjectMeta(metadata={"k": "v"}))
    assert updated.expires_at is None
    wait_past(expires_at)
    info, data = read(driver, "obj")
    assert (data, info.expires_at, info.metadata) == (b"x", None, {"k": "v"})


def test_reap_expired_removes_only_the_expired_and_the_path_is_free_again(driver):
    expires_at = soon()
    driver.put_object("d/gone", Upload(b"x", meta=ObjectMeta(expires_at=expires_at)))
    driver.put_object("d/live", b"live")
    driver.put_object("d/later", Upload(b"later", meta=ObjectMeta(expires_at=an_hour_from_now())))
    wait_past(expires_at)
    reaped = driver.reap_expired()
    assert type(reaped) is int and 0 <= reaped <= 1  # backends that expire on their own: 0
    assert driver.reap_expired() == 0
    assert_absent(driver, "d/gone")
    assert contents(driver) == {"d/later": b"later", "d/live": b"live"}
    driver.put_object("d/gone", b"reborn")
    assert driver.reap_expired() == 0
    assert contents(driver) == {"d/gone": b"reborn", "d/later": b"later", "d/live": b"live"}
    assert driver.stat_object("d/gone").expires_at is None


# -- list_objects with a prefix ---------------------------------------------------------

PREFIX_TREE = {"d/a": b"1", "d/ab": b"2", "d/ab-": b"3", "d/abc/x": b"4", "d/abd": b"5",
               "d/ac": b"6", "d/b": b"7", "d/x/ab": b"8", "ab": b"9", "d/abé": b"10"}
#: Names in ``d`` starting with ``ab``: directories included, sorted by name.
PREFIXED = ["ab", "ab-", "abc", "abd", "abé"]


def test_prefix_lists_only_names_of_that_level_starting_with_it(driver):
    populate(driver, PREFIX_TREE)
    entries = driver.list_objects("d", prefix="ab")
    assert names(entries) == PREFIXED
    assert [(e.path, e.isdir) for e in entries] == [
        ("d/ab", False), ("d/ab-", False), ("d/abc", True), ("d/abd", False), ("d/abé", False)]
    assert names(driver.list_objects("", prefix="a")) == ["ab"]
    assert names(driver.list_objects("d", prefix="abc")) == ["abc"]
    assert driver.list_objects("d", prefix="zz") == []


def test_prefix_with_marker_and_limit_pages_through_every_match_once(driver):
    populate(driver, PREFIX_TREE)
    for limit in (1, 2, 3, 10):
        listing = lambda **kw: driver.list_objects("d", prefix="ab", **kw)  # noqa: E731
        assert page_through(listing, lambda e: e.name, limit) == PREFIXED
    assert names(driver.list_objects("d", prefix="ab", marker="a")) == PREFIXED
    assert names(driver.list_objects("d", prefix="ab", marker="ab-", limit=2)) == ["abc", "abd"]
    assert names(driver.list_objects("d", prefix="ab", marker="abz")) == ["abé"]


def test_a_prefix_with_a_slash_matches_no_name_of_one_level(driver):
    populate(driver, {"a/b/c": b"1", "a/bc": b"2", "x": b"3"})
    driver.put_object("big", Upload(pattern(3 * LARGEST_CHUNK), meta=ObjectMeta()))
    driver.put_object("big", b"replaced")  # Swift: segments and a tombstone in the private area
    for path, prefix in [("", "a/"), ("", "a/b"), ("a", "b/"), ("", RESERVED_PREFIX + "/"),
                         ("", RESERVED_PREFIX + "/segments/")]:
        assert driver.list_objects(path, prefix=prefix) == [], (path, prefix)
    with pytest.raises(NotFound):
        driver.list_objects("missing", prefix="a/")


def test_prefix_listing_never_shows_private_names(driver):
    populate(driver, {"-": b"1", RESERVED_PREFIX + "x": b"2", "z": b"3"})
    driver.put_object("big", iter(large_body()))  # Swift keeps its segments under the private name
    assert names(driver.list_objects("", prefix=".")) == [RESERVED_PREFIX + "x"]
    assert names(driver.list_objects("", prefix=RESERVED_PREFIX, limit=1)) == [RESERVED_PREFIX + "x"]


# -- list_recursive ------------------------------------------------------------------------

TREE = {
    "a-1": b"1",
    "a.txt": b"2",
    "a/b": b"3",
    "a/b-c": b"4",
    "a/b.c": b"5",
    "a/bb/x": b"6",
    "a/c/d/e": b"7",
    "a/é": b"8",
    "a0": b"9",
    "Z": b"10",
    "~": b"11",
    "ä/x": b"12",
    "日本/ファイル": b"13",
    "\uff5a": b"14",  # fullwidth z: below the next one in code points, above it in UTF-16
    "\U0001d4b3/x": b"15",
    " lead": b"16",
}
TREE_ORDER = sorted(TREE)


def test_recursive_listing_is_every_object_flat_in_code_point_order(driver):
    populate(driver, TREE)
    entries = driver.list_recursive("")
    assert paths_of(entries) == TREE_ORDER
    assert TREE_ORDER.index("a.txt") < TREE_ORDER.index("a/b") < TREE_ORDER.index("a0")
    assert not any(entry.isdir for entry in entries)
    assert [entry.name for entry in entries] == [path.rsplit("/", 1)[-1] for path in TREE_ORDER]


def test_recursive_listing_entries_carry_size_and_etag_but_no_metadata(driver):
    driver.put_object("d/meta", Upload(b"with metadata", meta=FULL_META))
    driver.put_object("d/e/plain", b"plain")
    entries = driver.list_recursive("")
    assert paths_of(entries) == ["d/e/plain", "d/meta"]
    for entry in entries:
        info = driver.stat_object(entry.path)
        assert (entry.size, entry.etag, entry.content_type) == (info.size, info.etag, info.content_type)
        assert (entry.metadata, entry.headers) == (None, {})
    assert [entry.size for entry in entries] == [5, 13]
    assert entries[1].etag == md5_hex(b"with metadata")


@pytest.mark.parametrize("limit", [1, 2, 5, len(TREE) - 1, len(TREE)])
def test_recursive_listing_pages_with_a_full_path_marker(driver, limit):
    populate(driver, TREE)
    listing = lambda **kw: driver.list_recursive("", **kw)  # noqa: E731
    assert page_through(listing, lambda e: e.path, limit) == TREE_ORDER


def test_recursive_listing_marker_is_a_full_path_even_below_the_root(driver):
    populate(driver, TREE)
    below_a = [path for path in TREE_ORDER if path.startswith("a/")]
    assert paths_of(driver.list_recursive("a", marker="a/b")) == below_a[1:]
    assert paths_of(driver.list_recursive("a", marker="a/b.", limit=2)) == ["a/b.c", "a/bb/x"]
    assert paths_of(driver.list_recursive("a", marker="a/zzz")) == ["a/é"]
    assert page_through(lambda **kw: driver.list_recursive("a", **kw), lambda e: e.path, 2) == below_a


def test_recursive_listing_of_a_sub_directory_has_only_what_is_below_it(driver):
    populate(driver, TREE)
    below_a = ["a/b", "a/b-c", "a/b.c", "a/bb/x", "a/c/d/e", "a/é"]
    assert paths_of(driver.list_recursive("a")) == below_a
    assert paths_of(driver.list_recursive("a/")) == below_a
    assert paths_of(driver.list_recursive("a/c")) == ["a/c/d/e"]
    assert paths_of(driver.list_recursive("日本")) == ["日本/ファイル"]


def test_recursive_listing_with_a_prefix(driver):
    populate(driver, TREE)
    assert paths_of(driver.list_recursive("", prefix="a")) == [
        path for path in TREE_ORDER if path.startswith("a")]
    assert paths_of(driver.list_recursive("a", prefix="b")) == ["a/b", "a/b-c", "a/b.c", "a/bb/x"]
    assert paths_of(driver.list_recursive("a", prefix="bb")) == ["a/bb/x"]
    assert paths_of(driver.list_recursive("a", prefix="b", marker="a/b-c", limit=2)) == [
        "a/b.c", "a/bb/x"]
    assert driver.list_recursive("a", prefix="q") == []


def test_recursive_listing_of_a_missing_directory_is_not_found(driver):
    populate(driver, TREE)
    missing = {"never existed": "nothing", "nested": "a/nothing", "an object": "a/b",
               "prefix of a directory": "日", "prefix of names": "a-"}
    assert misbehaving_cases(NotFound, driver.list_recursive, missing) == {}
    with pytest.raises(InvalidPath):
        driver.list_recursive(RESERVED_PREFIX)


def test_recursive_listing_never_shows_private_names(driver):
    driver.put_object("big", iter(large_body(seed=1)))
    driver.put_object("big", iter(large_body(seed=2)))  # replaces a large version
    populate(driver, {"-": b"1", RESERVED_PREFIX + "x": b"2", f"a/{RESERVED_PREFIX}": b"3", "z": b"4"})
    expected = ["-", RESERVED_PREFIX + "x", "a/.blobsvc", "big", "z"]
    assert paths_of(driver.list_recursive("")) == expected
    assert page_through(lambda **kw: driver.list_recursive("", **kw), lambda e: e.path, 1) == expected
    assert paths_of(driver.list_recursive("", prefix=RESERVED_PREFIX)) == [RESERVED_PREFIX + "x"]
    assert paths_of(driver.list_recursive("", marker="-", limit=1)) == [RESERVED_PREFIX + "x"]


def test_recursive_listing_of_an_empty_root_is_empty(driver):
    driver.put_object("d/obj", b"x")
    driver.delete_object("d/obj")
    assert driver.list_recursive("") == []


# -- delete_objects ----------------------------------------------------------------------


def test_delete_objects_reports_each_path_and_the_others_proceed(driver):
    populate(driver, {"x": b"1", "d/keep": b"2", "d/y": b"3", "z": b"4"})
    outcome = driver.delete_objects(["x", "missing", "d", "d/y", "a//b", "x"])
    assert outcome.deleted == ["x", "d/y"]
    assert outcome.not_found == ["missing", "x"]
    assert [(path, type(error)) for path, error in outcome.errors] == [
        ("d", Conflict), ("a//b", InvalidPath)]
    assert contents(driver) == {"d/keep": b"2", "z": b"4"}

"""What the Swift driver does with what an object carries besides its bytes.

User metadata, stored headers and expiry, as Swift itself holds them
(``X-Object-Meta-*``, the headers under their own names, ``X-Delete-At``
on a manifest and on each of its segments), read back raw with
swiftclient; the cluster's constraints checked before a byte goes;
expired objects gone from listings at once, and their space reclaimed by
Swift's own object-expirer (``swift_stack.run_expirer()``); copies that
share no segment with their source; and the prefix and recursive
listings. Runs against the session's real Swift (``swift_stack``).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time

import pytest
from swiftclient.client import ClientException, Connection

from blobsvc.storage import Upload
from blobsvc.storage.contract import ObjectMeta
from blobsvc.storage.errors import (
    InvalidMetadata,
    MetadataTooLarge,
    NotFound,
    PreconditionFailed,
)
from blobsvc.storage.metadata import MAX_METADATA_BYTES
from blobsvc.storage.swift import SwiftDriver
from blobsvc.storage.swift.constraints import Constraints
from blobsvc.storage.swift.errors import from_client_exception
from blobsvc.storage.swift.objectmeta import ETAG_PARAMETER, EXPIRY_PARAMETER

MIB = 1024 * 1024
SEGMENT = MIB
LARGE = 3 * MIB + 12345  # four segments
GRACE = 7


def pattern(size: int, seed: object = 0) -> bytes:
    return random.Random(f"{seed}:{size}").randbytes(size)


@pytest.fixture
def make_driver(make_swift_driver):
    return make_swift_driver


@pytest.fixture
def swift(make_driver) -> SwiftDriver:
    return make_driver(segment_grace_seconds=GRACE)


@pytest.fixture
def raw(swift_stack) -> Connection:
    return Connection(authurl=swift_stack.auth_url, user=swift_stack.user, key=swift_stack.key,
                      auth_version="1", retries=0)


def stored_names(raw: Connection, drv: SwiftDriver) -> list[str]:
    """Every name, but the lending records Swift expires by themselves."""
    return [entry["name"] for entry in raw.get_container(drv.container, full_listing=True)[1]
            if not entry["name"].startswith(".blobsvc/lent/")]


def segments_of(raw: Connection, drv: SwiftDriver, name: str) -> list[str]:
    """The segments a manifest lists, nested manifests opened."""
    _, body = raw.get_object(drv.container, name, query_string="multipart-manifest=get")
    names = []
    for entry in json.loads(body):
        listed = entry["name"].split("/", 2)[2]
        names += segments_of(raw, drv, listed) if entry.get("sub_slo") else [listed]
    return names


def delete_at(raw: Connection, drv: SwiftDriver, name: str) -> int | None:
    value = raw.head_object(drv.container, name).get("x-delete-at")
    return None if value is None else int(value)


def soon(seconds: int = 3) -> int:
    return math.ceil(time.time()) + seconds


def wait_past(expires_at: int) -> None:
    time.sleep(max(0.0, expires_at - time.time() + 0.05))


META = ObjectMeta(content_type="text/plain; charset=utf-8",
                  headers={"Content-Disposition": 'attachment; filename="r.txt"',
                           "Cache-Control": "max-age=60", "Content-Language": "de"},
                  metadata={"Owner": "ann", "build_id": "42"})


# -- how Swift holds it ----------------------------------------------------------


def test_a_put_stores_metadata_stored_headers_and_expiry_as_swift_headers(swift, raw):
    expires_at = soon(3600)
    meta = ObjectMeta(content_type=META.content_type, headers=META.headers,
                      metadata=META.metadata, expires_at=expires_at)
    info = swift.put_object("doc", Upload(b"text", meta=meta))
    headers = raw.head_object(swift.container, "doc")
    assert headers["x-object-meta-owner"] == "ann"
    assert headers["x-object-meta-build_id"] == "42"
    assert headers["content-disposition"] == 'attachment; filename="r.txt"'
    assert headers["cache-control"] == "max-age=60"
    assert headers["content-language"] == "de"
    assert int(headers["x-delete-at"]) == expires_at
    assert headers["content-type"] == f"text/plain; charset=utf-8;{EXPIRY_PARAMETER}={expires_at}"
    stat = swift.stat_object("doc")
    assert stat == info
    assert (stat.content_type, dict(stat.metadata), dict(stat.headers), stat.expires_at) == \
        ("text/plain; charset=utf-8", {"owner": "ann", "build_id": "42"}, dict(META.headers),
         expires_at)
    [listed] = swift.list_objects("")
    # Swift's listings write a content type's parameters without spaces.
    assert (listed.content_type, listed.metadata, listed.expires_at) == \
        ("text/plain;charset=utf-8", None, expires_at)


def test_an_object_without_metadata_carries_none_and_sends_none(swift, raw):
    info = swift.put_object("plain", b"x")
    assert (info.metadata, info.headers, info.expires_at) == ({}, {}, None)
    headers = raw.head_object(swift.container, "plain")
    assert headers["content-type"] == "application/octet-stream"
    assert not [name for name in headers if name.startswith("x-object-meta-")]
    assert "x-delete-at" not in headers


def test_a_large_object_s_manifest_carries_the_metadata_and_each_segment_the_expiry(swift, raw):
    expires_at = soon(3600)
    swift.put_object("big", Upload(pattern(LARGE), meta=ObjectMeta(
        metadata={"k": "v"}, expires_at=expires_at)))
    manifest = raw.head_object(swift.container, "big")
    assert manifest["x-static-large-object"] == "True"
    assert (manifest["x-object-meta-k"], int(manifest["x-delete-at"])) == ("v", expires_at)
    segments = segments_of(raw, swift, "big")
    assert len(segments) == 4
    for segment in segments:
        headers = raw.head_object(swift.container, segment)
        assert int(headers["x-delete-at"]) == expires_at + GRACE
        assert not [name for name in headers if name.startswith("x-object-meta-")]


VALUES = {"umlaut": "Grüße, 東京 €", "emoji": "𝄞 ✓", "percent": "100% = %41 %C3%BC",
          "leading": "  two spaces first", "trailing": "tab and space last\t ",
          "inner": "a\tb  c", "empty": "", "under_score_name": "x"}


def test_unusual_values_and_names_round_trip_byte_for_byte(swift, raw):
    meta = ObjectMeta(content_type="text/x-ü;q=%41", metadata=VALUES,
                      headers={"Content-Disposition": "attachment; filename=\"Grüße 100%.txt\"; "
                                                      "filename*=UTF-8''Gr%C3%BC%C3%9Fe.txt"})
    swift.put_object("odd", Upload(b"x", meta=meta))
    swift.put_object("d/large", Upload(pattern(SEGMENT + 1), meta=meta))
    for path in ("odd", "d/large"):
        for info in (swift.stat_object(path), swift.open_object(path)[0]):
            assert dict(info.metadata) == VALUES
            assert dict(info.headers) == dict(meta.headers)
            assert info.content_type == meta.content_type
    assert [e.content_type for e in swift.list_recursive("")] == [meta.content_type] * 2
    swift.update_object("odd", ObjectMeta(metadata={"after": VALUES["percent"] + VALUES["umlaut"]}))
    assert dict(swift.stat_object("odd").metadata) == {"after": VALUES["percent"] + VALUES["umlaut"]}
    copied = swift.copy_object("d/large", "copy")
    assert dict(copied.metadata) == dict(swift.stat_object("copy").metadata) == VALUES
    moved = swift.move_object("copy", "moved")
    assert dict(moved.metadata) == dict(swift.stat_object("moved").metadata) == VALUES
    # Swift holds the text itself, as UTF-8: other Swift clients see it too.
    assert raw.head_object(swift.container, "moved")["x-object-meta-umlaut"] == VALUES["umlaut"]


def test_headers_another_client_wrote_that_could_split_an_answer_are_ignored(swift, raw):
    """swiftclient percent-decodes what Swift sends: a %0D%0A another client
    stored would reach blobsvc's answer as a line break."""
    raw.put_object(swift.container, "foreign", contents=b"x", headers={
        "X-Object-Meta-Evil": "x%0D%0ASet-Cookie: s=1", "X-Object-Meta-Good": "fine",
        "Content-Disposition": "inline%0D%0AX-Injected: 1",
        "Content-Type": "text/plain%0D%0AX-Injected: 1"})
    info = swift.stat_object("foreign")
    assert dict(info.metadata) == {"good": "fine"}
    assert dict(info.headers) == {}
    assert info.content_type == "application/octet-stream"
    copied = swift.copy_object("foreign", "copy")  # what is left is copied as any metadata
    assert dict(copied.metadata) == {"good": "fine"}


@pytest.mark.parametrize("parameter, value", [(EXPIRY_PARAMETER, "1"),
                                              (ETAG_PARAMETER, "0" * 32)])
def test_a_content_type_that_names_a_parameter_of_blobsvc_is_refused(swift, parameter, value):
    with pytest.raises(InvalidMetadata, match=parameter):
        swift.put_object("x", Upload(b"x", content_type=f"text/plain;{parameter}={value}"))
    with pytest.raises(NotFound):
        swift.stat_object("x")


# -- a large object's ETag --------------------------------------------------------


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_a_large_object_keeps_the_md5_of_its_bytes_through_update_copy_and_move(swift, raw):
    data = pattern(LARGE)
    assert swift.put_object("a", Upload(data, content_type="text/csv")).etag == md5_hex(data)
    # A POST that changes the content type and the expiry rewrites the
    # content type Swift stores; the ETag in it stays.
    updated = swift.update_object("a", ObjectMeta(content_type="text/plain",
                                                  expires_at=int(time.time()) + 3600))
    assert updated.etag == md5_hex(data)
    assert raw.head_object(swift.container, "a")["content-type"].startswith(
        f"text/plain;{ETAG_PARAMETER}={md5_hex(data)}.")
    copied = swift.copy_object("a", "b")
    moved = swift.move_object("a", "c")
    for path, info in (("b", copied), ("c", moved)):
        assert info.etag == md5_hex(data)
        assert swift.stat_object(path).etag == md5_hex(data)
        assert swift.get_object(path) == data
    assert {entry.name: (entry.etag, entry.content_type) for entry in swift.list_objects("")} == {
        "b": (md5_hex(data), "text/plain"), "c": (md5_hex(data), "text/plain")}


def test_a_large_object_another_client_wrote_keeps_swift_s_etag(swift, raw):
    first, second = pattern(MIB, seed=1), pattern(MIB, seed=2)
    for name, data in (("seg/1", first), ("seg/2", second)):
        raw.put_object(swift.container, name, data)
    manifest = [{"path": f"/{swift.container}/seg/{n}"} for n in (1, 2)]
    raw.put_object(swift.container, "foreign", json.dumps(manifest),
                   query_string="multipart-manifest=put")
    swift_etag = raw.head_object(swift.container, "foreign")["etag"].strip('"')
    assert swift.stat_object("foreign").etag == swift_etag
    assert swift.get_object("foreign") == first + second


# -- the cluster's constraints ---------------------------------------------------


def test_the_driver_reads_the_cluster_s_constraints_from_info(swift, swift_stack):
    from swiftstack import CONSTRAINTS

    limits = swift.limits.load()
    assert limits.max_meta_value_length == CONSTRAINTS["max_meta_value_length"]
    assert limits.max_meta_overall_size == CONSTRAINTS["max_meta_overall_size"]
    assert limits.max_meta_count == CONSTRAINTS["max_meta_count"]


def test_a_cluster_without_info_is_taken_to_have_swift_s_defaults(swift, monkeypatch):
    def forbidden(self, url=None):
        raise ClientException("info disabled", http_status=403)

    monkeypatch.setattr(Connection, "get_capabilities", forbidden)
    swift.limits._constraints = None
    assert swift.limits.load() == Constraints()


def test_the_full_8_kib_of_metadata_is_stored_on_the_fixture_s_swift(swift):
    one_value = {"big": "v" * (MAX_METADATA_BYTES - len("big") - len("n") - 1), "n": "1"}
    many = {f"name{i:03d}": "w" * 120 for i in range(MAX_METADATA_BYTES // 128)}
    for meta in (one_value, many):
        assert sum(len(k) + len(v) for k, v in meta.items()) <= MAX_METADATA_BYTES
        for path, data in (("plain", b"x"), ("large", pattern(SEGMENT + 1))):
            swift.put_object(path, Upload(data, meta=ObjectMeta(metadata=meta)))
            assert dict(swift.stat_object(path).metadata) == meta
            swift.update_object(path, ObjectMeta(metadata=meta, expires_at=soon(3600)))
            assert dict(swift.stat_object(path).metadata) == meta


class CountingPuts:
    """Every PUT swiftclient sends, by object name."""

    def __init__(self, monkeypatch) -> None:
        self.names: list[str] = []
        real = Connection.put_object

        def put(conn, container, name, *args, **kwargs):
            self.names.append(name)
            return real(conn, container, name, *args, **kwargs)

        monkeypatch.setattr(Connection, "put_object", put)


@pytest.mark.parametrize("meta, limit", [
    (ObjectMeta(metadata={"k": "v" * 300}), "max_meta_value_length"),
    (ObjectMeta(metadata={f"k{i}": "v" * 200 for i in range(21)}), "max_meta_overall_size"),
    (ObjectMeta(metadata={"n_" * 50: "v"}), "max_meta_name_length"),
], ids=["value", "overall", "escaped name"])
def test_metadata_beyond_a_default_swift_s_limits_is_refused_before_any_byte(
        swift, raw, monkeypatch, meta, limit):
    swift.limits._constraints = Constraints()  # a cluster with Swift's defaults
    puts = CountingPuts(monkeypatch)
    chunks = iter([pattern(2 * SEGMENT + 1)])  # of unknown size: segments would go first
    with pytest.raises(MetadataTooLarge, match=limit):
        swift.put_object("big", Upload(chunks, meta=meta))
    with pytest.raises(MetadataTooLarge, match=limit):
        swift.cat_objects("cat", [], meta=meta)
    assert puts.names == []
    assert stored_names(raw, swift) == []


def test_metadata_refused_by_swift_itself_is_metadata_too_large(swift, raw):
    # Limits read before the cluster's were lowered: Swift's 400 still maps.
    swift.limits._constraints = Constraints(max_meta_value_length=100_000,
                                            max_meta_overall_size=100_000,
                                            max_header_size=100_000)
    # 4000 '%' travel escaped as 12 000 bytes: over the fixture's 8192 per value.
    meta = ObjectMeta(metadata={"k": "%" * 4000})
    with pytest.raises(MetadataTooLarge, match="longer than"):
        swift.put_object("plain", Upload(b"x", meta=meta))
    assert stored_names(raw, swift) == []


@pytest.mark.parametrize("body, error", [
    (b"Metadata value longer than 256: x-object-meta-K", MetadataTooLarge),
    (b"Total metadata too large; max 4096", MetadataTooLarge),
    (b"Metadata name cannot be empty", InvalidMetadata),
    (b"X-Delete-At in past", InvalidMetadata),
])
def test_swift_s_400_about_metadata_maps_to_metadata_errors(body, error):
    exc = ClientException("refused", http_status=400, http_response_content=body)
    assert type(from_client_exception(exc, "store", "p")) is error


def test_a_plain_put_and_get_without_metadata_make_no_more_requests(swift, monkeypatch):
    calls: list[str] = []
    for method in ("put_object", "get_object", "head_object", "get_container", "post_object",
                   "get_capabilities"):
        real = getattr(Connection, method)
        monkeypatch.setattr(Connection, method,
                            lambda conn, *a, _m=method, _r=real, **k: calls.append(_m) or _r(conn, *a, **k))
    swift.put_object("obj", b"data")
    # The PUT; before its body ends, the HEAD and, the name being new, the clash listing.
    assert sorted(calls) == ["get_container", "head_object", "put_object"]
    calls.clear()
    assert swift.get_object("obj") == b"data"
    assert calls == ["get_object"]


# -- expiry ----------------------------------------------------------------------


def test_an_expired_object_leaves_listings_at_once(swift, raw):
    expires_at = soon(2)
    swift.put_object("d/soon", Upload(b"x", meta=ObjectMeta(expires_at=expires_at)))
    swift.put_object("d/stays", b"y")
    swift.put_object("past", Upload(b"z", meta=ObjectMeta(expires_at=int(time.time()) - 10)))
    assert [e.path for e in swift.list_recursive("")] == ["d/soon", "d/stays"]
    wait_past(expires_at)
    assert [e.name for e in swift.list_objects("d")] == ["stays"]
    assert [e.path for e in swift.list_recursive("")] == ["d/stays"]
    assert [e.name for e in swift.list_objects("")] == ["d"]
    for path in ("d/soon", "past"):
        with pytest.raises(NotFound):
            swift.stat_object(path)
    # Swift's listing still has them: its expirer has not come by yet.
    assert set(stored_names(raw, swift)) == {"d/soon", "d/stays", "past"}


def test_expired_objects_space_is_reclaimed_by_swift_s_expirer_segments_too(make_driver, raw,
                                                                         swift_stack):
    swift = make_driver(segment_grace_seconds=1)
    swift.uploads.max_manifest_segments = 3  # nested manifests must go too
    expires_at = soon(3)
    meta = ObjectMeta(metadata={"k": "v"}, expires_at=expires_at)
    swift.put_object("big", Upload(pattern(LARGE), meta=meta))
    swift.put_object("small", Upload(b"x", meta=meta))
    swift.put_object("kept", b"k")
    assert len(stored_names(raw, swift)) == 4 + 2 + 3  # segments, nested manifests, objects
    wait_past(expires_at + 1)  # the segments' grace too
    swift_stack.run_expirer()
    assert stored_names(raw, swift) == ["kept"]


def test_update_moves_a_large_object_s_segments_expiry_with_its_own(swift, raw):
    swift.uploads.max_manifest_segments = 3  # nested manifests expire with it too
    data = pattern(LARGE)
    original = swift.put_object("big", data)
    segments = segments_of(raw, swift, "big")
    later = soon(7200)
    updated = swift.update_object("big", ObjectMeta(metadata={"a": "1"}, expires_at=later))
    assert (updated.etag, updated.size, updated.content_type) == \
        (original.etag, original.size, original.content_type)
    assert [delete_at(raw, swift, name) for name in segments] == [later + GRACE] * 4
    earlier = soon(3600)
    swift.update_object("big", ObjectMeta(expires_at=earlier, content_type="video/mp4"))
    assert [delete_at(raw, swift, name) for name in segments] == [earlier + GRACE] * 4
    info = swift.stat_object("big")
    assert (info.expires_at, info.content_type, dict(info.metadata)) == (earlier, "video/mp4", {})
    swift.update_object("big", ObjectMeta())
    assert [delete_at(raw, swift, name) for name in segments] == [None] * 4
    assert delete_at(raw, swift, "big") is None
    assert swift.stat_object("big").content_type == "video/mp4"
    assert swift.get_object("big") == data


def test_an_update_that_lands_on_a_newer_large_version_moves_its_segments_too(swift, raw,
                                                                            monkeypatch):
    """Another write replaces the object between the update's HEAD and its
    POST: the POST lands on the new version, whose segments must then
    expire with its manifest, not before it and not never; and the old
    version's ETag, which the POST carried, must not pass for the new one's."""
    old = swift.put_object("big", pattern(LARGE, "old"))
    real_post = swift.client.post
    replaced = []

    def post(name, headers, path):
        if name == "big" and not replaced:
            replaced.append(swift.put_object("big", pattern(LARGE, "new")))
        return real_post(name, headers, path)

    monkeypatch.setattr(swift.client, "post", post)
    later = soon(7200)
    swift.update_object("big", ObjectMeta(expires_at=later))
    assert delete_at(raw, swift, "big") == later
    assert [delete_at(raw, swift, name) for name in segments_of(raw, swift, "big")] == \
        [later + GRACE] * 4
    assert swift.get_object("big") == pattern(LARGE, "new")
    # The new version's own ETag was overwritten with the old one's: it is
    # ignored, and Swift's ETag for the new manifest is what shows.
    swift_etag = raw.head_object(swift.container, "big")["etag"].strip('"')
    assert swift.stat_object("big").etag == swift_etag != old.etag
    assert [entry.etag for entry in swift.list_objects("")] == [swift_etag]


def test_update_keeps_the_content_type_and_replaces_everything_else(swift):
    swift.put_object("o", Upload(b"x", meta=META))
    info = swift.update_object("o", ObjectMeta(metadata={"new": "1"}))
    assert swift.stat_object("o") == info
    assert (info.content_type, dict(info.headers), dict(info.metadata)) == \
        (META.content_type, {}, {"new": "1"})
    [listed] = swift.list_objects("")
    assert listed.content_type == "text/plain;charset=utf-8"  # as Swift's listings write it


def test_update_checks_its_precondition_and_refuses_what_is_absent(swift):
    swift.put_object("o", Upload(b"x", meta=META))

    def refuse(current):
        raise PreconditionFailed("no", "o")

    with pytest.raises(PreconditionFailed):
        swift.update_object("o", ObjectMeta(), refuse)
    assert dict(swift.stat_object("o").metadata) == dict(META.metadata)
    with pytest.raises(NotFound):
        swift.update_object("missing", ObjectMeta())


def test_move_keeps_metadata_headers_and_expiry_and_refuses_an_expired_source(swift, raw):
    expires_at = soon(3600)
    meta = ObjectMeta(content_type="a/b", headers=META.headers, metadata=META.metadata,
                      expires_at=expires_at)
    swift.put_object("big", Upload(pattern(LARGE), meta=meta))
    segments = segments_of(raw, swift, "big")
    moved = swift.move_object("big", "moved")
    assert moved == swift.stat_object("moved")
    assert (moved.content_type, moved.expires_at) == ("a/b", expires_at)
    assert dict(moved.metadata) == {k.lower(): v for k, v in META.metadata.items()}
    assert delete_at(raw, swift, "moved") == expires_at
    assert segments_of(raw, swift, "moved") == segments
    gone = soon(2)
    swift.put_object("gone", Upload(b"x", meta=ObjectMeta(expires_at=gone)))
    wait_past(gone)
    with pytest.raises(NotFound):
        swift.move_object("gone", "there")
    with pytest.raises(NotFound):
        swift.stat_object("there")


# -- copies ------------------------------------------------------------------------


def test_a_copy_of_a_large_object_has_segments_of_its_own(swift, raw):
    swift.uploads.max_manifest_segments = 3  # four segments: nested manifests, opened by the copy
    data = pattern(LARGE)
    meta = ObjectMeta(content_type="video/mp4", metadata={"k": "v"}, expires_at=soon(3600))
    source = swift.put_object("src", Upload(data, meta=meta))
    copy = swift.copy_object("src", "d/copy")
    assert not set(segments_of(raw, swift, "src")) & set(segments_of(raw, swift, "d/copy"))
    assert (copy.size, copy.etag, copy.content_type, dict(copy.metadata), copy.expires_at) == \
        (source.size, source.etag, "video/mp4", {"k": "v"}, None)
    assert copy == swift.stat_object("d/copy")
    assert [delete_at(raw, swift, name) for name in segments_of(raw, swift, "d/copy")] == [None] * 4
    swift.delete_object("src")
    assert swift.get_object("d/copy") == data
    swift.delete_object("d/copy")
    swift.close()  # what the grace period kept for readers goes now
    assert stored_names(raw, swift) == []


def test_a_copy_given_metadata_carries_exactly_that(swift, raw):
    swift.put_object("src", Upload(b"bytes", meta=META))
    swift.put_object("big", Upload(pattern(LARGE), meta=META))
    expires_at = soon(3600)
    given = ObjectMeta(metadata={"only": "this"}, expires_at=expires_at)
    for src in ("src", "big"):
        copy = swift.copy_object(src, f"{src}-copy", meta=given)
        assert copy == swift.stat_object(f"{src}-copy")
        assert (dict(copy.metadata), dict(copy.headers), copy.content_type, copy.expires_at) == \
            ({"only": "this"}, {}, META.content_type, expires_at)
        assert delete_at(raw, swift, f"{src}-copy") == expires_at
    assert [delete_at(raw, swift, name) for name in segments_of(raw, swift, "big-copy")] == \
        [expires_at + GRACE] * 4
    assert swift.get_object("src-copy") == b"bytes"


def test_a_copy_onto_itself_drops_the_expiry_or_takes_new_metadata(swift):
    swift.put_object("o", Upload(b"x", meta=ObjectMeta(metadata={"a": "1"}, expires_at=soon(3600))))
    info = swift.copy_object("o", "o")
    assert (dict(info.metadata), info.expires_at) == ({"a": "1"}, None)
    assert swift.stat_object("o").expires_at is None
    swift.put_object("big", Upload(pattern(LARGE)))
    swift.copy_object("big", "big", meta=ObjectMeta(metadata={"b": "2"}))
    assert dict(swift.stat_object("big").metadata) == {"b": "2"}
    assert swift.get_object("big") == pattern(LARGE)


def test_a_copy_checks_its_precondition_and_refuses_an_expired_source(swift):
    swift.put_object("src", b"new")
    swift.put_object("dst", b"old")

    def refuse(current):
        raise PreconditionFailed("no", "dst")

    with pytest.raises(PreconditionFailed):
        swift.copy_object("src", "dst", refuse)
    assert swift.get_object("dst") == b"old"
    gone = soon(2)
    swift.put_object("gone", Upload(b"x", meta=ObjectMeta(expires_at=gone)))
    wait_past(gone)
    with pytest.raises(NotFound):
        swift.copy_object("gone", "dst")
    assert swift.get_object("dst") == b"old"


# -- cat -----------------------------------------------------------------------------


def test_cat_lends_segments_to_a_result_with_another_expiry(swift, raw):
    first, second = pattern(LARGE, seed=1), pattern(LARGE, seed=2)
    chunk_expiry = soon(3600)
    swift.put_object("c1", Upload(first, meta=ObjectMeta(expires_at=chunk_expiry)))
    swift.put_object("c2", Upload(second))
    lent = segments_of(raw, swift, "c1") + segments_of(raw, swift, "c2")
    meta = ObjectMeta(content_type="text/csv", metadata={"joined": "yes"})
    info = swift.cat_objects("out", ["c1", "c2"], meta=meta)
    assert (info.content_type, dict(info.metadata), info.expires_at) == ("text/csv", {"joined": "yes"}, None)
    assert segments_of(raw, swift, "out") == lent
    assert [delete_at(raw, swift, name) for name in lent] == [None] * 8
    result_expiry = soon(1800)
    swift.put_object("c3", Upload(pattern(LARGE, seed=3)))
    swift.cat_objects("out", ["out", "c3"], meta=ObjectMeta(expires_at=result_expiry))
    assert {delete_at(raw, swift, name) for name in segments_of(raw, swift, "out")} == \
        {result_expiry + GRACE}
    assert swift.get_object("out") == first + second + pattern(LARGE, seed=3)


def test_an_expired_chunk_is_a_missing_one(swift):
    gone = soon(2)
    swift.put_object("c1", Upload(b"x", meta=ObjectMeta(expires_at=gone)))
    swift.put_object("c2", b"y")
    wait_past(gone)
    with pytest.raises(NotFound, match="c1"):
        swift.cat_objects("out", ["c1", "c2"])
    assert swift.get_object("c2") == b"y"


def test_a_cat_result_s_copied_segments_carry_its_expiry_not_the_chunk_s(swift, raw):
    swift.put_object("big", Upload(pattern(SEGMENT), meta=ObjectMeta(metadata={"m": "1"},
                                                                     expires_at=soon(600))))
    expires_at = soon(3600)
    swift.cat_objects("out", ["big"], meta=ObjectMeta(expires_at=expires_at))
    [segment] = segments_of(raw, swift, "out")
    headers = raw.head_object(swift.container, segment)
    assert int(headers["x-delete-at"]) == expires_at + GRACE
    assert "x-object-meta-m" not in headers


# -- listings ------------------------------------------------------------------------


def test_a_prefix_keeps_the_names_of_one_level_that_start_with_it(swift):
    for name in ["d/ab", "d/ab.txt", "d/abc/x", "d/ac", "d/b", "ab"]:
        swift.put_object(name, b"x")
    assert [e.name for e in swift.list_objects("d", prefix="ab")] == ["ab", "ab.txt", "abc"]
    assert [e.name for e in swift.list_objects("d", prefix="ab", marker="ab")] == ["ab.txt", "abc"]
    assert [e.name for e in swift.list_objects("d", prefix="zz")] == []
    assert [e.name for e in swift.list_objects("", prefix="a")] == ["ab"]
    with pytest.raises(NotFound):
        swift.list_objects("nope", prefix="a")


def test_a_recursive_listing_is_flat_in_swift_s_order_without_private_names(swift):
    names = [".a", ".blobsvc-not-private", ".c", "a.txt", "a/b", "a/c/d", "z"]
    for name in names:
        swift.put_object(name, b"x")
    swift.put_object("large", pattern(SEGMENT + 1))  # segments under .blobsvc/
    expected = sorted(names + ["large"])
    assert [e.path for e in swift.list_recursive("")] == expected
    assert all(not e.isdir and e.metadata is None for e in swift.list_recursive(""))
    assert [e.path for e in swift.list_recursive("a")] == ["a/b", "a/c/d"]
    assert [e.path for e in swift.list_recursive("", prefix="a")] == ["a.txt", "a/b", "a/c/d"]
    assert [e.path for e in swift.list_recursive("", marker="a/b", limit=2)] == ["a/c/d", "large"]
    paged, marker = [], None
    while page := swift.list_recursive("", marker=marker, limit=2):
        paged += [e.path for e in page]
        marker = page[-1].path
    assert paged == expected
    with pytest.raises(NotFound):
        swift.list_recursive("nope")


def test_a_recursive_root_listing_jumps_over_the_private_names(swift, monkeypatch):
    swift.uploads.max_manifest_segments = 2
    swift.put_object("big", pattern(12 * SEGMENT))  # a dozen segments and nested manifests
    swift.put_object(".a", b"x")
    swift.put_object("z", b"x")
    swift.lister.page_size = 2
    calls = []
    original = swift.client.listing_page
    monkeypatch.setattr(swift.client, "listing_page",
                        lambda *a, **k: calls.append((a, k)) or original(*a, **k))
    assert [e.path for e in swift.list_recursive("")] == [".a", "big", "z"]
    assert len(calls) <= 4  # up to .blobsvc/, then on from past it: never through it
    for args, _ in calls:
        assert not (args[1] or "").startswith(".blobsvc/s")


def test_reap_expired_leaves_it_to_swift(swift):
    assert swift.reap_expired() == 0

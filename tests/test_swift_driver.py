"""What only the Swift driver does: large objects, server-side cat and move,
paged listings, and a Swift that stops answering.

Runs against the session's real Swift (``swift_stack`` in conftest.py).
"Segments are gone" is checked by listing the container raw with
swiftclient, bypassing the driver that hides ``.blobsvc``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import swiftclient.client
from conftest import swift_settings
from live_server import GroupServer, swift_config
from swiftclient.client import ClientException, Connection

from blobsvc import config
from blobsvc.storage import Upload, create_driver
from blobsvc.storage.errors import (
    BackendUnavailable,
    Conflict,
    IncompleteBody,
    InsufficientStorage,
    NotFound,
    PreconditionFailed,
    StorageError,
)
from blobsvc.storage.swift import SwiftDriver, SwiftSettings, _from_client_exception, _slo_etag
from blobsvc.storage.swift.settings import AUTH_VERSIONS

EXAMPLE_CONFIG = str(Path(__file__).resolve().parent.parent / "config" / "swift.yaml")
MIB = 1024 * 1024
SEGMENT = MIB
LARGE = 3 * MIB + 12345  # four segments


def pattern(size: int, seed: object = 0) -> bytes:
    return random.Random(f"{seed}:{size}").randbytes(size)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def composite_etag(parts: list[bytes]) -> str:
    """S3's ETag of an object joined from ``parts``: MD5 of their binary MD5s, ``-N``."""
    digests = b"".join(hashlib.md5(part).digest() for part in parts)
    return f"{md5_hex(digests)}-{len(parts)}"


@pytest.fixture
def make_driver(make_swift_driver):
    return make_swift_driver


@pytest.fixture
def swift(make_driver) -> SwiftDriver:
    return make_driver()


@pytest.fixture
def raw(swift_stack) -> Connection:
    return Connection(authurl=swift_stack.auth_url, user=swift_stack.user, key=swift_stack.key,
                      auth_version="1", retries=0)


def stored_names(raw: Connection, drv: SwiftDriver) -> list[str]:
    """Every name in the driver's container, private ones included, but the
    records of where moves and cats lent segments: Swift expires those by
    themselves (see blobsvc.storage.swift.lending; lent_records shows them)."""
    return [name for name in all_names(raw, drv) if not name.startswith(".blobsvc/lent/")]


def all_names(raw: Connection, drv: SwiftDriver) -> list[str]:
    return [entry["name"] for entry in raw.get_container(drv.container, full_listing=True)[1]]


def lent_records(raw: Connection, drv: SwiftDriver) -> dict[str, list[str]]:
    """Each lending record and the names it holds."""
    return {name: json.loads(raw.get_object(drv.container, name)[1])
            for name in all_names(raw, drv) if name.startswith(".blobsvc/lent/")}


def segment_names(raw: Connection, drv: SwiftDriver) -> list[str]:
    return [name for name in stored_names(raw, drv) if name.startswith(".blobsvc/")]


# -- uploads ------------------------------------------------------------------


def test_known_size_upload_up_to_the_segment_size_is_one_plain_object(swift, raw):
    data = pattern(SEGMENT)
    info = swift.put_object("plain", data)
    assert info.etag == md5_hex(data)
    assert stored_names(raw, swift) == ["plain"]
    assert "x-static-large-object" not in raw.head_object(swift.container, "plain")


def test_small_upload_of_unknown_size_is_one_plain_object(swift, raw):
    data = pattern(300_000)
    info = swift.put_object("plain", (data[i:i + 7000] for i in range(0, len(data), 7000)))
    assert info.etag == md5_hex(data)
    assert stored_names(raw, swift) == ["plain"]


@pytest.mark.parametrize("sized", [True, False], ids=["known size", "unknown size"])
def test_large_upload_is_segmented_and_reads_back_byte_exact(swift, raw, sized):
    data = pattern(LARGE)
    chunks = (data[i:i + 100_003] for i in range(0, LARGE, 100_003))
    info = swift.put_object("d/big ü", Upload(chunks, expected_size=LARGE if sized else None,
                                               content_type="video/mp4"))
    assert swift.get_object("d/big ü") == data
    # The ETag is the MD5 of the bytes, not Swift's MD5 of the segments'
    # MD5s: in the answer, a HEAD and a listing alike.
    assert (info.size, info.etag, info.content_type) == (LARGE, md5_hex(data), "video/mp4")
    assert swift.stat_object("d/big ü") == info
    [listed] = swift.list_objects("d")
    assert (listed.size, listed.etag, listed.content_type) == (LARGE, info.etag, "video/mp4")
    [recursive] = swift.list_recursive("d")
    assert (recursive.etag, recursive.content_type) == (info.etag, "video/mp4")
    headers = raw.head_object(swift.container, "d/big ü")
    assert headers["x-static-large-object"] == "True"
    assert headers["etag"].strip('"') != md5_hex(data)  # what Swift itself says
    segments = segment_names(raw, swift)
    assert len(segments) == 4
    assert all(name.startswith(".blobsvc/segments/d/big ü/") for name in segments)
    assert [e.name for e in swift.list_objects("")] == ["d"]


def test_the_etag_computed_for_a_superseded_manifest_is_the_one_swift_gives(swift, raw):
    # A write that lost to a newer version gets no ETag from Swift (202):
    # the driver computes it from the manifest, which must agree with Swift
    # (where a manifest carries no ETag of blobsvc's).
    swift.put_object("big", pattern(LARGE))
    _, body = raw.get_object(swift.container, "big", query_string="multipart-manifest=get")
    entries = [{"etag": stored["hash"]} for stored in json.loads(body)]
    assert _slo_etag(entries) == raw.head_object(swift.container, "big")["etag"].strip('"')


def test_ranges_of_a_large_object_cross_segment_edges_exactly(swift):
    data = pattern(LARGE)
    swift.put_object("big", data)
    for offset, length in [(SEGMENT - 3, 7), (0, SEGMENT + 1), (2 * SEGMENT, None), (LARGE - 1, 1)]:
        info, stream = swift.open_object("big", offset, length)
        with stream:
            got = b"".join(stream)
        end = LARGE if length is None else offset + length
        assert got == data[offset:end]
        assert info == swift.stat_object("big")


def test_deleting_a_large_object_deletes_its_segments(swift, raw):
    swift.put_object("big", pattern(LARGE))
    swift.delete_object("big")
    assert stored_names(raw, swift) == []


@pytest.mark.parametrize("new_size", [10, LARGE + 1], ids=["by a small one", "by a large one"])
def test_overwriting_a_large_object_deletes_its_old_segments(swift, raw, new_size):
    swift.put_object("big", pattern(LARGE, seed="old"))
    old_segments = set(segment_names(raw, swift))
    new = pattern(new_size, seed="new")
    swift.put_object("big", new)
    assert swift.get_object("big") == new
    left = set(segment_names(raw, swift))
    assert not left & old_segments
    assert all(name.startswith(".blobsvc/segments/") for name in left)  # no tombstone stays
    swift.delete_object("big")
    assert stored_names(raw, swift) == []


def test_upload_whose_size_turns_out_wrong_stores_nothing_and_no_segments(swift, raw):
    swift.put_object("big", b"old")
    data = pattern(LARGE)
    with pytest.raises(IncompleteBody):
        swift.put_object("big", Upload(iter([data]), expected_size=LARGE + 1))
    assert swift.get_object("big") == b"old"
    assert stored_names(raw, swift) == ["big"]


def test_upload_failing_in_a_later_segment_leaves_no_segments(swift, raw):
    class Gone(Exception):
        pass

    def body():
        yield pattern(2 * SEGMENT + 10)
        raise Gone()

    with pytest.raises(Gone):
        swift.put_object("big", body())
    assert stored_names(raw, swift) == []


def test_failing_precondition_on_a_large_upload_leaves_no_segments(swift, raw):
    swift.put_object("big", b"old")

    def refuse(current):
        raise PreconditionFailed("no", "big")

    with pytest.raises(PreconditionFailed):
        swift.put_object("big", Upload(pattern(LARGE), precondition=refuse))
    assert stored_names(raw, swift) == ["big"]


def test_a_large_upload_found_clashing_at_its_commit_leaves_no_segments(swift, raw):
    # The clash rules are judged right before the manifest PUT, segments written.
    swift.put_object("obj", b"an object")
    swift.put_object("dir/inside", b"x")
    for path in ("obj/below", "dir"):
        with pytest.raises(Conflict):
            swift.put_object(path, pattern(LARGE))
    assert stored_names(raw, swift) == ["dir/inside", "obj"]


def test_a_name_both_object_and_directory_takes_an_overwrite(swift, raw):
    # Left so by instances racing: the object's HEAD is all an overwrite checks.
    swift.put_object("both", b"old")
    raw.put_object(swift.container, "both/inside", b"x")
    assert swift.put_object("both", b"new").size == 3
    assert swift.get_object("both") == b"new"


def test_segments_of_a_path_too_long_for_swift_use_a_digest(swift, raw):
    path = "/".join(["p" * 255] * 3 + ["p" * 254, "q"])
    data = pattern(SEGMENT + 1)
    swift.put_object(path, data)
    assert swift.get_object(path) == data
    digest = hashlib.sha256(path.encode()).hexdigest()
    assert all(name.startswith(f".blobsvc/segments/{digest}/") for name in segment_names(raw, swift))


# -- cat ------------------------------------------------------------------------


def test_cat_of_no_chunks_is_an_empty_plain_object(swift, raw):
    info = swift.cat_objects("out", [])
    assert (info.size, info.etag) == (0, md5_hex(b""))
    assert stored_names(raw, swift) == ["out"]


def test_cat_of_one_big_plain_chunk_copies_it_inside_swift(swift, raw):
    data = pattern(SEGMENT)  # plain (not over the segment size), yet not small
    swift.put_object("c", data)
    info = swift.cat_objects("out", ["c"])
    assert swift.get_object("out") == data
    assert info.etag == composite_etag([data])  # an SLO of one segment
    assert swift.stat_object("out").etag == info.etag
    assert len(segment_names(raw, swift)) == 1
    swift.delete_object("out")
    assert stored_names(raw, swift) == []


def test_cat_of_many_small_chunks_is_one_plain_object(swift, raw):
    chunks = {f"parts/{i:03d}": pattern(i * 37, seed=i) for i in range(40)}
    for name, data in chunks.items():
        swift.put_object(name, data)
    info = swift.cat_objects("out", list(chunks))
    expected = b"".join(chunks.values())
    assert swift.get_object("out") == expected
    assert info.etag == md5_hex(expected)
    assert stored_names(raw, swift) == ["out"]


def test_cat_of_mixed_chunks_shares_large_segments_and_frees_all_on_delete(swift, raw):
    large = pattern(LARGE, seed="large")      # an SLO: lends its four segments
    big = pattern(SEGMENT + 1, seed="big")   # plain, copied by Swift
    swift.put_object("large", large)
    lent = set(segment_names(raw, swift))
    for name, data in {"s1": b"small one ", "s2": b"", "big": big, "s3": b"small two"}.items():
        swift.put_object(name, data)
    order = ["s1", "s2", "large", "s3", "big", "s1", "large"]
    info = swift.cat_objects("out", order)
    parts = {"s1": b"small one ", "s2": b"", "large": large, "s3": b"small two", "big": big}
    expected = b"".join(parts[name] for name in order)
    assert swift.get_object("out") == expected
    assert info.size == len(expected) == swift.stat_object("out").size
    # Its bytes never all passed through blobsvc: S3's composite ETag of
    # the chunks, the same in a HEAD and a listing.
    assert info.etag == composite_etag([parts[name] for name in order])
    assert [(e.name, e.etag) for e in swift.list_objects("")] == [("out", info.etag)]
    assert swift.stat_object("out").etag == info.etag
    assert lent <= set(segment_names(raw, swift))  # reused, not copied
    swift.delete_object("out")
    assert stored_names(raw, swift) == []


def test_cat_into_one_of_its_large_chunks_keeps_the_lent_segments(swift, raw):
    first = pattern(LARGE, seed="first")
    swift.put_object("out", first)
    swift.put_object("tail", b"tail")
    info = swift.cat_objects("out", ["out", "tail"])
    assert swift.get_object("out") == first + b"tail"
    assert info.etag == composite_etag([first, b"tail"])  # the chunk by its own MD5 ETag
    swift.delete_object("out")
    assert stored_names(raw, swift) == []


def test_cat_past_the_manifest_limit_nests_manifests(swift, raw):
    swift.uploads.max_manifest_segments = 3
    swift.concatenator.small_chunk = 1  # every chunk a segment of its own
    chunks = {f"c{i}": pattern(1000 + i, seed=i) for i in range(8)}
    for name, data in chunks.items():
        swift.put_object(name, data)
    swift.cat_objects("out", list(chunks))
    assert swift.get_object("out") == b"".join(chunks.values())
    swift.delete_object("out")
    assert stored_names(raw, swift) == []


# -- move ---------------------------------------------------------------------


def test_move_of_a_large_object_shares_its_segments(swift, raw):
    data = pattern(LARGE)
    original = swift.put_object("src", data)
    segments = segment_names(raw, swift)
    moved = swift.move_object("src", "a/dst")
    assert segment_names(raw, swift) == segments      # nothing copied or re-uploaded
    # Where they went is recorded by name: a listing may not show a/dst yet.
    upload = segments[0].rsplit("/", 2)[1]
    assert lent_records(raw, swift) == {f".blobsvc/lent/{upload}": ["a/dst"]}
    assert (moved.size, moved.etag) == (original.size, original.etag)
    assert swift.get_object("a/dst") == data
    with pytest.raises(NotFound):
        swift.stat_object("src")
    swift.delete_object("a/dst")
    assert stored_names(raw, swift) == []


def test_move_onto_a_large_object_frees_the_old_destination_segments(swift, raw):
    swift.put_object("dst", pattern(LARGE, seed="old"))
    swift.put_object("src", pattern(LARGE, seed="new"))
    source_segments = [n for n in segment_names(raw, swift) if n.startswith(".blobsvc/segments/src/")]
    swift.move_object("src", "dst")
    assert swift.get_object("dst") == pattern(LARGE, seed="new")
    assert segment_names(raw, swift) == source_segments


# -- listings -----------------------------------------------------------------

TRICKY_NAMES = ["d/x", "d.txt", "d-1", "d0", "e/f/g", "e!", "a", "b/c", "b.d/e", "b.d.f", "z"]


def expected_root() -> list[str]:
    return sorted({name.split("/")[0] for name in TRICKY_NAMES})


@pytest.mark.parametrize("page_size", [1, 2, 3, 5])
def test_listing_across_many_swift_pages_is_whole_and_in_order(swift, page_size):
    for name in TRICKY_NAMES:
        swift.put_object(name, b"x")
    swift.put_object("big", pattern(SEGMENT + 1))  # .blobsvc appears in the root
    swift.lister.page_size = page_size
    expected = sorted(expected_root() + ["big"])
    assert [e.name for e in swift.list_objects("")] == expected
    for limit in (1, 2, 4):
        paged, marker = [], None
        while True:
            page = swift.list_objects("", marker=marker, limit=limit)
            if not page:
                break
            paged += [e.name for e in page]
            marker = page[-1].name
        assert paged == expected


def test_a_listing_page_costs_one_swift_request(swift, monkeypatch):
    for i in range(30):
        swift.put_object(f"d/{i:02d}", b"x")
    calls = []
    original = swift.client.listing_page
    monkeypatch.setattr(swift.client, "listing_page", lambda *a: calls.append(a) or original(*a))
    assert len(swift.list_objects("d", limit=20)) == 20
    assert len(swift.list_objects("d")) == 30
    assert len(calls) == 2


# -- a Swift that stops answering ---------------------------------------------


def test_swift_down_is_backend_unavailable_within_the_timeout_then_recovers(make_driver, swift_stack):
    timeout, retries = 2.0, 1
    drv = make_driver(timeout=timeout, retries=retries, starting_backoff=0.2, max_backoff=0.5)
    drv.put_object("obj", b"before")
    drv.check_ready()
    budget = (retries + 1) * timeout + 0.2
    swift_stack.stop_proxy()
    try:
        calls = {
            "stat": lambda: drv.stat_object("obj"),
            "get": lambda: drv.get_object("obj"),
            "put": lambda: drv.put_object("obj", b"during"),
            "put large": lambda: drv.put_object("big", pattern(SEGMENT + 1)),
            "list": lambda: drv.list_objects(""),
            "delete": lambda: drv.delete_object("obj"),
            "ready": drv.check_ready,
        }
        for name, call in calls.items():
            started = time.monotonic()
            with pytest.raises(BackendUnavailable) as caught:
                call()
            elapsed = time.monotonic() - started
            assert elapsed < budget, f"{name} took {elapsed:.2f}s"
            assert "Swift did not answer" in caught.value.message
    finally:
        swift_stack.start_proxy()
    drv.check_ready()
    assert drv.get_object("obj") == b"before"
    drv.put_object("obj", b"after")
    assert drv.get_object("obj") == b"after"


def test_hung_swift_is_backend_unavailable_after_the_timeout(make_driver, swift_stack):
    # A frozen proxy accepts connections but never answers: only the
    # timeout can end the wait.
    timeout, retries = 1.0, 1
    drv = make_driver(timeout=timeout, retries=retries, starting_backoff=0.1, max_backoff=0.1)
    drv.put_object("obj", b"before")
    proxy = swift_stack.pids["proxy"]
    os.kill(proxy, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="timed out"):
            drv.stat_object("obj")
        elapsed = time.monotonic() - started
    finally:
        os.kill(proxy, signal.SIGCONT)
    assert (retries + 1) * timeout <= elapsed < (retries + 1) * timeout + 1.0
    assert drv.get_object("obj") == b"before"


def test_check_ready_reports_a_missing_container(swift, raw):
    swift.check_ready()
    raw.delete_container(swift.container)
    with pytest.raises(BackendUnavailable):
        swift.check_ready()


def test_driver_starts_while_swift_is_down_and_creates_the_container_later(swift_stack, raw):
    settings = swift_settings(swift_stack, timeout=1.0, retries=0)
    swift_stack.stop_proxy()
    try:
        drv = create_driver("swift", settings)
        with pytest.raises(BackendUnavailable):
            drv.check_ready()
    finally:
        swift_stack.start_proxy()
    drv.check_ready()
    raw.head_container(settings["container"])
    drv.close()


@pytest.mark.parametrize("status, error", [(404, NotFound), (507, InsufficientStorage),
                                           (503, BackendUnavailable), (401, BackendUnavailable),
                                           (None, BackendUnavailable), (400, StorageError)])
def test_swift_statuses_map_to_storage_errors(status, error):
    mapped = _from_client_exception(ClientException("x", http_status=status), "read", "p")
    assert type(mapped) is error


# -- streams ------------------------------------------------------------------


def test_streams_closed_early_release_their_connections(swift):
    swift.put_object("big", pattern(LARGE))
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        _, stream = swift.stream_object("big")
        next(stream)
        stream.close()
    assert len(os.listdir("/proc/self/fd")) <= before + 2


def test_open_streams_survive_other_requests_from_the_same_thread(swift):
    # swiftclient reads a body through its connection's latest response:
    # sharing a connection with other calls would end these streams early.
    first, second = pattern(3 * MIB, seed=1), pattern(SEGMENT, seed=2)
    swift.put_object("first", first)
    swift.put_object("second", second)
    _, one = swift.stream_object("first")
    _, two = swift.stream_object("second")
    with one, two:
        head = next(one)
        swift.put_object("other", b"x")
        swift.list_objects("")
        assert b"".join(two) == second
        assert head + b"".join(one) == first


def test_reader_of_a_large_object_deleted_mid_read_gets_backend_unavailable(swift):
    swift.put_object("big", pattern(20 * SEGMENT))  # more than the sockets buffer
    _, stream = swift.stream_object("big")
    with stream, pytest.raises(BackendUnavailable):
        next(stream)
        swift.delete_object("big")
        for _ in stream:
            pass


def test_each_thread_gets_its_own_connection(swift):
    seen = []
    thread = threading.Thread(target=lambda: seen.append(swift.connections.conn()))
    thread.start()
    thread.join()
    assert seen[0] is not swift.connections.conn()


# -- configuration ------------------------------------------------------------


def test_the_example_config_takes_its_secret_from_the_environment():
    cfg = config.load(EXAMPLE_CONFIG, environ={"SWIFT_KEY": "s3cret"})
    assert cfg.storage.driver == "swift"
    assert cfg.storage.params["key"] == "s3cret"
    assert cfg.storage.params["project_name"] is None
    with pytest.raises(config.ConfigError, match="SWIFT_KEY"):
        config.load(EXAMPLE_CONFIG, environ={})


def test_settings_defaults_are_the_documented_ones_and_the_key_stays_out_of_reprs():
    settings = SwiftSettings(auth_url="http://swift/auth/v1.0", user="u", key="s3cret")
    assert (settings.auth_version, settings.container, settings.timeout, settings.retries) == \
        ("1", "blobsvc", 10.0, 2)
    assert (settings.starting_backoff, settings.max_backoff) == (0.25, 1.0)
    assert (settings.segment_size, settings.segment_grace_seconds) == (5 * 1024**3 - 64 * MIB, 60.0)
    assert "s3cret" not in repr(settings)


def test_the_auth_versions_allowed_are_the_ones_swiftclient_knows():
    known = {str(v) for v in swiftclient.client.AUTH_VERSIONS_V1 + swiftclient.client.AUTH_VERSIONS_V2
             + swiftclient.client.AUTH_VERSIONS_V3}
    assert set(AUTH_VERSIONS) == known
    for version in ("1", 3, "3.0"):
        SwiftSettings(auth_url="http://swift/v3", user="u", key="k", auth_version=version).validate()


def test_the_example_config_keeps_blobsvc_off_the_port_of_a_local_swift():
    # A stock all-in-one Swift (and python -m tests.swiftstack up) serves its
    # proxy on 8080: blobsvc and the Swift it defaults to must not share it.
    cfg = config.load(EXAMPLE_CONFIG, environ={"SWIFT_KEY": "testing"})
    auth_url = urlsplit(cfg.storage.params["auth_url"])
    assert (auth_url.hostname, auth_url.port) == ("127.0.0.1", 8080)
    assert cfg.server.port != auth_url.port
    moved = config.load(EXAMPLE_CONFIG, environ={"SWIFT_KEY": "k", "BLOBSVC_SERVER_PORT": "9000",
                                                 "SWIFT_AUTH_URL": "http://swift:8888/auth/v1.0"})
    assert (moved.server.port, moved.storage.params["auth_url"]) == (9000, "http://swift:8888/auth/v1.0")


# -- segments outlive their object by a grace period -----------------------------


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("change", ["overwrite", "delete"])
def test_reader_of_a_replaced_large_object_reads_the_old_version_whole(make_driver, raw, change):
    swift = make_driver(segment_grace_seconds=5)
    old = pattern(20 * SEGMENT, seed="old")  # more than the sockets buffer
    swift.put_object("big", old)
    old_segments = set(segment_names(raw, swift))
    _, stream = swift.stream_object("big")
    with stream:
        head = next(stream)
        if change == "overwrite":
            swift.put_object("big", pattern(LARGE, seed="new"))
        else:
            swift.delete_object("big")
        assert old_segments <= set(segment_names(raw, swift))  # kept for the reader
        assert head + b"".join(stream) == old
    # Swift's multipart-manifest=delete removes the segments, then the
    # tombstone itself: both go, in that order, within the bound.
    assert wait_until(lambda: not old_segments & set(segment_names(raw, swift)), timeout=30)
    assert wait_until(lambda: not [n for n in segment_names(raw, swift)
                                   if n.startswith(".blobsvc/replaced/")], timeout=30)


def test_close_deletes_segments_still_in_their_grace_period(make_driver, raw):
    swift = make_driver(segment_grace_seconds=3600)
    swift.put_object("big", pattern(LARGE, seed="old"))
    swift.put_object("big", pattern(LARGE, seed="new"))
    swift.put_object("gone", pattern(LARGE))
    swift.delete_object("gone")
    assert len(segment_names(raw, swift)) == 3 * 4 + 2  # two tombstones
    swift.close()
    kept = segment_names(raw, swift)
    assert len(kept) == 4 and kept == sorted(json.loads(raw.get_object(
        swift.container, "big", query_string="multipart-manifest=get")[1])[i]["name"]
        .split("/", 2)[2] for i in range(4))


def test_a_large_version_overwritten_unseen_loses_its_segments(make_driver, raw):
    """As when another writer's check of the old version came before this one's commit."""
    swift = make_driver(segment_grace_seconds=3600)
    swift.put_object("big", pattern(LARGE))
    raw.put_object(swift.container, "big", b"plain")  # no tombstone for the SLO it replaced
    swift.close()
    assert segment_names(raw, swift) == []


def test_a_large_version_moved_away_then_overwritten_keeps_its_segments(make_driver, raw):
    swift = make_driver(segment_grace_seconds=3600)
    data = pattern(LARGE)
    swift.put_object("big", data)
    other = make_driver(container=swift.container)  # another process, same container
    other.move_object("big", "moved")
    raw.put_object(swift.container, "big", b"plain")
    swift.close()
    assert other.get_object("moved") == data
    assert len(segment_names(raw, swift)) == 4


def test_get_of_a_large_object_missing_a_segment_is_backend_unavailable(swift, raw):
    swift.put_object("big", pattern(LARGE))
    raw.delete_object(swift.container, segment_names(raw, swift)[0])
    with pytest.raises(BackendUnavailable):
        swift.get_object("big")


def test_get_of_a_large_object_deleted_while_swift_answers_409_is_not_found(swift, raw,
                                                                           monkeypatch):
    swift.put_object("big", pattern(LARGE))
    real_get = Connection.get_object

    def get_then_vanish(conn, container, name, *args, **kwargs):
        if name == "big":
            raw.delete_object(container, name)
            raise ClientException("segment gone", http_status=409)
        return real_get(conn, container, name, *args, **kwargs)

    monkeypatch.setattr(Connection, "get_object", get_then_vanish)
    with pytest.raises(NotFound):
        swift.get_object("big")


# -- what the service's log says about Swift ---------------------------------------


#: A log record's first line: every other line is a traceback or a message torn apart.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+: ")


def _swift_server(swift_stack, tmp_path: Path, **storage) -> GroupServer:
    """blobsvc on the session's Swift, two workers, access log off (only the service's own lines)."""
    cfg = swift_config(swift_stack, workers=2, storage={"timeout": 2.0, "retries": 1, **storage})
    return GroupServer(tmp_path / "blobsvc", cfg)


def test_swiftclient_logs_no_request_lines_at_start_or_per_request(swift_stack, tmp_path):
    server = _swift_server(swift_stack, tmp_path)
    try:
        server.start()  # a new container: the HEAD before creating it answers 404
        assert requests.put(server.url + "/v1/objects/new/dir/obj", data=b"x", timeout=10).status_code == 201
        assert requests.get(server.url + "/v1/objects/missing", timeout=10).status_code == 404
    finally:
        server.stop()
    log = server.stderr()
    assert "REQ: curl" not in log, log
    assert " swiftclient: " not in log, log


def test_swift_down_at_start_is_one_log_line(swift_stack, tmp_path):
    swift_stack.stop_proxy()
    try:
        server = _swift_server(swift_stack, tmp_path)
        try:
            server.start()
            assert requests.get(server.url + "/readyz", timeout=10).status_code == 503
        finally:
            server.stop()
    finally:
        swift_stack.start_proxy()
    lines = server.stderr().splitlines()
    # Supervisor and both workers each find Swift down; /readyz answers are the app's own.
    warnings = [line for line in lines if " INFO " not in line and "/readyz" not in line]
    assert "Traceback" not in server.stderr(), server.stderr()
    assert all(LOG_LINE.match(line) for line in lines), lines
    assert len(warnings) == 1, warnings
    assert swift_stack.auth_url in warnings[0]  # says where it looked


def test_swift_down_during_requests_and_at_stop_logs_one_line_per_failure(swift_stack, tmp_path):
    server = _swift_server(swift_stack, tmp_path, segment_grace_seconds=3600)
    server.start()
    try:
        for body in (b"a", pattern(LARGE), pattern(LARGE, 1)):  # the overwrite leaves a tombstone
            assert requests.put(server.url + "/v1/objects/big", data=body, timeout=30).status_code == 201
        before = len(server.stderr().splitlines())
        swift_stack.stop_proxy()
        try:
            assert requests.get(server.url + "/v1/objects/big", timeout=30).status_code == 503
            code = server.stop()
        finally:
            swift_stack.start_proxy()
    finally:
        server.stop()
    lines = server.stderr().splitlines()[before:]
    about_swift = [line for line in lines if "Swift" in line or "swift" in line]
    assert code == 0
    assert "Traceback" not in "\n".join(lines), "\n".join(lines)
    assert all(LOG_LINE.match(line) for line in lines), "\n".join(lines)
    assert len([line for line in about_swift if "GET /v1/objects/big" in line]) == 1, about_swift
    assert len(about_swift) < 10, "\n".join(about_swift)


def test_a_plain_put_takes_its_md5_from_swift_and_hashes_nothing_itself(swift):
    data = pattern(SEGMENT)
    upload = Upload(data, expected_size=len(data))
    info = swift.put_object("plain", upload)
    assert info.etag == upload.known_md5_hex == md5_hex(data)
    assert swift.stat_object("plain").etag == md5_hex(data)


def test_a_plain_put_that_loses_to_a_newer_version_answers_with_that_version(swift, monkeypatch):
    # Swift keeps the version with the newest timestamp and answers an older
    # write 202 without an ETag (a racing write from another instance). The
    # race is staged: the write goes through, a newer one lands, and Swift's
    # answer is the 202 it gives a loser. blobsvc hashed nothing, so it
    # reports the version Swift kept and leaves the upload's MD5 unknown.
    real_put = Connection.put_object

    def lose_the_race(conn, container, name, contents, **kwargs):
        response = kwargs.pop("response_dict")
        real_put(conn, container, name, contents, **kwargs)
        real_put(conn, container, name, b"newer")
        response.update(status=202, headers={})
        return ""

    monkeypatch.setattr(Connection, "put_object", lose_the_race)
    upload = Upload(b"older bytes", expected_size=11)
    info = swift.put_object("raced", upload)
    monkeypatch.undo()
    assert (info.etag, info.size) == (md5_hex(b"newer"), 5)
    assert upload.known_md5_hex is None
    assert swift.get_object("raced") == b"newer"


def test_a_small_object_swift_cuts_short_is_an_error_before_any_byte(swift, monkeypatch):
    # Swift stopping mid-body: for an object that fits in one read the
    # client gets a 503 (BackendUnavailable) rather than a status line and
    # a connection cut after part of the body.
    data = pattern(200_000)
    swift.put_object("small", data)
    real_get = SwiftDriver._get

    def cut_short(self, path, headers):
        got_headers, body, close = real_get(self, path, headers)

        def broken():
            yield next(iter(body))[:131_072]
            raise ClientException("proxy gone", http_status=None)

        return got_headers, broken(), close

    monkeypatch.setattr(SwiftDriver, "_get", cut_short)
    with pytest.raises(BackendUnavailable):
        swift.open_object("small")
    monkeypatch.undo()
    assert swift.get_object("small") == data  # and the connection went back to the pool whole


def test_a_segment_swift_refuses_after_its_body_is_reported_with_swifts_status(swift, raw,
                                                                                monkeypatch):
    # swiftclient retries a 5xx, but a streamed segment cannot be sent again:
    # the error must carry Swift's answer, not read as a lost connection.
    real_put = swiftclient.client.put_object

    def refuse_second_segment(url, token, container, name, contents=None, *args,
                              response_dict=None, **kwargs):
        if name.endswith("/00000001"):
            for _ in contents:  # the proxy reads the body, then finds no quorum
                pass
            if response_dict is not None:
                response_dict.update(status=503, reason="Service Unavailable")
            raise ClientException("Object PUT failed", http_status=503)
        return real_put(url, token, container, name, contents, *args,
                        response_dict=response_dict, **kwargs)

    monkeypatch.setattr(swiftclient.client, "put_object", refuse_second_segment)
    with pytest.raises(BackendUnavailable) as refused:
        swift.put_object("big", Upload(iter([pattern(LARGE)]), expected_size=LARGE))
    assert "HTTP 503" in refused.value.message
    monkeypatch.undo()
    assert segment_names(raw, swift) == []
    with pytest.raises(NotFound):
        swift.stat_object("big")

"""The Swift driver's tombstones and segment sweeper, alone: a fake clock, an in-memory Swift.

The real-Swift tests (tests/test_swift_driver.py) show that segments go
in the end; these show *when*, and what a sweep does when Swift fails under
it, which a real Swift cannot be made to do on cue. Each test drives
``Retirement.sweep`` by hand (no background thread) with a clock it moves,
and builds versions with the driver's own ``Uploader`` and ``Mover`` on a
:class:`FakeSwift`: the few swiftclient ``Connection`` calls they make,
answered from a dict.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote as url_unquote

import pytest
from requests.exceptions import ConnectionError as RequestsConnectionError
from swiftclient.client import ClientException

from blobsvc.storage import Upload
from blobsvc.storage.errors import BackendUnavailable
from blobsvc.storage.swift.claims import Claims
from blobsvc.storage.swift.client import ContainerClient
from blobsvc.storage.swift.layout import SLO_DELETE, SLO_GET, SLO_PUT
from blobsvc.storage.swift.moves import Mover
from blobsvc.storage.swift.retire import RETRY_SECONDS, Retirement
from blobsvc.storage.swift.upload import Uploader

GRACE = 60.0
SEGMENT = 4  # bytes: ten bytes make a large object of three segments
SEGMENTS = ".blobsvc/segments/"
TOMBSTONES = ".blobsvc/replaced/"


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# -- an in-memory Swift --------------------------------------------------------------


@dataclass
class FakeObject:
    data: bytes
    timestamp: str
    content_type: str
    #: For a manifest (SLO): its entries as ``multipart-manifest=get`` returns them.
    entries: list[dict[str, Any]] | None = None

    @property
    def manifest(self) -> bytes:
        return json.dumps(self.entries).encode()

    @property
    def size(self) -> int:
        return len(self.data) if self.entries is None else sum(e["bytes"] for e in self.entries)

    @property
    def etag(self) -> str:
        if self.entries is None:
            return md5_hex(self.data)
        return md5_hex("".join(e["hash"] for e in self.entries).encode())

    def headers(self) -> dict[str, str]:
        headers = {"x-timestamp": self.timestamp, "content-length": str(self.size),
                   "content-type": self.content_type, "etag": self.etag,
                   "last-modified": formatdate(usegmt=True)}
        if self.entries is not None:
            headers.update({"x-static-large-object": "True", "etag": f'"{self.etag}"',
                            "x-manifest-etag": md5_hex(self.manifest)})
        return headers


@dataclass
class FakeSwift:
    """One container, answering the swiftclient ``Connection`` calls the driver's
    upload, move and retirement code makes. ``down`` fails every call as a refused
    connection would; ``failing`` fails only the calls it names."""

    container: str = "c"
    objects: dict[str, FakeObject] = field(default_factory=dict)
    down: bool = False
    failing: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _timestamps: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- what a test looks at

    def names(self, prefix: str = "") -> list[str]:
        return sorted(name for name in self.objects if name.startswith(prefix))

    def segments_of(self, name: str) -> list[str]:
        entries = self.objects[name].entries or []
        return [entry["name"].split("/", 2)[2] for entry in entries]

    def overwrite_unseen(self, name: str, data: bytes) -> None:
        """Another writer's PUT that tombstoned nothing (it took an older version for the one it replaced)."""
        with self._lock:
            self._store(name, FakeObject(data, self._timestamp(), "application/octet-stream"))

    # -- the Connection calls

    def head_object(self, container: str, name: str, **_: Any) -> dict[str, str]:
        self._check("head_object")
        with self._lock:
            return self._get(container, name).headers()

    def get_object(self, container: str, name: str, query_string: str | None = None,
                   **_: Any) -> tuple[dict[str, str], bytes]:
        self._check("get_object")
        with self._lock:
            obj = self._get(container, name)
            if query_string == SLO_GET and obj.entries is not None:
                return {**obj.headers(), "etag": md5_hex(obj.manifest)}, obj.manifest
            return obj.headers(), self._bytes(obj)

    def put_object(self, container: str, name: str, contents: Any = None,
                   headers: dict[str, str] | None = None, query_string: str | None = None,
                   content_type: str | None = None, response_dict: dict[str, Any] | None = None,
                   **_: Any) -> str:
        self._check("put_object")
        data = _read(contents)  # a failing body stores nothing, as in Swift
        with self._lock:
            self._container(container)
            content_type = content_type or "application/octet-stream"
            copy_from = (headers or {}).get("X-Copy-From")
            if copy_from is not None:
                source = self._get(container, url_unquote(copy_from).split("/", 2)[2])
                if query_string == SLO_GET and source.entries is not None:
                    new = FakeObject(b"", self._timestamp(), source.content_type, list(source.entries))
                else:
                    new = FakeObject(self._bytes(source), self._timestamp(), source.content_type)
            elif query_string == SLO_PUT:
                new = FakeObject(b"", self._timestamp(), content_type, self._entries(json.loads(data)))
            else:
                new = FakeObject(data, self._timestamp(), content_type)
            self._store(name, new)
            if response_dict is not None:
                response_dict.update(status=201, headers={"last-modified": formatdate(usegmt=True)})
            return new.etag

    def delete_object(self, container: str, name: str, query_string: str | None = None,
                      **_: Any) -> None:
        self._check("delete_object")
        with self._lock:
            obj = self._get(container, name)
            if query_string == SLO_DELETE and obj.entries is not None:
                for segment in self.segments_of(name):
                    self.objects.pop(segment, None)
            del self.objects[name]

    def get_container(self, container: str, prefix: str | None = None, delimiter: str | None = None,
                      marker: str | None = None, limit: int | None = None,
                      full_listing: bool = False, **_: Any) -> tuple[dict[str, str], list[dict[str, Any]]]:
        self._check("get_container")
        with self._lock:
            self._container(container)
            listing: list[dict[str, Any]] = []
            for name in self.names(prefix or ""):
                if marker is not None and name <= marker:
                    continue
                rest = name[len(prefix or ""):]
                if delimiter and delimiter in rest:  # a "directory": one entry for all below
                    subdir = name[:len(name) - len(rest)] + rest.split(delimiter, 1)[0] + delimiter
                    if not listing or listing[-1].get("subdir") != subdir:
                        listing.append({"subdir": subdir})
                    continue
                obj = self.objects[name]
                entry = {"name": name, "bytes": obj.size, "content_type": obj.content_type,
                         "hash": md5_hex(obj.manifest) if obj.entries is not None else obj.etag}
                if obj.entries is not None:
                    entry["slo_etag"] = obj.etag
                listing.append(entry)
            return {}, listing if full_listing or limit is None else listing[:limit]

    # -- inside

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if self.down or name in self.failing:
            raise RequestsConnectionError(f"{name}: connection refused")

    def _container(self, container: str) -> None:
        if container != self.container:
            raise ClientException("no such container", http_status=404)

    def _get(self, container: str, name: str) -> FakeObject:
        self._container(container)
        if name not in self.objects:
            raise ClientException(f"no object {name}", http_status=404)
        return self.objects[name]

    def _bytes(self, obj: FakeObject) -> bytes:
        if obj.entries is None:
            return obj.data
        return b"".join(self._bytes(self.objects[e["name"].split("/", 2)[2]]) for e in obj.entries)

    def _entries(self, put: list[dict[str, Any]]) -> list[dict[str, Any]]:
        entries = []
        for entry in put:
            segment = self.objects.get(entry["path"].split("/", 2)[2])
            if segment is None:
                raise ClientException("a segment of the manifest is missing", http_status=400)
            entries.append({"name": entry["path"], "hash": entry["etag"], "bytes": entry["size_bytes"],
                            **({"sub_slo": True} if segment.entries is not None else {})})
        return entries

    def _store(self, name: str, obj: FakeObject) -> None:
        self.objects[name] = obj

    def _timestamp(self) -> str:
        return f"{next(self._timestamps):016d}.00000"


def _read(contents: Any) -> bytes:
    if contents is None:
        return b""
    if isinstance(contents, bytes):
        return contents
    if isinstance(contents, str):
        return contents.encode()
    return b"".join(contents)


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- the parts under test, on the fake -------------------------------------------------


@dataclass
class Rig:
    """The retirement and the writers that feed it, on one fake Swift and clock."""

    swift: FakeSwift
    clock: FakeClock
    retirement: Retirement
    uploads: Uploader
    mover: Mover

    def put(self, path: str, data: bytes) -> None:
        self.uploads.put(path, Upload(data))

    def sweep(self) -> None:
        self.retirement.sweep()


@pytest.fixture
def parts() -> Rig:
    swift, clock = FakeSwift(), FakeClock()
    client = ContainerClient(swift.container, lambda role: swift)
    retirement = Retirement(client, GRACE, clock=clock, background=False)
    return Rig(swift, clock, retirement, Uploader(client, retirement, SEGMENT),
               Mover(client, retirement, Claims()))


def large(seed: str) -> bytes:
    return (seed * 10).encode()[:10]  # three segments


# -- replaced versions: kept for the grace period, then deleted -----------------------


@pytest.mark.parametrize("change", ["overwrite", "delete"])
def test_replaced_large_version_keeps_its_segments_for_the_grace_period_then_loses_them(parts, change):
    parts.put("big", large("old"))
    old = parts.swift.segments_of("big")
    if change == "overwrite":
        parts.put("big", b"new")
    else:
        parts.mover.delete("big", None)
    [tombstone] = parts.swift.names(TOMBSTONES)
    parts.clock.advance(GRACE - 0.5)
    parts.sweep()
    assert set(old) <= set(parts.swift.names(SEGMENTS)), "gone before the grace period was over"
    assert parts.swift.names(TOMBSTONES) == [tombstone]
    parts.clock.advance(0.5)
    parts.sweep()
    assert not set(old) & set(parts.swift.names(SEGMENTS))
    assert parts.swift.names(TOMBSTONES) == []
    assert parts.retirement.pending() == ([], [])


def test_close_retires_everything_pending_whatever_its_age(parts):
    parts.put("big", large("old"))
    parts.put("big", large("new"))
    parts.retirement.close()
    assert parts.swift.names(TOMBSTONES) == []
    assert parts.swift.names(SEGMENTS) == parts.swift.segments_of("big")


# -- what is still referenced is kept ---------------------------------------------------


def test_a_replaced_version_still_current_keeps_its_segments_and_its_tombstone_goes(parts):
    # As when a write that started later won in Swift: the old version is still there.
    parts.put("big", large("old"))
    old = parts.swift.segments_of("big")
    replaced = parts.retirement.prepare_replace("big", None, parts.swift)
    assert parts.swift.names(TOMBSTONES)
    parts.retirement.settle("big", replaced)  # "big" was never replaced after all
    assert parts.swift.names(TOMBSTONES) == []
    assert parts.swift.segments_of("big") == old
    assert set(old) <= set(parts.swift.names(SEGMENTS))
    assert parts.retirement.pending()[0] == []


def test_a_new_version_listing_the_same_segments_keeps_them(parts):
    # A retried move: the manifest copied over the name lists the very same segments.
    parts.put("big", large("old"))
    old = parts.swift.segments_of("big")
    parts.swift.put_object("c", "copy", headers={"X-Copy-From": "/c/big"}, query_string=SLO_GET)
    replaced = parts.retirement.prepare_replace("big", None, parts.swift)
    parts.swift.put_object("c", "big", headers={"X-Copy-From": "/c/copy"}, query_string=SLO_GET)
    parts.retirement.settle("big", replaced)
    parts.clock.advance(GRACE)
    parts.sweep()
    assert set(old) <= set(parts.swift.names(SEGMENTS))
    assert parts.swift.names(TOMBSTONES) == []


def test_an_upload_a_pending_tombstone_still_lists_is_not_collected(parts):
    # Another instance replaced our version properly: its tombstone owns the
    # segments now, and deletes them when its own grace period is over.
    parts.put("big", large("ours"))
    ours = parts.swift.segments_of("big")
    parts.swift.put_object("c", TOMBSTONES + "big/theirs", headers={"X-Copy-From": "/c/big"},
                           query_string=SLO_GET)
    parts.swift.overwrite_unseen("big", b"theirs")
    parts.clock.advance(GRACE)
    parts.sweep()
    assert set(ours) <= set(parts.swift.names(SEGMENTS))
    assert parts.swift.names(TOMBSTONES) == [TOMBSTONES + "big/theirs"]
    assert parts.retirement.pending() == ([], [])  # settled: not ours to delete


def test_an_upload_moved_away_before_being_overwritten_is_not_collected(parts):
    parts.put("big", large("ours"))
    ours = parts.swift.segments_of("big")
    parts.mover.move("big", "moved", None)
    parts.swift.overwrite_unseen("big", b"plain")
    parts.clock.advance(GRACE)
    parts.sweep()
    assert parts.swift.segments_of("moved") == ours
    assert set(ours) <= set(parts.swift.names(SEGMENTS))


# -- orphans of racing uploads ----------------------------------------------------------


def test_segments_orphaned_by_a_racing_upload_are_collected_after_the_grace_period(parts):
    # The other writer took the version before ours for the one it replaced:
    # ours was overwritten, yet tombstoned by nobody.
    parts.put("big", large("ours"))
    ours = parts.swift.segments_of("big")
    parts.swift.overwrite_unseen("big", b"theirs")
    parts.clock.advance(GRACE - 0.5)
    parts.sweep()
    assert set(ours) <= set(parts.swift.names(SEGMENTS)), "a reader may still stream them"
    parts.clock.advance(0.5)
    parts.sweep()
    assert parts.swift.names(SEGMENTS) == []
    assert parts.retirement.pending() == ([], [])


def test_the_current_version_is_never_collected(parts):
    parts.put("big", large("ours"))
    parts.clock.advance(GRACE)
    parts.sweep()
    assert parts.swift.names(SEGMENTS) == parts.swift.segments_of("big")
    assert parts.retirement.pending() == ([], [])


# -- a sweep Swift fails under keeps its work ---------------------------------------------


def test_due_tombstones_stay_queued_while_swift_is_down(parts):
    parts.put("big", large("old"))
    old = parts.swift.segments_of("big")
    parts.put("big", b"new")
    parts.clock.advance(GRACE)
    parts.swift.down = True
    parts.sweep()  # one warning, no exception: the next round tries again
    parts.swift.down = False
    assert parts.retirement.pending()[0] == parts.swift.names(TOMBSTONES)
    parts.clock.advance(RETRY_SECONDS)
    parts.sweep()
    assert parts.swift.names(TOMBSTONES) == []
    assert not set(old) & set(parts.swift.names(SEGMENTS))


def test_watched_uploads_stay_queued_while_swift_is_down(parts):
    parts.put("big", large("ours"))
    parts.swift.overwrite_unseen("big", b"theirs")
    parts.clock.advance(GRACE)
    parts.swift.down = True
    parts.sweep()  # the HEAD of "big" fails: unsure, so nothing is deleted
    parts.swift.down = False
    assert parts.swift.names(SEGMENTS)
    assert parts.retirement.pending()[1], "the orphan was forgotten"
    parts.clock.advance(RETRY_SECONDS)
    parts.sweep()
    assert parts.swift.names(SEGMENTS) == []


def test_watched_uploads_stay_queued_when_the_container_listing_fails(parts):
    parts.put("big", large("ours"))
    parts.swift.overwrite_unseen("big", b"theirs")
    parts.clock.advance(GRACE)
    parts.swift.failing = {"get_container"}
    with pytest.raises(BackendUnavailable):  # the sweeper thread logs it, one line
        parts.sweep()
    parts.swift.failing = set()
    assert parts.retirement.pending()[1], "the orphan was forgotten"
    parts.clock.advance(RETRY_SECONDS)
    parts.sweep()
    assert parts.swift.names(SEGMENTS) == []


def test_orphaned_segments_whose_deletion_fails_are_tried_again(parts):
    parts.put("big", large("ours"))
    parts.swift.overwrite_unseen("big", b"theirs")
    parts.clock.advance(GRACE)
    parts.swift.failing = {"delete_object"}
    parts.sweep()
    parts.swift.failing = set()
    assert parts.swift.names(SEGMENTS)
    parts.clock.advance(RETRY_SECONDS)
    parts.sweep()
    assert parts.swift.names(SEGMENTS) == []


def test_work_kept_by_a_failed_sweep_waits_before_it_is_tried_again(parts):
    # While Swift is down, a round every few seconds must not mean a warning
    # (and a request) every few seconds.
    parts.put("big", large("old"))
    parts.put("big", b"new")
    parts.clock.advance(GRACE)
    parts.swift.down = True
    parts.sweep()
    parts.swift.calls.clear()
    parts.clock.advance(RETRY_SECONDS - 0.5)
    parts.sweep()
    assert parts.swift.calls == []
    parts.clock.advance(0.5)
    parts.sweep()
    assert parts.swift.calls

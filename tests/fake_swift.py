"""An in-memory Swift and a clock that moves on cue, for the Swift driver's
retirement and collection logic: the few swiftclient ``Connection`` calls
the driver's upload, move, retirement and collection code makes, answered
from a dict, with the failures a real Swift cannot be made to show on cue."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate
from typing import Any, Callable
from urllib.parse import unquote as url_unquote

from requests.exceptions import ConnectionError as RequestsConnectionError
from swiftclient.client import ClientException

from blobsvc.storage.swift.layout import SLO_DELETE, SLO_GET, SLO_PUT


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@dataclass
class FakeObject:
    data: bytes
    timestamp: str
    content_type: str
    #: For a manifest (SLO): its entries as ``multipart-manifest=get`` returns them.
    entries: list[dict[str, Any]] | None = None
    #: User metadata, by lower-case header name (``x-object-meta-...``).
    meta: dict[str, str] = field(default_factory=dict)
    #: Wall-clock seconds of the last PUT or POST: a listing's ``last_modified``.
    modified: float = 0.0

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
                   "last-modified": formatdate(usegmt=True), "accept-ranges": "bytes",
                   **self.meta}
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
    #: Names stored but not listed yet: a container listing lagging behind writes.
    unlisted: set[str] = field(default_factory=set)
    #: The prefix of every listing asked for (None: the whole container).
    listed_prefixes: list[str | None] = field(default_factory=list)
    #: The wall clock that stamps each write (a listing's ``last_modified``).
    wall: Callable[[], float] = time.time
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
            headers = headers or {}
            copy_from = headers.get("X-Copy-From")
            meta = _meta(headers)
            if copy_from is not None:
                source = self._get(container, url_unquote(copy_from).split("/", 2)[2])
                if headers.get("X-Fresh-Metadata") != "true":
                    meta = {**source.meta, **meta}
                if query_string == SLO_GET and source.entries is not None:
                    new = FakeObject(b"", self._timestamp(), source.content_type,
                                     list(source.entries), meta)
                else:
                    new = FakeObject(self._bytes(source), self._timestamp(), source.content_type,
                                     meta=meta)
            elif query_string == SLO_PUT:
                new = FakeObject(b"", self._timestamp(), content_type,
                                 self._entries(json.loads(data)), meta)
            else:
                new = FakeObject(data, self._timestamp(), content_type, meta=meta)
            self._store(name, new)
            if response_dict is not None:
                response_dict.update(status=201, headers={"last-modified": formatdate(usegmt=True),
                                                          "etag": f'"{new.etag}"'})
            return new.etag

    def post_object(self, container: str, name: str, headers: dict[str, str], **_: Any) -> None:
        """Replace the user metadata, as Swift's POST does."""
        self._check("post_object")
        with self._lock:
            obj = self._get(container, name)
            obj.meta = _meta(headers)
            obj.modified = self.wall()

    def delete_object(self, container: str, name: str, query_string: str | None = None,
                      **_: Any) -> None:
        self._check("delete_object")
        with self._lock:
            obj = self._get(container, name)
            if query_string == SLO_DELETE:
                if obj.entries is None:
                    return  # Swift answers 200 and leaves a plain object in place
                for segment in self.segments_of(name):
                    self.objects.pop(segment, None)
            del self.objects[name]

    def get_container(self, container: str, prefix: str | None = None, delimiter: str | None = None,
                      marker: str | None = None, limit: int | None = None,
                      full_listing: bool = False, **_: Any) -> tuple[dict[str, str], list[dict[str, Any]]]:
        self._check("get_container")
        self.listed_prefixes.append(prefix)
        with self._lock:
            self._container(container)
            listing: list[dict[str, Any]] = []
            for name in self.names(prefix or ""):
                if (marker is not None and name <= marker) or name in self.unlisted:
                    continue
                rest = name[len(prefix or ""):]
                if delimiter and delimiter in rest:  # a "directory": one entry for all below
                    subdir = name[:len(name) - len(rest)] + rest.split(delimiter, 1)[0] + delimiter
                    if not listing or listing[-1].get("subdir") != subdir:
                        listing.append({"subdir": subdir})
                    continue
                obj = self.objects[name]
                entry = {"name": name, "bytes": obj.size, "content_type": obj.content_type,
                         "hash": md5_hex(obj.manifest) if obj.entries is not None else obj.etag,
                         "last_modified": datetime.fromtimestamp(obj.modified, timezone.utc)
                         .replace(tzinfo=None).isoformat()}
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
        obj.modified = self.wall()
        self.objects[name] = obj

    def _timestamp(self) -> str:
        """Swift's X-Timestamp: the wall clock, made unique and increasing."""
        return f"{self.wall() + next(self._timestamps) * 1e-5:016.5f}"


def _meta(headers: dict[str, str]) -> dict[str, str]:
    """The user metadata among request headers, as a HEAD answers it (decoded, lower case)."""
    return {name.lower(): url_unquote(value) for name, value in headers.items()
            if name.lower().startswith("x-object-meta-")}


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

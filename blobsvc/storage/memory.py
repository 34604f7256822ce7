"""A driver that keeps everything in process memory: tests, throwaway use.

All state sits behind one lock, so every operation is atomic with respect
to the others; an upload is collected outside the lock and committed under
it, so a slow client never blocks readers. Expiring objects are also kept
in a heap by expiry and removed by the first operation after their time,
at no cost per object that never expires.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import heapq
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar, Iterator

from blobsvc.storage import paths
from blobsvc.storage.contract import (
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectMeta,
    ObjectStream,
    Precondition,
    StorageDriver,
    Upload,
    check_alive,
    check_total_size,
)
from blobsvc.storage.errors import Conflict, MissingChunks, NotFound
from blobsvc.storage.metadata import is_expired
from blobsvc.storage.settings import DriverSettings

#: Size of the slices a stream yields; memory is already resident, so this
#: only bounds the size of each write to the socket.
STREAM_CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class MemorySettings(DriverSettings):
    """The memory driver has no settings: any key is refused."""


class MemoryDriver(StorageDriver):
    name = "memory"
    settings_class: ClassVar[type[DriverSettings]] = MemorySettings

    def __init__(self, settings: MemorySettings) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, tuple[bytes, ObjectInfo]] = {}
        # prefix -> number of objects below it; a prefix with a count is a
        # directory, and it vanishes when its count drops to zero.
        self._dirs: Counter[str] = Counter()
        # (expires_at, path) of every object written with an expiry; an
        # entry whose object changed since is skipped when it comes due.
        self._expiring: list[tuple[int, str]] = []

    # -- reads ---------------------------------------------------------------

    def _list(self, path: str, marker: str | None, limit: int | None,
              prefix: str | None) -> list[ObjectInfo]:
        with self._locked():
            below = self._below(path)
            names: dict[str, ObjectInfo] = {}
            for key, (_, info) in self._objects.items():
                if not key.startswith(below):
                    continue
                name, _, rest = key[len(below):].partition("/")
                if marker is not None and name <= marker:
                    continue
                if prefix is not None and not name.startswith(prefix):
                    continue
                if rest:
                    names.setdefault(name, ObjectInfo.directory(below + name))
                else:
                    names[name] = info.listed()
        entries = [names[name] for name in sorted(names)]
        return entries if limit is None else entries[:limit]

    def _list_recursive(self, path: str, marker: str | None, limit: int | None,
                        prefix: str | None) -> list[ObjectInfo]:
        with self._locked():
            start = self._below(path) + (prefix or "")
            keys = sorted(key for key in self._objects
                          if key.startswith(start) and (marker is None or key > marker))
            if limit is not None:
                keys = keys[:limit]
            return [self._objects[key][1].listed() for key in keys]

    def _below(self, path: str) -> str:
        """The key prefix of ``path``'s entries; NotFound for a directory that is not."""
        if path and self._dirs[path] == 0:
            raise NotFound(f"no directory at {path}/", path)
        return f"{path}/" if path else ""

    def _stat(self, path: str) -> ObjectInfo:
        with self._locked():
            return self._get(path)[1]

    def _open(self, path: str, offset: int,
              length: int | None) -> tuple[ObjectInfo, ObjectStream]:
        with self._locked():
            data, info = self._get(path)
        end = len(data) if length is None else min(len(data), offset + length)
        view = memoryview(data)

        def chunks() -> Iterator[bytes]:
            for start in range(offset, end, STREAM_CHUNK_SIZE):
                yield bytes(view[start:min(end, start + STREAM_CHUNK_SIZE)])

        return info, ObjectStream(chunks())

    def _get(self, path: str) -> tuple[bytes, ObjectInfo]:
        try:
            return self._objects[path]
        except KeyError:
            raise NotFound(f"no object at {path}", path) from None

    # -- writes --------------------------------------------------------------

    def _put(self, path: str, upload: Upload) -> ObjectInfo:
        data = b"".join(upload)
        with self._locked():
            upload.check_precondition(self._objects.get(path, (None, None))[1])
            return self._commit(path, data, upload.md5_hex, upload.meta)

    def _update(self, path: str, meta: ObjectMeta, precondition: Precondition) -> ObjectInfo:
        with self._locked():
            data, info = self._get(path)
            precondition(info)
            updated = info.with_meta(meta)
            self._insert(path, data, updated)
            return updated

    def _delete(self, path: str, precondition: Precondition | None) -> None:
        with self._locked():
            if path not in self._objects and self._dirs[path]:
                raise Conflict(f"{path} is a non-empty directory", path)
            current = self._get(path)[1]
            if precondition is not None:
                precondition(current)
            self._remove(path)

    def _move(self, src: str, dst: str, precondition: Precondition | None) -> ObjectInfo:
        with self._locked():
            if src not in self._objects and self._dirs[src]:
                raise Conflict(f"{src} is a directory", src)
            data, info = self._get(src)
            check_alive(info)
            self._check(precondition, dst)
            self._check_no_clash(dst)
            self._remove(src)
            return self._commit(dst, data, info.etag, ObjectMeta.of(info), info.ctime)

    def _copy(self, src: str, dst: str, precondition: Precondition | None,
              meta: ObjectMeta | None) -> ObjectInfo:
        with self._locked():
            if src not in self._objects and self._dirs[src]:
                raise Conflict(f"{src} is a directory", src)
            data, info = self._get(src)
            check_alive(info)
            self._check(precondition, dst)
            if meta is None:
                meta = ObjectMeta.of(info).without_expiry()
            elif meta.content_type is None:
                meta = dataclasses.replace(meta, content_type=info.content_type)
            return self._commit(dst, data, info.etag, meta)

    def _cat(self, path: str, chunks: list[str], max_size: int | None,
             precondition: Precondition | None, meta: ObjectMeta) -> ObjectInfo:
        with self._locked():
            missing = [chunk for chunk in chunks if chunk not in self._objects
                       or is_expired(self._objects[chunk][1])]
            if missing:
                raise MissingChunks(missing)
            # Checked and joined under one lock: no chunk can grow in between.
            check_total_size((len(self._objects[chunk][0]) for chunk in chunks), max_size, path)
            self._check(precondition, path)
            data = b"".join(self._objects[chunk][0] for chunk in chunks)
            removed = {chunk: self._objects[chunk] for chunk in chunks}
            for chunk in removed:
                self._remove(chunk)
            try:
                return self._commit(path, data, hashlib.md5(data).hexdigest(), meta)
            except Conflict:
                for chunk, (chunk_data, info) in removed.items():
                    self._insert(chunk, chunk_data, info)
                raise

    # -- state changes, always under the lock --------------------------------

    def _check(self, precondition: Precondition | None, path: str) -> None:
        """Judge the version at ``path`` (None if absent) before a write replaces it."""
        if precondition is not None:
            precondition(self._objects.get(path, (None, None))[1])

    def _commit(self, path: str, data: bytes, etag: str | None,
                meta: ObjectMeta, ctime: float | None = None) -> ObjectInfo:
        self._check_no_clash(path)
        info = ObjectInfo(path=path, name=paths.basename(path), isdir=False,
                          size=len(data), ctime=ctime or time.time(), etag=etag,
                          content_type=meta.content_type or DEFAULT_CONTENT_TYPE,
                          metadata=dict(meta.metadata), headers=dict(meta.headers),
                          expires_at=meta.expires_at)
        self._insert(path, data, info)
        return info

    def _insert(self, path: str, data: bytes, info: ObjectInfo) -> None:
        if path not in self._objects:
            for parent in _parents(path):
                self._dirs[parent] += 1
        self._objects[path] = (data, info)
        if info.expires_at is not None:
            heapq.heappush(self._expiring, (info.expires_at, path))

    # -- expiry ----------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The lock, with what expired removed first: an expired object's
        directory then vanishes at once, as a deleted one's does."""
        with self._lock:
            self._reap_due()
            yield

    def _reap_expired(self) -> int:
        with self._lock:
            return self._reap_due()

    def _reap_due(self) -> int:
        """Remove what is due in the heap (under the lock): objects that
        never expire are never looked at."""
        reaped = 0
        now = time.time()
        while self._expiring and self._expiring[0][0] <= now:
            expires_at, path = heapq.heappop(self._expiring)
            entry = self._objects.get(path)
            if entry is not None and entry[1].expires_at == expires_at:
                self._remove(path)
                reaped += 1
        return reaped

    def _remove(self, path: str) -> None:
        del self._objects[path]
        for parent in _parents(path):
            self._dirs[parent] -= 1
            if not self._dirs[parent]:
                del self._dirs[parent]

    def _check_no_clash(self, path: str) -> None:
        if self._dirs[path]:
            raise Conflict(f"{path} is a directory", path)
        for parent in _parents(path):
            if parent in self._objects:
                raise Conflict(f"{parent} is an object, not a directory", path)


def _parents(path: str) -> list[str]:
    """``a/b/c`` -> ``["a", "a/b"]``."""
    segments = path.split("/")[:-1]
    return ["/".join(segments[: i + 1]) for i in range(len(segments))]

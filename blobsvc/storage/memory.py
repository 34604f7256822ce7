"""A driver that keeps everything in process memory: tests, throwaway use.

All state sits behind one lock, so every operation is atomic with respect
to the others; an upload is collected outside the lock and committed under
it, so a slow client never blocks readers.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar, Iterator

from blobsvc.storage import paths
from blobsvc.storage.contract import (
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectStream,
    Precondition,
    StorageDriver,
    Upload,
    check_total_size,
)
from blobsvc.storage.errors import Conflict, MissingChunks, NotFound
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

    # -- reads ---------------------------------------------------------------

    def _list(self, path: str, marker: str | None, limit: int | None) -> list[ObjectInfo]:
        with self._lock:
            if path and self._dirs[path] == 0:
                raise NotFound(f"no directory at {path}/", path)
            prefix = f"{path}/" if path else ""
            names: dict[str, ObjectInfo] = {}
            for key, (_, info) in self._objects.items():
                if not key.startswith(prefix):
                    continue
                name, _, rest = key[len(prefix):].partition("/")
                if marker is not None and name <= marker:
                    continue
                if rest:
                    names.setdefault(name, ObjectInfo.directory(prefix + name))
                else:
                    names[name] = info
        entries = [names[name] for name in sorted(names)]
        return entries if limit is None else entries[:limit]

    def _stat(self, path: str) -> ObjectInfo:
        with self._lock:
            return self._get(path)[1]

    def _open(self, path: str, offset: int,
              length: int | None) -> tuple[ObjectInfo, ObjectStream]:
        with self._lock:
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
        with self._lock:
            upload.check_precondition(self._objects.get(path, (None, None))[1])
            return self._commit(path, data, upload.md5_hex, upload.content_type)

    def _delete(self, path: str, precondition: Precondition | None) -> None:
        with self._lock:
            if path not in self._objects and self._dirs[path]:
                raise Conflict(f"{path} is a non-empty directory", path)
            current = self._get(path)[1]
            if precondition is not None:
                precondition(current)
            self._remove(path)

    def _move(self, src: str, dst: str, precondition: Precondition | None) -> ObjectInfo:
        with self._lock:
            if src not in self._objects and self._dirs[src]:
                raise Conflict(f"{src} is a directory", src)
            data, info = self._get(src)
            self._check(precondition, dst)
            self._check_no_clash(dst)
            self._remove(src)
            return self._commit(dst, data, info.etag, info.content_type, info.ctime)

    def _cat(self, path: str, chunks: list[str], max_size: int | None,
             precondition: Precondition | None) -> ObjectInfo:
        with self._lock:
            missing = [chunk for chunk in chunks if chunk not in self._objects]
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
                return self._commit(path, data, hashlib.md5(data).hexdigest(), None)
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
                content_type: str | None, ctime: float | None = None) -> ObjectInfo:
        self._check_no_clash(path)
        info = ObjectInfo(path=path, name=paths.basename(path), isdir=False,
                          size=len(data), ctime=ctime or time.time(), etag=etag,
                          content_type=content_type or DEFAULT_CONTENT_TYPE)
        self._insert(path, data, info)
        return info

    def _insert(self, path: str, data: bytes, info: ObjectInfo) -> None:
        if path not in self._objects:
            for parent in _parents(path):
                self._dirs[parent] += 1
        self._objects[path] = (data, info)

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

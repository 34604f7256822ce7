"""The storage driver contract.

Every backend implements the underscored hooks of :class:`StorageDriver`;
the public methods around them validate paths, so no driver ever sees a
path that could escape its root or name the service's private data.

Contract, for every driver alike:

* A missing object raises :class:`~blobsvc.storage.errors.NotFound` from
  ``stat_object``, ``get_object_size``, ``get_object``, ``stream_object``,
  ``open_object``, ``delete_object`` and as the source of ``move_object``;
  ``cat_objects`` raises :class:`~blobsvc.storage.errors.MissingChunks`
  naming every missing chunk. Nothing returns ``(None, None)``.
* Size limits hold for every way an object is made: ``put_object`` through
  ``Upload.max_size``, ``cat_objects`` through its ``max_size`` (TooLarge,
  nothing changed). ``move_object`` never changes a size.
* Writes are atomic: ``put_object``, ``move_object`` and ``cat_objects``
  make the new object visible whole or not at all. A failed or aborted
  write leaves no trace and the previous version intact.
* A write replaces what is at its destination unless it carries a
  :data:`Precondition` (``Upload.precondition`` for ``put_object``, the
  ``precondition`` argument of ``move_object`` and ``cat_objects``). It is
  called once, with the destination's current version or None, under the
  same commit lock as the write, after the sources were found; when it
  raises PreconditionFailed nothing changes (a move's source and a cat's
  chunks stay). Swift checks it right before the commit, best effort.
* A "directory" is only a prefix that some object lives below; it vanishes
  with its last object. An object and a directory never share a name: a
  write that would make them clash raises ``Conflict``.
* Iterators returned by ``stream_object``/``open_object`` release their
  resources when exhausted or when ``close()`` is called early.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Union

from blobsvc.storage import paths
from blobsvc.storage.errors import (
    ChecksumMismatch,
    IncompleteBody,
    TooLarge,
)
from blobsvc.storage.hashing import StreamHasher

DEFAULT_CONTENT_TYPE = "application/octet-stream"

#: Marks a driver setting that has no default.
REQUIRED = object()


@dataclass(frozen=True)
class ObjectInfo:
    """What the API tells about an object or a directory."""

    path: str
    name: str
    isdir: bool
    size: int | None
    ctime: float | None
    etag: str | None = None
    content_type: str | None = None

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "name": self.name,
            "isdir": self.isdir,
            "size": self.size,
            "ctime": self.ctime,
            "etag": self.etag,
            "content_type": self.content_type,
        }

    @classmethod
    def directory(cls, path: str, ctime: float | None = None) -> ObjectInfo:
        return cls(path=path, name=paths.basename(path), isdir=True,
                   size=None, ctime=ctime)


#: Called under the driver's commit lock with the current version (or None)
#: right before a write or delete commits; raises PreconditionFailed to stop it.
Precondition = Callable[[Union[ObjectInfo, None]], None]


class Upload:
    """One object's incoming bytes: counted, hashed and checked as they pass.

    Drivers iterate over it and commit only after the iteration ended
    without an exception: the length and checksum checks run at the end of
    the stream, before the last ``StopIteration``, so a backend that streams
    (Swift) never receives the end of a body that is wrong.
    """

    def __init__(
        self,
        data: bytes | Iterable[bytes],
        *,
        content_type: str | None = None,
        expected_size: int | None = None,
        max_size: int | None = None,
        content_md5: bytes | None = None,
        sha256_hex: str | None = None,
        precondition: Precondition | None = None,
    ) -> None:
        in_memory = isinstance(data, (bytes, bytearray, memoryview))
        self._chunks = [data] if in_memory else data
        if in_memory and expected_size is None:
            expected_size = len(data)
        self.content_type = content_type or DEFAULT_CONTENT_TYPE
        self.expected_size = expected_size
        self.max_size = max_size
        self.expected_md5 = content_md5
        self.expected_sha256 = sha256_hex.lower() if sha256_hex else None
        self.precondition = precondition
        self.size = 0
        self._hasher = StreamHasher()
        self._md5: bytes | None = None
        self._sha256_hex: str | None = None
        self.complete = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._chunks:
                if not chunk:
                    continue
                self.size += len(chunk)
                self._check_limits()
                self._hasher.update(chunk)
                yield chunk
            self._md5, self._sha256_hex = self._hasher.finish()
        finally:
            self._hasher.abandon()  # a no-op once finished
        self._check_complete()
        self.complete = True

    def _check_limits(self) -> None:
        if self.max_size is not None and self.size > self.max_size:
            raise too_large(self.max_size)
        if self.expected_size is not None and self.size > self.expected_size:
            raise IncompleteBody("body longer than its Content-Length")

    def _check_complete(self) -> None:
        if self.expected_size is not None and self.size != self.expected_size:
            raise IncompleteBody(
                f"body ended after {self.size} of {self.expected_size} bytes"
            )
        if self.expected_md5 is not None and self._md5 != self.expected_md5:
            raise ChecksumMismatch("body does not match Content-MD5")
        if self.expected_sha256 is not None and self.sha256_hex != self.expected_sha256:
            raise ChecksumMismatch("body does not match X-Checksum-Sha256")

    @property
    def md5_hex(self) -> str:
        """Hex MD5 of the body; known once the iteration has ended."""
        assert self._md5 is not None, "the upload has not been read to its end"
        return self._md5.hex()

    @property
    def sha256_hex(self) -> str:
        assert self._sha256_hex is not None, "the upload has not been read to its end"
        return self._sha256_hex

    def check_precondition(self, current: ObjectInfo | None) -> None:
        if self.precondition is not None:
            self.precondition(current)


class ObjectStream:
    """An iterator over an object's bytes that always releases its source."""

    def __init__(self, chunks: Iterator[bytes], on_close: Callable[[], None] | None = None):
        self._chunks = chunks
        self._on_close = on_close

    def __iter__(self) -> ObjectStream:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    def __enter__(self) -> ObjectStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StorageDriver(abc.ABC):
    """Base of every backend; see the module docstring for the contract."""

    #: Registry name, also used in logs and metrics.
    name = "abstract"

    #: The driver's config settings: key -> (type, default). A default of
    #: ``REQUIRED`` makes the key mandatory; the config loader checks both.
    SETTINGS: dict[str, tuple[type | tuple[type, ...], object]] = {}

    @classmethod
    def from_config(cls, params: dict) -> StorageDriver:
        cls.check_settings(params)
        return cls(**params)

    @classmethod
    def check_settings(cls, params: dict) -> None:
        """Raise ValueError for a setting of the right type but a wrong value.

        Needs no backend, so a config check can call it before start-up.
        """

    # -- the public operations: validate, then delegate -------------------

    def list_objects(self, path: str = "", marker: str | None = None,
                     limit: int | None = None) -> list[ObjectInfo]:
        """One level below ``path``, sorted by name, names after ``marker``.

        ``path`` ``""`` is the root. A directory that does not exist (or a
        path that is an object) raises NotFound; the root always exists.
        """
        return self._list(paths.validate_dir(path), marker, limit)

    def stat_object(self, path: str) -> ObjectInfo:
        return self._stat(paths.validate_path(path))

    def get_object_size(self, path: str) -> int:
        size = self.stat_object(path).size
        assert size is not None
        return size

    def put_object(self, path: str, data: bytes | Iterable[bytes] | Upload) -> ObjectInfo:
        """Store ``data`` under ``path``; pass an :class:`Upload` for checks."""
        upload = data if isinstance(data, Upload) else Upload(data)
        return self._put(paths.validate_path(path), upload)

    def get_object(self, path: str) -> bytes:
        """The whole object in memory: for small objects and tests only."""
        _, stream = self.open_object(path)
        with stream:
            return b"".join(stream)

    def stream_object(self, path: str) -> tuple[int, ObjectStream]:
        """``(size, iterator)`` from one read of the backend, no race."""
        info, stream = self.open_object(path)
        assert info.size is not None
        return info.size, stream

    def open_object(self, path: str, offset: int = 0,
                    length: int | None = None) -> tuple[ObjectInfo, ObjectStream]:
        """The object's info and an iterator over ``length`` bytes at ``offset``.

        Info and bytes come from the same version of the object. The caller
        keeps ``offset``/``length`` within ``info.size`` (the HTTP layer
        answers 416 otherwise); bytes before ``offset`` are never read.
        """
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        return self._open(paths.validate_path(path), offset, length)

    def delete_object(self, path: str, precondition: Precondition | None = None) -> None:
        self._delete(paths.validate_path(path), precondition)

    def move_object(self, src: str, dst: str,
                    precondition: Precondition | None = None) -> ObjectInfo:
        """Rename ``src`` to ``dst``, replacing ``dst`` unless ``precondition`` refuses."""
        src, dst = paths.validate_path(src), paths.validate_path(dst)
        if src == dst:  # nothing to write, but the condition still decides the answer
            info = self._stat(src)
            if precondition is not None:
                precondition(info)
            return info
        return self._move(src, dst, precondition)

    def cat_objects(self, path: str, chunks: list[str], max_size: int | None = None,
                    precondition: Precondition | None = None) -> ObjectInfo:
        """Concatenate ``chunks`` into ``path``, then delete the chunks.

        A chunk may repeat, and ``path`` may be one of the chunks (it is
        then overwritten by the result, not deleted). A result above
        ``max_size`` bytes raises TooLarge and changes nothing: drivers
        refuse it from the chunks' sizes before reading a byte (a chunk
        named 500 times must not be joined first), and count again while
        joining, since a chunk may be replaced by a bigger one meanwhile.
        ``precondition`` judges the current ``path`` as for a PUT.
        """
        path = paths.validate_path(path)
        chunks = [paths.validate_path(chunk) for chunk in chunks]
        if max_size is not None and max_size < 0:
            raise ValueError("max_size must not be negative")
        return self._cat(path, chunks, max_size, precondition)

    def check_ready(self) -> None:
        """Raise BackendUnavailable when the backend cannot serve requests."""

    def close(self) -> None:
        """Release connections and background resources."""

    # -- what each backend implements -------------------------------------

    @abc.abstractmethod
    def _list(self, path: str, marker: str | None, limit: int | None) -> list[ObjectInfo]: ...

    @abc.abstractmethod
    def _stat(self, path: str) -> ObjectInfo: ...

    @abc.abstractmethod
    def _put(self, path: str, upload: Upload) -> ObjectInfo: ...

    @abc.abstractmethod
    def _open(self, path: str, offset: int,
              length: int | None) -> tuple[ObjectInfo, ObjectStream]: ...

    @abc.abstractmethod
    def _delete(self, path: str, precondition: Precondition | None) -> None: ...

    @abc.abstractmethod
    def _move(self, src: str, dst: str, precondition: Precondition | None) -> ObjectInfo: ...

    @abc.abstractmethod
    def _cat(self, path: str, chunks: list[str], max_size: int | None,
             precondition: Precondition | None) -> ObjectInfo: ...


def too_large(max_size: int, path: str | None = None) -> TooLarge:
    """The one wording of the size limit, for uploads and cat alike."""
    return TooLarge(f"object larger than the limit of {max_size} bytes", path)


def check_total_size(sizes: Iterable[int], max_size: int | None, path: str) -> None:
    """Refuse a cat from its chunks' sizes (repeats included), before joining any byte."""
    if max_size is not None and sum(sizes) > max_size:
        raise too_large(max_size, path)

"""The storage driver contract, and the base that enforces it for every driver.

Every backend implements the underscored hooks of :class:`StorageDriver`;
each public method around them validates the paths (so no driver ever sees
a path that could escape its root or name the service's private data),
times the hook into ``blobsvc_storage_operation_seconds{driver,action}``,
and normalises what it raises: a :class:`~blobsvc.storage.errors.StorageError`
passes on (counted in ``blobsvc_storage_errors_total`` by its code), any
other exception is a driver bug, logged once with its traceback and raised
as a :class:`~blobsvc.storage.errors.StorageFault` naming driver and path.
What the caller's own code raises (an upload's body, a precondition)
passes on untouched. Drivers hold none of this code.

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
* Metadata travels with the bytes (see :mod:`blobsvc.storage.metadata`):
  a write stores its :class:`ObjectMeta` atomically with the object;
  ``move_object`` keeps it, expiry included; ``copy_object`` copies it
  (expiry excepted: a copy is a new object) unless given new metadata;
  ``update_object`` replaces it without touching the bytes (the content
  type only when one is given). Listings do not carry user metadata or
  stored headers (``metadata`` None: Swift's and S3's listings cannot).
* An object past its ``expires_at`` is absent: the base answers NotFound
  for it and leaves it out of listings, and a precondition sees None;
  drivers treat an expired move/copy source or cat chunk as missing and
  reclaim the space (``reap_expired``, or the backend's own expirer).
* Iterators returned by ``stream_object``/``open_object`` release their
  resources when exhausted or when ``close()`` is called early.
* A stream whose bytes lie in an open file may name them as a
  :class:`FileRegion` (``stream.region``), so the server can hand them to
  the kernel (sendfile) instead of reading them through Python. The region
  is valid until the stream is closed, and holds exactly the bytes the
  stream would yield; every other stream has ``region`` None.
* Nothing under the reserved prefix is ever listed, whatever a driver's
  own listing returns. The service keeps small records of its own there
  (S3 buckets: ``put_record`` and the rest), and private objects of any
  size (S3 multipart parts: ``put_private``, joined into a public object by
  ``cat_private``), through the same hooks as objects, so every driver
  stores them and none needs code of its own.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ClassVar,
    Iterable,
    Iterator,
    Mapping,
    TypeVar,
    Union,
)

from blobsvc.storage import paths
from blobsvc.storage.errors import NotFound, StorageError, StorageFault
from blobsvc.storage.metadata import ObjectMeta, is_expired
from blobsvc.storage.settings import DriverSettings, build_settings
from blobsvc.storage.upload import DEFAULT_CONTENT_TYPE, Upload, too_large

if TYPE_CHECKING:  # importing prometheus-client here would fix its mode too early
    from blobsvc.metrics import Metrics

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "DeleteOutcome",
    "FileRegion",
    "ObjectInfo",
    "ObjectMeta",
    "ObjectStream",
    "Precondition",
    "StorageDriver",
    "Upload",
    "check_total_size",
    "too_large",
]

log = logging.getLogger(__name__)

D = TypeVar("D", bound="StorageDriver")


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
    #: User metadata; None where a listing does not carry it.
    metadata: Mapping[str, str] | None = None
    #: Stored representation headers (see blobsvc.storage.metadata).
    headers: Mapping[str, str] = field(default_factory=dict)
    expires_at: int | None = None

    def __post_init__(self) -> None:
        # Read-only views of copies: an info handed out must not be a way
        # to change what a driver keeps.
        if self.metadata is not None and not isinstance(self.metadata, MappingProxyType):
            object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        if not isinstance(self.headers, MappingProxyType):
            object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "isdir": self.isdir,
            "size": self.size,
            "ctime": self.ctime,
            "etag": self.etag,
            "content_type": self.content_type,
            "metadata": None if self.metadata is None else dict(self.metadata),
            # Listings carry neither (see listed()): null, not an empty claim.
            "headers": None if self.metadata is None else dict(self.headers),
            "expires_at": self.expires_at,
        }

    def with_meta(self, meta: ObjectMeta) -> ObjectInfo:
        """This info, carrying ``meta`` (its content type only if it names one)."""
        return dataclasses.replace(
            self, content_type=meta.content_type or self.content_type,
            metadata=dict(meta.metadata), headers=dict(meta.headers),
            expires_at=meta.expires_at)

    def listed(self) -> ObjectInfo:
        """This info as a listing shows it: no user metadata or stored headers."""
        if self.metadata is None and not self.headers:
            return self
        return dataclasses.replace(self, metadata=None, headers={})

    @classmethod
    def directory(cls, path: str, ctime: float | None = None) -> ObjectInfo:
        return cls(path=path, name=paths.basename(path), isdir=True,
                   size=None, ctime=ctime)


#: Called under the driver's commit lock with the current version (or None)
#: right before a write or delete commits; raises PreconditionFailed to stop it.
Precondition = Callable[[Union[ObjectInfo, None]], None]


@dataclass
class DeleteOutcome:
    """What one bulk delete did, path by path."""

    deleted: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    errors: list[tuple[str, StorageError]] = field(default_factory=list)


@dataclass(frozen=True)
class FileRegion:
    """``count`` bytes at ``offset`` of the open file ``fd``: a stream's bytes
    as the kernel can send them without copying them into Python."""

    fd: int
    offset: int
    count: int

    def fileno(self) -> int:
        return self.fd


class ObjectStream:
    """An iterator over an object's bytes that always releases its source.

    ``region``, when set, names the same bytes in an open file (see the
    module docstring); a consumer may send it instead of iterating.
    """

    def __init__(self, chunks: Iterator[bytes], on_close: Callable[[], None] | None = None,
                 region: FileRegion | None = None) -> None:
        self._chunks = chunks
        self._on_close = on_close
        self.region = region

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
    name: ClassVar[str] = "abstract"

    #: The driver's settings, declared once (see blobsvc.storage.settings).
    settings_class: ClassVar[type[DriverSettings]] = DriverSettings

    #: Where calls are timed and errors counted; set after construction
    #: (``driver.metrics = metrics``). None: not recorded.
    metrics: Metrics | None = None

    def __init__(self, settings: DriverSettings) -> None:
        """Build the driver from validated settings; this may reach the backend."""

    @classmethod
    def build(cls: type[D], **params: object) -> D:
        """The driver from its config keys: checked, validated, then built."""
        return cls(build_settings(cls.settings_class, params, cls.name))

    # -- the public operations: validate, time, delegate, normalise ---------

    def list_objects(self, path: str = "", marker: str | None = None,
                     limit: int | None = None, prefix: str | None = None) -> list[ObjectInfo]:
        """One level below ``path``, sorted by name, names after ``marker``
        (and starting with ``prefix``).

        ``path`` ``""`` is the root. A directory that does not exist (or a
        path that is an object) raises NotFound; the root always exists.
        """
        path = paths.validate_dir(path)
        if prefix and "/" in prefix:
            limit = 0  # no name of one level holds a '/'; a missing directory is still NotFound
        with _Call(self, "list", path):
            return _unexpired_page(
                lambda after, want: self._list(path, after, want, prefix or None),
                marker, limit, lambda info: info.name)

    def list_recursive(self, path: str = "", marker: str | None = None,
                       limit: int | None = None, prefix: str | None = None) -> list[ObjectInfo]:
        """Every object below ``path``, flat, sorted by full path (as Swift
        sorts: by code point, so ``a.txt`` before ``a/b``), paths after
        ``marker`` (a full path); ``prefix`` keeps paths that start with
        ``path/prefix``. No directory entries; NotFound as ``list_objects``.
        """
        path = paths.validate_dir(path)
        with _Call(self, "list", path):
            return _unexpired_page(
                lambda after, want: self._list_recursive(path, after, want, prefix or None),
                marker, limit, lambda info: info.path)

    def stat_object(self, path: str) -> ObjectInfo:
        path = paths.validate_path(path)
        with _Call(self, "stat", path):
            return _alive(self._stat(path))

    def get_object_size(self, path: str) -> int:
        size = self.stat_object(path).size
        assert size is not None
        return size

    def put_object(self, path: str, data: bytes | Iterable[bytes] | Upload) -> ObjectInfo:
        """Store ``data`` under ``path``; pass an :class:`Upload` for checks."""
        upload = data if isinstance(data, Upload) else Upload(data)
        path = paths.validate_path(path)
        upload.precondition = _seeing_expired_as_absent(upload.precondition)
        with _Call(self, "put", path, upload):
            return self._put(path, upload)

    def update_object(self, path: str, meta: ObjectMeta,
                      precondition: Precondition | None = None) -> ObjectInfo:
        """Replace the object's metadata, stored headers and expiry (and its
        content type if ``meta`` names one); the bytes and ETag stay."""
        path = paths.validate_path(path)
        with _Call(self, "update", path) as call:
            return self._update(path, meta, _refusing_expired(call.callers(precondition)))

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
        Reading the stream is not timed (the client sets its pace), but
        what it raises is normalised and counted as action ``read``.
        """
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        path = paths.validate_path(path)
        with _Call(self, "open", path):
            info, stream = self._open(path, offset, length)
            if is_expired(info):
                stream.close()
                _alive(info)
        return info, ObjectStream(self._normalised_reads(stream, path), stream.close,
                                  region=stream.region)

    def delete_object(self, path: str, precondition: Precondition | None = None) -> None:
        path = paths.validate_path(path)
        with _Call(self, "delete", path) as call:
            self._delete(path, _refusing_expired(call.callers(precondition)))

    def delete_objects(self, paths_: Iterable[str]) -> DeleteOutcome:
        """Delete each path on its own: one failing does not stop the others."""
        outcome = DeleteOutcome()
        for path in paths_:
            try:
                self.delete_object(path)
            except NotFound:
                outcome.not_found.append(path)
            except StorageError as exc:
                outcome.errors.append((path, exc))
            else:
                outcome.deleted.append(path)
        return outcome

    def move_object(self, src: str, dst: str,
                    precondition: Precondition | None = None) -> ObjectInfo:
        """Rename ``src`` to ``dst``, replacing ``dst`` unless ``precondition`` refuses."""
        src, dst = paths.validate_path(src), paths.validate_path(dst)
        with _Call(self, "move", src) as call:
            checked = _seeing_expired_as_absent(call.callers(precondition))
            if src == dst:  # nothing to write, but the condition still decides the answer
                info = _alive(self._stat(src))
                if checked is not None:
                    checked(info)
                return info
            return self._move(src, dst, checked)

    def copy_object(self, src: str, dst: str, precondition: Precondition | None = None,
                    meta: ObjectMeta | None = None) -> ObjectInfo:
        """Copy ``src``'s bytes to ``dst`` server side, with ``src``'s metadata
        (not its expiry) or ``meta`` instead; ``dst`` as a move's."""
        src, dst = paths.validate_path(src), paths.validate_path(dst)
        with _Call(self, "copy", src) as call:
            checked = _seeing_expired_as_absent(call.callers(precondition))
            if src == dst and meta is None:
                meta = ObjectMeta.of(_alive(self._stat(src))).without_expiry()
            return self._copy(src, dst, checked, meta)

    def cat_objects(self, path: str, chunks: list[str], max_size: int | None = None,
                    precondition: Precondition | None = None,
                    meta: ObjectMeta | None = None) -> ObjectInfo:
        """Concatenate ``chunks`` into ``path``, then delete the chunks.

        A chunk may repeat, and ``path`` may be one of the chunks (it is
        then overwritten by the result, not deleted). A result above
        ``max_size`` bytes raises TooLarge and changes nothing: drivers
        refuse it from the chunks' sizes before reading a byte (a chunk
        named 500 times must not be joined first), and count again while
        joining, since a chunk may be replaced by a bigger one meanwhile.
        ``precondition`` judges the current ``path`` as for a PUT; the
        result carries ``meta`` (none of the chunks').
        """
        path = paths.validate_path(path)
        chunks = [paths.validate_path(chunk) for chunk in chunks]
        if max_size is not None and max_size < 0:
            raise ValueError("max_size must not be negative")
        with _Call(self, "cat", path) as call:
            return self._cat(path, chunks, max_size,
                             _seeing_expired_as_absent(call.callers(precondition)),
                             meta or ObjectMeta())

    def reap_expired(self) -> int:
        """Reclaim the space of objects past their expiry now; how many went.

        Drivers whose backend expires objects itself (Swift) reclaim
        nothing here; the filesystem driver also runs this periodically.
        """
        with _Call(self, "reap", None):
            return self._reap_expired()

    def check_ready(self) -> None:
        """Raise BackendUnavailable when the backend cannot serve requests."""
        with _Call(self, "check_ready", None):
            self._check_ready()

    def close(self) -> None:
        """Release connections and background resources."""

    # -- the service's own records, out of the API's sight ------------------

    def put_record(self, kind: str, name: str, data: bytes = b"",
                   precondition: Precondition | None = None) -> None:
        """Store a record (``precondition`` as for a PUT: None = replace)."""
        path = _record_path(kind, name)
        upload = Upload(data, precondition=precondition)
        with _Call(self, "put", path, upload):
            self._put(path, upload)

    def record_info(self, kind: str, name: str) -> ObjectInfo | None:
        """The record's info (its ctime, size...), or None when there is none."""
        path = _record_path(kind, name)
        with _Call(self, "stat", path):
            try:
                return self._stat(path)
            except NotFound:
                return None

    def delete_record(self, kind: str, name: str) -> None:
        """Remove a record; NotFound when there is none."""
        path = _record_path(kind, name)
        with _Call(self, "delete", path):
            self._delete(path, None)

    def list_records(self, kind: str) -> list[ObjectInfo]:
        """Every record of ``kind``, sorted by name."""
        directory = _record_path(kind)
        with _Call(self, "list", directory):
            try:
                return [info for info in self._list(directory, None, None, None)
                        if not info.isdir]
            except NotFound:
                return []

    # -- private objects: service data of any size, out of the API's sight ---

    def put_private(self, name: str, upload: Upload) -> ObjectInfo:
        """Store a private object (``name`` as :func:`private_path` takes it),
        streamed and checked as ``put_object`` stores a public one."""
        path = private_path(name)
        with _Call(self, "put", path, upload):
            return self._put(path, upload)

    def private_info(self, name: str) -> ObjectInfo | None:
        """A private object's info, or None when there is none."""
        path = private_path(name)
        with _Call(self, "stat", path):
            try:
                return self._stat(path)
            except NotFound:
                return None

    def read_private(self, name: str) -> bytes | None:
        """A small private object whole, or None when there is none."""
        path = private_path(name)
        with _Call(self, "open", path):
            try:
                _, stream = self._open(path, 0, None)
            except NotFound:
                return None
            with stream:
                return b"".join(stream)

    def delete_private(self, name: str) -> bool:
        """Remove a private object; False when there was none."""
        path = private_path(name)
        with _Call(self, "delete", path):
            try:
                self._delete(path, None)
            except NotFound:
                return False
            return True

    def list_private(self, directory: str, marker: str | None = None,
                     limit: int | None = None) -> list[ObjectInfo]:
        """One level of a private directory, sorted by name (empty when missing)."""
        path = private_path(directory)
        with _Call(self, "list", path):
            try:
                return self._list(path, marker, limit, None)
            except NotFound:
                return []

    def cat_private(self, path: str, chunks: list[str], max_size: int | None = None,
                    precondition: Precondition | None = None,
                    meta: ObjectMeta | None = None) -> ObjectInfo:
        """``cat_objects`` of private chunks into the public ``path``: the
        result appears whole or not at all, and the chunks are consumed."""
        path = paths.validate_path(path)
        private = [private_path(chunk) for chunk in chunks]
        with _Call(self, "cat", path) as call:
            return self._cat(path, private, max_size,
                             _seeing_expired_as_absent(call.callers(precondition)),
                             meta or ObjectMeta())

    def _normalised_reads(self, stream: ObjectStream, path: str) -> Iterator[bytes]:
        """``stream``'s bytes, with what reading them raises normalised: a
        stream is read after the call that opened it has returned."""
        with _Call(self, "read", path, timed=False):
            yield from stream

    # -- what each backend implements -------------------------------------

    @abc.abstractmethod
    def _list(self, path: str, marker: str | None, limit: int | None,
              prefix: str | None) -> list[ObjectInfo]: ...

    @abc.abstractmethod
    def _list_recursive(self, path: str, marker: str | None, limit: int | None,
                        prefix: str | None) -> list[ObjectInfo]: ...

    @abc.abstractmethod
    def _stat(self, path: str) -> ObjectInfo: ...

    @abc.abstractmethod
    def _put(self, path: str, upload: Upload) -> ObjectInfo: ...

    @abc.abstractmethod
    def _update(self, path: str, meta: ObjectMeta,
                precondition: Precondition) -> ObjectInfo: ...

    @abc.abstractmethod
    def _open(self, path: str, offset: int,
              length: int | None) -> tuple[ObjectInfo, ObjectStream]: ...

    @abc.abstractmethod
    def _delete(self, path: str, precondition: Precondition | None) -> None: ...

    @abc.abstractmethod
    def _move(self, src: str, dst: str, precondition: Precondition | None) -> ObjectInfo: ...

    @abc.abstractmethod
    def _copy(self, src: str, dst: str, precondition: Precondition | None,
              meta: ObjectMeta | None) -> ObjectInfo: ...

    @abc.abstractmethod
    def _cat(self, path: str, chunks: list[str], max_size: int | None,
             precondition: Precondition | None, meta: ObjectMeta) -> ObjectInfo: ...

    def _reap_expired(self) -> int:
        return 0

    def _check_ready(self) -> None:
        """Raise BackendUnavailable when the backend cannot serve requests."""


def check_alive(info: ObjectInfo) -> ObjectInfo:
    """``info``, or NotFound when its object has expired: for drivers reading
    a move's or copy's source or a cat's chunk."""
    return _alive(info)


#: Where records live: under the reserved prefix, one directory per kind.
RECORDS_DIR = f"{paths.RESERVED_PREFIX}/records"


#: The areas of the reserved prefix the private-object API may use; the
#: others (records, temporary files, Swift's segments) are the drivers' own.
PRIVATE_AREAS = frozenset({"multipart"})


def private_path(name: str) -> str:
    """``.blobsvc/NAME``, where NAME is a valid path in one of :data:`PRIVATE_AREAS`."""
    if paths.validate_path(name).split("/", 1)[0] not in PRIVATE_AREAS:
        raise ValueError(f"a private object lives in one of {sorted(PRIVATE_AREAS)}: {name!r}")
    return f"{paths.RESERVED_PREFIX}/{name}"


def _record_path(kind: str, name: str | None = None) -> str:
    """``.blobsvc/records/KIND[/NAME]``: each one valid path segment."""
    for part in (kind, name):
        if part is not None and ("/" in part or paths.validate_path(part) != part):
            raise ValueError(f"a record's kind and name are one path segment each: {part!r}")
    return f"{RECORDS_DIR}/{kind}" if name is None else f"{RECORDS_DIR}/{kind}/{name}"


def _is_private(info: ObjectInfo) -> bool:
    return info.path == paths.RESERVED_PREFIX or info.path.startswith(f"{paths.RESERVED_PREFIX}/")


def _alive(info: ObjectInfo) -> ObjectInfo:
    if is_expired(info):
        raise NotFound(f"no object at {info.path}", info.path)
    return info


def _seeing_expired_as_absent(precondition: Precondition | None) -> Precondition | None:
    """``precondition``, judging an expired version as no version at all."""
    if precondition is None:
        return None

    def judged(current: ObjectInfo | None) -> None:
        precondition(None if current is not None and is_expired(current) else current)

    return judged


def _refusing_expired(precondition: Precondition | None) -> Precondition:
    """A precondition for a write that needs the object (delete, update):
    NotFound for an expired one, then ``precondition``."""
    def judged(current: ObjectInfo | None) -> None:
        if current is not None:
            _alive(current)
        if precondition is not None:
            precondition(current)

    return judged


def _unexpired_page(read: Callable[[str | None, int | None], list[ObjectInfo]],
                    marker: str | None, limit: int | None,
                    key: Callable[[ObjectInfo], str]) -> list[ObjectInfo]:
    """Up to ``limit`` unexpired entries after ``marker``; pages are read
    again from the last entry seen while expired (or private) ones left a
    page short."""
    entries: list[ObjectInfo] = []
    while True:
        want = None if limit is None else limit - len(entries)
        page = read(marker, want)
        entries.extend(info for info in page if not is_expired(info) and not _is_private(info))
        if want is None or len(page) < want or not page or len(entries) >= limit:  # type: ignore[operator]
            return entries
        marker = key(page[-1])


def check_total_size(sizes: Iterable[int], max_size: int | None, path: str) -> None:
    """Refuse a cat from its chunks' sizes (repeats included), before joining any byte."""
    if max_size is not None and sum(sizes) > max_size:
        raise too_large(max_size, path)


class _Call:
    """One public driver call: timed, and what its hook raises normalised.

    Exceptions raised by the caller's own code inside the call (its upload's
    body or its precondition) are told apart by identity and pass through
    untouched: they are the caller's, not the driver's.
    """

    __slots__ = ("_driver", "_action", "_path", "_upload", "_timed", "_start", "_callers")

    def __init__(self, driver: StorageDriver, action: str, path: str | None,
                 upload: Upload | None = None, *, timed: bool = True) -> None:
        self._driver = driver
        self._action = action
        self._path = path
        self._upload = upload
        self._timed = timed
        self._start = 0.0
        self._callers: list[Exception] = []

    def __enter__(self) -> _Call:
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        metrics, name = self._driver.metrics, self._driver.name
        if metrics is not None and self._timed:
            metrics.observe_storage(name, self._action, time.perf_counter() - self._start)
        if not isinstance(exc, Exception):
            return  # success, or an interruption (GeneratorExit, KeyboardInterrupt)
        if isinstance(exc, StorageError):
            if metrics is not None:
                metrics.count_storage_error(name, self._action, exc.code)
            return
        if self._from_caller(exc):
            return
        where = self._path if self._path is not None else "its storage"
        log.error("bug in the %s storage driver: %s of %s raised %s", name, self._action,
                  where, type(exc).__name__, exc_info=(type(exc), exc, traceback))
        fault = StorageFault(f"the {name} storage driver failed at {where}", self._path,
                             driver=name)
        if metrics is not None:
            metrics.count_storage_error(name, self._action, fault.code)
        raise fault from exc

    def callers(self, precondition: Precondition | None) -> Precondition | None:
        """``precondition``, with what it raises remembered as the caller's own."""
        if precondition is None:
            return None

        def checked(current: ObjectInfo | None) -> None:
            try:
                precondition(current)
            except Exception as exc:
                self._callers.append(exc)
                raise

        return checked

    def _from_caller(self, exc: Exception) -> bool:
        if self._upload is not None and exc is self._upload.caller_error:
            return True
        return any(exc is own for own in self._callers)

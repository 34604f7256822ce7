"""The storage-driver contract over HTTP: a blobsvc used as a driver.

An application written against :class:`~blobsvc.storage.contract.StorageDriver`
(``list_objects``, ``get_object_size``, ``put_object``, ``get_object``,
``stream_object``, ``delete_object``, ``move_object``, ``cat_objects`` and
the rest) keeps its data in a running blobsvc by building this driver
instead of a local one. The driver base validates paths and normalises
errors as for every driver; the hooks below are one or two requests each,
and the service's error codes come back as the storage errors they were.

Preconditions are Python callables in the contract, and a callable cannot
cross HTTP. The driver judges it against a HEAD of the destination and then
makes the write conditional on that very version (``If-Match`` its ETag, or
``If-None-Match: *`` when there was none), so the check stays atomic with
the commit: if the destination changed in between, the service refuses the
write and the judgement is made again (a streamed PUT body cannot be sent
twice: it is refused with PreconditionFailed, having lost the race). Delete
and update always carry such a judgement (the base refuses expired objects
through one), so each costs a HEAD more than through :class:`Client`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, NamedTuple, TypeVar

from blobsvc.client import errors as client_errors
from blobsvc.client.api import Client
from blobsvc.storage import errors
from blobsvc.storage.contract import ObjectInfo, ObjectStream, Precondition, StorageDriver
from blobsvc.storage.metadata import ObjectMeta
from blobsvc.storage.settings import DriverSettings
from blobsvc.storage.upload import Upload

T = TypeVar("T")

#: Times a write is judged again when its destination changed under it.
JUDGEMENT_ATTEMPTS = 5
#: Entries asked for per listing request (the service's maximum).
PAGE_LIMIT = 10000


class Guard(NamedTuple):
    """The condition that makes a write happen on the judged version only."""

    if_none_match: str | None = None
    if_match: str | None = None


NO_GUARD = Guard()


@dataclass(frozen=True)
class RemoteSettings(DriverSettings):
    url: str
    token: str | None = None
    user: str | None = None
    password: str | None = None
    timeout: float = 60.0
    retries: int = 3
    verify: bool = True
    ca_certs: str | None = None

    def validate(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("storage.url must be an http(s) URL")


class RemoteDriver(StorageDriver):
    """Objects kept by the blobsvc at ``url``; see the module docstring."""

    name = "remote"
    settings_class = RemoteSettings

    def __init__(self, settings: RemoteSettings) -> None:
        super().__init__(settings)
        self.client = Client(settings.url, token=settings.token, user=settings.user,
                             password=settings.password, timeout=settings.timeout,
                             retries=settings.retries, verify=settings.verify,
                             ca_certs=settings.ca_certs)

    def close(self) -> None:
        self.client.close()

    # -- listings -----------------------------------------------------------------

    def _list(self, path: str, marker: str | None, limit: int | None,
              prefix: str | None) -> list[ObjectInfo]:
        return self._pages(path, marker, limit, prefix, recursive=False)

    def _list_recursive(self, path: str, marker: str | None, limit: int | None,
                        prefix: str | None) -> list[ObjectInfo]:
        return self._pages(path, marker, limit, prefix, recursive=True)

    def _pages(self, path: str, marker: str | None, limit: int | None, prefix: str | None,
               recursive: bool) -> list[ObjectInfo]:
        entries: list[ObjectInfo] = []
        while True:
            want = PAGE_LIMIT if limit is None else max(1, min(PAGE_LIMIT, limit - len(entries)))
            with translated(path):
                page = self.client.list(path, marker=marker, limit=want, prefix=prefix,
                                        recursive=recursive)
            entries.extend(page.entries)
            if not page.truncated or page.next_marker is None:
                break
            if limit is not None and len(entries) >= limit:
                break
            marker = page.next_marker
        return entries if limit is None else entries[:limit]

    # -- one object -----------------------------------------------------------------

    def _stat(self, path: str) -> ObjectInfo:
        with translated(path):
            return self.client.stat(path)

    def _open(self, path: str, offset: int,
              length: int | None) -> tuple[ObjectInfo, ObjectStream]:
        if length == 0:  # no byte to ask for: HTTP has no empty range
            return self._stat(path), ObjectStream(iter(()))
        with translated(path):
            try:
                download = self.client.open(path, offset, length)
            except client_errors.RangeNotSatisfiable:  # offset at the end: nothing left
                return self.client.stat(path), ObjectStream(iter(()))
        return download.info, ObjectStream(_reads(download, path), download.close)

    def _put(self, path: str, upload: Upload) -> ObjectInfo:
        body = _CallerBody(upload)
        guard = NO_GUARD
        if upload.precondition is not None:
            guard = self._judged(path, upload.precondition)
        meta = upload.meta
        try:
            with translated(path):
                return self.client.put(
                    path, iter(body), size=upload.expected_size,
                    content_type=upload.content_type, metadata=meta.metadata,
                    headers=meta.headers, delete_at=meta.expires_at,
                    content_md5=upload.expected_md5, sha256=upload.expected_sha256,
                    if_none_match=guard.if_none_match, if_match=guard.if_match)
        except BaseException:
            body.reraise()  # the caller's own failure, not urllib3's account of it
            raise

    def _update(self, path: str, meta: ObjectMeta, precondition: Precondition) -> ObjectInfo:
        return self._conditionally(path, precondition, lambda guard: self.client.update(
            path, content_type=meta.content_type, metadata=meta.metadata, headers=meta.headers,
            delete_at=meta.expires_at, **guard._asdict()))

    def _delete(self, path: str, precondition: Precondition | None) -> None:
        self._conditionally(path, precondition,
                            lambda guard: self.client.delete(path, **guard._asdict()))

    # -- several objects ------------------------------------------------------------

    def _move(self, src: str, dst: str, precondition: Precondition | None) -> ObjectInfo:
        if precondition is not None:
            self._stat(src)  # a missing source is NotFound before the destination is judged
        return self._conditionally(dst, precondition,
                                   lambda guard: self.client.move(src, dst, **guard._asdict()))

    def _copy(self, src: str, dst: str, precondition: Precondition | None,
              meta: ObjectMeta | None) -> ObjectInfo:
        fields: dict[str, Any] = {}
        if meta is not None:  # the whole of it replaces the source's
            fields = {"metadata": meta.metadata, "content_type": meta.content_type,
                      "headers": meta.headers, "expires_at": meta.expires_at}
        if precondition is not None:
            self._stat(src)
        return self._conditionally(dst, precondition,
                                   lambda guard: self.client.copy(src, dst, **fields, **guard._asdict()))

    def _cat(self, path: str, chunks: list[str], max_size: int | None,
             precondition: Precondition | None, meta: ObjectMeta) -> ObjectInfo:
        if max_size is not None or precondition is not None:
            sizes = self._chunk_sizes(chunks)
            if max_size is not None and sum(sizes) > max_size:
                raise errors.TooLarge(f"the result would exceed {max_size} bytes", path)
        return self._conditionally(path, precondition, lambda guard: self.client.cat(
            path, chunks, metadata=meta.metadata, content_type=meta.content_type,
            headers=meta.headers, expires_at=meta.expires_at, **guard._asdict()))

    def _check_ready(self) -> None:
        with translated(None):
            self.client.ready()

    # -- preconditions ----------------------------------------------------------------

    def _judged(self, path: str, precondition: Precondition) -> Guard:
        """Judge ``precondition`` on the current version; the condition that
        makes the write happen on that version only."""
        try:
            current: ObjectInfo | None = self._stat(path)
        except errors.NotFound:
            current = None
        precondition(current)
        if current is None:
            return Guard(if_none_match="*")
        return Guard(if_match=current.etag or "*")

    def _conditionally(self, path: str, precondition: Precondition | None,
                       write: Callable[[Guard], T]) -> T:
        """``write`` under ``precondition``, judged again while the destination
        keeps changing between the judgement and the write."""
        for _ in range(JUDGEMENT_ATTEMPTS):
            guard = NO_GUARD if precondition is None else self._judged(path, precondition)
            try:
                with translated(path):
                    return write(guard)
            except errors.PreconditionFailed:
                if guard == NO_GUARD:
                    raise
        raise errors.PreconditionFailed(f"{path} kept changing while being written", path)

    def _chunk_sizes(self, chunks: list[str]) -> list[int]:
        sizes, missing = {}, []
        for chunk in dict.fromkeys(chunks):
            try:
                sizes[chunk] = self._stat(chunk).size or 0
            except errors.NotFound:
                missing.append(chunk)
        if missing:
            raise errors.MissingChunks(missing)
        return [sizes[chunk] for chunk in chunks]


class _CallerBody:
    """An upload's chunks for the request body, with what the caller's data
    (or the upload's checks) raised kept aside: urllib3 reports it as a
    broken request, and the driver raises the original instead."""

    def __init__(self, upload: Upload) -> None:
        self._upload = upload
        self._failure: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._upload
        except BaseException as exc:
            self._failure = exc
            raise

    def reraise(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure


def _reads(download: Any, path: str) -> Iterator[bytes]:
    with translated(path):
        yield from download


_STORAGE_ERRORS: dict[type[client_errors.BlobsvcError], type[errors.StorageError]] = {
    client_errors.InvalidPath: errors.InvalidPath,
    client_errors.NotFound: errors.NotFound,
    client_errors.Conflict: errors.Conflict,
    client_errors.PreconditionFailed: errors.PreconditionFailed,
    client_errors.ChecksumMismatch: errors.ChecksumMismatch,
    client_errors.IncompleteBody: errors.IncompleteBody,
    client_errors.InvalidMetadata: errors.InvalidMetadata,
    client_errors.MetadataTooLarge: errors.MetadataTooLarge,
    client_errors.TooLarge: errors.TooLarge,
    client_errors.BackendUnavailable: errors.BackendUnavailable,
    client_errors.TransportError: errors.BackendUnavailable,
    client_errors.InsufficientStorage: errors.InsufficientStorage,
    client_errors.Unauthorized: errors.StoragePermissionDenied,
    client_errors.Forbidden: errors.StoragePermissionDenied,
}


@contextlib.contextmanager
def translated(path: str | None) -> Iterator[None]:
    """The service's errors as the storage errors they were raised as."""
    try:
        yield
    except client_errors.NotFound as exc:
        if exc.missing:
            raise errors.MissingChunks(exc.missing) from exc
        raise errors.NotFound(exc.message, path) from exc
    except client_errors.BlobsvcError as exc:
        storage_error = _STORAGE_ERRORS.get(type(exc))
        if storage_error is None:
            raise errors.StorageFault(f"the service answered {exc}", path, "remote") from exc
        raise storage_error(exc.message, path) from exc

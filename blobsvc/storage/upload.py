"""One object's incoming bytes, counted, hashed and checked as they pass.

Every driver stores what it reads from an :class:`Upload`, so the size
limit, the announced length and the checksums are enforced once, here, for
all of them, and at the end of the stream, before a driver commits.

A request body arrives as a :class:`BodySource`, read into a few rotating
buffers rather than as a new bytes object per read: a driver that writes
each chunk at once (the filesystem's ``os.write``) takes them as views with
:meth:`Upload.views` and no copy is made on the way; one that keeps chunks
(Swift holds one back, the memory driver joins them) iterates the upload
and gets bytes of its own.
"""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Iterable,
    Iterator,
    Protocol,
    TypeVar,
    Union,
    cast,
    runtime_checkable,
)

from blobsvc.storage.errors import ChecksumMismatch, IncompleteBody, TooLarge
from blobsvc.storage.hashing import MAX_PENDING, StreamHasher
from blobsvc.storage.metadata import ObjectMeta

if TYPE_CHECKING:
    from blobsvc.storage.contract import ObjectInfo, Precondition

DEFAULT_CONTENT_TYPE = "application/octet-stream"

#: Bytes per buffer a body source is read into, unless the caller says.
DEFAULT_CHUNK_SIZE = 1024 * 1024

#: Buffers a body source is read into in turn: one more than the hashing
#: threads may lag behind, so none is overwritten while still being hashed.
RING_SIZE = MAX_PENDING + 1


@runtime_checkable
class BodySource(Protocol):
    """A body read into the caller's buffer, as a socket is."""

    def readinto(self, buffer: memoryview, /) -> int:
        """Up to ``len(buffer)`` bytes into ``buffer``; 0 only at the body's end."""


UploadData = Union[bytes, bytearray, memoryview, Iterable[bytes], BodySource]
#: A chunk as the caller gave it (bytes) or as read from a source (a view).
C = TypeVar("C", bytes, memoryview)


class Upload:
    """One object's incoming bytes: counted, hashed and checked as they pass.

    Drivers iterate over it (or over :meth:`views`) and commit only after
    the iteration ended without an exception: the length and checksum checks
    run at the end of the stream, before the last ``StopIteration``, so a
    backend that streams (Swift) never receives the end of a body that is
    wrong. MD5 (the ETag) is computed unless the driver leaves it to a
    backend that computes it anyway (:meth:`leave_md5_to_backend`); SHA-256
    only when a checksum is expected or ``compute_sha256`` asks for it.
    """

    def __init__(
        self,
        data: UploadData,
        *,
        content_type: str | None = None,
        meta: ObjectMeta | None = None,
        expected_size: int | None = None,
        max_size: int | None = None,
        content_md5: bytes | None = None,
        sha256_hex: str | None = None,
        compute_sha256: bool = False,
        precondition: Precondition | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self._chunks: Iterable[bytes] | None = None
        self._source: BodySource | None = None
        if isinstance(data, (bytes, bytearray, memoryview)):
            self._chunks = [cast(bytes, data)]  # any bytes-like: drivers use its buffer
            if expected_size is None:
                expected_size = len(data)
        elif isinstance(data, BodySource):
            self._source = data
        else:
            self._chunks = data
        meta = meta or ObjectMeta()
        self.content_type = content_type or meta.content_type or DEFAULT_CONTENT_TYPE
        #: What the object carries besides its bytes, content type resolved.
        self.meta = ObjectMeta(content_type=self.content_type, headers=meta.headers,
                               metadata=meta.metadata, expires_at=meta.expires_at)
        self.expected_size = expected_size
        self.max_size = max_size
        self.expected_md5 = content_md5
        self.expected_sha256 = sha256_hex.lower() if sha256_hex else None
        self.precondition = precondition
        self.chunk_size = chunk_size
        self.size = 0
        #: What the caller's own code (``data``, ``precondition``) raised, if
        #: anything: the caller's failure (a client gone), not the driver's,
        #: so the driver base passes it on unchanged.
        self.caller_error: Exception | None = None
        self._hasher = StreamHasher(sha256=compute_sha256 or self.expected_sha256 is not None)
        self._md5: bytes | None = None
        self._sha256_hex: str | None = None
        #: The MD5 is the backend's to compute and report (see leave_md5_to_backend).
        self._md5_by_backend = False
        self.complete = False

    def __iter__(self) -> Iterator[bytes]:
        """The body as bytes the driver may keep as long as it likes."""
        if self._source is None:
            yield from self._checked(self._caller_chunks())
        else:
            for view in self._checked(self._source_views(self._source)):
                yield bytes(view)

    def views(self) -> Iterator[memoryview]:
        """The body as views, each valid only until the next one is asked for
        (a buffer read from a body source is reused): for a driver that
        writes every chunk before asking for the next."""
        if self._source is None:
            for chunk in self._checked(self._caller_chunks()):
                yield memoryview(chunk)
        else:
            yield from self._checked(self._source_views(self._source))

    def _checked(self, chunks: Iterator[C]) -> Iterator[C]:
        """``chunks`` counted and hashed; the end checked before it is reported."""
        try:
            for chunk in chunks:
                if not len(chunk):
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

    def _caller_chunks(self) -> Iterator[bytes]:
        """The caller's chunks, remembering what they raise (see ``caller_error``)."""
        assert self._chunks is not None
        chunks = iter(self._chunks)
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except Exception as exc:
                self.caller_error = exc
                raise
            yield chunk

    def _source_views(self, source: BodySource) -> Iterator[memoryview]:
        """The source read into :data:`RING_SIZE` buffers in turn, each filled
        before it is handed on (fewer, larger chunks: less work per byte)."""
        ring = _Ring(self._buffer_size())
        while not self._reached_expected_end(source):
            buffer = ring.next()
            filled = self._fill(source, buffer)
            if filled:
                yield buffer[:filled]
            if filled < len(buffer):
                return

    def _buffer_size(self) -> int:
        """``chunk_size``, or less for a body announced smaller (one byte
        more than announced, so its end is seen in the same read)."""
        if self.expected_size is None:
            return self.chunk_size
        return max(1, min(self.chunk_size, self.expected_size + 1))

    def _reached_expected_end(self, source: BodySource) -> bool:
        """At the announced size: make sure the source ends there too,
        without a new buffer for a one-byte look."""
        if self.expected_size is None or self.size < self.expected_size:
            return False
        if self._fill(source, memoryview(bytearray(1))):
            raise IncompleteBody("body longer than its Content-Length")
        return True

    def _fill(self, source: BodySource, buffer: memoryview) -> int:
        """Read until ``buffer`` is full or the source ends; the bytes read."""
        filled = 0
        try:
            while filled < len(buffer):
                count = source.readinto(buffer[filled:])
                if not count:
                    break
                filled += count
        except Exception as exc:
            self.caller_error = exc
            raise
        return filled

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
        if self.expected_sha256 is not None and self._sha256_hex != self.expected_sha256:
            raise ChecksumMismatch("body does not match X-Checksum-Sha256")

    def leave_md5_to_backend(self) -> bool:
        """Hash no MD5 here, for a backend that computes the body's MD5 as
        it stores it (Swift's ETag of a plain object) and reports it with
        :meth:`backend_md5`: one MD5 per byte instead of two, which bounded
        uploads to Swift. Not when a Content-MD5 is to be checked before
        the commit. Call before reading; True if the MD5 is now the backend's.
        """
        assert not self.size and not self.complete, "the upload is being read"
        if self.expected_md5 is not None:
            return False
        self._hasher.skip_md5()
        self._md5_by_backend = True
        return True

    def backend_md5(self, md5_hex: str | None) -> None:
        """The body's MD5 as the backend computed it (None: it did not say)."""
        assert self._md5_by_backend, "the MD5 was not left to the backend"
        self._md5 = bytes.fromhex(md5_hex) if md5_hex else None

    @property
    def md5_hex(self) -> str:
        """Hex MD5 of the body; known once the iteration has ended."""
        assert self._md5 is not None, "the upload has not been read to its end"
        return self._md5.hex()

    @property
    def known_md5_hex(self) -> str | None:
        """:attr:`md5_hex`, or None when a backend that was left the MD5 did
        not report it (Swift, for a write that lost to a newer version)."""
        assert self.complete, "the upload has not been read to its end"
        return None if self._md5 is None else self._md5.hex()

    @property
    def sha256_hex(self) -> str | None:
        """Hex SHA-256 of the body, None when it was not computed (see the class)."""
        assert self.complete, "the upload has not been read to its end"
        return self._sha256_hex

    def check_precondition(self, current: ObjectInfo | None) -> None:
        if self.precondition is not None:
            try:
                self.precondition(current)
            except Exception as exc:
                self.caller_error = exc
                raise


class _Ring:
    """:data:`RING_SIZE` buffers handed out in turn, each made when first needed."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._buffers: list[memoryview] = []
        self._next = 0

    def next(self) -> memoryview:
        if len(self._buffers) < RING_SIZE:
            self._buffers.append(memoryview(bytearray(self._size)))
            return self._buffers[-1]
        buffer = self._buffers[self._next]
        self._next = (self._next + 1) % RING_SIZE
        return buffer


def too_large(max_size: int, path: str | None = None) -> TooLarge:
    """The one wording of the size limit, for uploads and cat alike."""
    return TooLarge(f"object larger than the limit of {max_size} bytes", path)

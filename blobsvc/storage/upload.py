"""One object's incoming bytes, counted, hashed and checked as they pass.

Every driver stores what it reads from an :class:`Upload`, so the size
limit, the announced length and the checksums are enforced once, here, for
all of them, and at the end of the stream, before a driver commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Iterator, cast

from blobsvc.storage.errors import ChecksumMismatch, IncompleteBody, TooLarge
from blobsvc.storage.hashing import StreamHasher

if TYPE_CHECKING:
    from blobsvc.storage.contract import ObjectInfo, Precondition

DEFAULT_CONTENT_TYPE = "application/octet-stream"


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
        self._chunks: Iterable[bytes]
        if isinstance(data, (bytes, bytearray, memoryview)):
            self._chunks = [cast(bytes, data)]  # any bytes-like: drivers use its buffer
            if expected_size is None:
                expected_size = len(data)
        else:
            self._chunks = data
        self.content_type = content_type or DEFAULT_CONTENT_TYPE
        self.expected_size = expected_size
        self.max_size = max_size
        self.expected_md5 = content_md5
        self.expected_sha256 = sha256_hex.lower() if sha256_hex else None
        self.precondition = precondition
        self.size = 0
        #: What the caller's own code (``data``, ``precondition``) raised, if
        #: anything: the caller's failure (a client gone), not the driver's,
        #: so the driver base passes it on unchanged.
        self.caller_error: Exception | None = None
        self._hasher = StreamHasher()
        self._md5: bytes | None = None
        self._sha256_hex: str | None = None
        self.complete = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._source():
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

    def _source(self) -> Iterator[bytes]:
        """The caller's chunks, remembering what they raise (see ``caller_error``)."""
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
            try:
                self.precondition(current)
            except Exception as exc:
                self.caller_error = exc
                raise


def too_large(max_size: int, path: str | None = None) -> TooLarge:
    """The one wording of the size limit, for uploads and cat alike."""
    return TooLarge(f"object larger than the limit of {max_size} bytes", path)

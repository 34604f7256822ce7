"""An object's bytes on their way from the service: an iterator and a file.

The body is read in chunks as the caller asks, never whole, and never
decoded (an object stored gzip-encoded arrives as stored). A body that
ends before its ``Content-Length`` raises :class:`TransportError`: a
truncated object never passes for a whole one.
"""

from __future__ import annotations

import contextlib
import io
from typing import Iterator

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from blobsvc.client.errors import TransportError
from blobsvc.client.objects import info_from_headers
from blobsvc.storage.contract import ObjectInfo


@contextlib.contextmanager
def translate_transport_errors(what: str) -> Iterator[None]:
    """urllib3's failures (refused, timed out, cut short) as TransportError."""
    try:
        yield
    except Urllib3Error as exc:
        raise TransportError(f"{what}: {_reason(exc)}") from exc
    except OSError as exc:
        raise TransportError(f"{what}: {exc}") from exc


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)


class Download(io.RawIOBase):
    """The answer to a GET: ``info`` from its headers, the bytes by
    iteration or ``read``. Close it (or use ``with``) when done early: the
    connection is then dropped rather than read to its end."""

    def __init__(self, path: str, answer: urllib3.BaseHTTPResponse, chunk_size: int) -> None:
        super().__init__()
        self.path = path
        self.status = answer.status
        self.headers = answer.headers
        #: The object's info (``size`` is the whole object's, even for a range).
        self.info: ObjectInfo = info_from_headers(path, answer.headers)
        self.not_modified = answer.status == 304
        length = answer.headers.get("Content-Length")
        #: What Content-Length promises; None for an answer framed otherwise
        #: (chunked, from a proxy), which then ends where its framing says.
        self._expected = int(length) if length is not None and length.isdigit() else None
        if self.not_modified:
            self._expected = 0  # a 304's Content-Length is the object's, not its own
        #: Bytes this answer carries (the range's length for a 206).
        self.length = self._expected or 0
        self._answer = answer
        self._chunk_size = chunk_size
        self._received = 0
        self._ended = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            while True:
                chunk = self.read(self._chunk_size)
                if not chunk:
                    return
                yield chunk
        finally:
            self.close()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed download")
        if self.not_modified or size == 0:
            return b""
        with translate_transport_errors(f"reading {self.path}"):
            if size is None or size < 0:
                chunk = self._answer.read(decode_content=False)
            else:
                chunk = self._answer.read(size, decode_content=False)
        self._received += len(chunk)
        if not chunk and self._expected is not None and self._received < self._expected:
            raise TransportError(f"reading {self.path}: the answer ended after "
                                 f"{self._received} of {self._expected} bytes")
        if not chunk:
            self._ended = True
        if self._complete():
            self._finish()
        return chunk

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)

    def _finish(self) -> None:
        """Every byte is in: the connection goes back to the pool."""
        self._answer.release_conn()

    def _complete(self) -> bool:
        """Every byte the answer announced, or its framing's end, is read."""
        return self._ended or (self._expected is not None and self._received >= self._expected)

    def close(self) -> None:
        if not self.closed:
            if self._complete():
                # nothing (left) to read, as for a 304 or an empty object: reading
                # the empty rest ends the answer, so the connection can carry the next
                self._answer.drain_conn()
            else:
                self._answer.close()  # unread bytes: the connection cannot be reused
            self._answer.release_conn()
        super().close()

    def __enter__(self) -> Download:
        return self

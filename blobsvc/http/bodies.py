"""Reading request bodies as a stream, never whole.

The WSGI input is one of :mod:`blobsvc.http.framing`'s readers (Content-Length
or chunked); both return ``b""`` at the end. A client that goes away early
or breaks the framing shows up as a short read, a socket error or a
``FramingError``, which become :class:`IncompleteBody` so the upload is
dropped, not committed. A body left unread, for whatever reason, closes
its connection (see :mod:`blobsvc.http.wire`), so nothing here has to drain it.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator, Mapping

from blobsvc.http import exchange
from blobsvc.http.errors import ApiError
from blobsvc.storage.errors import IncompleteBody


def body_chunks(rfile: BinaryIO, content_length: int | None, chunk_size: int) -> Iterator[bytes]:
    """Yield the request body in pieces of at most ``chunk_size`` bytes."""
    remaining = content_length
    while remaining is None or remaining > 0:
        want = chunk_size if remaining is None else min(chunk_size, remaining)
        try:
            chunk = rfile.read(want)
        except (OSError, ValueError) as exc:  # socket error, bad chunked framing
            raise _incomplete(exc) from None
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk


def declared_length(headers: Mapping[str, str]) -> int | None:
    """The announced body length; None for a chunked body."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return None
    raw = headers.get("Content-Length")
    if raw is None:
        if exchange.request().method in ("PUT", "POST"):
            raise ApiError(411, "Content-Length or Transfer-Encoding: chunked is required")
        return 0
    if not (raw.isascii() and raw.isdigit()):
        raise ApiError(400, "Content-Length must be a non-negative integer")
    if len(raw) > 18:  # beyond any storage, and beyond int() of a sane size
        raise ApiError(413, "Content-Length larger than any object can be")
    return int(raw)


def read_capped(limit: int, too_large: Exception) -> bytes:
    """The whole request body of a small document (JSON, XML), read only up
    to ``limit`` bytes whatever the client declares: a bigger one raises
    ``too_large``, before a byte is read when its length says so, else
    mid-read (its connection is then closed)."""
    request = exchange.request()
    content_length = declared_length(request.headers)
    if content_length is not None and content_length > limit:
        raise too_large
    raw = bytearray()
    for chunk in body_chunks(request.rfile, content_length, 64 * 1024):
        raw += chunk
        if len(raw) > limit:
            raise too_large
    return bytes(raw)


class RequestBody:
    """The request body as an upload's :class:`~blobsvc.storage.upload.BodySource`:
    read into the upload's buffers (``readinto``) rather than returned as
    new bytes, so a large PUT is not copied on its way to the driver.

    Reads stop at ``content_length`` whatever the input would give (any WSGI
    input works; blobsvc's own readers stop there anyway).
    """

    def __init__(self, rfile: BinaryIO, content_length: int | None) -> None:
        self._rfile = rfile
        self._remaining = content_length

    def readinto(self, buffer: memoryview, /) -> int:
        if self._remaining is not None:
            buffer = buffer[:self._remaining]
        if not len(buffer):
            return 0
        try:
            count = self._read_into(buffer)
        except (OSError, ValueError) as exc:  # socket error, bad chunked framing
            raise _incomplete(exc) from None
        if self._remaining is not None:
            self._remaining -= count
        return count

    def _read_into(self, buffer: memoryview) -> int:
        readinto = getattr(self._rfile, "readinto", None)
        if readinto is not None:
            return readinto(buffer) or 0
        data = self._rfile.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _incomplete(exc: Exception) -> IncompleteBody:
    return IncompleteBody(f"request body could not be read: {exc}")

"""Reading request bodies as a stream, never whole.

The WSGI input is one of :mod:`blobsvc.http.framing`'s readers (Content-Length
or chunked); both return ``b""`` at the end. A client that goes away early
or breaks the framing shows up as a short read, a socket error or a
``FramingError``, which become :class:`IncompleteBody` so the upload is
dropped, not committed. A body left unread, for whatever reason, closes
its connection (see :mod:`blobsvc.http.wire`), so nothing here has to drain it.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator

from blobsvc.storage.errors import IncompleteBody


def body_chunks(rfile: BinaryIO, content_length: int | None, chunk_size: int) -> Iterator[bytes]:
    """Yield the request body in pieces of at most ``chunk_size`` bytes."""
    remaining = content_length
    while remaining is None or remaining > 0:
        want = chunk_size if remaining is None else min(chunk_size, remaining)
        try:
            chunk = rfile.read(want)
        except (OSError, ValueError) as exc:  # socket error, bad chunked framing
            raise IncompleteBody(f"request body could not be read: {exc}") from None
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk

"""Reading request bodies as a stream, never whole.

The WSGI input of cheroot is either a known-length reader (Content-Length)
or a chunked decoder; both return ``b""`` at the end. A client that goes
away early shows up as a short read or a socket error, which becomes
:class:`IncompleteBody` so the upload is dropped, not committed.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator

import cherrypy

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


def abandon_unread_body() -> None:
    """After refusing a body, close the connection instead of draining it.

    cheroot would otherwise read whatever the client still announced into
    memory in one piece, which for a refused multi-gigabyte upload is the
    very thing the refusal tried to avoid.
    """
    rfile = cherrypy.serving.request.rfile
    if getattr(rfile, "remaining", 0):
        rfile.remaining = 0
        cherrypy.serving.response.headers["Connection"] = "close"

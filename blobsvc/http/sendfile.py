"""Object bodies sent by the kernel: ``sendfile(2)`` from the file to the socket.

A body whose bytes lie in an open file (a :class:`~blobsvc.storage.FileRegion`)
offers them to the server as one :class:`FileChunk` in its iteration: the
chunk passes unchanged through CherryPy's WSGI wrappers, which only forward
what the body yields. A server that can send it (plain HTTP, a declared
Content-Length: :class:`blobsvc.http.wire.ClosingGateway`) calls
:meth:`RegionSink.region_taken`, then sends the region and reports every
byte that left with :meth:`RegionSink.region_sent`. Any other consumer sees
an empty chunk, and the body then yields its bytes as before.
"""

from __future__ import annotations

import os
import select
import socket
from typing import Protocol

from blobsvc.storage import FileRegion

#: Bytes per sendfile call at most (Linux sends at most about 2 GiB anyway).
_MAX_CALL = 1 << 30


class RegionSink(Protocol):
    """The body a :class:`FileChunk` came from, told what the server did with it."""

    def region_taken(self) -> None:
        """The server sends the region; the body yields no bytes of its own."""

    def region_sent(self, count: int) -> None:
        """``count`` more bytes of the region reached the socket."""


class FileChunk(bytes):
    """An empty chunk that carries a file region and the body it came from."""

    region: FileRegion
    sink: RegionSink

    def __new__(cls, region: FileRegion, sink: RegionSink) -> FileChunk:
        chunk = super().__new__(cls, b"")
        chunk.region = region
        chunk.sink = sink
        return chunk


def send_region(sock: socket.socket, region: FileRegion, sink: RegionSink) -> int:
    """Send ``region`` on ``sock`` with sendfile; the bytes sent.

    Fewer than ``region.count`` only when the file ended early (truncated
    under the reader). The socket's timeout bounds each wait for room in
    its buffer, as it bounds each ``send``; socket errors (a client that
    went away) raise, after what was sent has been reported to ``sink``.
    Unlike ``socket.sendfile`` this never falls back to reading the file
    into Python, and needs no file object.
    """
    timeout = sock.gettimeout()
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    out, total = sock.fileno(), 0
    while total < region.count:
        try:
            sent = os.sendfile(out, region.fd, region.offset + total,
                               min(region.count - total, _MAX_CALL))
        except (BlockingIOError, InterruptedError):
            if not poller.poll(None if timeout is None else timeout * 1000):
                raise TimeoutError("timed out sending a file") from None
            continue
        if sent == 0:
            break  # end of file: it is shorter than when it was opened
        total += sent
        sink.region_sent(sent)
    return total

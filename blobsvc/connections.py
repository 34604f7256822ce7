"""Connections wait in cheroot's selector, not on a thread, until a whole
request head has arrived.

cheroot hands every new connection to a worker thread at once, and the
thread then blocks reading the request line and headers. 300 connections
that send nothing, or a few dozen that send a header byte every few
seconds (slowloris), so took every thread, and well-behaved clients waited
for a socket timeout. Here the selector thread reads what a connection has
sent without blocking and keeps it beside the connection; only a complete
head (or one already too large, for the thread to refuse) goes to a thread,
which then parses it from memory.

Deadlines, checked by the selector every half second:

- a connection that has started a request head must finish it within
  ``header_timeout`` seconds of its first byte, however slowly it trickles;
- any waiting connection (new, kept alive between requests, or inside a
  head) is closed after ``socket_timeout`` seconds of silence.

At ``max_connections`` open connections, accepting one more closes the
waiting connection nearest its deadline, so a flood of idle connections
cannot lock new clients out. Over TLS, the handshake and the head are read
by the thread, as cheroot does (put a TLS-terminating proxy in front of a
service exposed to untrusted clients).
"""

from __future__ import annotations

import _pyio
import socket
import time
from typing import TYPE_CHECKING

from cheroot import connections
from cheroot.makefile import StreamReader

if TYPE_CHECKING:
    from cheroot.server import HTTPConnection

#: Bytes read from a waiting connection per readiness event.
_RECV_SIZE = 64 * 1024


class PrefixedSocketIO(socket.SocketIO):
    """A socket's raw reader that first returns bytes already received."""

    def __init__(self, sock: socket.socket, prefix: bytes) -> None:
        super().__init__(sock, "rb")
        self._prefix = memoryview(prefix)

    def take_prefix(self) -> bytes:
        prefix, self._prefix = bytes(self._prefix), memoryview(b"")
        return prefix

    def readinto(self, buffer) -> int:
        if self._prefix:
            count = min(len(buffer), len(self._prefix))
            buffer[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        return super().readinto(buffer)


class PrefixedStreamReader(StreamReader):
    """cheroot's socket reader over :class:`PrefixedSocketIO`."""

    def __init__(self, sock: socket.socket, prefix: bytes, bufsize: int) -> None:
        _pyio.BufferedReader.__init__(self, PrefixedSocketIO(sock, prefix), bufsize)
        self.bytes_read = 0

    def has_data(self) -> bool:
        return super().has_data() or bool(self.raw._prefix)


def take_buffered(rfile: StreamReader) -> bytes:
    """Bytes received on a connection but not yet parsed: its next request."""
    data = rfile.read(len(rfile.peek(0))) if StreamReader.has_data(rfile) else b""
    if isinstance(rfile, PrefixedStreamReader):
        data += rfile.raw.take_prefix()
    return data


class HeadWaitingManager(connections.ConnectionManager):
    """cheroot's connection manager, dispatching only complete request heads."""

    def __init__(self, server) -> None:
        super().__init__(server)
        self.header_timeout: float = server.header_timeout
        self.max_connections: int = server.max_connections

    # -- new connections ----------------------------------------------------

    def _from_server_socket(self, server_socket):
        conn = super()._from_server_socket(server_socket)
        if conn is not None:
            self._make_room()
            conn.blobsvc_head = bytearray()
            conn.blobsvc_head_started = None
            self.put(conn)
        return None  # parked, not dispatched: cheroot's loop has nothing to do

    def _make_room(self) -> None:
        if self.waiting < self.max_connections:
            return
        waiting = [conn for _, conn in self._selector.connections if conn is not self.server]
        if not waiting:
            return
        victim = min(waiting, key=self._deadline)
        self._selector.unregister(victim.socket.fileno())
        victim.close()

    # -- after each request, and on readiness ---------------------------------

    def put(self, conn: HTTPConnection) -> None:
        """Park ``conn`` until its next request head is complete."""
        conn.last_used = time.time()
        head = getattr(conn, "blobsvc_head", None)
        if head is None:  # a connection made before this manager existed
            head = conn.blobsvc_head = bytearray()
            conn.blobsvc_head_started = None
        if conn.rfile.has_data():  # pipelined: the next request came with the last
            head += take_buffered(conn.rfile)
            conn.blobsvc_head_started = conn.blobsvc_head_started or time.time()
        if self._head_complete(conn):
            self._dispatch(conn)
        else:
            self._selector.register(conn.socket.fileno(), connections.selectors.EVENT_READ, data=conn)

    def receive(self, conn: HTTPConnection) -> None:
        """``conn`` is readable (called by the selector loop): take what it sent."""
        if self.server.ssl_adapter is not None:
            self._dispatch(conn)  # TLS records need the thread's reader
            return
        try:
            data = conn.socket.recv(_RECV_SIZE)
        except (TimeoutError, BlockingIOError, InterruptedError):
            data = None
        except OSError:
            data = b""
        if data == b"":
            conn.close()  # the client went away (or reset) between requests
            return
        if data:
            conn.blobsvc_head += data
            conn.last_used = time.time()
            conn.blobsvc_head_started = conn.blobsvc_head_started or conn.last_used
        if self._head_complete(conn):
            self._dispatch(conn)
        else:
            self._selector.register(conn.socket.fileno(), connections.selectors.EVENT_READ, data=conn)

    def _head_complete(self, conn: HTTPConnection) -> bool:
        head = conn.blobsvc_head
        # A bare-LF head is complete too: the thread refuses it at once.
        return (b"\r\n\r\n" in head or b"\n\n" in head
                or len(head) > self.server.max_request_header_size)

    def _dispatch(self, conn: HTTPConnection) -> None:
        head = bytes(conn.blobsvc_head)
        conn.blobsvc_head = bytearray()
        conn.blobsvc_head_started = None
        if head:
            conn.rfile.close()  # drops its hold on the socket (already drained)
            conn.rfile = PrefixedStreamReader(conn.socket, head, conn.rbufsize)
        self.server.dispatch(conn)

    # -- deadlines ------------------------------------------------------------

    def _deadline(self, conn: HTTPConnection) -> float:
        silent_until = conn.last_used + self.server.timeout
        started = getattr(conn, "blobsvc_head_started", None)
        if started is None:
            return silent_until
        return min(silent_until, started + self.header_timeout)

    def _expire(self, threshold: float) -> None:
        """Close connections past their deadline (``threshold`` is cheroot's,
        for idle ones only; heads in progress have their own)."""
        now = time.time()
        expired = [(fd, conn) for fd, conn in self._selector.connections
                   if conn is not self.server and self._deadline(conn) < now]
        for fd, conn in expired:
            self._selector.unregister(fd)
            conn.close()

    @property
    def waiting(self) -> int:
        """Connections parked in the selector (for tests and metrics)."""
        return len(self._selector) - 1

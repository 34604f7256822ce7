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

Every connection waiting in the listen queue is accepted when the
listening socket becomes readable (up to :data:`_ACCEPT_BATCH` at a time).
cheroot accepts one per turn of its loop, and a turn here reads every
connection that became readable: with a few hundred busy connections a
turn takes tens of milliseconds, so a burst of new connections waited
seconds in the listen queue with their first request unanswered.

At ``max_connections`` open connections, accepting one more closes the
waiting connection nearest its deadline, so a flood of idle connections
cannot lock new clients out. Over TLS, cheroot makes the handshake as it
accepts, on the selector thread, so connections are accepted one per turn
there; the head is read by a worker thread (put a TLS-terminating proxy in
front of a service exposed to untrusted clients).
"""

from __future__ import annotations

import _pyio
import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cheroot import connections
from cheroot.makefile import StreamReader

if TYPE_CHECKING:
    from cheroot.server import HTTPConnection

#: Bytes read from a waiting connection per readiness event.
_RECV_SIZE = 64 * 1024
#: Connections accepted per readiness of the listening socket, at most: the
#: queue drains in a few turns even under a flood, and the connections
#: already open still get their turn.
_ACCEPT_BATCH = 128


class PrefixedSocketIO(socket.SocketIO):
    """A socket's raw reader that first returns bytes already received."""

    def __init__(self, sock: socket.socket, prefix: bytes) -> None:
        super().__init__(sock, "rb")
        self._prefix = prefix
        self._position = 0

    @property
    def pending(self) -> bool:
        return self._position < len(self._prefix)

    def take_prefix(self) -> bytes:
        prefix = self._prefix[self._position:]
        self._prefix, self._position = b"", 0
        return prefix

    def line(self, limit: int) -> bytes | None:
        """The prefix's next line (at most ``limit`` bytes; -1: no limit),
        or None if it holds no whole one."""
        end = self._prefix.find(b"\n", self._position)
        if end < 0:
            return None
        stop = end + 1 if limit < 0 else min(end + 1, self._position + limit)
        line = self._prefix[self._position:stop]
        self._position = stop
        return line

    def readinto(self, buffer: Any) -> int:
        if self.pending:
            count = min(len(buffer), len(self._prefix) - self._position)
            buffer[:count] = self._prefix[self._position:self._position + count]
            self._position += count
            return count
        return super().readinto(buffer) or 0


class PrefixedStreamReader(StreamReader):
    """cheroot's socket reader over :class:`PrefixedSocketIO`.

    The request head is already in the prefix: its lines are cut from it
    directly, not through ``_pyio``'s pure-Python readline (which peeks and
    copies its way along every line, a tenth of a small GET).
    """

    def __init__(self, sock: socket.socket, prefix: bytes, bufsize: int) -> None:
        self._prefixed = PrefixedSocketIO(sock, prefix)
        _pyio.BufferedReader.__init__(self, self._prefixed, bufsize)
        self.bytes_read = 0

    @property
    def prefix(self) -> PrefixedSocketIO:
        return self._prefixed

    def has_data(self) -> bool:
        return super().has_data() or self._prefixed.pending

    def readline(self, size: int | None = -1) -> bytes:
        if not buffered_count(self):
            line = self._prefixed.line(-1 if size is None else size)
            if line is not None:
                self.bytes_read += len(line)
                return line
        return super().readline(size)


def buffered_count(rfile: StreamReader) -> int:
    """Bytes cheroot's reader holds already received (``_pyio``'s buffer,
    which cheroot's own ``has_data`` reads the same way)."""
    return len(rfile._read_buf) - rfile._read_pos  # type: ignore[attr-defined]


class DirectReader:
    """A request body read into the caller's buffer: first what cheroot's
    reader already holds (the head came with some of the body, or a chunk
    line read ahead), then straight from the socket with ``recv_into``.

    cheroot's reader is ``_pyio``'s pure-Python BufferedReader, which makes
    and copies several bytes objects per MiB read; this makes none. It only
    goes to the socket once that reader is empty, and never asks the socket
    for more than the caller's buffer, which the body readers limit to what
    the framing allows: bytes after the body (a pipelined request) stay
    where cheroot finds them. The socket's timeout bounds each wait, as it
    bounds cheroot's own reads. Plain sockets only: over TLS the record
    layer needs cheroot's reader.
    """

    def __init__(self, rfile: StreamReader, sock: socket.socket) -> None:
        self.rfile = rfile
        self.sock = sock

    def readinto(self, buffer: memoryview, /) -> int:
        held = buffered_count(self.rfile)
        if held:
            count: int = self.rfile.readinto(buffer[:held])
        elif isinstance(self.rfile, PrefixedStreamReader) and self.rfile.prefix.pending:
            count = self.rfile.prefix.readinto(buffer)
        else:
            count = self.sock.recv_into(buffer)
        self.rfile.bytes_read += count
        return count


def take_buffered(rfile: StreamReader) -> bytes:
    """Bytes received on a connection but not yet parsed: its next request."""
    data = rfile.read(len(rfile.peek(0))) if StreamReader.has_data(rfile) else b""
    if isinstance(rfile, PrefixedStreamReader):
        data += rfile.prefix.take_prefix()
    return data


@dataclass
class _Head:
    """What a waiting connection has sent of its next request head."""

    data: bytearray = field(default_factory=bytearray)
    #: When its first byte came (None: nothing yet, an idle connection).
    started: float | None = None


class HeadWaitingManager(connections.ConnectionManager):
    """cheroot's connection manager, dispatching only complete request heads."""

    #: cheroot's own (untyped) selector wrapper.
    _selector: Any

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.header_timeout: float = server.header_timeout
        self.max_connections: int = server.max_connections
        #: The connections parked in the selector, with what each has sent.
        self._heads: dict[HTTPConnection, _Head] = {}
        # Accepting until the queue is empty must not wait once it is
        # (cheroot gives the listening socket a one-second timeout).
        server.socket.setblocking(False)

    # -- new connections ----------------------------------------------------

    def _from_server_socket(self, server_socket: socket.socket) -> None:
        # Over TLS each accept includes a handshake that may take up to the
        # socket timeout: one per turn, so the loop keeps serving the others.
        batch = _ACCEPT_BATCH if self.server.ssl_adapter is None else 1
        for _ in range(batch):
            # A private hook of cheroot's (its type stubs leave it out); None
            # once the queue is empty (EAGAIN) or for a failed TLS handshake.
            conn = super()._from_server_socket(server_socket)  # type: ignore[misc]
            if conn is None:
                break
            self._make_room()
            self.put(conn)
        return None  # parked, not dispatched: cheroot's loop has nothing to do

    def _make_room(self) -> None:
        if self.waiting < self.max_connections or not self._heads:
            return
        # A snapshot: worker threads park connections (put) meanwhile.
        victim = min(list(self._heads), key=self._deadline)
        self._close(victim)

    # -- after each request, and on readiness ---------------------------------

    def put(self, conn: HTTPConnection) -> None:
        """Park ``conn`` until its next request head is complete."""
        conn.last_used = time.time()
        head = _Head()
        if conn.rfile.has_data():  # pipelined: the next request came with the last
            head.data += take_buffered(conn.rfile)
            head.started = time.time()
        self._wait_or_dispatch(conn, head)

    def receive(self, conn: HTTPConnection) -> None:
        """``conn`` is readable (called by the selector loop): take what it sent."""
        head = self._heads.pop(conn, None) or _Head()
        if self.server.ssl_adapter is not None:
            self._dispatch(conn, head)  # TLS records need the thread's reader
            return
        try:
            data: bytes | None = conn.socket.recv(_RECV_SIZE)
        except (TimeoutError, BlockingIOError, InterruptedError):
            data = None
        except OSError:
            data = b""
        if data == b"":
            conn.close()  # the client went away (or reset) between requests
            return
        if data:
            head.data += data
            conn.last_used = time.time()
            head.started = head.started or conn.last_used
        self._wait_or_dispatch(conn, head)

    def _wait_or_dispatch(self, conn: HTTPConnection, head: _Head) -> None:
        # A bare-LF head is complete too: the thread refuses it at once.
        complete = (b"\r\n\r\n" in head.data or b"\n\n" in head.data
                    or len(head.data) > self.server.max_request_header_size)
        if complete:
            self._dispatch(conn, head)
        else:
            self._heads[conn] = head
            self._selector.register(conn.socket.fileno(), selectors.EVENT_READ, data=conn)

    def _dispatch(self, conn: HTTPConnection, head: _Head) -> None:
        if head.data:
            conn.rfile.close()  # drops its hold on the socket (already drained)
            conn.rfile = PrefixedStreamReader(conn.socket, bytes(head.data), conn.rbufsize)
        self.server.dispatch(conn)

    # -- deadlines ------------------------------------------------------------

    def _deadline(self, conn: HTTPConnection) -> float:
        silent_until: float = conn.last_used + self.server.timeout
        started = self._heads[conn].started
        if started is None:
            return silent_until
        return min(silent_until, started + self.header_timeout)

    def _expire(self, threshold: float) -> None:
        """Close connections past their deadline (``threshold`` is cheroot's,
        for idle ones only; heads in progress have their own)."""
        now = time.time()
        # A snapshot, as in _make_room; only this thread removes connections.
        for conn in [c for c in list(self._heads) if self._deadline(c) < now]:
            self._close(conn)

    def _close(self, conn: HTTPConnection) -> None:
        del self._heads[conn]
        self._selector.unregister(conn.socket.fileno())
        conn.close()

    @property
    def waiting(self) -> int:
        """Connections parked in the selector (for tests and metrics)."""
        return len(self._heads)

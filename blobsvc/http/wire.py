"""What blobsvc changes in cheroot, the HTTP server under CherryPy.

- Requests are framed strictly (see :mod:`blobsvc.http.framing`): a header or
  body that RFC 9112 lets a server either repair or reject is rejected with
  ``400`` and the connection closed, in HTTP/1.0 as in HTTP/1.1.
- A request whose body was not read to its end (refused before it was read,
  cut short, malformed) closes its connection: cheroot would otherwise read
  the rest into memory in one piece, or, for a chunked body, parse it as
  the next request.
- ``100 Continue`` is sent when the application first reads the body,
  after authorisation and the size and precondition checks, not on the
  headers alone as cheroot does.
- Request bodies are read into the reader's own buffer straight from the
  socket once cheroot's buffer is drained (see
  :class:`blobsvc.http.connections.DirectReader`); over TLS through cheroot's
  reader, as before.
- Connections wait for a complete request head in the selector, not on a
  thread (see :mod:`blobsvc.http.connections`).
- Errors cheroot answers itself (malformed request line or headers, headers
  too large, a client too slow) are sent in the API's JSON error shape.
- An HTTP/1.1 request without Host is refused here, in JSON, rather
  than by CherryPy with an HTML page.
- ``Connection: close`` set by the application closes the connection.
- The thread pool grows while threads are held up on their connections
  (slow clients, long transfers; up to a cap) and shrinks back when idle.
- An object body backed by a file is sent with ``sendfile(2)`` on plain
  HTTP (see :mod:`blobsvc.http.sendfile`); over TLS it is written as before.
- Worker processes share the port with SO_REUSEPORT, which cheroot offers
  as an argument only from version 10 on (Debian 12 ships 9.0).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from cheroot import errors, server, wsgi

from blobsvc.http import framing
from blobsvc.http.connections import DirectReader, HeadWaitingManager
from blobsvc.http.errors import CODE_BY_STATUS, error_body
from blobsvc.http.exchange import HEADER_NAMES_KEY
from blobsvc.http.sendfile import FileChunk, send_region

log = logging.getLogger(__name__)


class _Refused(Exception):
    """The request cannot be served as framed; answer ``status`` and close."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class StrictRequest(server.HTTPRequest):
    def __init__(self, server_: server.HTTPServer, conn: server.HTTPConnection,
                 proxy_mode: bool = False, strict_mode: bool = True) -> None:
        # "proxy mode" is how cheroot accepts absolute-form targets
        # (GET http://host/path), which RFC 9112 (3.2.2) says every server
        # must; the app routes on the path alone either way.
        super().__init__(server_, conn, proxy_mode=True, strict_mode=strict_mode)
        self.body_length = 0
        self.expect_continue = False

    def read_request_headers(self) -> bool:
        try:
            try:
                framing.read_header_fields(self.rfile, self.inheaders)
            except errors.MaxSizeExceeded:
                raise _Refused("431 Request Header Fields Too Large",
                               "the request headers are larger than the server accepts") from None
            self._frame_body()
            self._decide_persistence()
        except framing.DeclaredTooLarge as exc:
            self.close_connection = True
            self.simple_response("413 Content Too Large", str(exc))
            return False
        except framing.FramingError as exc:
            self.close_connection = True
            self.simple_response("400 Bad Request", str(exc))
            return False
        except _Refused as exc:
            self.close_connection = True
            self.simple_response(exc.status, str(exc))
            return False
        return True

    def _frame_body(self) -> None:
        """RFC 9112 section 6: where this request's body ends."""
        headers = self.inheaders
        transfer_encoding = headers.get(b"Transfer-Encoding")
        length = headers.get(b"Content-Length")
        self.chunked_read = False
        if transfer_encoding is not None:
            if self.response_protocol != "HTTP/1.1":
                raise framing.FramingError("Transfer-Encoding is not defined in HTTP/1.0")
            if length is not None:
                raise framing.FramingError(
                    "Content-Length and Transfer-Encoding: chunked are exclusive")
            codings = framing.transfer_codings(transfer_encoding)
            if not codings or codings[-1] != b"chunked":
                raise framing.FramingError("a request body's last transfer coding must be chunked")
            if codings != [b"chunked"]:
                raise _Refused("501 Not Implemented", "only the chunked transfer coding is supported")
            self.chunked_read = True
        elif length is not None:
            self.body_length = framing.content_length(length)
            headers[b"Content-Length"] = str(self.body_length).encode("ascii")
        if self.response_protocol == "HTTP/1.1" and b"Host" not in headers:
            # CherryPy would refuse it too, but with an HTML page.
            raise framing.FramingError("HTTP/1.1 requires a Host header")
        expect = headers.get(b"Expect")
        if expect is not None:
            if expect.strip(b" \t").lower() != b"100-continue":
                raise _Refused("417 Expectation Failed", "the only expectation supported is 100-continue")
            # RFC 9110 10.1.1: an HTTP/1.0 client's expectation is ignored.
            self.expect_continue = self.response_protocol == "HTTP/1.1"

    def _decide_persistence(self) -> None:
        tokens = framing.transfer_codings(self.inheaders.get(b"Connection", b""))
        if self.response_protocol == "HTTP/1.1":
            self.close_connection = b"close" in tokens
        else:
            self.close_connection = b"keep-alive" not in tokens

    def respond(self) -> None:
        send_continue = self._send_continue if self.expect_continue else None
        raw = None if self.server.ssl_adapter is not None else DirectReader(
            self.conn.rfile, self.conn.socket)
        if self.chunked_read:
            self.rfile = framing.ChunkedBody(self.conn.rfile, send_continue, raw)
        else:
            self.rfile = framing.FixedLengthBody(self.conn.rfile, self.body_length,
                                                 send_continue, raw)
        self.server.gateway(self).respond()
        if self.ready:
            self.ensure_headers_sent()
        if self.chunked_write:
            self.conn.wfile.write(b"0\r\n\r\n")
        if not self.rfile.complete:
            self.close_connection = True

    def write(self, chunk: bytes) -> None:
        """A body chunk, sent from a view of it: cheroot's writer copies what
        the socket has not taken yet after every partial send, so a MiB went
        through several copies (a third of a Swift GET's CPU). Each send
        waits at most the socket timeout, as cheroot's did: a client that
        reads slowly but steadily is not cut off (``sendall`` would time
        the whole chunk)."""
        if self.chunked_write or not chunk:
            super().write(chunk)
            return
        self.conn.wfile.flush()  # the headers, if any are still buffered
        view = memoryview(chunk)
        while view:
            view = view[self.conn.socket.send(view):]
        self.conn.wfile.bytes_written += len(chunk)

    def _send_continue(self) -> None:
        if not self.sent_headers:
            self.conn.wfile.write(self.server.protocol.encode("ascii") + b" 100 Continue\r\n\r\n")

    def send_headers(self) -> None:
        # Bytes left of an unread body are no request: the connection ends
        # with this answer (and cheroot must not drain them into memory).
        if not getattr(self.rfile, "complete", True):
            self.close_connection = True
        super().send_headers()

    def simple_response(self, status: str | int, msg: str | bytes = "") -> None:
        status = str(status)
        code = int(status[:3])
        if isinstance(msg, bytes):
            msg = msg.decode("latin-1")
        body = error_body(code, CODE_BY_STATUS.get(code, "bad_request"), msg or status[4:])
        if code in (400, 408, 413, 414, 417, 431) or code >= 500:
            self.close_connection = True
        lines = [f"{self.server.protocol} {status}", f"Content-Length: {len(body)}",
                 "Content-Type: application/json", "X-Content-Type-Options: nosniff"]
        if self.close_connection:
            lines.append("Connection: close")
        head = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n"
        try:
            self.conn.wfile.write(head + body)
        except OSError as exc:
            if exc.args[0] not in errors.socket_errors_to_ignore:
                raise


class StrictConnection(server.HTTPConnection):
    RequestHandlerClass = StrictRequest


class ClosingGateway(wsgi.Gateway_10):
    """Honours ``Connection: close`` in the application's answer, and sends
    file regions offered by the body with sendfile."""

    def get_environ(self) -> dict[str, Any]:  # type: ignore[override]
        environ: dict[str, Any] = super().get_environ()
        environ[HEADER_NAMES_KEY] = [name.decode("latin-1") for name in self.req.inheaders]
        return environ

    def respond(self) -> None:
        # cheroot's own loop, but a FileChunk (empty, so cheroot would skip
        # it) is handed to _send_file.
        response = self.req.server.wsgi_app(self.env, self.start_response)
        try:
            for chunk in response:
                if isinstance(chunk, FileChunk):
                    self._send_file(chunk)
                elif chunk:
                    if not isinstance(chunk, bytes):
                        raise ValueError("WSGI Applications must yield bytes")
                    self.write(chunk)
        finally:
            try:
                self.req.ensure_headers_sent()  # a client gone raises here...
            finally:
                if hasattr(response, "close"):
                    response.close()  # ...and the answer still ends: log, streams

    def _send_file(self, chunk: FileChunk) -> None:
        """Send ``chunk``'s region with sendfile, or leave it to the body
        (which then yields the bytes itself) where that cannot work: TLS
        encrypts in user space, and a chunked or shorter answer needs framing."""
        self.req.ensure_headers_sent()
        region = chunk.region
        if (self.req.server.ssl_adapter is not None or self.req.chunked_write
                or self.remaining_bytes_out != region.count):
            return
        chunk.sink.region_taken()
        self.req.conn.wfile.flush()  # the headers go first
        sent = send_region(self.req.conn.socket, region, chunk.sink)
        self.remaining_bytes_out -= sent
        log.debug("sendfile sent %d of %d bytes", sent, region.count)

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Any:
        for name, value in headers:
            if name.lower() == "connection" and value.lower() == "close":
                self.req.close_connection = True
        return super().start_response(status, headers, exc_info)


class Server(wsgi.Server):
    ConnectionClass = StrictConnection
    #: Seconds from a request head's first byte to its last.
    header_timeout = 10.0
    #: Open connections kept waiting at most; the oldest goes first.
    max_connections = 4096

    def __init__(self, *args: Any, reuse_port: bool = False, header_timeout: float = 10.0,
                 max_connections: int = 4096, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gateway = ClosingGateway
        self.blobsvc_reuse_port = reuse_port
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.keep_alive_conn_limit = max_connections

    def prepare(self) -> None:
        super().prepare()
        cheroots_own: Any = self._connections
        self._connections: Any = HeadWaitingManager(self)
        cheroots_own._selector.close()

    def process_conn(self, conn: server.HTTPConnection) -> None:
        """A waiting connection became readable: read without blocking."""
        self._connections.receive(conn)

    def dispatch(self, conn: server.HTTPConnection) -> None:
        """Give ``conn``, with a complete request head, to a worker thread."""
        super().process_conn(conn)

    @property
    def waiting_connections(self) -> int:
        return self._connections.waiting

    # An instance method on purpose (cheroot's is a classmethod, without
    # reuse_port before version 10): it needs this server's setting.
    def prepare_socket(self, *args: Any, **kwargs: Any) -> socket.socket:  # type: ignore[override]
        sock: socket.socket = wsgi.Server.prepare_socket(*args, **kwargs)
        if self.blobsvc_reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        return sock


class PoolGrower:
    """Adds threads to a cheroot pool whose threads are held up; removes the
    extra ones after they have been idle a while.

    A thread is held up when it has been on the same connection since the
    last look (a slow client, a long transfer), and the pool grows while
    fewer than :attr:`STEP` threads are idle or moving on. With a few
    hundred busy connections no thread is ever idle, but each finishes its
    request in milliseconds: more of them cannot run at once under the GIL,
    only take turns, and a pool grown to its cap for that spent more CPU
    per request and served fewer.
    """

    #: How often the pool is looked at, and how many threads one look adds.
    INTERVAL = 0.05
    STEP = 4
    #: Seconds with spare threads before the pool shrinks to its minimum.
    SHRINK_AFTER = 30.0

    def __init__(self, server: wsgi.Server, max_threads: int) -> None:
        self.pool = server.requests
        self.pool.max = max(max_threads, self.pool.min)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="blobsvc-pool", daemon=True)
        self._spare_since: float | None = None
        #: Each busy thread's connection at the last look.
        self._held: dict[Any, Any] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            self.look()

    def look(self) -> None:
        """Look at the pool once: grow it, shrink it or leave it."""
        threads = list(self.pool._threads)
        idle = self.pool.idle
        held = {thread: thread.conn for thread in threads if thread.conn is not None}
        stuck = sum(1 for thread, conn in held.items() if self._held.get(thread) is conn)
        self._held = held
        if idle == 0:
            if len(threads) - stuck < self.STEP:
                self.pool.grow(self.STEP)  # no-op at the cap
            self._spare_since = None
        elif idle > self.pool.min:
            self._spare_since = self._spare_since or time.monotonic()
            if time.monotonic() - self._spare_since > self.SHRINK_AFTER:
                self.pool.shrink(idle - self.pool.min)
                self._spare_since = None
        else:
            self._spare_since = None

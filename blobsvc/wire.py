"""What blobsvc changes in cheroot, the HTTP server under CherryPy.

- Errors cheroot answers itself (malformed request line or headers, bad
  Content-Length, headers too large, a client too slow) are sent in the
  API's JSON error shape instead of text/plain.
- An HTTP/1.1 request without Host is refused here, in JSON, rather
  than by CherryPy with an HTML page.
- A request with both Content-Length and ``Transfer-Encoding: chunked`` is
  refused and its connection closed (RFC 9112 section 6.1): reading it
  either way would let the rest be taken as a second, smuggled request.
- ``Connection: close`` set by the application closes the connection;
  cheroot would otherwise keep it and drain a refused body into memory.
- The thread pool grows while every thread is busy (up to a cap) and
  shrinks back when idle: a client that sends half a request holds a thread
  until the socket timeout, and a fixed pool lets a few such clients stall
  everyone else.
- Worker processes share the port with SO_REUSEPORT, which cheroot offers
  as an argument only from version 10 on (Debian 12 ships 9.0).
"""

from __future__ import annotations

import socket
import threading
import time

from cheroot import errors, server, wsgi

from blobsvc.responses import CODE_BY_STATUS, error_body


class JsonErrorRequest(server.HTTPRequest):
    def __init__(self, server_, conn, proxy_mode=False, strict_mode=True) -> None:
        # "proxy mode" is how cheroot accepts absolute-form targets
        # (GET http://host/path), which RFC 9112 (3.2.2) says every server
        # must; the app routes on the path alone either way.
        super().__init__(server_, conn, proxy_mode=True, strict_mode=strict_mode)

    def read_request_headers(self) -> bool:
        if not super().read_request_headers():
            return False
        if self.chunked_read and b"Content-Length" in self.inheaders:
            self.close_connection = True
            self.simple_response("400 Bad Request",
                                 "Content-Length and Transfer-Encoding: chunked are exclusive")
            return False
        if self.request_protocol == b"HTTP/1.1" and b"Host" not in self.inheaders:
            # CherryPy would refuse it too, but with an HTML page.
            self.simple_response("400 Bad Request", "HTTP/1.1 requires a Host header")
            return False
        return True

    def simple_response(self, status, msg="") -> None:
        status = str(status)
        code = int(status[:3])
        if isinstance(msg, bytes):
            msg = msg.decode("latin-1")
        body = error_body(code, CODE_BY_STATUS.get(code, "bad_request"), msg or status[4:])
        if code in (400, 408, 413, 414) or code >= 500:
            self.close_connection = True
        lines = [f"{self.server.protocol} {status}", f"Content-Length: {len(body)}",
                 "Content-Type: application/json"]
        if self.close_connection:
            lines.append("Connection: close")
        head = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n"
        try:
            self.conn.wfile.write(head + body)
        except OSError as exc:
            if exc.args[0] not in errors.socket_errors_to_ignore:
                raise


class JsonErrorConnection(server.HTTPConnection):
    RequestHandlerClass = JsonErrorRequest


class ClosingGateway(wsgi.Gateway_10):
    """Honours ``Connection: close`` in the application's answer."""

    def start_response(self, status, headers, exc_info=None):
        for name, value in headers:
            if name.lower() == "connection" and value.lower() == "close":
                self.req.close_connection = True
        return super().start_response(status, headers, exc_info)


class Server(wsgi.Server):
    ConnectionClass = JsonErrorConnection

    def __init__(self, *args, reuse_port: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gateway = ClosingGateway
        self.blobsvc_reuse_port = reuse_port

    def prepare_socket(self, *args, **kwargs):  # an instance method here, on purpose
        sock = wsgi.Server.prepare_socket(*args, **kwargs)
        if self.blobsvc_reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        return sock


class PoolGrower:
    """Adds threads to a cheroot pool that has none idle; removes the extra
    ones after they have been idle a while."""

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

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        spare_since: float | None = None
        while not self._stop.wait(self.INTERVAL):
            idle = self.pool.idle
            if idle == 0:
                self.pool.grow(self.STEP)  # no-op at the cap
                spare_since = None
            elif idle > self.pool.min:
                spare_since = spare_since or time.monotonic()
                if time.monotonic() - spare_since > self.SHRINK_AFTER:
                    self.pool.shrink(idle - self.pool.min)
                    spare_since = None
            else:
                spare_since = None

"""Tiny HTTP servers that misbehave on purpose, to test a client's retries
and its handling of broken answers.

A :class:`FaultServer` listens on 127.0.0.1 (a free port the kernel picks)
and plays a script: the n-th request it receives gets the n-th
:class:`Fault` (the last one repeats). Every request is recorded (method,
target, headers, the body bytes that arrived), so a test counts attempts and
checks what each one sent. One connection carries one request: each answer
says ``Connection: close``.

Nothing here waits without a bound: sockets time out, a silent answer waits
at most its given seconds, and :meth:`FaultServer.stop` ends every thread.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Iterator, Sequence

#: How long a connection may take to send its request before it is dropped.
SOCKET_TIMEOUT = 10.0
MAX_HEAD = 64 * 1024


@dataclass
class Request:
    """One request as the server received it (the body as far as it was read)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Fault:
    """What to do with one request.

    ``action``:

    * ``"answer"``: read the whole body, then send ``status``, ``headers``
      and ``body`` (with ``declared_length`` as Content-Length if given,
      which may promise more than ``body`` holds: the connection then closes
      short).
    * ``"reset"``: read ``read_body`` bytes of the body (all of it if
      ``None``, none if 0), then reset the connection (RST, no answer).
    * ``"silent"``: read the body, then send nothing for ``seconds``.

    ``chunked`` sends the answer's body chunked (no Content-Length), its
    last chunk left out if ``cut`` is set; ``pause_after`` sends that many
    bytes of the body, then waits ``seconds`` before the rest.
    """

    action: str = "answer"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    declared_length: int | None = None
    read_body: int | None = None
    seconds: float = 0.0
    chunked: bool = False
    cut: bool = False
    pause_after: int | None = None


def answer(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None,
           declared_length: int | None = None) -> Fault:
    return Fault("answer", status, dict(headers or {}), body, declared_length)


def json_answer(status: int, document: object, headers: dict[str, str] | None = None) -> Fault:
    return answer(status, json.dumps(document).encode(),
                  {"Content-Type": "application/json", **(headers or {})})


def error(status: int, code: str, message: str = "scripted", request_id: str = "req-0") -> Fault:
    """The service's error shape, as the service sends it."""
    return json_answer(status, {"error": {"status": status, "code": code, "message": message}},
                       {"X-Request-Id": request_id})


def object_info(path: str, size: int, etag: str = "0" * 32) -> Fault:
    """A ``201`` with an object's info, as a PUT's answer."""
    return json_answer(201, {"path": path, "name": path.rsplit("/", 1)[-1], "isdir": False,
                             "size": size, "ctime": 1.0, "etag": etag,
                             "content_type": "application/octet-stream", "metadata": {},
                             "headers": {}, "expires_at": None})


def reset(read_body: int | None = 0) -> Fault:
    return Fault("reset", read_body=read_body)


def silent(seconds: float) -> Fault:
    return Fault("silent", seconds=seconds)


class FaultServer:
    """Plays ``script`` to whoever connects; use as a context manager."""

    def __init__(self, script: Sequence[Fault]) -> None:
        if not script:
            raise ValueError("a script needs at least one fault")
        self.script = list(script)
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> FaultServer:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def attempts(self) -> int:
        return len(self.requests)

    def stop(self) -> None:
        self._stop.set()
        if self._acceptor.is_alive():
            self._acceptor.join(5)
        self._listener.close()
        for thread in self._threads:
            thread.join(SOCKET_TIMEOUT + 1)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(SOCKET_TIMEOUT)
            with contextlib.suppress(OSError, ValueError):
                reader = conn.makefile("rb")
                request = _read_head(reader)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                    fault = self.script[min(len(self.requests), len(self.script)) - 1]
                self._play(fault, conn, reader, request)

    def _play(self, fault: Fault, conn: socket.socket, reader, request: Request) -> None:
        if fault.action == "reset":
            for piece in _body(reader, request, fault.read_body):
                request.body += piece
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return  # closing with a zero linger sends RST
        for piece in _body(reader, request, None):
            request.body += piece
        if fault.action == "silent":
            self._stop.wait(fault.seconds)
            return
        head = [f"HTTP/1.1 {fault.status} Scripted", "Connection: close"]
        body = fault.body
        if fault.chunked:
            head.append("Transfer-Encoding: chunked")
            body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece)
                            for piece in _pieces(fault.body, 1000))
            body += b"" if fault.cut else b"0\r\n\r\n"
        else:
            length = len(body) if fault.declared_length is None else fault.declared_length
            head.append(f"Content-Length: {length}")
        head += [f"{name}: {value}" for name, value in fault.headers.items()]
        conn.sendall("\r\n".join(head).encode("latin-1") + b"\r\n\r\n")
        if request.method != "HEAD":
            if fault.pause_after is not None:
                conn.sendall(body[:fault.pause_after])
                self._stop.wait(fault.seconds)
                body = body[fault.pause_after:]
            conn.sendall(body)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[start:start + size] for start in range(0, len(data), size)]


def _read_head(reader) -> Request | None:
    line = reader.readline(MAX_HEAD)
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    for _ in range(200):
        line = reader.readline(MAX_HEAD)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return Request(method, target, headers)


def _body(reader, request: Request, limit: int | None) -> Iterator[bytes]:
    """The body's bytes as they arrive, at most ``limit`` of them."""
    budget = limit if limit is not None else float("inf")
    if request.header("transfer-encoding") == "chunked":
        while budget > 0:
            size = int(reader.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                reader.readline(1024)
                return
            data = reader.read(min(size, budget))
            budget -= len(data)
            yield data
            if len(data) < size:
                return
            reader.readline(1024)
        return
    remaining = min(int(request.header("content-length") or 0), budget)
    while remaining > 0:
        data = reader.read(min(remaining, 1024 * 1024))
        if not data:
            return
        remaining -= len(data)
        yield data

"""The HTTP edge under attack, over real sockets: smuggling, framing, bodies
nobody asked for, slow and idle clients, leaked descriptors, active content,
orphaned workers and encoded routes.

A smuggling test sends a request the server must refuse with a second,
complete request pipelined behind it on the same connection (or hidden in
the first one's body). It passes only if the refusal comes back, the
connection then ends, and the second request had no effect: a proxy in
front of blobsvc that framed the bytes differently would otherwise have
let a request past its rules.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import os
import resource
import signal
import socket
import statistics
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from api_client import wait_for
from live_server import GroupServer, filesystem_config, raw_exchange, request_bytes

MiB = 1024 * 1024
USER, PASSWORD = "writer", "a-password-of-some-length"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
AUTH = {
    "anonymous": "none",
    "users": {USER: {"password": PASSWORD, "access": "write"}},
}
#: Peak RSS a worker may reach whatever a client declares or sends.
RSS_LIMIT_KIB = 64 * 1024


# -- raw exchanges ---------------------------------------------------------------


@dataclass
class Conversation:
    responses: list[http.client.HTTPResponse]
    bodies: list[bytes]
    closed_by_server: bool

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.responses]


class _Unclosable(io.BytesIO):
    def close(self) -> None:
        """http.client closes a finished answer's file; the next one follows in it."""


class _Replay:
    """What http.client.HTTPResponse reads from: bytes already received."""

    def __init__(self, data: bytes) -> None:
        self.file = _Unclosable(data)

    def makefile(self, _mode: str):
        return self.file


def converse(port: int, data: bytes, *, wait: float = 3.0, then: bytes = b"",
             pause: float = 0.0) -> Conversation:
    """Send ``data`` (then, after ``pause``, ``then``) without closing our side,
    and read whatever comes back until the server closes or ``wait`` passes."""
    received = bytearray()
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
            if then:
                time.sleep(pause)
                sock.sendall(then)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                piece = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:  # reset: the server closed with our bytes unread
                closed = True
                break
            if not piece:
                closed = True
                break
            received += piece
    replay = _Replay(bytes(received))
    responses, bodies = [], []
    while replay.file.tell() < len(received):
        response = http.client.HTTPResponse(replay)  # type: ignore[arg-type]
        response.begin()
        bodies.append(response.read())
        responses.append(response)
    return Conversation(responses, bodies, closed)


def smuggled_put(name: str, headers: str = "") -> bytes:
    return (f"PUT /v1/objects/smuggled/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
            f"Content-Length: 5\r\n\r\nowned").encode()


def exists(port: int, path: str, headers: dict | None = None) -> bool:
    res = raw_exchange("127.0.0.1", port, request_bytes("HEAD", f"/v1/objects/{path}", headers),
                       method="HEAD")
    assert res.status in (200, 404), res.describe()
    return res.status == 200


def assert_refused_alone(conversation: Conversation, port: int, name: str,
                         statuses: set[int], headers: dict | None = None) -> None:
    assert conversation.statuses and conversation.statuses[0] in statuses, conversation.statuses
    assert len(conversation.responses) == 1, f"a second request ran: {conversation.statuses}"
    assert conversation.closed_by_server, "the connection stayed open after an unread body"
    assert not exists(port, f"smuggled/{name}", headers), "the smuggled request was executed"


# -- servers -----------------------------------------------------------------------


def _server(workdir: Path, **server) -> GroupServer:
    config = filesystem_config(workdir / "data", socket_timeout=2.0, **server)
    return GroupServer(workdir, config).start()


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    server = _server(tmp_path_factory.mktemp("edge-open"), workers=2,
                     max_object_size=64 * MiB)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("edge-auth")
    config = filesystem_config(workdir / "data", socket_timeout=2.0, workers=2,
                               max_object_size=64 * MiB)
    config["auth"] = AUTH
    server = GroupServer(workdir, config).start()
    yield server
    server.stop()


def _name() -> str:
    return uuid.uuid4().hex[:12]


# -- 1. bodies that cannot be read to their end close the connection -------------------


def _chunked_put(body: bytes, target: str = "/v1/objects/edge/chunked") -> bytes:
    return (f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode() + body


BROKEN_CHUNKED_BODIES = {
    "size-ZZ": b"ZZ\r\nhello\r\n0\r\n\r\n",
    "size-negative": b"-1\r\nhello\r\n0\r\n\r\n",
    "short-chunk": b"a\r\nhello\r\n0\r\n\r\n",
    "bare-LF-size-line": b"5\nhello\r\n0\r\n\r\n",
    "absurd-extension": b"5;" + b"x" * 100_000 + b"\r\nhello\r\n0\r\n\r\n",
    "chunk-longer-than-size": b"5\r\nhello, world\r\n0\r\n\r\n",
    "size-0x-prefix": b"0x5\r\nhello\r\n0\r\n\r\n",
    "size-plus-sign": b"+5\r\nhello\r\n0\r\n\r\n",
    "size-underscore": b"0_5\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("body", BROKEN_CHUNKED_BODIES.values(), ids=BROKEN_CHUNKED_BODIES.keys())
def test_a_broken_chunked_body_ends_the_connection(open_server, body):
    name = _name()
    talk = converse(open_server.port, _chunked_put(body) + smuggled_put(name))
    assert_refused_alone(talk, open_server.port, name, {400})


def test_a_body_stalled_past_the_timeout_ends_the_connection(open_server):
    name = _name()
    head = b"PUT /v1/objects/edge/stalled HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nhello"
    talk = converse(open_server.port, head, then=b"world" + smuggled_put(name), pause=3.0, wait=6)
    assert len(talk.responses) <= 1, talk.statuses
    assert talk.closed_by_server
    assert not exists(open_server.port, f"smuggled/{name}")
    assert not exists(open_server.port, "edge/stalled")


@pytest.mark.parametrize("target,method,status", [
    ("/v1/objects/edge/needs-auth", "PUT", 401),
    ("/v1/nowhere", "POST", 404),
    ("/healthz", "PUT", 405),
    ("/v1/move", "POST", 401),
])
def test_a_refused_chunked_request_does_not_run_its_body_as_a_request(auth_server, target,
                                                                      method, status):
    """The refused request's body *is* the second request, as a proxy that
    passed the first one on would never see it."""
    name = _name()
    head = (f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    talk = converse(auth_server.port, head + smuggled_put(name, f"Authorization: {BASIC}\r\n"))
    assert_refused_alone(talk, auth_server.port, name, {status}, {"Authorization": BASIC})


# -- 2. HTTP/1.0 is framed as strictly --------------------------------------------------


def test_http10_with_content_length_and_chunked_is_refused(open_server):
    name = _name()
    request = (b"PUT /v1/objects/edge/te-cl HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
               b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n0\r\n\r\n")
    talk = converse(open_server.port, request + smuggled_put(name))
    assert_refused_alone(talk, open_server.port, name, {400})
    assert not exists(open_server.port, "edge/te-cl")


def test_http10_chunked_put_stores_nothing_and_runs_nothing(open_server):
    name = _name()
    body = smuggled_put(name)
    request = (b"PUT /v1/objects/edge/http10-chunked HTTP/1.0\r\nHost: 127.0.0.1\r\n"
               b"Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n") + body
    talk = converse(open_server.port, request)
    assert_refused_alone(talk, open_server.port, name, {400})
    assert not exists(open_server.port, "edge/http10-chunked")


# -- 3. lax framing is refused ----------------------------------------------------------


LAX_HEADS = {
    "length-plus": b"Content-Length: +5\r\n",
    "length-underscore": b"Content-Length: 0_5\r\n",
    "length-twice-different": b"Content-Length: 5\r\nContent-Length: 50\r\n",
    "length-twice-same": b"Content-Length: 5\r\nContent-Length: 5\r\n",
    "obs-fold-replaces-length": b"Content-Length: 50\r\n 5\r\n",
    "obs-fold-after-other": b"X-Note: a\r\n\tContent-Length: 50\r\nContent-Length: 5\r\n",
    "space-before-colon": b"Content-Length : 5\r\n",
    "host-twice": b"Host: 127.0.0.2\r\nContent-Length: 5\r\n",
    "nul-in-value": b"X-Note: a\x00b\r\nContent-Length: 5\r\n",
}


@pytest.mark.parametrize("fields", LAX_HEADS.values(), ids=LAX_HEADS.keys())
def test_lax_framing_is_refused_and_closes(open_server, fields):
    name = _name()
    request = b"PUT /v1/objects/edge/lax HTTP/1.1\r\nHost: 127.0.0.1\r\n" + fields + b"\r\nhello"
    talk = converse(open_server.port, request + smuggled_put(name))
    assert_refused_alone(talk, open_server.port, name, {400})
    assert talk.responses[0].getheader("Content-Type") == "application/json"


def test_well_framed_pipelined_requests_still_run_in_order(open_server):
    """The rules above refuse broken framing only: a correct pipeline of a
    chunked PUT, a Content-Length PUT and two GETs is answered in full."""
    name = _name()
    pipeline = (
        _chunked_put(b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n", f"/v1/objects/pipe/{name}a")
        + request_bytes("PUT", f"/v1/objects/pipe/{name}b", {"Connection": "keep-alive"}, b"xyz")
        .replace(b"Connection: close\r\n", b"")
        + f"GET /v1/objects/pipe/{name}a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        + f"GET /v1/objects/pipe/{name}b HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    )
    talk = converse(open_server.port, pipeline)
    assert talk.statuses == [201, 201, 200, 200]
    assert talk.bodies[2:] == [b"abcde", b"xyz"]


# -- 5. memory stays flat whatever a client declares --------------------------------------


@pytest.fixture
def fresh_auth_server(tmp_path):
    config = filesystem_config(tmp_path / "data", socket_timeout=5.0, workers=1)
    config["auth"] = AUTH
    server = GroupServer(tmp_path, config).start()
    yield server
    server.stop()


def _pour(port: int, head: bytes, body_size: int, chunked: bool = False) -> bytes:
    """Send ``head`` then up to ``body_size`` bytes of body (as fast as the
    server takes them, until it stops reading), and return its answer."""
    piece = b"[" * MiB
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        sent = 0
        with contextlib.suppress(OSError):
            while sent < body_size:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


BODY = 128 * MiB


@pytest.mark.parametrize("case", ["move-unauthenticated", "cat-authenticated", "healthz-body",
                                  "not-found-body", "one-huge-chunk"])
def test_memory_stays_flat_whatever_the_body(fresh_auth_server, case):
    port = fresh_auth_server.port
    auth = f"Authorization: {BASIC}\r\n"
    heads = {
        "move-unauthenticated": ("POST /v1/move", "", True, False, b"HTTP/1.1 401"),
        "cat-authenticated": ("POST /v1/cat", auth, True, False, b"HTTP/1.1 413"),
        "healthz-body": ("POST /healthz", "Content-Length: 1000000000000\r\n", False, False,
                         b"HTTP/1.1 405"),
        "not-found-body": ("PUT /v1/nowhere", f"Content-Length: {BODY}\r\n", False, False,
                           b"HTTP/1.1 404"),
        "one-huge-chunk": ("PUT /v1/objects/edge/one-chunk", auth, True, True, b"HTTP/1.1 201"),
    }
    request, extra, chunked, one_chunk, expected = heads[case]
    te = "Transfer-Encoding: chunked\r\n" if chunked else ""
    # Keep-alive: a server that wanted the connection back would drain the body.
    head = f"{request} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}{te}\r\n".encode()
    if one_chunk:
        answer = _pour_one_chunk(port, head, BODY)
    else:
        answer = _pour(port, head, BODY, chunked=chunked)
    assert answer.startswith(expected), answer[:200]
    peak = fresh_auth_server.peak_rss_kib()
    assert peak < RSS_LIMIT_KIB, f"peak RSS {peak} KiB for {case}"


def _pour_one_chunk(port: int, head: bytes, size: int) -> bytes:
    piece = b"z" * MiB
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + b"%x\r\n" % size)
        for _ in range(size // len(piece)):
            sock.sendall(piece)
        sock.sendall(b"\r\n0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


# -- 6. 100 Continue only for a request that may succeed -----------------------------------


def _first_answer(port: int, head: bytes, body: bytes = b"") -> tuple[bytes, bytes]:
    """The first status line the server sends after ``head``; then, if it was
    ``100``, the final answer after ``body``."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        first = sock.recv(65536)
        rest = b""
        if first.startswith(b"HTTP/1.1 100"):
            sock.sendall(body)
            with contextlib.suppress(OSError):
                while chunk := sock.recv(65536):
                    rest += chunk
        return first, rest


def _expect_head(path: str, extra: str = "", length: int = 5) -> bytes:
    return (f"PUT /v1/objects/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Expect: 100-continue\r\nContent-Length: {length}\r\n{extra}\r\n").encode()


def test_no_100_continue_before_authorisation(auth_server):
    first, _ = _first_answer(auth_server.port, _expect_head("edge/expect-noauth"))
    assert first.startswith(b"HTTP/1.1 401"), first[:100]


def test_100_continue_for_an_authorised_upload(auth_server):
    first, rest = _first_answer(auth_server.port,
                                _expect_head("edge/expect-ok", f"Authorization: {BASIC}\r\n"),
                                b"hello")
    assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first[:100]
    assert rest.startswith(b"HTTP/1.1 201"), rest[:100]


def test_no_100_continue_for_a_failed_precondition_or_size(open_server):
    res = raw_exchange("127.0.0.1", open_server.port,
                       request_bytes("PUT", "/v1/objects/edge/exists", body=b"there"))
    assert res.status == 201
    first, _ = _first_answer(open_server.port, _expect_head("edge/exists", "If-None-Match: *\r\n"))
    assert first.startswith(b"HTTP/1.1 412"), first[:100]
    first, _ = _first_answer(open_server.port, _expect_head("edge/big", length=65 * MiB))
    assert first.startswith(b"HTTP/1.1 413"), first[:100]


# -- 7. idle and slow clients do not starve the others --------------------------------------


@pytest.fixture
def default_server(tmp_path):
    """Default timeouts and thread counts: what an exposed service runs with."""
    config = filesystem_config(tmp_path / "data", workers=2)
    server = GroupServer(tmp_path, config).start()
    yield server
    server.stop()


def _raise_own_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


IDLE, SLOW, PROBES = 1000, 100, 40


def test_idle_and_slowloris_clients_leave_others_served_within_a_second(default_server):
    _raise_own_fd_limit(IDLE + SLOW + 200)
    port = default_server.port
    stop = threading.Event()
    sockets: list[socket.socket] = []
    try:
        for _ in range(IDLE):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        slow = []
        for i in range(SLOW):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(f"GET /v1/objects/slow/{i} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
            slow.append(sock)
        sockets.extend(slow)

        def trickle() -> None:
            for _ in range(30):  # bounded: at most ~15 s of trickling
                if stop.wait(0.5):
                    return
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.send(b"X")

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        time.sleep(1.0)  # let every connection reach a worker
        latencies = []
        for _ in range(PROBES):
            started = time.monotonic()
            res = raw_exchange("127.0.0.1", port, request_bytes("GET", "/healthz"), timeout=20)
            latencies.append(time.monotonic() - started)
            assert res.status == 200
        stop.set()
        trickler.join(5)
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
    p99 = statistics.quantiles(latencies, n=100)[98]
    assert p99 < 1.0, f"p99 {p99:.2f}s, median {statistics.median(latencies):.3f}s"


def test_a_trickled_head_is_dropped_at_the_header_deadline(tmp_path):
    """A byte every half second never trips a 30 s silence timeout; the
    head's own deadline (2 s here) still ends it."""
    config = filesystem_config(tmp_path / "data", workers=1, header_timeout=2.0,
                               socket_timeout=30.0)
    server = GroupServer(tmp_path, config).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            dropped = None
            for _ in range(40):  # at most 20 s
                time.sleep(0.5)
                try:
                    sock.send(b"X")
                    sock.setblocking(False)
                    if sock.recv(1) == b"":
                        dropped = time.monotonic() - started
                        break
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    dropped = time.monotonic() - started
                    break
                finally:
                    sock.setblocking(True)
    finally:
        server.stop()
    assert dropped is not None and dropped < 5.0, dropped


def test_a_burst_of_new_connections_is_accepted_without_syn_retries(default_server):
    """cheroot's backlog of 5 dropped the SYNs of a burst: each such client
    waited a second or more for the kernel's retry (300 connects took 89 s)."""
    _raise_own_fd_limit(600)
    sockets = []
    started = time.monotonic()
    try:
        for _ in range(300):
            sockets.append(socket.create_connection(("127.0.0.1", default_server.port), timeout=10))
        elapsed = time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close()
    assert elapsed < 0.9, f"300 connections took {elapsed:.2f}s: SYNs were dropped and retried"


def test_the_listen_backlog_is_the_configured_one(tmp_path):
    config = filesystem_config(tmp_path / "data", workers=1, listen_backlog=77)
    server = GroupServer(tmp_path, config).start()
    try:
        listing = subprocess.run(["ss", "-Hltn", f"sport = :{server.port}"], capture_output=True,
                                 text=True, timeout=10, check=True).stdout.split()
    finally:
        server.stop()
    assert listing[0] == "LISTEN" and listing[2] == "77", listing


# -- 9. refused reads leave no file open --------------------------------------------------


def _fd_count(pids: list[int]) -> int:
    return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in pids)


def test_refused_reads_leave_no_descriptor_open(tmp_path):
    config = filesystem_config(tmp_path / "data", workers=1)
    server = GroupServer(tmp_path, config).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("PUT", "/v1/objects/fd/x", body=b"0123456789")
        etag = conn.getresponse().getheader("ETag")
        conn.close()
        kinds = {
            "412-if-match": {"If-Match": '"nope"'},
            "412-unmodified-since": {"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
            "304-if-none-match": {"If-None-Match": etag},
            "416-range": {"Range": "bytes=100-200"},
            "412-range": {"Range": "bytes=0-1", "If-Match": '"nope"'},
        }
        pids = server.group_pids()
        before = _fd_count(pids)
        for headers in kinds.values():
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            for _ in range(100):
                conn.request("GET", "/v1/objects/fd/x", headers=headers)
                conn.getresponse().read()
            conn.close()
        time.sleep(0.5)
        after = _fd_count(pids)
    finally:
        server.stop()
    assert after - before < 10, f"{after - before} descriptors more after 500 refused reads"


# -- 11. active content is not rendered in the service's origin ----------------------------


@pytest.mark.parametrize("content_type", ["text/html", "TEXT/HTML; charset=utf-8",
                                          "image/svg+xml", "application/xhtml+xml",
                                          "text/xml", "application/javascript"])
def test_active_content_is_an_attachment_in_a_sandbox(open_server, content_type):
    path = f"/v1/objects/xss/{_name()}"
    body = b"<script>fetch('/v1/objects/private/x')</script>"
    res = raw_exchange("127.0.0.1", open_server.port,
                       request_bytes("PUT", path, {"Content-Type": content_type}, body))
    assert res.status == 201
    for method in ("GET", "HEAD"):
        res = raw_exchange("127.0.0.1", open_server.port, request_bytes(method, path), method=method)
        assert res.headers["Content-Type"] == content_type
        assert res.headers["Content-Disposition"] == "attachment"
        assert "sandbox" in res.headers["Content-Security-Policy"]
        assert res.headers["X-Content-Type-Options"] == "nosniff"


def test_passive_content_is_inline_and_every_answer_says_nosniff(open_server):
    path = f"/v1/objects/xss/{_name()}"
    res = raw_exchange("127.0.0.1", open_server.port,
                       request_bytes("PUT", path, {"Content-Type": "text/plain"}, b"hi"))
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    res = raw_exchange("127.0.0.1", open_server.port, request_bytes("GET", path))
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Disposition" not in res.headers
    for request in (request_bytes("GET", "/v1/objects/xss/missing"), request_bytes("GET", "/nowhere"),
                    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"):
        res = raw_exchange("127.0.0.1", open_server.port, request)
        assert res.status >= 400
        assert res.headers["X-Content-Type-Options"] == "nosniff", res.describe()


def test_a_trusting_config_serves_active_content_inline(tmp_path):
    config = filesystem_config(tmp_path / "data", workers=1, inline_active_content=True)
    server = GroupServer(tmp_path, config).start()
    try:
        raw_exchange("127.0.0.1", server.port,
                     request_bytes("PUT", "/v1/objects/site/index.html", {"Content-Type": "text/html"},
                                   b"<p>hi</p>"))
        res = raw_exchange("127.0.0.1", server.port, request_bytes("GET", "/v1/objects/site/index.html"))
    finally:
        server.stop()
    assert res.status == 200 and res.body == b"<p>hi</p>"
    assert "Content-Disposition" not in res.headers
    assert "Content-Security-Policy" not in res.headers


# -- 14. workers do not outlive their supervisor -----------------------------------------


def test_workers_exit_when_the_supervisor_is_killed(tmp_path):
    config = filesystem_config(tmp_path / "data", workers=2)
    server = GroupServer(tmp_path, config).start()
    try:
        workers = [pid for pid in server.group_pids() if pid != server.pid]
        assert len(workers) == 2
        os.kill(server.pid, signal.SIGKILL)
        server.proc.wait(10)
        gone = wait_for(lambda: not [p for p in server.group_pids() if p in workers], timeout=15)
        assert gone, f"workers {server.group_pids()} outlived their supervisor"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    finally:
        server.stop()


# -- 16. routes are matched on the path as sent ---------------------------------------------


@pytest.mark.parametrize("target", ["/%6detrics", "/v1%2fmove", "/v1%2Fcat", "/%761/objects/",
                                    "/v1/%6fbjects/edge/x", "/healthz%00", "/openapi%2ejson"])
def test_percent_encoded_route_names_are_not_routes(open_server, target):
    res = raw_exchange("127.0.0.1", open_server.port, request_bytes("GET", target))
    assert res.status == 404, res.describe()
    assert res.json()["error"]["code"] == "not_found"


def test_object_paths_are_still_percent_decoded(open_server):
    res = raw_exchange("127.0.0.1", open_server.port,
                       request_bytes("PUT", "/v1/objects/edge/a%20b%2Bc", body=b"x"))
    assert res.status == 201
    assert res.json()["path"] == "edge/a b+c"

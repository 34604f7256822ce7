"""The PUT data path: bodies read with ``recv_into`` into reused buffers.

A live ``blobsvc serve`` (filesystem driver, one worker) is written to over
real sockets. Every byte must land exactly, on disk and through GET, for
sizes around the buffers on the way (cheroot's 8 KiB reader, the 64 KiB
the selector reads a head with, the 1 MiB upload buffers), framed by
Content-Length or chunked; bytes of a pipelined request that arrived with
a body must be neither lost nor taken for body; a body cut short or a
client gone stores nothing; SHA-256 is computed only when asked for; and a
256 MiB body leaves memory flat. Speed is the benchmark's business, not
these tests'.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import itertools
import json
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import pytest
import requests
from api_client import free_port, wait_for
from live_server import GroupServer, filesystem_config, running_server

from blobsvc.http import framing
from blobsvc.http.connections import DirectReader, PrefixedStreamReader
from blobsvc.storage.errors import ChecksumMismatch
from blobsvc.storage.upload import Upload

KiB = 1024
MiB = 1024 * KiB

#: Sizes around the buffers a body passes through.
SIZES = [0, 1, 8191, 8192, 8193, 64 * KiB - 1, 64 * KiB, 64 * KiB + 1,
         MiB - 1, MiB, MiB + 1, 64 * MiB]

#: Deterministic, incompressible content; each body is a prefix of it.
DATA = hashlib.shake_256(b"blobsvc put path").digest(64 * MiB)

#: Chunk sizes for chunked bodies: odd, and straddling every buffer size.
ODD_CHUNKS = [1, 3, 8193, 4093, 65537, 7, 1_000_003, 131_071]

#: Seconds of silence after which the server drops a connection.
SOCKET_TIMEOUT = 4.0

#: A worker's peak RSS over 256 MiB bodies stays under this (the issue's goal).
RSS_LIMIT_KIB = 64 * 1024


def _config(root, **server) -> dict:
    return filesystem_config(root, workers=1, socket_timeout=SOCKET_TIMEOUT,
                             max_object_size=512 * MiB, **server)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("putpath")
    with running_server(workdir, _config(workdir / "data")) as server:
        yield server


# -- building and reading raw HTTP ----------------------------------------------------


def chunked(data: bytes, sizes: list[int]) -> bytes:
    """``data`` in the chunked coding, chunk sizes taken from ``sizes`` in turn."""
    parts, offset = [], 0
    for size in itertools.cycle(sizes):
        if offset >= len(data):
            break
        piece = data[offset:offset + size]
        parts += [b"%x\r\n" % len(piece), piece, b"\r\n"]
        offset += len(piece)
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


def put_request(path: str, body: bytes, *, chunk_sizes: list[int] | None = None,
                headers: dict[str, str] | None = None, close: bool = False) -> bytes:
    """One PUT, Content-Length framed, or chunked when ``chunk_sizes`` is given."""
    lines = [f"PUT /v1/objects/{path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if close:
        lines.append("Connection: close")
    if chunk_sizes is None:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    else:
        lines.append("Transfer-Encoding: chunked")
        payload = chunked(body, chunk_sizes)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def get_request(path: str, *, close: bool = False) -> bytes:
    connection = "Connection: close\r\n" if close else ""
    return f"GET /v1/objects/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{connection}\r\n".encode()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def read_answers(sock: socket.socket, count: int) -> list[Answer]:
    """``count`` answers read off ``sock`` in order, parsed by hand (a client
    library reading ahead could swallow the next answer)."""
    stream = _Stream(sock)
    answers = []
    for _ in range(count):
        status_line = stream.line()
        headers = {}
        while line := stream.line():
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = stream.exactly(int(headers.get("content-length", "0")))
        answers.append(Answer(int(status_line.split()[1]), headers, body))
    return answers


class _Stream:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _more(self) -> None:
        data = self.sock.recv(4 * MiB)
        if not data:
            raise ConnectionError(f"the server closed the connection; left: {bytes(self.buffer[:200])!r}")
        self.buffer += data

    def line(self) -> str:
        while b"\r\n" not in self.buffer:
            self._more()
        line, _, rest = bytes(self.buffer).partition(b"\r\n")
        self.buffer = bytearray(rest)
        return line.decode("latin-1")

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._more()
        data, self.buffer = bytes(self.buffer[:size]), self.buffer[size:]
        return data


def exchange(server: GroupServer, data: bytes, answers: int = 1) -> list[Answer]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(data)
        return read_answers(sock, answers)


def on_disk(server: GroupServer, path: str) -> bytes | None:
    full = server.workdir / "data" / path
    return full.read_bytes() if full.exists() else None


def fetched(server: GroupServer, path: str) -> tuple[int, bytes]:
    response = requests.get(f"{server.url}/v1/objects/{path}", timeout=60)
    return response.status_code, response.content


def temp_files(server: GroupServer) -> list[str]:
    return os.listdir(server.workdir / "data" / ".blobsvc" / "tmp")


def assert_stored(server: GroupServer, path: str, data: bytes, answer: Answer) -> None:
    assert answer.status == 201, answer
    info = answer.json()
    assert info["size"] == len(data)
    assert info["md5"] == info["etag"] == hashlib.md5(data).hexdigest()
    assert on_disk(server, path) == data
    assert fetched(server, path) == (200, data)


# -- every size, both framings ----------------------------------------------------------


FRAMINGS = {"content-length": None, "chunked-odd": ODD_CHUNKS, "chunked-one": [1 << 40]}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("framing_name", list(FRAMINGS))
def test_every_size_is_stored_byte_exact(server, size, framing_name):
    path = f"sizes/{framing_name}/{size}.bin"
    data = DATA[:size]
    [answer] = exchange(server, put_request(path, data, chunk_sizes=FRAMINGS[framing_name]))
    assert_stored(server, path, data, answer)


def test_a_huge_chunk_declared_whole_is_read_in_pieces(server):
    """One chunk of 64 MiB: read a buffer at a time, like any body."""
    path = "huge/one-chunk.bin"
    [answer] = exchange(server, put_request(path, DATA, chunk_sizes=[len(DATA)]))
    assert_stored(server, path, DATA, answer)


def test_chunk_extensions_and_trailers_around_direct_reads(server):
    data = DATA[:3 * MiB + 5]
    head = (b"PUT /v1/objects/ext/obj.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    body = (b"%x;name=value\r\n" % (2 * MiB) + data[:2 * MiB] + b"\r\n"
            + b"%x ; other\r\n" % (MiB + 5) + data[2 * MiB:] + b"\r\n"
            + b"0\r\nX-Trailer: yes\r\n\r\n")
    [answer] = exchange(server, head + body)
    assert_stored(server, "ext/obj.bin", data, answer)


# -- pipelining: the next request after a body ----------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 8191, 8193, 64 * KiB - 1, 64 * KiB + 1, MiB + 1, 5 * MiB])
@pytest.mark.parametrize("framing_name", ["content-length", "chunked-odd"])
def test_a_pipelined_request_after_a_body_is_answered(server, size, framing_name):
    """Body and the requests after it go in one write: whatever part of them
    cheroot's reader or the head-waiting selector already holds must reach
    the next request, and no byte of it may be taken for body."""
    first, second = DATA[:size], DATA[7:7 + size // 2 + 3]
    chunks = FRAMINGS[framing_name]
    data = (put_request(f"pipe/{framing_name}/{size}/a", first, chunk_sizes=chunks)
            + get_request(f"pipe/{framing_name}/{size}/a")
            + put_request(f"pipe/{framing_name}/{size}/b", second, chunk_sizes=chunks)
            + get_request(f"pipe/{framing_name}/{size}/b", close=True))
    put_a, get_a, put_b, get_b = exchange(server, data, answers=4)
    assert (put_a.status, get_a.status, put_b.status, get_b.status) == (201, 200, 201, 200)
    assert get_a.body == first and get_b.body == second
    assert on_disk(server, f"pipe/{framing_name}/{size}/b") == second


def test_a_request_sent_after_a_pause_follows_a_direct_read(server):
    """The next request arriving later, in pieces, after a body read from the socket."""
    data = DATA[:2 * MiB + 1]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(put_request("pause/a", data))
        [put] = read_answers(sock, 1)
        following = get_request("pause/a", close=True)
        for piece in (following[:5], following[5:20], following[20:]):
            sock.sendall(piece)
            time.sleep(0.05)
        [get] = read_answers(sock, 1)
    assert put.status == 201 and get.status == 200 and get.body == data


# -- bodies cut short, clients gone -----------------------------------------------------


def _stored_nothing(server: GroupServer, path: str, old: bytes | None) -> None:
    assert wait_for(lambda: not temp_files(server), timeout=10), temp_files(server)
    expected = (404, None) if old is None else (200, old)
    status, body = fetched(server, path)
    assert (status, body if status == 200 else None) == expected
    assert on_disk(server, path) == old


@pytest.mark.parametrize("cut", ["content-length", "inside-a-chunk", "before-the-last-chunk",
                                 "reset"])
@pytest.mark.parametrize("old", [None, b"the old version"])
def test_a_body_cut_short_stores_nothing(server, cut, old):
    path = f"cut/{cut}/{'replace' if old else 'new'}"
    if old is not None:
        [answer] = exchange(server, put_request(path, old))
        assert answer.status == 201
    data = DATA[:3 * MiB]
    if cut == "content-length":
        request = put_request(path, data)[:-MiB]
    elif cut == "inside-a-chunk":
        request = put_request(path, data, chunk_sizes=[2 * MiB])[:-(MiB // 2)]
    else:
        request = put_request(path, data, chunk_sizes=ODD_CHUNKS)[:-len(b"0\r\n\r\n")]
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    try:
        sock.sendall(request)
        if cut == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(ConnectionError):
                [answer] = read_answers(sock, 1)
                assert answer.status >= 400, answer  # the refusal, if any, is an error
    finally:
        sock.close()
    _stored_nothing(server, path, old)


def test_a_client_that_stalls_mid_body_is_dropped_after_socket_timeout(server):
    """The socket's timeout bounds each wait of a direct read, as it bounded
    cheroot's reads: silence mid-body ends the connection, nothing stored."""
    path = "stall/obj"
    with socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT * 5) as sock:
        sock.sendall(put_request(path, DATA[:2 * MiB])[:-MiB])
        started = time.monotonic()
        with contextlib.suppress(ConnectionError):
            while sock.recv(65536):  # an error answer, if any, then the close
                pass
        waited = time.monotonic() - started
    assert SOCKET_TIMEOUT * 0.5 < waited < SOCKET_TIMEOUT * 4, waited
    _stored_nothing(server, path, None)


def test_the_server_still_serves_after_broken_bodies(server):
    [answer] = exchange(server, put_request("after/ok", DATA[:MiB + 3]))
    assert_stored(server, "after/ok", DATA[:MiB + 3], answer)


# -- SHA-256 only when asked ------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 5, 4 * MiB + 7, 64 * MiB])
def test_sha256_is_null_unless_asked(server, size):
    data = DATA[:size]
    [answer] = exchange(server, put_request(f"sha/none/{size}", data))
    info = answer.json()
    assert answer.status == 201 and info["sha256"] is None
    assert info["md5"] == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("size", [0, 5, 4 * MiB + 7, 64 * MiB])
@pytest.mark.parametrize("framing_name", ["content-length", "chunked-odd"])
def test_sha256_asked_is_computed_and_checked(server, size, framing_name):
    """Sizes on both sides of the switch to hashing threads."""
    data = DATA[:size]
    digest = hashlib.sha256(data).hexdigest()
    path = f"sha/asked/{framing_name}/{size}"
    [answer] = exchange(server, put_request(path, data, chunk_sizes=FRAMINGS[framing_name],
                                            headers={"X-Checksum-Sha256": digest}))
    info = answer.json()
    assert answer.status == 201, answer
    assert info["sha256"] == digest and info["md5"] == hashlib.md5(data).hexdigest()
    assert on_disk(server, path) == data


@pytest.mark.parametrize("size", [5, 64 * MiB])
def test_a_wrong_sha256_stores_nothing(server, size):
    path = f"sha/wrong/{size}"
    wrong = hashlib.sha256(b"something else").hexdigest()
    [answer] = exchange(server, put_request(path, DATA[:size],
                                            headers={"X-Checksum-Sha256": wrong}))
    assert answer.status == 400 and b"checksum_mismatch" in answer.body
    _stored_nothing(server, path, None)


def test_always_sha256_computes_it_for_every_put(tmp_path):
    server = GroupServer(tmp_path, _config(tmp_path / "data", always_sha256=True)).start()
    try:
        for size in (3, 6 * MiB + 1):
            data = DATA[:size]
            [answer] = exchange(server, put_request(f"always/{size}", data,
                                                    chunk_sizes=ODD_CHUNKS))
            info = answer.json()
            assert answer.status == 201
            assert info["sha256"] == hashlib.sha256(data).hexdigest()
    finally:
        server.stop()


# -- memory -----------------------------------------------------------------------------


def _generated(total: int) -> Iterator[bytes]:
    block = DATA[:MiB]
    for index in range(0, total, MiB):
        yield (struct.pack(">Q", index) + block[8:])[:min(MiB, total - index)]


def test_256_mib_puts_keep_peak_rss_under_64_mib(tmp_path):
    """Content-Length and chunked, one huge chunk: no body is held whole,
    and the buffers do not pile up."""
    total = 256 * MiB
    expected = hashlib.md5()
    for piece in _generated(total):
        expected.update(piece)
    server = GroupServer(tmp_path, _config(tmp_path / "data")).start()
    try:
        for name, chunked_body in (("length", False), ("chunked", True)):
            with socket.create_connection(("127.0.0.1", server.port), timeout=120) as sock:
                framing_header = ("Transfer-Encoding: chunked\r\n" if chunked_body
                                  else f"Content-Length: {total}\r\n")
                sock.sendall(f"PUT /v1/objects/rss/{name} HTTP/1.1\r\nHost: x\r\n"
                             f"{framing_header}\r\n".encode())
                if chunked_body:
                    sock.sendall(b"%x\r\n" % total)
                for piece in _generated(total):
                    sock.sendall(piece)
                if chunked_body:
                    sock.sendall(b"\r\n0\r\n\r\n")
                [answer] = read_answers(sock, 1)
            assert answer.status == 201, answer
            assert answer.json()["md5"] == expected.hexdigest()
        peak = server.peak_rss_kib()
        print(f"\nserver peak RSS (VmHWM) over two 256 MiB PUTs: {peak / 1024:.1f} MiB")
        assert peak < RSS_LIMIT_KIB
    finally:
        server.stop()


# -- TLS keeps the buffered path ---------------------------------------------------------


def test_tls_puts_are_byte_exact(tmp_path, certificate):
    cert, key = certificate
    port = free_port()
    config = _config("./data", port=port)
    config["tls"] = {"cert": str(cert), "key": str(key)}
    server = GroupServer(tmp_path, config)
    server.port = port
    server.start(wait=False)
    url = f"https://127.0.0.1:{port}/v1/objects/tls"

    def ready() -> bool:
        assert server.proc is not None and server.proc.poll() is None, server.stderr()
        try:
            return requests.get(f"https://127.0.0.1:{port}/healthz", verify=str(cert),
                                timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        assert wait_for(ready, timeout=20), server.stderr()
        for size in (0, 8193, 5 * MiB + 1):
            data = DATA[:size]
            length = requests.put(f"{url}/length/{size}", data=data, verify=str(cert), timeout=60)
            pieces = requests.put(f"{url}/chunked/{size}", data=iter([data[:3], data[3:]]),
                                  verify=str(cert), timeout=60)
            assert (length.status_code, pieces.status_code) == (201, 201)
            assert on_disk(server, f"tls/length/{size}") == data
            assert on_disk(server, f"tls/chunked/{size}") == data
    finally:
        server.stop()


# -- the reader itself, on a socket pair --------------------------------------------------


@contextlib.contextmanager
def sending(sock: socket.socket, data: bytes) -> Iterator[None]:
    """``data`` sent on ``sock`` from a thread (more than a socket pair buffers)."""
    sender = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    sender.start()
    try:
        yield
    finally:
        sender.join(10)


def _read_body(body: framing.BodyReader, buffer_size: int) -> bytes:
    out, buffer = bytearray(), memoryview(bytearray(buffer_size))
    while count := body.readinto(buffer):
        out += buffer[:count]
    return bytes(out)


@pytest.mark.parametrize("buffer_size", [1, 7, 8192, MiB])
def test_direct_reads_take_the_buffered_bytes_first_and_stop_at_the_body_end(buffer_size):
    """Bytes cheroot's reader holds, then the head's leftover prefix, then
    the socket; what follows the body stays for the next request."""
    body = DATA[:300_000]  # more than a socket pair buffers
    ours, theirs = socket.socketpair()
    with ours, theirs, sending(theirs, body[5000:] + b"NEXT REQUEST"):
        rfile = PrefixedStreamReader(ours, b"HEAD\r\n" + body[:5000], 1024)
        assert rfile.readline() == b"HEAD\r\n"  # leaves part of the prefix in its buffer
        reader = framing.FixedLengthBody(rfile, len(body), raw=DirectReader(rfile, ours))
        assert _read_body(reader, buffer_size) == body
        assert reader.complete
        assert rfile.read(len(b"NEXT REQUEST")) == b"NEXT REQUEST"


def test_direct_reads_of_chunks_keep_the_framing():
    body = DATA[:3 * MiB]
    encoded = chunked(body, ODD_CHUNKS)
    ours, theirs = socket.socketpair()
    with ours, theirs, sending(theirs, encoded[10:] + b"GET / HTTP/1.1\r\n"):
        rfile = PrefixedStreamReader(ours, encoded[:10], 8192)
        reader = framing.ChunkedBody(rfile, raw=DirectReader(rfile, ours))
        assert _read_body(reader, 65536) == body
        assert reader.complete
        assert rfile.readline() == b"GET / HTTP/1.1\r\n"


def test_a_chunk_longer_than_its_size_is_refused_on_the_direct_path():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"3\r\nabcd\r\n0\r\n\r\n")
        rfile = PrefixedStreamReader(ours, b"", 8192)
        reader = framing.ChunkedBody(rfile, raw=DirectReader(rfile, ours))
        with pytest.raises(framing.FramingError):
            _read_body(reader, 65536)
        assert not reader.complete


def test_a_direct_read_waits_no_longer_than_the_socket_timeout():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(0.2)
        theirs.sendall(b"abc")
        rfile = PrefixedStreamReader(ours, b"", 8192)
        reader = framing.FixedLengthBody(rfile, 10, raw=DirectReader(rfile, ours))
        buffer = memoryview(bytearray(10))
        assert reader.readinto(buffer) == 3
        with pytest.raises(TimeoutError):
            reader.readinto(buffer)
        assert not reader.complete


def test_http_client_put_on_a_kept_alive_connection(server):
    """A stock client reusing its connection across PUTs and GETs."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        for size in (8193, MiB + 1, 3):
            conn.request("PUT", f"/v1/objects/kept/{size}", body=DATA[:size])
            response = conn.getresponse()
            assert response.status == 201, response.read()
            response.read()
            conn.request("GET", f"/v1/objects/kept/{size}")
            response = conn.getresponse()
            assert response.status == 200 and response.read() == DATA[:size]
    finally:
        conn.close()


# -- MD5 left to a backend that computes it -------------------------------------

def test_an_upload_left_to_the_backend_hashes_no_md5_and_reports_the_backends():
    data = os.urandom(5 * 1024 * 1024 + 3)  # past the inline limit: threads would hash
    upload = Upload([data[:1000], data[1000:]], expected_size=len(data))
    assert upload.leave_md5_to_backend()
    assert b"".join(upload) == data
    assert upload.complete and upload.known_md5_hex is None
    upload.backend_md5(hashlib.md5(data).hexdigest())
    assert upload.known_md5_hex == upload.md5_hex == hashlib.md5(data).hexdigest()


def test_an_upload_with_a_content_md5_keeps_hashing_and_checking_it():
    data = b"abc" * 1000
    upload = Upload(data, content_md5=hashlib.md5(b"other").digest())
    assert not upload.leave_md5_to_backend()
    with pytest.raises(ChecksumMismatch):
        b"".join(upload)


def test_sha256_still_computed_when_the_md5_is_the_backends():
    data = b"xyz" * 100_000
    upload = Upload(data, compute_sha256=True)
    assert upload.leave_md5_to_backend()
    b"".join(upload)
    assert upload.sha256_hex == hashlib.sha256(data).hexdigest()

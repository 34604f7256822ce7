"""Object GETs sent with sendfile: every byte exact, the length still enforced.

A live ``blobsvc serve`` (filesystem driver, one worker, debug log) is read
over real sockets. That sendfile is used is read from the server's own
debug line (``sendfile sent N of N bytes``), not from timings; TLS must not
log it and must still answer exact bytes. The access log's ``out=`` is
compared with what the client really received.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import threading
import time
import uuid

import pytest
import requests
from api_client import ServerProcess, free_port, wait_for
from live_server import GroupServer, filesystem_config

from blobsvc.http.sendfile import FileChunk
from blobsvc.native.resources import ExactLengthBody
from blobsvc.storage import create_driver

KiB = 1024
MiB = 1024 * KiB

#: Sizes around the buffers on the way: cheroot's 8 KiB writer, the driver's 1 MiB reads.
SIZES = [0, 1, 8191, 8192, 8193, MiB - 1, MiB, MiB + 1, 64 * MiB]

#: Deterministic, incompressible content; each object is a prefix of it.
DATA = hashlib.shake_256(b"blobsvc sendfile").digest(64 * MiB)


def _config(root) -> dict:
    config = filesystem_config(root, workers=1, socket_timeout=10.0, max_object_size=512 * MiB)
    config["log"] = {"level": "debug", "access_log": True}
    return config


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sendfile")
    server = GroupServer(workdir, _config(workdir / "data")).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for size in SIZES:
            conn.request("PUT", f"/v1/objects/sf/{size}.bin", body=DATA[:size])
            response = conn.getresponse()
            assert response.status == 201, response.read()
            response.read()
        conn.close()
        yield server
    finally:
        server.stop()


def _get(conn: http.client.HTTPConnection, path: str, headers: dict | None = None,
         method: str = "GET") -> tuple[http.client.HTTPResponse, bytes, str]:
    """One request on ``conn`` (kept alive): the answer, its body, its request id."""
    request_id = uuid.uuid4().hex
    conn.request(method, path, headers={"X-Request-Id": request_id, **(headers or {})})
    response = conn.getresponse()
    return response, response.read(), request_id


def _log_line(server: ServerProcess, request_id: str) -> str:
    """The access-log line of one request (written once the body is out)."""
    pattern = re.compile(rf"^.* id={request_id} .*$", re.MULTILINE)
    assert wait_for(lambda: pattern.search(server.stderr()), timeout=10), server.stderr()[-2000:]
    match = pattern.search(server.stderr())
    assert match is not None
    return match.group(0)


def _logged_out(server: ServerProcess, request_id: str) -> int:
    match = re.search(r" out=(\d+) ", _log_line(server, request_id))
    assert match is not None
    return int(match.group(1))


def _sendfile_lines(server: ServerProcess) -> list[str]:
    return re.findall(r"sendfile sent \d+ of \d+ bytes", server.stderr())


def _worker_fds(server: GroupServer) -> list[str]:
    """Where every descriptor of the server's processes points."""
    targets = []
    for pid in server.group_pids():
        directory = f"/proc/{pid}/fd"
        for name in os.listdir(directory):
            try:
                targets.append(os.readlink(f"{directory}/{name}"))
            except FileNotFoundError:
                pass  # closed while listed
    return targets


# -- whole objects and ranges -----------------------------------------------------------


def test_every_size_is_byte_exact_on_one_connection(server):
    """One kept-alive connection for all sizes: a byte too many or too few
    would corrupt the next answer's framing."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    for size in SIZES:
        response, body, request_id = _get(conn, f"/v1/objects/sf/{size}.bin")
        assert response.status == 200, size
        assert int(response.getheader("Content-Length")) == size
        assert len(body) == size and body == DATA[:size], size
        assert _logged_out(server, request_id) == size
        if size:
            assert f"sendfile sent {size} of {size} bytes" in server.stderr(), size
    conn.close()


RANGES = {
    "first byte": ("bytes=0-0", 0, 1),
    "last byte": ("bytes=-1", MiB, MiB + 1),
    "last byte, explicit": (f"bytes={MiB}-{MiB}", MiB, MiB + 1),
    "middle": ("bytes=1000-9190", 1000, 9191),
    "suffix": ("bytes=-8193", MiB + 1 - 8193, MiB + 1),
    "open end": ("bytes=8192-", 8192, MiB + 1),
    "across the 1 MiB reads": (f"bytes={MiB - 3}-{MiB}", MiB - 3, MiB + 1),
}


@pytest.mark.parametrize("name", list(RANGES))
def test_single_ranges_are_byte_exact(server, name):
    spec, start, end = RANGES[name]
    size = MiB + 1
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    before = len(_sendfile_lines(server))
    response, body, request_id = _get(conn, f"/v1/objects/sf/{size}.bin", {"Range": spec})
    assert response.status == 206
    assert response.getheader("Content-Range") == f"bytes {start}-{end - 1}/{size}"
    assert body == DATA[start:end]
    assert _logged_out(server, request_id) == end - start
    assert f"sendfile sent {end - start} of {end - start} bytes" in _sendfile_lines(server)[before:]
    # the connection is still in step: the next answer parses
    response, body, _ = _get(conn, "/v1/objects/sf/8193.bin")
    assert response.status == 200 and body == DATA[:8193]
    conn.close()


def test_range_deep_in_a_large_object(server):
    start, end = 48 * MiB + 5, 63 * MiB + 7
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    response, body, request_id = _get(conn, f"/v1/objects/sf/{64 * MiB}.bin",
                                      {"Range": f"bytes={start}-{end - 1}"})
    assert response.status == 206 and body == DATA[start:end]
    assert _logged_out(server, request_id) == end - start
    conn.close()


def test_if_range_sends_the_range_or_the_whole_object(server):
    size = 8193
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    head, _, _ = _get(conn, f"/v1/objects/sf/{size}.bin", method="HEAD")
    etag = head.getheader("ETag")
    response, body, _ = _get(conn, f"/v1/objects/sf/{size}.bin",
                             {"Range": "bytes=100-199", "If-Range": etag})
    assert response.status == 206 and body == DATA[100:200]
    response, body, request_id = _get(conn, f"/v1/objects/sf/{size}.bin",
                                      {"Range": "bytes=100-199", "If-Range": '"other"'})
    assert response.status == 200 and body == DATA[:size]
    assert _logged_out(server, request_id) == size
    conn.close()


def test_head_sends_no_body(server):
    size = MiB + 1
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    before = len(_sendfile_lines(server))
    response, body, request_id = _get(conn, f"/v1/objects/sf/{size}.bin", method="HEAD")
    assert response.status == 200 and body == b""
    assert int(response.getheader("Content-Length")) == size
    assert _logged_out(server, request_id) == 0
    assert len(_sendfile_lines(server)) == before
    response, body, _ = _get(conn, "/v1/objects/sf/1.bin")  # nothing extra came after the head
    assert response.status == 200 and body == DATA[:1]
    conn.close()


# -- a file cut short, a client gone ------------------------------------------------------


def _put_large(server, path: str, size: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    block = DATA[:MiB]
    conn.putrequest("PUT", path)
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    for _ in range(size // MiB):
        conn.send(block)
    assert conn.getresponse().status == 201
    conn.close()


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """(the response head, the body bytes that came with it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before the head"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def test_file_truncated_mid_send_closes_the_connection(server):
    size = 256 * MiB
    name = f"trunc-{uuid.uuid4().hex}.bin"
    _put_large(server, f"/v1/objects/sf/{name}", size)
    request_id = uuid.uuid4().hex
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KiB)  # a slow reader
        sock.sendall(f"GET /v1/objects/sf/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"X-Request-Id: {request_id}\r\n\r\n".encode())
        head, received = _read_head(sock)
        assert head.startswith(b"HTTP/1.1 200") and f"Content-Length: {size}".encode() in head
        while len(received) < MiB:
            received += sock.recv(65536)
        os.truncate(server.workdir / "data" / "sf" / name, 2 * MiB)
        started = time.monotonic()
        while True:  # the rest until the server closes: it must, and soon
            chunk = sock.recv(MiB)
            if not chunk:
                break
            received += chunk
        assert time.monotonic() - started < 10
    assert len(received) < size
    assert received[:MiB] == DATA[:MiB]
    assert _logged_out(server, request_id) == len(received)
    assert f"object sf/{name} changed size while being sent" in server.stderr()


def test_client_gone_mid_send_leaves_no_descriptor_open(server):
    size = 256 * MiB
    name = f"gone-{uuid.uuid4().hex}.bin"
    _put_large(server, f"/v1/objects/sf/{name}", size)
    fds_before = len(_worker_fds(server))
    for reset in (False, True) * 5:
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
            sock.sendall(f"GET /v1/objects/sf/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            _, received = _read_head(sock)
            while len(received) < MiB:
                received += sock.recv(65536)
            if reset:  # an RST rather than a FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)

    def released() -> bool:
        targets = _worker_fds(server)
        return not any(name in target for target in targets) and len(targets) <= fds_before + 2

    assert wait_for(released, timeout=15), [t for t in _worker_fds(server) if name in t]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)  # still serving
    response, body, _ = _get(conn, "/v1/objects/sf/8192.bin")
    assert response.status == 200 and body == DATA[:8192]
    conn.close()


# -- where sendfile is not used -------------------------------------------------------------


def test_a_server_that_ignores_the_file_chunk_gets_the_bytes_anyway(tmp_path):
    """The offer is an empty chunk: a consumer that does not know it (a
    test client, another WSGI server) gets every byte from the body itself."""
    driver = create_driver("filesystem", {"root": str(tmp_path / "data"), "fsync": False})
    driver.put_object("a/b", DATA[:3 * MiB + 5])
    info, stream = driver.open_object("a/b", 7, 2 * MiB)
    assert stream.region is not None and stream.region.count == 2 * MiB
    body = ExactLengthBody(stream, 2 * MiB, "a/b")
    chunks = list(body)
    assert isinstance(chunks[0], FileChunk) and chunks[0] == b""
    assert b"".join(chunks) == DATA[7:7 + 2 * MiB] and body.sent == 2 * MiB
    with pytest.raises(OSError):
        os.fstat(stream.region.fd)  # closed at the end


def test_memory_streams_offer_no_region():
    driver = create_driver("memory", {})
    driver.put_object("a", b"xyz")
    _, stream = driver.open_object("a")
    with stream:
        assert stream.region is None and b"".join(stream) == b"xyz"


def test_tls_falls_back_and_stays_byte_exact(tmp_path, certificate):
    cert, key = certificate
    port = free_port()
    config = _config("./data")
    config["server"]["port"] = port
    config["auth"] = {"tokens": [{"name": "tls", "token": "tls-token-0123456789",
                                  "access": "write"}]}
    config["tls"] = {"cert": str(cert), "key": str(key)}
    server = ServerProcess(tmp_path, config)
    server.port = port
    server.start(wait=False)
    url = f"https://127.0.0.1:{port}/v1/objects/tls/blob.bin"
    session = requests.Session()
    session.headers["Authorization"] = "Bearer tls-token-0123456789"
    # verify per call: a CA bundle named in the environment wins over the session's
    tls = {"verify": str(cert), "timeout": 30}

    def ready() -> bool:
        assert server.proc.poll() is None, server.stderr()
        try:
            health = session.get(f"https://127.0.0.1:{port}/healthz", verify=str(cert), timeout=2)
            return health.status_code == 200
        except requests.RequestException:
            return False

    try:
        assert wait_for(ready, timeout=20), server.stderr()
        size = 8 * MiB + 1
        assert session.put(url, data=DATA[:size], **tls).status_code == 201
        whole = session.get(url, headers={"X-Request-Id": "tls-whole"}, **tls)
        assert whole.status_code == 200 and whole.content == DATA[:size]
        part = session.get(url, headers={"Range": "bytes=8191-1048576"}, **tls)
        assert part.status_code == 206 and part.content == DATA[8191:MiB + 1]
        assert _logged_out(server, "tls-whole") == size
        assert _sendfile_lines(server) == []
    finally:
        server.stop()


def test_a_slow_but_steady_reader_is_not_cut_off_mid_chunk():
    """Each send of a body chunk waits at most the socket timeout, as
    cheroot's writer did: a whole 1 MiB chunk may take far longer to drain
    to a client that keeps reading (``sendall`` would time the whole of it)."""
    from types import SimpleNamespace

    from blobsvc.http.wire import StrictRequest

    server_side, client_side = socket.socketpair()
    server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client_side.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server_side.settimeout(0.3)
    chunk = os.urandom(256 * 1024)
    received = bytearray()

    def read_slowly():
        while len(received) < len(chunk):
            received.extend(client_side.recv(16 * 1024))
            time.sleep(0.01)  # about 1.5 MB/s: the chunk takes ~0.6 s, twice the timeout

    reader = threading.Thread(target=read_slowly)
    reader.start()
    conn = SimpleNamespace(socket=server_side, wfile=SimpleNamespace(flush=lambda: None,
                                                                     bytes_written=0))
    started = time.monotonic()
    StrictRequest.write(SimpleNamespace(chunked_write=False, conn=conn), chunk)
    reader.join(10)
    assert bytes(received) == chunk
    assert time.monotonic() - started > 0.3  # it did outlast one timeout
    server_side.close()
    client_side.close()

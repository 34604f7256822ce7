"""Hostile clients at the HTTP edge, measured: what they cost the others.

    python -m bench.edge

Two figures, each on a fresh blobsvc (filesystem driver, shipped defaults):

- a worker's peak RSS while a client pours 128 MiB at a route that must not
  hold it (an unauthenticated move, an oversized cat, a 404, one 128 MiB
  chunk of a real upload), and while one declares 10^12 bytes to /healthz;
- a well-behaved client's latency (200 sequential GET /healthz, median, p99,
  max) while 1 000 idle connections and 100 slowloris clients (one header
  byte every half second) are open.

The tests hold the same behaviour to fixed bounds
(tests/test_security_http.py); this prints the numbers behind them.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time

from bench.servers import Blobsvc
from bench.system import MiB, memory, process_tree

TOKEN = "bench-edge-token-0123456789"
AUTH = f"Authorization: Bearer {TOKEN}\r\n"
BODY = 128 * MiB
IDLE, SLOW, PROBES = 1000, 100, 200

#: name -> (request line, extra headers, chunked?, one single chunk?)
POURS = {
    "move, no credentials, 128 MiB chunked": ("POST /v1/move", "", True, False),
    "cat, 128 MiB chunked JSON": ("POST /v1/cat", AUTH, True, False),
    "404 route, 128 MiB body": ("PUT /v1/nowhere", f"Content-Length: {BODY}\r\n", False, False),
    "PUT of one 128 MiB chunk": ("PUT /v1/objects/edge/one", AUTH, True, True),
    "/healthz declaring 10^12 bytes": ("POST /healthz", "Content-Length: 1000000000000\r\n",
                                       False, False),
}


def _pour(port: int, head: bytes, chunked: bool, one_chunk: bool) -> bytes:
    """Send ``head`` and up to BODY bytes as fast as the server reads them."""
    piece = b"z" * MiB
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(head + (b"%x\r\n" % BODY if one_chunk else b""))
            for _ in range(BODY // MiB):
                sock.sendall(b"%x\r\n%s\r\n" % (MiB, piece) if chunked and not one_chunk else piece)
            if one_chunk:
                sock.sendall(b"\r\n0\r\n\r\n")
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


def _peak_rss_mib(root_pid: int) -> float:
    return max(memory(pid).get("VmHWM", 0) for pid in process_tree(root_pid)) / MiB


def peak_rss(workdir: str) -> list[tuple[str, str, float, float]]:
    rows = []
    for name, (request, extra, chunked, one_chunk) in POURS.items():
        server = Blobsvc(f"rss-{len(rows)}", workdir, fsync=False, workers=1,
                         extra_env={"BLOBSVC_TOKEN": TOKEN})
        server.start()
        try:
            idle = _peak_rss_mib(server.pid)
            te = "Transfer-Encoding: chunked\r\n" if chunked else ""
            head = f"{request} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}{te}\r\n".encode()
            answer = _pour(server.port, head, chunked, one_chunk)
            status = answer.split(b"\r\n", 1)[0].decode("latin-1") or "(no answer)"
            rows.append((name, status, idle, _peak_rss_mib(server.pid)))
        finally:
            server.stop()
    return rows


def latency_beside_hostile_clients(workdir: str) -> tuple[float, float, float]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    server = Blobsvc("latency", workdir, fsync=False, workers=2)
    server.start()
    stop = threading.Event()
    sockets: list[socket.socket] = []
    try:
        for _ in range(IDLE):
            sockets.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        slow = []
        for _ in range(SLOW):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(sock)
        sockets += slow

        def trickle() -> None:
            for _ in range(60):  # bounded: 30 s at most
                if stop.wait(0.5):
                    return
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.send(b"X")

        threading.Thread(target=trickle, daemon=True).start()
        time.sleep(1.0)
        latencies = [_probe(server.port) for _ in range(PROBES)]
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
        server.stop()
    return (statistics.median(latencies), statistics.quantiles(latencies, n=100)[98],
            max(latencies))


def _probe(port: int) -> float:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass
    return time.monotonic() - started


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="blobsvc-bench-edge-") as workdir:
        print("peak RSS of the worker (MiB), 128 MiB sent:")
        for name, status, idle, peak in peak_rss(workdir):
            print(f"  {name:40} {status:40} idle {idle:6.1f}  peak {peak:6.1f}")
        median, p99, worst = latency_beside_hostile_clients(workdir)
        print(f"GET /healthz beside {IDLE} idle and {SLOW} slowloris connections, "
              f"{PROBES} probes: median {median * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
              f"max {worst * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

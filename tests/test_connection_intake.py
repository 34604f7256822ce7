"""New connections and the thread pool under many busy clients, in process:
a burst of connections is accepted at once, not one per turn of the
selector loop, and a pool whose threads keep finishing requests does not
grow."""

from __future__ import annotations

import socket
import struct
import sys
import time
from types import SimpleNamespace

import pytest

from blobsvc.http import wire


def _app(environ, start_response):
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]


def _accept_queue_length(listener: socket.socket) -> int:
    """Connections the kernel holds for ``accept()`` (Linux reports them as
    a listening socket's ``tcpi_unacked``)."""
    info = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return int(struct.unpack_from("I", info, 24)[0])


@pytest.fixture
def prepared_server():
    """Bound and listening, its selector loop not running: the test turns it."""
    server = wire.Server(("127.0.0.1", 0), _app, numthreads=2, timeout=5,
                         request_queue_size=64)
    server.prepare()
    yield server
    server.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's TCP_INFO")
def test_one_readiness_of_the_listening_socket_accepts_the_whole_queue(prepared_server):
    count = 20
    clients = [socket.create_connection(prepared_server.bind_addr[:2], timeout=5)
               for _ in range(count)]
    try:
        deadline = time.monotonic() + 5
        while _accept_queue_length(prepared_server.socket) < count:
            assert time.monotonic() < deadline, "the kernel never queued the connections"
            time.sleep(0.01)
        prepared_server._connections._from_server_socket(prepared_server.socket)
        assert prepared_server.waiting_connections == count
        assert _accept_queue_length(prepared_server.socket) == 0
        # With the queue empty, accepting again returns at once instead of
        # waiting out a timeout on the selector's thread.
        assert prepared_server.socket.gettimeout() == 0.0
        prepared_server._connections._from_server_socket(prepared_server.socket)
        assert prepared_server.waiting_connections == count
    finally:
        for client in clients:
            client.close()


class _FakeThread:
    conn: object | None = None


class _FakePool:
    def __init__(self, threads: int) -> None:
        self.min = threads
        self.max = 128
        self._threads = [_FakeThread() for _ in range(threads)]
        self.grown = 0

    @property
    def idle(self) -> int:
        return sum(1 for thread in self._threads if thread.conn is None)

    def grow(self, amount: int) -> None:
        self.grown += amount
        self._threads += [_FakeThread() for _ in range(amount)]

    def shrink(self, amount: int) -> None:
        raise AssertionError("not expected to shrink")


def _grower(pool: _FakePool) -> wire.PoolGrower:
    return wire.PoolGrower(SimpleNamespace(requests=pool), max_threads=pool.max)


def test_a_pool_busy_with_short_requests_does_not_grow():
    pool = _FakePool(16)
    grower = _grower(pool)
    for _ in range(10):  # every thread on a new request at each look
        for thread in pool._threads:
            thread.conn = object()
        grower.look()
    assert pool.grown == 0


def test_a_pool_held_up_by_slow_clients_grows():
    pool = _FakePool(16)
    grower = _grower(pool)
    for thread in pool._threads:
        thread.conn = object()
    grower.look()  # first sight: nothing known to be stuck yet
    grower.look()  # the same connections a look later
    assert pool.grown == wire.PoolGrower.STEP
    # The new threads are busy with short requests: enough threads move on.
    for _ in range(3):
        for thread in pool._threads[16:]:
            thread.conn = object()
        grower.look()
    assert pool.grown == wire.PoolGrower.STEP
    # They get stuck too: the pool grows again.
    grower.look()
    assert pool.grown == 2 * wire.PoolGrower.STEP

"""New connections under many busy clients, in process: a burst of
connections is accepted at once, not one per turn of the selector loop."""

from __future__ import annotations

import socket
import struct
import sys
import time

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

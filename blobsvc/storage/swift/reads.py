"""Streamed GETs of object bodies, each on a connection of its own.

Why apart: swiftclient reads a body through its connection's latest
response, so a stream borrows a reader connection until it is closed
(see :mod:`.connections`); and a large object replaced or deleted while
it is read loses segments under the reader (Swift's 409, or a resumed read
that finds another version), which must end the stream with an error the
caller can act on, never with a torn body passed off as whole.
"""

from __future__ import annotations

from typing import Callable, Iterator

from swiftclient.client import ClientException

from blobsvc.storage.errors import BackendUnavailable, NotFound, StorageError
from blobsvc.storage.swift.client import get_newest, head_or_none
from blobsvc.storage.swift.connections import ConnectionPool
from blobsvc.storage.swift.errors import swift_errors
from blobsvc.storage.swift.headers import Headers

#: Bytes per read of an object body from Swift.
CHUNK_SIZE = 1024 * 1024

#: A GET under way: its headers, its body, and what releases its connection.
Opened = tuple[Headers, Iterator[bytes], Callable[[], None]]


class Reader:
    """GETs of one container's objects, on the pool's reader connections."""

    def __init__(self, pool: ConnectionPool, container: str) -> None:
        self.pool = pool
        self.container = container

    def get(self, path: str, headers: dict[str, str]) -> Opened | None:
        """One streamed GET: headers, body, and its closer; None for an unsatisfiable range."""
        conn = self.pool.take_reader()
        try:
            with swift_errors("read", path):
                for attempt in (1, 2):
                    try:
                        response_headers, body = get_newest(
                            conn, self.container, path, headers, resp_chunk_size=CHUNK_SIZE)
                        break
                    except ClientException as exc:
                        if exc.http_status == 416:
                            self.pool.give_back_reader(conn)
                            return None
                        # 409: a segment of the large object is gone. Deleted or
                        # replaced meanwhile: the new version may be in place now.
                        if exc.http_status == 409 and attempt == 1:
                            continue
                        # 500: the manifest came back empty, as when the newest
                        # copy is a delete (see client.from_a_copy).
                        if exc.http_status not in (409, 500):
                            raise
                        if head_or_none(conn, self.container, path) is None:
                            raise NotFound(f"no object at {path}", path) from None
                        if exc.http_status == 500:
                            raise
                        raise BackendUnavailable(
                            f"Swift could not read {path}: a segment is missing",
                            path) from None
        except BaseException:
            self.pool.give_back_reader(conn)
            raise

        def close() -> None:
            body.close()
            self.pool.give_back_reader(conn)

        return response_headers, body, close


def guarded(body: Iterator[bytes], path: str) -> Iterator[bytes]:
    """An object body whose failures mid-way all become BackendUnavailable.

    Headers are out by then; a 404 or 412 from swiftclient's resumed read
    means the object changed under the reader, which the reader cannot fix.
    """
    try:
        with swift_errors("read", path):
            yield from body
    except StorageError as exc:
        if isinstance(exc, BackendUnavailable):
            raise
        raise BackendUnavailable(f"reading {path} broke off: it changed or vanished", path) from exc

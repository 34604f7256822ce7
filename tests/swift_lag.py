"""A Swift container listing that lags behind writes, on cue.

Why it can be made at will: Swift's object server sends each object
write's (or delete's) listing update to a container server itself; when
none answers, it keeps the update on disk ("async pending") and still
answers the write, and the object-updater daemon sends the update later.
So with the updater and all three container servers of
:class:`~swiftstack.cluster.SwiftCluster` stopped, every object PUT or
DELETE is stored but not listed; with the container servers back and the
updater still stopped, the listing stays behind until the updater runs.

The proxy must know the container already: it keeps a container's info
60 seconds (``recheck_container_existence``) and without it refuses an
object write while no container server answers. :func:`updates_held`
reads the container first, so the info is fresh.

    with updates_held(cluster, conn, container):
        conn.put_object(container, "late", b"...")   # stored, not listed
    assert "late" not in listed(conn, container)
    catch_up(cluster, conn, container, ["late"])       # bounded
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Iterator

from swiftclient.client import ClientException, Connection

try:
    from tests.swiftstack.cluster import NODES, SwiftCluster
except ImportError:  # tests/ is not a package and the repo root not on path
    from swiftstack.cluster import NODES, SwiftCluster  # type: ignore[no-redef]

#: The updater passes every second: a listing that has not caught up after
#: this long will not.
CATCH_UP_TIMEOUT = 30.0

CONTAINER_SERVERS = tuple(f"container-{node}" for node in NODES)


@contextlib.contextmanager
def updates_held(cluster: SwiftCluster, conn: Connection, container: str) -> Iterator[None]:
    """Inside: no container server runs, so object writes and deletes leave
    their listing updates pending. After: the container servers are back,
    the object-updater is not, so the listing lags until :func:`catch_up`."""
    conn.head_container(container)  # the proxy's cached info lets object writes through
    cluster.stop_server("object-updater")
    for name in CONTAINER_SERVERS:
        cluster.stop_server(name)
    try:
        yield
    finally:
        cluster.start_servers(CONTAINER_SERVERS)


def listed(conn: Connection, container: str, prefix: str = "") -> list[str]:
    """Every name Swift lists below ``prefix``, in Swift's order."""
    return [entry["name"] for entry in
            conn.get_container(container, prefix=prefix or None, full_listing=True)[1]]


def exists(conn: Connection, container: str, name: str) -> bool:
    """Whether Swift holds ``name`` (a HEAD of the newest copy, no listing)."""
    try:
        conn.head_object(container, name, headers={"X-Newest": "true"})
    except ClientException as exc:
        if exc.http_status == 404:
            return False
        raise
    return True


def pending_updates(cluster: SwiftCluster) -> list[Path]:
    """The listing updates the object servers still hold, on every node."""
    return [path for node in NODES for path in cluster.device(node).glob("async_pending*/*/*")]


def catch_up(cluster: SwiftCluster, conn: Connection, container: str, expected: list[str],
             prefix: str = "", timeout: float = CATCH_UP_TIMEOUT) -> float:
    """Start the object-updater and wait until it has sent every held update
    and the listing below ``prefix`` is ``expected``: the seconds it took,
    or AssertionError with what was left."""
    started = time.monotonic()
    cluster.start_server("object-updater")
    while True:
        held, names = pending_updates(cluster), listed(conn, container, prefix)
        if not held and names == expected:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not caught up after {timeout:g}s: {len(held)} updates "
                                 f"held, listed {names}, expected {expected}")
        time.sleep(0.1)

"""A replicated Swift (three nodes, three replicas) with nodes going down:
where copies land, the write quorum, healing by the replicators, and
blobsvc's Swift driver on such a cluster.

Runs against ``swift_cluster`` (conftest.py, tests/swiftstack/cluster.py).
Copies are checked on the devices themselves, byte for byte, not through
the proxy, which would answer from any copy.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from typing import Callable, Iterator

import pytest
from conftest import swift_settings
from swiftclient.client import ClientException, Connection

from blobsvc.storage import Upload, create_driver
from blobsvc.storage.errors import NotFound

try:
    from tests.swiftstack import ERROR_SUPPRESSION_SECONDS, pid_alive
    from tests.swiftstack.cluster import NODES, SwiftCluster
except ImportError:  # tests/ is not a package and the repo root not on path
    from swiftstack import ERROR_SUPPRESSION_SECONDS, pid_alive  # type: ignore[no-redef]
    from swiftstack.cluster import NODES, SwiftCluster  # type: ignore[no-redef]

#: The replicators pass every second; a copy that has not healed after this
#: long will not heal.
HEAL_TIMEOUT = 30.0
#: A write the proxy cannot place must be refused at once: the dead servers
#: refuse connections, nothing has to time out.
REFUSAL_TIMEOUT = 5.0
MIB = 1024 * 1024


def pattern(size: int, seed: object = 0) -> bytes:
    return random.Random(f"{seed}:{size}").randbytes(size)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``check`` until it holds; the seconds it took, or fail saying what."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what}: not after {timeout:g}s")
        time.sleep(0.1)
    return time.monotonic() - started


def segment_names(conn: Connection, container: str, manifest: str) -> list[str]:
    """The segments a large object's manifest lists, in order. Named from the
    manifest, not a listing: a write's container update may wait for the
    updater (a node down, a slow container server) and lag behind."""
    _, body = conn.get_object(container, manifest, headers={"X-Newest": "true"},
                              query_string="multipart-manifest=get")
    return [entry["name"].split("/", 2)[2] for entry in json.loads(body)]


@pytest.fixture
def cluster(swift_cluster: SwiftCluster) -> Iterator[SwiftCluster]:
    """The module's cluster with every process up: whatever an earlier test
    stopped is started again (a no-op probe when all run)."""
    swift_cluster.start()
    yield swift_cluster


@pytest.fixture
def conn(cluster: SwiftCluster) -> Iterator[Connection]:
    """swiftclient without retries: a refusal must surface as it is."""
    connection = Connection(authurl=cluster.auth_url, user=cluster.user, key=cluster.key,
                            auth_version="1", retries=0)
    yield connection
    connection.close()


def copies(cluster: SwiftCluster, container: str, name: str) -> dict[int, bytes]:
    """The object's bytes on each node holding exactly one copy of it."""
    found = {}
    for node, files in cluster.object_files(container, name).items():
        assert len(files) <= 1, f"node {node} holds {files}"
        if files:
            found[node] = files[0].read_bytes()
    return found


def stored_put(cluster: SwiftCluster, node: int, txn: str) -> bool:
    """Whether node ``node``'s object server logged transaction ``txn`` as a
    PUT to its device that it answered 201."""
    log = cluster.log_path(f"object-{node}").read_text()
    return any(f'"PUT /d{node}/' in line and '" 201 ' in line and txn in line
               for line in log.splitlines())


def test_every_process_runs_and_a_put_lands_on_all_three_devices(
        cluster: SwiftCluster, conn: Connection) -> None:
    assert set(cluster.pids) == set(cluster.servers)
    assert len(set(cluster.pids.values())) == len(cluster.servers)
    body = pattern(200_000)
    conn.put_container("spread")
    response: dict = {}
    etag = conn.put_object("spread", "o", body, response_dict=response)
    assert etag == hashlib.md5(body).hexdigest()
    # the proxy answers once two copies are written; the third may still be
    # on its way, but it is the PUT's own (not a replicator's): every object
    # server logs that request as stored
    txn = response["headers"]["x-trans-id"]
    wait_until(lambda: all(stored_put(cluster, node, txn) for node in NODES), REFUSAL_TIMEOUT,
               "every object server storing the PUT")
    assert copies(cluster, "spread", "o") == {node: body for node in NODES}
    assert conn.get_object("spread", "o")[1] == body


def test_a_put_with_one_object_server_down_succeeds_and_heals(
        cluster: SwiftCluster, conn: Connection) -> None:
    conn.put_container("one-down")
    body = pattern(300_000, "one-down")
    cluster.stop_server("object-1")
    assert cluster.pids.get("object-1") is None
    assert conn.put_object("one-down", "o", body) == hashlib.md5(body).hexdigest()
    assert copies(cluster, "one-down", "o") == {2: body, 3: body}

    cluster.start_server("object-1")
    assert conn.get_object("one-down", "o")[1] == body
    took = wait_until(lambda: 1 in copies(cluster, "one-down", "o"), HEAL_TIMEOUT,
                      "the third copy on the returning node")
    assert copies(cluster, "one-down", "o") == {node: body for node in NODES}, took


def test_a_put_with_two_object_servers_down_is_refused_and_leaves_nothing(
        cluster: SwiftCluster, conn: Connection) -> None:
    conn.put_container("two-down")
    cluster.stop_server("object-1")
    cluster.stop_server("object-2")
    started = time.monotonic()
    with pytest.raises(ClientException) as refused:
        conn.put_object("two-down", "o", pattern(100_000, "two-down"))
    assert refused.value.http_status == 503
    assert time.monotonic() - started < REFUSAL_TIMEOUT
    txn = refused.value.http_response_headers["x-trans-id"]
    why = f"Object PUT returning 503, 1/2 required connections (txn: {txn})"
    assert why in cluster.log_path("proxy").read_text()

    cluster.start()
    assert copies(cluster, "two-down", "o") == {}
    with pytest.raises(ClientException) as missing:
        conn.head_object("two-down", "o")
    assert missing.value.http_status == 404
    assert conn.get_container("two-down")[1] == []


def test_a_container_created_with_a_container_server_down_is_copied_to_it(
        cluster: SwiftCluster, conn: Connection) -> None:
    # the returning node has no database at all: the replicator copies the
    # whole file over rsync, then the rows it lacks
    cluster.stop_server("container-3")
    conn.put_container("late-db")
    conn.put_object("late-db", "o", b"listed")
    assert cluster.container_dbs("late-db")[3] == []
    cluster.start_server("container-3")
    wait_until(lambda: bool(cluster.container_dbs("late-db")[3]), HEAL_TIMEOUT,
               "the container's database on the returning node")
    assert "rsync to container/d3/tmp/" in cluster.log_path("rsync").read_text()
    cluster.stop_server("container-1")
    cluster.stop_server("container-2")
    assert [entry["name"] for entry in conn.get_container("late-db")[1]] == ["o"]


def test_the_updaters_bring_account_totals_up_to_date(cluster: SwiftCluster, conn: Connection) -> None:
    conn.put_container("totals")
    for index in range(3):
        conn.put_object("totals", f"o{index}", b"x" * 1000)

    def counted() -> bool:
        containers = {c["name"]: c for c in conn.get_account()[1]}
        return containers.get("totals", {}).get("count") == 3

    wait_until(counted, HEAL_TIMEOUT, "the account listing counting three objects")
    assert {c["name"]: c["bytes"] for c in conn.get_account()[1]}["totals"] == 3000


def test_the_expirer_deletes_an_object_past_its_delete_at(cluster: SwiftCluster, conn: Connection) -> None:
    conn.put_container("expiring")
    conn.put_object("expiring", "gone", b"short-lived", headers={"X-Delete-After": "1"})
    conn.put_object("expiring", "kept", b"stays")
    wait_until(lambda: all(not files for files in
                           cluster.object_files("expiring", "gone").values()),
               HEAL_TIMEOUT, "the expirer deleting the object on every node")
    # the listing follows once the delete's container update is through; the
    # object server answers without waiting for a slow one
    wait_until(lambda: [entry["name"] for entry in conn.get_container("expiring")[1]]
               == ["kept"], HEAL_TIMEOUT, "the listing naming the kept object alone")


def test_the_driver_writes_and_reads_a_large_object_with_a_node_down(
        cluster: SwiftCluster, conn: Connection) -> None:
    drv = create_driver("swift", swift_settings(cluster, segment_grace_seconds=0))
    try:
        data = pattern(3 * MIB + 12345, "driver")
        cluster.stop_server("object-2")
        info = drv.put_object("big", Upload(iter([data]), expected_size=len(data)))
        assert info.size == len(data)
        cluster.start_server("object-2")
        assert drv.get_object("big") == data

        segments = segment_names(conn, drv.container, "big")
        assert len(segments) == 4  # segments of 1 MiB or less
        names = ["big", *segments]

        def healed() -> bool:
            return all(2 in copies(cluster, drv.container, name) for name in names)

        wait_until(healed, HEAL_TIMEOUT, "every segment and the manifest on node 2")
        # the proxy shuns node 2 for a while after the errors of its outage
        time.sleep(ERROR_SUPPRESSION_SECONDS + 0.5)
        cluster.stop_server("object-1")
        cluster.stop_server("object-3")
        assert drv.get_object("big") == data  # from the healed node's copies alone
    finally:
        drv.close()


def test_stopping_one_daemon_ends_that_process_alone(cluster: SwiftCluster) -> None:
    before = cluster.pids
    pid = cluster.pids.get("object-replicator-1")
    assert pid is not None and pid_alive(pid)
    cluster.stop_server("object-replicator-1")
    assert cluster.pids.get("object-replicator-1") is None
    assert not pid_alive(pid)
    del before["object-replicator-1"]
    assert cluster.pids == before
    assert all(pid_alive(other) for other in before.values())


#: Reads of each object while a delete has reached one node only.
TORN_DELETE_READS = 12


def test_an_object_a_delete_reached_on_one_node_only_reads_as_deleted(
        cluster: SwiftCluster, conn: Connection) -> None:
    # Swift's proxy, asked for the newest copy, drops the copies older than
    # the one tombstone; when they make a quorum it answers 200 from their
    # statuses alone: an empty body, no Content-Type, the deleted version's
    # ETag. blobsvc must take that for what it is, the object deleted.
    drv = create_driver("swift", swift_settings(cluster, segment_grace_seconds=0))
    small, large = pattern(200_000, "torn-small"), pattern(2 * MIB + 17, "torn-large")
    try:
        drv.put_object("small", small)
        drv.put_object("large", Upload(iter([large]), expected_size=len(large)))
        names = ["small", "large", *segment_names(conn, drv.container, "large")]
        wait_until(lambda: all(len(copies(cluster, drv.container, name)) == len(NODES)
                               for name in names),
                   HEAL_TIMEOUT, "a copy of every object on every node")
        for node in NODES:  # no replicator may carry the tombstone to the others
            cluster.stop_server(f"object-replicator-{node}")
        for name in ("small", "large"):
            assert cluster.delete_on_node(3, drv.container, name) == 204

        made_up = 0
        for _ in range(TORN_DELETE_READS):
            for name in ("small", "large"):
                try:
                    raw = conn.head_object(drv.container, name, headers={"X-Newest": "true"})
                    made_up += "accept-ranges" not in raw
                except ClientException as exc:
                    assert exc.http_status == 404
                with pytest.raises(NotFound):
                    drv.stat_object(name)
                with pytest.raises(NotFound):
                    drv.get_object(name)
                with pytest.raises(NotFound):
                    drv.open_object(name, 10, 100)
        # the case happened, not only the proxy's plain 404
        assert made_up > 0
        assert copies(cluster, drv.container, "small").keys() == {1, 2}
    finally:
        drv.close()

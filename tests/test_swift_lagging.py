"""blobsvc on a Swift whose container listing lags behind writes: what each
listing-based behaviour of the native API promises then (README, "Running
on Swift", "On an eventually consistent listing").

Runs on ``swift_cluster`` with one blobsvc instance; the lag is made on
cue by :mod:`swift_lag` (the object-updater and the container servers
stopped while objects are written or deleted, then the servers back).
blobsvc's own PUT lists below the name first (its clash check), so with
every container server down it answers 503: the objects that lag are
written by a plain Swift PUT, as blobsvc writes a small object. Its
DELETE only HEADs, so it runs with them down. Every test checks that the
lag is real, what blobsvc answers meanwhile, and, once the updater has run,
that everything agrees again. Where blobsvc itself must make the writes
that lag, one container server is down while they are written, then left
to answer listings alone.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid
from typing import Iterator

import pytest
import requests
from api_client import clean_environ
from conftest import swift_settings
from live_server import GroupServer, MiB, running_server, swift_config
from swift_lag import catch_up, exists, listed, updates_held
from swiftclient.client import Connection

from blobsvc.client.fs import BlobsvcFileSystem
from blobsvc.storage import Upload, create_driver
from blobsvc.storage.swift import claims

try:
    from tests.swiftstack import ERROR_SUPPRESSION_SECONDS
    from tests.swiftstack.cluster import SwiftCluster
except ImportError:  # tests/ is not a package and the repo root not on path
    from swiftstack import ERROR_SUPPRESSION_SECONDS  # type: ignore[no-redef]
    from swiftstack.cluster import SwiftCluster  # type: ignore[no-redef]

TIMEOUT = 30.0
#: A write Swift stores with no container server up is answered at once:
#: the object servers' listing updates are refused, not timed out.
QUICK = 5.0


@pytest.fixture(scope="module")
def container() -> str:
    return f"lagging-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def service(swift_cluster: SwiftCluster, container: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GroupServer]:
    """One blobsvc on its own container for the module; no collection passes."""
    config = swift_config(swift_cluster, container, storage={"segment_grace_seconds": 0,
                                                             "collect_interval_seconds": 0})
    with running_server(tmp_path_factory.mktemp("lagging"), config) as server:
        yield server


@pytest.fixture
def cluster(swift_cluster: SwiftCluster) -> Iterator[SwiftCluster]:
    """The module's cluster with every process up (an earlier test may have
    stopped some, the updater included)."""
    swift_cluster.start()
    yield swift_cluster


@pytest.fixture(scope="module")
def conn(swift_cluster: SwiftCluster) -> Iterator[Connection]:
    connection = Connection(authurl=swift_cluster.auth_url, user=swift_cluster.user,
                            key=swift_cluster.key, auth_version="1", retries=2)
    yield connection
    connection.close()


def url(service: GroupServer, path: str) -> str:
    return f"{service.url}/v1/objects/{path}"


def put(service: GroupServer, path: str, data: bytes) -> requests.Response:
    return requests.put(url(service, path), data=data, timeout=TIMEOUT)


def get(service: GroupServer, path: str, **params: str) -> requests.Response:
    return requests.get(url(service, path), params=params, timeout=TIMEOUT)


def delete(service: GroupServer, path: str) -> requests.Response:
    return requests.delete(url(service, path), timeout=TIMEOUT)


def post(service: GroupServer, route: str, document: dict) -> requests.Response:
    return requests.post(f"{service.url}/v1/{route}", json=document, timeout=TIMEOUT)


def code(response: requests.Response) -> tuple[int, str | None]:
    """Status and error code of an answer."""
    if response.status_code < 400:
        return response.status_code, None
    return response.status_code, response.json()["error"]["code"]


def entries(response: requests.Response) -> list[tuple[str, bool, int | None]]:
    """A listing answer as (path, isdir, size) per entry."""
    assert response.status_code == 200, response.text
    return [(e["path"], e["isdir"], e["size"]) for e in response.json()["entries"]]


def written(service: GroupServer, *paths: str) -> None:
    for path in paths:
        assert put(service, path, path.encode()).status_code == 201


# -- the lag itself ---------------------------------------------------------------


def test_swift_stores_writes_with_every_container_server_down_and_lists_them_late(
        cluster: SwiftCluster, conn: Connection, service: GroupServer, container: str) -> None:
    written(service, "raw/old", "raw/kept")
    with updates_held(cluster, conn, container):
        started = time.monotonic()
        conn.put_object(container, "raw/late", b"late")
        conn.delete_object(container, "raw/old")
        assert time.monotonic() - started < QUICK
        # blobsvc deletes by name (a HEAD, then the DELETE)...
        assert delete(service, "raw/kept").status_code == 204
        # ...but writes after listing below the name, which needs a container server
        assert code(put(service, "raw/new", b"new")) == (503, "backend_unavailable")
        for route, document in (("move", {"from": "raw/late", "to": "raw/moved"}),
                                ("copy", {"from": "raw/late", "to": "raw/copied"}),
                                ("cat", {"path": "raw/joined", "chunks": ["raw/late"]})):
            assert code(post(service, route, document)) == (503, "backend_unavailable"), route
    assert listed(conn, container, "raw/") == ["raw/kept", "raw/old"]
    assert exists(conn, container, "raw/late")
    assert not exists(conn, container, "raw/old") and not exists(conn, container, "raw/kept")
    took = catch_up(cluster, conn, container, ["raw/late"], "raw/")
    print(f"\nthe listing caught up {took:.1f}s after the object-updater started")


# -- a: the clash rule -------------------------------------------------------------


def test_the_clash_rule_holds_for_objects_but_not_for_directories_the_listing_lacks(
        cluster: SwiftCluster, conn: Connection, service: GroupServer, container: str) -> None:
    written(service, "clash/gone/x", "clash/m")
    with updates_held(cluster, conn, container):
        conn.put_object(container, "clash/a", b"a")
        conn.put_object(container, "clash/d/x", b"x")
        conn.put_object(container, "clash/e/x", b"x")
        assert delete(service, "clash/gone/x").status_code == 204
    assert listed(conn, container, "clash/") == ["clash/gone/x", "clash/m"]
    # a parent object is found by its HEAD: no object below it
    assert code(put(service, "clash/a/b", b"b")) == (409, "conflict")
    # a directory is found by a listing: an object of its name slips in...
    assert put(service, "clash/d", b"d").status_code == 201
    assert post(service, "move", {"from": "clash/m", "to": "clash/e"}).status_code == 201
    # ...and a directory whose objects were just deleted still refuses one,
    # and a delete, as not empty
    assert code(put(service, "clash/gone", b"g")) == (409, "conflict")
    assert code(delete(service, "clash/gone")) == (409, "conflict")

    catch_up(cluster, conn, container, ["clash/a", "clash/d", "clash/d/x", "clash/e",
                                        "clash/e/x"], "clash/")
    # both stay: the level lists the object, the directory lists its own
    assert entries(get(service, "clash/")) == [("clash/a", False, 1), ("clash/d", False, 1),
                                               ("clash/e", False, 7)]
    assert entries(get(service, "clash/d/")) == [("clash/d/x", False, 1)]
    assert get(service, "clash/d").content == b"d"
    assert get(service, "clash/d/x").content == b"x"
    assert put(service, "clash/gone", b"g").status_code == 201
    # a listed directory's parents pass for directories: writes below it go on
    assert put(service, "clash/d/y", b"y").status_code == 201


# -- b: a directory the listing lacks -----------------------------------------------


def test_a_directory_whose_objects_the_listing_lacks_is_not_found_until_listed(
        cluster: SwiftCluster, conn: Connection, service: GroupServer, container: str) -> None:
    written(service, "dir/seen")
    with updates_held(cluster, conn, container):
        conn.put_object(container, "dir/only/x", b"x")
    assert listed(conn, container, "dir/") == ["dir/seen"]
    assert code(get(service, "dir/only/")) == (404, "not_found")
    assert entries(get(service, "dir/")) == [("dir/seen", False, 8)]
    assert code(get(service, "dir/only/", recursive="true")) == (404, "not_found")
    # the object itself is read by name
    assert get(service, "dir/only/x").content == b"x"
    # the name is no object, and no directory as far as a delete can tell
    assert code(get(service, "dir/only")) == (404, "not_found")
    assert code(delete(service, "dir/only")) == (404, "not_found")

    catch_up(cluster, conn, container, ["dir/only/x", "dir/seen"], "dir/")
    assert entries(get(service, "dir/")) == [("dir/only", True, None), ("dir/seen", False, 8)]
    assert entries(get(service, "dir/only/")) == [("dir/only/x", False, 1)]
    assert code(delete(service, "dir/only")) == (409, "conflict")


# -- c: recursive listings ----------------------------------------------------------


def test_a_recursive_listing_lacks_new_writes_and_shows_deleted_and_replaced_versions_until_caught_up(
        cluster: SwiftCluster, conn: Connection, service: GroupServer, container: str) -> None:
    assert put(service, "rec/gone", b"gone").status_code == 201
    assert put(service, "rec/kept", b"kept").status_code == 201
    assert put(service, "rec/over", b"old").status_code == 201
    with updates_held(cluster, conn, container):
        conn.put_object(container, "rec/new", b"new")
        conn.put_object(container, "rec/over", b"replaced")
        assert delete(service, "rec/gone").status_code == 204
    lagging = get(service, "rec/", recursive="true")
    # no HEAD per entry: the listing's rows, as Swift has them
    assert entries(lagging) == [("rec/gone", False, 4), ("rec/kept", False, 4),
                                ("rec/over", False, 3)]
    etags = {e["path"]: e["etag"] for e in lagging.json()["entries"]}
    assert etags["rec/over"] == "149603e6c03516362a8da23f624db945"  # md5 of b"old"
    assert code(get(service, "rec/gone")) == (404, "not_found")
    assert get(service, "rec/over").content == b"replaced"
    assert get(service, "rec/new").content == b"new"

    catch_up(cluster, conn, container, ["rec/kept", "rec/new", "rec/over"], "rec/")
    caught_up = get(service, "rec/", recursive="true")
    assert entries(caught_up) == [("rec/kept", False, 4), ("rec/new", False, 3),
                                  ("rec/over", False, 8)]
    assert {e["path"]: e["etag"] for e in caught_up.json()["entries"]}["rec/over"] \
        == "91bb248359043fe98416e259c9bdf10d"  # md5 of b"replaced"


# -- d: bulk delete -------------------------------------------------------------------


def rm_recursive(service: GroupServer, path: str) -> subprocess.CompletedProcess:
    """``blobsvc rm -r``: a recursive listing, then bulk deletes of what it names."""
    return subprocess.run([sys.executable, "-m", "blobsvc", "rm", "-r", path],
                          env=clean_environ({"BLOBSVC_URL": service.url}),
                          capture_output=True, timeout=60)


def test_a_bulk_delete_reaches_named_objects_the_listing_lacks_a_tree_delete_only_listed_ones(
        cluster: SwiftCluster, conn: Connection, service: GroupServer, container: str) -> None:
    written(service, "bulk/listed", "bulk/deleted")
    with updates_held(cluster, conn, container):
        for name in ("bulk/a", "bulk/b", "bulk/sub/c"):
            conn.put_object(container, name, b"lagging")
        assert delete(service, "bulk/deleted").status_code == 204
    assert listed(conn, container, "bulk/") == ["bulk/deleted", "bulk/listed"]
    # named paths are deleted by name; a directory the listing lacks is not found
    res = post(service, "delete", {"paths": ["bulk/a", "bulk/sub"]})
    assert res.status_code == 200
    assert res.json() == {"deleted": ["bulk/a"], "not_found": ["bulk/sub"], "errors": []}
    assert not exists(conn, container, "bulk/a")
    # a tree delete deletes what its listing names (a deleted one is not
    # found, which it takes as deleted), and nothing else
    result = rm_recursive(service, "bulk")
    assert (result.returncode, result.stderr) == (0, b"")
    assert [exists(conn, container, name) for name in ("bulk/listed", "bulk/b", "bulk/sub/c")] \
        == [False, True, True]

    catch_up(cluster, conn, container, ["bulk/b", "bulk/sub/c"], "bulk/")
    result = rm_recursive(service, "bulk")
    assert (result.returncode, result.stderr) == (0, b"")
    assert listed(conn, container, "bulk/") == []
    assert code(get(service, "bulk/")) == (404, "not_found")


def test_fsspec_rm_recursive_takes_an_object_its_listing_shows_but_deleted_meanwhile_as_deleted(
        cluster: SwiftCluster, conn: Connection, service: GroupServer, container: str) -> None:
    fs = BlobsvcFileSystem(url=service.url, skip_instance_cache=True)
    written(service, "fsrm/listed", "fsrm/deleted")
    with updates_held(cluster, conn, container):
        conn.put_object(container, "fsrm/late", b"lagging")
        assert delete(service, "fsrm/deleted").status_code == 204
    assert listed(conn, container, "fsrm/") == ["fsrm/deleted", "fsrm/listed"]
    fs.rm("fsrm", recursive=True)  # as blobsvc rm -r: what vanished meanwhile is gone
    assert [exists(conn, container, name) for name in ("fsrm/listed", "fsrm/late")] \
        == [False, True]
    catch_up(cluster, conn, container, ["fsrm/late"], "fsrm/")


# -- e: cat, move, copy ---------------------------------------------------------------


def test_cat_move_and_copy_take_objects_the_listing_lacks_by_name(
        cluster: SwiftCluster, conn: Connection, service: GroupServer, container: str) -> None:
    written(service, "named/stale")
    with updates_held(cluster, conn, container):
        conn.put_object(container, "named/1", b"part1-")
        conn.put_object(container, "named/2", b"part2")
        conn.put_object(container, "named/src", b"moved")
        conn.put_object(container, "named/orig", b"copied")
        assert delete(service, "named/stale").status_code == 204
    assert listed(conn, container, "named/") == ["named/stale"]
    # cat HEADs its chunks: a listed but deleted chunk is missing, nothing changes
    refused = post(service, "cat", {"path": "named/joined", "chunks": ["named/1", "named/stale"]})
    assert code(refused) == (404, "not_found")
    assert "named/stale" in refused.json()["error"]["message"]
    assert "named/1" not in refused.json()["error"]["message"]
    assert exists(conn, container, "named/1")
    # unlisted chunks are found and joined, then deleted
    assert post(service, "cat", {"path": "named/joined",
                                 "chunks": ["named/1", "named/2"]}).status_code == 201
    assert get(service, "named/joined").content == b"part1-part2"
    assert not exists(conn, container, "named/1") and not exists(conn, container, "named/2")
    assert post(service, "move", {"from": "named/src", "to": "named/dst"}).status_code == 201
    assert post(service, "copy", {"from": "named/orig", "to": "named/copy"}).status_code == 201
    assert get(service, "named/dst").content == b"moved"
    assert get(service, "named/copy").content == b"copied"
    assert code(get(service, "named/src")) == (404, "not_found")

    # the late updates of the chunks' and the source's writes are older than
    # their deletes: they bring none of them back
    final = ["named/copy", "named/dst", "named/joined", "named/orig"]
    catch_up(cluster, conn, container, final, "named/")
    assert [path for path, _, _ in entries(get(service, "named/", recursive="true"))] == final


def test_an_s3_multipart_upload_completes_with_parts_the_listing_lacks(
        cluster: SwiftCluster, conn: Connection, service: GroupServer, container: str) -> None:
    # Behind a balancer a part lands on one instance and the Complete on
    # another. Here the parts are written while container-3 is down, which
    # then answers every listing alone, before any replicator could tell it
    # of them: boto3's Complete names every part, and blobsvc must find
    # them by name, not by that listing.
    from s3_helpers import new_bucket_name, s3_client

    s3, bucket = s3_client(service.url), new_bucket_name()
    s3.create_bucket(Bucket=bucket)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="late.bin")["UploadId"]
    first, last = random.Random("part 1").randbytes(5 * MiB), b"the last part"
    cluster.stop_server("object-updater")
    cluster.stop_server("container-3")
    etags = [s3.upload_part(Bucket=bucket, Key="late.bin", UploadId=upload_id,
                            PartNumber=number, Body=data)["ETag"]
             for number, data in ((1, first), (2, last))]
    for node in (1, 2):  # its rows and the replicators that would push them
        cluster.stop_server(f"container-{node}")
        cluster.stop_server(f"container-replicator-{node}")
    cluster.start_server("container-3")
    time.sleep(ERROR_SUPPRESSION_SECONDS + 0.5)  # the proxy shuns it a while after its outage
    assert s3.list_parts(Bucket=bucket, Key="late.bin", UploadId=upload_id).get("Parts") is None
    s3.complete_multipart_upload(
        Bucket=bucket, Key="late.bin", UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": number, "ETag": etag}
                                   for number, etag in enumerate(etags, 1)]})
    assert s3.get_object(Bucket=bucket, Key="late.bin")["Body"].read() == first + last
    cluster.start()
    catch_up(cluster, conn, container, [f"{bucket}/late.bin"], f"{bucket}/")
    assert s3.get_object(Bucket=bucket, Key="late.bin")["Body"].read() == first + last


# -- f: segments kept for manifests the listing lacks -----------------------------------


def test_segments_of_a_large_object_stay_while_the_listing_lacks_the_manifest_that_lists_them(
        cluster: SwiftCluster, conn: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    drv = create_driver("swift", swift_settings(cluster, segment_grace_seconds=60,
                                                collect_interval_seconds=0))
    other = create_driver("swift", swift_settings(cluster, container=drv.container,
                                                  segment_grace_seconds=60,
                                                  collect_interval_seconds=0))
    data = random.Random("lent").randbytes(2 * MiB + 12345)  # three segments of 1 MiB or less
    try:
        drv.put_object("big", Upload(iter([data]), expected_size=len(data)))
        with updates_held(cluster, conn, drv.container):
            # A move by another instance, its listing update late. Its clash
            # check lists, which the hold makes impossible: taken as passed.
            with monkeypatch.context() as patched:
                patched.setattr(claims, "check_no_clash", lambda client, path: None)
                other.move_object("big", "moved")
        other.close()
        # The listing still shows the source and lacks the copy.
        assert [name for name in listed(conn, drv.container) if not name.startswith(".")] == [
            "big"]
        assert exists(conn, drv.container, "moved") and not exists(conn, drv.container, "big")
    finally:
        drv.close()  # decides now, grace or not, whether the version it wrote is orphaned
    assert conn.get_object(drv.container, "moved")[1] == data
    catch_up(cluster, conn, drv.container, ["moved"], "moved")
    assert conn.get_object(drv.container, "moved")[1] == data

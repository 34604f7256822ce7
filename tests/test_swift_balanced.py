"""Several blobsvc instances behind HAProxy on a replicated Swift while
nodes fail: the README's "on Swift, blobsvc keeps no state of its own: run
as many instances as you like behind any HTTP load balancer", checked.

Runs on ``swift_cluster`` (three nodes, three replicas) with three
instances on one container (tests/balanced.py) behind a real HAProxy
(tests/load_balancer.py). Every object is checked byte for byte with its
ETag; every wait is bounded.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
import requests
from api_client import wait_for
from balanced import Deployment, balanced_deployment
from live_server import MiB, swift_config, swift_leftovers, tool
from reports import REPORTS

try:
    from tests.swiftstack.cluster import SwiftCluster
except ImportError:  # tests/ is not a package and the repo root not on path
    from swiftstack.cluster import SwiftCluster  # type: ignore[no-redef]

#: Worker processes per instance: more than one, as deployed.
WORKERS = 2
TIMEOUT = 30.0
#: The replicators pass every second: what has not healed after this long will not.
HEAL_TIMEOUT = 30.0


def body(seed: object, size: int) -> bytes:
    return random.Random(f"{seed}:{size}").randbytes(size)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def base_config(cluster: SwiftCluster) -> dict:
    """Every instance's config: the cluster, 1 MiB segments, several workers."""
    return swift_config(cluster, workers=WORKERS, threads=8)


@pytest.fixture
def cluster(swift_cluster: SwiftCluster) -> Iterator[SwiftCluster]:
    """The module's cluster with every process up again (an earlier test
    may have stopped some)."""
    swift_cluster.start()
    yield swift_cluster


@pytest.fixture(scope="module")
def shared(swift_cluster: SwiftCluster,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Three instances on one container behind HAProxy, for the module."""
    with balanced_deployment(tmp_path_factory.mktemp("balanced"), base_config(swift_cluster)) as dep:
        yield dep


@pytest.fixture
def deployment(shared: Deployment, cluster: SwiftCluster) -> Deployment:
    """The shared deployment with every instance back in the rotation."""
    shared.balancer.wait_until(lambda states: all(s == "UP" for s in states.values()),
                               TIMEOUT, "every instance UP")
    return shared


def get(url: str, path: str) -> requests.Response:
    return requests.get(f"{url}/v1/objects/{path}", timeout=TIMEOUT)


# -- a: the balancer spreads requests; any instance reads any write ------------


def test_requests_reach_every_instance_and_each_reads_the_others_writes(
        deployment: Deployment) -> None:
    before = {m: deployment.requests_per_instance(m) for m in ("PUT", "GET")}
    written = {}
    for index in range(9):
        data = body("spread", 1000 + index * 150_000)  # 1 kB to 1.2 MB: some SLOs
        res = requests.put(f"{deployment.url}/v1/objects/spread/{index}", data=data, timeout=TIMEOUT)
        assert res.status_code == 201, res.text
        assert res.headers["ETag"] == f'"{md5_hex(data)}"'
        written[f"spread/{index}"] = data
    for path in written:
        assert get(deployment.url, path).status_code == 200
    for method in ("PUT", "GET"):
        # an access log line is written once the answer is sent: wait for all nine
        def counts(method: str = method) -> dict[str, int]:
            now = deployment.requests_per_instance(method)
            return {name: now[name] - before[method][name] for name in now}

        wait_for(lambda: sum(counts().values()) >= 9, timeout=5)
        # round robin: nine requests, three instances, three each
        assert counts() == {name: 3 for name in deployment.names()}, method

    for path, data in written.items():
        for instance in deployment.instances:
            res = get(instance.url, path)
            assert res.status_code == 200, (instance.url, path, res.text)
            assert res.content == data, (instance.url, path)
            assert res.headers["ETag"] == f'"{md5_hex(data)}"'


# -- b: one object server down under mixed load ---------------------------------

LOAD_THREADS = 8
KEYS_PER_THREAD = 2
#: Load before the node stops, while it is down, after it is back.
PHASES = (2.0, 6.0, 2.0)


@dataclass
class Owned:
    """One load thread's keys: only it writes them, so it knows what each
    holds (a set when a write's outcome is unknown: a 5xx or a cut connection)."""

    versions: dict[str, list[bytes | None]] = field(default_factory=dict)
    history: dict[str, list[bytes]] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    connection_errors: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    acknowledged: list[float] = field(default_factory=list)  # when each 201 came
    reads: int = 0


def _mixed_load(url: str, index: int, owned: Owned, deadline: float) -> None:
    """Writes, reads, deletes and listings of this thread's own keys until ``deadline``."""
    rng = random.Random(index)
    session = requests.Session()
    paths = list(owned.versions)
    for _ in range(100_000):  # bounded; the deadline ends it long before
        if time.monotonic() >= deadline:
            break
        path = rng.choice(paths)
        op = rng.choices(["put", "get", "head", "delete", "list"], [4, 4, 1, 1, 1])[0]
        try:
            if op == "put":
                data = body((index, time.monotonic_ns()), rng.choice([0, 1, 5000, 300_000,
                                                                    MiB + 7, 2 * MiB + 100]))
                owned.history[path].append(data)
                res = session.put(f"{url}/v1/objects/{path}", data=data, timeout=TIMEOUT)
                if res.status_code == 201 and res.headers.get("ETag") == f'"{md5_hex(data)}"':
                    owned.versions[path] = [data]
                    owned.acknowledged.append(time.monotonic())
                elif res.status_code >= 500:
                    owned.server_errors.append(f"PUT {path}: {res.status_code} {res.text[:200]}")
                    owned.versions[path] = owned.versions[path] + [data]
                else:
                    owned.wrong.append(f"PUT {path}: {res.status_code} {res.headers} {res.text[:200]}")
            elif op == "delete":
                res = session.delete(f"{url}/v1/objects/{path}", timeout=TIMEOUT)
                if res.status_code in (204, 404) and (res.status_code == 204) == any(
                        v is not None for v in owned.versions[path]):
                    owned.versions[path] = [None]
                elif res.status_code >= 500:
                    owned.server_errors.append(f"DELETE {path}: {res.status_code} {res.text[:200]}")
                    owned.versions[path] = owned.versions[path] + [None]
                else:
                    owned.wrong.append(f"DELETE {path}: {res.status_code}, model "
                                       f"{[None if v is None else len(v) for v in owned.versions[path]]}")
            elif op in ("get", "head"):
                res = session.request(op.upper(), f"{url}/v1/objects/{path}", timeout=TIMEOUT)
                owned.reads += 1
                if res.status_code >= 500:
                    owned.server_errors.append(f"{op} {path}: {res.status_code} {res.text[:200]}")
                elif (problem := _read_problem(res, owned.versions[path], op == "get")):
                    owned.wrong.append(f"{op.upper()} {path}: {problem}")
            else:
                res = session.get(f"{url}/v1/objects/{path.rsplit('/', 1)[0]}/", timeout=TIMEOUT)
                if res.status_code >= 500:
                    owned.server_errors.append(f"list {path}: {res.status_code} {res.text[:200]}")
                elif res.status_code not in (200, 404):
                    owned.wrong.append(f"list {path}: {res.status_code} {res.text[:200]}")
        except requests.RequestException as exc:
            owned.connection_errors.append(f"{op} {path}: {exc!r}")
            session.close()
            session = requests.Session()
    session.close()


def _read_problem(res: requests.Response, versions: list[bytes | None], with_body: bool) -> str | None:
    """Why a GET/HEAD answer is none of the versions the key may hold (None: it is one)."""
    if res.status_code == 404:
        return None if None in versions else f"404, but it holds one of {len(versions)} versions"
    if res.status_code != 200:
        return f"{res.status_code} {res.text[:200]}"
    etag, size = res.headers.get("ETag"), int(res.headers["Content-Length"])
    for data in versions:
        if data is not None and etag == f'"{md5_hex(data)}"' and size == len(data) \
                and (not with_body or res.content == data):
            return None
    return f"{size}B ETag {etag} is none of {[None if v is None else len(v) for v in versions]}"


def _unreadable(owned: list[Owned], urls: list[str]) -> list[str]:
    """Keys that do not read back, through each of ``urls``, as a version
    they may hold."""
    problems = []
    for mine in owned:
        for path, versions in mine.versions.items():
            for url in urls:
                res = requests.get(f"{url}/v1/objects/{path}", timeout=TIMEOUT)
                if (problem := _read_problem(res, versions, True)) is not None:
                    problems.append(f"{url} {path}: {problem}")
    return problems


def test_one_object_server_down_under_load_loses_no_acknowledged_write(
        deployment: Deployment, cluster: SwiftCluster) -> None:
    owned = [Owned() for _ in range(LOAD_THREADS)]
    for index, mine in enumerate(owned):
        for number in range(KEYS_PER_THREAD):
            path = f"load/t{index}/k{number}"
            data = body(path, 200_000)
            assert requests.put(f"{deployment.url}/v1/objects/{path}", data=data,
                                timeout=TIMEOUT).status_code == 201
            mine.versions[path], mine.history[path] = [data], [data]
    deadline = time.monotonic() + sum(PHASES)
    threads = [threading.Thread(target=_mixed_load, args=(deployment.url, index, mine, deadline))
               for index, mine in enumerate(owned)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(PHASES[0])
        cluster.stop_server("object-1")
        down_at = time.monotonic()
        time.sleep(PHASES[1])
    finally:
        cluster.start_server("object-1")
        up_at = time.monotonic()
        for thread in threads:
            thread.join(deadline - time.monotonic() + 2 * TIMEOUT)
    assert not any(thread.is_alive() for thread in threads)

    # Reads ask for the newest copy, so even right after the node's return,
    # before replication heals it, every acknowledged write reads back,
    # through the balancer and through every instance (README: Guarantees).
    urls = [deployment.url] + [server.url for server in deployment.instances]
    stale_at_return = len(_unreadable(owned, urls))
    healed = wait_for(lambda: not _unreadable(owned, urls), timeout=HEAL_TIMEOUT,
                      interval=0.5)
    server_errors = [e for mine in owned for e in mine.server_errors]
    connection_errors = [e for mine in owned for e in mine.connection_errors]
    wrong = [e for mine in owned for e in mine.wrong]
    acknowledged = sum(len(mine.acknowledged) for mine in owned)
    while_down = sum(down_at < at < up_at for mine in owned for at in mine.acknowledged)
    print(f"\none object server down {up_at - down_at:.1f}s of {sum(PHASES):.0f}s: "
          f"{acknowledged} writes acknowledged ({while_down} while down), "
          f"{sum(m.reads for m in owned)} reads, "
          f"5xx {len(server_errors)}, connection errors {len(connection_errors)}, "
          f"wrong answers {len(wrong)}; stale reads at the return {stale_at_return}, "
          f"healed: {healed}")
    assert while_down >= LOAD_THREADS, "the load wrote too little while the node was down"
    assert not server_errors, server_errors[:10]
    assert not connection_errors, connection_errors[:10]
    assert not wrong, wrong[:10]
    assert stale_at_return == 0, f"{stale_at_return} acknowledged writes unreadable at the return"
    assert healed, _unreadable(owned, urls)[:10]


def test_an_overwrite_acknowledged_while_a_node_was_down_reads_back_when_it_returns(
        deployment: Deployment, cluster: SwiftCluster) -> None:
    old, new = body("before", 300_000), body("during", 4000)
    assert requests.put(f"{deployment.url}/v1/objects/return/o", data=old,
                        timeout=TIMEOUT).status_code == 201
    cluster.stop_server("object-1")
    res = requests.put(f"{deployment.url}/v1/objects/return/o", data=new, timeout=TIMEOUT)
    assert res.status_code == 201 and res.headers["ETag"] == f'"{md5_hex(new)}"', res.text
    # the other nodes' replicators would push the new copy to node 1 within
    # a second of its return: held while the reads show what it serves
    cluster.stop_server("object-replicator-2")
    cluster.stop_server("object-replicator-3")
    cluster.start_server("object-1")
    answers = [get(deployment.url, "return/o").content for _ in range(12)]
    served = sorted({"new" if a == new else "old" if a == old else f"{len(a)}B" for a in answers})
    assert served == ["new"], f"{answers.count(old)} of 12 reads served the old version"


def test_curl_and_boto3_store_large_objects_through_the_balancer_with_a_node_down(
        deployment: Deployment, cluster: SwiftCluster, tmp_path: Path) -> None:
    # The clients users have, not this suite's: curl's upload and download
    # of a large object, and boto3's multipart transfer, whose parts and
    # ranged reads go in parallel to whichever instance round robin picks,
    # so one upload's state must live in Swift, not in an instance.
    from boto3.s3.transfer import TransferConfig
    from s3_helpers import new_bucket_name, s3_client

    curl_data, boto_data = body("curl", 3 * MiB + 17), body("boto3", 11 * MiB + 5)
    (tmp_path / "curl.bin").write_bytes(curl_data)
    (tmp_path / "boto3.bin").write_bytes(boto_data)
    url = f"{deployment.url}/v1/objects/clients/curl.bin"
    cluster.stop_server("object-1")

    assert _curl("-T", str(tmp_path / "curl.bin"), "-o", os.devnull, url) == "201"
    for index in range(len(deployment.instances)):  # one read from each, round robin
        assert _curl("-o", str(tmp_path / f"curl-{index}.bin"), url) == "200"
        assert (tmp_path / f"curl-{index}.bin").read_bytes() == curl_data

    s3, bucket = s3_client(deployment.url), new_bucket_name()
    s3.create_bucket(Bucket=bucket)
    parts = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB,
                           max_concurrency=3)
    s3.upload_file(str(tmp_path / "boto3.bin"), bucket, "boto3.bin", Config=parts)
    head = s3.head_object(Bucket=bucket, Key="boto3.bin")
    assert head["ContentLength"] == len(boto_data)
    assert head["ETag"].strip('"').endswith("-3")  # three parts, joined
    part_puts = deployment.instance_logs(rf"PUT /{bucket}/boto3\.bin 200 ")  # UploadPart
    assert sum(len(lines) for lines in part_puts.values()) == 3
    assert sum(1 for lines in part_puts.values() if lines) > 1, part_puts
    s3.download_file(bucket, "boto3.bin", str(tmp_path / "boto3-back.bin"), Config=parts)
    assert (tmp_path / "boto3-back.bin").read_bytes() == boto_data
    assert get(deployment.url, f"{bucket}/boto3.bin").content == boto_data


def _curl(*args: str) -> str:
    """curl with ``args`` (which name an ``-o`` file); the status code it got."""
    done = subprocess.run([tool("curl"), "-sS", "--noproxy", "*", "--max-time", str(TIMEOUT),
                           "-w", "%{http_code}", *args],
                          capture_output=True, timeout=TIMEOUT + 10, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


# -- c: no write quorum ------------------------------------------------------------

#: The longest a refused write may take: every attempt of the driver (its
#: Swift timeout, 1 retry) plus slack. Swift refuses at once here (the dead
#: servers refuse connections), so this bound is loose on purpose.
REFUSAL_BOUND = 2 * 10.0 + 2.0


def test_two_object_servers_down_refuse_writes_with_503_and_show_nothing_half_written(
        deployment: Deployment, cluster: SwiftCluster) -> None:
    kept = body("quorum-kept", 150_000)
    assert requests.put(f"{deployment.url}/v1/objects/quorum/kept", data=kept,
                        timeout=TIMEOUT).status_code == 201
    cluster.stop_server("object-1")
    cluster.stop_server("object-2")
    refused = {}
    for path, size in (("quorum/kept", 4000), ("quorum/new", 3000), ("quorum/large", 2 * MiB + 9)):
        started = time.monotonic()
        res = requests.put(f"{deployment.url}/v1/objects/{path}", data=body(path, size),
                           timeout=TIMEOUT)
        refused[path] = (res.status_code, res.json()["error"]["code"], time.monotonic() - started)
    cluster.start()  # every node back
    print(f"\nwrites without quorum: {refused}")
    assert {path: got[:2] for path, got in refused.items()} == {
        path: (503, "backend_unavailable") for path in refused}
    assert all(took < REFUSAL_BOUND for _, _, took in refused.values()), refused

    for url in [deployment.url] + [server.url for server in deployment.instances]:
        res = get(url, "quorum/kept")
        assert (res.status_code, res.content, res.headers["ETag"]) == (200, kept, f'"{md5_hex(kept)}"')
        assert get(url, "quorum/new").status_code == 404
        assert get(url, "quorum/large").status_code == 404
        listing = get(url, "quorum/").json()
        assert [(e["path"], e["size"], e["etag"]) for e in listing["entries"]] == [
            ("quorum/kept", len(kept), md5_hex(kept))]


# -- d: a container server down ----------------------------------------------------

LISTINGS = 30


def test_listings_with_container_servers_down_are_whole_or_503_never_short(
        deployment: Deployment, cluster: SwiftCluster) -> None:
    written = {}
    for index in range(12):
        data = body(("listed", index), 500 + 97 * index)
        path = f"listed/o{index:02d}"
        assert requests.put(f"{deployment.url}/v1/objects/{path}", data=data,
                            timeout=TIMEOUT).status_code == 201
        written[path] = (len(data), md5_hex(data))
    answers: dict[str, list[int]] = {}
    wrong = []
    for down in (["container-1"], ["container-1", "container-2"]):
        for name in down:
            cluster.stop_server(name)
        statuses = answers.setdefault("+".join(down), [])
        for index in range(LISTINGS):
            limit = 5 if index % 2 else 1000  # paginated and whole
            entries, status = _list_all(deployment.url, "listed/", limit)
            statuses.append(status)
            if status == 200 and entries != written:
                wrong.append(f"{down} limit {limit}: {len(entries)} entries of {len(written)}")
            elif status not in (200, 503):
                wrong.append(f"{down} limit {limit}: {status}")
    print(f"\nlistings with container servers down: "
          f"{ {down: {s: codes.count(s) for s in set(codes)} for down, codes in answers.items()} }")
    assert not wrong, wrong[:10]
    assert 200 in answers["container-1"], answers  # one down: the quorum answers


def _list_all(url: str, directory: str, limit: int) -> tuple[dict[str, tuple[int, str]], int]:
    """Every entry of ``directory`` page by page, as path -> (size, etag),
    and the status that ended it (200, or the first other one)."""
    entries: dict[str, tuple[int, str]] = {}
    marker = None
    for _ in range(100):
        params = {"limit": str(limit), **({"marker": marker} if marker else {})}
        res = requests.get(f"{url}/v1/objects/{directory}", params=params, timeout=TIMEOUT)
        if res.status_code != 200:
            if res.status_code == 503:
                assert res.json()["error"]["code"] == "backend_unavailable", res.text
            return entries, res.status_code
        page = res.json()
        entries.update({e["path"]: (e["size"], e["etag"]) for e in page["entries"]})
        if not page["truncated"]:
            return entries, 200
        marker = page["next_marker"]
    raise AssertionError(f"listing {directory} did not end")


# -- e: an instance killed mid-upload -------------------------------------------------

UPLOAD_SIZE = 6 * MiB + 321
#: What the client has sent when its instance dies: a few segments stored.
SENT_BEFORE_KILL = 3 * MiB
#: Attempts of the client's retry, and the pause between two.
CLIENT_ATTEMPTS = 5
CLIENT_PAUSE = 0.5


@dataclass
class CutOff:
    """What a user saw when the instance serving their upload was killed."""

    deployment: Deployment
    cut_answer: str
    attempts: int
    stored: bool  # a retry was answered 201
    path: str
    data: bytes


def _segment_count(cluster: SwiftCluster, container: str) -> int:
    from swiftclient.client import Connection

    conn = Connection(authurl=cluster.auth_url, user=cluster.user, key=cluster.key,
                      auth_version="1", retries=2)
    try:
        return len(conn.get_container(container, prefix=".blobsvc/segments/",
                                      full_listing=True)[1])
    finally:
        conn.close()


def _next_instance(dep: Deployment) -> int:
    """Which instance round robin gives the next request: the one after the
    instance that answers a probe (each logs the requests it answered)."""
    probe = f"probe/{uuid.uuid4().hex}"
    assert get(dep.url, probe).status_code == 404
    wait_for(lambda: any(dep.instance_logs(re.escape(probe)).values()), timeout=5)
    hit = [index for index, lines in enumerate(dep.instance_logs(re.escape(probe)).values()) if lines]
    assert len(hit) == 1, hit
    return (hit[0] + 1) % len(dep.instances)


def _cut_off_upload(dep: Deployment, cluster: SwiftCluster, path: str) -> CutOff:
    """Send part of a large PUT through the balancer, kill -9 the instance
    serving it once it has stored segments, then retry as a user would."""
    data = body(path, UPLOAD_SIZE)
    victim = dep.instances[_next_instance(dep)]
    segments_before = _segment_count(cluster, dep.container)
    with socket.create_connection(("127.0.0.1", dep.balancer.port), timeout=TIMEOUT) as sock:
        sock.sendall(f"PUT /v1/objects/{path} HTTP/1.1\r\nHost: test\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:SENT_BEFORE_KILL])
        assert wait_for(lambda: _segment_count(cluster, dep.container) > segments_before,
                        timeout=15), "no segment stored before the kill"
        victim.kill_group(signal.SIGKILL)
        try:
            sock.sendall(data[SENT_BEFORE_KILL:])
            answer = http.client.HTTPResponse(sock, method="PUT")
            answer.begin()
            cut_answer = f"{answer.status} {answer.read()[:100]!r}"
        except OSError as exc:
            cut_answer = repr(exc)
    attempts, stored = 0, False
    while attempts < CLIENT_ATTEMPTS and not stored:
        attempts += 1
        try:
            res = requests.put(f"{dep.url}/v1/objects/{path}", data=data, timeout=TIMEOUT)
            stored = res.status_code == 201 and res.headers["ETag"] == f'"{md5_hex(data)}"'
        except requests.RequestException:
            pass
        if not stored:
            time.sleep(CLIENT_PAUSE)
    return CutOff(dep, cut_answer, attempts, stored, path, data)


def test_an_upload_cut_off_by_kill_9_of_its_instance_succeeds_on_the_clients_retry(
        cluster: SwiftCluster, tmp_path: Path) -> None:
    with balanced_deployment(tmp_path, base_config(cluster)) as dep:
        cut = _cut_off_upload(dep, cluster, "killed/upload")
        orphans = swift_leftovers(cluster, dep.container, [cut.path])[0]
        print(f"\nupload cut off by kill -9: the client got {cut.cut_answer}; "
              f"stored on attempt {cut.attempts}; {len(orphans)} segments no manifest lists")
        assert not cut.cut_answer.startswith("201"), cut.cut_answer
        assert cut.stored, f"no retry stored the object in {cut.attempts} attempts"
        survivors = [server for server in dep.instances if server.group_pids()]
        assert len(survivors) == len(dep.instances) - 1
        for url in [dep.url] + [server.url for server in survivors]:
            res = get(url, cut.path)
            assert res.status_code == 200, res.text
            assert res.content == cut.data
            assert res.headers["ETag"] == f'"{md5_hex(cut.data)}"'


#: The clean-up settings of the collection of abandoned segments (an hour
#: and five minutes by default); the grace period of replaced versions too.
COLLECTION = {"abandoned_after_seconds": 4, "collect_interval_seconds": 1,
              "segment_grace_seconds": 1}


def test_segments_of_an_upload_cut_off_by_kill_9_are_collected_within_abandoned_after_seconds(
        cluster: SwiftCluster, tmp_path: Path) -> None:
    config = swift_config(cluster, workers=WORKERS, threads=8, storage=COLLECTION)
    with balanced_deployment(tmp_path, config) as dep:
        cut = _cut_off_upload(dep, cluster, "collected/upload")
        assert cut.stored and get(dep.url, cut.path).content == cut.data
        bound = COLLECTION["abandoned_after_seconds"] + 5 * COLLECTION["collect_interval_seconds"]
        wait_for(lambda: not swift_leftovers(cluster, dep.container, [cut.path])[0],
                 timeout=bound + 5, interval=0.5)
        assert swift_leftovers(cluster, dep.container, [cut.path])[0] == []


# -- f: the load model through the balancer, a node down midway ------------------------

#: Seconds of load, and when in it object-1 stops and comes back.
MODEL_SECONDS = 60.0
MODEL_DOWN = (20.0, 40.0)


@dataclass
class _Front:
    """What LoadRun needs of a server: its URL (here, the balancer's)."""

    url: str


def test_load_model_through_the_balancer_with_a_node_down_midway(
        cluster: SwiftCluster, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from test_load import THREADS, LoadRun

    proxy_log_start = cluster.log_path("proxy").stat().st_size
    # a deployment on a container of its own: the model starts from an empty store
    with balanced_deployment(tmp_path / "deployment", base_config(cluster)) as dep:
        front = _Front(dep.url)
        run = LoadRun(front, "swift", random.randrange(1 << 30))  # type: ignore[arg-type]
        # With a node down, a listing may lag behind writes until the updaters
        # catch up (README: "On an eventually consistent listing").
        run.listings_lag = True
        outage = threading.Thread(target=_outage, args=(cluster, MODEL_DOWN))
        outage.start()
        try:
            elapsed = run.run(THREADS, MODEL_SECONDS)
        finally:
            outage.join(MODEL_SECONDS + 60)
        run.report(elapsed, tmp_path / "load-balanced.json")
        refusals = quorum_refusals(cluster, proxy_log_start)
        # shown at the end of every run, as the load suite's figures are
        request.config.stash.setdefault(REPORTS, []).append(
            f"{run.report_text}\n  (three instances behind HAProxy; object-1 down "
            f"{MODEL_DOWN[0]:g}s to {MODEL_DOWN[1]:g}s; writes Swift refused for want "
            f"of a quorum: {len(refusals)} {refusals[:3]})")
        sweep = run.final_sweep()
    # 5xx only where Swift itself found too few object servers for a write:
    # with one down, that takes a second one failing the request
    errors = run.tally.server_errors
    assert all(" -> 503 " in error and "backend_unavailable" in error for error in errors), \
        errors[:10]
    assert len(errors) <= len(refusals), (errors[:10], refusals[:10])
    assert not run.tally.connection_errors, run.tally.connection_errors[:10]
    assert not run.tally.violations, run.tally.violations[:10]
    assert not sweep, sweep[:10]


#: What Swift's proxy logs when a write finds too few object servers to store it.
QUORUM_LOST = re.compile(r"Object (?:PUT|POST|DELETE) returning 503 for \[.*\]")


def quorum_refusals(cluster: SwiftCluster, since: int) -> list[str]:
    """The proxy's log lines, from byte ``since`` on, of writes it refused
    for want of a quorum, each with the statuses its object servers gave."""
    with open(cluster.log_path("proxy"), "rb") as log:
        log.seek(since)
        text = log.read().decode(errors="replace")
    return [found.group(0) for found in map(QUORUM_LOST.search, text.splitlines()) if found]


def _outage(cluster: SwiftCluster, window: tuple[float, float]) -> None:
    """object-1 down from ``window[0]`` to ``window[1]`` seconds from now."""
    started = time.monotonic()
    time.sleep(window[0])
    cluster.stop_server("object-1")
    try:
        time.sleep(max(0.0, window[1] - (time.monotonic() - started)))
    finally:
        cluster.start_server("object-1")

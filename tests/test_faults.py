"""Faults: crashes, a full disk, a backend that goes away, clients that stall.

* kill -9 of the whole server (supervisor and workers: the process group,
  see ``live_server.GroupServer``) while several large PUTs of known content
  overwrite existing objects; after a restart every object is its old or its
  new version, whole, and the abandoned temp files are gone.
* A full disk (an 8 MiB tmpfs as the storage root; needs root, skipped
  otherwise): 507 JSON, no temp file, the old version intact, the service
  still serving.
* Swift's proxy stopped (connections refused) or frozen (SIGSTOP: nothing
  answers) under load: ``503 backend_unavailable`` within the configured
  timeout while it is down, full recovery after.
* Slowloris: more stalled clients than the server has threads; other
  clients must still be served, and the stalled ones dropped after
  ``server.socket_timeout``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import random
import signal
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from api_client import wait_for
from live_server import GroupServer, MiB, filesystem_config, swift_config, swift_leftovers

# -- content -------------------------------------------------------------------

_BLOCK = random.Random(99).randbytes(MiB)


def content(seed: int, size: int):
    """``size`` bytes unique to ``seed``, produced 1 MiB at a time."""
    for index, start in enumerate(range(0, size, MiB)):
        yield (struct.pack(">QQ", seed, index) + _BLOCK[16:])[:min(MiB, size - start)]


def sha256_of(seed: int, size: int) -> str:
    digest = hashlib.sha256()
    for piece in content(seed, size):
        digest.update(piece)
    return digest.hexdigest()


def put(server: GroupServer, path: str, seed: int, size: int) -> None:
    res = requests.put(f"{server.url}/v1/objects/{path}", data=b"".join(content(seed, size)), timeout=60)
    assert res.status_code == 201, res.text


def get_sha256(server: GroupServer, path: str) -> tuple[int, str | None]:
    """(status, sha256 of the body streamed)."""
    digest = hashlib.sha256()
    with requests.get(f"{server.url}/v1/objects/{path}", stream=True, timeout=60) as res:
        if res.status_code != 200:
            return res.status_code, None
        for piece in res.iter_content(MiB):
            digest.update(piece)
    return 200, digest.hexdigest()


def temp_files(root: Path) -> list[str]:
    tmp = root / ".blobsvc" / "tmp"
    return sorted(os.listdir(tmp)) if tmp.is_dir() else []


class RawUpload:
    """A PUT on its own socket, sent piece by piece, its answer read later."""

    def __init__(self, server: GroupServer, path: str, seed: int, size: int, chunked: bool = False):
        self.sock = socket.create_connection((server.host, server.port), timeout=30)
        self.pieces = content(seed, size)
        self.chunked = chunked
        self.sent = 0
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        self.sock.sendall(f"PUT /v1/objects/{path} HTTP/1.1\r\nHost: test\r\n{framing}\r\n\r\n".encode())

    def send(self, limit: int | None = None) -> None:
        """Send pieces until ``limit`` bytes went (None: all, with the chunked terminator)."""
        for piece in self.pieces:
            frame = b"%x\r\n%s\r\n" % (len(piece), piece) if self.chunked else piece
            self.sock.sendall(frame)
            self.sent += len(piece)
            if limit is not None and self.sent >= limit:
                return
        if self.chunked:
            self.sock.sendall(b"0\r\n\r\n")

    def send_ignoring_resets(self) -> None:
        """Send everything unless the server stops reading (it answered early, or the socket closed)."""
        with contextlib.suppress(OSError):
            self.send()

    def response(self, timeout: float = 30) -> tuple[int, dict]:
        self.sock.settimeout(timeout)
        res = http.client.HTTPResponse(self.sock, method="PUT")
        res.begin()
        body = res.read()
        return res.status, {"content_type": res.getheader("Content-Type"), "body": body}

    def close(self) -> None:
        self.sock.close()


# -- kill -9 during uploads ----------------------------------------------------------

OLD_SIZE = 1 * MiB + 17
NEW_SIZE = 12 * MiB + 5
#: Fraction of the new body each upload has sent when the server is killed;
#: 1.0 = all of it, answer read before the kill (must be the new version);
#: None = all of it, answer not awaited (racing the kill: old or new).
SENT_AT_KILL = [0.1, 0.4, 0.7, 0.95, 1.0, 1.0, None, None]


@dataclass
class CrashOutcome:
    driver: str
    before_kill_temp_files: list = field(default_factory=list)
    after_kill_temp_files: list = field(default_factory=list)
    after_restart_temp_files: list = field(default_factory=list)
    objects: dict = field(default_factory=dict)  # path -> (status, "old" | "new" | "neither")
    expected: dict = field(default_factory=dict)  # path -> {"old"} / {"new"} / {"old", "new"}
    new_put_after_restart: int = 0
    leftover_segments: list = field(default_factory=list)
    #: Whether the killed server left segments or tombstones at all.
    killed_left: bool = False


#: Seconds after which the Swift driver takes a write's note or a tombstone
#: nobody settled for abandoned, and collects it (production: an hour).
ABANDONED_AFTER = 4
#: How long collecting what the killed server left may take: the lease,
#: the grace period, a collection interval, and room for a slow machine.
COLLECTED_WITHIN = ABANDONED_AFTER + 1 + 1 + 20


def _crash_config(driver: str, request, root: Path) -> dict:
    if driver == "swift":
        return swift_config(request.getfixturevalue("swift_stack"), workers=2, storage={
            "abandoned_after_seconds": ABANDONED_AFTER, "collect_interval_seconds": 1,
            "segment_grace_seconds": 1})
    return filesystem_config(root, fsync=True, workers=2)


@pytest.fixture(scope="module", params=["filesystem", "swift"])
def crash(request, tmp_path_factory) -> CrashOutcome:
    """Old versions, then concurrent overwrites, kill -9 of the group mid-way, restart."""
    driver = request.param
    base = tmp_path_factory.mktemp(f"crash-{driver}")
    root = base / "data"
    config = _crash_config(driver, request, root)
    outcome = CrashOutcome(driver)
    paths = [f"crash/obj{i}" for i in range(len(SENT_AT_KILL))]
    server = GroupServer(base / "server-1", config)
    uploads: list[RawUpload] = []
    try:
        server.start()
        for i, path in enumerate(paths):
            put(server, path, seed=i, size=OLD_SIZE)
        for i, (path, fraction) in enumerate(zip(paths, SENT_AT_KILL, strict=True)):
            upload = RawUpload(server, path, seed=1000 + i, size=NEW_SIZE, chunked=i % 2 == 1)
            uploads.append(upload)
            if fraction is None:
                upload.send()
                outcome.expected[path] = {"old", "new"}
            elif fraction == 1.0:
                upload.send()
                status, answer = upload.response()
                assert status == 201, answer
                outcome.expected[path] = {"new"}
            else:
                upload.send(int(NEW_SIZE * fraction))
                outcome.expected[path] = {"old"}
        if driver == "filesystem":
            partial = sum(1 for f in SENT_AT_KILL if f is not None and f < 1.0)
            assert wait_for(lambda: len(temp_files(root)) >= partial, timeout=10), temp_files(root)
            outcome.before_kill_temp_files = temp_files(root)
        server.kill_group(signal.SIGKILL)
        outcome.after_kill_temp_files = temp_files(root) if driver == "filesystem" else []
    finally:
        for upload in uploads:
            upload.close()
        server.stop()

    restarted = GroupServer(base / "server-2", config)
    try:
        restarted.start()
        if driver == "filesystem":
            outcome.after_restart_temp_files = temp_files(root)
        old = {path: sha256_of(i, OLD_SIZE) for i, path in enumerate(paths)}
        new = {path: sha256_of(1000 + i, NEW_SIZE) for i, path in enumerate(paths)}
        for path in paths:
            status, digest = get_sha256(restarted, path)
            which = "old" if digest == old[path] else "new" if digest == new[path] else "neither"
            outcome.objects[path] = (status, which)
        put(restarted, "crash/after-restart", seed=7, size=3 * MiB)
        outcome.new_put_after_restart = get_sha256(restarted, "crash/after-restart")[0]
        if driver == "swift":
            stack = request.getfixturevalue("swift_stack")
            container = config["storage"]["container"]
            outcome.leftover_segments = _segments_of_paths(stack, container, restarted)
            outcome.killed_left = bool(outcome.leftover_segments)
            wait_for(lambda: not _segments_of_paths(stack, container, restarted),
                     timeout=COLLECTED_WITHIN)
            outcome.leftover_segments = _segments_of_paths(stack, container, restarted)
    finally:
        restarted.stop()
    return outcome


def _segments_of_paths(stack, container: str, server: GroupServer) -> list[str]:
    """Segments in ``container`` that no live object's manifest lists."""
    listing = requests.get(f"{server.url}/v1/objects/crash/", timeout=30).json()
    live = [entry["path"] for entry in listing["entries"]]
    orphans, tombstones = swift_leftovers(stack, container, live)
    return orphans + tombstones


def test_kill_9_during_overwrites_leaves_every_object_old_or_new_and_whole(crash):
    broken = {path: got for path, got in crash.objects.items()
              if got[0] != 200 or got[1] not in crash.expected[path]}
    assert not broken, (f"objects neither their old nor their expected version after kill -9: "
                        f"{broken} (expected {crash.expected})")


def test_server_restarted_after_kill_9_accepts_new_uploads(crash):
    assert crash.new_put_after_restart == 200


@pytest.mark.parametrize("crash", ["filesystem"], indirect=True)
def test_restart_after_kill_9_removes_abandoned_temp_files(crash):
    assert crash.before_kill_temp_files, "no upload was in flight when the server was killed"
    assert crash.after_kill_temp_files, "kill -9 left nothing to clean up: the test proves nothing"
    assert crash.after_restart_temp_files == [], crash.after_restart_temp_files


@pytest.mark.parametrize("crash", ["swift"], indirect=True)
def test_segments_and_tombstones_a_kill_9_left_are_collected_after_restart(crash):
    assert crash.killed_left, "kill -9 left nothing to collect: the test proves nothing"
    assert crash.leftover_segments == [], (
        f"still there {COLLECTED_WITHIN} s after the restart: {crash.leftover_segments}")


# -- disk full ------------------------------------------------------------------------


@pytest.fixture
def tiny_root(tmp_path):
    """An 8 MiB tmpfs as the storage root (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the disk-full tests run as root in CI")
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@dataclass
class DiskFull:
    status: int
    answer: dict
    temp_files: list
    old_after: tuple
    served_after: list


@pytest.fixture(params=["content-length", "chunked"])
def disk_full(request, tiny_root, tmp_path) -> DiskFull:
    server = GroupServer(tmp_path / "server", filesystem_config(tiny_root, fsync=True, workers=2))
    server.start()
    try:
        put(server, "keep", seed=1, size=2 * MiB)
        upload = RawUpload(server, "keep", seed=2, size=16 * MiB, chunked=request.param == "chunked")
        sender = threading.Thread(target=upload.send_ignoring_resets, daemon=True)
        sender.start()
        try:
            status, answer = upload.response()
        finally:
            upload.close()
            sender.join(10)
        leftovers = temp_files(tiny_root)
        old_after = get_sha256(server, "keep")
        served = [requests.get(server.url + "/healthz", timeout=10).status_code,
                  requests.put(server.url + "/v1/objects/small", data=b"fits", timeout=10).status_code,
                  requests.get(server.url + "/v1/objects/small", timeout=10).status_code]
        return DiskFull(status, answer, leftovers, old_after, served)
    finally:
        server.stop()


def test_disk_full_put_is_507_insufficient_storage_json(disk_full):
    assert disk_full.status == 507, disk_full.answer
    assert disk_full.answer["content_type"].startswith("application/json")
    assert json.loads(disk_full.answer["body"])["error"]["code"] == "insufficient_storage"


def test_disk_full_put_leaves_no_temp_file(disk_full):
    assert disk_full.temp_files == []


def test_disk_full_put_keeps_the_old_version_whole(disk_full):
    assert disk_full.old_after == (200, sha256_of(1, 2 * MiB))


def test_disk_full_service_keeps_serving(disk_full):
    assert disk_full.served_after == [200, 201, 200]


# -- Swift down during load ---------------------------------------------------------------

SWIFT_TIMEOUT = 1.5
SWIFT_RETRIES = 1
#: The longest a request may wait for a Swift that does not answer: every
#: attempt times out, plus the backoffs, plus slack for a loaded machine.
DOWN_BOUND = (SWIFT_RETRIES + 1) * SWIFT_TIMEOUT + SWIFT_RETRIES * 0.1 + 2.0


@dataclass
class Sample:
    op: str
    started: float
    ended: float
    status: int | None
    code: str | None = None
    error: str | None = None


@dataclass
class Outage:
    kind: str
    samples: list
    down_from: float
    down_until: float
    recovered_at: float | None
    readyz_down: int
    healthz_down: int
    seeded_after: dict


def _load_loop(server: GroupServer, stop: threading.Event, samples: list, index: int) -> None:
    rng = random.Random(index)
    session = requests.Session()
    while not stop.is_set():
        op = rng.choice(["get", "put", "head", "list"])
        started = time.monotonic()
        try:
            if op == "get":
                res = session.get(f"{server.url}/v1/objects/seed/{rng.randrange(8)}", timeout=30)
            elif op == "head":
                res = session.head(f"{server.url}/v1/objects/seed/{rng.randrange(8)}", timeout=30)
            elif op == "put":
                res = session.put(f"{server.url}/v1/objects/load/{index}-{rng.randrange(4)}",
                                  data=rng.randbytes(rng.randint(0, 300_000)), timeout=30)
            else:
                res = session.get(f"{server.url}/v1/objects/seed/", timeout=30)
            code = None
            if res.status_code >= 400 and op != "head":
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    code = res.json()["error"]["code"]
            samples.append(Sample(op, started, time.monotonic(), res.status_code, code))
        except requests.RequestException as exc:
            samples.append(Sample(op, started, time.monotonic(), None, error=repr(exc)))
            session.close()
            session = requests.Session()
        time.sleep(0.02)
    session.close()


@contextlib.contextmanager
def _frozen(pid: int):
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture(scope="module", params=["stopped", "frozen"])
def outage(request, tmp_path_factory) -> Outage:
    """Load on a Swift-backed server while Swift's proxy is stopped (or frozen), then back."""
    stack = request.getfixturevalue("swift_stack")
    config = swift_config(stack, workers=2, storage={
        "timeout": SWIFT_TIMEOUT, "retries": SWIFT_RETRIES, "starting_backoff": 0.05, "max_backoff": 0.1})
    server = GroupServer(tmp_path_factory.mktemp(f"outage-{request.param}"), config)
    server.start()
    stop = threading.Event()
    samples: list[Sample] = []
    threads = []
    try:
        for i in range(8):
            put(server, f"seed/{i}", seed=i, size=200_000)
        threads = [threading.Thread(target=_load_loop, args=(server, stop, samples, i), daemon=True)
                   for i in range(6)]
        for thread in threads:
            thread.start()
        time.sleep(2.0)
        down_from = time.monotonic()
        if request.param == "stopped":
            stack.stop_proxy()
            context = contextlib.nullcontext()
        else:
            context = _frozen(stack.pids["proxy"])
        try:
            with context:
                time.sleep(DOWN_BOUND + 1.0)  # every request in flight at the start has given up
                readyz = requests.get(server.url + "/readyz", timeout=30).status_code
                healthz = requests.get(server.url + "/healthz", timeout=30).status_code
                time.sleep(3.0)
                down_until = time.monotonic()
        finally:
            if request.param == "stopped":
                stack.start_proxy()

        def healthy() -> bool:
            return requests.get(server.url + "/v1/objects/seed/0", timeout=30).status_code == 200

        recovered = wait_for(healthy, timeout=30, interval=0.2)
        recovered_at = time.monotonic() if recovered else None
        time.sleep(3.0)  # steady load after recovery
        stop.set()
        for thread in threads:
            thread.join(60)
        seeded = {i: get_sha256(server, f"seed/{i}") for i in range(8)}
        return Outage(request.param, list(samples), down_from, down_until, recovered_at, readyz, healthz,
                      {i: got == (200, sha256_of(i, 200_000)) for i, got in seeded.items()})
    finally:
        stop.set()
        server.stop()


def _during_outage(outage: Outage) -> list[Sample]:
    """Requests that started once Swift was down (and the ones in flight had given up)
    and ended before it came back."""
    return [s for s in outage.samples
            if s.started >= outage.down_from + DOWN_BOUND and s.ended <= outage.down_until]


def test_swift_down_answers_503_backend_unavailable(outage):
    during = _during_outage(outage)
    assert len(during) >= 6, f"too few requests while Swift was down: {during}"
    wrong = [s for s in during
             if not (s.status == 503 and (s.code == "backend_unavailable" or s.op == "head"))]
    assert not wrong, wrong[:10]


def test_swift_down_answers_within_the_configured_timeout(outage):
    down = [s for s in outage.samples if s.started >= outage.down_from and s.ended <= outage.down_until]
    slow = [s for s in down if s.ended - s.started > DOWN_BOUND]
    assert not slow, f"answers slower than {DOWN_BOUND:.1f}s while Swift was down: {slow[:10]}"
    if outage.kind == "frozen":  # else this proved nothing about the timeout
        longest = max(s.ended - s.started for s in down)
        assert longest >= SWIFT_TIMEOUT, f"no request waited for the timeout (longest {longest:.2f}s)"


def test_swift_down_never_drops_a_client_connection(outage):
    errors = [s for s in outage.samples if s.error is not None]
    assert not errors, errors[:10]


def test_swift_down_readyz_is_503_and_healthz_200(outage):
    assert (outage.readyz_down, outage.healthz_down) == (503, 200)


def test_swift_back_up_the_service_recovers_fully(outage):
    assert outage.recovered_at is not None, "the service did not recover within 30 s"
    after = [s for s in outage.samples if s.started >= outage.recovered_at]
    assert len(after) >= 6, after
    failed = [s for s in after if s.status is None or s.status >= 500]
    assert not failed, failed[:10]
    assert all(outage.seeded_after.values()), outage.seeded_after


# -- slowloris ------------------------------------------------------------------------------

SLOW_THREADS = 4
SLOW_SOCKET_TIMEOUT = 3.0
#: Stalled connections: three times what the server has threads for.
STALLED = 3 * SLOW_THREADS

STALLS = {
    "headers-never-finished": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n",
    "body-never-sent": b"PUT /v1/objects/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
}


@dataclass
class Slowloris:
    normal_seconds: list
    normal_statuses: list
    open_while_normal: int
    dropped_within: float | None


def _is_open(sock: socket.socket) -> bool:
    """True while the server has neither closed nor answered the connection."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)  # an answer, or b"" for a close: no longer stalled
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


@pytest.fixture(scope="module", params=list(STALLS), ids=list(STALLS))
def slowloris(request, tmp_path_factory) -> Slowloris:
    config = filesystem_config(tmp_path_factory.mktemp("slow") / "data", workers=1,
                               threads=SLOW_THREADS, socket_timeout=SLOW_SOCKET_TIMEOUT)
    server = GroupServer(tmp_path_factory.mktemp(f"slow-{request.param}"), config)
    server.start()
    stalled = []
    try:
        for _ in range(STALLED):
            sock = socket.create_connection((server.host, server.port), timeout=30)
            sock.sendall(STALLS[request.param])
            stalled.append(sock)
        opened = time.monotonic()
        time.sleep(0.3)  # let the server pick them up
        seconds, statuses = [], []
        for method, path, body in [("GET", "/healthz", None), ("PUT", "/v1/objects/normal", b"x" * 1000),
                                   ("GET", "/v1/objects/normal", None)]:
            started = time.monotonic()
            try:
                res = requests.request(method, server.url + path, data=body, timeout=30)
                statuses.append(res.status_code)
            except requests.RequestException as exc:
                statuses.append(repr(exc))
            seconds.append(round(time.monotonic() - started, 2))
        still_open = sum(_is_open(sock) for sock in stalled)

        def all_dropped() -> bool:
            return not any(_is_open(sock) for sock in stalled)

        dropped = wait_for(all_dropped, timeout=4 * SLOW_SOCKET_TIMEOUT + 10, interval=0.1)
        return Slowloris(seconds, statuses, still_open,
                         time.monotonic() - opened if dropped else None)
    finally:
        for sock in stalled:
            sock.close()
        server.stop()


def test_stalled_clients_do_not_block_other_clients(slowloris):
    assert slowloris.normal_statuses == [200, 201, 200]
    assert max(slowloris.normal_seconds) < 1.0, (
        f"normal requests took {slowloris.normal_seconds}s with {STALLED} stalled connections "
        f"on {SLOW_THREADS} threads (socket_timeout {SLOW_SOCKET_TIMEOUT}s)")


def test_stalled_clients_are_still_connected_while_others_are_served(slowloris):
    assert slowloris.open_while_normal == STALLED


def test_stalled_clients_are_dropped_after_the_socket_timeout(slowloris):
    assert slowloris.dropped_within is not None, "stalled connections were never dropped"
    # All were opened within a fraction of a second: each must go about
    # socket_timeout after its last byte, not after the ones before it.
    assert slowloris.dropped_within < SLOW_SOCKET_TIMEOUT + 2, slowloris.dropped_within

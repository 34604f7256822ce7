"""Load: many client threads against a real server process, every answer checked.

``BLOBSVC_LOAD_THREADS`` client threads (default 32) run for
``BLOBSVC_LOAD_SECONDS`` (default 60 s when the ``CI`` environment variable
is set, 15 s otherwise so that a developer's run stays quick) against
``python -m blobsvc serve`` with several worker processes, once on the
filesystem driver and once on a real Swift (tests/swiftstack, 1 MiB
segments so large objects become SLOs). Each thread loops over a weighted
mix of PUT (0 B to 8 MiB, most of them small; a third sent chunked from a
generator, some with ``X-Checksum-Sha256``), whole and ranged GET, HEAD,
paginated listings, move, cat and DELETE, over 64 keys in 4 directories.

The client keeps a model of what every key may hold. Writes to one key are
ordered by client-side locks, with one exception: PUTs to the same key may
overlap freely (they share the key's lock), so same-key write races happen,
and after overlapping PUTs the key may hold any of their versions. DELETE,
move and cat take their keys' locks exclusively (in sorted order), because
their outcome depends on what the key holds: the model can only say whether
a DELETE must answer 204 or 404, or what bytes a move carries, when no other
write to those keys is running. Reads take no lock at all: every GET, HEAD
and listing races with the writes, and must answer a version the key could
hold at some moment during the read (the one before, one being written, one
written meanwhile), byte for byte, with its ETag. The server meanwhile sees
up to 32 concurrent requests over many keys, processes and directories.

At the end: no 5xx, no connection error, no answer the model cannot
explain; a final sweep (GET of every key, listings) agrees with the model;
no temporary file is left under ``ROOT/.blobsvc/tmp`` (filesystem) and no
segment under ``.blobsvc/segments/`` is orphaned (Swift). Throughput and
latency per operation are printed (``pytest -s``) and written as JSON to
the test's temporary directory (the path is printed too). Client randomness
comes from one seed, printed with the figures and in every failure;
``BLOBSVC_LOAD_SEED`` replays it (the server's timing still varies).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import re
import threading
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from live_server import GroupServer, MiB, filesystem_config, swift_config, swift_leftovers
from reports import REPORTS

THREADS = int(os.environ.get("BLOBSVC_LOAD_THREADS", "32"))
SECONDS = float(os.environ.get("BLOBSVC_LOAD_SECONDS", "60" if os.environ.get("CI") else "15"))
KEY_COUNT = 64
DIRECTORIES = 4
MAX_SIZE = 8 * MiB
#: cat is skipped when the result would be larger than this (results get cat'ed again).
MAX_CAT_SIZE = 16 * MiB
REQUEST_TIMEOUT = 120.0

#: All object contents are slices of this pool: random access for ranged reads.
POOL = random.Random(20261124).randbytes(MAX_SIZE + MiB)

OP_WEIGHTS = {
    "put": 24, "get": 20, "get_range": 14, "head": 10, "list": 8,
    "move": 7, "cat": 5, "delete": 12,
}


# -- versions ------------------------------------------------------------------


class Version:
    """One content a key can hold: pieces of POOL, concatenated."""

    __slots__ = ("pieces", "size", "md5", "etag", "label")
    _labels = itertools.count()

    def __init__(self, pieces: tuple[tuple[int, int], ...], etag: str | None = None) -> None:
        self.pieces = pieces
        self.size = sum(size for _, size in pieces)
        digest = hashlib.md5()
        for chunk in self.chunks():
            digest.update(chunk)
        self.md5 = digest.hexdigest()
        #: The ETag the server gives this version; None until an answer told it
        #: (on Swift a large cat result's ETag is not the MD5 of its bytes).
        self.etag = etag
        self.label = f"v{next(self._labels)}"

    def chunks(self, piece_size: int = MiB):
        view = memoryview(POOL)
        for offset, size in self.pieces:
            for start in range(offset, offset + size, piece_size):
                yield view[start:min(start + piece_size, offset + size)]

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the content."""
        out, position = [], 0
        for offset, size in self.pieces:
            lo, hi = max(start, position), min(end, position + size)
            if lo < hi:
                out.append(POOL[offset + lo - position:offset + hi - position])
            position += size
        return b"".join(out)

    def __repr__(self) -> str:
        return f"<{self.label} {self.size}B md5={self.md5[:8]} etag={(self.etag or '?')[:8]}>"


class _Absent:
    label = "absent"
    size = None
    etag = None

    def __repr__(self) -> str:
        return "<absent>"


ABSENT = _Absent()


# -- per-key model -------------------------------------------------------------


class SharedLock:
    """Shared for PUTs, exclusive for DELETE/move/cat; waiting exclusives go first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    def acquire_shared(self) -> None:
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._shared += 1

    def release_shared(self, on_last) -> None:
        """Release; ``on_last()`` runs (still under the lock) if this was the last sharer."""
        with self._cond:
            self._shared -= 1
            if self._shared == 0:
                on_last()
                self._cond.notify_all()

    def acquire_exclusive(self) -> None:
        with self._cond:
            self._waiting += 1
            while self._exclusive or self._shared:
                self._cond.wait()
            self._waiting -= 1
            self._exclusive = True

    def release_exclusive(self) -> None:
        with self._cond:
            self._exclusive = False
            self._cond.notify_all()


_SEQ = itertools.count(1)


@dataclass
class Snapshot:
    seq: int
    versions: list


class KeyState:
    def __init__(self, path: str) -> None:
        self.path = path
        self.url_path = quote(path)
        self.mutex = threading.Lock()  # guards the fields below; never held during I/O
        self.access = SharedLock()
        #: Versions the key may hold now, given the writes that completed.
        self.current: list = [ABSENT]
        #: Versions writes in flight may leave, by operation id.
        self.pending: dict[int, list] = {}
        #: Every version ever made possible, with the sequence number it got.
        self.history: list[tuple[int, object]] = []
        #: Versions of the PUTs of the running group of overlapping PUTs that succeeded.
        self.group_done: list = []

    def snapshot(self) -> Snapshot:
        with self.mutex:
            versions = list(self.current)
            for candidates in self.pending.values():
                versions += candidates
            return Snapshot(next(_SEQ), versions)

    def allowed(self, snap: Snapshot) -> list:
        """Every version the key could hold at some moment since ``snap``."""
        with self.mutex:
            later = [version for seq, version in self.history if seq > snap.seq]
        return snap.versions + later

    def begin(self, op_id: int, candidates: list) -> None:
        with self.mutex:
            self.pending[op_id] = list(candidates)
            for version in candidates:
                self.history.append((next(_SEQ), version))

    def end(self, op_id: int, current: list | None) -> None:
        """The write ``op_id`` is over; ``current`` is what the key holds now (None: unchanged)."""
        with self.mutex:
            self.pending.pop(op_id, None)
            if current is not None:
                self.current = list(current)  # always among the candidates given to begin()

    def put_done(self, op_id: int, version: Version | None) -> None:
        """A PUT of the running group ended (``version`` None: it stored nothing)."""
        with self.mutex:
            self.pending.pop(op_id, None)
            if version is not None:
                # The version before the group is gone for good; which of the
                # group's PUTs wins is only known when they are all over.
                self.group_done.append(version)
                self.current = list(self.group_done)

    def group_over(self) -> None:
        with self.mutex:
            self.group_done = []

    def settled(self) -> list:
        with self.mutex:
            assert not self.pending, (self.path, self.pending)
            return list(self.current)


def matching(candidates: list, size: int | None, etag: str | None, md5: str | None = None,
             start: int | None = None, data: bytes | None = None) -> Version | None:
    """The first candidate version consistent with what an answer showed."""
    for version in candidates:
        if version is ABSENT or version is None or version.size != size:
            continue
        if etag is not None and version.etag is not None and version.etag != etag:
            continue
        if md5 is not None and version.md5 != md5:
            continue
        if data is not None and version.read(start, start + len(data)) != data:
            continue
        return version
    return None


# -- the run -------------------------------------------------------------------


@dataclass
class Tally:
    latencies: dict = field(default_factory=lambda: defaultdict(list))
    server_errors: list = field(default_factory=list)
    connection_errors: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, seconds: float) -> None:
        with self.lock:
            self.latencies[op].append(seconds)

    def violation(self, message: str) -> None:
        with self.lock:
            self.violations.append(message)


class Violation(Exception):
    """An answer the model cannot explain."""


def unquote_etag(value: str | None) -> str | None:
    if value is None:
        return None
    if not (len(value) >= 2 and value[0] == value[-1] == '"'):
        raise Violation(f"ETag {value!r} is not a quoted string")
    return value[1:-1]


def expect_json_error(res: requests.Response, status: int, code: str | None = None) -> dict:
    try:
        error = res.json()["error"]
    except (ValueError, KeyError, TypeError):
        raise Violation(f"{res.request.method} {res.url}: {res.status_code} without a JSON "
                        f"error body: {res.content[:200]!r}") from None
    if error.get("status") != status or (code is not None and error.get("code") != code):
        raise Violation(f"{res.request.method} {res.url}: error body {error} for {status}/{code}")
    return error


#: Seconds a lagging listing may take to agree with the model once the load
#: is over (Swift's updaters pass every second in the test cluster).
LISTING_CATCH_UP = 60.0


class LoadRun:
    def __init__(self, server: GroupServer, driver: str, seed: int) -> None:
        self.server = server
        self.driver = driver
        self.base = server.url + "/v1/objects/"
        self.keys = [KeyState(f"d{i % DIRECTORIES}/k{i:02d}") for i in range(KEY_COUNT)]
        self.by_dir = defaultdict(list)
        for key in self.keys:
            self.by_dir[key.path.split("/")[0]].append(key)
        self.tally = Tally()
        self.op_ids = itertools.count(1)
        self.seed = seed
        self.deadline = 0.0
        #: On a replicated Swift with a node down, a container listing may
        #: lag behind writes (README, "On an eventually consistent listing"):
        #: it may show any version a key held, or lack a key, until Swift's
        #: updaters catch up. Reads by name are held to the model exactly.
        self.listings_lag = False

    # -- driving ---------------------------------------------------------------

    def run(self, threads: int, seconds: float) -> float:
        self.deadline = time.monotonic() + seconds
        workers = [threading.Thread(target=self._client, args=(index,), name=f"load-{index}")
                   for index in range(threads)]
        started = time.monotonic()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(seconds + 4 * REQUEST_TIMEOUT)
        assert not any(worker.is_alive() for worker in workers), "client threads hung"
        return time.monotonic() - started

    def _client(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        session = requests.Session()
        ops, weights = zip(*OP_WEIGHTS.items(), strict=True)
        try:
            while time.monotonic() < self.deadline:
                op = rng.choices(ops, weights)[0]
                began = time.monotonic()
                try:
                    done = getattr(self, f"op_{op}")(session, rng)
                except _Counted:
                    continue
                except Violation as exc:
                    self.tally.violation(f"{op}: {exc}")
                    continue
                except requests.RequestException as exc:
                    with self.tally.lock:
                        self.tally.connection_errors.append(f"{op}: {exc!r}")
                    session.close()
                    session = requests.Session()
                    continue
                except Exception:
                    self.tally.violation(f"{op}: client crashed:\n{traceback.format_exc()}")
                    continue
                if done:
                    self.tally.record(done, time.monotonic() - began)
        finally:
            session.close()

    def _check_status(self, res: requests.Response, *expected: int) -> None:
        if res.status_code >= 500:
            with self.tally.lock:
                self.tally.server_errors.append(
                    f"{res.request.method} {res.url} -> {res.status_code} {res.content[:300]!r}")
            raise _Counted()
        if res.status_code not in expected:
            raise Violation(f"{res.request.method} {res.url} answered {res.status_code} "
                            f"(expected {expected}): {res.content[:300]!r}")

    # -- writes ----------------------------------------------------------------

    def _new_version(self, rng: random.Random) -> Version:
        bucket = rng.random()
        if bucket < 0.05:
            size = 0
        elif bucket < 0.35:
            size = rng.randint(1, 4096)
        elif bucket < 0.65:
            size = rng.randint(4097, 256 * 1024)
        elif bucket < 0.88:
            size = rng.randint(256 * 1024 + 1, 2 * MiB)
        elif bucket < 0.97:
            size = rng.randint(2 * MiB + 1, MAX_SIZE - 1)
        else:
            size = MAX_SIZE
        return Version(((rng.randrange(MiB), size),))

    def _expected_put_etags(self, version: Version) -> set[str]:
        # Every driver's upload, an SLO on Swift included, has the MD5 of its bytes.
        return {version.md5}

    def op_put(self, session, rng):
        key = rng.choice(self.keys)
        version = self._new_version(rng)
        headers = {"Content-Type": "application/octet-stream"}
        if rng.random() < 0.1:
            headers["X-Checksum-Sha256"] = hashlib.sha256(version.read(0, version.size)).hexdigest()
        chunked = rng.random() < 0.33
        if chunked:
            def body():
                position = 0
                while position < version.size:
                    step = rng.randint(1, 512 * 1024)
                    yield version.read(position, min(position + step, version.size))
                    position += step
            data = body()
        else:
            data = version.read(0, version.size)
        op_id = next(self.op_ids)
        key.access.acquire_shared()
        stored = None
        try:
            with key.mutex:
                finished = list(key.current)  # written before ours began: older
            key.begin(op_id, [version])
            snap = key.snapshot()
            try:
                res = session.put(self.base + key.url_path, data=data, headers=headers,
                                  timeout=REQUEST_TIMEOUT)
                self._check_status(res, 201)
                info = res.json()
                if self.driver == "swift" and info.get("md5") is None:
                    # Swift already held a newer version (its 202), as documented:
                    # the answer describes that one, and ours never became current.
                    newer = [v for v in key.allowed(snap)
                             if v is not version and all(v is not old for old in finished)]
                    if matching(newer, info.get("size"), info.get("etag")) is None:
                        raise Violation(f"PUT {key.path} {version}: lost to a version "
                                        f"that was never written: {info}")
                    return "put_chunked" if chunked else "put"
                etag = unquote_etag(res.headers.get("ETag"))
                if info.get("md5") != version.md5 or info.get("size") != version.size:
                    raise Violation(f"PUT {key.path} {version}: answer {info}")
                if etag != info.get("etag") or etag not in self._expected_put_etags(version):
                    raise Violation(f"PUT {key.path} {version}: ETag {etag!r}, info {info}")
                version.etag = etag
                stored = version
            finally:
                key.put_done(op_id, stored)
        finally:
            key.access.release_shared(key.group_over)
        return "put_chunked" if chunked else "put"

    def _lock_exclusive(self, keys: list[KeyState]) -> list[KeyState]:
        ordered = sorted(set(keys), key=lambda k: k.path)
        for key in ordered:
            key.access.acquire_exclusive()
        return ordered

    @staticmethod
    def _unlock(keys: list[KeyState]) -> None:
        for key in reversed(keys):
            key.access.release_exclusive()

    def op_delete(self, session, rng):
        key = rng.choice(self.keys)
        locked = self._lock_exclusive([key])
        try:
            present = key.settled() != [ABSENT]
            op_id = next(self.op_ids)
            key.begin(op_id, [ABSENT])
            outcome = None
            try:
                res = session.delete(self.base + key.url_path, timeout=REQUEST_TIMEOUT)
                if present:
                    self._check_status(res, 204)
                    outcome = [ABSENT]
                else:
                    self._check_status(res, 404)
                    expect_json_error(res, 404, "not_found")
            finally:
                key.end(op_id, outcome)
        finally:
            self._unlock(locked)
        return "delete"

    def _resolve(self, session, key: KeyState) -> Version | None:
        """Under the key's exclusive lock: which of its possible versions it holds."""
        versions = key.settled()
        if versions == [ABSENT]:
            return None
        if len(versions) == 1:
            return versions[0]
        res = session.head(self.base + key.url_path, timeout=REQUEST_TIMEOUT)
        self._check_status(res, 200)
        size = int(res.headers["Content-Length"])
        version = matching(versions, size, unquote_etag(res.headers.get("ETag")))
        if version is None:
            raise Violation(f"HEAD {key.path}: {size}B {res.headers.get('ETag')} is none of {versions}")
        with key.mutex:
            key.current = [version]
        return version

    def op_move(self, session, rng):
        source, target = rng.sample(self.keys, 2)
        locked = self._lock_exclusive([source, target])
        try:
            version = self._resolve(session, source)
            op_id = next(self.op_ids)
            if version is None:
                res = session.post(self.server.url + "/v1/move", timeout=REQUEST_TIMEOUT,
                                   json={"from": source.path, "to": target.path})
                self._check_status(res, 404)
                expect_json_error(res, 404, "not_found")
                return "move"
            source.begin(op_id, [ABSENT])
            target.begin(op_id, [version])
            outcome = None
            try:
                res = session.post(self.server.url + "/v1/move", timeout=REQUEST_TIMEOUT,
                                   json={"from": source.path, "to": target.path})
                self._check_status(res, 201)
                info = res.json()
                if (info.get("path"), info.get("size"), info.get("etag")) != \
                        (target.path, version.size, version.etag):
                    raise Violation(f"move {source.path} -> {target.path} of {version}: answer {info}")
                outcome = True
            finally:
                source.end(op_id, [ABSENT] if outcome else None)
                target.end(op_id, [version] if outcome else None)
        finally:
            self._unlock(locked)
        return "move"

    def op_cat(self, session, rng):
        target, *chunks = rng.sample(self.keys, rng.randint(3, 4))
        locked = self._lock_exclusive([target, *chunks])
        try:
            versions = [self._resolve(session, chunk) for chunk in chunks]
            body = {"path": target.path, "chunks": [chunk.path for chunk in chunks]}
            missing = [chunk.path for chunk, version in zip(chunks, versions, strict=True) if version is None]
            if missing:
                res = session.post(self.server.url + "/v1/cat", json=body, timeout=REQUEST_TIMEOUT)
                self._check_status(res, 404)
                error = expect_json_error(res, 404, "not_found")
                if sorted(error.get("missing", [])) != sorted(missing):
                    raise Violation(f"cat {body}: missing {error.get('missing')}, expected {missing}")
                return "cat"
            if sum(version.size for version in versions) > MAX_CAT_SIZE:
                return None
            result = Version(tuple(piece for version in versions for piece in version.pieces))
            op_id = next(self.op_ids)
            target.begin(op_id, [result])
            for chunk in chunks:
                chunk.begin(op_id, [ABSENT])
            ok = False
            try:
                res = session.post(self.server.url + "/v1/cat", json=body, timeout=REQUEST_TIMEOUT)
                self._check_status(res, 201)
                info = res.json()
                etag = info.get("etag")
                if info.get("size") != result.size or info.get("path") != target.path or \
                        (self.driver != "swift" and etag != result.md5) or not etag:
                    raise Violation(f"cat {body} -> {result}: answer {info}")
                result.etag = etag
                ok = True
            finally:
                target.end(op_id, [result] if ok else None)
                for chunk in chunks:
                    chunk.end(op_id, [ABSENT] if ok else None)
        finally:
            self._unlock(locked)
        return "cat"

    # -- reads -----------------------------------------------------------------

    def op_get(self, session, rng):
        key = rng.choice(self.keys)
        snap = key.snapshot()
        with session.get(self.base + key.url_path, stream=True, timeout=REQUEST_TIMEOUT) as res:
            self._check_status(res, 200, 404)
            digest, size = hashlib.md5(), 0
            if res.status_code == 200:
                for piece in res.iter_content(256 * 1024):
                    digest.update(piece)
                    size += len(piece)
            else:
                res.content  # noqa: B018  (read the error body while the stream is open)
        allowed = key.allowed(snap)
        if res.status_code == 404:
            expect_json_error(res, 404, "not_found")
            if ABSENT not in allowed:
                raise Violation(f"GET {key.path}: 404, but it holds one of {allowed}")
            return "get"
        etag = unquote_etag(res.headers.get("ETag"))
        if etag is None:
            raise Violation(f"GET {key.path}: 200 without an ETag")
        if int(res.headers["Content-Length"]) != size:
            raise Violation(f"GET {key.path}: Content-Length {res.headers['Content-Length']}, got {size}B")
        version = matching(allowed, size, etag, md5=digest.hexdigest())
        if version is None:
            raise Violation(f"GET {key.path}: {size}B md5 {digest.hexdigest()} ETag {etag} "
                            f"is none of {allowed}")
        if self.driver != "swift" and etag != version.md5:
            raise Violation(f"GET {key.path}: ETag {etag} is not the MD5 {version.md5}")
        return "get"

    def op_get_range(self, session, rng):
        key = rng.choice(self.keys)
        snap = key.snapshot()
        sizes = [version.size for version in snap.versions if version is not ABSENT] or [16]
        size = rng.choice(sizes)
        if size == 0 or rng.random() < 0.03:
            start = size + rng.randint(0, 10)  # past the end: 416
        else:
            start = rng.randrange(size)
        end = start + rng.randint(0, MiB)  # inclusive; may run past the end
        with session.get(self.base + key.url_path, headers={"Range": f"bytes={start}-{end}"},
                         stream=True, timeout=REQUEST_TIMEOUT) as res:
            self._check_status(res, 206, 404, 416)
            data = res.content
        allowed = key.allowed(snap)
        what = f"GET {key.path} bytes={start}-{end}"
        if res.status_code == 404:
            expect_json_error(res, 404, "not_found")
            if ABSENT not in allowed:
                raise Violation(f"{what}: 404, but it holds one of {allowed}")
            return "get_range"
        if res.status_code == 416:
            expect_json_error(res, 416, "range_not_satisfiable")
            match = re.fullmatch(r"bytes \*/(\d+)", res.headers.get("Content-Range", ""))
            total = int(match.group(1)) if match else -1
            if not match or total > start or not any(v.size == total for v in allowed if v is not ABSENT):
                raise Violation(f"{what}: 416 with Content-Range {res.headers.get('Content-Range')}, "
                                f"versions {allowed}")
            return "get_range"
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", res.headers.get("Content-Range", ""))
        if not match:
            raise Violation(f"{what}: 206 with Content-Range {res.headers.get('Content-Range')!r}")
        first, last, total = map(int, match.groups())
        if first != start or last != min(end, total - 1) or len(data) != last - first + 1:
            raise Violation(f"{what}: Content-Range {first}-{last}/{total} with {len(data)}B")
        etag = unquote_etag(res.headers.get("ETag"))
        if matching(allowed, total, etag, start=start, data=data) is None:
            raise Violation(f"{what}: {len(data)}B of a {total}B object, ETag {etag}, "
                            f"match none of {allowed}")
        return "get_range"

    def op_head(self, session, rng):
        key = rng.choice(self.keys)
        snap = key.snapshot()
        res = session.head(self.base + key.url_path, timeout=REQUEST_TIMEOUT)
        self._check_status(res, 200, 404)
        allowed = key.allowed(snap)
        if res.status_code == 404:
            if ABSENT not in allowed:
                raise Violation(f"HEAD {key.path}: 404, but it holds one of {allowed}")
            return "head"
        size = int(res.headers["Content-Length"])
        etag = unquote_etag(res.headers.get("ETag"))
        if matching(allowed, size, etag) is None:
            raise Violation(f"HEAD {key.path}: {size}B ETag {etag} is none of {allowed}")
        return "head"

    def list_pages(self, session, directory: str, limit: int) -> list[dict] | None:
        """Every entry of ``directory`` (page by page); None if it does not exist."""
        entries, marker = [], None
        for _ in range(10 * KEY_COUNT):
            params = {"limit": str(limit)}
            if marker is not None:
                params["marker"] = marker
            res = session.get(self.base + directory, params=params, timeout=REQUEST_TIMEOUT)
            self._check_status(res, 200, 404)
            if res.status_code == 404:
                expect_json_error(res, 404, "not_found")
                if entries:
                    return entries  # emptied between two pages
                return None
            page = res.json()
            entries += page["entries"]
            if len(page["entries"]) > limit:
                raise Violation(f"list {directory}: {len(page['entries'])} entries for limit {limit}")
            if not page["truncated"]:
                return entries
            marker = page["next_marker"]
        raise Violation(f"list {directory}: pagination did not end")

    def op_list(self, session, rng):
        if rng.random() < 0.2:
            return self._list_root(session, rng)
        directory = f"d{rng.randrange(DIRECTORIES)}"
        keys = {key.path: key for key in self.by_dir[directory]}
        snaps = {path: key.snapshot() for path, key in keys.items()}
        entries = self.list_pages(session, directory + "/", rng.randint(3, 20))
        allowed = {path: keys[path].allowed(snap) for path, snap in snaps.items()}
        if self.listings_lag:  # any version it ever held, or none
            allowed = {path: [ABSENT] + [v for _, v in keys[path].history]
                       for path in allowed}
        seen = set()
        for entry in entries or []:
            path = entry.get("path")
            if path not in keys or entry.get("isdir") or path in seen:
                raise Violation(f"list {directory}/: unexpected entry {entry}")
            seen.add(path)
            if matching(allowed[path], entry.get("size"), entry.get("etag")) is None \
                    or not entry.get("etag"):
                raise Violation(f"list {directory}/: {entry} is none of {allowed[path]}")
        for path in set(keys) - seen:
            if ABSENT not in allowed[path] and not self.listings_lag:
                raise Violation(f"list {directory}/: {path} missing, but it holds one of {allowed[path]}")
        return "list"

    def _list_root(self, session, rng):
        snaps = {key.path: key.snapshot() for key in self.keys}
        entries = self.list_pages(session, "", rng.randint(1, 5))
        if entries is None:
            raise Violation("list of the root answered 404")
        allowed = {key.path: key.allowed(snaps[key.path]) for key in self.keys}
        names = set()
        for entry in entries:
            name = entry.get("name")
            if name not in self.by_dir or not entry.get("isdir") or name in names:
                raise Violation(f"list /: unexpected entry {entry}")
            names.add(name)
        for directory, keys in self.by_dir.items():
            if self.listings_lag:
                break  # a lagging listing may name a directory, or not, whatever it holds
            could_be_empty = all(ABSENT in allowed[key.path] for key in keys)
            could_be_full = any(v is not ABSENT for key in keys for v in allowed[key.path])
            if directory in names and not could_be_full:
                raise Violation(f"list /: {directory} listed, but every key in it is absent")
            if directory not in names and not could_be_empty:
                raise Violation(f"list /: {directory} missing, but some key in it holds an object")
        return "list"

    # -- the end -----------------------------------------------------------------

    def final_sweep(self) -> list[str]:
        """Problems found when nothing runs any more: every key, every listing."""
        problems = []
        session = requests.Session()
        for key in self.keys:
            versions = key.settled()
            res = session.get(self.base + key.url_path, timeout=REQUEST_TIMEOUT)
            if versions == [ABSENT]:
                if res.status_code != 404:
                    problems.append(f"{key.path}: {res.status_code}, expected 404")
                continue
            if res.status_code != 200:
                problems.append(f"{key.path}: {res.status_code}, expected one of {versions}")
                continue
            etag = unquote_etag(res.headers.get("ETag"))
            version = matching(versions, len(res.content), etag, md5=hashlib.md5(res.content).hexdigest())
            if version is None:
                problems.append(f"{key.path}: {len(res.content)}B ETag {etag} is none of {versions}")
        # A lagging listing gets a bounded while to catch up once all is still.
        deadline = time.monotonic() + (LISTING_CATCH_UP if self.listings_lag else 0)
        listing_problems = self._listing_problems(session)
        while listing_problems and time.monotonic() < deadline:
            time.sleep(1)
            listing_problems = self._listing_problems(session)
        session.close()
        return problems + listing_problems

    def _listing_problems(self, session: requests.Session) -> list[str]:
        """Where the listings differ from the settled model."""
        problems: list[str] = []
        try:
            listed = {e["name"] for e in self.list_pages(session, "", 1000) or []}
        except Violation as exc:
            return [str(exc)]
        for directory, keys in self.by_dir.items():
            present = {k.path: k.settled() for k in keys if k.settled() != [ABSENT]}
            if bool(present) != (directory in listed):
                problems.append(f"root listing: {directory} listed={directory in listed}, "
                                f"keys present: {sorted(present)}")
            try:
                entries = self.list_pages(session, directory + "/", 1000) if present else None
            except Violation as exc:
                problems.append(str(exc))
                continue
            got = {e["path"]: e for e in entries or []}
            if set(got) != set(present):
                problems.append(f"{directory}/ lists {sorted(got)}, model has {sorted(present)}")
            for path, entry in got.items():
                if path in present and matching(present[path], entry["size"], entry["etag"]) is None:
                    problems.append(f"{directory}/ entry {entry} is none of {present[path]}")
        return problems

    def report(self, elapsed: float, out: Path) -> dict:
        summary = {"driver": self.driver, "threads": THREADS, "seconds": round(elapsed, 2),
                   "seed": self.seed,
                   "server_errors": len(self.tally.server_errors),
                   "connection_errors": len(self.tally.connection_errors),
                   "violations": len(self.tally.violations), "operations": {}}
        total = 0
        for op, samples in sorted(self.tally.latencies.items()):
            samples = sorted(samples)
            total += len(samples)
            summary["operations"][op] = {
                "count": len(samples), "ops_per_s": round(len(samples) / elapsed, 1),
                "p50_ms": round(1000 * samples[len(samples) // 2], 1),
                "p99_ms": round(1000 * samples[min(len(samples) - 1, int(len(samples) * 0.99))], 1),
            }
        summary["total_ops"] = total
        summary["total_ops_per_s"] = round(total / elapsed, 1)
        out.write_text(json.dumps(summary, indent=2) + "\n")
        lines = [f"\nload on {self.driver} (seed {self.seed}): {THREADS} threads, {elapsed:.1f}s, "
                 f"{total} ops, {total / elapsed:.1f} ops/s; 5xx {summary['server_errors']}, "
                 f"connection errors {summary['connection_errors']}, "
                 f"model violations {summary['violations']}",
                 f"  {'operation':12} {'count':>7} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8}"]
        for op, row in summary["operations"].items():
            lines.append(f"  {op:12} {row['count']:7} {row['ops_per_s']:8} {row['p50_ms']:8} "
                         f"{row['p99_ms']:8}")
        lines.append(f"  figures written to {out}")
        self.report_text = "\n".join(lines)
        print(self.report_text)
        return summary


class _Counted(Violation):
    """A 5xx, already recorded in the tally's server errors."""


# -- the tests -------------------------------------------------------------------


@dataclass
class LoadResult:
    driver: str
    run: LoadRun
    summary: dict
    sweep: list
    leftovers: list  # temp files (filesystem) or orphaned segments (Swift)
    tombstones: list = field(default_factory=list)  # Swift: tombstones and notes of writes


def _first(items: list, n: int = 15) -> str:
    return "\n  ".join(items[:n]) + (f"\n  ... and {len(items) - n} more" if len(items) > n else "")


@pytest.fixture(scope="module", params=["filesystem", "swift"])
def load(request, tmp_path_factory) -> LoadResult:
    """One load run per driver against a multi-process server, checked at the end."""
    base = tmp_path_factory.mktemp(f"load-{request.param}")
    workers = max(2, os.cpu_count() or 1)
    if request.param == "swift":
        stack = request.getfixturevalue("swift_stack")
        config = swift_config(stack, workers=workers, threads=16)
    else:
        config = filesystem_config(base / "data", fsync=True, workers=workers, threads=16)
    server = GroupServer(base / "server", config)
    server.start()
    try:
        seed = int(os.environ.get("BLOBSVC_LOAD_SEED", random.randrange(1 << 30)))
        run = LoadRun(server, request.param, seed)
        elapsed = run.run(THREADS, SECONDS)
        summary = run.report(elapsed, base / f"load-{request.param}.json")
        # Shown at the end of every run (not only with -s): CI's figures.
        request.config.stash.setdefault(REPORTS, []).append(run.report_text)
        sweep = run.final_sweep()
    finally:
        server.stop(timeout=60)  # workers finish their backend clean-up first
    live = [key.path for key in run.keys if key.settled() != [ABSENT]]
    if request.param == "swift":
        leftovers, tombstones = swift_leftovers(stack, config["storage"]["container"], live)
    else:
        root = base / "data"
        leftovers = sorted(os.listdir(root / ".blobsvc" / "tmp"))
        leftovers += sorted(str(p.relative_to(root)) for p in root.rglob("*.tmp")
                            if ".blobsvc" not in p.relative_to(root).parts)
    return LoadResult(request.param, run, summary, sweep, leftovers,
                      tombstones if request.param == "swift" else [])


def test_load_gets_no_5xx(load):
    errors = load.run.tally.server_errors
    assert not errors, f"{len(errors)} 5xx answers (seed {load.run.seed}):\n  {_first(errors)}"


def test_load_drops_no_connection(load):
    errors = load.run.tally.connection_errors
    assert not errors, f"{len(errors)} connection errors (seed {load.run.seed}):\n  {_first(errors)}"


def test_load_answers_all_match_the_model(load):
    violations = load.run.tally.violations
    assert not violations, (f"{len(violations)} answers the model cannot explain "
                            f"(seed {load.run.seed}):\n  {_first(violations)}")


def test_load_final_sweep_matches_the_model(load):
    assert not load.sweep, f"final sweep (seed {load.run.seed}):\n  {_first(load.sweep)}"


def test_load_leaves_no_temp_files_or_orphaned_segments(load):
    what = "orphaned segments" if load.driver == "swift" else "temporary files"
    assert not load.leftovers, f"{len(load.leftovers)} {what} left:\n  {_first(load.leftovers)}"


def test_load_leaves_no_swift_tombstones_or_notes(load):
    # Racing overwrites once left a tombstone that copied a plain object
    # (tests/test_swift_retire.py shows how); nothing of a write may outlive
    # a clean shutdown.
    assert not load.tombstones, f"{len(load.tombstones)} left: {_first(load.tombstones)}"


def test_load_actually_ran(load):
    assert load.summary["total_ops"] > 10 * THREADS, load.summary

"""Objects in one OpenStack Swift container, spoken to with python-swiftclient.

Every blobsvc path is one Swift object of the same name in the configured
container (created at start-up when missing). What differs from the other
drivers, and why:

* **Uploads stream.** A PUT body goes to Swift with chunked transfer encoding,
  straight from the client: no temporary file, no whole object in memory.
  The last chunk is held back until the upload's length and checksum checks
  and the write precondition have passed, so Swift never receives the end
  of a wrong body and never commits it.
* **Large objects are Static Large Objects (SLO).** An upload whose size is
  known and at most ``segment_size``, or unknown but ending within the first
  MiB, is one plain object: its ETag is the plain MD5, as with the other
  drivers. Any other upload is stored as segments of at most
  ``segment_size`` bytes, then a manifest under the object's name, and its
  ETag is Swift's: the MD5 of the segments' hex MD5s, not the MD5 of the
  bytes. ``cat`` results are SLOs too, unless every chunk is under 1 MiB.
* **Segment layout.** Segments live in the same container under the
  reserved prefix: ``.blobsvc/segments/<object path>/<upload id>/<index>``
  (a digest replaces the path when the name would exceed Swift's 1024
  bytes). A manifest owns its segments: deleting or overwriting the object
  deletes them (an overwritten or deleted manifest is first copied to a
  tombstone under ``.blobsvc/replaced/...``, deleted with its segments
  ``segment_grace_seconds`` after the new version won, by a sweeper thread,
  or at ``close()`` whatever its age). ``move`` copies only the manifest, so
  segments are shared, never re-uploaded. Listings never show ``.blobsvc``.
  A reader still streaming the old version of a large object when it is
  overwritten or deleted reads it whole if it finishes within the grace
  period (plain objects stream on). Overlapping writes of one name can each
  tombstone the version before both, so the loser's segments would be
  tombstoned by nobody: each large version this process commits is checked
  after the grace period (or at ``close()``), and its segments go if no
  manifest or tombstone in the container lists them. A process killed
  before then leaves them behind, as it leaves its pending tombstones.
* **cat copies inside Swift where it pays.** Chunks of 1 MiB or more are
  copied by Swift into segments of the result (a large chunk lends its
  segments); runs of smaller ones are read through blobsvc and joined into
  one segment, because Swift
  throttles reading SLOs made of many segments under 1 MiB (its
  ``rate_limit_under_size``). A result made only of small chunks (at most
  ``segment_size`` in all) is a plain object, with a plain MD5 ETag.
* **Directory/object clashes are checked, best effort.** Swift has no
  directories, so the contract's rules (no object below an object, no object
  named like a directory, no delete of a non-empty directory) are enforced
  by a HEAD or a one-entry listing before the write, and writes in flight in
  this process claim their names. Two blobsvc instances writing clashing
  names at the same moment can still both succeed.
* **Concurrency is Swift's.** Swift orders the versions of an object by the
  time each PUT *started*, so a long upload can lose to a shorter one that
  started later. Write preconditions (of a PUT, and of a move's or cat's
  destination) are checked with a HEAD right before the commit
  (check-then-write: a write of the same name, from this process or
  another, can come in between). ``move`` is
  copy-then-delete: for a moment both names exist.
* **ctime** is Swift's Last-Modified: whole seconds.
* **Failures.** A Swift that does not answer (refused, timed out, 5xx after
  the configured retries, credentials refused) raises
  ``BackendUnavailable``; the longest wait is about ``(retries + 1) *
  timeout`` plus the backoffs. Swift's 507 raises ``InsufficientStorage``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import itertools
import json
import logging
import math
import threading
import time
import uuid
import weakref
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Iterable, Iterator
from urllib.parse import quote

import urllib3.exceptions
from requests.exceptions import RequestException, Timeout
from swiftclient.client import ClientException, Connection

from blobsvc.storage import paths
from blobsvc.storage.base import (
    DEFAULT_CONTENT_TYPE,
    REQUIRED,
    ObjectInfo,
    ObjectStream,
    Precondition,
    StorageDriver,
    Upload,
    check_total_size,
    too_large,
)
from blobsvc.storage.errors import (
    BackendUnavailable,
    Conflict,
    InsufficientStorage,
    MissingChunks,
    NotFound,
    PreconditionFailed,
    StorageError,
    TooLarge,
)

log = logging.getLogger(__name__)

# swiftclient logs every answer of 300 or more at INFO as a curl command line
# with its headers (a token prefix included) and the response: on each start
# and each write, for the HEADs that expectedly find nothing. Its per-request
# log runs only at INFO and below, so WARNING turns it off; the driver logs the
# failures that matter itself, one line each.
logging.getLogger("swiftclient").setLevel(logging.WARNING)

MIB = 1024 * 1024
GIB = 1024 * MIB

#: Bytes per read of an object body from Swift.
CHUNK_SIZE = MIB

#: Just under Swift's default 5 GiB object limit, leaving room for a
#: cluster whose ``max_file_size`` is set a little lower.
DEFAULT_SEGMENT_SIZE = 5 * GIB - 64 * MIB

#: Seconds the segments of a replaced or deleted large object outlive it,
#: so that readers still streaming it finish.
DEFAULT_SEGMENT_GRACE = 60.0

#: Threads that delete and look up in parallel when sweeping.
SWEEP_THREADS = 8

#: Connections kept for the next object streams once theirs are closed.
MAX_IDLE_READERS = 16

#: Swift's default ``max_object_name_length``.
MAX_OBJECT_NAME_BYTES = 1024

SEGMENTS_DIR = f"{paths.RESERVED_PREFIX}/segments"
REPLACED_DIR = f"{paths.RESERVED_PREFIX}/replaced"

#: Bytes a private name adds after its prefix: "<upload id>/<index>".
_UNIQUE_SUFFIX_BYTES = 32 + 1 + 8

_SLO_PUT = "multipart-manifest=put"
_SLO_GET = "multipart-manifest=get"
_SLO_DELETE = "multipart-manifest=delete"

_OPTIONAL_STR = (str, type(None))

#: Errors of the HTTP stack below swiftclient that mean "Swift did not answer".
_TRANSPORT_ERRORS = (RequestException, OSError, urllib3.exceptions.HTTPError,
                     http.client.HTTPException)


class SwiftDriver(StorageDriver):
    name = "swift"
    SETTINGS = {
        "auth_url": (str, REQUIRED),
        "user": (str, REQUIRED),
        "key": (str, REQUIRED),
        "auth_version": ((str, int), "1"),
        "project_name": (_OPTIONAL_STR, None),
        "project_domain_name": (_OPTIONAL_STR, None),
        "user_domain_name": (_OPTIONAL_STR, None),
        "region_name": (_OPTIONAL_STR, None),
        "container": (str, "blobsvc"),
        "timeout": ((float, int), 10.0),
        "retries": (int, 2),
        "starting_backoff": ((float, int), 0.25),
        "max_backoff": ((float, int), 1.0),
        "segment_size": (int, DEFAULT_SEGMENT_SIZE),
        "segment_grace_seconds": ((float, int), DEFAULT_SEGMENT_GRACE),
    }

    #: Entries asked of Swift per listing request (Swift's maximum).
    LISTING_PAGE_SIZE = 10000
    #: An upload of unknown size that ends within this many bytes (read
    #: ahead in memory) is stored as a plain object, with a plain MD5 ETag.
    PLAIN_LOOKAHEAD = MIB
    #: cat chunks smaller than this are joined through blobsvc rather than
    #: kept as segments of their own (Swift's ``rate_limit_under_size``).
    SMALL_CHUNK = MIB
    #: Entries per manifest (Swift's default ``max_manifest_segments``);
    #: longer lists are split into nested manifests.
    MAX_MANIFEST_SEGMENTS = 1000

    @classmethod
    def check_settings(cls, params: dict) -> None:
        _check_settings(params.get("container", "blobsvc"), params.get("timeout", 10.0),
                        params.get("retries", 2), params.get("segment_size", DEFAULT_SEGMENT_SIZE),
                        params.get("segment_grace_seconds", DEFAULT_SEGMENT_GRACE))
        for name in ("starting_backoff", "max_backoff"):
            if params.get(name, 0) < 0:
                raise ValueError(f"storage.{name} must not be negative")

    def __init__(
        self,
        auth_url: str,
        user: str,
        key: str,
        auth_version: str | int = "1",
        project_name: str | None = None,
        project_domain_name: str | None = None,
        user_domain_name: str | None = None,
        region_name: str | None = None,
        container: str = "blobsvc",
        timeout: float = 10.0,
        retries: int = 2,
        starting_backoff: float = 0.25,
        max_backoff: float = 1.0,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        segment_grace_seconds: float = DEFAULT_SEGMENT_GRACE,
    ) -> None:
        _check_settings(container, timeout, retries, segment_size, segment_grace_seconds)
        self.container = container
        self.segment_size = segment_size
        self.segment_grace = float(segment_grace_seconds)
        self._connection_args = {
            "authurl": auth_url, "user": user, "key": key,
            "auth_version": str(auth_version),
            "os_options": _keystone_options(project_name, project_domain_name,
                                            user_domain_name, region_name),
            "timeout": float(timeout), "retries": retries,
            "starting_backoff": float(starting_backoff),
            "max_backoff": float(max_backoff),
        }
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._idle_readers: list[Connection] = []
        self._claims = _Claims()
        #: (due, tombstone): replaced versions whose segments go once due.
        self._retiring: list[tuple[float, str]] = []
        #: (due, path, upload prefix): large versions this process committed,
        #: checked once due for having been overwritten unseen (orphaned).
        self._committed: list[tuple[float, str, str]] = []
        self._sweeper: threading.Thread | None = None
        self._closing = threading.Event()
        self._container_ok = False
        try:
            self._ensure_container()
            _unreachable_at_start.discard((auth_url, container))
        except BackendUnavailable as exc:
            _report_unreachable_at_start(exc, auth_url, container)

    # -- lifecycle -----------------------------------------------------------

    def check_ready(self) -> None:
        if not self._container_ok:
            self._ensure_container()
            return
        with _swift_errors("check the container", None):
            try:
                self._conn().head_container(self.container)
            except ClientException as exc:
                if exc.http_status == 404:
                    raise BackendUnavailable(f"Swift container {self.container} is gone") from None
                raise

    def close(self) -> None:
        """Stop the sweeper and do its pending work now, grace or not."""
        self._closing.set()
        if self._sweeper is not None:
            self._sweeper.join(self._connection_args["timeout"] * 3)
        try:
            self._sweep(everything=True)
        except StorageError as exc:  # Swift down at stop: one line, no traceback chain
            log.warning("could not collect the segments of replaced versions on close (%s): "
                        "left under %s/", exc.message, paths.RESERVED_PREFIX)
        except Exception:  # noqa: BLE001 - closing must not fail on garbage
            log.exception("could not collect the segments of replaced versions on close")
        with self._lock:
            connections = list(self._connections)
            self._idle_readers.clear()
        for conn in connections:
            conn.close()

    def _ensure_container(self) -> None:
        """Create the container when missing: a fresh deployment just works."""
        with _swift_errors("create the container", None):
            try:
                self._conn().head_container(self.container)
            except ClientException as exc:
                if exc.http_status != 404:
                    raise
                self._conn().put_container(self.container)
                log.info("created Swift container %s", self.container)
        self._container_ok = True

    def _conn(self, role: str = "main") -> Connection:
        """This thread's connection: swiftclient's are not thread-safe.

        ``side`` serves the requests made while ``main`` streams a PUT body.
        """
        conn = getattr(self._local, role, None)
        if conn is None:
            conn = self._new_connection()
            setattr(self._local, role, conn)
        return conn

    def _new_connection(self) -> Connection:
        conn = Connection(**self._connection_args, **self._known_auth())
        with self._lock:
            self._connections.add(conn)
        return conn

    def _take_reader(self) -> Connection:
        """A connection of its own for one object stream.

        swiftclient reads a body through its connection's latest response,
        so any other request on that connection would hijack the stream.
        """
        with self._lock:
            if self._idle_readers:
                return self._idle_readers.pop()
        return self._new_connection()

    def _give_back_reader(self, conn: Connection) -> None:
        with self._lock:
            if len(self._idle_readers) < MAX_IDLE_READERS:
                self._idle_readers.append(conn)
                return
        conn.close()

    def _known_auth(self) -> dict:
        """A token another connection already holds: one auth, not one per thread."""
        with self._lock:
            for other in self._connections:
                if other.url and other.token:
                    return {"preauthurl": other.url, "preauthtoken": other.token}
        return {}

    # -- reads ---------------------------------------------------------------

    def _list(self, path, marker, limit):
        prefix = f"{path}/" if path else ""
        entries = self._collect_listing(prefix, marker, limit)
        if not entries and path and not self._has_objects_below(prefix):
            raise NotFound(f"no directory at {path}/", path)
        return entries

    def _collect_listing(self, prefix: str, marker: str | None,
                         limit: int | None) -> list[ObjectInfo]:
        """One page in our order, from as few Swift pages as it takes.

        Swift sorts a directory ``d`` as ``d/``, after ``d.txt``; we sort it
        as ``d``, before. Entries are re-sorted, and a page is only cut where
        no later Swift page can still hold a directory sorting before the cut.
        """
        if limit == 0:
            return []
        found: dict[str, ObjectInfo] = {}
        swift_marker = prefix + marker if marker is not None else None
        while True:
            want = self.LISTING_PAGE_SIZE if limit is None else min(self.LISTING_PAGE_SIZE, limit + 1)
            page = self._listing_page(prefix, swift_marker, want)
            for raw in page:
                _add_listed(found, prefix, raw, marker)
            names = sorted(found)
            if len(page) < want:
                return [found[name] for name in names[:limit]]
            swift_marker = page[-1].get("subdir") or page[-1]["name"]
            if limit is not None and _settled_count(names, swift_marker[len(prefix):]) >= limit:
                return [found[name] for name in names[:limit]]

    def _listing_page(self, prefix: str, marker: str | None, limit: int,
                      action: str = "list") -> list[dict]:
        try:
            with _swift_errors(action, prefix or "/"):
                return self._conn().get_container(self.container, prefix=prefix or None,
                                                  delimiter="/", marker=marker, limit=limit)[1]
        except NotFound:
            raise BackendUnavailable(f"Swift container {self.container} is missing") from None

    def _stat(self, path):
        headers = self._head(path)
        if headers is None:
            raise NotFound(f"no object at {path}", path)
        return _info_from_headers(path, headers)

    def _open(self, path, offset, length):
        if length == 0:
            return self._stat(path), ObjectStream(iter(()))
        opened = self._get(path, _range_header(offset, length))
        if opened is None:  # offset at the end: nothing to read
            return self._stat(path), ObjectStream(iter(()))
        headers, body, close = opened
        return _info_from_headers(path, headers), ObjectStream(_guarded(body, path), close)

    def _get(self, path: str, headers: dict
             ) -> tuple[dict, Iterator[bytes], Callable[[], None]] | None:
        """One streamed GET on a connection of its own: headers, body, and its closer.

        None when Swift finds the range unsatisfiable.
        """
        conn = self._take_reader()
        try:
            with _swift_errors("read", path):
                for attempt in (1, 2):
                    try:
                        response_headers, body = conn.get_object(
                            self.container, path, headers=headers, resp_chunk_size=CHUNK_SIZE)
                        break
                    except ClientException as exc:
                        if exc.http_status == 416:
                            self._give_back_reader(conn)
                            return None
                        # 409: a segment of the large object is gone. Deleted or
                        # replaced meanwhile: the new version may be in place now.
                        if exc.http_status != 409:
                            raise
                        if attempt == 2:
                            if _head_or_none(conn, self.container, path) is None:
                                raise NotFound(f"no object at {path}", path) from None
                            raise BackendUnavailable(
                                f"Swift could not read {path}: a segment is missing",
                                path) from None
        except BaseException:
            self._give_back_reader(conn)
            raise

        def close() -> None:
            body.close()
            self._give_back_reader(conn)

        return response_headers, body, close

    # -- writes --------------------------------------------------------------

    def _put(self, path, upload: Upload):
        with self._claims.claim(path):
            self._check_no_clash(path)
            size = upload.expected_size
            if size is not None and size <= self.segment_size:
                return self._put_plain(path, upload, upload.content_type, upload.precondition,
                                       lambda: upload.md5_hex)
            chunks = iter(upload)
            if size is None:
                head, ended = _read_ahead(chunks, min(self.PLAIN_LOOKAHEAD, self.segment_size))
                if ended:  # small after all: a plain object, with a plain MD5 ETag
                    return self._put_plain(path, head, upload.content_type, upload.precondition,
                                           lambda: upload.md5_hex)
                chunks = itertools.chain(head, chunks)
            return self._put_large(path, chunks, upload)

    def _put_plain(self, path: str, chunks: Iterable[bytes], content_type: str,
                   precondition: Precondition | None,
                   md5_hex: Callable[[], str] | None = None) -> ObjectInfo:
        """One streamed PUT; its final chunk goes out only after every check.

        ``md5_hex`` gives the bytes' MD5 when the chunks are hashed already.
        """
        body = _Body(chunks, before_end=lambda: self._prepare_replace(
            path, precondition, self._conn("side")), hashed=md5_hex is None)
        try:
            stored = self._stream_put(path, body, content_type, path)
        except BaseException:
            self._drop_tombstone(body.end_result)
            raise
        etag = stored.etag or (md5_hex() if md5_hex is not None else body.md5_hex)
        written = _Written(etag, body.size, content_type, stored.last_modified)
        return self._after_commit(path, body.end_result, written)

    def _put_large(self, path: str, chunks: Iterator[bytes], upload: Upload) -> ObjectInfo:
        parts = _Parts(path)
        try:
            entries = self._write_segments(path, chunks, parts)
            if not entries:
                return self._put_plain(path, (), upload.content_type, upload.precondition,
                                       lambda: upload.md5_hex)
            info = self._commit_manifest(path, entries, parts, upload.content_type,
                                         upload.precondition)
        except BaseException as exc:
            self._remove_parts(parts, exc)
            raise
        self._settle_parts(path, parts)
        return info

    def _settle_parts(self, path: str, parts: _Parts) -> None:
        """After a commit: drop the segments of a version that already lost,
        or watch the winner's until they are safely referenced."""
        if parts.superseded:
            self._remove_parts(parts)
        else:
            self._watch_upload(path, parts)

    def _write_segments(self, path: str, chunks: Iterator[bytes], parts: _Parts) -> list[dict]:
        """Stream the upload into segments; an upload error aborts the one in flight."""
        splitter = _Splitter(chunks, self.segment_size)
        entries = []
        segment = splitter.next_segment()
        while segment is not None:
            entries.append(self._write_segment(path, segment, parts))
            segment = splitter.next_segment()
        return entries

    def _write_segment(self, path: str, chunks: Iterable[bytes], parts: _Parts) -> dict:
        name = parts.new_name()
        body = _Body(chunks)
        stored = self._stream_put(name, body, DEFAULT_CONTENT_TYPE, path)
        return self._entry(name, stored.etag, body.size)

    def _stream_put(self, name: str, body: _Body, content_type: str, path: str) -> _Stored:
        """PUT a streamed body. Errors of the body itself come back as they were."""
        response: dict = {}
        try:
            with _swift_errors("store", path):
                etag = self._conn().put_object(self.container, name, contents=body,
                                               content_type=content_type, response_dict=response)
        except BaseException:
            if body.error is not None:
                raise body.error from None
            raise
        return _Stored.of(etag, response)

    def _commit_manifest(self, path: str, entries: list[dict], parts: _Parts, content_type: str,
                         precondition: Precondition | None, keep_old: bool = False) -> ObjectInfo:
        """Write the manifest over ``path``, checking ``precondition`` right before."""
        size = sum(entry["size_bytes"] for entry in entries)
        entries = self._nest(entries, parts, path)
        if keep_old:  # the old version lends its segments to the new one
            if precondition is not None:
                self._check_current(path, precondition, self._conn())
            replaced = _Replaced(None, None, None)
        else:
            replaced = self._prepare_replace(path, precondition, self._conn())
        parts.committing = True
        try:
            stored = self._put_manifest(path, entries, content_type, path)
        except BaseException:
            self._drop_tombstone(replaced)
            raise
        parts.superseded = stored.superseded
        written = _Written(stored.etag or _slo_etag(entries), size, content_type, stored.last_modified)
        return self._after_commit(path, replaced, written)

    def _nest(self, entries: list[dict], parts: _Parts, path: str) -> list[dict]:
        """Group entries into sub-manifests until one manifest can hold them."""
        while len(entries) > self.MAX_MANIFEST_SEGMENTS:
            step = self.MAX_MANIFEST_SEGMENTS
            groups = [entries[i:i + step] for i in range(0, len(entries), step)]
            entries = []
            for group in groups:
                name = parts.new_name()
                stored = self._put_manifest(name, group, DEFAULT_CONTENT_TYPE, path)
                entries.append(self._entry(name, stored.etag, sum(e["size_bytes"] for e in group)))
        return entries

    def _put_manifest(self, name: str, entries: list[dict], content_type: str,
                      path: str) -> _Stored:
        response: dict = {}
        with _swift_errors("store", path):
            etag = self._conn().put_object(self.container, name, contents=json.dumps(entries),
                                           content_type=content_type, query_string=_SLO_PUT,
                                           response_dict=response)
        return _Stored.of(etag, response)

    def _delete(self, path, precondition: Precondition | None):
        headers = self._head(path)
        if headers is None:
            raise self._missing(path)
        if precondition is not None:
            precondition(_info_from_headers(path, headers))
        if _is_large(headers):
            self._delete_large(path, headers)
        else:
            with _swift_errors("delete", path):
                self._conn().delete_object(self.container, path)

    def _delete_large(self, path: str, headers: dict) -> None:
        """Delete a manifest with its segments, and make sure the manifest went.

        Swift answers 200 to ``multipart-manifest=delete`` whatever happened
        and swiftclient drops the report, so a HEAD tells whether it worked.
        With a grace period, the manifest goes now and its segments later,
        through a tombstone.
        """
        if self.segment_grace > 0:
            tombstone = self._tombstone(path, self._conn())
            try:
                with _swift_errors("delete", path):
                    self._conn().delete_object(self.container, path)
            except BaseException:
                self._delete_tombstone(tombstone, with_segments=False)
                raise
            self._defer_retirement(tombstone)
            return
        with _swift_errors("delete", path):
            self._conn().delete_object(self.container, path, query_string=_SLO_DELETE)
        after = self._head(path)
        if after is not None and after.get("x-timestamp") == headers.get("x-timestamp"):
            raise BackendUnavailable(f"Swift did not delete {path}", path)

    def _move(self, src, dst, precondition: Precondition | None):
        with self._claims.claim(dst):
            source = self._head(src)
            if source is None:
                raise self._missing(src)
            self._check_no_clash(dst)
            replaced = self._prepare_replace(dst, precondition, self._conn())
            try:
                stored = self._copy(src, dst, manifest_only=_is_large(source))
            except BaseException:
                self._drop_tombstone(replaced)
                raise
            old = _info_from_headers(src, source)
            written = _Written(stored.etag or old.etag or "", old.size or 0, old.content_type,
                               stored.last_modified)
            info = self._after_commit(dst, replaced, written)
            # A manifest's segments now belong to the copy: delete the name only,
            # unless the copy lost to a newer version and nothing else uses them.
            lost = stored.superseded and _is_large(source)
            self._remove_sources(dst, [src], with_segments=[src] if lost else [])
            return info

    def _copy(self, src: str, dst: str, manifest_only: bool, path: str | None = None) -> _Stored:
        """Server-side copy; ``manifest_only`` copies an SLO's manifest, not its bytes."""
        response: dict = {}
        headers = {"X-Copy-From": quote(self._swift_path(src))}
        with _swift_errors("copy", path or dst):
            etag = self._conn().put_object(self.container, dst, contents=None, headers=headers,
                                           query_string=_SLO_GET if manifest_only else None,
                                           response_dict=response)
        return _Stored.of(etag, response)

    def _cat(self, path, chunks, max_size, precondition: Precondition | None):
        found = self._head_chunks(chunks)
        check_total_size((_content_length(found[chunk]) for chunk in chunks), max_size, path)
        # Counted again as the result is built: a chunk may grow after its HEAD.
        budget = _SizeBudget(max_size, path)
        with self._claims.claim(path):
            self._check_no_clash(path)
            pieces = _plan_cat(chunks, found, self.SMALL_CHUNK, self.segment_size)
            parts = _Parts(path)
            if not pieces or (len(pieces) == 1 and isinstance(pieces[0], list)):
                small = pieces[0] if pieces else []
                info = self._put_plain(path, budget.counted(self._read_chunks(small, path)),
                                       DEFAULT_CONTENT_TYPE, precondition)
            else:
                info = self._cat_large(path, pieces, parts, keep_old=path in found,
                                       budget=budget, precondition=precondition)
        # Lent segments now belong to the result, unless it lost to a newer version.
        lent = [chunk for chunk in found if _is_large(found[chunk])] if parts.superseded else []
        self._remove_sources(path, [chunk for chunk in found if chunk != path], with_segments=lent)
        return info

    def _remove_sources(self, path: str, names: list[str], with_segments: list[str]) -> None:
        """Delete a move's source or cat's chunks by name (segments stay with ``path``).

        A source left behind would share segments with ``path``, so failing
        to remove it is an error, not a warning.
        """
        failed = []
        for name in names:
            query = _SLO_DELETE if name in with_segments else None
            try:
                with _swift_errors("delete", name):
                    self._conn().delete_object(self.container, name, query_string=query)
            except NotFound:
                pass  # removed concurrently: the outcome is the same
            except StorageError:
                failed.append(name)
        if failed:
            raise BackendUnavailable(f"{path} was written, but Swift did not delete "
                                     + ", ".join(failed), path)

    def _cat_large(self, path: str, pieces: list, parts: _Parts, keep_old: bool,
                   budget: _SizeBudget, precondition: Precondition | None) -> ObjectInfo:
        """The result as an SLO: copied, lent or joined segments, then the manifest."""
        try:
            entries: list[dict] = []
            copies: dict[str, dict] = {}
            for piece in pieces:
                entries.extend(self._cat_piece(path, piece, parts, copies, budget))
            info = self._commit_manifest(path, entries, parts, DEFAULT_CONTENT_TYPE, precondition,
                                         keep_old=keep_old)
        except BaseException as exc:
            self._remove_parts(parts, exc)
            raise
        self._settle_parts(path, parts)
        return info

    def _cat_piece(self, path: str, piece: list[str] | _Chunk, parts: _Parts,
                   copies: dict[str, dict], budget: _SizeBudget) -> list[dict]:
        """Manifest entries for one piece: a run of small chunks, or one big chunk.

        Every byte is counted against ``budget``: read-through bytes as they
        pass, lent segments by the sizes their current manifest lists, and
        copies by their HEAD size (the manifest PUT makes Swift check it).
        """
        if isinstance(piece, list):
            chunks = budget.counted(self._read_chunks(piece, path))
            return [self._write_segment(path, chunks, parts)]
        if piece.large:
            entries = self._manifest_entries(piece.name, path)
            budget.take(sum(entry["size_bytes"] for entry in entries))
            return entries
        budget.take(piece.size)
        if piece.name not in copies:  # a repeated chunk is copied once
            name = parts.new_name()
            stored = self._copy(piece.name, name, manifest_only=False, path=path)
            copies[piece.name] = self._entry(name, stored.etag, piece.size)
        return [copies[piece.name]]

    def _read_chunks(self, chunks: list[str], path: str) -> Iterator[bytes]:
        """The chunks' bytes one after the other (for the PUT that joins them)."""
        for chunk in chunks:
            opened = self._get(chunk, {})
            if opened is None:
                continue
            _, body, close = opened
            try:
                yield from _guarded(body, path)
            finally:
                close()

    def _head_chunks(self, chunks: list[str]) -> dict[str, dict]:
        """Every chunk's headers, or MissingChunks before anything changed."""
        found = {}
        for chunk in dict.fromkeys(chunks):
            headers = self._head(chunk)
            if headers is not None:
                found[chunk] = headers
        missing = [chunk for chunk in chunks if chunk not in found]
        if missing:
            raise MissingChunks(missing)
        return found

    def _manifest_entries(self, name: str, path: str) -> list[dict]:
        """A stored manifest, in the form a manifest PUT takes."""
        with _swift_errors("read", path):
            _, body = self._conn().get_object(self.container, name, query_string=_SLO_GET)
        entries = []
        for stored in json.loads(body):
            if stored.get("range"):
                raise StorageError(f"{name} is a large object with ranged segments", path)
            if stored.get("bytes"):
                entries.append({"path": stored["name"], "etag": stored["hash"],
                                "size_bytes": stored["bytes"]})
        return entries

    # -- replacing a version -------------------------------------------------

    def _prepare_replace(self, path: str, precondition: Precondition | None,
                         conn: Connection) -> _Replaced:
        """Check the precondition on the current version; keep hold of its segments.

        A manifest about to be overwritten is copied to a tombstone, which
        then owns its segments until the new version is known to have won.
        """
        headers = self._check_current(path, precondition, conn)
        if headers is None or not _is_large(headers):
            return _Replaced(None, None, None)
        tombstone = self._tombstone(path, conn)
        return _Replaced(headers.get("x-timestamp"), tombstone, headers.get("x-manifest-etag"))

    def _check_current(self, path: str, precondition: Precondition | None,
                       conn: Connection) -> dict | None:
        """HEAD ``path`` and judge it by ``precondition``; its headers, None if absent."""
        with _swift_errors("read", path):
            headers = _head_or_none(conn, self.container, path)
        if precondition is not None:
            precondition(_info_from_headers(path, headers) if headers is not None else None)
        return headers

    def _tombstone(self, path: str, conn: Connection) -> str:
        """Copy the manifest at ``path`` to a new tombstone, which shares its segments."""
        tombstone = _private_prefix(REPLACED_DIR, path) + uuid.uuid4().hex
        with _swift_errors("store", path):
            conn.put_object(self.container, tombstone, contents=None,
                            headers={"X-Copy-From": quote(self._swift_path(path))},
                            query_string=_SLO_GET)
        return tombstone

    def _after_commit(self, path: str, replaced: _Replaced | None, written: _Written) -> ObjectInfo:
        """The info of the version just written; the old one's segments go if it lost."""
        if replaced is not None and replaced.tombstone is not None:
            self._retire(path, replaced)
        return written.info(path)

    def _retire(self, path: str, replaced: _Replaced) -> None:
        """Delete the replaced manifest's segments, unless they are still in use.

        They are when the old version is still current (a concurrent write
        that started later won) or when the new manifest lists the very same
        segments (a retried move).
        """
        try:
            current = self._head(path) or {}
        except StorageError:
            current = {"x-timestamp": replaced.timestamp}  # unknown: keep them
        superseded = (current.get("x-timestamp") != replaced.timestamp
                      and current.get("x-manifest-etag") != replaced.manifest_etag)
        if not superseded:
            log.warning("kept the segments of the replaced version of %s: still in use", path)
            self._delete_tombstone(replaced.tombstone, with_segments=False)
        else:
            self._defer_retirement(replaced.tombstone)

    # -- deferred clean-up ----------------------------------------------------

    def _defer_retirement(self, tombstone: str) -> None:
        """Delete the tombstone with its segments once the grace period is over."""
        if self.segment_grace <= 0:
            self._delete_tombstone(tombstone, with_segments=True)
            return
        with self._lock:
            self._retiring.append((time.monotonic() + self.segment_grace, tombstone))
        self._start_sweeper()

    def _watch_upload(self, path: str, parts: _Parts) -> None:
        """Check later that a version this process committed is not orphaned.

        Two overlapping writes of ``path`` can each take the version before
        both for the one they replace; the one that lost (overwritten by the
        other, yet tombstoned by nobody) is found here.
        """
        if not parts.written:
            return
        due = time.monotonic() + self.segment_grace
        with self._lock:
            self._committed.append((due, path, parts.prefix))
        self._start_sweeper()

    def _start_sweeper(self) -> None:
        with self._lock:
            if self._sweeper is not None or self._closing.is_set():
                return
            self._sweeper = threading.Thread(target=self._sweep_forever, daemon=True,
                                             name="blobsvc-swift-sweeper")
        self._sweeper.start()

    def _sweep_forever(self) -> None:
        interval = max(0.2, min(self.segment_grace / 4, 10.0))
        while not self._closing.wait(interval):
            try:
                self._sweep()
            except StorageError as exc:  # Swift down: one line a round, no traceback chain
                log.warning("sweeping the segments of replaced versions failed (%s)", exc.message)
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("sweeping the segments of replaced versions failed")

    def _sweep(self, everything: bool = False) -> None:
        """Retire due tombstones; delete due uploads of ours no manifest lists."""
        now = time.monotonic()
        with self._lock:
            tombstones = [t for due, t in self._retiring if everything or due <= now]
            self._retiring = [] if everything else [e for e in self._retiring if e[0] > now]
            uploads = [e for e in self._committed if everything or e[0] <= now]
            self._committed = [] if everything else [e for e in self._committed if e[0] > now]
        with ThreadPoolExecutor(SWEEP_THREADS) as pool:  # close() has a deadline too
            self._retire_tombstones(pool, tombstones)
            if everything:  # one look at the whole container decides for them all
                candidates = [(path, prefix) for _, path, prefix in uploads]
            else:
                current = pool.map(lambda entry: self._is_current(entry[1], entry[2]), uploads)
                candidates = [(path, prefix) for (_, path, prefix), keep in zip(uploads, current, strict=True)
                              if not keep]
        if not candidates:
            return
        referenced = None
        for _ in range(3):
            referenced = self._referenced_uploads()
            if referenced is not None:
                break
        if referenced is None:  # the container kept changing: try again later
            if not everything:
                with self._lock:
                    self._committed.extend((now + self.segment_grace, path, prefix)
                                           for path, prefix in candidates)
            return
        orphans = [prefix for _, prefix in candidates if prefix not in referenced]
        with ThreadPoolExecutor(SWEEP_THREADS) as pool:
            list(pool.map(self._delete_upload, orphans))

    def _retire_tombstones(self, pool: ThreadPoolExecutor, tombstones: list[str]) -> None:
        """Delete tombstones with their segments: with Swift down, one line for them all."""
        failures = [exc for exc in pool.map(self._retire_tombstone, tombstones) if exc is not None]
        if failures:
            log.warning("could not delete %d replaced version(s) with their segments (%s): "
                        "left for a later clean-up", len(failures), failures[0].message)

    def _retire_tombstone(self, name: str) -> StorageError | None:
        """Delete one tombstone and its segments; the error instead of a log line."""
        try:
            with _swift_errors("clean up", None):
                self._conn().delete_object(self.container, name, query_string=_SLO_DELETE)
        except NotFound:
            pass  # retired already (by another instance)
        except StorageError as exc:
            return exc
        return None

    def _delete_upload(self, prefix: str) -> None:
        log.info("deleting the segments under %s: no manifest lists them", prefix)
        try:
            names = self._names_below(prefix)
        except StorageError as exc:
            log.warning("could not list %s (%s): left for a later clean-up", prefix, exc.message)
            return
        for name in names:
            self._delete_quietly(name)

    def _is_current(self, path: str, prefix: str) -> bool:
        """Whether the version at ``path`` lists segments under ``prefix`` (unsure: yes)."""
        try:
            headers = self._head(path)
            if headers is None or not _is_large(headers):
                return False
            return prefix in (self._manifest_uploads(path) or ())
        except NotFound:
            return False
        except StorageError:
            return True

    def _manifest_uploads(self, name: str, expected_etag: str | None = None) -> set[str] | None:
        """Upload prefixes a manifest lists; None when gone or not ``expected_etag`` any more."""
        try:
            with _swift_errors("read", name):
                headers, body = self._conn().get_object(self.container, name,
                                                        query_string=_SLO_GET)
        except NotFound:
            return None
        if expected_etag is not None and _unquote(headers.get("etag")) != expected_etag:
            return None
        root = f"/{self.container}/"
        uploads = set()
        for entry in json.loads(body):
            if not entry["name"].startswith(root):
                continue
            listed = entry["name"][len(root):]
            uploads.add(listed.rsplit("/", 1)[0] + "/")
            if entry.get("sub_slo"):  # nested: lent segments may be listed only there
                nested = self._manifest_uploads(listed)
                if nested is None:
                    return None
                uploads |= nested
        return uploads

    def _referenced_uploads(self) -> set[str] | None:
        """Upload prefixes any manifest or tombstone lists; None if the container moved under us.

        A large object moved or lent by cat keeps its segments where they
        were written, so only the whole container tells what is unused. A
        manifest gone or changed between the listing and its read may have
        been copied elsewhere unseen: then the answer is None.
        """
        referenced: set[str] = set()
        with _swift_errors("list", None):
            listing = self._conn().get_container(self.container, full_listing=True)[1]
        manifests = [entry for entry in listing
                     if "slo_etag" in entry and not entry["name"].startswith(f"{SEGMENTS_DIR}/")]
        with ThreadPoolExecutor(SWEEP_THREADS) as pool:
            found = pool.map(lambda entry: self._manifest_uploads(entry["name"], entry.get("hash")),
                             manifests)
            for entry, uploads in zip(manifests, found, strict=True):
                if uploads is None:
                    if entry["name"].startswith(f"{REPLACED_DIR}/"):
                        continue  # a tombstone retired meanwhile: never copied anywhere
                    return None
                referenced |= uploads
        return referenced

    def _names_below(self, prefix: str) -> list[str]:
        with _swift_errors("list", prefix):
            listing = self._conn().get_container(self.container, prefix=prefix,
                                                 full_listing=True)[1]
        return [entry["name"] for entry in listing]

    def _drop_tombstone(self, replaced: _Replaced | None) -> None:
        """The write failed: the old version stays, and so do its segments."""
        if replaced is not None and replaced.tombstone is not None:
            self._delete_tombstone(replaced.tombstone, with_segments=False)

    def _delete_tombstone(self, name: str | None, with_segments: bool) -> None:
        try:
            with _swift_errors("clean up", None):
                self._conn().delete_object(self.container, name,
                                           query_string=_SLO_DELETE if with_segments else None)
        except StorageError as exc:
            log.warning("could not delete %s (%s): left for a later clean-up", name, exc.message)

    def _remove_parts(self, parts: _Parts, exc: BaseException | None = None) -> None:
        """Delete what a failed or superseded write created.

        Not after a failure during the commit itself: the manifest may have
        been stored, and segments are better leaked than lost.
        """
        if parts.committing and isinstance(exc, BackendUnavailable):
            log.warning("Swift failed while committing a manifest; its segments stay under %s",
                        parts.prefix)
            return
        for name in parts.written:
            self._delete_quietly(name)

    # -- clash checks (best effort, see the module docstring) ---------------

    def _check_no_clash(self, path: str) -> None:
        if self._has_objects_below(f"{path}/"):
            raise Conflict(f"{path} is a directory", path)
        for parent in reversed(_parents(path)):
            if self._has_objects_below(f"{parent}/"):
                return  # an existing directory: its parents are directories too
            if self._head(parent) is not None:
                raise Conflict(f"{parent} is an object, not a directory", path)

    def _missing(self, path: str) -> StorageError:
        """NotFound, or Conflict when ``path`` is a directory."""
        if self._has_objects_below(f"{path}/"):
            return Conflict(f"{path} is a non-empty directory", path)
        return NotFound(f"no object at {path}", path)

    # -- small Swift requests ------------------------------------------------

    def _head(self, name: str) -> dict | None:
        with _swift_errors("look up", name):
            return _head_or_none(self._conn(), self.container, name)

    def _has_objects_below(self, prefix: str) -> bool:
        return bool(self._listing_page(prefix, None, 1, "look up"))

    def _delete_quietly(self, name: str) -> None:
        """Delete a name; gone already is fine, a failure only leaves garbage."""
        try:
            with _swift_errors("delete", name):
                self._conn().delete_object(self.container, name)
        except NotFound:
            pass
        except StorageError as exc:
            log.warning("could not delete %s (%s): left for a later clean-up", name, exc.message)

    def _swift_path(self, name: str) -> str:
        return f"/{self.container}/{name}"

    def _entry(self, name: str, etag: str, size: int) -> dict:
        return {"path": self._swift_path(name), "etag": etag, "size_bytes": size}


# -- helpers -----------------------------------------------------------------


@dataclass(frozen=True)
class _Replaced:
    """A large version a write replaces: its timestamp, tombstone and manifest MD5."""

    timestamp: str | None
    tombstone: str | None
    manifest_etag: str | None


@dataclass(frozen=True)
class _Stored:
    """Swift's answer to a PUT. ``superseded``: it already held a newer version (202)."""

    etag: str
    last_modified: str | None
    superseded: bool

    @classmethod
    def of(cls, etag: str, response: dict) -> _Stored:
        headers = response.get("headers", {})
        return cls(etag, headers.get("last-modified"), response.get("status") == 202)


@dataclass(frozen=True)
class _Written:
    """What one write stored: its info, without asking Swift again."""

    etag: str
    size: int
    content_type: str
    last_modified: str | None

    def info(self, path: str) -> ObjectInfo:
        ctime = _header_time({"last-modified": self.last_modified})
        if ctime is None:  # superseded: no Last-Modified, and none to take from Swift
            ctime = float(math.ceil(time.time()))
        return ObjectInfo(path=path, name=paths.basename(path), isdir=False, size=self.size,
                          ctime=ctime, etag=self.etag, content_type=self.content_type)


@dataclass(frozen=True)
class _Chunk:
    """A cat chunk that becomes segments by itself: copied, or lent if ``large``."""

    name: str
    size: int
    large: bool


class _SizeBudget:
    """The bytes a cat result may still take (None: no limit); TooLarge past them."""

    def __init__(self, max_size: int | None, path: str) -> None:
        self.max_size = max_size
        self.used = 0
        self.path = path

    def take(self, size: int) -> None:
        self.used += size
        if self.max_size is not None and self.used > self.max_size:
            raise too_large(self.max_size, self.path)

    def counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """``chunks`` passed through, each counted; the source is closed on the way out."""
        try:
            for chunk in chunks:
                self.take(len(chunk))
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()


def _content_length(headers: dict) -> int:
    return int(headers.get("content-length", 0))


def _plan_cat(chunks: list[str], found: dict[str, dict], small: int,
              segment_size: int) -> list[list[str] | _Chunk]:
    """The result's pieces in order: runs of small chunks (lists) and big chunks.

    Empty chunks vanish; a run never grows past one segment.
    """
    pieces: list[list[str] | _Chunk] = []
    run: list[str] = []
    run_size = 0
    for chunk in chunks:
        size, large = _content_length(found[chunk]), _is_large(found[chunk])
        if size == 0:
            continue
        if large or size >= small or run_size + size > segment_size:
            if run:
                pieces.append(run)
            run, run_size = [], 0
        if large or size >= small:
            pieces.append(_Chunk(chunk, size, large))
        else:
            run.append(chunk)
            run_size += size
    if run:
        pieces.append(run)
    return pieces


class _Claims:
    """Names this process is writing, so that of two clashing writes here one loses.

    Swift cannot refuse an object below another object; across processes
    the clash checks stay best effort.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: Counter[str] = Counter()
        self._directories: Counter[str] = Counter()

    @contextlib.contextmanager
    def claim(self, path: str) -> Iterator[None]:
        parents = _parents(path)
        with self._lock:
            if self._directories[path]:
                raise Conflict(f"{path} is a directory", path)
            for parent in parents:
                if self._objects[parent]:
                    raise Conflict(f"{parent} is an object, not a directory", path)
            self._objects[path] += 1
            self._directories.update(parents)
        try:
            yield
        finally:
            with self._lock:
                self._objects.subtract([path])
                self._directories.subtract(parents)
                self._objects += Counter()  # drops the zeros
                self._directories += Counter()


class _Parts:
    """Private objects one write creates, so a failure can remove them."""

    def __init__(self, path: str) -> None:
        self.prefix = f"{_private_prefix(SEGMENTS_DIR, path)}{uuid.uuid4().hex}/"
        self.written: list[str] = []
        #: Set once the manifest PUT started: a failure may have committed it.
        self.committing = False
        #: Set when Swift kept a newer version instead of this write's manifest.
        self.superseded = False

    def new_name(self) -> str:
        name = f"{self.prefix}{len(self.written):08d}"
        self.written.append(name)
        return name


class _BodyFailed(Exception):
    """Stops a PUT from inside its body; deliberately not an OSError.

    The HTTP stack would take an OSError for a network failure and retry or
    wrap it; this passes through untouched, and the caller re-raises the
    real cause kept in ``_Body.error``.
    """


class _Body:
    """A PUT body that holds back its last chunk until ``before_end`` passed.

    With chunked transfer Swift commits only when the body ends, so an
    exception here (wrong length, checksum, precondition) aborts the PUT.
    """

    def __init__(self, chunks: Iterable[bytes], before_end: Callable[[], _Replaced] | None = None,
                 hashed: bool = False) -> None:
        self._chunks = chunks
        self._before_end = before_end
        self._md5 = hashlib.md5() if hashed else None
        self.error: BaseException | None = None
        self.end_result: _Replaced | None = None
        self.size = 0

    @property
    def md5_hex(self) -> str:
        assert self._md5 is not None, "a body made without hashed=True"
        return self._md5.hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        held = None
        try:
            for chunk in self._chunks:
                if not chunk:
                    continue
                if held is not None:
                    yield held
                held = chunk
                self.size += len(chunk)
                if self._md5 is not None:
                    self._md5.update(chunk)
            if self._before_end is not None:
                self.end_result = self._before_end()
        except Exception as exc:
            self.error = exc
            raise _BodyFailed(str(exc)) from exc
        if held is not None:
            yield held


class _Splitter:
    """Cuts one stream into consecutive segment streams, lazily."""

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._chunks = iter(chunks)
        self._size = size
        self._pending = b""

    def next_segment(self) -> Iterator[bytes] | None:
        """The next segment's chunks, or None at the end (never an empty one)."""
        while not self._pending:
            self._pending = next(self._chunks, None)
            if self._pending is None:
                self._pending = b""
                return None
        return self._segment()

    def _segment(self) -> Iterator[bytes]:
        left = self._size
        while left:
            if not self._pending:
                self._pending = next(self._chunks, b"")
                if not self._pending:
                    return
            piece = self._pending
            if len(piece) > left:
                piece, self._pending = piece[:left], piece[left:]
            else:
                self._pending = b""
            left -= len(piece)
            yield piece


def _read_ahead(chunks: Iterator[bytes], limit: int) -> tuple[list[bytes], bool]:
    """Up to a little over ``limit`` bytes, and whether the stream ended within them."""
    head, size = [], 0
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size > limit:
            return head, False
    return head, True


@contextlib.contextmanager
def _swift_errors(action: str, path: str | None) -> Iterator[None]:
    """Translate swiftclient's and the network's errors into storage errors."""
    try:
        yield
    except ClientException as exc:
        raise _from_client_exception(exc, action, path) from exc
    except _TRANSPORT_ERRORS as exc:
        reason = "timed out" if isinstance(exc, Timeout) else "connection failed"
        # DEBUG: whoever handles the error logs it, once (see _cause).
        log.debug("Swift did not answer (%s %s): %s", action, path or "", _cause(exc))
        raise BackendUnavailable(f"Swift did not answer ({reason}) while trying to {action}",
                                 path) from exc


#: (auth URL, container) whose failure at start-up this process, or the
#: supervisor it was forked from, has logged: one line, not one per worker.
_unreachable_at_start: set[tuple[str, str]] = set()


def _report_unreachable_at_start(exc: BackendUnavailable, auth_url: str, container: str) -> None:
    """Say once where Swift was looked for and what failed; later ones go to DEBUG."""
    key = (auth_url, container)
    level = logging.DEBUG if key in _unreachable_at_start else logging.WARNING
    _unreachable_at_start.add(key)
    log.log(level, "%s at %s (%s); the readiness check will try again", exc.message, auth_url,
            _cause(exc))


def _cause(exc: BaseException) -> str:
    """The innermost error of an exception chain, as one short line.

    A refused connection arrives wrapped four deep (socket, urllib3, requests,
    storage error); its root says what happened without the chain's tracebacks.
    """
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    return f"{type(exc).__name__}: {exc}"


def _from_client_exception(exc: ClientException, action: str, path: str | None) -> StorageError:
    status = exc.http_status
    if status == 404:
        return NotFound(f"no object at {path}", path)
    if status == 507:
        return InsufficientStorage("Swift is out of space", path)
    if status == 412:
        return PreconditionFailed("the object does not match the request's preconditions", path)
    if status == 413:
        return TooLarge("object larger than Swift accepts", path)
    log.debug("Swift refused to %s %s: %s", action, path or "", exc)  # logged once by the handler
    if status in (401, 403):
        return BackendUnavailable(f"Swift refused the service's credentials while trying to {action}",
                                  path)
    if status is None or status >= 500 or status in (408, 429, 498, 499):
        detail = f"HTTP {status}" if status else "connection lost"
        return BackendUnavailable(f"Swift failed ({detail}) while trying to {action}", path)
    return StorageError(f"Swift refused to {action} (HTTP {status} {exc.http_reason})", path)


def _guarded(body: Iterator[bytes], path: str) -> Iterator[bytes]:
    """An object body whose failures mid-way all become BackendUnavailable.

    Headers are out by then; a 404 or 412 from swiftclient's resumed read
    means the object changed under the reader, which the reader cannot fix.
    """
    try:
        with _swift_errors("read", path):
            yield from body
    except StorageError as exc:
        if isinstance(exc, BackendUnavailable):
            raise
        raise BackendUnavailable(f"reading {path} broke off: it changed or vanished", path) from exc


def _head_or_none(conn: Connection, container: str, name: str) -> dict | None:
    try:
        return conn.head_object(container, name)
    except ClientException as exc:
        if exc.http_status == 404:
            return None
        raise


def _info_from_headers(path: str, headers: dict) -> ObjectInfo:
    """What a HEAD or GET tells; a ranged GET's size is Content-Range's total."""
    content_range = headers.get("content-range")
    if content_range and "/" in content_range:
        size = int(content_range.rsplit("/", 1)[1])
    else:
        size = int(headers.get("content-length", 0))
    return ObjectInfo(path=path, name=paths.basename(path), isdir=False, size=size,
                      ctime=_header_time(headers), etag=_unquote(headers.get("etag")),
                      content_type=headers.get("content-type") or DEFAULT_CONTENT_TYPE)


def _header_time(headers: dict) -> float | None:
    """Last-Modified: what a PUT answers and a HEAD repeats."""
    if not headers.get("last-modified"):
        return None
    return parsedate_to_datetime(headers["last-modified"]).timestamp()


def _listing_time(value: str | None) -> float | None:
    """A listing's precise timestamp, rounded up as Swift's Last-Modified is."""
    if not value:
        return None
    return float(math.ceil(datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp()))


def _add_listed(found: dict[str, ObjectInfo], prefix: str, raw: dict, marker: str | None) -> None:
    """Add one Swift listing entry, unless hidden, unnamed or not after ``marker``."""
    if "subdir" in raw:
        name = raw["subdir"][len(prefix):-1]
    else:
        name = raw["name"][len(prefix):]
    if not name or (not prefix and name == paths.RESERVED_PREFIX):
        return
    if marker is not None and name <= marker:
        return
    path = prefix + name
    if "subdir" in raw:
        found[name] = ObjectInfo.directory(path)
        return
    found[name] = ObjectInfo(
        path=path, name=name, isdir=False, size=raw["bytes"],
        ctime=_listing_time(raw.get("last_modified")),
        # An SLO's "hash" is its manifest's MD5; "slo_etag" is its ETag.
        etag=_unquote(raw.get("slo_etag") or raw.get("hash")),
        content_type=raw.get("content_type") or DEFAULT_CONTENT_TYPE,
    )


def _settled_count(names: list[str], last_key: str) -> int:
    """How many leading ``names`` no later Swift page can precede.

    Swift lists a directory ``d`` as ``d/``, after ``d.txt``: a directory
    not yet seen (its key after ``last_key``) still sorts before any name
    that starts with it followed by a character below ``/``.
    """
    for index, name in enumerate(names):
        for cut, char in enumerate(name):
            if cut and char < "/" and name[:cut] + "/" > last_key:
                return index
    return len(names)


def _slo_etag(entries: list[dict]) -> str:
    """The ETag Swift gives a manifest: the MD5 of its entries' ETags."""
    return hashlib.md5("".join(entry["etag"] for entry in entries).encode("ascii")).hexdigest()


def _range_header(offset: int, length: int | None) -> dict:
    if offset == 0 and length is None:
        return {}
    end = "" if length is None else str(offset + length - 1)
    return {"Range": f"bytes={offset}-{end}"}


def _is_large(headers: dict) -> bool:
    return headers.get("x-static-large-object", "").lower() == "true"


def _unquote(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None


def _private_prefix(directory: str, path: str) -> str:
    """``<directory>/<path>/``, or a digest of the path if the name would be too long."""
    prefix = f"{directory}/{path}/"
    if len(prefix.encode("utf-8")) + _UNIQUE_SUFFIX_BYTES > MAX_OBJECT_NAME_BYTES:
        prefix = f"{directory}/{hashlib.sha256(path.encode('utf-8')).hexdigest()}/"
    return prefix


def _parents(path: str) -> list[str]:
    """``a/b/c`` -> ``["a", "a/b"]``."""
    segments = path.split("/")[:-1]
    return ["/".join(segments[: i + 1]) for i in range(len(segments))]


def _keystone_options(project_name: str | None, project_domain_name: str | None,
                      user_domain_name: str | None, region_name: str | None) -> dict:
    options = {"project_name": project_name, "project_domain_name": project_domain_name,
               "user_domain_name": user_domain_name, "region_name": region_name}
    return {key: value for key, value in options.items() if value is not None}


def _check_settings(container: str, timeout: float, retries: int, segment_size: int,
                    segment_grace_seconds: float) -> None:
    """Reject values swiftclient would accept and then misbehave with."""
    if segment_grace_seconds < 0:
        raise ValueError("storage.segment_grace_seconds must not be negative")
    if not container or "/" in container:
        raise ValueError("storage.container must be a non-empty name without '/'")
    if timeout <= 0:
        raise ValueError("storage.timeout must be positive")
    if retries < 0:
        raise ValueError("storage.retries must not be negative")
    if segment_size < 1:
        raise ValueError("storage.segment_size must be at least 1")

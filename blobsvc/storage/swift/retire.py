"""Retiring replaced large versions: tombstones, and the sweep that deletes their segments late.

Why this is the subtlest code of the driver: a large object's bytes live in
segments that its manifest only lists, and overwriting or deleting the
object must delete them, but not at once and not always:

* A reader may still be streaming the old version. Before the write
  commits, the old manifest is copied to a *tombstone* under
  ``.blobsvc/replaced/``, which owns its segments from then on; the sweep
  deletes the tombstone with its segments ``segment_grace_seconds`` after
  the new version won (``close()`` does it at once, whatever the age),
  except segments a move or cat recorded giving another name meanwhile
  (:mod:`.lending`): a move racing the overwrite of its source.
* The old version may not have lost: Swift orders versions by the time each
  PUT *started*, so a write that started later can be current still, and a
  retried move lists the very same segments. Then the tombstone goes alone.
* Two overlapping writes of one name can each tombstone the version before
  both, so the loser's segments are tombstoned by nobody. Each large
  version this process commits is therefore *watched*: once due, if its
  name no longer lists it and no manifest or tombstone in the container
  does (a move or a cat may have lent its segments elsewhere), they go;
  :mod:`.references` reads the manifests that tell. A container listing
  may lag behind writes, and a manifest copied there moments ago (a move)
  may not be listed yet, so the verdict must hold twice,
  ``confirm_after`` seconds apart, before anything is deleted; only
  ``close()`` decides on one look (see README's "Not promised").
* Swift may stop answering in the middle of a round. What the round could
  not settle goes back on the queue, due again :data:`RETRY_SECONDS` later:
  an outage delays the deletion of segments, it does not leak them.

The queues live in this process's memory, but what a process killed
before they are due leaves behind is found in Swift: a tombstone records
the path and manifest it was made for, and is marked *retiring* once the
new version won, so that :mod:`.collector` (in whichever instance) can
settle it the way its owner would have. Due times come from ``clock``
(monotonic seconds) and :meth:`Retirement.sweep` is one round, callable
directly, so the logic runs under a fake clock and an in-memory Swift as
well as on the background thread, which also runs the collector every
``collect_interval`` seconds when one is set.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import quote

from swiftclient.client import Connection

from blobsvc.storage import paths
from blobsvc.storage.contract import Precondition
from blobsvc.storage.errors import BackendUnavailable, NotFound, StorageError
from blobsvc.storage.swift.client import ContainerClient
from blobsvc.storage.swift.errors import log, swift_errors
from blobsvc.storage.swift.headers import Headers, is_large
from blobsvc.storage.swift.layout import (
    REPLACED_DIR,
    SLO_DELETE,
    SLO_GET,
    private_prefix,
    upload_prefix,
)
from blobsvc.storage.swift.lending import Lending
from blobsvc.storage.swift.objectmeta import encode_value
from blobsvc.storage.swift.references import References

#: Threads that delete and look up in parallel when sweeping.
SWEEP_THREADS = 8

#: Seconds before a sweep tries again what Swift did not answer for: while
#: Swift is down, one warning that often, not one every round.
RETRY_SECONDS = 10.0

#: Seconds after start-up (at most) of the first collection.
FIRST_COLLECTION = 10.0

#: Looks at the whole container a sweep takes before deciding it keeps changing.
REFERENCE_ATTEMPTS = 3

#: Monotonic seconds, as ``time.monotonic`` gives them.
Clock = Callable[[], float]

#: A large version this process committed: (its path, its upload's segment prefix).
Watched = tuple[str, str]

#: A tombstone's metadata: the path and the manifest (X-Manifest-Etag) it
#: was made for; and the mark that the new version won (the path is gone then).
TOMBSTONE_PATH = "X-Object-Meta-Blobsvc-Path"
TOMBSTONE_MANIFEST = "X-Object-Meta-Blobsvc-Manifest-Etag"
TOMBSTONE_RETIRING = "X-Object-Meta-Blobsvc-Retiring"


class NotAManifest(Exception):
    """The version a tombstone was to copy was replaced by a plain object."""


@dataclass(frozen=True)
class Replaced:
    """A large version a write replaces: its timestamp, tombstone and manifest MD5.

    All None when the version replaced is not large (nothing to retire).
    """

    timestamp: str | None
    tombstone: str | None
    manifest_etag: str | None


NOTHING_REPLACED = Replaced(None, None, None)


class Retirement:
    """Tombstones of replaced versions and watched uploads, and the sweep that settles them."""

    def __init__(self, client: ContainerClient, grace: float, *, clock: Clock = time.monotonic,
                 background: bool = True, join_timeout: float = 30.0,
                 confirm_after: float | None = None) -> None:
        self.client = client
        self.references = References(client)
        self.grace = float(grace)
        #: Seconds an upload must stay unlisted by any manifest before its
        #: segments go (the grace period unless given).
        self.confirm_after = self.grace if confirm_after is None else float(confirm_after)
        #: Upload prefix -> when a look at the container first found it unlisted.
        self._suspected: dict[str, float] = {}
        #: Where moves and cats took uploads' segments (see :mod:`.lending`).
        self.lending: Lending | None = None
        self._clock = clock
        self._background = background
        self._join_timeout = join_timeout
        self._lock = threading.Lock()
        #: (due, tombstone): replaced versions whose segments go once due.
        self._retiring: list[tuple[float, str]] = []
        #: (due, path, upload prefix): large versions this process committed,
        #: checked once due for having been overwritten unseen (orphaned).
        self._committed: list[tuple[float, str, str]] = []
        self._sweeper: threading.Thread | None = None
        self._closing = threading.Event()
        #: What the sweeper thread also runs, every ``collect_interval``
        #: seconds: the collection of what crashed processes left.
        self.collect: Callable[[], object] | None = None
        self.collect_interval = 300.0

    def pending(self) -> tuple[list[str], list[str]]:
        """The tombstones and watched upload prefixes not settled yet."""
        with self._lock:
            return [t for _, t in self._retiring], [prefix for _, _, prefix in self._committed]

    # -- replacing a version ---------------------------------------------------

    def prepare_replace(self, path: str, precondition: Precondition | None,
                        conn: Connection) -> Replaced:
        """Check the precondition on the current version; keep hold of its segments.

        A manifest about to be overwritten is copied to a tombstone, which
        then owns its segments until the new version is known to have won.
        """
        return self.replacing(path, self.client.check_current(path, precondition, conn), conn)

    def replacing(self, path: str, headers: Headers | None, conn: Connection) -> Replaced:
        """Keep hold of the segments of the version ``headers`` describe (a HEAD's
        that judged it), as :meth:`prepare_replace` does after its own HEAD."""
        if headers is None or not is_large(headers):
            return NOTHING_REPLACED
        try:
            tombstone = self.tombstone(path, conn, headers)
        except (NotFound, NotAManifest):  # replaced or gone meanwhile: not ours to retire
            return NOTHING_REPLACED
        return Replaced(headers.get("x-timestamp"), tombstone, headers.get("x-manifest-etag"))

    def tombstone(self, path: str, conn: Connection, seen: Mapping[str, str]) -> str:
        """Copy the manifest at ``path`` (``seen``: its HEAD's headers) to a
        new tombstone, which shares its segments and records which it was.

        NotAManifest when a plain object replaced it between the HEAD and
        the copy: a copy of that would be a plain object, which Swift's
        manifest delete answers 200 for and leaves in place, a tombstone
        never retired. Then the copy goes again at once.
        """
        tombstone = private_prefix(REPLACED_DIR, path) + uuid.uuid4().hex
        headers = {"X-Copy-From": quote(self.client.swift_path(path)),
                   "X-Fresh-Metadata": "true", TOMBSTONE_PATH: encode_value(path)}
        manifest_etag = seen.get("x-manifest-etag")
        if manifest_etag:
            headers[TOMBSTONE_MANIFEST] = manifest_etag
        response: dict[str, Any] = {}
        with swift_errors("store", path):
            conn.put_object(self.client.container, tombstone, contents=None, headers=headers,
                            query_string=SLO_GET, response_dict=response)
        copied = str(response.get("headers", {}).get("etag", "")).strip('"')
        if copied and copied == seen.get("etag", "").strip('"'):
            return tombstone  # the very manifest the HEAD saw: the usual case
        copy = self.client.head(tombstone)  # another version came between: which kind?
        if copy is not None and is_large(copy):
            return tombstone
        self.client.delete_quietly(tombstone)
        raise NotAManifest(f"{path} is no longer a large object")

    def settle(self, path: str, replaced: Replaced | None) -> None:
        """After a commit: retire the replaced version's segments, unless still in use.

        They are when the old version is still current (a concurrent write
        that started later won) or when the new manifest lists the very same
        segments (a retried move).
        """
        if replaced is None or replaced.tombstone is None:
            return
        current: Mapping[str, str | None]
        try:
            current = self.client.head(path) or {}
        except StorageError:
            current = {"x-timestamp": replaced.timestamp}  # unknown: keep them
        superseded = (current.get("x-timestamp") != replaced.timestamp
                      and current.get("x-manifest-etag") != replaced.manifest_etag)
        if not superseded:
            log.warning("kept the segments of the replaced version of %s: still in use", path)
            self.delete_tombstone(replaced.tombstone, with_segments=False)
        else:
            self.defer(replaced.tombstone)

    def drop(self, replaced: Replaced | None) -> None:
        """The write failed: the old version stays, and so do its segments."""
        if replaced is not None and replaced.tombstone is not None:
            self.delete_tombstone(replaced.tombstone, with_segments=False)

    def delete_tombstone(self, name: str, with_segments: bool) -> None:
        try:
            with swift_errors("clean up", None):
                self.client.conn().delete_object(self.client.container, name,
                                                 query_string=SLO_DELETE if with_segments else None)
        except StorageError as exc:
            log.warning("could not delete %s (%s): left for a later clean-up", name, exc.message)

    # -- the queues ------------------------------------------------------------

    def defer(self, tombstone: str) -> None:
        """Delete the tombstone with its segments once the grace period is
        over (at once when closing: the sweep is over then)."""
        if self.grace <= 0 or self._closing.is_set():
            self.delete_tombstone(tombstone, with_segments=True)
            return
        try:  # whoever finds it after a crash then retires it as this process would
            self.client.post(tombstone, {TOMBSTONE_RETIRING: "true"}, tombstone)
        except StorageError as exc:
            log.warning("could not mark %s as retiring (%s): a collector will look closer",
                        tombstone, exc.message)
        with self._lock:
            self._retiring.append((self._clock() + self.grace, tombstone))
        self._start_sweeper()

    def watch(self, path: str, prefix: str) -> None:
        """Check later that the version at ``path``, segments under ``prefix``, is not orphaned.

        Two overlapping writes of ``path`` can each take the version before
        both for the one they replace; the one that lost (overwritten by the
        other, yet tombstoned by nobody) is found here.
        """
        due = self._clock() + self.grace
        with self._lock:
            self._committed.append((due, path, prefix))
        self._start_sweeper()

    def _start_sweeper(self) -> None:
        if not self._background:
            return
        with self._lock:
            if self._sweeper is not None or self._closing.is_set():
                return
            self._sweeper = threading.Thread(target=self._sweep_forever, daemon=True,
                                             name="blobsvc-swift-sweeper")
        self._sweeper.start()

    def start(self) -> None:
        """Start the background thread now (it otherwise starts with the first
        tombstone), so the collector runs from start-up on."""
        self._start_sweeper()

    def _sweep_forever(self) -> None:
        interval = max(0.2, min(self.grace / 4, 10.0))
        # A first collection soon after start-up, not during it: a Swift
        # down at start is reported once, by the start-up check.
        next_collection = self._clock() + min(self.collect_interval, FIRST_COLLECTION)
        while True:
            if self.collect is not None and self._clock() >= next_collection:
                self._run("collecting what stopped writes left", self.collect)
                next_collection = self._clock() + self.collect_interval
            if self._closing.wait(min(interval, self.collect_interval)):
                return
            self._run("sweeping the segments of replaced versions", self.sweep)

    @staticmethod
    def _run(what: str, job: Callable[[], object]) -> None:
        """One round of ``job``; a failure is one log line, the next round tries again."""
        try:
            job()
        except StorageError as exc:  # Swift down: one line a round, no traceback chain
            log.warning("%s failed (%s)", what, exc.message)
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("%s failed", what)

    def close(self) -> None:
        """Stop the sweeper and do its pending work now, grace or not."""
        self._closing.set()
        if self._sweeper is not None:
            self._sweeper.join(self._join_timeout)
        try:
            self.sweep(everything=True)
        except StorageError as exc:  # Swift down at stop: one line, no traceback chain
            log.warning("could not collect the segments of replaced versions on close (%s): "
                        "left under %s/", exc.message, paths.RESERVED_PREFIX)
        except Exception:  # noqa: BLE001 - closing must not fail on garbage
            log.exception("could not collect the segments of replaced versions on close")

    # -- one round ---------------------------------------------------------------

    def sweep(self, everything: bool = False) -> None:
        """One round: retire due tombstones; delete due uploads of ours no manifest lists.

        ``everything``: all that is queued, due or not (at ``close()``).
        Whatever Swift did not answer for stays queued, due again
        :data:`RETRY_SECONDS` later; so does the rest of a round that raised.
        """
        now = self._clock()
        tombstones, uploads = self._take_due(now, everything)
        kept_tombstones, kept_uploads = tombstones, uploads  # until the round says otherwise
        try:
            with ThreadPoolExecutor(SWEEP_THREADS) as pool:  # close() has a deadline too
                kept_tombstones = self._retire_tombstones(pool, tombstones)
                unsure: list[Watched] = []
                if everything:  # one look at the whole container decides for them all
                    candidates = uploads
                else:
                    candidates, unsure = self._not_current(pool, uploads)
            kept_uploads = unsure + self._collect_orphans(candidates, now, everything)
        finally:
            self._put_back(kept_tombstones, kept_uploads, now + RETRY_SECONDS)

    def _take_due(self, now: float, everything: bool) -> tuple[list[str], list[Watched]]:
        with self._lock:
            tombstones = [t for due, t in self._retiring if everything or due <= now]
            self._retiring = [] if everything else [e for e in self._retiring if e[0] > now]
            uploads = [(path, prefix) for due, path, prefix in self._committed
                       if everything or due <= now]
            self._committed = [] if everything else [e for e in self._committed if e[0] > now]
        return tombstones, uploads

    def _put_back(self, tombstones: list[str], uploads: list[Watched], due: float) -> None:
        with self._lock:
            self._retiring.extend((due, tombstone) for tombstone in tombstones)
            self._committed.extend((due, path, prefix) for path, prefix in uploads)

    def _retire_tombstones(self, pool: ThreadPoolExecutor, tombstones: list[str]) -> list[str]:
        """Delete tombstones with their segments; those Swift did not answer for come back.

        With Swift down, one line for them all.
        """
        errors = list(pool.map(self._retire_tombstone, tombstones))
        failures = [exc for exc in errors if exc is not None]
        if failures:
            log.warning("could not delete %d replaced version(s) with their segments (%s): "
                        "left for a later clean-up", len(failures), failures[0].message)
        return [tombstone for tombstone, exc in zip(tombstones, errors, strict=True)
                if isinstance(exc, BackendUnavailable)]

    def _retire_tombstone(self, name: str) -> StorageError | None:
        return retire_tombstone(self.client, name, self.lending)

    def _not_current(self, pool: ThreadPoolExecutor,
                     uploads: list[Watched]) -> tuple[list[Watched], list[Watched]]:
        """The due uploads their name no longer lists, and those Swift did not tell about."""
        verdicts = list(pool.map(lambda entry: self.references.is_current(*entry), uploads))
        pairs = list(zip(uploads, verdicts, strict=True))
        return ([entry for entry, current in pairs if current is False],
                [entry for entry, current in pairs if current is None])

    def _collect_orphans(self, candidates: list[Watched], now: float,
                         everything: bool = False) -> list[Watched]:
        """Delete the segments of candidates no manifest or tombstone lists,
        twice ``confirm_after`` apart (once when ``everything``, at close).

        Returns the ones to try again soon (Swift did not answer while
        deleting); when the container kept changing, all go back for a
        grace period; those found unlisted a first time come back when
        their verdict can be confirmed.
        """
        candidates = [entry for entry in candidates if not self._lent_to_a_holder(*entry)]
        if not candidates:
            return []
        referenced = None
        for _ in range(REFERENCE_ATTEMPTS):
            referenced = self.references.referenced_uploads()
            if referenced is not None:
                break
        if referenced is None:  # the container kept changing: try again later
            self._put_back([], candidates, now + self.grace)
            return []
        orphans = []
        for entry in candidates:
            prefix = entry[1]
            if prefix in referenced:
                self._suspected.pop(prefix, None)
                continue
            first = self._suspected.setdefault(prefix, now)
            if everything or now - first >= self.confirm_after:
                self._suspected.pop(prefix, None)
                orphans.append(entry)
            else:
                self._put_back([], [entry], first + self.confirm_after)
        with ThreadPoolExecutor(SWEEP_THREADS) as pool:
            deleted = list(pool.map(lambda entry: self._delete_upload(entry[1]), orphans))
        return [entry for entry, done in zip(orphans, deleted, strict=True) if not done]

    def _lent_to_a_holder(self, path: str, prefix: str) -> bool:
        """Whether a name a move or cat recorded for the segments under
        ``prefix`` lists them: read by name, so a lagging listing cannot hide it."""
        if self.lending is None or not self.lending.held({prefix}, besides=path):
            return False
        self._suspected.pop(prefix, None)
        return True

    def _delete_upload(self, prefix: str) -> bool:
        return delete_upload(self.client, prefix)


def delete_upload(client: ContainerClient, prefix: str) -> bool:
    """Delete the segments under ``prefix``; False if Swift stopped answering meanwhile."""
    log.info("deleting the segments under %s: no manifest lists them", prefix)
    try:
        names = client.names_below(prefix)
    except BackendUnavailable as exc:
        log.warning("could not list %s (%s): tried again later", prefix, exc.message)
        return False
    except StorageError as exc:
        log.warning("could not list %s (%s): left for a later clean-up", prefix, exc.message)
        return True
    for name in names:
        try:
            client.delete(name)
        except NotFound:
            pass
        except BackendUnavailable as exc:
            log.warning("could not delete %s (%s): the segments under %s are tried again later",
                        name, exc.message, prefix)
            return False
        except StorageError as exc:
            log.warning("could not delete %s (%s): left for a later clean-up", name, exc.message)
    return True


def retire_tombstone(client: ContainerClient, name: str,
                     lending: Lending | None = None) -> StorageError | None:
    """Delete one tombstone and its segments; the error instead of a log line.

    Segments a move or cat gave another name meanwhile (``lending``'s
    records) stay: a move of the replaced version that raced the write
    replacing it copied this very manifest elsewhere, and its segments are
    that copy's now. Then the tombstone goes alone, and the rest of its
    segments one by one.
    """
    try:
        with swift_errors("clean up", None):
            listed: list[str] = []
            held: set[str] = set()
            if lending is not None:
                listed = client.listed_names(name, name)
                held = lending.held({upload_prefix(segment) for segment in listed})
            if not held:
                client.conn().delete_object(client.container, name, query_string=SLO_DELETE)
                return None
            client.delete(name)
        log.info("retired %s without the segments under %s: another name lists them",
                 name, ", ".join(sorted(held)))
        for segment in listed:
            if upload_prefix(segment) not in held:
                client.delete_quietly(segment)
    except NotFound:
        pass  # retired already (by another instance)
    except StorageError as exc:
        return exc
    return None

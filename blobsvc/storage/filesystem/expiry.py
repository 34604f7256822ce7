"""Expiring objects: the index that finds them when due, and the reaper thread.

An expired object is absent at once (the driver base answers NotFound and
leaves it out of listings); reaping only gives its space back. So that a
pass costs nothing for the objects that never expire, every write of an
object with an expiry (PUT, update, copy, cat, and a move of one) first
adds an entry to an index in the private area, under the commit lock of
the object's path::

    .blobsvc/expiring/<bucket>/<expires_at>.<digest of the path>

``bucket`` is the expiry rounded down to :data:`BUCKET_SECONDS`, both as 12
digits so that names sort by time; the entry holds the expiry and the path.
A pass lists the bucket names, reads only the buckets that are due, and
for each due entry deletes the object only if its expiry is still the
entry's, under the object's commit lock (workers and processes sharing the
root may run passes at the same time: each entry is judged and dropped
under that lock, so they cannot both delete, or delete a newer version).
A write that replaces or deletes a version with an expiry drops that
version's entry (and its bucket, once empty), so the index holds about as
many entries and buckets as there are objects still to expire; an entry
left stale all the same (by a crash) is dropped when it comes due. A move
files an entry for its new path and drops the old path's.
Entries are written with a rename (whole or not at all) and fsynced with
``fsync`` on, so a crash loses none that an acknowledged write made; one
written for a write that then failed is dropped when due, like any stale
entry. Buckets are removed once past and empty.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import threading
import weakref
from typing import Callable, Iterator

from blobsvc.storage.errors import StorageError
from blobsvc.storage.filesystem.tempfiles import new_temp_file, unlink_quietly
from blobsvc.storage.filesystem.tree import fsync_directory, make_dir

log = logging.getLogger(__package__)  # the driver's logger

#: Width of a bucket: a pass lists the entries of due buckets only.
BUCKET_SECONDS = 3600
#: Expiries are written with 12 digits (until the year 33658); later ones,
#: and negative ones, are filed at the ends of that range.
_LAST = 10**12 - 1
#: How often an entry is retried when a pass removed its bucket meanwhile.
_BUCKET_RACE_RETRIES = 100


def _digits(seconds: int) -> str:
    return f"{min(max(seconds, 0), _LAST):012d}"


def _entry_name(path: str, expires_at: int) -> str:
    """``<bucket>/<expires_at>.<digest of the path>``: one name per path and expiry."""
    digest = hashlib.sha256(path.encode("utf-8")).hexdigest()[:32]
    bucket = _digits(expires_at - expires_at % BUCKET_SECONDS)
    return os.path.join(bucket, f"{_digits(expires_at)}.{digest}")


class ExpiryIndex:
    def __init__(self, private_dir: str, tmp_dir: str, fsync: bool) -> None:
        self.dir = os.path.join(private_dir, "expiring")
        self._tmp_dir = tmp_dir
        self._fsync = fsync

    def prepare(self, path: str, expires_at: int) -> tuple[str, str]:
        """Write the entry filing ``path`` for ``expires_at`` to a temp file
        (fsynced with ``fsync`` on), outside any lock; :meth:`file` it."""
        tmp, fd = new_temp_file(self._tmp_dir, 0o600)
        try:
            os.write(fd, f"{expires_at}\n{path}".encode())
            if self._fsync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            unlink_quietly(tmp)
            raise
        os.close(fd)
        return tmp, _entry_name(path, expires_at)

    def file(self, prepared: tuple[str, str]) -> None:
        """Put a prepared entry in the index; call with the commit lock of its
        path held, before the write that sets this expiry commits. The temp
        file is gone afterwards, whatever happens."""
        tmp, name = prepared
        bucket = os.path.join(self.dir, os.path.dirname(name))
        try:
            for attempt in range(_BUCKET_RACE_RETRIES + 1):
                created = not os.path.isdir(bucket)
                try:
                    make_dir(bucket, 0o700)
                    os.rename(tmp, os.path.join(self.dir, name))
                    break
                except FileNotFoundError:  # the bucket was removed by a pass meanwhile
                    if attempt == _BUCKET_RACE_RETRIES:
                        raise
        except BaseException:
            unlink_quietly(tmp)
            raise
        if self._fsync:
            fsync_directory(bucket)
            if created:
                fsync_directory(self.dir)

    def add(self, path: str, expires_at: int) -> None:
        """:meth:`prepare` and :meth:`file` at once, for a caller that holds the lock anyway."""
        self.file(self.prepare(path, expires_at))

    def forget(self, path: str, expires_at: int) -> None:
        """Drop the entry filing ``path`` for ``expires_at``, and its bucket
        if that empties it; call under the path's commit lock, once the
        version with that expiry is replaced or deleted. Entries and buckets
        then stay as many as the objects still to expire, whatever a client
        does (rewriting one object's expiry hour after hour included)."""
        name = _entry_name(path, expires_at)
        unlink_quietly(os.path.join(self.dir, name))
        try:
            os.rmdir(os.path.join(self.dir, os.path.dirname(name)))
        except OSError:
            pass  # other entries are left there (a writer filing one retries: see file)

    @staticmethod
    def discard(prepared: tuple[str, str] | None) -> None:
        """Forget a prepared entry the write did not get to file (a no-op once filed)."""
        if prepared is not None:
            unlink_quietly(prepared[0])

    def has_entries(self) -> bool:
        try:
            with os.scandir(self.dir) as buckets:
                return any(True for _ in buckets)
        except FileNotFoundError:
            return False

    def due(self, now: float) -> Iterator[tuple[str, int]]:
        """``(entry, its expiry)`` of every entry due at ``now``, bucket by
        bucket; a bucket wholly past is removed once its entries are dropped."""
        try:
            buckets = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return
        for bucket in buckets:
            if len(bucket) != 12 or not bucket.isdigit():
                continue
            start = int(bucket)
            if start > now:
                break  # sorted: no later bucket is due
            directory = os.path.join(self.dir, bucket)
            try:
                entries = os.scandir(directory)
            except (FileNotFoundError, NotADirectoryError):
                continue  # emptied and removed by another pass
            with entries:
                for entry in entries:
                    expires = entry.name.partition(".")[0]
                    if len(expires) == 12 and expires.isdigit() and int(expires) <= now:
                        yield entry.path, int(expires)
            if start + BUCKET_SECONDS <= now:
                try:
                    os.rmdir(directory)
                except OSError:
                    pass  # not empty (a write filed an entry there meanwhile), or gone

    @staticmethod
    def read(entry: str) -> tuple[int, str] | None:
        """``(expires_at, path)`` of an entry; None if it is gone or not one of ours."""
        try:
            with open(entry, "rb") as handle:
                raw = handle.read(4096)
            expires, _, path = raw.decode("utf-8").partition("\n")
            return int(expires), path
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError):
            log.warning("dropping an unreadable expiry index entry %s", os.path.basename(entry))
            unlink_quietly(entry)
            return None

    @staticmethod
    def drop(entry: str) -> None:
        unlink_quietly(entry)


class Reaper:
    """Runs a driver's ``reap_expired`` every ``interval`` seconds (give or
    take a tenth, so workers sharing a root spread their passes) in a
    daemon thread, from :meth:`start` until :meth:`stop`.

    The thread holds the driver weakly: a driver dropped without ``close()``
    still goes, and its thread ends at its next wake-up.
    """

    def __init__(self, reap: Callable[[], int], interval: float) -> None:
        self._reap = weakref.WeakMethod(reap)
        self.interval = interval
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start the thread unless it runs already, is stopped, or is off (interval 0)."""
        if self._thread is not None or self.interval <= 0:
            return
        with self._lock:
            if self._thread is not None or self.stopping.is_set():
                return
            self._thread = threading.Thread(
                target=_run, args=(self._reap, self.stopping, self.interval),
                name="blobsvc-reaper", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread; a pass under way stops after its current entry."""
        with self._lock:
            self.stopping.set()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


def _run(reap: weakref.WeakMethod, stopping: threading.Event, interval: float) -> None:
    while not stopping.wait(interval * random.uniform(0.9, 1.1)):
        method = reap()
        if method is None:
            return  # the driver is gone
        try:
            reaped = method()
            if reaped:
                log.info("reclaimed the space of %d expired object(s)", reaped)
        except StorageError as exc:
            log.warning("reaping expired objects failed: %s", exc)
        except Exception:
            log.exception("reaping expired objects failed")
        del method

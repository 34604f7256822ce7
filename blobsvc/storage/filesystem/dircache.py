"""Sorted names of large directories, reused while a directory is unchanged.

Paging through a directory of 100 000 objects 1000 at a time would read and
sort all its names for every page (about 55 ms each here); with the sorted
names kept, a page is a binary search and 1000 stats.

Two orders are kept, each read once per change of the directory:

* :meth:`DirectoryNames.sorted_names`: the names as ``os.listdir`` gives
  them, sorted (a one-level listing);
* :meth:`DirectoryNames.walk_names`: the names in the order of a recursive
  walk by full path, where a subdirectory ``d`` sorts as ``d/`` (so
  ``a-1``, ``a.txt``, ``a/``, ``a0``). Whether a name is a directory comes
  from ``os.scandir``'s d_type: no stat per name.

A directory's mtime changes with every entry added or removed, but only at
the kernel's clock tick, so a change within the same tick as the listing
that filled the cache could go unseen. Names are therefore kept only for
directories whose mtime is at least :data:`SETTLE_SECONDS` old: any later
change moves the mtime to a new value, which the next lookup notices. Other
processes writing to the same root are caught the same way.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict

#: Smaller directories are cheap to read again and are not kept.
MIN_ENTRIES = 2000
#: Upper bound on names kept over all directories (both orders together):
#: at about 70 bytes each, some 17 MiB, inside a worker's memory budget
#: (64 MiB in all).
MAX_NAMES = 250_000
SETTLE_SECONDS = 2.0

#: Opens a directory to walk: never through a link (a directory swapped for
#: one after it was seen is refused, not followed).
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

#: The cache's key: the directory and which order its names are in.
_Key = tuple[str, bool]


class DirectoryNames:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (path, walk order?) -> ((st_ino, st_mtime_ns), sorted names)
        self._entries: OrderedDict[_Key, tuple[tuple[int, int], list[str]]] = OrderedDict()
        self._total = 0

    def sorted_names(self, directory: str) -> list[str]:
        """All names in ``directory``, sorted; raises like ``os.listdir``."""
        before = os.stat(directory)
        cached = self._cached((directory, False), before)
        if cached is not None:
            return cached
        names = sorted(os.listdir(directory))
        if self._settled(before, len(names)) and os.stat(directory).st_mtime_ns == before.st_mtime_ns:
            self._keep((directory, False), _version(before), names)
        return names

    def walk_names(self, directory: str) -> list[str]:
        """All names in ``directory`` in walk order, a subdirectory's with a
        trailing ``/``; raises like ``os.open`` of the directory (ELOOP for a
        link). The list is shared: callers must not change it."""
        fd = os.open(directory, _DIR_FLAGS)
        try:
            before = os.fstat(fd)
            cached = self._cached((directory, True), before)
            if cached is not None:
                return cached
            with os.scandir(fd) as entries:
                names = sorted(entry.name + "/" if entry.is_dir(follow_symlinks=False)
                               else entry.name for entry in entries)
            if self._settled(before, len(names)) and os.fstat(fd).st_mtime_ns == before.st_mtime_ns:
                self._keep((directory, True), _version(before), names)
            return names
        finally:
            os.close(fd)

    def _cached(self, key: _Key, st: os.stat_result) -> list[str] | None:
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None and cached[0] == _version(st):
                self._entries.move_to_end(key)
                return cached[1]
        return None

    @staticmethod
    def _settled(st: os.stat_result, count: int) -> bool:
        return count >= MIN_ENTRIES and time.time() - st.st_mtime >= SETTLE_SECONDS

    def _keep(self, key: _Key, version: tuple[int, int], names: list[str]) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._total -= len(old[1])
            self._entries[key] = (version, names)
            self._total += len(names)
            while self._total > MAX_NAMES and len(self._entries) > 1:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._total -= len(dropped)


def _version(st: os.stat_result) -> tuple[int, int]:
    return (st.st_ino, st.st_mtime_ns)

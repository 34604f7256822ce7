"""Sorted names of large directories, reused while a directory is unchanged.

Paging through a directory of 100 000 objects 1000 at a time would read and
sort all its names for every page (about 55 ms each here); with the sorted
names kept, a page is a binary search and 1000 stats.

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
#: Upper bound on names kept over all directories: at about 70 bytes each,
#: some 17 MiB, inside a worker's memory budget (64 MiB in all).
MAX_NAMES = 250_000
SETTLE_SECONDS = 2.0


class DirectoryNames:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # path -> ((st_ino, st_mtime_ns), sorted names)
        self._entries: OrderedDict[str, tuple[tuple[int, int], list[str]]] = OrderedDict()
        self._total = 0

    def sorted_names(self, directory: str) -> list[str]:
        """All names in ``directory``, sorted; raises like ``os.listdir``."""
        before = os.stat(directory)
        key = (before.st_ino, before.st_mtime_ns)
        with self._lock:
            cached = self._entries.get(directory)
            if cached is not None and cached[0] == key:
                self._entries.move_to_end(directory)
                return cached[1]
        names = sorted(os.listdir(directory))
        settled = time.time() - before.st_mtime >= SETTLE_SECONDS
        if settled and len(names) >= MIN_ENTRIES and os.stat(directory).st_mtime_ns == key[1]:
            self._keep(directory, key, names)
        return names

    def _keep(self, directory: str, key: tuple[int, int], names: list[str]) -> None:
        with self._lock:
            old = self._entries.pop(directory, None)
            if old is not None:
                self._total -= len(old[1])
            self._entries[directory] = (key, names)
            self._total += len(names)
            while self._total > MAX_NAMES and len(self._entries) > 1:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._total -= len(dropped)

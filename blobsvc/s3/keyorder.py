"""One directory level in S3's key order, from the native listing's name order.

S3 sorts a common prefix by its key, the name and ``/``; the native
listing sorts a directory by its name. They part where a name continues a
directory's name with a character below ``/`` (``logs.txt`` after the
directory ``logs``, where S3 has ``logs.txt`` before ``logs/``).

An entry's key is never below its name, so a merge sets this right while
reading the native order once: entries wait in a heap, and the smallest
leaves as soon as the next native name lies above its key. Only
directories wait long, each while names that continue it go by, so the
heap is a chain of prefixes of one name and the listing is read only a
little past the page.

After a key ``k`` come the entries whose key lies above ``k``: every
native name after ``k``, and the few directories named ``k`` itself or
``k`` cut before a character below ``/``, whose ``d/`` lies above ``k``
though ``d`` does not. Those are looked up by prefix, not found by
reading the level from its start.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Iterator

from blobsvc.storage import ObjectInfo, StorageDriver, paths


def sort_key(entry: ObjectInfo) -> str:
    """The entry's key relative to its directory, as S3 orders it."""
    return f"{entry.name}/" if entry.isdir else entry.name


def entries_after(driver: StorageDriver, directory: str, prefix: str, after: str | None,
                  limit: int) -> list[ObjectInfo]:
    """Up to ``limit`` entries of ``directory`` whose names start with
    ``prefix`` and whose keys lie above ``after`` (a key relative to the
    directory, or None), in S3's order."""
    waiting: list[tuple[str, int, ObjectInfo]] = []
    order = itertools.count()
    if after is not None:
        for entry in _directories_before(driver, directory, prefix, after):
            heapq.heappush(waiting, (sort_key(entry), next(order), entry))
    found: list[ObjectInfo] = []
    for entry in _native(driver, directory, prefix, _native_marker(after), limit + 1):
        while waiting and waiting[0][0] < entry.name:
            found.append(heapq.heappop(waiting)[2])
            if len(found) == limit:
                return found
        heapq.heappush(waiting, (sort_key(entry), next(order), entry))
    while waiting and len(found) < limit:
        found.append(heapq.heappop(waiting)[2])
    return found


def _native(driver: StorageDriver, directory: str, prefix: str, marker: str | None,
            batch: int) -> Iterator[ObjectInfo]:
    """The level in native order after ``marker``, read ``batch`` entries at a time."""
    while True:
        page = driver.list_objects(directory, marker=marker, limit=batch, prefix=prefix or None)
        yield from page
        if len(page) < batch:
            return
        marker = page[-1].name


def _native_marker(after: str | None) -> str | None:
    """A marker the native listing passes the same names after as ``after``:
    past its first ``/`` no name of one level goes on."""
    if after is None:
        return None
    name, slash, _ = after.partition("/")
    return name + slash


def _directories_before(driver: StorageDriver, directory: str, prefix: str,
                        after: str) -> list[ObjectInfo]:
    """The directories named at most ``after`` whose key lies above it.

    Each candidate (``after`` cut before a character below ``/``, or whole)
    starts with the shorter ones, so the first name found with one prefix
    rules out every longer candidate that sorts before it: few lookups.
    """
    found: list[ObjectInfo] = []
    first: ObjectInfo | None = None
    for name in _candidates(after):
        if not name.startswith(prefix):
            continue
        if first is None or first.name < name:
            listed = driver.list_objects(directory, limit=1, prefix=name)
            if not listed:
                break  # no name starts with this one, nor with the longer ones
            first = listed[0]
        if first.name == name and first.isdir:
            found.append(first)
    return found


def _candidates(after: str) -> Iterator[str]:
    """Names ``d`` at most ``after`` with ``d/`` above it, shortest first."""
    name, slash, _ = after.partition("/")
    cuts = [cut for cut in range(1, len(name)) if name[cut] < "/"]
    if not slash:
        cuts.append(len(name))
    for cut in cuts:
        if len(name[:cut].encode("utf-8")) > paths.MAX_SEGMENT_BYTES:
            return  # no name is this long
        yield name[:cut]

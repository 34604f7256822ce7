"""The files below a directory, in the order of their full paths, a page at a time.

A recursive listing is sorted by full path in code-point order (Python's
``str`` order, the same as UTF-8 byte order and as Swift's container
listings): ``a-1``, ``a.txt``, ``a/b``, ``a0``. Walking depth first gives
that order when the names of each directory are sorted with a
subdirectory ``d`` as ``d/`` (see ``DirectoryNames.walk_names``): no name
holds a ``/``, so everything below ``d`` sorts exactly where ``d/`` does.

A page never costs the whole tree: the walk descends straight along the
marker (a binary search per level, whole subtrees before it are never
opened) and, when a prefix is given, straight to the directory the prefix
ends in. It holds the names of the directories on its current path only,
never the tree, and stops as soon as its caller has enough.
"""

from __future__ import annotations

import bisect
import errno
import os
from dataclasses import dataclass
from typing import Generator

from blobsvc.storage.filesystem.dircache import DirectoryNames


@dataclass
class _Level:
    """One directory on the walk's current path and where in it the walk is."""

    #: The directory's path with a trailing ``/`` (``""`` for the root).
    below: str
    full: str
    keys: list[str]
    index: int
    stop: int
    #: The part of the prefix still to match at this level (no ``/`` in it), or None.
    prefix: str | None


def walk_files(names: DirectoryNames, top_full: str, top: str, marker: str | None,
               prefix: str | None, skip_at_top: str | None = None) -> Generator[tuple[str, str], None, None]:
    """``(path, file name)`` of every non-directory entry below ``top``, sorted
    by path, paths after ``marker`` and starting with ``top/prefix`` only.

    ``top_full`` is ``top``'s directory on disk (``top`` ``""``: the root).
    ``skip_at_top`` names an entry of the top directory never walked (the
    private area). Raises what ``os.open`` raises for ``top_full`` itself;
    directories that vanish or change meanwhile below it are skipped.
    Entries are not stat'ed here: links and special files come out as
    names, for the caller to refuse.
    """
    below = f"{top}/" if top else ""
    start = below + (prefix or "")
    keys = names.walk_names(top_full)  # raised here, not at the first next()
    if marker is not None and not marker.startswith(below) and marker > below:
        return _walk([], names, marker, start, skip_at_top)  # the marker is past everything
    return _walk([_level(below, top_full, keys, marker, start)], names, marker, start, skip_at_top)


def _walk(stack: list[_Level], names: DirectoryNames, marker: str | None, start: str,
          skip_at_top: str | None) -> Generator[tuple[str, str], None, None]:
    while stack:
        level = stack[-1]
        if level.index >= level.stop:
            stack.pop()
            continue
        key = level.keys[level.index]
        level.index += 1
        if level.prefix is not None and not key.startswith(level.prefix):
            stack.pop()  # sorted: no later name starts with the prefix either
            continue
        if not _addressable(key) or (skip_at_top is not None and len(stack) == 1
                                     and key.rstrip("/") == skip_at_top):
            continue
        if key.endswith("/"):
            child_below, child_full = level.below + key, os.path.join(level.full, key[:-1])
            try:
                child_keys = names.walk_names(child_full)
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed, or replaced by a file, since it was listed
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    continue  # replaced by a link: never followed
                raise
            stack.append(_level(child_below, child_full, child_keys, marker, start))
        else:
            yield level.below + key, os.path.join(level.full, key)


def _level(below: str, full: str, keys: list[str], marker: str | None, start: str) -> _Level:
    """The range of ``keys`` (the names of directory ``below``) that can hold
    paths after ``marker`` starting with ``start``."""
    lo, stop, prefix = 0, len(keys), None
    if len(start) > len(below):  # the prefix reaches into this level
        rest = start[len(below):]
        head, slash, _ = rest.partition("/")
        if slash:  # only one subdirectory can match
            lo = bisect.bisect_left(keys, head + "/")
            stop = lo + 1 if lo < len(keys) and keys[lo] == head + "/" else lo
        else:
            lo = bisect.bisect_left(keys, rest)
            prefix = rest
    if marker is not None and marker.startswith(below):
        rest = marker[len(below):]
        after = bisect.bisect_right(keys, rest)
        # The directory the marker points into comes before the marker
        # itself (``d/`` < ``d/x``) but still holds paths after it.
        if after and keys[after - 1].endswith("/") and rest.startswith(keys[after - 1]):
            after -= 1
        lo = max(lo, after)
    return _Level(below, full, keys, lo, stop, prefix)


def _addressable(key: str) -> bool:
    """Whether a client could have written this name (valid UTF-8)."""
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


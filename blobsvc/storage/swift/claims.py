"""The object/directory clash rules on a store that has no directories.

Why it takes two parts: Swift would store ``a`` and ``a/b`` side by side,
so the contract's rules (no object below an object, no object named like a
directory, no delete of a non-empty directory) are checked right before a
write commits, from the HEAD its precondition takes anyway and, for a new
name only, one-entry listings; and, since two writes in this process could
both pass that check, writes in flight claim their names here first.
Between several blobsvc instances the checks stay best effort.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from typing import Iterator

from swiftclient.client import Connection

from blobsvc.storage.contract import Precondition
from blobsvc.storage.errors import Conflict, NotFound, StorageError
from blobsvc.storage.metadata import is_expired
from blobsvc.storage.swift.client import ContainerClient
from blobsvc.storage.swift.headers import Headers, info_from_headers
from blobsvc.storage.swift.retire import Replaced, Retirement


class Claims:
    """Names this process is writing, so that of two clashing writes here one loses."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: Counter[str] = Counter()
        self._directories: Counter[str] = Counter()

    @contextlib.contextmanager
    def claim(self, path: str) -> Iterator[None]:
        """Hold ``path`` as an object (and its parents as directories) while writing it."""
        parents = parents_of(path)
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


def check_write(client: ContainerClient, path: str, precondition: Precondition | None,
                conn: Connection) -> Headers | None:
    """Right before a commit: HEAD ``path``, apply the clash rules, then ``precondition``.

    Why one HEAD does for both: a live object at ``path`` means, by the
    rules, that its parents are directories and ``path`` is none, so an
    overwrite needs no listing. Only a new name (or an expired object's)
    is checked by listings, on ``conn`` too. The headers are returned
    for :meth:`.Retirement.replacing`.
    """
    headers = client.check_current(path, None, conn)
    current = None if headers is None else info_from_headers(path, headers)
    if current is None or is_expired(current):
        check_no_clash(client.using(conn), path)
    if precondition is not None:  # after the rules: a clash is a Conflict whatever the condition
        precondition(current)
    return headers


def prepare_write(retirement: Retirement, path: str, precondition: Precondition | None,
                  conn: Connection) -> Replaced:
    """:func:`check_write`, then the replaced version's segments held (see :mod:`.retire`)."""
    headers = check_write(retirement.client, path, precondition, conn)
    return retirement.replacing(path, headers, conn)


def check_no_clash(client: ContainerClient, path: str) -> None:
    """Conflict if ``path`` is a directory in Swift, or below an object.

    Why the listings go as they do: an object below the deepest parent
    makes every parent a directory, and names below ``path`` sort right
    after ``path/``; so the first name after ``path/`` in that parent
    answers both questions in one request, unless the parent holds
    nothing after it (then one more looks before it).
    """
    parents = parents_of(path)
    if not parents:
        if client.has_objects_below(f"{path}/"):
            raise Conflict(f"{path} is a directory", path)
        return
    below, deepest = f"{path}/", f"{parents[-1]}/"
    after = client.first_live_below(deepest, marker=below)
    if after is not None and after.startswith(below):
        raise Conflict(f"{path} is a directory", path)
    if after is not None or client.first_live_below(deepest, end_marker=below) is not None:
        return  # an existing directory: its parents are directories too
    for parent in reversed(parents):
        if parent != parents[-1] and client.has_objects_below(f"{parent}/"):
            return
        headers = client.head(parent)
        if headers is not None and not is_expired(info_from_headers(parent, headers)):
            raise Conflict(f"{parent} is an object, not a directory", path)


def missing(client: ContainerClient, path: str) -> StorageError:
    """The error for no object at ``path``: NotFound, or Conflict when it is a directory."""
    if client.has_objects_below(f"{path}/"):
        return Conflict(f"{path} is a non-empty directory", path)
    return NotFound(f"no object at {path}", path)


def parents_of(path: str) -> list[str]:
    """``a/b/c`` -> ``["a", "a/b"]``."""
    segments = path.split("/")[:-1]
    return ["/".join(segments[: i + 1]) for i in range(len(segments))]

"""The object/directory clash rules on a store that has no directories.

Why it takes two parts: Swift would store ``a`` and ``a/b`` side by side,
so the contract's rules (no object below an object, no object named like a
directory, no delete of a non-empty directory) are checked with a HEAD or a
one-entry listing right before a write, and, since two writes in this
process could both pass that check, writes in flight claim their names
here first. Between several blobsvc instances the checks stay best effort.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from typing import Iterator

from blobsvc.storage.errors import Conflict, NotFound, StorageError
from blobsvc.storage.metadata import is_expired
from blobsvc.storage.swift.client import ContainerClient
from blobsvc.storage.swift.headers import info_from_headers


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


def check_no_clash(client: ContainerClient, path: str) -> None:
    """Conflict if ``path`` is a directory in Swift, or below an object."""
    if client.has_objects_below(f"{path}/"):
        raise Conflict(f"{path} is a directory", path)
    for parent in reversed(parents_of(path)):
        if client.has_objects_below(f"{parent}/"):
            return  # an existing directory: its parents are directories too
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

"""Segment expiry: a large object's segments expire with it, never before a manifest that lists them.

Why: Swift's object-expirer deletes an expired manifest, not the segments
it lists, so each segment (and nested manifest) of an object that expires
carries an ``X-Delete-At`` of its own: the object's expiry plus the
segment grace (``segment_grace_seconds``, as for the segments of a
replaced version, so a reader that started before the expiry finishes).

Segments change owner or owner's expiry in two ways: a POST changing an
object's expiry, and a cat result borrowing a large chunk's segments. The
rule for both: **widen, commit, narrow**. Before the commit, the segments'
expiry becomes the later of the old and the new owner's (none if either
never expires); after it, the new owner's. A failed commit narrows back
to the old owner's. So at no moment does a segment expire before a
manifest that lists it; a failure while narrowing only keeps segments
longer than needed (logged). A move keeps both the owner's expiry and
its segments'; a copy and an upload write segments of their own, with the
new object's expiry from the start.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from blobsvc.storage.errors import NotFound, StorageError
from blobsvc.storage.swift.client import ContainerClient
from blobsvc.storage.swift.errors import log
from blobsvc.storage.swift.objectmeta import segment_headers

T = TypeVar("T")

#: Segments, and the expiry of the object they belong to now (None: never).
Owned = tuple[list[str], "int | None"]


def wider(first: int | None, second: int | None) -> int | None:
    """The later of two expiries; None (never) if either is."""
    if first is None or second is None:
        return None
    return max(first, second)


class SegmentExpiry:
    """Sets the ``X-Delete-At`` of segments; ``grace`` seconds after their owner's expiry."""

    def __init__(self, client: ContainerClient, grace: int) -> None:
        self.client = client
        self.grace = grace

    def move(self, owned: list[Owned], new: int | None, path: str, commit: Callable[[], T]) -> T:
        """``commit()``, with the segments' expiry moved from their owner's to ``new``'s:
        widened before, narrowed after (back to the old on failure)."""
        changing = [(names, old) for names, old in owned if names and old != new]
        widened = [(names, old) for names, old in changing if wider(old, new) != old]
        for names, old in widened:
            self.set(names, wider(old, new), path)
        try:
            result = commit()
        except BaseException:
            for names, old in widened:
                self.set_quietly(names, old, path)
            raise
        for names, old in changing:
            if wider(old, new) != new:
                self.set_quietly(names, new, path)
        return result

    def set(self, names: list[str], expires_at: int | None, path: str) -> None:
        """Segments ``names`` expire with an owner expiring at ``expires_at``
        (a POST without ``X-Delete-At`` takes it away)."""
        headers = segment_headers(expires_at, self.grace)
        for name in dict.fromkeys(names):
            self.client.post(name, headers, path)

    def set_quietly(self, names: list[str], expires_at: int | None, path: str) -> None:
        """:meth:`set`, where failing only keeps segments longer: logged, not raised."""
        try:
            self.set(names, expires_at, path)
        except NotFound:
            pass  # gone with their owner meanwhile
        except StorageError as exc:
            log.warning("could not set the expiry of the segments of %s (%s): they may "
                        "outlive it", path, exc.message)

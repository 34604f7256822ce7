"""Directory listings in blobsvc's order, from as few Swift pages as it takes.

Why it is not one request: Swift sorts a directory ``d`` as ``d/``, after
``d.txt``; blobsvc sorts it as ``d``, before. Entries are re-sorted, and a
page is only cut where no later Swift page can still hold a directory
sorting before the cut. Private names (``.blobsvc``) never show.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from blobsvc.storage import paths
from blobsvc.storage.contract import DEFAULT_CONTENT_TYPE, ObjectInfo
from blobsvc.storage.errors import NotFound
from blobsvc.storage.swift.client import ContainerClient, Listed
from blobsvc.storage.swift.headers import unquote

#: Entries asked of Swift per listing request (Swift's maximum).
LISTING_PAGE_SIZE = 10000


class Lister:
    """Pages of one directory level; ``page_size`` is Swift's page, tests shrink it."""

    def __init__(self, client: ContainerClient) -> None:
        self.client = client
        self.page_size = LISTING_PAGE_SIZE

    def entries(self, path: str, marker: str | None, limit: int | None) -> list[ObjectInfo]:
        """The entries below ``path`` after ``marker``; NotFound for a directory that is not."""
        prefix = f"{path}/" if path else ""
        entries = self.collect(prefix, marker, limit)
        if not entries and path and not self.client.has_objects_below(prefix):
            raise NotFound(f"no directory at {path}/", path)
        return entries

    def collect(self, prefix: str, marker: str | None, limit: int | None) -> list[ObjectInfo]:
        """One page in our order, from as few Swift pages as it takes."""
        if limit == 0:
            return []
        found: dict[str, ObjectInfo] = {}
        swift_marker = prefix + marker if marker is not None else None
        while True:
            want = self.page_size if limit is None else min(self.page_size, limit + 1)
            page = self.client.listing_page(prefix, swift_marker, want)
            for raw in page:
                add_listed(found, prefix, raw, marker)
            names = sorted(found)
            if len(page) < want:
                return [found[name] for name in names[:limit]]
            swift_marker = page[-1].get("subdir") or page[-1]["name"]
            if limit is not None and settled_count(names, swift_marker[len(prefix):]) >= limit:
                return [found[name] for name in names[:limit]]


def add_listed(found: dict[str, ObjectInfo], prefix: str, raw: Listed, marker: str | None) -> None:
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
        ctime=listing_time(raw.get("last_modified")),
        # An SLO's "hash" is its manifest's MD5; "slo_etag" is its ETag.
        etag=unquote(raw.get("slo_etag") or raw.get("hash")),
        content_type=raw.get("content_type") or DEFAULT_CONTENT_TYPE,
    )


def settled_count(names: list[str], last_key: str) -> int:
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


def listing_time(value: str | None) -> float | None:
    """A listing's precise timestamp, rounded up as Swift's Last-Modified is."""
    if not value:
        return None
    return float(math.ceil(datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp()))

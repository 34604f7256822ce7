"""Directory listings in blobsvc's order, from as few Swift pages as it takes.

Why it is not one request: Swift sorts a directory ``d`` as ``d/``, after
``d.txt``; blobsvc sorts it as ``d``, before. Entries are re-sorted, and a
page is only cut where no later Swift page can still hold a directory
sorting before the cut. A ``prefix`` narrows Swift's own listing prefix
(``<dir>/<prefix>``), so names are still cut relative to the directory.
Private names (``.blobsvc``) never show.

A recursive listing is Swift's own order (code points) without a
delimiter: one request per page. At the root, the private names are
skipped by listing up to them (``end_marker``) and then on from past them,
never paged through. Entries carry their expiry (from the content type,
see :mod:`.objectmeta`), so the driver base leaves expired ones out; they
carry no user metadata or stored headers (a listing has none).
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone

from blobsvc.storage import paths
from blobsvc.storage.contract import DEFAULT_CONTENT_TYPE, ObjectInfo
from blobsvc.storage.errors import NotFound
from blobsvc.storage.metadata import is_expired
from blobsvc.storage.swift.client import ContainerClient, Listed
from blobsvc.storage.swift.headers import unquote
from blobsvc.storage.swift.objectmeta import decode_listed, split_stored_type

#: Entries asked of Swift per listing request (Swift's maximum).
LISTING_PAGE_SIZE = 10000

#: Where the private names start, and a marker past every one of them: they
#: all continue ``.blobsvc/`` with a plain name, which sorts before U+10FFFF.
PRIVATE_START = f"{paths.RESERVED_PREFIX}/"
PAST_PRIVATE = f"{paths.RESERVED_PREFIX}/\U0010ffff"


class Lister:
    """Pages of one directory level; ``page_size`` is Swift's page, tests shrink it."""

    def __init__(self, client: ContainerClient) -> None:
        self.client = client
        self.page_size = LISTING_PAGE_SIZE

    def entries(self, path: str, marker: str | None, limit: int | None,
                prefix: str | None = None) -> list[ObjectInfo]:
        """The entries below ``path`` after ``marker`` (names starting with
        ``prefix``); NotFound for a directory that is not."""
        below = f"{path}/" if path else ""
        entries = self.collect(below, marker, limit, prefix)
        self._check_found(entries, path, below)
        return entries

    def collect(self, below: str, marker: str | None, limit: int | None,
                prefix: str | None = None) -> list[ObjectInfo]:
        """One page in our order, from as few Swift pages as it takes."""
        if limit == 0:
            return []
        found: dict[str, ObjectInfo] = {}
        listed = below + (prefix or "")
        swift_marker = below + marker if marker is not None else None
        while True:
            want = self.page_size if limit is None else min(self.page_size, limit + 1)
            page = self.client.listing_page(listed, swift_marker, want)
            for raw in page:
                add_listed(found, below, raw, marker)
            names = sorted(found)
            if len(page) < want:
                return [found[name] for name in names[:limit]]
            swift_marker = page[-1].get("subdir") or page[-1]["name"]
            if limit is not None and settled_count(names, swift_marker[len(below):]) >= limit:
                return [found[name] for name in names[:limit]]

    def recursive(self, path: str, marker: str | None, limit: int | None,
                  prefix: str | None = None) -> list[ObjectInfo]:
        """Every object below ``path`` after ``marker`` (a full path), in
        Swift's order; NotFound for a directory that is not."""
        below = f"{path}/" if path else ""
        listed = below + (prefix or "")
        entries: list[ObjectInfo] = []
        swift_marker = marker
        while limit is None or len(entries) < limit:
            want = self.page_size if limit is None else min(self.page_size, limit - len(entries))
            end = None
            if not path and (swift_marker or "") < PRIVATE_START:
                end = PRIVATE_START  # up to the private names; then on from past them
            elif not path and swift_marker is not None and swift_marker < PAST_PRIVATE:
                swift_marker = PAST_PRIVATE
            page = self.client.listing_page(listed, swift_marker, want, delimiter=None,
                                            end_marker=end)
            entries.extend(listed_object(raw) for raw in page)
            if len(page) < want:
                if end is None:
                    break
                swift_marker = PAST_PRIVATE
            elif page:
                swift_marker = page[-1]["name"]
        self._check_found(entries, path, below)
        return entries

    def _check_found(self, entries: list[ObjectInfo], path: str, below: str) -> None:
        """NotFound for a directory nothing live is below: no entries, or
        only expired ones (Swift lists them until its expirer runs)."""
        now = time.time()
        if path and all(is_expired(entry, now) for entry in entries) \
                and not self.client.has_objects_below(below):
            raise NotFound(f"no directory at {path}/", path)


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
    # An object and a directory of one name: whichever is not what expired
    # objects left behind (Swift lists them until its expirer runs) wins;
    # the live object if both are live (a clash two writers raced into).
    seen = found.get(name)
    if "subdir" in raw:
        if seen is None or is_expired(seen):
            found[name] = ObjectInfo.directory(prefix + name)
        return
    listed = listed_object(raw)
    if seen is None or not is_expired(listed):
        found[name] = listed


def listed_object(raw: Listed) -> ObjectInfo:
    """An object's entry, as a listing shows it: its expiry, no metadata."""
    path = raw["name"]
    swift_etag = unquote(raw.get("slo_etag") or raw.get("hash"))
    content_type, expires_at, etag = split_stored_type(raw.get("content_type"), swift_etag)
    return ObjectInfo(
        path=path, name=paths.basename(path), isdir=False, size=raw["bytes"],
        ctime=listing_time(raw.get("last_modified")),
        # An SLO's "hash" is its manifest's MD5, "slo_etag" Swift's ETag
        # for it, and the content type carries blobsvc's (see objectmeta).
        etag=etag or swift_etag,
        content_type=decode_listed(content_type) or DEFAULT_CONTENT_TYPE,
        metadata=None, expires_at=expires_at,
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

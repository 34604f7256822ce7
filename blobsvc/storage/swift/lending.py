"""Where a large object's segments went besides its own name: a record read
by name, so that no check of orphaned segments hangs on a listing.

Why: a move copies a manifest to another name, and a cat lends a large
chunk's segments to its result, so segments written under one path's
upload prefix may be listed by a manifest elsewhere. The writer's check
for segments orphaned by overlapping writes (:mod:`.retire`) used to find
such manifests in a listing of the whole container, and Swift's listings
may lag behind writes: a move made moments before was not listed yet, and
the segments of a live object went. So before a move or a cat copies a
manifest that lists an upload's segments, it adds the new name to that
upload's record, ``.blobsvc/lent/<upload id>``: a small JSON list read
back with a GET, which never lags. The check then asks each name there
whether its manifest lists the segments. So does the retirement of a
tombstone: a move that raced the write replacing its source copied the
very manifest the tombstone holds, and the segments are the copy's now.

A record only matters while the writer's check may still run (the grace
period plus ``confirm_after``), so it carries an ``X-Delete-After`` of
that and Swift's expirer removes it. Two moves of one upload's manifest
at the same moment may each write the record without the other's name
(Swift has no compare-and-swap); the listing-based check still stands
behind it then.
"""

from __future__ import annotations

import json

from blobsvc.storage.errors import NotFound
from blobsvc.storage.swift.client import ContainerClient, get_newest
from blobsvc.storage.swift.errors import swift_errors
from blobsvc.storage.swift.layout import LENT_DIR, upload_id
from blobsvc.storage.swift.references import References


def record_name(prefix: str) -> str:
    """The record of the upload whose segments are under ``prefix``."""
    return f"{LENT_DIR}/{upload_id(prefix)}"


class Lending:
    """The records of where uploads' segments went, in one container."""

    def __init__(self, client: ContainerClient, lifetime: float) -> None:
        self.client = client
        #: Seconds a record is kept (``X-Delete-After``).
        self.lifetime = max(1, int(lifetime))

    def lend(self, prefixes: set[str], path: str) -> None:
        """Record that the manifest about to be written at ``path`` lists
        segments under each of ``prefixes``."""
        for prefix in sorted(prefixes):
            holders = self.holders(prefix)
            if path in holders:
                continue
            body = json.dumps(holders + [path])
            with swift_errors("store", path):
                self.client.conn().put_object(
                    self.client.container, record_name(prefix), contents=body,
                    content_type="application/json",
                    headers={"X-Delete-After": str(self.lifetime)})

    def lend_segments_of(self, manifest: str, path: str) -> None:
        """Record that the manifest about to be written at ``path`` lists the
        segments ``manifest`` lists (nested manifests' included)."""
        self.lend(References(self.client).manifest_uploads(manifest) or set(), path)

    def held(self, prefixes: set[str], besides: str | None = None) -> set[str]:
        """Those of ``prefixes`` whose segments a move or cat gave a name
        (other than ``besides``) that still lists them, or may: a name Swift
        did not answer for counts as holding them."""
        references = References(self.client)
        return {prefix for prefix in prefixes
                if any(references.is_current(holder, prefix) is not False
                       for holder in self.holders(prefix) if holder != besides)}

    def holders(self, prefix: str) -> list[str]:
        """The names a move or cat gave the segments under ``prefix``."""
        try:
            with swift_errors("read", prefix):
                _, raw = get_newest(self.client.conn(), self.client.container,
                                    record_name(prefix))
        except NotFound:
            return []
        try:
            found = json.loads(raw)
        except ValueError:
            return []
        return [name for name in found if isinstance(name, str)] if isinstance(found, list) else []

"""Move and delete: the writes that upload no bytes.

Why together: both change which name owns a large object's segments. A
move copies only the manifest (Swift's server-side copy with
``multipart-manifest=get``), so the segments pass to the new name, never
re-uploaded; then the source goes by name only (copy-then-delete: for a
moment both names exist). Swift's copy keeps what the object carries
besides its bytes, its ``X-Delete-At`` and the content type's expiry
parameter included, so a moved object keeps its expiry, and its segments
theirs. An expired source is missing. A delete hands the segments to a tombstone for
the grace period (:mod:`.retire`), or, without one, deletes them with the
manifest and checks with a HEAD that it really went.
"""

from __future__ import annotations

from blobsvc.storage.contract import ObjectInfo, Precondition, check_alive
from blobsvc.storage.errors import BackendUnavailable
from blobsvc.storage.swift.claims import Claims, missing, prepare_write
from blobsvc.storage.swift.client import ContainerClient
from blobsvc.storage.swift.headers import Headers, Written, info_from_headers, is_large
from blobsvc.storage.swift.lending import Lending
from blobsvc.storage.swift.objectmeta import carried
from blobsvc.storage.swift.retire import NotAManifest, Retirement


class Mover:
    """Moves and deletes in one container."""

    def __init__(self, client: ContainerClient, retirement: Retirement, claims: Claims) -> None:
        self.client = client
        self.retirement = retirement
        self.claims = claims
        #: Where a moved manifest's segments went (see :mod:`.lending`).
        self.lending: Lending | None = None

    def move(self, src: str, dst: str, precondition: Precondition | None) -> ObjectInfo:
        with self.claims.claim(dst):
            source = self.client.head(src)
            if source is None:
                raise missing(self.client, src)
            old = check_alive(info_from_headers(src, source))
            replaced = prepare_write(self.retirement, dst, precondition, self.client.conn())
            try:
                if is_large(source) and self.lending is not None:
                    self.lending.lend_segments_of(src, dst)
                stored = self.client.copy(src, dst, manifest_only=is_large(source))
            except BaseException:
                self.retirement.drop(replaced)
                raise
            # A manifest's copy keeps its content type, and the ETag in it.
            etag = old.etag if is_large(source) else stored.etag or old.etag
            written = Written(etag or "", old.size or 0, carried(source),
                              stored.last_modified)
            self.retirement.settle(dst, replaced)
            info = written.info(dst)
            # A manifest's segments now belong to the copy: delete the name only,
            # unless the copy lost to a newer version and nothing else uses them.
            lost = stored.superseded and is_large(source)
            self.client.remove_sources(dst, [src], with_segments=[src] if lost else [])
            return info

    def delete(self, path: str, precondition: Precondition | None) -> None:
        headers = self.client.head(path)
        if headers is None:
            raise missing(self.client, path)
        if precondition is not None:
            precondition(info_from_headers(path, headers))
        if is_large(headers):
            self._delete_large(path, headers)
        else:
            self.client.delete(path)

    def _delete_large(self, path: str, headers: Headers) -> None:
        """Delete a manifest with its segments, and make sure the manifest went.

        Swift answers 200 to ``multipart-manifest=delete`` whatever happened
        and swiftclient drops the report, so a HEAD tells whether it worked.
        With a grace period, the manifest goes now and its segments later,
        through a tombstone.
        """
        if self.retirement.grace > 0:
            try:
                tombstone = self.retirement.tombstone(path, self.client.conn(), headers)
            except NotAManifest:  # a plain version replaced it meanwhile: delete that
                self.client.delete(path)
                return
            try:
                self.client.delete(path)
            except BaseException:
                self.retirement.delete_tombstone(tombstone, with_segments=False)
                raise
            self.retirement.defer(tombstone)
            return
        self.client.delete(path, with_segments=True)
        after = self.client.head(path)
        if after is not None and after.get("x-timestamp") == headers.get("x-timestamp"):
            raise BackendUnavailable(f"Swift did not delete {path}", path)

"""copy_object: server-side copies, whose bytes never pass through blobsvc.

Why it is not a move without the delete: a move may hand a large
object's segments to its new name, but a copy and its source live on
side by side, and deleting or overwriting either deletes the segments
its manifest lists. So a large source is copied segment by segment, each
by Swift (``X-Copy-From``), into segments of the copy's own upload, and
the copy gets a manifest of its own (the upload machinery's commit, with
its precondition check, tombstone and clean-up). A plain source is one
server-side copy. Either way the copy carries new metadata
(``X-Fresh-Metadata``): the caller's, or the source's without its expiry,
since a copy is a new object. Claims, clash checks and the precondition
are a move's.
"""

from __future__ import annotations

import dataclasses

from blobsvc.storage.contract import (
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectMeta,
    Precondition,
    check_alive,
)
from blobsvc.storage.errors import NotFound
from blobsvc.storage.swift.claims import Claims, missing, prepare_write
from blobsvc.storage.swift.client import ContainerClient
from blobsvc.storage.swift.headers import Written, info_from_headers, is_large
from blobsvc.storage.swift.layout import ManifestEntry
from blobsvc.storage.swift.objectmeta import carried, write_headers
from blobsvc.storage.swift.retire import Retirement
from blobsvc.storage.swift.upload import Parts, Uploader

#: Sent with every copy: the copy carries what the request says, nothing of the source's.
FRESH = {"X-Fresh-Metadata": "true"}


class Copier:
    """Server-side copies in one container."""

    def __init__(self, client: ContainerClient, uploads: Uploader, retirement: Retirement,
                 claims: Claims) -> None:
        self.client = client
        self.uploads = uploads
        self.retirement = retirement
        self.claims = claims

    def copy(self, src: str, dst: str, precondition: Precondition | None,
             meta: ObjectMeta | None) -> ObjectInfo:
        with self.claims.claim(dst):
            source = self.client.head(src)
            if source is None:
                raise missing(self.client, src)
            old = check_alive(info_from_headers(src, source))
            if meta is None:
                meta = ObjectMeta.of(old).without_expiry()
            elif meta.content_type is None:
                meta = dataclasses.replace(meta, content_type=old.content_type)
            if is_large(source):  # same bytes, same ETag
                return self._copy_large(src, dst, meta, precondition, carried(source).etag)
            return self._copy_plain(src, dst, old, meta, precondition)

    def _copy_plain(self, src: str, dst: str, old: ObjectInfo, meta: ObjectMeta,
                    precondition: Precondition | None) -> ObjectInfo:
        replaced = prepare_write(self.retirement, dst, precondition, self.client.conn())
        try:
            stored = self.client.copy(src, dst, manifest_only=False, path=dst,
                                      headers={**FRESH, **write_headers(meta)})
        except BaseException:
            self.retirement.drop(replaced)
            raise
        self.retirement.settle(dst, replaced)
        return Written(stored.etag or old.etag or "", old.size or 0, meta,
                       stored.last_modified).info(dst)

    def _copy_large(self, src: str, dst: str, meta: ObjectMeta,
                    precondition: Precondition | None, etag: str | None) -> ObjectInfo:
        parts = self.uploads.new_parts(dst, meta)
        try:
            entries = self._copy_segments(src, dst, parts)
            info = self.uploads.commit_manifest(dst, entries, parts, meta, precondition,
                                                etag=etag)
        except BaseException as exc:
            self.uploads.remove_parts(parts, exc)
            raise
        self.uploads.settle_parts(dst, parts)
        return info

    def _copy_segments(self, src: str, dst: str, parts: Parts) -> list[ManifestEntry]:
        """Each segment of ``src``, copied by Swift into a segment of ``dst``'s upload."""
        headers = {**FRESH, "Content-Type": DEFAULT_CONTENT_TYPE, **parts.headers}
        copies: dict[str, ManifestEntry] = {}
        entries = []
        try:
            for leaf in self.client.leaf_entries(src, dst):
                if leaf["path"] not in copies:  # a segment listed twice is copied once
                    name = parts.new_name()
                    stored = self.client.copy(self.client.name_of(leaf["path"]), name,
                                              manifest_only=False, path=dst, headers=headers)
                    copies[leaf["path"]] = self.client.entry(name, stored.etag,
                                                             leaf["size_bytes"])
                entries.append(copies[leaf["path"]])
        except NotFound:  # replaced or deleted meanwhile: its segments went
            raise NotFound(f"{src} changed or vanished while it was copied", src) from None
        return entries

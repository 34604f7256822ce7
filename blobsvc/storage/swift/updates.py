"""update_object: a Swift POST, which replaces what an object carries and keeps its bytes.

Why a POST: Swift replaces all user metadata, the stored headers and
``X-Delete-At`` of an object in place (the ETag and bytes stay, a large
object's manifest included), and keeps the content type unless one is
sent. One is sent when the caller names one, or when the expiry changes,
since the content type carries the expiry parameter that listings read
(see :mod:`.objectmeta`). The precondition judges the version a HEAD
finds right before (best effort, like every write of this driver). A
large object's segments follow a changed expiry (see :mod:`.expiry`), and
so do those of a version that replaced the object in the middle.
Swift moves Last-Modified to the POST's time, so ``ctime`` does too.
"""

from __future__ import annotations

import dataclasses

from blobsvc.storage.contract import ObjectInfo, ObjectMeta, Precondition
from blobsvc.storage.errors import NotFound
from blobsvc.storage.swift.client import ContainerClient
from blobsvc.storage.swift.expiry import SegmentExpiry
from blobsvc.storage.swift.headers import Written, info_from_headers, is_large
from blobsvc.storage.swift.objectmeta import (
    bind_etag,
    carried,
    content_type_header,
    meta_headers,
)


class Updater:
    """POSTs of new metadata to one container's objects."""

    def __init__(self, client: ContainerClient, expiry: SegmentExpiry) -> None:
        self.client = client
        self.expiry = expiry

    def update(self, path: str, meta: ObjectMeta, precondition: Precondition) -> ObjectInfo:
        headers = self.client.head(path)
        if headers is None:
            raise NotFound(f"no object at {path}", path)
        current = info_from_headers(path, headers)
        precondition(current)
        content_type = meta.content_type or current.content_type
        sent = meta_headers(meta)
        if meta.content_type is not None or meta.expires_at != current.expires_at:
            kept = carried(headers).etag  # a large object's, bound to this version
            sent["Content-Type"] = content_type_header(
                content_type, meta.expires_at,
                None if kept is None else bind_etag(kept, headers["etag"].strip('"')))

        def post() -> None:
            self.client.post(path, sent, path)

        if is_large(headers) and meta.expires_at != current.expires_at:
            segments = self.client.listed_names(path, path)
            self.expiry.move([(segments, current.expires_at)], meta.expires_at, path, post)
        else:
            post()
        self._follow_a_replacement(path, current, meta.expires_at)
        stored = dataclasses.replace(meta, content_type=content_type)
        return Written(current.etag or "", current.size or 0, stored, None).info(path)

    def _follow_a_replacement(self, path: str, judged: ObjectInfo, expires_at: int | None) -> None:
        """A write that replaced the object between the HEAD and the POST got
        the POST instead: if it is a large object, its segments take the
        expiry the POST gave its manifest, so none expires before it (or
        outlives it for good). One HEAD more per update."""
        headers = self.client.head(path)
        if headers is None or not is_large(headers):
            return
        if info_from_headers(path, headers).etag == judged.etag:
            return
        self.expiry.set(self.client.listed_names(path, path), expires_at, path)

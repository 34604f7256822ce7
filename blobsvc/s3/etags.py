"""The ETag S3 gives an object made of parts, kept with the object.

S3 names an object CompleteMultipartUpload made ``<md5 of the parts'
MD5s>-<parts>``; clients compare it with what they computed while
uploading. The drivers give a joined object an ETag of their own (the
MD5 of its bytes; on Swift, this same composite ETag), so the S3 ETag is stored with the
object as the user metadata ``s3-multipart-etag``: atomically with the
bytes, kept by a move or copy (same bytes, same ETag), gone with a
rewrite or a metadata update. Through S3, HEAD and GET answer with it (and
``If-Match``/``If-None-Match`` naming it are judged as naming the object),
and the metadata itself is not shown. The native API shows its own ETag,
and the S3 one as ``X-Object-Meta-S3-Multipart-Etag``. Listings carry no
metadata, so an S3 listing shows the driver's ETag for such an object
(on Swift, the same one).
"""

from __future__ import annotations

import re
from typing import Mapping

from blobsvc.http import exchange
from blobsvc.native.metaheaders import META_PREFIX
from blobsvc.storage import ObjectInfo, ObjectMeta, StorageDriver
from blobsvc.storage.errors import NotFound, StorageError

#: The user metadata that holds it.
META_NAME = "s3-multipart-etag"

_MULTIPART_ETAG = re.compile(r"^[0-9a-f]{32}-[0-9]{1,5}$")
_CONDITIONS = ("If-Match", "If-None-Match")


def with_etag(meta: ObjectMeta, etag: str) -> ObjectMeta:
    """``meta`` carrying the S3 ETag ``etag``."""
    return ObjectMeta(content_type=meta.content_type, headers=meta.headers,
                      metadata={**meta.metadata, META_NAME: etag}, expires_at=meta.expires_at)


def s3_etag(metadata: Mapping[str, str] | None, native: str | None) -> str | None:
    """The ETag S3 shows for an object with ``metadata`` and ETag ``native``."""
    stored = (metadata or {}).get(META_NAME, "")
    return stored if _MULTIPART_ETAG.match(stored) else native


def report_in_headers() -> None:
    """A native GET/HEAD answer's headers, with the S3 ETag in place of
    the driver's and the metadata that held it removed."""
    headers = exchange.response().headers
    stored = headers.pop(META_PREFIX + META_NAME, None)
    if stored is not None and _MULTIPART_ETAG.match(stored):
        headers["ETag"] = f'"{stored}"'


def translate_conditions(driver: StorageDriver, path: str) -> None:
    """``If-Match``/``If-None-Match`` naming an object's S3 ETag, made to
    name its native ETag, which the native read judges atomically."""
    headers = exchange.request().headers
    if not any("-" in headers.get(name, "") for name in _CONDITIONS):
        return
    try:
        info: ObjectInfo = driver.stat_object(path)
    except (NotFound, StorageError):
        return  # the read answers for it
    stored = s3_etag(info.metadata, None)
    if stored is None or info.etag is None:
        return
    for name in _CONDITIONS:
        if name in headers:
            headers[name] = headers[name].replace(f'"{stored}"', f'"{info.etag}"').replace(
                stored, info.etag)

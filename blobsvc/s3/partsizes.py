"""Where each part of an object made by CompleteMultipartUpload lies, for
GetObject and HeadObject with ``?partNumber``.

The joined object keeps no part boundaries of its own, so Complete writes
them down. Nearly every client uploads equal parts and a shorter (or
longer) last one: then the size of a part is all it takes, kept as the
metadata ``s3-multipart-parts`` beside the S3 ETag (see
:mod:`blobsvc.s3.etags`), atomically with the bytes, so it can never
describe other bytes: the count is the ETag's ``-N``, the last part what
is left. Other layouts would not fit in metadata (10 000 sizes), so the
metadata says ``listed`` and the sizes go to a private object of the key,
written before the join, holding the key and the S3 ETag. It is believed
only while both match the object's, so no object rewritten since through
either API is read with another's boundaries. A later Complete of the key
replaces or removes it. S3's answers do not show the metadata.

An object with an S3 ETag but no layout that can be believed (joined
before boundaries were kept, copied or moved from one with a record, or
its record lost to a race of two Completes) has parts that cannot be
told apart: ``NotImplemented``, never a guess.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from typing import Callable, Mapping

from blobsvc.http import exchange
from blobsvc.http.ranges import ByteRange
from blobsvc.s3 import etags
from blobsvc.s3.errors import S3Error
from blobsvc.s3.uploads import AREA, MAX_PART_NUMBER
from blobsvc.storage import ObjectInfo, ObjectMeta, StorageDriver, Upload
from blobsvc.storage.errors import StorageError

log = logging.getLogger(__name__)

#: The metadata that holds the layout: one part's size, or LISTED.
META_NAME = "s3-multipart-parts"
#: The layout is in the key's record.
LISTED = "listed"
#: The longest layout metadata can hold (S3's largest part, 5 GiB).
LONGEST = str(5 * 1024 ** 3)
#: Where the records are, one directory per bucket, beside its uploads.
RECORDS = "completed"


def layout_of(sizes: list[int]) -> str:
    """The metadata for parts of ``sizes``: their common size, or LISTED."""
    if len(set(sizes[:-1])) > 1:
        return LISTED
    return str(sizes[0])


def with_layout(meta: ObjectMeta, layout: str) -> ObjectMeta:
    """``meta`` carrying the layout metadata ``layout``."""
    return dataclasses.replace(meta, metadata={**meta.metadata, META_NAME: layout})


def part_number() -> int | None:
    """``?partNumber`` of a GetObject or HeadObject, checked as S3 checks it."""
    raw = exchange.request().params.get("partNumber")
    if raw is None:
        return None
    if not (isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 5
            and 1 <= int(raw) <= MAX_PART_NUMBER):
        raise S3Error("InvalidArgument",
                      f"partNumber must be an integer from 1 to {MAX_PART_NUMBER}")
    if "Range" in exchange.request().headers:
        raise S3Error("InvalidRequest", "a Range header and partNumber cannot go together")
    return int(raw)


class PartSizes:
    """The records of the layouts metadata cannot hold, and reading layouts."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    def keep(self, bucket: str, key: str, etag: str, sizes: list[int]) -> str:
        """Before a Complete joins parts of ``sizes``: the layout metadata,
        with the record written first where it says LISTED."""
        layout = layout_of(sizes)
        if layout == LISTED:
            record = json.dumps({"key": key, "etag": etag, "sizes": sizes}).encode()
            self.driver.put_private(self._name(bucket, key), Upload(record))
        return layout

    def forget(self, bucket: str, key: str) -> None:
        """After a Complete whose layout metadata holds: an earlier record
        goes. The object is made by then, so a failure here only leaves a
        record no read believes."""
        try:
            self.driver.delete_private(self._name(bucket, key))
        except StorageError as exc:
            log.warning("removing the part sizes of %s/%s failed: %s", bucket, key, exc.message)

    def selector(self, bucket: str, key: str, number: int) -> Callable[[ObjectInfo], ByteRange]:
        """What part ``number`` of the object read is, as the read's range,
        decided on the very version it sends."""
        def select(info: ObjectInfo) -> ByteRange:
            size = info.size or 0
            etag = etags.s3_etag(info.metadata, None)
            if etag is None:  # not made of parts: one part, the whole object
                return _part(number, [size], None)
            sizes = self._sizes(bucket, key, etag, size, info.metadata or {})
            if sizes is None:
                raise S3Error("NotImplemented", "the part boundaries of this object were "
                                                "not kept; read it by Range")
            return _part(number, sizes, len(sizes))
        return select

    def _sizes(self, bucket: str, key: str, etag: str, size: int,
               metadata: Mapping[str, str]) -> list[int] | None:
        """The sizes of the object's parts, when its layout can be believed."""
        count = int(etag.rsplit("-", 1)[1])
        layout = metadata.get(META_NAME, "")
        if layout == LISTED:
            sizes = self._listed(bucket, key, etag)
        elif layout.isascii() and layout.isdigit() and count >= 1:
            sizes = [int(layout)] * (count - 1)
            sizes.append(size - sum(sizes))
        else:
            return None
        if sizes is None or len(sizes) != count or sum(sizes) != size or min(sizes) < 0:
            return None
        return sizes

    def _listed(self, bucket: str, key: str, etag: str) -> list[int] | None:
        raw = self.driver.read_private(self._name(bucket, key))
        if raw is None:
            return None
        record = json.loads(raw)
        if record.get("key") != key or record.get("etag") != etag:
            return None  # another object's, at this key before or after this one
        sizes = record.get("sizes")
        return sizes if isinstance(sizes, list) and all(
            isinstance(item, int) for item in sizes) else None

    @staticmethod
    def _name(bucket: str, key: str) -> str:
        """Keys may be long and hold ``/``: the record is named by a digest."""
        return f"{AREA}/{bucket}/{RECORDS}/{hashlib.sha256(key.encode()).hexdigest()}"


def _part(number: int, sizes: list[int], count: int | None) -> ByteRange:
    """Part ``number`` of parts of ``sizes``, with S3's count header where
    the object was made of parts; InvalidPartNumber past the last."""
    if number > len(sizes):
        raise S3Error("InvalidPartNumber", f"the object has {len(sizes)} part(s)")
    if count is not None:
        exchange.response().headers["x-amz-mp-parts-count"] = str(count)
    return ByteRange(sum(sizes[:number - 1]), sizes[number - 1])

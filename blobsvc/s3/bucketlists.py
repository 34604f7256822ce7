"""ListObjectsV2, ListObjects (V1) and ListObjectVersions: one page of
keys (see :mod:`blobsvc.s3.listing`) in each one's XML.

Every object has one version, ``null``, the latest. ``encoding-type=url``
percent-encodes keys and prefixes in the answer, as SDKs ask by default
so that any key survives XML.
"""

from __future__ import annotations

import base64
import binascii
from typing import Callable
from urllib.parse import quote
from xml.etree.ElementTree import Element

from blobsvc.native.resources import query_param
from blobsvc.s3 import xmldoc
from blobsvc.s3.bucketops import add_owner
from blobsvc.s3.buckets import Buckets
from blobsvc.s3.errors import S3Error
from blobsvc.s3.headers import iso_time
from blobsvc.s3.listing import MAX_KEYS, Page, list_page
from blobsvc.storage import ObjectInfo, StorageDriver


class BucketListings:
    def __init__(self, driver: StorageDriver, buckets: Buckets) -> None:
        self.driver = driver
        self.buckets = buckets

    def list_objects_v2(self, bucket: str, key: str) -> bytes:
        token = query_param("continuation-token")
        start_after = query_param("start-after")
        after = _decode_token(token) if token is not None else start_after
        request, page = self._page(bucket, after)
        head: list[tuple[str, object]] = []
        if token is not None:
            head.append(("ContinuationToken", token))
        if start_after is not None:
            head.append(("StartAfter", request.encode(start_after)))
        head += [("KeyCount", len(page.contents) + len(page.prefixes)),
                 ("MaxKeys", request.max_keys)]
        return _answer("ListBucketResult", bucket, request, page, head,
                       lambda last: [("NextContinuationToken", _encode_token(last))],
                       owner=query_param("fetch-owner") == "true")

    def list_objects(self, bucket: str, key: str) -> bytes:
        marker = query_param("marker")
        request, page = self._page(bucket, marker)
        return _answer("ListBucketResult", bucket, request, page,
                       [("Marker", request.encode(marker or "")), ("MaxKeys", request.max_keys)],
                       lambda last: [("NextMarker", request.encode(last))])

    def list_object_versions(self, bucket: str, key: str) -> bytes:
        """Every object once, as its only version ``null``."""
        key_marker = query_param("key-marker")
        request, page = self._page(bucket, key_marker)
        return _answer("ListVersionsResult", bucket, request, page,
                       [("KeyMarker", request.encode(key_marker or "")),
                        ("VersionIdMarker", query_param("version-id-marker") or ""),
                        ("MaxKeys", request.max_keys)],
                       lambda last: [("NextKeyMarker", request.encode(last)),
                                     ("NextVersionIdMarker", "null")],
                       entry="Version", extra=[("VersionId", "null"), ("IsLatest", True)])

    def _page(self, bucket: str, after: str | None) -> tuple[ListRequest, Page]:
        request = ListRequest.from_query()
        self.buckets.require(bucket)
        return request, list_page(self.driver, bucket, request.prefix, request.delimiter,
                                  after or None, request.max_keys)


class ListRequest:
    """What every listing reads from the query."""

    def __init__(self, prefix: str, delimiter: str | None, max_keys: int, url_encoded: bool) -> None:
        self.prefix = prefix
        self.delimiter = delimiter
        self.max_keys = max_keys
        self.url_encoded = url_encoded

    @classmethod
    def from_query(cls) -> ListRequest:
        encoding = query_param("encoding-type")
        if encoding not in (None, "url"):
            raise S3Error("InvalidArgument", "encoding-type is url, or absent")
        delimiter = query_param("delimiter") or None
        return cls(query_param("prefix") or "", delimiter, _max_keys(query_param("max-keys")),
                   encoding == "url")

    def encode(self, text: str) -> str:
        return quote(text, safe="/") if self.url_encoded else text

    def add_common(self, root: Element) -> None:
        if self.delimiter is not None:
            xmldoc.add(root, "Delimiter", self.encode(self.delimiter))
        if self.url_encoded:
            xmldoc.add(root, "EncodingType", "url")


def _answer(tag: str, bucket: str, request: ListRequest, page: Page,
            head: list[tuple[str, object]],
            next_fields: Callable[[str], list[tuple[str, object]]], entry: str = "Contents",
            owner: bool = True, extra: list[tuple[str, object]] | None = None) -> bytes:
    """A listing's document: its head fields, the continuation where the
    page is truncated, then the page's objects and common prefixes."""
    root = xmldoc.document(tag)
    xmldoc.add_all(root, [("Name", bucket), ("Prefix", request.encode(request.prefix)), *head])
    request.add_common(root)
    xmldoc.add(root, "IsTruncated", page.truncated)
    if page.truncated and page.last_key is not None:
        xmldoc.add_all(root, next_fields(page.last_key))
    for item_key, info in page.contents:
        _add_object(root, entry, request.encode(item_key), info, owner, extra)
    _add_prefixes(root, page, request.encode)
    return xmldoc.send_xml(root)


def _add_object(root: Element, tag: str, key: str, info: ObjectInfo, owner: bool,
                extra: list[tuple[str, object]] | None = None) -> Element:
    entry = xmldoc.add(root, tag)
    xmldoc.add(entry, "Key", key)
    xmldoc.add_all(entry, extra or [])
    xmldoc.add_all(entry, [("LastModified", iso_time(info.ctime)), ("ETag", f'"{info.etag}"'),
                           ("Size", info.size or 0), ("StorageClass", "STANDARD")])
    if owner:
        add_owner(entry)
    return entry


def _add_prefixes(root: Element, page: Page, encode: Callable[[str], str]) -> None:
    for prefix in page.prefixes:
        xmldoc.add(xmldoc.add(root, "CommonPrefixes"), "Prefix", encode(prefix))


def _max_keys(raw: str | None) -> int:
    if raw is None:
        return MAX_KEYS
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise S3Error("InvalidArgument", "max-keys must be a non-negative integer")
    return min(int(raw), MAX_KEYS)


def _encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def _decode_token(token: str) -> str:
    try:
        return base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeError included
        raise S3Error("InvalidArgument", "the continuation token is not one this "
                                         "service gave") from None

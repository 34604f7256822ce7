"""Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort,
ListParts and ListMultipartUploads.

Parts are private objects of the driver (see :mod:`blobsvc.s3.uploads`),
streamed to storage as a PutObject's body is, and checked the same way
(signature, aws-chunked framing, Content-MD5, checksums) before they
commit; uploading a part number again replaces the part. Nothing is
visible at the key until CompleteMultipartUpload, which is the driver's
``cat`` of the parts it names into the key: the object appears whole or
not at all (on Swift, an SLO assembled server side), and the parts are
consumed by it. A Complete racing an Abort or another Complete finds its
parts gone and answers NoSuchUpload, or made the object; never a part of
it. The object's ETag is S3's ``md5-of-md5s-N`` (see :mod:`blobsvc.s3.etags`),
and where its parts lie is kept with it (see :mod:`blobsvc.s3.partsizes`).
"""

from __future__ import annotations

from urllib.parse import quote

from blobsvc.config import ServerSettings
from blobsvc.http import context, exchange, preconditions
from blobsvc.native.resources import content_md5, query_param
from blobsvc.s3 import partsizes, xmldoc
from blobsvc.s3.access import S3Access
from blobsvc.s3.bucketops import add_owner
from blobsvc.s3.buckets import Buckets
from blobsvc.s3.errors import S3Error
from blobsvc.s3.etags import with_etag
from blobsvc.s3.headers import iso_time, meta_from_s3_request
from blobsvc.s3.names import object_path
from blobsvc.s3.objects import S3Objects, copy_source
from blobsvc.s3.partlist import (
    MAX_COMPLETE_BODY,
    check_part_list,
    multipart_etag,
    parse_part_list,
)
from blobsvc.s3.partsizes import with_layout
from blobsvc.s3.uploads import MAX_PART_NUMBER, Uploads, UploadState, no_such_upload
from blobsvc.storage import StorageDriver, Upload
from blobsvc.storage.errors import Conflict, MissingChunks, NotFound

#: S3's largest part.
MAX_PART_SIZE = 5 * 1024 ** 3
#: Parts or uploads one listing page holds at most (and by default).
MAX_PAGE = 1000
#: The longest S3 ETag Complete can store with an object.
LONGEST_ETAG = f"{'0' * 32}-{MAX_PART_NUMBER}"


class Multipart:
    def __init__(self, driver: StorageDriver, settings: ServerSettings, buckets: Buckets,
                 access: S3Access, objects: S3Objects, uploads: Uploads) -> None:
        self.driver = driver
        self.settings = settings
        self.buckets = buckets
        self.access = access
        self.objects = objects
        self.uploads = uploads

    def create(self, bucket: str, key: str) -> bytes:
        object_path(bucket, key)  # a key no path can hold is refused now, not at Complete
        self.buckets.require(bucket)
        meta = meta_from_s3_request()
        # Refused now if the ETag and part layout will not fit beside the metadata.
        with_layout(with_etag(meta, LONGEST_ETAG), partsizes.LONGEST)
        principal = context.current().principal
        state = self.uploads.create(bucket, key, meta, principal.name if principal else "")
        self.uploads.reclaim_if_due()
        root = xmldoc.document("InitiateMultipartUploadResult")
        xmldoc.add_all(root, [("Bucket", bucket), ("Key", key), ("UploadId", state.upload_id)])
        return xmldoc.send_xml(root)

    def upload_part(self, bucket: str, key: str) -> bytes:
        state, number = self._upload_and_part(bucket, key)
        body, expected = self.access.upload_body()
        max_size = self._max_part_size()
        if expected is not None and expected > max_size:
            raise S3Error("EntityTooLarge", f"a part holds at most {max_size} bytes")
        headers = exchange.request().headers
        upload = Upload(body, expected_size=expected, max_size=max_size,
                        content_md5=content_md5(headers.get("Content-MD5")),
                        chunk_size=self.settings.chunk_size)
        try:
            info = self.uploads.put_part(state, number, upload)
        finally:
            context.current().bytes_in = upload.size
        self._still_there(state, number)
        exchange.response().headers["ETag"] = f'"{info.etag}"'
        return b""

    def upload_part_copy(self, bucket: str, key: str) -> bytes:
        state, number = self._upload_and_part(bucket, key)
        source_bucket, source_key = copy_source()
        source = object_path(source_bucket, source_key)
        self.objects.check_source_conditions(source_bucket, source_key, source)
        try:
            offset, length = _copy_range(self.driver.get_object_size(source))
            if length > self._max_part_size():
                raise S3Error("EntityTooLarge", f"a part holds at most {self._max_part_size()} bytes")
            _, stream = self.driver.open_object(source, offset, length)
        except (NotFound, Conflict):
            self.buckets.require(source_bucket)
            raise S3Error("NoSuchKey", f"no object with key {source_key}") from None
        with stream:
            part = self.uploads.put_part(state, number, Upload(stream, expected_size=length))
        self._still_there(state, number)
        root = xmldoc.document("CopyPartResult")
        xmldoc.add_all(root, [("LastModified", iso_time(part.ctime)), ("ETag", f'"{part.etag}"')])
        return xmldoc.send_xml(root)

    def complete(self, bucket: str, key: str) -> bytes:
        state = self._upload(bucket, key)
        listed = parse_part_list(xmldoc.parse_xml(self.access.read_document(MAX_COMPLETE_BODY)))
        stored = self.uploads.named_parts(state, listed)
        try:
            check_part_list(listed, stored)
        except S3Error:
            # An Abort or another Complete that took the parts meanwhile
            # ended the upload, or is ending it: say so rather than blame
            # the part list.
            if not self.uploads.exists(state) or self.uploads.completing(state):
                raise no_such_upload(state.upload_id) from None
            raise
        etag = multipart_etag([stored[number].etag or "" for number, _ in listed])
        path = object_path(bucket, key)
        self.buckets.require(bucket)
        precondition = preconditions.write_precondition(exchange.request().headers, "PUT")
        part_sizes = self.objects.part_sizes
        layout = part_sizes.keep(bucket, key, etag, [stored[number].size or 0
                                                     for number, _ in listed])
        self.uploads.mark_completing(state)
        try:
            self.driver.cat_private(path, [self.uploads.part_path(state, number)
                                           for number, _ in listed],
                                    self.settings.max_object_size, precondition,
                                    with_layout(with_etag(state.meta, etag), layout))
        except BaseException as exc:
            self.uploads.unmark_completing(state)
            if isinstance(exc, MissingChunks):  # an Abort or another Complete took them
                raise no_such_upload(state.upload_id) from None
            raise
        context.current().wrote_object = True
        if layout != partsizes.LISTED:
            part_sizes.forget(bucket, key)
        self.uploads.discard_parts(state, {number for number, _ in listed})
        root = xmldoc.document("CompleteMultipartUploadResult")
        xmldoc.add_all(root, [("Location", f"/{bucket}/{quote(key)}"), ("Bucket", bucket),
                              ("Key", key), ("ETag", f'"{etag}"')])
        return xmldoc.send_xml(root)

    def abort(self, bucket: str, key: str) -> None:
        state = self._upload(bucket, key)
        self.uploads.remove(bucket, state.upload_id)
        response = exchange.response()
        response.status = 204
        response.headers.pop("Content-Type", None)

    def list_parts(self, bucket: str, key: str) -> bytes:
        state = self._upload(bucket, key)
        after = _number(query_param("part-number-marker"), "part-number-marker", 0)
        limit = min(_number(query_param("max-parts"), "max-parts", MAX_PAGE), MAX_PAGE)
        found = self.uploads.parts(state, after, limit)
        page, truncated = found[:limit], len(found) > limit
        root = xmldoc.document("ListPartsResult")
        xmldoc.add_all(root, [("Bucket", bucket), ("Key", key), ("UploadId", state.upload_id)])
        _add_people(root, state)
        xmldoc.add_all(root, [("StorageClass", "STANDARD"), ("PartNumberMarker", after),
                              ("NextPartNumberMarker", page[-1][0] if page else after),
                              ("MaxParts", limit), ("IsTruncated", truncated)])
        for number, info in page:
            xmldoc.add_all(xmldoc.add(root, "Part"), [
                ("PartNumber", number), ("LastModified", iso_time(info.ctime)),
                ("ETag", f'"{info.etag}"'), ("Size", info.size or 0)])
        return xmldoc.send_xml(root)

    def list_uploads(self, bucket: str, key: str) -> bytes:
        """The bucket's uploads in progress, by key then age (one read of
        state per upload of the bucket: they are few and short-lived)."""
        self.buckets.require(bucket)
        self.uploads.reclaim_if_due()
        prefix = query_param("prefix") or ""
        delimiter = query_param("delimiter") or None
        key_marker = query_param("key-marker") or ""
        id_marker = query_param("upload-id-marker") or ""
        limit = min(_number(query_param("max-uploads"), "max-uploads", MAX_PAGE), MAX_PAGE)
        states = sorted((s for s in self.uploads.states(bucket) if s.key.startswith(prefix)
                         and _after(s, key_marker, id_marker)),
                        key=lambda s: (s.key, s.upload_id))
        entries, prefixes, truncated = _page(states, prefix, delimiter, limit)
        root = xmldoc.document("ListMultipartUploadsResult")
        xmldoc.add_all(root, [("Bucket", bucket), ("KeyMarker", key_marker),
                              ("UploadIdMarker", id_marker)])
        if truncated and entries:
            xmldoc.add_all(root, [("NextKeyMarker", entries[-1].key),
                                  ("NextUploadIdMarker", entries[-1].upload_id)])
        xmldoc.add_all(root, [("Prefix", prefix), ("MaxUploads", limit), ("IsTruncated", truncated)])
        if delimiter is not None:
            xmldoc.add(root, "Delimiter", delimiter)
        for state in entries:
            entry = xmldoc.add(root, "Upload")
            xmldoc.add_all(entry, [("Key", state.key), ("UploadId", state.upload_id)])
            _add_people(entry, state)
            xmldoc.add_all(entry, [("StorageClass", "STANDARD"),
                                   ("Initiated", iso_time(state.created))])
        for common in prefixes:
            xmldoc.add(xmldoc.add(root, "CommonPrefixes"), "Prefix", common)
        return xmldoc.send_xml(root)

    def _upload(self, bucket: str, key: str) -> UploadState:
        upload_id = query_param("uploadId") or ""
        return self.uploads.get(bucket, key, upload_id)

    def _upload_and_part(self, bucket: str, key: str) -> tuple[UploadState, int]:
        number = _number(query_param("partNumber"), "partNumber", 0)
        if not 1 <= number <= MAX_PART_NUMBER:
            raise S3Error("InvalidArgument", f"partNumber is 1 to {MAX_PART_NUMBER}")
        return self._upload(bucket, key), number

    def _still_there(self, state: UploadState, number: int) -> None:
        """A part stored while its upload was aborted (or completed) is
        removed again: an upload's parts never outlive its state."""
        if not self.uploads.exists(state):
            self.driver.delete_private(self.uploads.part_path(state, number))
            raise no_such_upload(state.upload_id)

    def _max_part_size(self) -> int:
        limit = self.settings.max_object_size
        return MAX_PART_SIZE if limit is None else min(limit, MAX_PART_SIZE)


def _add_people(parent: xmldoc.Element, state: UploadState) -> None:
    initiator = xmldoc.add(parent, "Initiator")
    xmldoc.add_all(initiator, [("ID", state.initiator), ("DisplayName", state.initiator)])
    add_owner(parent)


def _after(state: UploadState, key_marker: str, id_marker: str) -> bool:
    """After the markers, as S3 pages uploads: by key, then by id within the marker's key."""
    if not key_marker:
        return True
    if state.key != key_marker:
        return state.key > key_marker
    return bool(id_marker) and state.upload_id > id_marker


def _page(states: list[UploadState], prefix: str, delimiter: str | None,
          limit: int) -> tuple[list[UploadState], list[str], bool]:
    """Up to ``limit`` uploads and common prefixes, and whether more follow."""
    entries: list[UploadState] = []
    prefixes: list[str] = []
    for state in states:
        if len(entries) + len(prefixes) >= limit:
            return entries, prefixes, True
        if delimiter is not None and delimiter in state.key[len(prefix):]:
            common = state.key[:state.key.index(delimiter, len(prefix)) + len(delimiter)]
            if common not in prefixes:
                prefixes.append(common)
            continue
        entries.append(state)
    return entries, prefixes, False


def _copy_range(size: int) -> tuple[int, int]:
    """x-amz-copy-source-range ``bytes=first-last`` within the source: offset and length."""
    raw = exchange.request().headers.get("X-Amz-Copy-Source-Range")
    if raw is None:
        return 0, size
    first, _, last = raw.removeprefix("bytes=").partition("-")
    if not (raw.startswith("bytes=") and first.isdigit() and last.isdigit()
            and int(first) <= int(last)):
        raise S3Error("InvalidArgument", "x-amz-copy-source-range is bytes=first-last")
    if int(last) >= size:
        raise S3Error("InvalidRange", "x-amz-copy-source-range lies past the source's end")
    return int(first), int(last) - int(first) + 1


def _number(raw: str | None, name: str, default: int) -> int:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise S3Error("InvalidArgument", f"{name} must be a non-negative integer")
    return int(raw)


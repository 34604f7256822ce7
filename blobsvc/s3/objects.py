"""PutObject, GetObject, HeadObject, DeleteObject and CopyObject.

Each is the native API's operation on the path ``bucket/key`` (the same
streaming, atomic writes, preconditions and ranges, through the native
resource itself), with S3's spelling of metadata, S3's answers, and S3's
view of a missing bucket: a write into one is refused, a read that finds
nothing says which of bucket and key is missing. A read of one part
(``?partNumber``) is the native ranged read of that part's bytes.
"""

from __future__ import annotations

from typing import Iterator
from urllib.parse import unquote

from blobsvc.config import ServerSettings
from blobsvc.http import context, exchange, preconditions
from blobsvc.native.resources import ObjectResource, RangeSelector
from blobsvc.s3 import etags, xmldoc
from blobsvc.s3.access import S3Access
from blobsvc.s3.buckets import Buckets
from blobsvc.s3.errors import S3Error
from blobsvc.s3.headers import apply_overrides, iso_time, meta_from_s3_request, to_s3_headers
from blobsvc.s3.names import can_be_stored, check_bucket_name, object_path
from blobsvc.s3.partsizes import PartSizes, part_number
from blobsvc.storage import StorageDriver
from blobsvc.storage.errors import Conflict, NotFound

#: CopyObject's conditions on the source, and the header each stands for.
COPY_SOURCE_CONDITIONS = {
    "X-Amz-Copy-Source-If-Match": "If-Match",
    "X-Amz-Copy-Source-If-None-Match": "If-None-Match",
    "X-Amz-Copy-Source-If-Modified-Since": "If-Modified-Since",
    "X-Amz-Copy-Source-If-Unmodified-Since": "If-Unmodified-Since",
}


class S3Objects:
    def __init__(self, driver: StorageDriver, settings: ServerSettings, buckets: Buckets,
                 access: S3Access) -> None:
        self.driver = driver
        self.settings = settings
        self.buckets = buckets
        self.access = access
        self.native = ObjectResource(driver, settings, read_meta=meta_from_s3_request,
                                     read_body=access.upload_body)
        self.part_sizes = PartSizes(driver)

    def put_object(self, bucket: str, key: str) -> bytes:
        path = object_path(bucket, key)
        self.buckets.require(bucket)
        upload = self.native.upload_from_request(path)
        try:
            info = self.driver.put_object(path, upload)
        finally:
            context.current().bytes_in = upload.size
        context.current().wrote_object = True
        exchange.response().headers["ETag"] = f'"{info.etag}"'
        return b""

    def get_object(self, bucket: str, key: str) -> Iterator[bytes] | bytes:
        params = exchange.request().params
        if any(name in params for name in ("response-content-type", "response-expires",
                                           "response-content-disposition",
                                           "response-content-encoding",
                                           "response-content-language",
                                           "response-cache-control")) \
                and not self.access.may_override_response():
            raise S3Error("InvalidRequest", "response-* parameters need a signed request")
        select = self._part_selector(bucket, key)
        body = self._read(bucket, key, lambda path: self.native.GET(path, select))
        to_s3_headers()
        if exchange.response().status in (200, 206):
            apply_overrides(params, self.settings.inline_active_content)
        return body

    def head_object(self, bucket: str, key: str) -> bytes:
        select = self._part_selector(bucket, key)
        self._read(bucket, key, lambda path: self.native.HEAD(path, select))
        to_s3_headers()
        return b""

    def _part_selector(self, bucket: str, key: str) -> RangeSelector | None:
        """The range of ``?partNumber``, if asked (see :mod:`blobsvc.s3.partsizes`)."""
        number = part_number()
        return None if number is None else self.part_sizes.selector(bucket, key, number)

    def _read(self, bucket: str, key: str, read):  # type: ignore[no-untyped-def]
        if not can_be_stored(bucket, key):
            self.buckets.require(bucket)
            raise _no_such_key(key)
        path = object_path(bucket, key)
        etags.translate_conditions(self.driver, path)
        try:
            return read(path)
        except (NotFound, Conflict):
            self.buckets.require(bucket)
            raise _no_such_key(key) from None

    def delete_object(self, bucket: str, key: str) -> None:
        """204 whether or not the key existed, as S3 answers."""
        try:
            if not can_be_stored(bucket, key):
                raise NotFound(f"no object with key {key}")
            self.native.DELETE(object_path(bucket, key))
        except (NotFound, Conflict):  # a "directory" is no key either
            self.buckets.require(bucket)
        response = exchange.response()
        response.status = 204
        response.headers.pop("Content-Type", None)

    def copy_object(self, bucket: str, key: str) -> bytes:
        target = object_path(bucket, key)
        source_bucket, source_key = copy_source()
        source = object_path(source_bucket, source_key)
        directive = exchange.request().headers.get("X-Amz-Metadata-Directive", "COPY")
        if directive not in ("COPY", "REPLACE"):
            raise S3Error("InvalidArgument", "x-amz-metadata-directive is COPY or REPLACE")
        if source == target and directive == "COPY":
            raise S3Error("InvalidRequest", "copying an object onto itself needs "
                                            "x-amz-metadata-directive: REPLACE")
        self.buckets.require(bucket)
        self.check_source_conditions(source_bucket, source_key, source)
        headers = exchange.request().headers
        precondition = preconditions.write_precondition(headers, "PUT")
        meta = meta_from_s3_request() if directive == "REPLACE" else None
        try:
            info = self.driver.copy_object(source, target, precondition, meta)
        except NotFound as exc:
            if exc.path != source:
                raise
            self.buckets.require(source_bucket)
            raise _no_such_key(source_key) from None
        context.current().wrote_object = True
        result = xmldoc.document("CopyObjectResult")
        etag = etags.s3_etag(info.metadata, info.etag)  # a multipart source's, copied with it
        xmldoc.add_all(result, [("LastModified", iso_time(info.ctime)), ("ETag", f'"{etag}"')])
        return xmldoc.send_xml(result)

    def check_source_conditions(self, bucket: str, key: str, source: str) -> None:
        """x-amz-copy-source-if-*: judged on the source as found now; any
        that fails is a 412, as S3 answers."""
        headers = exchange.request().headers
        conditions = {plain: headers[amz] for amz, plain in COPY_SOURCE_CONDITIONS.items()
                      if amz in headers}
        if not conditions:
            return
        try:
            info = self.driver.stat_object(source)
        except (NotFound, Conflict):
            self.buckets.require(bucket)
            raise _no_such_key(key) from None
        if preconditions.evaluate(conditions, "GET", info) is not None:
            raise S3Error("PreconditionFailed", "the copy source does not match the "
                                                "x-amz-copy-source-if-* conditions")


def copy_source() -> tuple[str, str]:
    """x-amz-copy-source: ``[/]bucket/key`` percent-encoded, perhaps with
    ``?versionId=null`` (the only version there is)."""
    raw = exchange.request().headers.get("X-Amz-Copy-Source", "")
    raw, _, query = raw.partition("?")
    if query and query != "versionId=null":
        raise S3Error("InvalidArgument", "a copy source's only version is versionId=null")
    try:
        decoded = unquote(raw.encode("latin-1").decode("utf-8"), errors="strict")
    except UnicodeError:
        raise S3Error("InvalidArgument", "x-amz-copy-source is not UTF-8") from None
    bucket, _, key = decoded.lstrip("/").partition("/")
    if not key:
        raise S3Error("InvalidArgument", "x-amz-copy-source is /bucket/key")
    return check_bucket_name(bucket), key


def _no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", f"no object with key {key}")

"""An object's metadata as S3's headers, both ways.

S3 spells user metadata ``x-amz-meta-NAME``; it is the same metadata the
native API spells ``X-Object-Meta-NAME``, stored once. The standard
representation headers (Content-Type, Content-Encoding,
Content-Disposition, Content-Language, Cache-Control, Expires) are stored
as the native API stores them. On the way out, the native answer's
headers are renamed, so one code path serves both APIs' GET and HEAD.
"""

from __future__ import annotations

import time
from typing import Mapping

from blobsvc.http import exchange
from blobsvc.native.metaheaders import DELETE_AT, META_PREFIX, metadata_from_headers
from blobsvc.native.resources import is_active_type
from blobsvc.s3 import etags, partsizes
from blobsvc.storage import ObjectMeta
from blobsvc.storage.metadata import STORED_HEADERS

AMZ_META_PREFIX = "X-Amz-Meta-"

#: GetObject's query parameters that replace a header of the answer.
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def meta_from_s3_request() -> ObjectMeta:
    """What a PutObject (or a CopyObject that replaces metadata) stores."""
    request = exchange.request()
    headers = request.headers
    stored = {name: headers[name] for name in STORED_HEADERS if headers.get(name)}
    encoding = _without_aws_chunked(stored.pop("Content-Encoding", ""))
    if encoding:
        stored["Content-Encoding"] = encoding
    return ObjectMeta(
        content_type=headers.get("Content-Type") or None,
        headers=stored,
        metadata=metadata_from_headers(headers, request.header_names, AMZ_META_PREFIX),
        expires_at=None,
    )


def _without_aws_chunked(encoding: str) -> str:
    """Content-Encoding less ``aws-chunked``: the framing of the request,
    not a coding of the object (``aws-chunked,gzip`` stores ``gzip``)."""
    codings = [coding.strip() for coding in encoding.split(",")]
    return ", ".join(coding for coding in codings if coding and coding.lower() != "aws-chunked")


def to_s3_headers() -> None:
    """The native GET/HEAD answer's headers as S3 names them. Metadata
    names go out in lower case, as stored and as S3 sends them (SDKs take
    the name after the prefix as it is spelled): set past the header map,
    which would title-case them. A multipart object's ETag is S3's (see
    :mod:`blobsvc.s3.etags`); its part layout is not shown."""
    etags.report_in_headers()
    headers = exchange.response().headers
    headers.pop(META_PREFIX + partsizes.META_NAME, None)
    for name in list(headers):
        if name.lower().startswith(META_PREFIX.lower()):
            value = headers.pop(name)
            dict.__setitem__(headers, (AMZ_META_PREFIX + name[len(META_PREFIX):]).lower(), value)
    headers.pop(DELETE_AT, None)
    headers.pop("X-Timestamp", None)


def apply_overrides(params: Mapping[str, object], inline_active: bool) -> None:
    """``response-*`` parameters replace their headers; an active type
    asked for this way is still sent as a sandboxed attachment."""
    headers = exchange.response().headers
    for parameter, header in RESPONSE_OVERRIDES.items():
        value = params.get(parameter)
        if isinstance(value, str):
            headers[header] = value
    if not inline_active and is_active_type(headers.get("Content-Type", "")):
        headers["Content-Disposition"] = "attachment"
        headers["Content-Security-Policy"] = "sandbox; default-src 'none'"


def iso_time(timestamp: float | None) -> str:
    """S3's timestamps in XML: ``2009-10-12T17:50:30.000Z``."""
    seconds = timestamp or 0.0
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{whole}.{int((seconds % 1) * 1000):03d}Z"

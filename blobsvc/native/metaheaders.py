"""An object's metadata as the native API's headers, both ways.

Why apart: PUT and POST read the same headers into an
:class:`~blobsvc.storage.metadata.ObjectMeta`, and GET and HEAD write them
back; Swift's names (``X-Object-Meta-*``, ``X-Delete-At``,
``X-Delete-After``) are used so Swift users and tools find what they know.

Header values travel as bytes (WSGI hands them over one character per
byte): a metadata value is taken as UTF-8 and sent back as the same UTF-8
bytes, so a round trip is verbatim; stored headers are kept as sent.
Metadata names come from the header names the server kept (title-cased,
but with ``_`` and ``-`` told apart, which WSGI's ``HTTP_*`` keys cannot).
"""

from __future__ import annotations

import math
import time
from typing import Mapping

from blobsvc.http import exchange
from blobsvc.storage import ObjectInfo, ObjectMeta
from blobsvc.storage.errors import InvalidMetadata
from blobsvc.storage.metadata import STORED_HEADERS

META_PREFIX = "X-Object-Meta-"
DELETE_AT = "X-Delete-At"
DELETE_AFTER = "X-Delete-After"

#: An expiry further out than this many seconds is a mistake (over 100 years).
MAX_EXPIRY_SECONDS = 100 * 365 * 24 * 3600


def meta_from_request(with_content_type: bool = True) -> ObjectMeta:
    """The metadata, stored headers, expiry and content type a PUT or POST sends."""
    request = exchange.request()
    headers = request.headers
    content_type = headers.get("Content-Type") if with_content_type else None
    return ObjectMeta(
        content_type=content_type or None,
        # An empty value is no header at all (RFC 9110 5.5 allows it; storing
        # it would send back an empty Content-Encoding).
        headers={name: headers[name] for name in STORED_HEADERS if headers.get(name)},
        metadata=metadata_from_headers(headers, request.header_names),
        expires_at=expiry_from_headers(headers),
    )


def metadata_from_headers(headers: Mapping[str, str], names: list[str] | None,
                          header_prefix: str = META_PREFIX) -> dict[str, str]:
    """User metadata from the headers named ``header_prefix`` + name."""
    prefix = header_prefix.lower()
    spelled = names if names is not None else list(headers)
    metadata: dict[str, str] = {}
    keys: set[str] = set()
    for raw_name in spelled:
        if not raw_name.lower().startswith(prefix):
            continue
        name = raw_name[len(prefix):]
        # The value as WSGI keyed it: '_' and '-' alike, title-cased; two
        # names that differ only there would share one value.
        key = raw_name.replace("_", "-").title()
        if name.lower() in metadata or key in keys:
            raise InvalidMetadata(f"metadata {name.lower()!r} is given twice "
                                  "(names differing only in '_' and '-' count as one)")
        keys.add(key)
        metadata[name.lower()] = _text(headers[key], raw_name)
    return metadata


def _text(value: str, name: str) -> str:
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise InvalidMetadata(f"{name} is not UTF-8 text") from None


def expiry_from_headers(headers: Mapping[str, str], now: float | None = None) -> int | None:
    """``X-Delete-At`` or ``X-Delete-After`` as Unix seconds; 400 when past or malformed."""
    at, after = headers.get(DELETE_AT), headers.get(DELETE_AFTER)
    if at is None and after is None:
        return None
    if at is not None and after is not None:
        raise InvalidMetadata(f"give {DELETE_AT} or {DELETE_AFTER}, not both")
    now = time.time() if now is None else now
    raw = at if at is not None else after
    assert raw is not None
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
        raise InvalidMetadata(f"{DELETE_AT if at is not None else DELETE_AFTER} must be "
                              "a whole number of seconds")
    seconds = int(raw)
    if at is None and seconds < 1:
        raise InvalidMetadata(f"{DELETE_AFTER} must be at least 1 second")
    # Rounded up: an object asked to live N seconds lives at least that.
    expires_at = seconds if at is not None else math.ceil(now + seconds)
    if expires_at <= now:
        raise InvalidMetadata("the expiry is not in the future")
    if expires_at > now + MAX_EXPIRY_SECONDS:
        raise InvalidMetadata("the expiry is more than 100 years away")
    return expires_at


def send_meta_headers(info: ObjectInfo) -> None:
    """The object's metadata, stored headers and expiry on a GET or HEAD answer."""
    headers = exchange.response().headers
    for name, value in info.headers.items():
        headers[name] = value
    for name, value in (info.metadata or {}).items():
        headers[META_PREFIX + name] = value.encode("utf-8").decode("latin-1")
    if info.expires_at is not None:
        headers[DELETE_AT] = str(info.expires_at)

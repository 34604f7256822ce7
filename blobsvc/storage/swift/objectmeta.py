"""What an object carries besides its bytes, as Swift stores it, and back.

Why one place: a PUT, a POST, a copy and a manifest write all send the
same headers, and a HEAD, a GET and a listing entry all read them back.

* **User metadata** is ``X-Object-Meta-<name>``; the **stored headers**
  (Content-Encoding, Content-Disposition, ...) are sent under their own
  names, which Swift keeps and answers with by default.
* **Expiry** is Swift's own ``X-Delete-At``: Swift's object servers answer
  404 from that second on, and its object-expirer reclaims the space. A
  container listing does not carry ``X-Delete-At``, though, and the
  expirer comes by only later; so the expiry is also appended to the
  content type Swift stores, as a parameter ``;blobsvc-expires-at=<n>``
  (the way Swift itself appends ``swift_bytes=`` to an SLO's content type
  in its container listings). Listings then know each entry's expiry
  without a HEAD per entry, and an expired object leaves them at once.
  The parameter is stripped from every content type read back; a content
  type that carries it already is refused (it would read back as an
  expiry). The parameter is the truth; ``X-Delete-At`` may be later, since
  Swift refuses one in the past (see :func:`delete_at`).
* **ETag of a large object.** Swift gives a Static Large Object the MD5
  of its segments' MD5s, which S3 clients and checksum tools take for the
  MD5 of the bytes and then call the object corrupted. So a manifest
  carries the ETag blobsvc gives it, as the content-type parameter
  ``;blobsvc-etag=<etag>.<Swift's ETag>``, read back by HEADs and listings
  alike: the MD5 of the bytes for an upload (hashed as it streamed), S3's
  composite form ``<md5 of the chunks' MD5s>-<chunks>`` for a cat (see
  :func:`composite_etag`). Swift's ETag binds it to the manifest it was
  written for: a POST that meant to keep it but landed on a newer version
  (a write between its HEAD and the POST) leaves a parameter that no
  longer matches, and is ignored, never taken for the new bytes' ETag. A
  manifest without it (written by another client, or before) keeps
  Swift's ETag.
* **Encoding.** Values go as UTF-8 (non-ASCII included): Swift then holds,
  and counts against its constraints, the same bytes blobsvc's limits
  count, and other Swift clients see the text itself. swiftclient decodes
  answers back from UTF-8 (undoing http.client's latin-1), but it also
  percent-decodes every header name and value; HTTP drops whitespace at
  either end of a value; and Swift's HTTP server drops every header whose
  name holds ``_``. So exactly those are escaped as ``%XX``: ``%`` and
  whitespace at either end of a value, ``_`` in a name. Escapes cost
  Swift's limits two bytes each (see :mod:`.constraints`).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import unquote

from blobsvc.storage.contract import DEFAULT_CONTENT_TYPE, ObjectMeta
from blobsvc.storage.errors import InvalidMetadata, StorageError
from blobsvc.storage.metadata import STORED_HEADERS, check_metadata, check_value
from blobsvc.storage.swift.errors import log

META_PREFIX = "X-Object-Meta-"

#: The content-type parameter that carries the expiry into listings.
EXPIRY_PARAMETER = "blobsvc-expires-at"

_EXPIRY = re.compile(r"\s*;\s*" + EXPIRY_PARAMETER + r"=(-?\d+)\s*(?=;|$)", re.IGNORECASE)
_NAMED_EXPIRY = re.compile(r";\s*" + EXPIRY_PARAMETER + r"\s*=", re.IGNORECASE)

#: The content-type parameter that carries a large object's ETag.
ETAG_PARAMETER = "blobsvc-etag"

_ETAG = re.compile(r"\s*;\s*" + ETAG_PARAMETER +
                   r"=([0-9a-f]{32}(?:-[0-9]{1,9})?)\.([0-9a-f]{32})\s*(?=;|$)", re.IGNORECASE)
_NAMED_ETAG = re.compile(r";\s*" + ETAG_PARAMETER + r"\s*=", re.IGNORECASE)

#: The longest ETag parameter value, for the header size checks.
LONGEST_ETAG_VALUE = f"{'0' * 32}-{'9' * 9}.{'0' * 32}"

#: What swiftclient would percent-decode, or HTTP strip, in a value.
_VALUE_ESCAPES = re.compile(r"%|^[ \t]+|[ \t]+$")

#: Seconds ahead of now an ``X-Delete-At`` must be for Swift to take it
#: (it refuses one in the past), with room for the clocks to differ a little.
MIN_DELETE_DELAY = 2

_STORED = {name.lower(): name for name in STORED_HEADERS}


def encode_value(value: str) -> str:
    """``value`` as sent, so that swiftclient reads back exactly ``value``."""
    return _VALUE_ESCAPES.sub(lambda found: "".join(f"%{ord(c):02X}" for c in found.group()),
                              value)


def encode_name(name: str) -> str:
    """A metadata name as sent: Swift's HTTP server drops header names holding ``_``."""
    return name.replace("_", "%5F")


def decode_listed(value: str) -> str:
    """A value from a listing's JSON, decoded as swiftclient decodes header values."""
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        return value


def check_content_type(content_type: str | None) -> None:
    """Refuse a content type that would read back as carrying an expiry or an ETag."""
    if content_type is None:
        return
    for named, parameter in ((_NAMED_EXPIRY, EXPIRY_PARAMETER), (_NAMED_ETAG, ETAG_PARAMETER)):
        if named.search(content_type):
            raise InvalidMetadata(f"a content type with a {parameter} parameter cannot be "
                                  f"stored on Swift: blobsvc keeps that parameter for itself")


def content_type_header(content_type: str | None, expires_at: int | None,
                        etag_value: str | None = None) -> str:
    """The Content-Type sent: the type, then a large object's ETag (as
    :func:`bind_etag` gives it) and the expiry as parameters where there are some."""
    value = encode_value(content_type or DEFAULT_CONTENT_TYPE)
    if etag_value is not None:
        value = f"{value};{ETAG_PARAMETER}={etag_value}"
    if expires_at is not None:
        value = f"{value};{EXPIRY_PARAMETER}={expires_at}"
    return value


def bind_etag(etag: str, swift_etag: str) -> str:
    """The ETag parameter's value: ``etag``, for the manifest Swift gives ``swift_etag``."""
    return f"{etag}.{swift_etag}"


def split_content_type(value: str | None) -> tuple[str, int | None]:
    """A stored content type without blobsvc's parameters, and the expiry."""
    content_type, expires_at, _ = split_stored_type(value, None)
    return content_type, expires_at


def split_stored_type(value: str | None,
                      swift_etag: str | None) -> tuple[str, int | None, str | None]:
    """A stored content type without blobsvc's parameters, the expiry, and
    the ETag blobsvc gave the object if it is bound to ``swift_etag``."""
    if not value:
        return DEFAULT_CONTENT_TYPE, None, None
    value, expiry = _take_parameter(_EXPIRY, value)
    value, etag = _take_parameter(_ETAG, value)
    if etag is None or swift_etag is None or etag[1].lower() != swift_etag.strip('"').lower():
        etag = None
    return (value or DEFAULT_CONTENT_TYPE, None if expiry is None else int(expiry[0]),
            None if etag is None else etag[0].lower())


def _take_parameter(pattern: re.Pattern[str], value: str) -> tuple[str, tuple[str, ...] | None]:
    """``value`` without the last parameter ``pattern`` matches, and its groups."""
    matches = list(pattern.finditer(value))
    if not matches:
        return value, None
    found = matches[-1]
    return value[:found.start()] + value[found.end():], found.groups()


def composite_etag(etags: list[str]) -> str:
    """S3's ETag of an object joined from parts with ``etags``: the MD5 of
    their binary MD5s, then ``-`` and how many there are. A part's own
    composite ETag counts by its hex digest, so joins of joins stay defined."""
    digests = b"".join(bytes.fromhex(etag.split("-", 1)[0]) for etag in etags)
    return f"{hashlib.md5(digests).hexdigest()}-{len(etags)}"


def delete_at(expires_at: int, now: float | None = None) -> int:
    """The ``X-Delete-At`` for an expiry: the expiry itself, or a moment from
    now when it is (nearly) past, since Swift refuses one in the past. The
    object is absent from its expiry on either way (the content-type
    parameter says when); only the space comes back a little later."""
    soonest = math.ceil(time.time() if now is None else now) + MIN_DELETE_DELAY
    return max(expires_at, soonest)


def meta_headers(meta: ObjectMeta) -> dict[str, str]:
    """Every header a write of ``meta`` sends, the Content-Type apart."""
    headers = {META_PREFIX + encode_name(name): encode_value(value)
               for name, value in meta.metadata.items()}
    headers.update((name, encode_value(value)) for name, value in meta.headers.items())
    if meta.expires_at is not None:
        headers["X-Delete-At"] = str(delete_at(meta.expires_at))
    return headers


def write_headers(meta: ObjectMeta, etag_value: str | None = None) -> dict[str, str]:
    """Every header a write of ``meta`` sends, the Content-Type (carrying a
    large object's ETag, as :func:`bind_etag` gives it) included."""
    headers = meta_headers(meta)
    headers["Content-Type"] = content_type_header(meta.content_type, meta.expires_at,
                                                  etag_value)
    return headers


def segment_headers(expires_at: int | None, grace: int) -> dict[str, str]:
    """What the segments of an object expiring at ``expires_at`` carry:
    the same expiry, ``grace`` seconds later (see the package docstring)."""
    if expires_at is None:
        return {}
    return {"X-Delete-At": str(delete_at(expires_at + grace))}


@dataclass(frozen=True)
class Carried:
    """What Swift's headers say an object carries, as read: not judged by
    blobsvc's write limits, so an object another client wrote still reads."""

    content_type: str
    headers: dict[str, str]
    metadata: dict[str, str]
    expires_at: int | None
    #: The ETag blobsvc gave a large object, if it gave one (to this version).
    etag: str | None = None


def carried(headers: Mapping[str, str]) -> Carried:
    """What a HEAD's or GET's headers (lower-case names, as swiftclient
    gives them, values decoded) say the object carries."""
    content_type, expires_at, etag = split_stored_type(headers.get("content-type"),
                                                       headers.get("etag"))
    if expires_at is None and headers.get("x-delete-at", "").isdigit():
        expires_at = int(headers["x-delete-at"])  # written by another client
    prefix = META_PREFIX.lower()
    metadata = {name[len(prefix):]: value for name, value in headers.items()
                if name.startswith(prefix)}
    stored = {_STORED[name]: value for name, value in headers.items() if name in _STORED}
    if not _servable({"Content-Type": content_type}, check_value):
        content_type = DEFAULT_CONTENT_TYPE
    return Carried(content_type, _servable(stored, check_value),
                   _servable(metadata, _check_metadata_item), expires_at, etag)


def _check_metadata_item(name: str, value: str) -> None:
    check_metadata({name: value})


def _servable(found: dict[str, str], check: Callable[[str, str], None]) -> dict[str, str]:
    """What another Swift client wrote, without what blobsvc would never
    store or could not send back (a CR or LF would split the answer)."""
    kept = {}
    for name, value in found.items():
        try:
            check(name, value)
        except StorageError:
            log.warning("ignoring the Swift header %s of an object: not one blobsvc can serve",
                        name)
            continue
        kept[name] = value
    return kept

"""What an object carries besides its bytes: user metadata, stored headers, expiry.

Why one type for all of it: a PUT, a POST, a copy and a cat result all set
the same four things, every driver stores them together with the bytes
(atomically), and the S3 front end maps its own names onto the same fields.
The limits are checked here, once, before a driver sees a byte.

* ``metadata``: user metadata, ``{name: value}``; names match
  :data:`NAME_PATTERN` and are kept lower-cased (HTTP header names are
  case-insensitive, Swift and S3 lower-case them too); values are UTF-8
  text without control characters. Names and values together take at most
  :data:`MAX_METADATA_BYTES` of UTF-8, in at most :data:`MAX_METADATA_ITEMS`
  names.
* ``headers``: the representation headers of :data:`STORED_HEADERS`, sent
  back verbatim on GET/HEAD (keys in their canonical spelling).
* ``content_type``: None means the default on a write, "unchanged" on an
  update.
* ``expires_at``: whole Unix seconds after which the object is gone, or None.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from blobsvc.storage.errors import InvalidMetadata, MetadataTooLarge

if TYPE_CHECKING:
    from blobsvc.storage.contract import ObjectInfo

#: Representation headers a write stores and GET/HEAD send back verbatim
#: (Content-Type is kept apart: every object has one).
STORED_HEADERS = ("Content-Encoding", "Content-Disposition", "Content-Language",
                  "Cache-Control", "Expires")

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")

#: Names and values of one object's user metadata, in UTF-8 bytes.
MAX_METADATA_BYTES = 8 * 1024

#: Names per object: each is a response header, and Python's http.client
#: (so requests, urllib3, boto3, swiftclient) refuses an answer of more
#: than 100 header lines; blobsvc's own take about 20 of them.
MAX_METADATA_ITEMS = 64

#: A stored header's value, in bytes: a header, not a document.
MAX_HEADER_BYTES = 4 * 1024

#: Control characters other than tab cannot travel in a header value.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class ObjectMeta:
    """Everything a write sets besides the bytes; see the module docstring."""

    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    expires_at: int | None = None

    def __post_init__(self) -> None:
        # Checked copies, read-only: changed later, they would skip the checks.
        object.__setattr__(self, "metadata", MappingProxyType(check_metadata(self.metadata)))
        object.__setattr__(self, "headers", MappingProxyType(check_headers(self.headers)))
        if self.content_type is not None:
            check_value("Content-Type", self.content_type)
        if self.expires_at is not None and (
                isinstance(self.expires_at, bool) or not isinstance(self.expires_at, int)):
            raise InvalidMetadata("the expiry must be whole Unix seconds")

    @classmethod
    def of(cls, info: ObjectInfo) -> ObjectMeta:
        """What ``info``'s object carries: copied by move and copy."""
        return cls(content_type=info.content_type, headers=dict(info.headers),
                   metadata=dict(info.metadata or {}), expires_at=info.expires_at)

    def without_expiry(self) -> ObjectMeta:
        return replace(self, expires_at=None)

    def to_json(self) -> dict[str, Any]:
        """The form drivers keep beside the bytes (content type apart)."""
        return {"headers": dict(self.headers), "metadata": dict(self.metadata),
                "expires_at": self.expires_at}

    @classmethod
    def from_json(cls, document: Mapping[str, Any], content_type: str | None) -> ObjectMeta:
        return cls(content_type=content_type, headers=document.get("headers") or {},
                   metadata=document.get("metadata") or {},
                   expires_at=document.get("expires_at"))


def check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """``metadata`` with lower-cased names, or the error that refuses it."""
    checked: dict[str, str] = {}
    total = 0
    for name, value in metadata.items():
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise InvalidMetadata(f"metadata name {name!r} must be 1-128 of A-Z a-z 0-9 _ -")
        if not isinstance(value, str) or _CONTROL.search(value):
            raise InvalidMetadata(f"metadata {name!r} must be text without control characters")
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, from JSON: no bytes can carry it
            raise InvalidMetadata(f"metadata {name!r} is not valid Unicode text") from None
        lower = name.lower()
        if lower in checked:
            raise InvalidMetadata(f"metadata {lower!r} is given twice")
        checked[lower] = value
        total += len(lower) + len(encoded)
    if len(checked) > MAX_METADATA_ITEMS:
        raise MetadataTooLarge(f"{len(checked)} metadata names, more than the "
                               f"{MAX_METADATA_ITEMS} allowed per object")
    if total > MAX_METADATA_BYTES:
        raise MetadataTooLarge(f"metadata takes {total} bytes, more than the "
                               f"{MAX_METADATA_BYTES} allowed per object")
    return checked


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with canonical names; only :data:`STORED_HEADERS` are stored."""
    canonical = {name.lower(): name for name in STORED_HEADERS}
    checked: dict[str, str] = {}
    for name, value in headers.items():
        known = canonical.get(name.lower())
        if known is None:
            raise InvalidMetadata(f"{name} is not a header blobsvc stores")
        check_value(known, value)
        checked[known] = value
    return checked


def check_value(name: str, value: str) -> None:
    """A header value kept as sent: one character per byte, as HTTP (and
    WSGI) carries it, so it goes back out as the same bytes."""
    if not isinstance(value, str) or _CONTROL.search(value):
        raise InvalidMetadata(f"{name} must be text without control characters")
    try:
        encoded = value.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidMetadata(f"{name} must be bytes as a header carries them "
                              "(ASCII, or one character per byte)") from None
    if len(encoded) > MAX_HEADER_BYTES:
        raise MetadataTooLarge(f"{name} is longer than {MAX_HEADER_BYTES} bytes")


def is_expired(info: ObjectInfo, now: float | None = None) -> bool:
    """Whether ``info``'s object has passed its expiry (it is then absent)."""
    expires_at = info.expires_at
    return expires_at is not None and expires_at <= (time.time() if now is None else now)

"""What the service tells about objects, read from its JSON and its headers.

The client hands out the same :class:`~blobsvc.storage.contract.ObjectInfo`
the service's drivers return, so code written against the storage contract
reads a remote object's info exactly as a local one's.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from blobsvc.storage.contract import ObjectInfo

META_PREFIX = "x-object-meta-"
#: The representation headers the service stores with an object and sends back.
STORED_HEADERS = ("Content-Encoding", "Content-Disposition", "Content-Language",
                  "Cache-Control", "Expires")
DELETE_AT = "X-Delete-At"


def info_from_json(document: Mapping[str, Any]) -> ObjectInfo:
    """An object's (or a listing entry's) info from the service's JSON."""
    return ObjectInfo(
        path=document["path"], name=document["name"], isdir=bool(document["isdir"]),
        size=document.get("size"), ctime=document.get("ctime"), etag=document.get("etag"),
        content_type=document.get("content_type"), metadata=document.get("metadata"),
        headers=document.get("headers") or {}, expires_at=document.get("expires_at"))


def info_from_headers(path: str, headers: Mapping[str, str]) -> ObjectInfo:
    """An object's info from the headers of a GET or HEAD answer."""
    lowered = {name.lower(): value for name, value in headers.items()}
    ctime = _ctime(lowered)
    etag = lowered.get("etag")
    delete_at = lowered.get(DELETE_AT.lower())
    size = lowered.get("content-length")
    content_range = lowered.get("content-range")
    if content_range and "/" in content_range:  # a part: the object's size is after the '/'
        size = content_range.rsplit("/", 1)[1]
    return ObjectInfo(
        path=path, name=path.rsplit("/", 1)[-1], isdir=False,
        size=int(size) if size is not None and size.isdigit() else None,
        ctime=ctime, etag=etag.strip('"') if etag else None,
        content_type=lowered.get("content-type"),
        metadata={name[len(META_PREFIX):]: _utf8(value) for name, value in lowered.items()
                  if name.startswith(META_PREFIX)},
        # stored headers travel as Latin-1 both ways (http.client's default),
        # unlike metadata values, which the service holds to UTF-8
        headers={name: lowered[name.lower()] for name in STORED_HEADERS
                 if name.lower() in lowered and not _forced(name, lowered)},
        expires_at=int(delete_at) if delete_at and delete_at.isdigit() else None)


def _ctime(lowered: Mapping[str, str]) -> float | None:
    """``X-Timestamp`` (exact), else ``Last-Modified`` (whole seconds)."""
    try:
        return float(lowered["x-timestamp"])
    except (KeyError, ValueError):
        pass
    modified = lowered.get("last-modified")
    try:
        return email.utils.parsedate_to_datetime(modified).timestamp() if modified else None
    except (TypeError, ValueError):
        return None


def _forced(name: str, lowered: Mapping[str, str]) -> bool:
    """A disposition the service forced on an active type is not a stored one:
    it comes with the sandbox policy that marks it."""
    return (name == "Content-Disposition" and lowered.get("content-disposition") == "attachment"
            and "sandbox" in lowered.get("content-security-policy", ""))


def _utf8(value: str) -> str:
    """A header value as the UTF-8 text the service stores: http.client hands
    it over decoded as Latin-1, byte for byte."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


@dataclass
class Listing:
    """One page of a listing."""

    path: str
    entries: list[ObjectInfo]
    truncated: bool
    next_marker: str | None

    def __iter__(self) -> Iterator[ObjectInfo]:
        return iter(self.entries)


@dataclass
class DeleteResult:
    """What a bulk delete did, path by path."""

    deleted: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    #: ``{"path", "code", "message"}`` for each path that failed otherwise.
    errors: list[dict[str, str]] = field(default_factory=list)

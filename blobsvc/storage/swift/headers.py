"""What Swift's answers say about an object: its info, whether it is large, its times.

Why apart: a HEAD, a GET, a PUT's answer and a listing entry all describe
an object, each in its own form; every job reads them the same way, here
(what it carries besides its bytes through :mod:`.objectmeta`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Mapping

from blobsvc.storage import paths
from blobsvc.storage.contract import DEFAULT_CONTENT_TYPE, ObjectInfo, ObjectMeta
from blobsvc.storage.swift.objectmeta import Carried, carried

#: Response headers as swiftclient gives them: lower-case names.
Headers = dict[str, str]


def info_from_headers(path: str, headers: Headers) -> ObjectInfo:
    """What a HEAD or GET tells; a ranged GET's size is Content-Range's total."""
    content_range = headers.get("content-range")
    if content_range and "/" in content_range:
        size = int(content_range.rsplit("/", 1)[1])
    else:
        size = int(headers.get("content-length", 0))
    meta = carried(headers)
    return ObjectInfo(path=path, name=paths.basename(path), isdir=False, size=size,
                      ctime=header_time(headers), etag=meta.etag or unquote(headers.get("etag")),
                      content_type=meta.content_type, metadata=meta.metadata,
                      headers=meta.headers, expires_at=meta.expires_at)


def header_time(headers: Mapping[str, str | None]) -> float | None:
    """Last-Modified: what a PUT answers and a HEAD repeats."""
    value = headers.get("last-modified")
    if not value:
        return None
    return parsedate_to_datetime(value).timestamp()


def content_length(headers: Headers) -> int:
    return int(headers.get("content-length", 0))


def is_large(headers: Headers) -> bool:
    """Whether the object is a Static Large Object (a manifest listing segments)."""
    return headers.get("x-static-large-object", "").lower() == "true"


def unquote(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None


def range_header(offset: int, length: int | None) -> dict[str, str]:
    if offset == 0 and length is None:
        return {}
    end = "" if length is None else str(offset + length - 1)
    return {"Range": f"bytes={offset}-{end}"}


@dataclass(frozen=True)
class Stored:
    """Swift's answer to a PUT. ``superseded``: it already held a newer version (202)."""

    etag: str
    last_modified: str | None
    superseded: bool

    @classmethod
    def of(cls, etag: str, response: dict[str, Any]) -> Stored:
        headers = response.get("headers", {})
        return cls(etag, headers.get("last-modified"), response.get("status") == 202)


@dataclass(frozen=True)
class Written:
    """What one write stored: its info, without asking Swift again."""

    etag: str
    size: int
    #: What the object carries besides its bytes: as written, or as read.
    meta: ObjectMeta | Carried
    last_modified: str | None

    def info(self, path: str) -> ObjectInfo:
        ctime = header_time({"last-modified": self.last_modified})
        if ctime is None:  # superseded or a POST: no Last-Modified, and none to take from Swift
            ctime = float(math.ceil(time.time()))
        meta = self.meta
        return ObjectInfo(path=path, name=paths.basename(path), isdir=False, size=self.size,
                          ctime=ctime, etag=self.etag,
                          content_type=meta.content_type or DEFAULT_CONTENT_TYPE,
                          metadata=dict(meta.metadata), headers=dict(meta.headers),
                          expires_at=meta.expires_at)

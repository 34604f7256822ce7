"""Conditional requests (RFC 9110 section 13), evaluated in the RFC's order.

Handlers hand over the request headers and the object's current version;
this module decides "go on", ``304`` or ``412``. For writes the decision is
made by the driver under its commit lock (see ``Precondition`` in the
storage contract), so check-then-write is atomic within one process.
"""

from __future__ import annotations

import email.utils
import re
from typing import Mapping

from blobsvc.storage.contract import ObjectInfo, Precondition
from blobsvc.storage.errors import PreconditionFailed

#: Outcomes besides "proceed" (None).
NOT_MODIFIED = 304
FAILED = 412

_ETAG = re.compile(r'\s*(W/)?"([^"]*)"\s*(?:,|$)')


def evaluate(headers: Mapping[str, str], method: str, current: ObjectInfo | None) -> int | None:
    """None to proceed, or the status (304/412) to answer instead."""
    exists = current is not None
    etag = current.etag if current is not None else None
    modified = _whole_seconds(current.ctime) if current is not None else None
    safe = method in ("GET", "HEAD")

    if_match = headers.get("If-Match")
    if if_match is not None:
        if not _matches(if_match, etag, exists, strong=True):
            return FAILED
    else:
        since = _http_date(headers.get("If-Unmodified-Since"))
        if since is not None and exists and modified is not None and modified > since:
            return FAILED

    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        if _matches(if_none_match, etag, exists, strong=False):
            return NOT_MODIFIED if safe else FAILED
    elif safe:
        since = _http_date(headers.get("If-Modified-Since"))
        if since is not None and exists and modified is not None and modified <= since:
            return NOT_MODIFIED
    return None


def write_precondition(headers: Mapping[str, str], method: str) -> Precondition | None:
    """The check a PUT or DELETE must pass at commit time, if it asks for one."""
    # If-Modified-Since applies to GET and HEAD only (RFC 9110 13.1.3).
    conditions = {name: headers[name] for name in
                  ("If-Match", "If-None-Match", "If-Unmodified-Since") if name in headers}
    if not conditions:
        return None

    def check(current: ObjectInfo | None) -> None:
        if evaluate(conditions, method, current) is not None:
            raise PreconditionFailed("the object does not match the request's preconditions",
                                     current.path if current else None)

    return check


def if_range_allows(header: str | None, current: ObjectInfo) -> bool:
    """Whether a Range may be honoured under ``If-Range`` (RFC 9110 13.1.5)."""
    if header is None:
        return True
    header = header.strip()
    if header.startswith('"') or header.startswith("W/"):
        return not header.startswith("W/") and header == f'"{current.etag}"'
    since = _http_date(header)
    return since is not None and current.ctime is not None and _whole_seconds(current.ctime) == since


def _matches(header: str, etag: str | None, exists: bool, strong: bool) -> bool:
    if header.strip() == "*":
        return exists
    if etag is None:
        return False
    for weak, opaque in _entity_tags(header):
        if opaque == etag and not (strong and weak):
            return True
    return False


def _entity_tags(header: str) -> list[tuple[bool, str]]:
    tags, position = [], 0
    while position < len(header):
        match = _ETAG.match(header, position)
        if not match:
            break  # malformed rest: it matches nothing
        tags.append((bool(match.group(1)), match.group(2)))
        position = match.end()
    return tags


def _http_date(value: str | None) -> int | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None  # an invalid date is ignored, as RFC 9110 says
    if parsed is None or parsed.tzinfo is None:
        return None
    try:
        return int(parsed.timestamp())
    except (OverflowError, ValueError, OSError):
        return None


def _whole_seconds(timestamp: float | None) -> int | None:
    """Last-Modified is sent in whole seconds; compare like with like."""
    return None if timestamp is None else int(timestamp)

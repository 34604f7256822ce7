"""Swift's failures as storage errors, each logged once, in one line.

Why apart: every request the driver makes fails in the same few ways
(swiftclient's ``ClientException`` with an HTTP status, or the HTTP stack
below it not answering). Translating them in one place keeps the answers
consistent (a Swift that does not answer is always ``BackendUnavailable``),
and keeps the log readable: a refused connection arrives wrapped four deep,
and only its innermost cause is worth a line.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
from typing import Iterator

import urllib3.exceptions
from requests.exceptions import RequestException, Timeout
from swiftclient.client import ClientException

from blobsvc.storage.errors import (
    BackendUnavailable,
    InsufficientStorage,
    InvalidMetadata,
    MetadataTooLarge,
    NotFound,
    PreconditionFailed,
    StorageError,
    TooLarge,
)

#: The driver's one logger, for every module of the package: one name to
#: filter on, as when the driver was a single module.
log = logging.getLogger("blobsvc.storage.swift")

# swiftclient logs every answer of 300 or more at INFO as a curl command line
# with its headers (a token prefix included) and the response: on each start
# and each write, for the HEADs that expectedly find nothing. Its per-request
# log runs only at INFO and below, so WARNING turns it off; the driver logs the
# failures that matter itself, one line each.
logging.getLogger("swiftclient").setLevel(logging.WARNING)

#: Errors of the HTTP stack below swiftclient that mean "Swift did not answer".
TRANSPORT_ERRORS = (RequestException, OSError, urllib3.exceptions.HTTPError,
                    http.client.HTTPException)


@contextlib.contextmanager
def swift_errors(action: str, path: str | None) -> Iterator[None]:
    """Translate swiftclient's and the network's errors into storage errors."""
    try:
        yield
    except ClientException as exc:
        raise from_client_exception(exc, action, path) from exc
    except TRANSPORT_ERRORS as exc:
        reason = "timed out" if isinstance(exc, Timeout) else "connection failed"
        # DEBUG: whoever handles the error logs it, once (see cause()).
        log.debug("Swift did not answer (%s %s): %s", action, path or "", cause(exc))
        raise BackendUnavailable(f"Swift did not answer ({reason}) while trying to {action}",
                                 path) from exc


def from_client_exception(exc: ClientException, action: str, path: str | None) -> StorageError:
    """The storage error for an HTTP status Swift answered (None: no answer at all)."""
    status = exc.http_status
    if status == 404:
        return NotFound(f"no object at {path}", path)
    if status == 507:
        return InsufficientStorage("Swift is out of space", path)
    if status == 412:
        return PreconditionFailed("the object does not match the request's preconditions", path)
    if status == 413:
        return TooLarge("object larger than Swift accepts", path)
    if status == 400:
        refused = metadata_refused(exc, path)
        if refused is not None:
            return refused
    log.debug("Swift refused to %s %s: %s", action, path or "", exc)  # logged once by the handler
    if status in (401, 403):
        return BackendUnavailable(f"Swift refused the service's credentials while trying to {action}",
                                  path)
    if status is None or status >= 500 or status in (408, 429, 498, 499):
        detail = f"HTTP {status}" if status else "connection lost"
        return BackendUnavailable(f"Swift failed ({detail}) while trying to {action}", path)
    return StorageError(f"Swift refused to {action} (HTTP {status} {exc.http_reason})", path)


#: Swift's (and its HTTP server's) 400 answers about metadata: what they
#: start with, and whether it is about size. The driver checks the
#: cluster's limits first (see .constraints); these remain for a cluster
#: whose limits changed since they were read.
_METADATA_REFUSALS = (
    ("Metadata value longer than", True), ("Metadata name too long", True),
    ("Too many metadata items", True), ("Total metadata too large", True),
    ("Header value too long", True), ("Header Line Too Long", True),
    ("Headers Too Large", True), ("Metadata name cannot be empty", False),
    ("Metadata must be valid UTF-8", False), ("Non-integer X-Delete-At", False),
    ("X-Delete-At in past", False),
)


def metadata_refused(exc: ClientException, path: str | None) -> StorageError | None:
    """The error for Swift's 400 about a write's metadata; None for any other 400."""
    body = exc.http_response_content or b""
    text = (body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)).strip()
    said = text or (exc.http_reason or "")
    for start, size in _METADATA_REFUSALS:
        if said.startswith(start):
            log.debug("Swift refused the metadata of %s: %s", path or "", said)
            if size:
                return MetadataTooLarge(f"Swift refused the metadata: {said[:200]}", path)
            return InvalidMetadata(f"Swift refused the metadata: {said[:200]}", path)
    return None


def cause(exc: BaseException) -> str:
    """The innermost error of an exception chain, as one short line.

    A refused connection arrives wrapped four deep (socket, urllib3, requests,
    storage error); its root says what happened without the chain's tracebacks.
    """
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    return f"{type(exc).__name__}: {exc}"


#: (auth URL, container) whose failure at start-up this process, or the
#: supervisor it was forked from, has logged: one line, not one per worker.
_unreachable_at_start: set[tuple[str, str]] = set()


def report_unreachable_at_start(exc: BackendUnavailable, auth_url: str, container: str) -> None:
    """Say once where Swift was looked for and what failed; later ones go to DEBUG."""
    key = (auth_url, container)
    level = logging.DEBUG if key in _unreachable_at_start else logging.WARNING
    _unreachable_at_start.add(key)
    log.log(level, "%s at %s (%s); the readiness check will try again", exc.message, auth_url,
            cause(exc))


def reachable_at_start(auth_url: str, container: str) -> None:
    """Swift answered: a later failure at start-up is news again."""
    _unreachable_at_start.discard((auth_url, container))

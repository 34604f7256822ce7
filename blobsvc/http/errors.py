"""Every error a client can see, named once: its code, status and meaning.

The service's answers (:class:`ApiError`, storage errors through their
``code``, cheroot's and CherryPy's own refusals through their status), the
OpenAPI document's error responses and the README's table are all derived
from :data:`VOCABULARY` or checked against it by a test, so the four can no
longer drift apart.

Every error body has one shape: ``{"error": {"status", "code", "message"}}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from blobsvc.storage import errors


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    #: When a client gets it, in the words of the README's table.
    meaning: str


#: The first code listed for a status is the one a bare status gets (an
#: error raised by the HTTP server or CherryPy, which knows only the status).
VOCABULARY: tuple[ErrorCode, ...] = (
    ErrorCode("bad_request", 400, "a malformed header, query parameter or JSON body, an unknown "
              "query parameter, or a message that cannot be framed one way only (the "
              "connection is closed)"),
    ErrorCode("invalid_path", 400, "the path breaks the path rules, or is a name the storage "
              "filesystem cannot hold"),
    ErrorCode("checksum_mismatch", 400, "the body does not match its Content-MD5 or "
              "X-Checksum-Sha256"),
    ErrorCode("incomplete_body", 400, "the body ended early or could not be read"),
    ErrorCode("invalid_metadata", 400, "an X-Object-Meta-* name or value, a stored header or "
              "an X-Delete-At/After that cannot be stored"),
    ErrorCode("metadata_too_large", 400, "more than 8 KiB of user metadata, or more than 64 "
              "names, on one object"),
    ErrorCode("unauthorized", 401, "no valid credential where one is needed"),
    ErrorCode("forbidden", 403, "the credential (or signed URL) does not allow this request"),
    ErrorCode("not_found", 404, "no such object, directory, route or chunk"),
    ErrorCode("method_not_allowed", 405, "the method is not one the path takes (see Allow)"),
    ErrorCode("request_timeout", 408, "the client went silent in the middle of a request"),
    ErrorCode("conflict", 409, "an object and a directory would share a name, or the path "
              "is a non-empty directory"),
    ErrorCode("length_required", 411, "a PUT without Content-Length or a chunked body"),
    ErrorCode("precondition_failed", 412, "an If-* condition does not hold"),
    ErrorCode("too_large", 413, "above server.max_object_size (a PUT, a cat's result), a JSON "
              "body over 1 MiB, or a declared length beyond any object"),
    ErrorCode("uri_too_long", 414, "a request line over 64 KiB"),
    ErrorCode("range_not_satisfiable", 416, "the range selects no byte of the object"),
    ErrorCode("expectation_failed", 417, "an Expect other than 100-continue"),
    ErrorCode("headers_too_large", 431, "request headers over 64 KiB"),
    ErrorCode("internal_error", 500, "a bug; details are in the server log only"),
    ErrorCode("storage_permission_denied", 500, "the service may not read or write a file of "
              "its own store"),
    ErrorCode("storage_error", 500, "any other fault of the storage backend, named in the "
              "message"),
    ErrorCode("not_implemented", 501, "a transfer coding other than chunked"),
    ErrorCode("backend_unavailable", 503, "the storage backend does not answer, or its volume "
              "is read-only or failing"),
    ErrorCode("http_version_not_supported", 505, "a request line naming HTTP/2 or later"),
    ErrorCode("insufficient_storage", 507, "the disk (or quota) is full"),
)

BY_CODE: dict[str, ErrorCode] = {entry.code: entry for entry in VOCABULARY}
#: The code of a bare status (see :data:`VOCABULARY`).
CODE_BY_STATUS: dict[int, str] = {}
for _entry in VOCABULARY:
    CODE_BY_STATUS.setdefault(_entry.status, _entry.code)


def codes_for(status: int) -> list[str]:
    return [entry.code for entry in VOCABULARY if entry.status == status]


class ApiError(Exception):
    """An error answer decided by the HTTP layer (bad JSON, bad header...)."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code or CODE_BY_STATUS[status]
        self.status = BY_CODE[self.code].status
        if self.status != status:
            raise ValueError(f"error code {self.code} is a {self.status}, not a {status}")
        self.message = message
        self.headers = headers or {}


def status_of(exc: errors.StorageError) -> int:
    """A storage error's status, by its code (an unknown code is a bug: 500)."""
    entry = BY_CODE.get(exc.code)
    return entry.status if entry is not None else 500


def error_body(status: int, code: str, message: str, **extra: object) -> bytes:
    error: dict[str, object] = {"status": status, "code": code, "message": message}
    error.update(extra)
    return json_bytes({"error": error})


def json_bytes(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8") + b"\n"

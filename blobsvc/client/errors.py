"""The service's errors as Python exceptions, one class per error code.

A caller catches :class:`NotFound` or :class:`PreconditionFailed` by name,
not by comparing status numbers; every answer the service gives with a
JSON error body becomes the class of its ``code``. Failures that never
reached an answer (refused connection, timeout, a body cut short) are
:class:`TransportError`. The table mirrors the service's error vocabulary;
a test keeps the two from drifting apart.
"""

from __future__ import annotations

import json
from typing import Any, Mapping


class BlobsvcError(Exception):
    """An error answer of the service: its status, code and message."""

    code = "error"

    def __init__(self, message: str, status: int | None = None, code: str | None = None,
                 request_id: str | None = None, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        if code is not None:
            self.code = code
        self.request_id = request_id
        #: The whole ``error`` object of the answer (``missing`` chunks, for one).
        self.details: Mapping[str, Any] = details or {}

    def __str__(self) -> str:
        where = f" (request {self.request_id})" if self.request_id else ""
        status = f"{self.status} " if self.status else ""
        return f"{status}{self.code}: {self.message}{where}"


class TransportError(BlobsvcError):
    """No complete answer: the connection failed, timed out, or a body ended early."""

    code = "transport_error"


class InvalidPath(BlobsvcError):
    """The path breaks the service's path rules."""

    code = "invalid_path"


class NotFound(BlobsvcError):
    """No such object, directory or chunk (``details["missing"]`` names chunks)."""

    code = "not_found"

    @property
    def missing(self) -> list[str]:
        return list(self.details.get("missing") or [])


class Conflict(BlobsvcError):
    """An object and a directory would share a name."""

    code = "conflict"


class PreconditionFailed(BlobsvcError):
    """An ``If-*`` condition does not hold; nothing changed."""

    code = "precondition_failed"


class ChecksumMismatch(BlobsvcError):
    code = "checksum_mismatch"


class IncompleteBody(BlobsvcError):
    code = "incomplete_body"


class InvalidMetadata(BlobsvcError):
    code = "invalid_metadata"


class MetadataTooLarge(BlobsvcError):
    code = "metadata_too_large"


class Unauthorized(BlobsvcError):
    code = "unauthorized"


class Forbidden(BlobsvcError):
    code = "forbidden"


class TooLarge(BlobsvcError):
    code = "too_large"


class RangeNotSatisfiable(BlobsvcError):
    code = "range_not_satisfiable"


class BackendUnavailable(BlobsvcError):
    """The service's storage backend did not answer; safe to try again later."""

    code = "backend_unavailable"


class InsufficientStorage(BlobsvcError):
    code = "insufficient_storage"


class StorageFault(BlobsvcError):
    """A fault of the service's storage (``storage_error``, ``storage_permission_denied``)."""

    code = "storage_error"


class ServerError(BlobsvcError):
    """A bug in the service (``internal_error``); details are in its log."""

    code = "internal_error"


class BadRequest(BlobsvcError):
    """The request was malformed; the message says how."""

    code = "bad_request"


#: Every code the service answers with -> the class raised for it. Codes of
#: malformed requests (a client bug, not a condition to handle) share
#: BadRequest's class; the code itself stays on the exception.
ERROR_CLASSES: dict[str, type[BlobsvcError]] = {
    cls.code: cls for cls in (InvalidPath, NotFound, Conflict, PreconditionFailed,
                              ChecksumMismatch, IncompleteBody, InvalidMetadata,
                              MetadataTooLarge, Unauthorized, Forbidden, TooLarge,
                              RangeNotSatisfiable, BackendUnavailable, InsufficientStorage,
                              StorageFault, ServerError, BadRequest)
}
ERROR_CLASSES.update({
    "storage_permission_denied": StorageFault,
    "method_not_allowed": BadRequest,
    "request_timeout": TransportError,
    "length_required": BadRequest,
    "uri_too_long": BadRequest,
    "expectation_failed": BadRequest,
    "headers_too_large": BadRequest,
    "not_implemented": BadRequest,
    "http_version_not_supported": BadRequest,
})

#: A bare status (an answer without the service's JSON, from a proxy in
#: front of it, say) -> the class it most likely means.
_BY_STATUS: dict[int, type[BlobsvcError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    412: PreconditionFailed, 413: TooLarge, 416: RangeNotSatisfiable,
    502: BackendUnavailable, 503: BackendUnavailable, 504: BackendUnavailable,
    507: InsufficientStorage,
}


def error_from_answer(status: int, body: bytes, request_id: str | None) -> BlobsvcError:
    """The exception an error answer stands for, from its JSON body if it has one."""
    error: Mapping[str, Any] = {}
    try:
        document = json.loads(body)
        if isinstance(document, dict) and isinstance(document.get("error"), dict):
            error = document["error"]
    except ValueError:
        pass
    code = error.get("code")
    message = error.get("message")
    if not isinstance(message, str):
        message = body[:200].decode("utf-8", "replace").strip() or f"HTTP {status}"
    if isinstance(code, str):
        cls = ERROR_CLASSES.get(code, _BY_STATUS.get(status, BlobsvcError))
        return cls(message, status, code, request_id, error)
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else BlobsvcError)
    return cls(message, status, None if cls is not BlobsvcError else f"http_{status}",
               request_id, error)

"""JSON bodies for answers and errors, and the error-to-status map.

Every error the service sends goes through :func:`error_body`, so clients
see one shape: ``{"error": {"status", "code", "message"}}``.
"""

from __future__ import annotations

import json

import cherrypy

from blobsvc.storage import errors

#: Storage error class -> HTTP status; the most specific class wins.
STATUS_BY_ERROR: list[tuple[type[errors.StorageError], int]] = [
    (errors.MissingChunks, 404),
    (errors.NotFound, 404),
    (errors.InvalidPath, 400),
    (errors.Conflict, 409),
    (errors.ChecksumMismatch, 400),
    (errors.PreconditionFailed, 412),
    (errors.TooLarge, 413),
    (errors.IncompleteBody, 400),
    (errors.InsufficientStorage, 507),
    (errors.BackendUnavailable, 503),
    (errors.StoragePermissionDenied, 500),
    (errors.StorageFault, 500),
]

#: Codes for statuses raised by the HTTP layer itself (CherryPy included).
CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    412: "precondition_failed",
    413: "too_large",
    414: "uri_too_long",
    416: "range_not_satisfiable",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
    505: "http_version_not_supported",
    503: "backend_unavailable",
    507: "insufficient_storage",
}


class ApiError(Exception):
    """An error answer decided by the HTTP layer (bad JSON, bad header...)."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODE_BY_STATUS.get(status, "error")
        self.message = message
        self.headers = headers or {}


def status_of(exc: errors.StorageError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(status: int, code: str, message: str, **extra: object) -> bytes:
    error: dict[str, object] = {"status": status, "code": code, "message": message}
    error.update(extra)
    return json_bytes({"error": error})


def json_bytes(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8") + b"\n"


def send_json(document: object, status: int = 200) -> bytes:
    response = cherrypy.serving.response
    response.status = status
    response.headers["Content-Type"] = "application/json"
    return json_bytes(document)


def send_error(status: int, code: str, message: str, **extra: object) -> bytes:
    response = cherrypy.serving.response
    response.status = status
    response.headers["Content-Type"] = "application/json"
    response.headers.pop("Content-Length", None)
    return error_body(status, code, message, **extra)


def send_storage_error(exc: errors.StorageError) -> bytes:
    extra = {"missing": exc.missing} if isinstance(exc, errors.MissingChunks) else {}
    return send_error(status_of(exc), exc.code, exc.message, **extra)


def cherrypy_error_page(status: str, message: str, traceback: str, version: str) -> str:
    """CherryPy's own errors (unknown route, 405, 500...) as our JSON."""
    code = int(str(status).split()[0])
    response = cherrypy.serving.response
    response.headers["Content-Type"] = "application/json"
    if code >= 500:
        message = "internal error; see the server log"
    return error_body(code, CODE_BY_STATUS.get(code, "error"), message).decode("utf-8")

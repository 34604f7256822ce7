"""Shaping answers: JSON documents and JSON errors.

Every error the service sends goes through :func:`blobsvc.http.errors.error_body`,
so clients see one shape whatever raised it: a resource, a storage driver,
the application itself.
"""

from __future__ import annotations

from blobsvc.http import exchange
from blobsvc.http.errors import error_body, json_bytes, status_of
from blobsvc.storage import errors


def send_json(document: object, status: int = 200) -> bytes:
    response = exchange.response()
    response.status = status
    response.headers["Content-Type"] = "application/json"
    return json_bytes(document)


def send_error(status: int, code: str, message: str, **extra: object) -> bytes:
    response = exchange.response()
    response.status = status
    response.headers["Content-Type"] = "application/json"
    response.headers.pop("Content-Length", None)
    return error_body(status, code, message, **extra)


def send_storage_error(exc: errors.StorageError) -> bytes:
    extra = {"missing": exc.missing} if isinstance(exc, errors.MissingChunks) else {}
    return send_error(status_of(exc), exc.code, exc.message, **extra)

"""Shaping answers in CherryPy: JSON documents and JSON errors.

Every error the service sends goes through :func:`blobsvc.http.errors.error_body`,
so clients see one shape whatever raised it: a resource, a storage driver,
CherryPy itself.
"""

from __future__ import annotations

import cherrypy

from blobsvc.http.errors import CODE_BY_STATUS, error_body, json_bytes, status_of
from blobsvc.storage import errors


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
    return error_body(code, CODE_BY_STATUS.get(code, "internal_error"), message).decode("utf-8")

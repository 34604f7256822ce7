"""From a request path to a resource's method, and every error to its answer.

Routing happens here rather than in CherryPy's object tree because object
paths are data: CherryPy's dispatcher would drop empty segments (``a//b``)
and redirect on trailing slashes, both of which mean something. Routes are
matched on the path as sent, still percent-encoded (``/%6detrics`` is no
route), so a proxy rule that filters on the path sees what blobsvc acts on.

A front end (the native API, and later others) is a :class:`FrontEnd`: it
matches a path to a :class:`Route` and authorises it before any body is
read or storage touched. The dispatcher tries each front end in turn, calls
the route's resource method named after the HTTP verb, and answers every
error through the front end that took the request: each speaks its own
error format (the native API JSON, the S3 API XML), from one
:class:`Failure` whatever raised it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence
from urllib.parse import quote_from_bytes, unquote_to_bytes, urlsplit

from blobsvc.auth import AuthDenied
from blobsvc.http import context, exchange
from blobsvc.http.errors import ApiError, status_of
from blobsvc.http.exchange import Request
from blobsvc.http.responses import send_error, send_storage_error
from blobsvc.metrics import Metrics
from blobsvc.storage.errors import StorageError

log = logging.getLogger(__name__)

#: Methods a resource may define; 405 lists those it does.
METHODS = ("GET", "HEAD", "PUT", "DELETE", "POST")


@dataclass(frozen=True)
class Route:
    resource: object
    #: A bounded name for logs and metrics (never an object path).
    name: str
    args: tuple[str, ...] = ()
    #: Query parameters the route reads; any other is refused. None: any.
    query: frozenset[str] | None = None


@dataclass(frozen=True)
class Failure:
    """An error answer in the native vocabulary (blobsvc.http.errors), and
    what raised it, for a front end to word in its own format."""

    status: int
    code: str
    message: str
    exception: Exception | None = None


class FrontEnd(Protocol):
    #: The WWW-Authenticate challenge sent with a 401.
    challenge: str

    def match(self, raw_path: str) -> Route | None:
        """The route for ``raw_path`` (still percent-encoded), or None."""

    def authorize(self, route: Route) -> None:
        """Raise AuthDenied unless the request may call ``route``."""

    def render_error(self, failure: Failure) -> bytes:
        """The body of the error answer, its status and headers set."""


def render_json_error(failure: Failure) -> bytes:
    """The native API's error answer: ``{"error": {...}}``."""
    if isinstance(failure.exception, StorageError):
        return send_storage_error(failure.exception)
    return send_error(failure.status, failure.code, failure.message)


class Dispatcher:
    """Every request goes through :meth:`handle`."""

    def __init__(self, front_ends: Sequence[FrontEnd], metrics: Metrics) -> None:
        self.front_ends = tuple(front_ends)
        self.metrics = metrics

    def route(self, raw_path: str) -> tuple[FrontEnd, Route]:
        for front_end in self.front_ends:
            route = front_end.match(raw_path)
            if route is not None:
                return front_end, route
        raise ApiError(404, f"no such endpoint: {raw_path}")

    def handle(self, request: Request) -> object:
        """Route, authorise and call ``request``; the answer's body."""
        front_end: FrontEnd | None = None
        try:
            # The path as sent: "//" and percent-escapes intact.
            front_end, route = self.route(raw_path_info(request.environ, request.path_info))
            context.current().route = route.name
            refuse_unknown_parameters(route, request.params)
            front_end.authorize(route)
            return resource_method(route.resource, request.method)(*route.args)
        except AuthDenied as exc:
            if exc.status == 401 and front_end is not None:
                exchange.response().headers["WWW-Authenticate"] = front_end.challenge
            return self._render(front_end, Failure(exc.status, exc.code, exc.message, exc))
        except ApiError as exc:
            exchange.response().headers.update(exc.headers)
            return self._render(front_end, Failure(exc.status, exc.code, exc.message, exc))
        except StorageError as exc:
            if status_of(exc) >= 500:
                self.metrics.backend_errors.labels(exc.code).inc()
                log.warning("%s %s: %s", request.method, request.path_info, exc.message)
            return self._render(front_end, Failure(status_of(exc), exc.code, exc.message, exc))

    def render_internal_error(self, request: Request, failure: Failure) -> bytes:
        """A 500 for what no handler expected, in the format of the front
        end the path belongs to (JSON when none takes it, or matching fails)."""
        front_end: FrontEnd | None = None
        try:
            front_end, _ = self.route(raw_path_info(request.environ, request.path_info))
        except Exception:  # noqa: BLE001 -- any failure here falls back to JSON
            front_end = None
        return self._render(front_end, failure)

    @staticmethod
    def _render(front_end: FrontEnd | None, failure: Failure) -> bytes:
        if front_end is None:
            return render_json_error(failure)
        return front_end.render_error(failure)


def resource_method(resource: object, method: str) -> Callable[..., object]:
    handler = getattr(resource, method, None) if method in METHODS else None
    if handler is None:
        allowed = [m for m in METHODS if hasattr(resource, m)]
        exchange.response().headers["Allow"] = ", ".join(sorted(allowed))
        raise ApiError(405, f"{method} is not allowed here")
    return handler


def refuse_unknown_parameters(route: Route, params: dict) -> None:
    """Refuse rather than ignore: ``?prefix=docs`` answering the whole
    listing looks like success."""
    if route.query is None:
        return
    unknown = sorted(name for name in params if name not in route.query)
    if unknown:
        known = ", ".join(sorted(route.query)) or "none"
        raise ApiError(400, f"unknown query parameter {unknown[0]!r} (this endpoint takes: {known})")


def raw_path_info(environ: dict, fallback: str) -> str:
    """The request path as the client sent it, still percent-encoded.

    cheroot's PATH_INFO cannot tell ``a%2Fb`` from ``a%252Fb`` (it decodes
    ``%25`` but keeps ``%2F``), so the raw request target is used instead.
    Without one (WebTest), PATH_INFO is already decoded once, and is
    encoded again here.
    """
    target = environ.get("REQUEST_URI")
    if target is None:
        return quote_from_bytes(environ.get("PATH_INFO", fallback).encode("latin-1"), safe="/")
    target = target.split("?", 1)[0]
    if not target.startswith("/"):  # absolute-form: http://host/path
        target = urlsplit(target).path or "/"
    return target


def decode_path(raw: str) -> str:
    """An object path, percent-decoded exactly once, as UTF-8."""
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeError:
        raise ApiError(400, "path is not valid UTF-8", code="invalid_path") from None

"""The WSGI application: routes, JSON errors, and the CherryPy settings.

Routing is done here rather than by CherryPy's object tree because object
paths are data: CherryPy's dispatcher would drop empty segments (``a//b``)
and redirect on trailing slashes, both of which mean something in the API.
"""

from __future__ import annotations

import logging
from urllib.parse import quote_from_bytes, unquote_to_bytes, urlsplit

import cherrypy

import blobsvc.requestlog  # noqa: F401  (registers the request-log tool)
from blobsvc.api import (
    CatResource,
    HealthResource,
    ListingResource,
    MetricsResource,
    MoveResource,
    ObjectResource,
    ReadyResource,
)
from blobsvc.auth import LEVELS, AuthDenied, Authenticator, Principal
from blobsvc.config import Config
from blobsvc.metrics import Metrics
from blobsvc.openapi import OpenApiResource
from blobsvc.responses import (
    ApiError,
    cherrypy_error_page,
    send_error,
    send_storage_error,
    status_of,
)
from blobsvc.storage import StorageDriver
from blobsvc.storage.errors import StorageError

log = logging.getLogger(__name__)

OBJECTS_PREFIX = "/v1/objects/"

#: Routes anyone may call: probes and the API description.
PUBLIC_ROUTES = frozenset({"/healthz", "/readyz", "/openapi.json"})
#: Routes that name their paths in a JSON body.
BODY_ROUTES = frozenset({"/v1/move", "/v1/cat"})

#: The query parameters each API route reads. Any other is refused rather
#: than ignored: ``?prefix=docs`` answering the whole listing looks like
#: success. Probes, /metrics and /openapi.json take what monitoring tools add.
#: A signed URL's parameters are the authenticator's to judge on any route.
_SIGNED = frozenset({"expires", "signature"})
QUERY_PARAMETERS = {
    "listing": _SIGNED | {"limit", "marker"},
    "object": _SIGNED,
    "/v1/move": _SIGNED,
    "/v1/cat": _SIGNED,
}

#: Sent with every answer: a browser must take Content-Type as given.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff"}


class Router(cherrypy.dispatch.Dispatcher):
    """Maps a request path to ``(resource, route name, path argument)``."""

    def __init__(self, driver: StorageDriver, config: Config, metrics: Metrics) -> None:
        super().__init__()
        self.auth = Authenticator(config.auth)
        self.metrics = metrics
        self.objects = ObjectResource(driver, config.server)
        self.listing = ListingResource(driver)
        self.fixed = {
            "/v1/move": MoveResource(driver, self.require_write),
            "/v1/cat": CatResource(driver, self.require_write, config.server),
            "/healthz": HealthResource(),
            "/readyz": ReadyResource(driver),
            "/openapi.json": OpenApiResource(),
            "/metrics": MetricsResource(metrics),
        }

    def route(self, raw_path: str) -> tuple[object, str, tuple[str, ...]]:
        """Route on the path as sent, still percent-encoded: ``/%6detrics``
        and ``/v1%2Fmove`` are no routes, so a proxy rule that filters on the
        path sees what blobsvc acts on. Only an object's own path is decoded."""
        if raw_path.startswith(OBJECTS_PREFIX):
            path = decode_path(raw_path[len(OBJECTS_PREFIX):])
            if path == "" or path.endswith("/"):
                return self.listing, "listing", (path,)
            return self.objects, "object", (path,)
        if raw_path == "/v1/objects":
            return self.listing, "listing", ("",)
        resource = self.fixed.get(raw_path)
        if resource is None:
            raise ApiError(404, f"no such endpoint: {raw_path}")
        return resource, raw_path, ()

    def authorize(self, route: str, args: tuple[str, ...]) -> None:
        """Decide access before any storage is touched (see blobsvc.auth)."""
        request = cherrypy.serving.request
        if route in PUBLIC_ROUTES or (route == "/metrics" and self.auth.settings.public_metrics):
            return
        object_path = args[0] if route == "object" else None
        principal = self.auth.identify(request.headers, request.params, request.method, object_path)
        request.blobsvc_principal = principal
        if route == "object":
            access = "read" if request.method in ("GET", "HEAD") else "write"
            self.auth.require(principal, access, args[0], request.method)
        elif route == "listing":
            self.auth.require(principal, "read", args[0], request.method)
        elif route == "/metrics":
            self.auth.require(principal, "read", "", request.method)
        elif route in BODY_ROUTES:
            # The paths are in the body (see require_write); before a byte of
            # it is read, the client must at least be able to write somewhere.
            self._require_some_write(principal)

    def _require_some_write(self, principal: Principal) -> None:
        best = max(LEVELS[principal.access], LEVELS[self.auth.settings.anonymous])
        if best >= LEVELS["write"]:
            return
        if not principal.authenticated and principal.only_path is None:
            raise AuthDenied(401, "credentials required")
        raise AuthDenied(403, f"{principal.name} may not write")

    def require_write(self, path: str) -> None:
        request = cherrypy.serving.request
        self.auth.require(request.blobsvc_principal, "write", path, request.method)

    def __call__(self, path_info: str) -> None:
        request = cherrypy.serving.request
        request.config = dict(cherrypy.config)
        request.config.update(request.app.config.get("/", {}))
        request.is_index = False
        request.handler = _ApiHandler(self, path_info)


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


def refuse_unknown_parameters(route: str, params: dict) -> None:
    allowed = QUERY_PARAMETERS.get(route)
    if allowed is None:
        return
    unknown = sorted(name for name in params if name not in allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise ApiError(400, f"unknown query parameter {unknown[0]!r} (this endpoint takes: {known})")


def decode_path(raw: str) -> str:
    """An object path, percent-decoded exactly once, as UTF-8."""
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeError:
        raise ApiError(400, "path is not valid UTF-8", code="invalid_path") from None


class _ApiHandler:
    """Calls the resource's verb method and turns errors into JSON."""

    def __init__(self, router: Router, path_info: str) -> None:
        self.router = router
        self.path_info = path_info

    def __call__(self) -> object:
        request = cherrypy.serving.request
        try:
            # CherryPy's path_info has "//" collapsed; the API needs it intact.
            path_info = raw_path_info(request.wsgi_environ, self.path_info)
            resource, route, args = self.router.route(path_info)
            request.blobsvc_route = route
            refuse_unknown_parameters(route, request.params)
            self.router.authorize(route, args)
            method = getattr(resource, request.method, None)
            if method is None:
                allowed = sorted(m for m in ("GET", "HEAD", "PUT", "DELETE", "POST")
                                 if hasattr(resource, m))
                cherrypy.serving.response.headers["Allow"] = ", ".join(allowed)
                raise ApiError(405, f"{request.method} is not allowed here")
            return method(*args)
        except AuthDenied as exc:
            headers = cherrypy.serving.response.headers
            if exc.status == 401:
                headers["WWW-Authenticate"] = self.router.auth.challenge
            code = "unauthorized" if exc.status == 401 else "forbidden"
            return send_error(exc.status, code, exc.message)
        except ApiError as exc:
            cherrypy.serving.response.headers.update(exc.headers)
            return send_error(exc.status, exc.code, exc.message)
        except StorageError as exc:
            if status_of(exc) >= 500:
                self.router.metrics.backend_errors.labels(exc.code).inc()
                log.warning("%s %s: %s", request.method, self.path_info, exc.message)
            return send_storage_error(exc)


def _unexpected_error() -> None:
    """Any exception a handler did not expect: a JSON 500, traceback logged."""
    log.exception("unhandled error in %s %s", cherrypy.serving.request.method,
                  cherrypy.serving.request.path_info)
    response = cherrypy.serving.response
    response.headers.clear()
    response.headers.update(SECURITY_HEADERS)
    response.body = send_error(500, "internal_error", "internal error; see the server log")


def _skip_cherrypy_access_log() -> None:
    return None


def build_app(config: Config, driver: StorageDriver,
              metrics: Metrics | None = None) -> cherrypy.Application:
    """The WSGI application serving ``driver`` with ``config``."""
    metrics = metrics or Metrics()
    app_config = {
        "/": {
            "request.dispatch": Router(driver, config, metrics),
            "request.process_request_body": False,
            # Query values arrive as Latin-1 (one char per byte) and are
            # decoded as UTF-8 by api.query_param, which answers 400, not
            # CherryPy's 404, when they are not UTF-8.
            "request.query_string_encoding": "latin-1",
            "request.show_tracebacks": False,
            "request.show_mismatched_params": False,
            "request.error_response": _unexpected_error,
            "error_page.default": cherrypy_error_page,
            "tools.trailing_slash.on": False,
            "tools.encode.on": False,
            "tools.gzip.on": False,
            "tools.sessions.on": False,
            "tools.blobsvc_request_log.on": True,
            "tools.blobsvc_request_log.metrics": metrics,
            "tools.blobsvc_request_log.access_log_on": config.log.access_log,
            "response.headers.server": "blobsvc",
            **{f"response.headers.{name}": value for name, value in SECURITY_HEADERS.items()},
        },
    }
    app = cherrypy.Application(None, script_name="", config=app_config)
    # CherryPy formats an Apache-style access line for every request even
    # when nothing logs it; blobsvc.requestlog writes its own.
    app.log.access = _skip_cherrypy_access_log
    app.log.access_log.propagate = False
    app.log.error_log.propagate = False
    return app


"""The native API's route table and who may call each route.

Route names are bounded (never an object path), so logs and metrics can
label by them. Access is decided here, before a body is read or storage
touched: objects and listings by their path, ``/metrics`` as a read of the
whole store, move, copy, cat and bulk delete first as "may write somewhere" (their paths are
in the body) and then path by path as the resource reads them.
"""

from __future__ import annotations

from blobsvc.auth import LEVELS, AuthDenied, Authenticator, Principal
from blobsvc.config import Config
from blobsvc.http import context, exchange
from blobsvc.http.dispatch import Failure, Route, decode_path, render_json_error
from blobsvc.metrics import Metrics
from blobsvc.native.openapi import OpenApiResource
from blobsvc.native.resources import (
    OBJECTS_URL,
    BulkDeleteResource,
    CatResource,
    CopyResource,
    HealthResource,
    ListingResource,
    MetricsResource,
    MoveResource,
    ObjectResource,
    ReadyResource,
)
from blobsvc.storage import StorageDriver

OBJECT = "object"
LISTING = "listing"
MOVE = "/v1/move"
COPY = "/v1/copy"
CAT = "/v1/cat"
DELETE_MANY = "/v1/delete"
HEALTH = "/healthz"
READY = "/readyz"
OPENAPI = "/openapi.json"
METRICS = "/metrics"

#: Routes anyone may call: probes and the API description.
PUBLIC_ROUTES = frozenset({HEALTH, READY, OPENAPI})
#: Routes that name their paths in a JSON body.
BODY_ROUTES = frozenset({MOVE, COPY, CAT, DELETE_MANY})

#: A signed URL's parameters are the authenticator's to judge on any route.
_SIGNED = frozenset({"expires", "signature"})
#: What each API route reads from the query. Probes, /metrics and
#: /openapi.json take what monitoring tools add (None).
QUERY_PARAMETERS: dict[str, frozenset[str]] = {
    LISTING: _SIGNED | {"limit", "marker", "prefix", "recursive"},
    OBJECT: _SIGNED,
    MOVE: _SIGNED,
    COPY: _SIGNED,
    CAT: _SIGNED,
    DELETE_MANY: _SIGNED,
}


class NativeApi:
    """``/v1/...`` and the service endpoints, as a front end of the dispatcher."""

    def __init__(self, driver: StorageDriver, config: Config, metrics: Metrics,
                 auth: Authenticator) -> None:
        self.auth = auth
        self.challenge = auth.challenge
        self.objects = ObjectResource(driver, config.server)
        self.listing = ListingResource(driver)
        self.fixed: dict[str, object] = {
            MOVE: MoveResource(driver, self.require_write),
            COPY: CopyResource(driver, self.require),
            CAT: CatResource(driver, self.require_write, config.server),
            DELETE_MANY: BulkDeleteResource(driver, self.require_write),
            HEALTH: HealthResource(),
            READY: ReadyResource(driver),
            OPENAPI: OpenApiResource(),
            METRICS: MetricsResource(metrics),
        }

    def match(self, raw_path: str) -> Route | None:
        """Only an object's own path is percent-decoded (see blobsvc.http.dispatch)."""
        if raw_path.startswith(OBJECTS_URL):
            path = decode_path(raw_path[len(OBJECTS_URL):])
            if path == "" or path.endswith("/"):
                return Route(self.listing, LISTING, (path,), QUERY_PARAMETERS[LISTING])
            return Route(self.objects, OBJECT, (path,), QUERY_PARAMETERS[OBJECT])
        if raw_path == "/v1/objects":
            return Route(self.listing, LISTING, ("",), QUERY_PARAMETERS[LISTING])
        resource = self.fixed.get(raw_path)
        if resource is None:
            return None
        return Route(resource, raw_path, (), QUERY_PARAMETERS.get(raw_path))

    def authorize(self, route: Route) -> None:
        """Decide access before any storage is touched (see blobsvc.auth)."""
        name = route.name
        if name in PUBLIC_ROUTES or (name == METRICS and self.auth.settings.public_metrics):
            return
        request = exchange.request()
        object_path = route.args[0] if name == OBJECT else None
        principal = self.auth.identify(request.headers, request.params, request.method, object_path)
        context.current().principal = principal
        if name == OBJECT:
            access = "read" if request.method in ("GET", "HEAD") else "write"
            self.auth.require(principal, access, route.args[0], request.method)
        elif name == LISTING:
            self.auth.require(principal, "read", route.args[0], request.method)
        elif name == METRICS:
            self.auth.require(principal, "read", "", request.method)
        elif name in BODY_ROUTES:
            # The paths are in the body (see require_write); before a byte of
            # it is read, the client must at least be able to write somewhere.
            self._require_some_write(principal)

    def render_error(self, failure: Failure) -> bytes:
        """Errors are JSON here (see API.md)."""
        return render_json_error(failure)

    def _require_some_write(self, principal: Principal) -> None:
        best = max(LEVELS[principal.access], LEVELS[self.auth.settings.anonymous])
        if best >= LEVELS["write"]:
            return
        if not principal.authenticated and principal.only_path is None:
            raise AuthDenied(401, "credentials required")
        raise AuthDenied(403, f"{principal.name} may not write")

    def require_write(self, path: str) -> None:
        self.require("write", path)

    def require(self, access: str, path: str) -> None:
        """``access`` to ``path`` for the client of a body route, as identified."""
        principal = context.current().principal
        assert principal is not None  # authorize() identified the client of a body route
        self.auth.require(principal, access, path, exchange.request().method)

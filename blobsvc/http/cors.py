"""Cross-origin requests (the Fetch standard's CORS), so a web app on another
origin can use the API from a browser.

Why in the application and before routing: a preflight (``OPTIONS`` with
``Access-Control-Request-Method``) carries no credentials by design, so it
is answered here, before any authorisation; every other answer to an
allowed origin, errors included, gets the headers that let the page read
it. Nothing changes for a request without ``Origin`` or with an origin not
configured: the browser then keeps the answer from the page, as it should.
"""

from __future__ import annotations

from blobsvc.config import CorsSettings, setting_items
from blobsvc.http.exchange import Request, Response
from blobsvc.http.responses import send_error

META_PREFIX = "x-object-meta-"


class Cors:
    """The configured policy, applied to one exchange at a time."""

    def __init__(self, settings: CorsSettings) -> None:
        origins = setting_items(settings.allow_origins)
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)
        self.methods = [m.upper() for m in setting_items(settings.allow_methods)]
        self.headers = frozenset(h.lower() for h in setting_items(settings.allow_headers))
        self.expose = setting_items(settings.expose_headers)
        self.max_age = settings.max_age

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    def is_preflight(self, request: Request) -> bool:
        return (request.method == "OPTIONS" and "Origin" in request.headers
                and "Access-Control-Request-Method" in request.headers)

    def preflight(self, request: Request, response: Response) -> bytes:
        """The answer to a preflight: 204 with what is allowed, or 403."""
        origin = request.headers["Origin"]
        method = request.headers["Access-Control-Request-Method"].strip()
        asked = [h.strip().lower() for h in
                 request.headers.get("Access-Control-Request-Headers", "").split(",") if h.strip()]
        refused = [h for h in asked if h not in self.headers and not h.startswith(META_PREFIX)]
        if not self._allows(origin):
            return send_error(403, "forbidden", f"CORS: origin {origin} is not allowed")
        if method not in self.methods:
            return send_error(403, "forbidden", f"CORS: method {method} is not allowed")
        if refused:
            return send_error(403, "forbidden", f"CORS: header {refused[0]} is not allowed")
        response.status = 204
        response.headers.pop("Content-Type", None)
        self._allow_origin(origin, response)
        response.headers["Access-Control-Allow-Methods"] = ", ".join(self.methods)
        if asked:
            response.headers["Access-Control-Allow-Headers"] = ", ".join(asked)
        response.headers["Access-Control-Max-Age"] = str(self.max_age)
        _vary(response, "Access-Control-Request-Method", "Access-Control-Request-Headers")
        return b""

    def decorate(self, request: Request, response: Response) -> None:
        """Let the page read this answer, if its origin is allowed."""
        origin = request.headers.get("Origin")
        if origin is None or not self._allows(origin):
            if self.enabled:
                _vary(response, "Origin")  # another origin gets another answer
            return
        self._allow_origin(origin, response)
        meta = [name for name in response.headers if name.lower().startswith(META_PREFIX)]
        response.headers["Access-Control-Expose-Headers"] = ", ".join([*self.expose, *meta])

    def _allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    def _allow_origin(self, origin: str, response: Response) -> None:
        response.headers["Access-Control-Allow-Origin"] = "*" if self.any_origin else origin
        if not self.any_origin:
            _vary(response, "Origin")


def _vary(response: Response, *names: str) -> None:
    present = [v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()]
    for name in names:
        if name.lower() not in (v.lower() for v in present):
            present.append(name)
    response.headers["Vary"] = ", ".join(present)

"""One request's own state, from its first hook to its log line.

CherryPy's request object is shared machinery; what blobsvc learns about a
request (its id, route, principal, the bytes it brought) lives in one typed
object beside it instead of in loose attributes, so every reader names the
same fields.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cherrypy

from blobsvc.auth import Principal

#: The route of a request that never reached one (a malformed path, say).
UNROUTED = "unknown"


@dataclass
class RequestContext:
    request_id: str
    started: float = field(default_factory=time.monotonic)
    route: str = UNROUTED
    #: Who the client is, once the front end has asked (None: not yet, or a public route).
    principal: Principal | None = None
    #: Body bytes taken from the client (uploads).
    bytes_in: int = 0
    #: What the request did, as the resource reports it (for the metrics).
    wrote_object: bool = False
    deleted_object: bool = False
    #: The answer's body is an object's bytes (counted as sent object bytes).
    sends_object: bool = False


def begin(request_id: str) -> RequestContext:
    context = RequestContext(request_id)
    cherrypy.serving.request.blobsvc = context
    return context


def current() -> RequestContext:
    """The running request's context (one is made for every request, even
    one CherryPy refuses before dispatching it)."""
    context = getattr(cherrypy.serving.request, "blobsvc", None)
    return context if context is not None else begin("-")

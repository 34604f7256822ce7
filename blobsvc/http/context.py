"""One request's own state, from its start to its log line.

What blobsvc learns about a request (its id, route, principal, the bytes it
brought) lives in one typed object on the exchange, so every reader names
the same fields.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from blobsvc.auth import Principal
from blobsvc.http import exchange

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
    #: Objects the request deleted (a bulk delete removes many).
    deleted_objects: int = 0
    #: The answer's body is an object's bytes (counted as sent object bytes).
    sends_object: bool = False


def begin(request_id: str) -> RequestContext:
    context = RequestContext(request_id)
    exchange.request().context = context
    return context


def current() -> RequestContext:
    """The running request's context (one is made for every request, even
    one refused before it reached a route)."""
    context: RequestContext | None = exchange.request().context
    return context if context is not None else begin("-")

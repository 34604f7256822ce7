"""The WSGI application: one exchange from request to log line.

CherryPy serves it grafted onto its tree (:func:`mount`, CherryPy's
documented way to host a WSGI callable): cheroot parses and frames, the
dispatcher (:mod:`blobsvc.http.dispatch`) routes, authorises and calls a
resource, and this module turns the answer into WSGI's status, headers and
body, running the request log once the body has been sent. It does, for
blobsvc's answers, what CherryPy's request machinery did: a Content-Length
for whole bodies, none for 204/304, no body for HEAD, a JSON 500 for
anything unexpected.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable, Iterator

from cherrypy._cptree import Tree

from blobsvc.auth import Authenticator
from blobsvc.config import Config
from blobsvc.http import context, exchange, requestlog
from blobsvc.http.cors import Cors
from blobsvc.http.dispatch import Dispatcher, Failure, FrontEnd
from blobsvc.http.exchange import SECURITY_HEADERS, Request, Response
from blobsvc.metrics import Metrics
from blobsvc.native.routes import NativeApi
from blobsvc.s3.routes import S3Api
from blobsvc.storage import StorageDriver

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]

#: Answers that never carry a body (RFC 9110 6.4.1).
_BODILESS = frozenset({204, 304})

#: The route name of a CORS preflight, in logs and metrics.
PREFLIGHT = "cors-preflight"


class Application:
    """blobsvc's WSGI application."""

    def __init__(self, dispatcher: Dispatcher, metrics: Metrics, access_log: bool,
                 cors: Cors | None = None) -> None:
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.access_log = access_log
        self.cors = cors if cors is not None and cors.enabled else None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request, response = Request(environ), Response(time.time())
        exchange.begin(request, response)
        try:
            requestlog.start(self.metrics)
            response.after_sent(lambda: requestlog.finish(self.metrics, self.access_log))
            preflight = self.cors is not None and self.cors.is_preflight(request)
            try:
                if preflight:  # answered before routing: it carries no credentials
                    assert self.cors is not None
                    context.current().route = PREFLIGHT
                    response.body = self.cors.preflight(request, response)
                else:
                    response.body = self.dispatcher.handle(request)
            except Exception:
                _unexpected_error(request, response, self.dispatcher)
            if self.cors is not None and not preflight:
                self.cors.decorate(request, response)
            body = _finalize(request, response)
            start_response(response.status_line(), _header_list(response))
        except BaseException:
            _close(response)
            raise
        return Answer(body, response)


class Answer:
    """The body as WSGI iterates it; ``close`` runs what waits for the end."""

    def __init__(self, body: Iterable[bytes], response: Response) -> None:
        self._body = body
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        _close(self._response)


def _close(response: Response) -> None:
    try:
        response.run_after_sent()
    finally:
        exchange.end()


#: Headers an answer keeps when it turns into a 500: the rest were the
#: resource's, for an answer that is not sent.
_KEPT_ON_ERROR = ("Server", "Date", "X-Request-Id", *SECURITY_HEADERS)


def _unexpected_error(request: Request, response: Response, dispatcher: Dispatcher) -> None:
    """Any exception a handler did not expect: a 500 in the format of the
    front end that took the request, traceback logged (the request id in
    both, to find one from the other)."""
    log.exception("unhandled error in %s %s (request id %s)", request.method, request.path_info,
                  response.headers.get("X-Request-Id", "-"))
    kept = {name: response.headers[name] for name in _KEPT_ON_ERROR if name in response.headers}
    response.headers.clear()
    dict.update(response.headers, kept)
    response.stream = False
    response.status = 500
    response.body = dispatcher.render_internal_error(
        request, Failure(500, "internal_error", "internal error; see the server log"))


def _finalize(request: Request, response: Response) -> Iterable[bytes]:
    """The body to send, with the framing headers that go with it."""
    body = response.body
    if response.status in _BODILESS:
        response.headers.pop("Content-Length", None)
        return b"",
    if not response.stream:
        if body is None:
            body = b""
        assert isinstance(body, bytes), "a whole answer is bytes"
        response.headers.setdefault("Content-Length", str(len(body)))
        body = (body,)
    if request.method == "HEAD":
        return ()
    return body


def _header_list(response: Response) -> list[tuple[str, str]]:
    """WSGI's headers: Latin-1 text, one pair per header."""
    return [(name, str(value)) for name, value in response.headers.items()]


def build_app(config: Config, driver: StorageDriver,
              metrics: Metrics | None = None) -> Application:
    """The WSGI application serving ``driver`` with ``config``."""
    metrics = metrics or Metrics()
    driver.metrics = metrics  # every storage call is timed and its errors counted
    auth = Authenticator(config.auth)
    front_ends: list[FrontEnd] = [NativeApi(driver, config, metrics, auth)]
    if config.s3.enabled:
        # Tried first, for a virtual-hosted request's path is all key (even
        # /healthz); path style declines every native path, so for it the
        # order changes nothing.
        front_ends.insert(0, S3Api(driver, config, auth))
    return Application(Dispatcher(front_ends, metrics), metrics, config.log.access_log,
                       Cors(config.cors))


def mount(app: Application) -> Tree:
    """A CherryPy tree with ``app`` grafted at the root, for cheroot to serve."""
    tree = Tree()
    tree.graft(app, script_name="")
    return tree

"""One HTTP exchange, the request and the answer being built, as the
resources see it.

blobsvc's application is a WSGI callable that CherryPy serves grafted onto
its tree (``cherrypy.tree.graft``): CherryPy's own request machinery (its
config namespaces, hook points, tools and body processing, none of which
blobsvc used) cost more than a small GET's whole handling. This module is
what remains of it: the request's method, headers, query parameters and
body stream, the answer's status, headers and body, and the callbacks that
run once the answer has been sent. One exchange at a time per thread, as
cheroot runs a request on one worker thread from its head to its close.
"""

from __future__ import annotations

import threading
from http import HTTPStatus
from typing import Any, BinaryIO, Callable
from urllib.parse import parse_qsl

from cherrypy.lib.httputil import HeaderMap

from blobsvc.http import dates

#: Sent with every answer: a browser must take Content-Type as given.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff"}

#: Where the server puts the header names as the client spelled them:
#: WSGI's ``HTTP_*`` keys lose the difference between ``_`` and ``-``.
HEADER_NAMES_KEY = "blobsvc.header_names"

#: Headers whose WSGI names lack the HTTP_ prefix (PEP 3333).
_UNPREFIXED = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}


class Request:
    """What the client sent (the body still unread, in ``rfile``)."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method: str = environ["REQUEST_METHOD"]
        self.headers = HeaderMap()
        # Title-cased keys straight into the dict, as the map would store them.
        dict.update(self.headers, _headers_of(environ))
        #: The header names as sent, when the server kept them (else None).
        self.header_names: list[str] | None = environ.get(HEADER_NAMES_KEY)
        self.params = _query_params(environ.get("QUERY_STRING", ""))
        self.rfile: BinaryIO = environ["wsgi.input"]
        self.remote_ip: str = environ.get("REMOTE_ADDR", "")
        #: The path once percent-decoded, as UTF-8 where it is (for logs).
        self.path_info = _decoded_path(environ.get("PATH_INFO", ""))
        #: blobsvc's own state of the request (blobsvc.http.context).
        self.context: Any = None


class Response:
    """The answer being built: status, headers, body, and what runs after it."""

    def __init__(self, now: float) -> None:
        self.status = 200
        self.headers = HeaderMap()
        dict.update(self.headers, {"Server": "blobsvc", "Date": dates.now(now), **SECURITY_HEADERS})
        self.body: Any = b""
        #: The body streams an object (its length is set by the resource).
        self.stream = False
        self._after: list[Callable[[], None]] = []

    def after_sent(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the answer has been sent, or abandoned."""
        self._after.append(callback)

    def run_after_sent(self) -> None:
        """The callbacks, latest first; each runs even if another raised."""
        error: BaseException | None = None
        while self._after:
            try:
                self._after.pop()()
            except BaseException as exc:  # noqa: BLE001 -- re-raised below
                error = error or exc
        if error is not None:
            raise error

    def status_line(self) -> str:
        status = HTTPStatus(self.status)
        return f"{status.value} {status.phrase}"


def _headers_of(environ: dict[str, Any]) -> dict[str, str]:
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").title()] = value
        elif key in _UNPREFIXED:
            headers[_UNPREFIXED[key]] = value
    return headers


def _query_params(query: str) -> dict[str, str | list[str]]:
    """Each name once, or with the list of its values when repeated.

    Values stay Latin-1 (one char per byte): resources decode them as UTF-8
    and answer 400 when they are not. Only ``&`` separates, as RFC 3986
    and browsers have it (CherryPy also split on ``;`` and read
    ``?12,34`` as an image map's coordinates, raising on ``?1,2x``).
    """
    params: dict[str, str | list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, encoding="latin-1"):
        seen = params.get(name)
        if seen is None:
            params[name] = value
        elif isinstance(seen, list):
            seen.append(value)
        else:
            params[name] = [seen, value]
    return params


def _decoded_path(path_info: str) -> str:
    """PATH_INFO (WSGI's Latin-1 text) as UTF-8 text where it decodes."""
    try:
        return path_info.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return path_info


_current = threading.local()


def begin(request: Request, response: Response) -> None:
    _current.request, _current.response = request, response


def end() -> None:
    _current.request = _current.response = None


def request() -> Request:
    """The exchange running on this thread: its request."""
    running: Request | None = getattr(_current, "request", None)
    if running is None:
        raise RuntimeError("no HTTP request is being served on this thread")
    return running


def response() -> Response:
    """The exchange running on this thread: its answer."""
    running: Response | None = getattr(_current, "response", None)
    if running is None:
        raise RuntimeError("no HTTP request is being served on this thread")
    return running

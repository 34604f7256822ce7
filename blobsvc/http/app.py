"""The WSGI application: CherryPy's settings around the dispatcher.

CherryPy is used for its request/response machinery and hooks only: the
dispatcher (:mod:`blobsvc.http.dispatch`) does the routing, and every answer,
errors included, is shaped by blobsvc.
"""

from __future__ import annotations

import logging
import time
from http.cookies import SimpleCookie

import cherrypy
from cherrypy._cprequest import HookMap, Request, Response, hookpoints
from cherrypy.lib import httputil

from blobsvc.auth import Authenticator
from blobsvc.config import Config
from blobsvc.http import dates, requestlog
from blobsvc.http.dispatch import Dispatcher
from blobsvc.http.responses import cherrypy_error_page, send_error
from blobsvc.metrics import Metrics
from blobsvc.native.routes import NativeApi
from blobsvc.storage import StorageDriver

log = logging.getLogger(__name__)

#: Sent with every answer: a browser must take Content-Type as given.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff"}


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


class BlobsvcRequest(Request):
    """CherryPy's request with blobsvc's settings as class attributes.

    CherryPy applies an application's config to every request, entry by
    entry; set here once instead, they cost nothing per request (a small
    GET spent a tenth of its time in that loop).
    """

    process_request_body = False
    # Query values arrive as Latin-1 (one char per byte) and are decoded as
    # UTF-8 by resources.query_param, which answers 400, not CherryPy's
    # 404, when they are not UTF-8.
    query_string_encoding = "latin-1"
    show_tracebacks = False
    show_mismatched_params = False
    error_response = staticmethod(_unexpected_error)
    error_page = {"default": cherrypy_error_page}


class BlobsvcResponse(Response):
    """CherryPy's response with blobsvc's own headers from the start.

    It sets what ``Response.__init__`` sets (a test holds the two to the same
    attributes) without formatting the Date header anew for every answer.
    """

    def __init__(self) -> None:
        self.status = None
        self.header_list = None
        self._body: list[bytes] = []
        self.time = time.time()
        self.headers = httputil.HeaderMap()
        # Keys already in their stored (title) case: dict.update skips the
        # map's key transformation, as CherryPy's own __init__ does.
        dict.update(self.headers, {"Content-Type": "text/html", "Server": "blobsvc",
                                   "Date": dates.now(self.time), **SECURITY_HEADERS})
        self.cookie = SimpleCookie()


def build_app(config: Config, driver: StorageDriver,
              metrics: Metrics | None = None) -> cherrypy.Application:
    """The WSGI application serving ``driver`` with ``config``."""
    metrics = metrics or Metrics()
    driver.metrics = metrics  # every storage call is timed and its errors counted
    native = NativeApi(driver, config, metrics, Authenticator(config.auth))
    hooks = HookMap(hookpoints)
    hooks.attach("on_start_resource", requestlog.start, priority=10,
                 metrics=metrics, access_log_on=config.log.access_log)
    # One request class per application: the dispatcher and hooks are its own.
    request_class = type("Request", (BlobsvcRequest,),
                         {"dispatch": Dispatcher([native], metrics), "hooks": hooks})
    app = cherrypy.Application(None, script_name="", config={})
    app.request_class = request_class
    app.response_class = BlobsvcResponse
    # CherryPy formats an Apache-style access line for every request even
    # when nothing logs it; blobsvc.http.requestlog writes its own.
    app.log.access = _skip_cherrypy_access_log
    app.log.access_log.propagate = False
    app.log.error_log.propagate = False
    return app

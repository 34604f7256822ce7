"""One access-log line per request, through the standard logging module.

CherryPy's own access log is off (it writes Apache-style lines to stdout);
this tool logs ``method path status bytes duration`` to the ``blobsvc.access``
logger once the response has been sent, streamed bodies included.
"""

from __future__ import annotations

import logging
import time

import cherrypy

access_log = logging.getLogger("blobsvc.access")


def _start() -> None:
    cherrypy.serving.request.blobsvc_started = time.monotonic()
    cherrypy.serving.request.hooks.attach("on_end_request", _log_request, priority=90)


def _log_request() -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    request, response = cherrypy.serving.request, cherrypy.serving.response
    duration = time.monotonic() - getattr(request, "blobsvc_started", time.monotonic())
    status = str(response.status).split(" ", 1)[0]
    sent = response.headers.get("Content-Length", "-") if request.method != "HEAD" else "0"
    access_log.info("%s %s %s %s %s %.1fms", request.remote.ip, request.method,
                    request.path_info, status, sent, duration * 1000)


cherrypy.tools.blobsvc_access_log = cherrypy.Tool("on_start_resource", _start, priority=10)

"""Per-request bookkeeping: request id, one access-log line, metrics.

The application (:mod:`blobsvc.http.app`) calls :func:`start` when the
request arrives and :func:`finish` once the answer's last byte has been
sent (or the answer abandoned), so durations and byte counts are true for
large downloads too.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from urllib.parse import quote

from blobsvc.http import context, exchange
from blobsvc.http.exchange import Response
from blobsvc.logs import escape_text
from blobsvc.metrics import Metrics

access_log = logging.getLogger("blobsvc.access")

#: A client's request id is echoed only if it is short and plain.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
#: Characters a logged path keeps as they are (RFC 3986 path characters
#: but '%'); everything else is percent-encoded, spaces and line breaks too.
_PATH_SAFE = "/!$&'()*+,;=:@-._~"


def start(metrics: Metrics) -> None:
    incoming = exchange.request().headers.get("X-Request-Id", "")
    request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else secrets.token_hex(8)
    context.begin(request_id)
    exchange.response().headers["X-Request-Id"] = request_id
    metrics.in_flight.inc()


def finish(metrics: Metrics, access_log_on: bool) -> None:
    request, response = exchange.request(), exchange.response()
    state = context.current()
    metrics.in_flight.dec()
    duration = time.monotonic() - state.started
    status = response.status
    bytes_out = _body_bytes_sent(request.method, status, response)
    object_bytes = bytes_out if state.sends_object else 0
    metrics.observe(request.method, state.route, status, duration, state.bytes_in, object_bytes,
                    wrote=state.wrote_object, deleted=state.deleted_objects)
    if access_log_on and access_log.isEnabledFor(logging.INFO):
        principal = state.principal
        fields = {
            "remote": _field(request.remote_ip), "method": _field(request.method),
            "path": _logged_path(request.path_info),
            "route": _field(state.route), "status": status, "bytes_in": state.bytes_in,
            "bytes_out": bytes_out, "duration_ms": round(duration * 1000, 1),
            "request_id": _field(state.request_id),
            "user": _field(principal.name if principal is not None else "-"),
        }
        access_log.info("%(remote)s %(method)s %(path)s %(status)s in=%(bytes_in)s "
                        "out=%(bytes_out)s %(duration_ms)sms id=%(request_id)s user=%(user)s",
                        fields, extra=fields)


def _logged_path(path: str) -> str:
    """The path percent-encoded (UTF-8), so it is one printable field: no
    space, line break or backslash from the client survives in it."""
    return quote(path, safe=_PATH_SAFE, errors="surrogatepass")


def _field(value: object) -> str:
    """Any other field of the line: non-printables, spaces and backslashes
    escaped, so a field can neither break the line nor pose as another."""
    return escape_text(str(value), also=" \\")


def _body_bytes_sent(method: str, status: int, response: Response) -> int:
    """Body bytes really sent: listings and errors too, and for a download
    cut short, what went out rather than what was announced."""
    if method == "HEAD" or status in (204, 304) or status < 200:
        return 0
    sent = getattr(response.body, "sent", None)  # a streamed object counts its bytes
    if sent is not None:
        return sent
    length = str(response.headers.get("Content-Length", 0))
    return int(length) if length.isdigit() else 0

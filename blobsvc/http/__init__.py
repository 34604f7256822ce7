"""What every front end shares, between the socket and the resources.

In the order a request meets them: :mod:`~blobsvc.http.wire` (cheroot, the
HTTP server) with :mod:`~blobsvc.http.connections` (waiting for a whole
request head) and :mod:`~blobsvc.http.framing` (strict RFC 9112 framing);
:mod:`~blobsvc.http.app` (the WSGI application CherryPy serves) with
:mod:`~blobsvc.http.exchange` (the request and its answer) and
:mod:`~blobsvc.http.dispatch` (route, authorise, call, answer errors in
JSON); :mod:`~blobsvc.http.context` (one request's state) and
:mod:`~blobsvc.http.requestlog` (its log line and metrics). Resources use
:mod:`~blobsvc.http.bodies`, :mod:`~blobsvc.http.ranges`,
:mod:`~blobsvc.http.preconditions` and :mod:`~blobsvc.http.responses`; every
error a client can see is named once, in :mod:`~blobsvc.http.errors`.
"""

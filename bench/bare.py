"""``python -m bench.bare --root DIR --port N [--workers N]``: W2's ceiling.

A bare CherryPy file store: GET (and HEAD) serve a file under the root,
PUT writes the body to one; no auth, no metrics, no access log, no API
checks. It runs the way blobsvc does -- worker processes (one per CPU by
default) each serving the port through SO_REUSEPORT with 16 threads, the
same listen backlog and keep-alive limit -- so blobsvc divided by it is the
cost of blobsvc's own code, not of its process model or of cheroot's
defaults. A benchmark tool only: it listens on loopback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import cherrypy
from cheroot import wsgi
from cherrypy.lib.static import serve_file

THREADS = 16          # blobsvc's server.threads
BACKLOG = 1024        # blobsvc's server.listen_backlog (cheroot's default of 5 drops SYNs)
KEEP_ALIVE = 4096     # blobsvc keeps as many idle connections (cheroot's default: 10)
CHUNK = 1024 * 1024   # PUT bodies are copied in pieces this big


class Store:
    """Every path is a file under ``root``."""

    def __init__(self, root: str) -> None:
        self.root = root

    @cherrypy.expose
    def default(self, *parts: str) -> object:
        path = os.path.normpath(os.path.join(self.root, *parts))
        if not path.startswith(self.root + os.sep):  # not even a benchmark writes outside
            raise cherrypy.NotFound()
        method = cherrypy.request.method
        if method in ("GET", "HEAD"):
            return serve_file(path)
        if method == "PUT":
            return self.put(path)
        raise cherrypy.HTTPError(405)

    @staticmethod
    def put(path: str) -> bytes:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        body = cherrypy.request.rfile  # the server's reader: it stops at the body's end
        with open(path, "wb") as stream:
            while chunk := body.read(CHUNK):
                stream.write(chunk)
        cherrypy.response.status = 201
        return b""


def application(root: str) -> cherrypy.Application:
    # Bodies are bytes to store whatever their Content-Type says: never parsed.
    app = cherrypy.Application(Store(root), script_name="",
                               config={"/": {"request.show_tracebacks": False,
                                             "request.process_request_body": False}})
    app.log.access = lambda: None  # no access log: the floor, not a service
    app.log.screen = False
    return app


def serve(app: cherrypy.Application, port: int) -> None:
    """One worker: a cheroot server on the shared port until SIGTERM."""
    server = wsgi.Server(("127.0.0.1", port), app, numthreads=THREADS, server_name="bare",
                         request_queue_size=BACKLOG, reuse_port=True)
    server.keep_alive_conn_limit = KEEP_ALIVE
    server.max_request_body_size = 0

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt  # safe_start stops the server on it

    signal.signal(signal.SIGTERM, interrupt)
    server.safe_start()


def supervise(app: cherrypy.Application, port: int, workers: int) -> int:
    """Fork the workers, pass SIGTERM/SIGINT on to them, wait for them all."""
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                serve(app, port)
                code = 0
            finally:
                os._exit(code)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = False
    for child in children:
        _, status = os.waitpid(child, 0)
        failed = failed or os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="directory the files live in")
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes sharing the port (default: one per CPU)")
    args = parser.parse_args(argv)
    cherrypy.config.update({"engine.autoreload.on": False, "log.screen": False})
    return supervise(application(os.path.realpath(args.root)), args.port, max(1, args.workers))


if __name__ == "__main__":
    sys.exit(main())

"""Serving the app: cheroot's WSGI server, signals, and a clean stop.

cheroot is used directly rather than through CherryPy's engine: the engine
adds autoreload and plugin machinery a service does not need, and hides the
server's socket options.
"""

from __future__ import annotations

import logging
import signal
import threading

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from blobsvc import logs
from blobsvc.app import build_app
from blobsvc.config import Config
from blobsvc.storage import StorageDriver, create_driver

log = logging.getLogger(__name__)



def make_server(config: Config, driver: StorageDriver) -> wsgi.Server:
    server = wsgi.Server(
        (config.server.host, config.server.port),
        build_app(config, driver),
        numthreads=config.server.threads,
        timeout=config.server.socket_timeout,
        shutdown_timeout=config.server.shutdown_timeout,
        server_name="blobsvc",
    )
    if config.tls.enabled:
        server.ssl_adapter = BuiltinSSLAdapter(config.tls.cert, config.tls.key)
    # The app enforces max_object_size itself, streaming; 0 = no server cap.
    server.max_request_body_size = 0
    server.max_request_header_size = 64 * 1024
    return server


def serve(config: Config) -> int:
    """Run until SIGTERM or SIGINT, then let in-flight requests finish."""
    logs.configure(config.log.level, config.log.format)
    driver = create_driver(config.storage.driver, config.storage.params)
    server = make_server(config, driver)
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server.prepare()  # binds now, so a busy port fails here, loudly
    host, port = server.bind_addr[:2]
    scheme = "https" if config.tls.enabled else "http"
    log.info("blobsvc serving %s driver on %s://%s:%d", driver.name, scheme, host, port)
    thread = threading.Thread(target=server.serve, name="blobsvc-http", daemon=True)
    thread.start()
    while not stop_requested.wait(timeout=1.0):
        if not thread.is_alive():
            log.error("HTTP server stopped unexpectedly")
            return 1
    server.stop()
    thread.join(config.server.shutdown_timeout)
    driver.close()
    log.info("stopped")
    return 0

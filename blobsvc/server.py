"""Serving the app: cheroot's WSGI server, worker processes, clean stops.

cheroot is used directly rather than through CherryPy's engine: the engine
refuses a port another process already listens on and never passes
``reuse_port`` to cheroot, and it adds autoreload machinery a service does
not need.

One Python process is bound by one GIL, so ``server.workers`` processes
share the port through ``SO_REUSEPORT`` and the kernel spreads connections
among them. The parent only supervises: it reserves the port first (so a
port that is already taken fails loudly, and port 0 means one port for
all), restarts a worker that dies, and on SIGTERM/SIGINT passes the signal
on and waits for the workers to finish their requests.
"""

from __future__ import annotations

import ctypes
import logging
import os
import resource
import signal
import socket
import threading
import time
from urllib.parse import urlsplit

from cheroot.ssl.builtin import BuiltinSSLAdapter

from blobsvc import logs
from blobsvc.auth import AuthSettings
from blobsvc.config import Config
from blobsvc.http import wire
from blobsvc.http.app import build_app, mount
from blobsvc.metrics import Metrics, worker_exited
from blobsvc.storage import StorageDriver, create_driver

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # from glibc's malloc.h
_PR_SET_PDEATHSIG = 1  # from linux/prctl.h

#: After in-flight requests, time a worker gets to close its backend (the
#: Swift driver deletes segments it holds back) before it is killed.
_CLEANUP_SECONDS = 30

#: A worker that dies sooner than this after its start is not restarted:
#: it would only die again (bad storage root, broken backend library).
_MIN_WORKER_LIFETIME = 5.0


def make_server(config: Config, driver: StorageDriver, port: int | None = None,
                reuse_port: bool = False, metrics: Metrics | None = None) -> wire.Server:
    server = wire.Server(
        (config.server.host, config.server.port if port is None else port),
        mount(build_app(config, driver, metrics)),
        numthreads=config.server.threads,
        # cheroot's default backlog of 5 drops the SYNs of a burst of new
        # clients, each of which then waits a second to retry.
        request_queue_size=config.server.listen_backlog,
        timeout=config.server.socket_timeout,
        shutdown_timeout=config.server.shutdown_timeout,
        server_name="blobsvc",
        reuse_port=reuse_port,
        header_timeout=config.server.header_timeout,
        max_connections=config.server.max_connections,
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
    limit_malloc_arenas()
    raise_open_file_limit(config.server.max_connections)
    workers = config.server.effective_workers
    scheme = "https" if config.tls.enabled else "http"
    if workers == 1:
        return run_worker(config, port=None, reuse_port=False, scheme=scheme)
    guard = reserve_port(config.server.host, config.server.port)
    port = guard.getsockname()[1]
    # Build the driver once up front so a bad root or backend setting fails
    # here, with its message, instead of in every worker.
    create_driver(config.storage.driver, config.storage.params).close()
    log.info("blobsvc serving %s", describe(config, scheme, config.server.host, port, workers))
    try:
        return Supervisor(config, port, workers).run()
    finally:
        guard.close()


def describe(config: Config, scheme: str, host: str, port: int, workers: int) -> str:
    """``DRIVER driver on URL with N workers; where objects live; auth``.

    What the start-up line (and check-config) says: the address alone hides
    the mistakes that cost most, data in an unexpected place or a service
    open to anyone.
    """
    plural = "" if workers == 1 else "s"
    return (f"{config.storage.driver} driver on {scheme}://{host}:{port} with {workers} worker{plural}; "
            f"{storage_summary(config)}; {auth_summary(config.auth)}")


def storage_summary(config: Config) -> str:
    """Where the objects live, as the driver will resolve it."""
    params = config.storage.params
    if config.storage.driver == "filesystem":
        return f"objects in {os.path.realpath(params['root'])}"
    if config.storage.driver == "swift":
        host = urlsplit(params["auth_url"]).netloc.rpartition("@")[2]  # never credentials
        return f"objects in Swift container {params['container']} at {host or params['auth_url']}"
    if config.storage.driver == "memory":
        return "objects in memory (lost at exit)"
    return f"objects in the {config.storage.driver} driver"


def auth_summary(settings: AuthSettings) -> str:
    """Whether requests are checked, and by which means."""
    if not settings.enabled:
        return "auth off: anyone who can connect may read and write"
    kinds = [f"{count} {kind}{'' if count == 1 else 's'}"
             for count, kind in ((len(settings.users), "user"), (len(settings.tokens), "token")) if count]
    if settings.signing_key:
        kinds.append("signed URLs")
    kinds.append(f"anonymous {settings.anonymous}")
    return "auth on: " + ", ".join(kinds)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Keep glibc from giving each of the many threads its own heap.

    With one arena per thread, buffers freed by one request stay in that
    thread's heap and RSS grows with the thread count (measured: +20 MiB
    after listing 100 000 entries, 62-81 MiB peaks under parallel GETs;
    with two arenas +2 MiB and 43 MiB).
    """
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_ARENA_MAX, arenas)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


def raise_open_file_limit(connections: int) -> None:
    """Let a worker hold ``connections`` sockets and its files besides.

    The usual soft limit (1 024 descriptors) is below what a few hundred
    idle clients and a busy store need; the hard limit is the operator's.
    """
    wanted = connections + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < wanted:
            log.warning("open files limited to %d; server.max_connections=%d needs %d",
                        target, connections, wanted)


def die_with_parent(parent: int) -> None:
    """Have the kernel send SIGTERM to this worker when its supervisor dies.

    A worker left behind by a supervisor killed with SIGKILL would keep
    serving the port (SO_REUSEPORT) with an old config and old credentials
    beside the instance restarted in its place. Linux only; the worker's
    loop also watches its parent, for other systems and for the moment
    before this call.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind (not listen) ``host:port`` for the workers to share.

    Binding first without SO_REUSEPORT makes a port that any process already
    uses fail now, with a clear error; the bound socket then keeps the port
    (and the number chosen for port 0) for this service's workers.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
    try:
        probe.bind((host, port))
        port = probe.getsockname()[1]
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    finally:
        probe.close()
    guard = socket.socket(family, socket.SOCK_STREAM)
    guard.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    guard.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    guard.bind((host, port))
    return guard


def run_worker(config: Config, port: int | None, reuse_port: bool, scheme: str = "http",
               parent: int | None = None) -> int:
    """Serve in this process until SIGTERM/SIGINT, or until ``parent`` (the
    supervisor, when there is one) is gone."""
    driver = create_driver(config.storage.driver, config.storage.params)
    server = make_server(config, driver, port, reuse_port)
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server.prepare()  # binds now, so a busy port fails here, loudly
    if not reuse_port:
        host, bound_port = server.bind_addr[:2]
        log.info("blobsvc serving %s", describe(config, scheme, host, bound_port, 1))
    thread = threading.Thread(target=server.serve, name="blobsvc-http", daemon=True)
    thread.start()
    grower = wire.PoolGrower(server, config.server.max_threads)
    grower.start()
    while not stop_requested.wait(timeout=1.0):
        if not thread.is_alive():
            log.error("HTTP server stopped unexpectedly")
            return 1
        if parent is not None and os.getppid() != parent:
            log.error("supervisor %d is gone; stopping", parent)
            break
    grower.stop()
    server.stop()
    thread.join(config.server.shutdown_timeout)
    driver.close()
    log.info("stopped")
    return 0


class Supervisor:
    """Forks the workers, keeps them running, stops them on a signal."""

    def __init__(self, config: Config, port: int, count: int) -> None:
        self.config = config
        self.port = port
        self.count = count
        self.children: dict[int, float] = {}  # pid -> start time
        self.stopping = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for _ in range(self.count):
            self._spawn()
        failed = False
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            started = self.children.pop(pid, None)
            worker_exited(pid)
            if started is None or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            log.error("worker %d exited with status %d", pid, code)
            if time.monotonic() - started < _MIN_WORKER_LIFETIME:
                log.error("worker died right after starting; stopping the service")
                failed = True
                self._stop_children(signal.SIGTERM)
            else:
                self._spawn()
        log.info("stopped")
        return 1 if failed else 0

    def _spawn(self) -> None:
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            self.children.clear()
            code = 1
            try:
                die_with_parent(supervisor)
                code = run_worker(self.config, self.port, reuse_port=True, parent=supervisor)
            except BaseException:
                log.exception("worker failed")
            finally:
                os._exit(code)
        self.children[pid] = time.monotonic()

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info("received %s, stopping %d workers", signal.Signals(signum).name, len(self.children))
        self.stopping = True
        self._stop_children(signal.SIGTERM)
        timer = threading.Timer(self.config.server.shutdown_timeout + _CLEANUP_SECONDS,
                                self._stop_children, (signal.SIGKILL,))
        timer.daemon = True
        timer.start()

    def _stop_children(self, signum: int) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

"""Prometheus metrics of one app instance (its own registry, so tests and
several apps in one process never share counters).

Labels are bounded on purpose: the route name (``object``, ``listing``,
``/v1/move``...), never an object path; unknown methods count as ``other``.

With several worker processes, prometheus-client's multiprocess mode keeps
each worker's values in files under ``PROMETHEUS_MULTIPROC_DIR`` (set by the
CLI before this module is imported), and a scrape of any worker reports the
sum over all of them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

KNOWN_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "POST", "OPTIONS"})

#: Seconds; spans a cached 4 KiB GET to a multi-gigabyte upload.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
#: Storage calls start below a millisecond (a stat in memory or the page cache).
STORAGE_BUCKETS = (0.0001, 0.00025, 0.0005, *LATENCY_BUCKETS)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("blobsvc_requests", "HTTP requests answered",
                                ("method", "route", "status"), registry=self.registry)
        self.latency = Histogram("blobsvc_request_duration_seconds",
                                 "Time from request start to the last byte sent",
                                 ("method", "route"), buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.bytes_in = Counter("blobsvc_received_bytes", "Object bytes received in uploads",
                                registry=self.registry)
        self.bytes_out = Counter("blobsvc_sent_bytes", "Object bytes sent in downloads",
                                 registry=self.registry)
        self.in_flight = Gauge("blobsvc_requests_in_flight", "Requests being served now",
                               registry=self.registry, multiprocess_mode="livesum")
        self.backend_errors = Counter("blobsvc_backend_errors", "Storage backend failures by kind",
                                      ("kind",), registry=self.registry)
        self.objects_written = Counter("blobsvc_objects_written", "Objects created or replaced "
                                       "(PUT, move, cat)", registry=self.registry)
        self.objects_deleted = Counter("blobsvc_objects_deleted", "Objects deleted",
                                       registry=self.registry)
        # Recorded by the storage driver base (blobsvc.storage.contract) for
        # every driver: action is the driver call (stat, put, open, read...).
        self.storage_seconds = Histogram("blobsvc_storage_operation_seconds",
                                         "Time a storage driver call took (a stream's "
                                         "reading excluded)", ("driver", "action"),
                                         buckets=STORAGE_BUCKETS, registry=self.registry)
        self.storage_errors = Counter("blobsvc_storage_errors", "Storage driver calls that "
                                      "raised, by error code", ("driver", "action", "code"),
                                      registry=self.registry)

    def observe(self, method: str, route: str, status: int, duration: float,
                bytes_in: int, bytes_out: int, wrote: bool = False, deleted: int = 0) -> None:
        """One finished request; ``bytes_out`` counts object bytes only, and
        ``wrote`` says whether it wrote an object, ``deleted`` how many it deleted."""
        method = method if method in KNOWN_METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(duration)
        if bytes_in:
            self.bytes_in.inc(bytes_in)
        if bytes_out:
            self.bytes_out.inc(bytes_out)
        if wrote:
            self.objects_written.inc()
        if deleted:
            self.objects_deleted.inc(deleted)

    def observe_storage(self, driver: str, action: str, duration: float) -> None:
        self.storage_seconds.labels(driver, action).observe(duration)

    def count_storage_error(self, driver: str, action: str, code: str) -> None:
        self.storage_errors.labels(driver, action, code).inc()

    def exposition(self) -> tuple[bytes, str]:
        registry = self.registry
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay in the sums)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)

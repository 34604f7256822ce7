"""SwiftDriver: the contract's hooks, each handed to the module that does that job.

Why thin: the driver had grown into one class doing eight jobs. Here it
only builds its parts from :class:`SwiftSettings` and wires them; what each
hook does, and why, is in the module it calls (see the package docstring
for the map). It keeps two reads of its own, ``_get`` and
``_manifest_entries``, because cat joins chunks through them, so a test can
interpose on a chunk being read.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

from blobsvc.storage.contract import (
    ObjectInfo,
    ObjectMeta,
    ObjectStream,
    Precondition,
    StorageDriver,
    Upload,
)
from blobsvc.storage.errors import BackendUnavailable, NotFound
from blobsvc.storage.swift.cat import Concatenator
from blobsvc.storage.swift.claims import Claims
from blobsvc.storage.swift.client import ContainerClient
from blobsvc.storage.swift.collector import Collector
from blobsvc.storage.swift.connections import ConnectionPool, connection_args
from blobsvc.storage.swift.constraints import ClusterLimits
from blobsvc.storage.swift.copies import Copier
from blobsvc.storage.swift.errors import reachable_at_start, report_unreachable_at_start
from blobsvc.storage.swift.expiry import SegmentExpiry
from blobsvc.storage.swift.headers import content_length, info_from_headers, range_header
from blobsvc.storage.swift.journal import Journal
from blobsvc.storage.swift.layout import ManifestEntry
from blobsvc.storage.swift.lending import Lending
from blobsvc.storage.swift.listing import Lister
from blobsvc.storage.swift.moves import Mover
from blobsvc.storage.swift.reads import CHUNK_SIZE, Opened, Reader, guarded
from blobsvc.storage.swift.retire import Retirement
from blobsvc.storage.swift.settings import SwiftSettings
from blobsvc.storage.swift.updates import Updater
from blobsvc.storage.swift.upload import Uploader


class SwiftDriver(StorageDriver):
    """Objects in one OpenStack Swift container (see the package docstring)."""

    name = "swift"
    settings_class = SwiftSettings

    def __init__(self, settings: SwiftSettings) -> None:
        super().__init__(settings)
        self.settings = settings
        self.container = settings.container
        self.connections = ConnectionPool(connection_args(settings))
        self.client = ContainerClient(settings.container, self.connections.conn)
        self.claims = Claims()
        self.retirement = Retirement(self.client, settings.segment_grace_seconds,
                                     join_timeout=float(settings.timeout) * 3,
                                     confirm_after=max(settings.segment_grace_seconds,
                                                       settings.abandoned_after_seconds))
        self.lister = Lister(self.client)
        self.reader = Reader(self.connections, settings.container)
        segment_grace = math.ceil(settings.segment_grace_seconds)
        self.limits = ClusterLimits(self.client.conn)
        self.journal = Journal(self.client, settings.abandoned_after_seconds)
        self.uploads = Uploader(self.client, self.retirement, settings.segment_size,
                                segment_grace, self.journal)
        self.collector = Collector(self.client, settings.abandoned_after_seconds,
                                   settings.segment_grace_seconds)
        self.mover = Mover(self.client, self.retirement, self.claims)
        self.copier = Copier(self.client, self.uploads, self.retirement, self.claims)
        self.expiry = SegmentExpiry(self.client, segment_grace)
        self.updater = Updater(self.client, self.expiry)
        self.concatenator = Concatenator(
            self.client, self.uploads, self.claims, self.expiry,
            read=lambda name, headers: self._get(name, headers),
            read_manifest=lambda name, path: self._manifest_entries(name, path))
        self._container_ok = False
        try:
            self._ensure_container()
            self.limits.load()
            reachable_at_start(settings.auth_url, settings.container)
        except BackendUnavailable as exc:
            report_unreachable_at_start(exc, settings.auth_url, settings.container)
        # Records of where moves and cats take segments outlive every check of them.
        lending = Lending(self.client, 2 * (settings.segment_grace_seconds
                                            + settings.abandoned_after_seconds))
        self.retirement.lending = self.mover.lending = self.concatenator.lending = lending
        self.collector.lending = lending
        if settings.collect_interval_seconds > 0:
            self.retirement.collect = self.collector.collect
            self.retirement.collect_interval = settings.collect_interval_seconds
            self.retirement.start()

    # -- lifecycle -----------------------------------------------------------

    def _check_ready(self) -> None:
        if not self._container_ok:
            self._ensure_container()
            return
        self.client.check_container()

    def _ensure_container(self) -> None:
        self.client.ensure_container()
        self._container_ok = True

    def close(self) -> None:
        """Do the pending segment clean-up now, grace or not; then close every connection."""
        self.retirement.close()
        self.connections.close()

    # -- reads ---------------------------------------------------------------

    def _list(self, path: str, marker: str | None, limit: int | None,
              prefix: str | None) -> list[ObjectInfo]:
        return self.lister.entries(path, marker, limit, prefix)

    def _list_recursive(self, path: str, marker: str | None, limit: int | None,
                        prefix: str | None) -> list[ObjectInfo]:
        return self.lister.recursive(path, marker, limit, prefix)

    def _stat(self, path: str) -> ObjectInfo:
        headers = self.client.head(path)
        if headers is None:
            raise NotFound(f"no object at {path}", path)
        return info_from_headers(path, headers)

    def _open(self, path: str, offset: int,
              length: int | None) -> tuple[ObjectInfo, ObjectStream]:
        if length == 0:
            return self._stat(path), ObjectStream(iter(()))
        opened = self._get(path, range_header(offset, length))
        if opened is None:  # offset at the end: nothing to read
            return self._stat(path), ObjectStream(iter(()))
        headers, body, close = opened
        info, size = info_from_headers(path, headers), content_length(headers)
        if size <= CHUNK_SIZE:
            return info, ObjectStream(iter(_whole(guarded(body, path), size, path, close)))
        return info, ObjectStream(guarded(body, path), close)

    def _get(self, path: str, headers: dict[str, str]) -> Opened | None:
        """One streamed GET on a connection of its own (None: range unsatisfiable)."""
        return self.reader.get(path, headers)

    def _manifest_entries(self, name: str, path: str) -> list[ManifestEntry]:
        """A large object's manifest, as the entries a manifest PUT takes."""
        return self.client.manifest_entries(name, path)

    # -- writes --------------------------------------------------------------

    def _put(self, path: str, upload: Upload) -> ObjectInfo:
        self.limits.check(upload.meta, path)  # before any byte goes
        with self.claims.claim(path):
            return self.uploads.put(path, upload)

    def _update(self, path: str, meta: ObjectMeta, precondition: Precondition) -> ObjectInfo:
        self.limits.check(meta, path)
        return self.updater.update(path, meta, precondition)

    def _delete(self, path: str, precondition: Precondition | None) -> None:
        self.mover.delete(path, precondition)

    def _move(self, src: str, dst: str, precondition: Precondition | None) -> ObjectInfo:
        return self.mover.move(src, dst, precondition)

    def _copy(self, src: str, dst: str, precondition: Precondition | None,
              meta: ObjectMeta | None) -> ObjectInfo:
        if meta is not None:  # the source's own was taken by this Swift already
            self.limits.check(meta, dst)
        return self.copier.copy(src, dst, precondition, meta)

    def _cat(self, path: str, chunks: list[str], max_size: int | None,
             precondition: Precondition | None, meta: ObjectMeta) -> ObjectInfo:
        self.limits.check(meta, path)
        return self.concatenator.cat(path, chunks, max_size, precondition, meta)

    def _reap_expired(self) -> int:
        """Nothing to do here: Swift expires objects itself (``X-Delete-At``),
        and its object-expirer reclaims their space within its interval."""
        return 0


def _whole(body: Iterator[bytes], size: int, path: str, close: Callable[[], None]) -> list[bytes]:
    """A small body read to its end before the answer starts: a Swift that
    fails midway then gives the client a 503, not a connection cut after
    the status line (one read of at most CHUNK_SIZE bytes either way)."""
    try:
        chunks = [chunk for chunk in body if chunk]
    finally:
        close()
    if sum(len(chunk) for chunk in chunks) != size:
        raise BackendUnavailable(f"Swift sent {path} short", path)
    return chunks

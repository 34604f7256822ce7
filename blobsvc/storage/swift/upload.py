"""Uploads: one streamed PUT for a small object, segments and a manifest for a large one.

Why it is shaped so: an upload whose size is known and at most
``segment_size``, or unknown but ending within the first MiB, is one plain
object with a plain MD5 ETag, as on the other drivers. Any other becomes a
Static Large Object: segments of at most ``segment_size`` bytes under
``.blobsvc/segments/<path>/<upload id>/``, then a manifest under the
object's name, whose PUT is the commit (its ETag, kept in its content
type, is the MD5 of the bytes). Either way the clash rules and the
precondition are checked from one HEAD (:mod:`.claims`) and the replaced
version tombstoned right before the commit (:mod:`.retire`), and a failed
write deletes the segments it wrote, except when the manifest PUT itself
failed: it may have been stored, and segments are better leaked than
lost; the write's note (:mod:`.journal`) then stays, and a collector
settles it. cat builds its results from the same pieces.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any, Callable, Iterable, Iterator

from swiftclient.client import ClientException

from blobsvc.storage.contract import DEFAULT_CONTENT_TYPE, ObjectInfo, ObjectMeta, Precondition, Upload
from blobsvc.storage.errors import BackendUnavailable
from blobsvc.storage.swift.bodies import Body, Splitter, read_ahead
from blobsvc.storage.swift.claims import prepare_write
from blobsvc.storage.swift.client import ContainerClient, head_or_none
from blobsvc.storage.swift.errors import log, swift_errors
from blobsvc.storage.swift.headers import Stored, Written, info_from_headers
from blobsvc.storage.swift.journal import Journal, Lease
from blobsvc.storage.swift.layout import SEGMENTS_DIR, ManifestEntry, private_prefix, slo_etag
from blobsvc.storage.swift.objectmeta import bind_etag, segment_headers, write_headers
from blobsvc.storage.swift.retire import NOTHING_REPLACED, Replaced, Retirement

#: An upload of unknown size that ends within this many bytes (read ahead in
#: memory) is stored as a plain object, with a plain MD5 ETag.
PLAIN_LOOKAHEAD = 1024 * 1024

#: Entries per manifest (Swift's default ``max_manifest_segments``); longer
#: lists are split into nested manifests.
MAX_MANIFEST_SEGMENTS = 1000


def _failed_attempt(exc: ClientException, response: dict[str, Any]) -> ClientException:
    """What to report when swiftclient's retry stopped at a body that cannot
    be sent again (see ``Body.reset``): the status of the attempt that failed,
    not a status-less error that reads as a lost connection."""
    status = response.get("status")
    if exc.http_status is not None or not isinstance(status, int):
        return exc
    return ClientException(f"{exc.msg} after Swift answered {status}", http_status=status,
                           http_reason=response.get("reason", ""))


class Parts:
    """Private objects one write creates, so a failure can remove them.

    ``headers`` go on each of them: the expiry of the object they belong
    to, later by the segment grace (see the package docstring). With a
    ``journal``, the first of them is preceded by a note of the write, so
    that they are collected if this process dies (see :mod:`.journal`).
    """

    def __init__(self, path: str, headers: dict[str, str] | None = None,
                 journal: Journal | None = None) -> None:
        self.prefix = f"{private_prefix(SEGMENTS_DIR, path)}{uuid.uuid4().hex}/"
        self.headers = headers or {}
        self.lease = Lease(path, self.prefix)
        self.journal = journal
        self.written: list[str] = []
        #: Set once the manifest PUT started: a failure may have committed it.
        self.committing = False
        #: Set once the manifest PUT succeeded: the segments are the object's.
        self.committed = False
        #: Set when Swift kept a newer version instead of this write's manifest.
        self.superseded = False

    def new_name(self) -> str:
        if self.journal is not None:
            self.journal.renew(self.lease)
        name = f"{self.prefix}{len(self.written):08d}"
        self.written.append(name)
        return name


class Uploader:
    """Writes object bodies into one container; tunables are attributes, tests shrink them."""

    def __init__(self, client: ContainerClient, retirement: Retirement, segment_size: int,
                 segment_grace: int = 0, journal: Journal | None = None) -> None:
        self.client = client
        self.retirement = retirement
        self.journal = journal
        self.segment_size = segment_size
        #: Seconds a large object's segments outlive its expiry.
        self.segment_grace = segment_grace
        self.plain_lookahead = PLAIN_LOOKAHEAD
        self.max_manifest_segments = MAX_MANIFEST_SEGMENTS

    def put(self, path: str, upload: Upload) -> ObjectInfo:
        """Store ``upload`` at ``path`` (claimed by the caller)."""
        size = upload.expected_size
        if size is not None and size <= self.segment_size:
            if upload.leave_md5_to_backend():
                return self._put_plain_hashed_by_swift(path, upload)
            return self.put_plain(path, upload, upload.meta, upload.precondition,
                                  lambda: upload.md5_hex)
        chunks: Iterator[bytes] = iter(upload)
        if size is None:
            head, ended = read_ahead(chunks, min(self.plain_lookahead, self.segment_size))
            if ended:  # small after all: a plain object, with a plain MD5 ETag
                return self.put_plain(path, head, upload.meta, upload.precondition,
                                      lambda: upload.md5_hex)
            chunks = itertools.chain(head, chunks)
        return self._put_large(path, chunks, upload)

    def put_plain(self, path: str, chunks: Iterable[bytes], meta: ObjectMeta,
                  precondition: Precondition | None,
                  md5_hex: Callable[[], str | None] | None = None) -> ObjectInfo:
        """One streamed PUT of an object carrying ``meta``; its final chunk
        goes out only after every check.

        ``md5_hex`` gives the bytes' MD5 when the chunks are hashed already
        (None from it: no MD5 but Swift's ETag).
        """
        body: Body[Replaced] = Body(chunks, before_end=lambda: prepare_write(
            self.retirement, path, precondition, self.client.conn("side")), hashed=md5_hex is None)
        try:
            stored = self.stream_put(path, body, write_headers(meta), path)
        except BaseException:
            self.retirement.drop(body.end_result)
            raise
        etag = stored.etag or (md5_hex() if md5_hex is not None else body.md5_hex) or ""
        self.retirement.settle(path, body.end_result)
        return Written(etag, body.size, meta, stored.last_modified).info(path)

    def _put_plain_hashed_by_swift(self, path: str, upload: Upload) -> ObjectInfo:
        """A plain PUT whose MD5 only Swift computes: the object server
        hashes every byte it stores and answers with the MD5 as the ETag.

        A write that lost to a newer version (202) gets no ETag; its answer
        then describes the version Swift kept, and the upload's MD5 stays
        unknown.
        """
        info = self.put_plain(path, upload, upload.meta, upload.precondition, lambda: None)
        if info.etag:
            upload.backend_md5(info.etag)
            return info
        upload.backend_md5(None)
        with swift_errors("stat", path):
            headers = head_or_none(self.client.conn(), self.client.container, path)
        if headers is None:  # the newer version is already gone too
            raise BackendUnavailable(f"{path} was replaced and removed while being written", path)
        return info_from_headers(path, headers)

    def _put_large(self, path: str, chunks: Iterator[bytes], upload: Upload) -> ObjectInfo:
        parts = self.new_parts(path, upload.meta)
        try:
            entries = self._write_segments(path, chunks, parts)
            if not entries:
                return self.put_plain(path, (), upload.meta, upload.precondition,
                                      lambda: upload.md5_hex)
            info = self.commit_manifest(path, entries, parts, upload.meta, upload.precondition,
                                        etag=upload.md5_hex)
        except BaseException as exc:
            self.remove_parts(parts, exc)
            raise
        self.settle_parts(path, parts)
        return info

    def new_parts(self, path: str, meta: ObjectMeta) -> Parts:
        """The private objects of a large object carrying ``meta``."""
        return Parts(path, segment_headers(meta.expires_at, self.segment_grace), self.journal)

    def settle_parts(self, path: str, parts: Parts) -> None:
        """After a commit: drop the segments of a version that already lost,
        or watch the winner's until they are safely referenced."""
        if parts.superseded:
            self.remove_parts(parts)
            return
        if parts.written:
            self.retirement.watch(path, parts.prefix)
        if self.journal is not None:
            self.journal.end(parts.lease)

    def _write_segments(self, path: str, chunks: Iterator[bytes],
                        parts: Parts) -> list[ManifestEntry]:
        """Stream the upload into segments; an upload error aborts the one in flight."""
        splitter = Splitter(chunks, self.segment_size)
        entries = []
        segment = splitter.next_segment()
        while segment is not None:
            entries.append(self.write_segment(path, segment, parts))
            segment = splitter.next_segment()
        return entries

    def write_segment(self, path: str, chunks: Iterable[bytes], parts: Parts) -> ManifestEntry:
        name = parts.new_name()
        body: Body[None] = Body(chunks)
        headers = {"Content-Type": DEFAULT_CONTENT_TYPE, **parts.headers}
        stored = self.stream_put(name, body, headers, path)
        return self.client.entry(name, stored.etag, body.size)

    def stream_put(self, name: str, body: Body[Any], headers: dict[str, str],
                   path: str) -> Stored:
        """PUT a streamed body with ``headers`` (its Content-Type among them).
        Errors of the body itself come back as they were."""
        response: dict[str, Any] = {}
        try:
            with swift_errors("store", path):
                try:
                    etag = self.client.conn().put_object(self.client.container, name,
                                                         contents=body, headers=dict(headers),
                                                         response_dict=response)
                except ClientException as exc:
                    raise _failed_attempt(exc, response) from None
        except BaseException:
            if body.error is not None:
                raise body.error from None
            raise
        return Stored.of(etag, response)

    def commit_manifest(self, path: str, entries: list[ManifestEntry], parts: Parts,
                        meta: ObjectMeta, precondition: Precondition | None,
                        keep_old: bool = False, etag: str | None = None) -> ObjectInfo:
        """Write the manifest of an object carrying ``meta`` over ``path``,
        checking ``precondition`` right before; ``etag`` is the ETag it
        carries (see :mod:`.objectmeta`).

        ``keep_old``: the old version lends its segments to the new one (a
        cat into one of its chunks), so it gets no tombstone.
        """
        size = sum(entry["size_bytes"] for entry in entries)
        entries = self._nest(entries, parts, path)
        etag_value = None if etag is None else bind_etag(etag, slo_etag(entries))
        if keep_old:  # a live chunk a moment ago: the clash rules hold already
            if precondition is not None:
                self.client.check_current(path, precondition, self.client.conn())
            replaced = NOTHING_REPLACED
        else:
            replaced = prepare_write(self.retirement, path, precondition, self.client.conn())
        try:
            if parts.journal is not None:  # with the tombstone the commit will settle
                parts.journal.committing(parts.lease, replaced.tombstone)
        except BaseException:
            self.retirement.drop(replaced)
            raise
        parts.committing = True
        try:
            stored = self.client.put_manifest(path, entries, write_headers(meta, etag_value), path)
        except BaseException:
            self.retirement.drop(replaced)
            raise
        parts.committed = True
        parts.superseded = stored.superseded
        self.retirement.settle(path, replaced)
        written = Written(etag or stored.etag or slo_etag(entries), size, meta,
                          stored.last_modified)
        return written.info(path)

    def _nest(self, entries: list[ManifestEntry], parts: Parts,
              path: str) -> list[ManifestEntry]:
        """Group entries into sub-manifests until one manifest can hold them."""
        while len(entries) > self.max_manifest_segments:
            step = self.max_manifest_segments
            groups = [entries[i:i + step] for i in range(0, len(entries), step)]
            entries = []
            for group in groups:
                name = parts.new_name()
                headers = {"Content-Type": DEFAULT_CONTENT_TYPE, **parts.headers}
                stored = self.client.put_manifest(name, group, headers, path)
                entries.append(self.client.entry(name, stored.etag,
                                                 sum(e["size_bytes"] for e in group)))
        return entries

    def remove_parts(self, parts: Parts, exc: BaseException | None = None) -> None:
        """Delete what a failed or superseded write created.

        Not after a failure during the commit itself: the manifest may have
        been stored, and segments are better leaked than lost. Never after a
        commit that won, whatever failed later: they are the object's.
        """
        if parts.committed and not parts.superseded:
            log.error("a committed manifest's segments under %s were not removed after %r",
                      parts.prefix, exc)
            return
        if parts.committing and isinstance(exc, BackendUnavailable):
            log.warning("Swift failed while committing a manifest; its segments stay under %s "
                        "until the write's note is settled", parts.prefix)
            return
        for name in parts.written:
            self.client.delete_quietly(name)
        if parts.journal is not None:
            parts.journal.end(parts.lease)

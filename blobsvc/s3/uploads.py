"""Multipart uploads in progress: where they live, and their reclamation.

Everything an upload holds is a private object of the driver (see
``StorageDriver.put_private``), under the reserved prefix, so no listing
of either API shows it and every driver keeps it without code of its own::

    .blobsvc/multipart/<bucket>/<upload id>/upload   its state (JSON): the key,
                                                     the metadata and headers
                                                     CreateMultipartUpload got
    .blobsvc/multipart/<bucket>/<upload id>/00001    part 1, as the client sent it
    .blobsvc/multipart/<bucket>/completed/<digest>   where the parts of a completed
                                                     object lie, when metadata cannot
                                                     say (see blobsvc.s3.partsizes)

An upload id is 8 hex digits of its creation time (Unix seconds) and 24
random ones: a listing of a bucket's uploads is then sorted oldest first,
so a reclamation pass reads only as far as the first one still young.
An upload older than ``s3.multipart_expiry`` is gone: every operation on it
answers NoSuchUpload (and removes it), and :meth:`Uploads.reclaim`, run at
most once per interval by each process as uploads are created, removes a
bounded number of them with their parts.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from blobsvc.s3.errors import S3Error
from blobsvc.storage import ObjectInfo, ObjectMeta, StorageDriver, Upload
from blobsvc.storage.errors import StorageError

log = logging.getLogger(__name__)

#: The private area, then one directory per bucket.
AREA = "multipart"
#: The name of an upload's state, beside its parts.
STATE = "upload"
#: There while a Complete joins the parts (see Uploads.mark_completing).
COMPLETING = "completing"
#: Part numbers, as S3 has them.
MAX_PART_NUMBER = 10_000
#: Uploads one reclamation pass removes at most, per bucket.
RECLAIM_BATCH = 100

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class UploadState:
    """What CreateMultipartUpload decided, kept until Complete or Abort."""

    bucket: str
    upload_id: str
    key: str
    meta: ObjectMeta
    initiator: str

    @property
    def created(self) -> int:
        return int(self.upload_id[:8], 16)

    def to_bytes(self) -> bytes:
        return json.dumps({"key": self.key, "content_type": self.meta.content_type,
                           "meta": self.meta.to_json(), "initiator": self.initiator}).encode()

    @classmethod
    def from_bytes(cls, bucket: str, upload_id: str, raw: bytes) -> UploadState:
        document: dict[str, Any] = json.loads(raw)
        return cls(bucket, upload_id, document["key"],
                   ObjectMeta.from_json(document["meta"], document.get("content_type")),
                   document.get("initiator", ""))


def part_name(number: int) -> str:
    """Five digits: the parts of an upload list in their order."""
    return f"{number:05d}"


class Uploads:
    """The uploads of one store."""

    def __init__(self, driver: StorageDriver, expiry: int) -> None:
        self.driver = driver
        self.expiry = expiry
        self._next_reclaim = 0.0
        self._reclaiming = threading.Lock()

    def create(self, bucket: str, key: str, meta: ObjectMeta, initiator: str) -> UploadState:
        upload_id = f"{int(time.time()):08x}{secrets.token_hex(12)}"
        state = UploadState(bucket, upload_id, key, meta, initiator)
        self.driver.put_private(self._name(bucket, upload_id, STATE), Upload(state.to_bytes()))
        return state

    def get(self, bucket: str, key: str, upload_id: str) -> UploadState:
        """The upload, or NoSuchUpload: unknown, another key's, or expired
        (then removed on the way)."""
        if not _UPLOAD_ID.match(upload_id):
            raise no_such_upload(upload_id)
        raw = self.driver.read_private(self._name(bucket, upload_id, STATE))
        if raw is None:
            raise no_such_upload(upload_id)
        state = UploadState.from_bytes(bucket, upload_id, raw)
        if self.expired(state.created):
            self.remove(bucket, upload_id)
            raise no_such_upload(upload_id)
        if state.key != key:
            raise no_such_upload(upload_id)
        return state

    def exists(self, state: UploadState) -> bool:
        """Whether the upload's state is still stored (not completed nor aborted)."""
        return self.driver.private_info(self._name(state.bucket, state.upload_id, STATE)) is not None

    def expired(self, created: int, now: float | None = None) -> bool:
        """Past its expiry: from whole seconds, so a lifetime is at least
        ``expiry`` seconds (and at most one more), never less."""
        return int(time.time() if now is None else now) > created + self.expiry

    def put_part(self, state: UploadState, number: int, upload: Upload) -> ObjectInfo:
        """Store part ``number``, replacing an earlier one of that number."""
        return self.driver.put_private(self.part_path(state, number), upload)

    def part_path(self, state: UploadState, number: int) -> str:
        return self._name(state.bucket, state.upload_id, part_name(number))

    def parts(self, state: UploadState, after: int = 0,
              limit: int | None = None) -> list[tuple[int, ObjectInfo]]:
        """``(number, info)`` of the upload's parts after number ``after``, in order."""
        marker = part_name(after) if after else None
        entries = self.driver.list_private(self._name(state.bucket, state.upload_id),
                                           marker=marker, limit=None if limit is None else limit + 1)
        found = [(int(info.name), info) for info in entries
                 if not info.isdir and info.name.isdigit()]
        return found if limit is None else found[:limit + 1]

    def named_parts(self, state: UploadState,
                    named: list[tuple[int, str]]) -> dict[int, ObjectInfo]:
        """The upload's parts by number, as stored, for a Complete naming
        ``named`` (number, ETag): a listing answers for them all at once,
        and a part it lacks or shows with another ETag is asked for by name.

        Why: a listing may lag behind writes (Swift's does, while a
        container server is down or slow), so a part just stored, through
        another instance behind the same balancer, may not be listed yet.
        """
        stored = dict(self.parts(state))
        for number, etag in named:
            listed = stored.get(number)
            if listed is None or listed.etag != etag:
                found = self.driver.private_info(self.part_path(state, number))
                if found is not None:
                    stored[number] = found
        return stored

    def upload_ids(self, bucket: str) -> list[str]:
        """Every upload id of ``bucket``, oldest first."""
        return [info.name for info in self.driver.list_private(self._name(bucket))
                if _UPLOAD_ID.match(info.name)]

    def states(self, bucket: str) -> list[UploadState]:
        """Every live upload of ``bucket`` (one read of state each)."""
        found = []
        for upload_id in self.upload_ids(bucket):
            if self.expired(int(upload_id[:8], 16)):
                continue
            raw = self.driver.read_private(self._name(bucket, upload_id, STATE))
            if raw is not None:
                found.append(UploadState.from_bytes(bucket, upload_id, raw))
        return found

    def remove(self, bucket: str, upload_id: str) -> bool:
        """Remove the upload's state, then its parts; False when it had no state.

        The state goes first: from then on every operation on the upload,
        a racing Complete included, answers NoSuchUpload rather than meet
        half its parts. Parts a crash leaves behind are reclaimed by the
        upload id's age, which needs no state."""
        directory = self._name(bucket, upload_id)
        had_state = self.driver.delete_private(f"{directory}/{STATE}")
        for info in self.driver.list_private(directory):
            if info.name != STATE and not info.isdir:
                self.driver.delete_private(f"{directory}/{info.name}")
        return had_state

    def discard_parts(self, state: UploadState, keep: set[int]) -> None:
        """After a Complete: parts it did not name, then the state and the mark."""
        for number, _ in self.parts(state):
            if number not in keep:
                self.driver.delete_private(self.part_path(state, number))
        self.driver.delete_private(self._name(state.bucket, state.upload_id, STATE))
        self.unmark_completing(state)

    def mark_completing(self, state: UploadState) -> None:
        """Say a Complete is joining the parts: a rival Complete that finds
        them gone meanwhile then knows the upload is ending, not misnamed."""
        self.driver.put_private(self._name(state.bucket, state.upload_id, COMPLETING),
                                Upload(b""))

    def unmark_completing(self, state: UploadState) -> None:
        self.driver.delete_private(self._name(state.bucket, state.upload_id, COMPLETING))

    def completing(self, state: UploadState) -> bool:
        """Whether a Complete of the upload is joining its parts."""
        name = self._name(state.bucket, state.upload_id, COMPLETING)
        return self.driver.private_info(name) is not None

    def reclaim_if_due(self) -> int:
        """A reclamation pass unless one ran (or is running) within the interval."""
        now = time.time()
        if now < self._next_reclaim or not self._reclaiming.acquire(blocking=False):
            return 0
        try:
            self._next_reclaim = now + min(self.expiry, 60)
            return self.reclaim(now)
        except StorageError as exc:  # the request that ran it is not to fail for it
            log.warning("reclaiming expired multipart uploads failed: %s", exc.message)
            return 0
        finally:
            self._reclaiming.release()

    def reclaim(self, now: float | None = None) -> int:
        """Remove expired uploads, at most :data:`RECLAIM_BATCH` per bucket;
        how many went. Each bucket's listing is read only up to its first
        live upload (ids sort oldest first)."""
        now = time.time() if now is None else now
        removed = 0
        for bucket in self.driver.list_private(AREA):
            listing = self.driver.list_private(self._name(bucket.name), limit=RECLAIM_BATCH)
            for info in listing:
                if not _UPLOAD_ID.match(info.name):
                    continue
                if not self.expired(int(info.name[:8], 16), now):
                    break
                self.remove(bucket.name, info.name)
                removed += 1
        return removed

    @staticmethod
    def _name(bucket: str, *rest: str) -> str:
        return "/".join((AREA, bucket, *rest))


def no_such_upload(upload_id: str) -> S3Error:
    return S3Error("NoSuchUpload", f"no multipart upload {upload_id} in progress here")

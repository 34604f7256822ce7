"""Notes of writes in flight, kept in Swift, so that any instance can
collect the segments a crashed one left.

Why in Swift and not in memory: a process killed while it writes a large
object's segments leaves them under ``.blobsvc/segments/`` where no
manifest lists them, and only a look at the whole container could tell
them from live ones. So before its first segment a write leaves a small
note under ``.blobsvc/pending/<upload id>`` (its path and segment prefix),
renews it while segments keep coming, marks it *committing* right before
its manifest PUT (naming the tombstone of the version it replaces), and
deletes it once the manifest is committed or its segments are gone. A
note nobody renewed for ``abandoned_after`` seconds belongs to a dead (or
hopelessly stalled) write, and :mod:`.collector` settles it.

The lease is what makes that safe for a write that is only slow: it
renews its note at every segment once a quarter of ``abandoned_after``
has passed, and refuses to commit once half of it has passed since the
last renewal, so a collector (waiting the whole of it) can never take a
note for abandoned while its write may still commit. Clocks of the
instances may differ by much less than half of ``abandoned_after``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable

from blobsvc.storage.errors import BackendUnavailable
from blobsvc.storage.swift.client import ContainerClient
from blobsvc.storage.swift.errors import swift_errors
from blobsvc.storage.swift.layout import PENDING_DIR, upload_id

#: A note's states: segments being written; the manifest PUT under way.
WRITING = "writing"
COMMITTING = "committing"


def note_name(prefix: str) -> str:
    """The note of the write whose segments are under ``prefix`` (``.../<upload id>/``)."""
    return f"{PENDING_DIR}/{upload_id(prefix)}"


class Lease:
    """One write's note: where it is, and when it was last renewed."""

    def __init__(self, path: str, prefix: str) -> None:
        self.path = path
        self.prefix = prefix
        self.name = note_name(prefix)
        #: Wall-clock seconds of the last renewal; None until the note exists.
        self.renewed: float | None = None


class Journal:
    """The notes of one container's writes in flight."""

    def __init__(self, client: ContainerClient, abandoned_after: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.abandoned_after = float(abandoned_after)
        self._clock = clock

    def renew(self, lease: Lease) -> None:
        """Leave the note before the first segment; renew it once a quarter
        of the lease has passed."""
        now = self._clock()
        if lease.renewed is None or now - lease.renewed >= self.abandoned_after / 4:
            self._write(lease, WRITING)
            lease.renewed = now

    def committing(self, lease: Lease, tombstone: str | None = None) -> None:
        """Mark the note right before the manifest PUT, with the tombstone of
        the version it replaces (settled by the collector if this process
        dies); refuse when the lease is too old for a collector to have
        surely left the segments alone."""
        if lease.renewed is None:
            return  # no segment was written: nothing a collector could take
        if self._clock() - lease.renewed >= self.abandoned_after / 2:
            raise BackendUnavailable(
                f"the upload of {lease.path} sent no segment for {self.abandoned_after / 2:.0f} s: "
                f"its segments may be collected as abandoned, so it is not committed",
                lease.path)
        self._write(lease, COMMITTING, tombstone)
        lease.renewed = self._clock()

    def end(self, lease: Lease) -> None:
        """The write is settled: its segments are listed by a manifest, or gone."""
        if lease.renewed is None:
            return
        self.client.delete_quietly(lease.name)  # one left behind is settled again later
        lease.renewed = None

    def _write(self, lease: Lease, state: str, tombstone: str | None = None) -> None:
        body = json.dumps({"path": lease.path, "prefix": lease.prefix, "state": state,
                           "tombstone": tombstone})
        with swift_errors("store", lease.path):
            self.client.conn().put_object(self.client.container, lease.name, contents=body,
                                          content_type="application/json")


@dataclass(frozen=True)
class Note:
    """What a note says: the write's path, segment prefix, state, and the
    tombstone of the version its commit replaces (if it replaces a large one)."""

    path: str
    prefix: str
    state: str
    tombstone: str | None = None


def read_note(raw: bytes) -> Note | None:
    """A note as written; None when it is not one of ours."""
    try:
        found = json.loads(raw)
        note = Note(found["path"], found["prefix"], found["state"], found.get("tombstone"))
    except (ValueError, KeyError, TypeError):
        return None
    if not all(isinstance(value, str) for value in (note.path, note.prefix, note.state)):
        return None
    if note.tombstone is not None and not isinstance(note.tombstone, str):
        return None
    return note

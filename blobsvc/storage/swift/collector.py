"""Collecting what writes and replacements left when their process died.

Why a pass of its own: each process settles its own writes (a failed one
deletes its segments, a replaced version's tombstone is retired after the
grace period), but a process killed meanwhile leaves them in Swift. Two
prefixes say what may be left, so a pass lists those and nothing else:

* ``.blobsvc/pending/``: the notes of writes in flight (see
  :mod:`.journal`). One not renewed for ``abandoned_after`` seconds was
  left. If its write never reached its commit, its segments go. If it was
  committing: when the manifest at its path lists its segments, they
  stay (and the tombstone the note names is retired, as the writer would
  have); when the version at its path is older than the note, the
  manifest never landed and they go (the tombstone goes alone).
* ``.blobsvc/replaced/``: tombstones (see :mod:`.retire`). One older than
  the grace period plus ``abandoned_after`` was left: marked *retiring*,
  it goes with its segments, as its owner would have done; unmarked, it
  goes alone, since its write never settled.

What these cannot decide is left, with a warning naming the segments: a
write cut off mid-commit whose path is gone or holds a newer version may
have been committed and then moved, and only a listing of every manifest
could tell, which on Swift may lag behind writes (a move minutes ago may
not be listed yet). Segments are better leaked than lost.

So a pass costs two listings of those prefixes (one request for an empty
prefix; else a page per 10 000 entries left and the empty page that ends
it), and a few requests per thing it settles; the whole container is
never read (tests/test_swift_collection_scale.py counts them on 100 000
objects). Instances may collect side by side: every step is a delete that
tolerates having been done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from blobsvc.storage.errors import BackendUnavailable, NotFound
from blobsvc.storage.swift.client import ContainerClient, get_newest
from blobsvc.storage.swift.errors import log, swift_errors
from blobsvc.storage.swift.headers import is_large
from blobsvc.storage.swift.journal import COMMITTING, WRITING, Note, read_note
from blobsvc.storage.swift.layout import PENDING_DIR, REPLACED_DIR
from blobsvc.storage.swift.lending import Lending
from blobsvc.storage.swift.references import References
from blobsvc.storage.swift.retire import (
    TOMBSTONE_MANIFEST,
    TOMBSTONE_PATH,
    TOMBSTONE_RETIRING,
    delete_upload,
    retire_tombstone,
)


@dataclass
class Collected:
    """What one pass did: names of notes and tombstones settled, and left for later."""

    notes: list[str] = field(default_factory=list)
    tombstones: list[str] = field(default_factory=list)
    segments_deleted: list[str] = field(default_factory=list)
    postponed: list[str] = field(default_factory=list)


class Collector:
    """One container's abandoned notes and tombstones, settled a pass at a time."""

    def __init__(self, client: ContainerClient, abandoned_after: float, grace: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.references = References(client)
        self.abandoned_after = float(abandoned_after)
        self.grace = float(grace)
        self._clock = clock
        #: Where moves and cats took uploads' segments (see :mod:`.lending`).
        self.lending: Lending | None = None

    def collect(self) -> Collected:
        """One pass (see the module docstring)."""
        done = Collected()
        now = self._clock()
        for name, written in self._older(PENDING_DIR, now - self.abandoned_after):
            self._settle_note(name, written, done)
        for name, _ in self._older(REPLACED_DIR, now - self.grace - self.abandoned_after):
            self._settle_tombstone(name, done)
        return done

    def _older(self, directory: str, before: float) -> list[tuple[str, float]]:
        """(name, when written) of the names under ``directory`` last written
        before ``before`` (wall-clock seconds)."""
        with swift_errors("list", None):
            listing = self.client.conn().get_container(self.client.container,
                                                       prefix=f"{directory}/",
                                                       full_listing=True)[1]
        found = [(entry["name"], _listed_time(entry.get("last_modified"))) for entry in listing]
        return [(name, written) for name, written in found if written < before]

    # -- notes -----------------------------------------------------------------

    def _settle_note(self, name: str, written: float, done: Collected) -> None:
        try:
            with swift_errors("read", name):
                _, raw = get_newest(self.client.conn(), self.client.container, name)
        except NotFound:
            return  # settled meanwhile
        note = read_note(raw)
        if note is None:
            log.warning("%s is no note of a write: left alone", name)
        elif note.state == WRITING:  # never committed, and never will be (see journal)
            self._discard(name, note, done)
        elif note.state == COMMITTING:
            self._settle_commit(name, note, written, done)
        else:
            log.warning("%s has an unknown state %r: left alone", name, note.state)

    def _settle_commit(self, name: str, note: Note, written: float, done: Collected) -> None:
        """A write cut off while committing: did its manifest land?"""
        try:
            current = self.client.head(note.path)
            listed = current is not None and is_large(current) and note.prefix in (
                self.references.manifest_uploads(note.path) or ())
        except BackendUnavailable:  # Swift did not answer: next pass
            done.postponed.append(name)
            return
        if listed:  # committed: what it replaced goes, as the writer would have done
            if note.tombstone is not None:
                self._retire(note.tombstone, done)
            self._forget(name, done)
            return
        if current is not None and float(current.get("x-timestamp", "inf")) < written:
            self._discard(name, note, done)  # older than the note: the manifest never landed
            return
        log.warning("cannot tell whether the write of %s cut off while committing was "
                    "committed (and moved since): its segments stay under %s", note.path,
                    note.prefix)
        self._drop_tombstone(note, done)
        self._forget(name, done)

    def _discard(self, name: str, note: Note, done: Collected) -> None:
        """The write never committed: its segments go, its tombstone alone."""
        if delete_upload(self.client, note.prefix):
            done.segments_deleted.append(note.prefix)
            self._drop_tombstone(note, done)
            self._forget(name, done)

    def _drop_tombstone(self, note: Note, done: Collected) -> None:
        if note.tombstone is not None:
            self.client.delete_quietly(note.tombstone)
            done.tombstones.append(note.tombstone)

    def _forget(self, name: str, done: Collected) -> None:
        self.client.delete_quietly(name)
        done.notes.append(name)

    # -- tombstones --------------------------------------------------------------

    def _settle_tombstone(self, name: str, done: Collected) -> None:
        headers = self.client.head(name)
        if headers is None:
            return  # retired meanwhile
        if headers.get(TOMBSTONE_RETIRING.lower()) == "true":
            self._retire(name, done)
            return
        # Never settled: the write that made it never reached the mark (if it
        # committed after all, a note of it retired this tombstone first).
        current = None if TOMBSTONE_PATH.lower() not in headers else self.client.head(
            headers[TOMBSTONE_PATH.lower()])
        if current is None or current.get("x-manifest-etag") != headers.get(
                TOMBSTONE_MANIFEST.lower()):
            log.warning("%s was left unsettled and its path changed since: it goes alone, "
                        "its segments stay", name)
        self.client.delete_quietly(name)
        done.tombstones.append(name)

    def _retire(self, name: str, done: Collected) -> None:
        error = retire_tombstone(self.client, name, self.lending)
        if error is None:
            done.tombstones.append(name)
        elif isinstance(error, BackendUnavailable):
            done.postponed.append(name)
        else:
            log.warning("could not retire %s (%s): left for a later pass", name, error.message)


def _listed_time(value: str | None) -> float:
    """A listing's ``last_modified`` (UTC, ISO 8601 without a zone) as seconds."""
    if not value:
        return 0.0
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp()

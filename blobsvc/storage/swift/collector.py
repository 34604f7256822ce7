"""Collecting what writes and replacements left when their process died.

Why a pass of its own: each process settles its own writes (a failed one
deletes its segments, a replaced version's tombstone is retired after the
grace period), but a process killed meanwhile leaves them in Swift. Two
prefixes say what may be left, so a pass lists those and nothing else:

* ``.blobsvc/pending/``: the notes of writes in flight (see
  :mod:`.journal`). One not renewed for ``abandoned_after`` seconds was
  left: if its write never reached its commit, its segments go; if it
  was committing, they stay when the manifest at its path lists them.
* ``.blobsvc/replaced/``: tombstones (see :mod:`.retire`). One older than
  the grace period plus ``abandoned_after`` was left: marked *retiring*,
  it goes with its segments, as its owner would have done; unmarked, its
  write never settled, and it goes alone when its path still holds the
  version it copied.

So a pass costs two listings of those prefixes (one request for an empty
prefix; else a page per 10 000 entries left and the empty page that ends
it), and a few requests per thing it settles; the whole container is not
read (tests/test_swift_collection_scale.py counts them on 100 000
objects). Only what those cannot decide (a write cut off while committing
whose path no longer lists its segments, a tombstone left unsettled whose
path changed) takes one look at every manifest, as the sweep of
overlapping writes does, since a move or a cat may have lent those
segments elsewhere; if the container keeps changing, they wait for the
next pass. Instances may collect side by side: every step is a
delete that tolerates having been done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from blobsvc.storage.errors import BackendUnavailable, NotFound
from blobsvc.storage.swift.client import ContainerClient
from blobsvc.storage.swift.errors import log, swift_errors
from blobsvc.storage.swift.journal import COMMITTING, WRITING, read_note
from blobsvc.storage.swift.layout import PENDING_DIR, REPLACED_DIR
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

    def collect(self) -> Collected:
        """One pass (see the module docstring)."""
        done = Collected()
        now = self._clock()
        unsure_notes: list[tuple[str, str]] = []
        for name in self._older(PENDING_DIR, now - self.abandoned_after):
            prefix = self._settle_note(name, done)
            if prefix is not None:
                unsure_notes.append((name, prefix))
        unsure_tombstones = [
            name for name in self._older(REPLACED_DIR, now - self.grace - self.abandoned_after)
            if not self._settle_tombstone(name, done)]
        if unsure_notes or unsure_tombstones:
            self._settle_by_references(unsure_notes, unsure_tombstones, done)
        return done

    def _older(self, directory: str, before: float) -> list[str]:
        """Names under ``directory`` last written before ``before`` (wall-clock seconds)."""
        with swift_errors("list", None):
            listing = self.client.conn().get_container(self.client.container,
                                                       prefix=f"{directory}/",
                                                       full_listing=True)[1]
        return [entry["name"] for entry in listing
                if _listed_time(entry.get("last_modified")) < before]

    # -- notes -----------------------------------------------------------------

    def _settle_note(self, name: str, done: Collected) -> str | None:
        """Settle an abandoned note; its segment prefix when only every manifest can tell."""
        try:
            with swift_errors("read", name):
                _, raw = self.client.conn().get_object(self.client.container, name)
        except NotFound:
            return None  # settled meanwhile
        note = read_note(raw)
        if note is None:
            log.warning("%s is no note of a write: left alone", name)
            return None
        path, prefix, state = note
        if state == WRITING:  # never committed, and never will be (see journal)
            if delete_upload(self.client, prefix):
                done.segments_deleted.append(prefix)
                self._forget(name, done)
            return None
        if state == COMMITTING:
            listed = self.references.is_current(path, prefix)
            if listed is None:
                done.postponed.append(name)
                return None
            if listed:
                self._forget(name, done)
                return None
            return prefix
        log.warning("%s has an unknown state %r: left alone", name, state)
        return None

    def _forget(self, name: str, done: Collected) -> None:
        self.client.delete_quietly(name)
        done.notes.append(name)

    # -- tombstones --------------------------------------------------------------

    def _settle_tombstone(self, name: str, done: Collected) -> bool:
        """Settle an abandoned tombstone; False when only every manifest can tell."""
        headers = self.client.head(name)
        if headers is None:
            return True  # retired meanwhile
        if headers.get(TOMBSTONE_RETIRING.lower()) == "true":
            return self._retire(name, done)
        path, manifest = headers.get(TOMBSTONE_PATH.lower()), headers.get(TOMBSTONE_MANIFEST.lower())
        if path is None or manifest is None:
            return False
        current = self.client.head(path)
        if current is not None and current.get("x-manifest-etag") == manifest:
            # The write that made it never replaced the version it copied.
            self.client.delete_quietly(name)
            done.tombstones.append(name)
            return True
        return False

    def _retire(self, name: str, done: Collected) -> bool:
        error = retire_tombstone(self.client, name)
        if error is None:
            done.tombstones.append(name)
        elif isinstance(error, BackendUnavailable):
            done.postponed.append(name)
        else:
            log.warning("could not retire %s (%s): left for a later pass", name, error.message)
        return True

    # -- what only every manifest tells ----------------------------------------------

    def _settle_by_references(self, notes: list[tuple[str, str]], tombstones: list[str],
                              done: Collected) -> None:
        referenced = self.references.referenced_uploads(excluding=frozenset(tombstones))
        if referenced is None:  # the container kept changing: next pass
            done.postponed.extend([name for name, _ in notes] + tombstones)
            return
        for name, prefix in notes:
            if prefix in referenced:  # committed, then moved or lent elsewhere
                self._forget(name, done)
            elif delete_upload(self.client, prefix):
                done.segments_deleted.append(prefix)
                self._forget(name, done)
        for name in tombstones:
            listed = self.references.manifest_uploads(name)
            if listed is None:
                continue  # retired meanwhile
            if listed & referenced:  # its segments are another manifest's too
                self.client.delete_quietly(name)
                done.tombstones.append(name)
            else:
                self._retire(name, done)


def _listed_time(value: str | None) -> float:
    """A listing's ``last_modified`` (UTC, ISO 8601 without a zone) as seconds."""
    if not value:
        return 0.0
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp()

"""Collecting what a dead process's writes left in Swift: a fake clock, an in-memory Swift.

A writer is "killed" by simply stopping where a crash would stop it (its
queues forgotten, nothing more sent), and a collector in another process's
shoes settles what it left: abandoned notes of writes in flight, and
tombstones nobody retired. Each case asserts what stays, byte for byte,
and what goes, and a pass's requests show it never reads the whole
container: what only that could decide is left, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fake_swift import FakeClock, FakeSwift

from blobsvc.storage import Upload
from blobsvc.storage.contract import ObjectMeta
from blobsvc.storage.errors import BackendUnavailable
from blobsvc.storage.swift.claims import Claims
from blobsvc.storage.swift.client import ContainerClient
from blobsvc.storage.swift.collector import Collected, Collector
from blobsvc.storage.swift.journal import (
    COMMITTING,
    WRITING,
    Journal,
    Note,
    note_name,
    read_note,
)
from blobsvc.storage.swift.moves import Mover
from blobsvc.storage.swift.retire import Retirement
from blobsvc.storage.swift.upload import Parts, Uploader

GRACE = 60.0
ABANDONED = 100.0
SEGMENT = 4  # bytes: ten bytes make a large object of three segments
SEGMENTS = ".blobsvc/segments/"
TOMBSTONES = ".blobsvc/replaced/"
NOTES = ".blobsvc/pending/"


class Killed(BaseException):
    """Where a test's writer dies: nothing it would do next happens."""


@dataclass
class Rig:
    swift: FakeSwift
    clock: FakeClock
    client: ContainerClient

    def writer(self) -> tuple[Uploader, Mover, Retirement]:
        """A process's writing parts; a new one forgets what another queued."""
        retirement = Retirement(self.client, GRACE, clock=self.clock, background=False)
        journal = Journal(self.client, ABANDONED, clock=self.clock)
        uploads = Uploader(self.client, retirement, SEGMENT, journal=journal)
        return uploads, Mover(self.client, retirement, Claims()), retirement

    def put(self, path: str, data: bytes) -> None:
        self.writer()[0].put(path, Upload(data))

    def read(self, path: str) -> bytes:
        return self.swift.get_object(self.swift.container, path)[1]

    def segments_written(self, path: str, count: int) -> Parts:
        """A write of ``path`` that dies after ``count`` segments."""
        uploads = self.writer()[0]
        parts = uploads.new_parts(path, ObjectMeta())
        for index in range(count):
            uploads.write_segment(path, [b"%04d" % index], parts)
        return parts

    def collect(self) -> Collected:
        """One pass; :attr:`FakeSwift.listed_prefixes` then holds its listings alone."""
        self.swift.listed_prefixes.clear()
        return Collector(self.client, ABANDONED, GRACE, clock=self.clock).collect()

    def note(self, parts: Parts) -> Note | None:
        return read_note(self.swift.get_object(self.swift.container, parts.lease.name)[1])


@pytest.fixture
def rig() -> Rig:
    clock = FakeClock()
    swift = FakeSwift(wall=clock)
    return Rig(swift, clock, ContainerClient(swift.container, lambda role: swift))


def large(seed: str) -> bytes:
    return (seed * 10).encode()[:10]  # three segments


# -- writes cut off ------------------------------------------------------------------


def test_a_write_cut_off_while_writing_segments_loses_them_once_abandoned(rig):
    parts = rig.segments_written("big", 3)
    assert rig.note(parts) == Note("big", parts.prefix, WRITING)
    assert len(rig.swift.names(parts.prefix)) == 3
    rig.clock.advance(ABANDONED - 1)  # perhaps only slow: left alone
    assert rig.collect() == Collected()
    assert len(rig.swift.names(parts.prefix)) == 3
    rig.clock.advance(2)
    done = rig.collect()
    assert (done.notes, done.segments_deleted) == ([parts.lease.name], [parts.prefix])
    assert rig.swift.names(".blobsvc/") == []


def test_a_write_cut_off_after_its_commit_keeps_its_segments_and_loses_its_note(rig, monkeypatch):
    uploads = rig.writer()[0]
    monkeypatch.setattr(uploads.journal, "end", lambda lease: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        uploads.put("big", Upload(large("abc")))
    [note] = rig.swift.names(NOTES)
    assert read_note(rig.swift.get_object("c", note)[1]).state == COMMITTING
    rig.clock.advance(ABANDONED + 1)
    done = rig.collect()
    assert (done.notes, done.segments_deleted) == ([note], [])
    assert rig.read("big") == large("abc")
    assert rig.swift.names(".blobsvc/") == rig.swift.names(SEGMENTS)
    assert rig.swift.listed_prefixes == [NOTES, TOMBSTONES]  # no look at everything


def test_a_write_cut_off_before_its_manifest_landed_over_an_older_version_loses_its_segments(
        rig):
    rig.put("big", large("old"))
    old = rig.swift.segments_of("big")
    rig.clock.advance(1)
    parts = rig.segments_written("big", 3)
    _, _, retirement = rig.writer()
    replaced = retirement.prepare_replace("big", None, rig.swift)
    rig.writer()[0].journal.committing(parts.lease, replaced.tombstone)  # killed here
    rig.clock.advance(ABANDONED + 1)
    done = rig.collect()
    # The version at its path is older than the note: the manifest never landed.
    assert (done.notes, done.segments_deleted) == ([parts.lease.name], [parts.prefix])
    assert done.tombstones == [replaced.tombstone]  # gone alone: the old version stays
    assert rig.swift.names(".blobsvc/") == sorted(old)
    assert rig.read("big") == large("old")
    assert rig.swift.listed_prefixes == [NOTES, parts.prefix, TOMBSTONES]  # no full read


def test_a_write_cut_off_after_its_manifest_landed_retires_the_version_it_replaced(rig):
    rig.put("big", large("old"))
    old = rig.swift.segments_of("big")
    uploads, _, retirement = rig.writer()
    retirement.settle = lambda path, replaced: (_ for _ in ()).throw(Killed())
    with pytest.raises(Killed):  # committed, then killed before settling
        uploads.put("big", Upload(large("new")))
    [tombstone] = rig.swift.names(TOMBSTONES)
    rig.clock.advance(ABANDONED + 1)
    done = rig.collect()
    assert done.tombstones == [tombstone] and done.segments_deleted == []
    assert not set(old) & set(rig.swift.names())
    assert rig.read("big") == large("new")
    assert rig.swift.names(".blobsvc/") == rig.swift.names(SEGMENTS)


def test_a_write_cut_off_mid_commit_whose_path_is_gone_leaves_its_segments(rig, caplog):
    # Committed and moved since, or never committed: only a listing of every
    # manifest could tell, and a listing may lag. Leaked, never lost.
    parts = rig.segments_written("big", 3)
    rig.writer()[0].journal.committing(parts.lease)
    rig.clock.advance(ABANDONED + 1)
    done = rig.collect()
    assert (done.notes, done.segments_deleted) == ([parts.lease.name], [])
    assert len(rig.swift.names(parts.prefix)) == 3
    assert "its segments stay under" in caplog.text
    assert None not in rig.swift.listed_prefixes


def test_a_committed_write_moved_before_collection_keeps_its_segments(rig, monkeypatch):
    uploads, mover, _ = rig.writer()
    monkeypatch.setattr(uploads.journal, "end", lambda lease: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        uploads.put("big", Upload(large("abc")))
    mover.move("big", "moved", None)  # the manifest now lives elsewhere, same segments
    rig.clock.advance(ABANDONED + 1)
    done = rig.collect()
    assert done.segments_deleted == [] and len(done.notes) == 1
    assert rig.read("moved") == large("abc")
    assert rig.swift.names(NOTES) == []


def test_a_write_renews_its_note_and_refuses_to_commit_once_its_lease_is_too_old(rig):
    uploads = rig.writer()[0]

    def slow(pause: float):
        for chunk in (b"abcd", b"efgh", b"ij"):
            yield chunk
            rig.clock.advance(pause)

    uploads.put("slow", Upload(slow(ABANDONED / 4)))  # renewed at every segment
    assert rig.read("slow") == b"abcdefghij"
    assert rig.swift.names(NOTES) == []
    with pytest.raises(BackendUnavailable, match="no segment"):
        uploads.put("stalled", Upload(slow(ABANDONED / 2)))  # stalled inside its last segment
    assert rig.swift.names(".blobsvc/") == rig.swift.names(SEGMENTS)  # cleaned up by itself
    assert "stalled" not in rig.swift.names()


# -- replacements cut off ----------------------------------------------------------------


def test_a_tombstone_marked_retiring_goes_with_its_segments_once_abandoned(rig):
    rig.put("big", large("old"))
    old = rig.swift.segments_of("big")
    rig.put("big", large("new"))  # the old version's tombstone is queued, then the process dies
    [tombstone] = rig.swift.names(TOMBSTONES)
    rig.clock.advance(GRACE + ABANDONED - 1)
    assert rig.collect() == Collected()
    rig.clock.advance(2)
    assert rig.collect().tombstones == [tombstone]
    assert not set(old) & set(rig.swift.names(SEGMENTS))
    assert rig.read("big") == large("new")


def test_an_unsettled_tombstone_of_the_current_version_goes_alone(rig):
    rig.put("big", large("old"))
    _, _, retirement = rig.writer()
    retirement.prepare_replace("big", None, rig.swift)  # then killed before its commit
    rig.clock.advance(GRACE + ABANDONED + 1)
    done = rig.collect()
    assert len(done.tombstones) == 1 and rig.swift.names(TOMBSTONES) == []
    assert rig.read("big") == large("old")
    assert rig.swift.listed_prefixes == [NOTES, TOMBSTONES]


def test_an_unsettled_tombstone_whose_path_changed_goes_alone(rig):
    # A plain write that committed and died before settling (no note of
    # it): the old segments may be a moved version's now; leaked, not lost.
    rig.put("big", large("old"))
    old = rig.swift.segments_of("big")
    _, _, retirement = rig.writer()
    retirement.prepare_replace("big", None, rig.swift)
    rig.swift.overwrite_unseen("big", b"new")
    rig.clock.advance(GRACE + ABANDONED + 1)
    assert len(rig.collect().tombstones) == 1
    assert rig.swift.names(".blobsvc/") == sorted(old)
    assert rig.read("big") == b"new"


def test_an_unsettled_tombstone_of_a_moved_version_leaves_its_segments(rig):
    rig.put("big", large("old"))
    _, mover, retirement = rig.writer()
    retirement.prepare_replace("big", None, rig.swift)
    mover.move("big", "moved", None)
    rig.clock.advance(GRACE + ABANDONED + 1)
    assert len(rig.collect().tombstones) == 1
    assert rig.swift.names(TOMBSTONES) == []
    assert rig.read("moved") == large("old")


# -- what a pass costs -------------------------------------------------------------------------


def test_a_pass_lists_only_the_notes_and_tombstones_whatever_the_container_holds(rig):
    for index in range(2000):
        rig.swift.put_object("c", f"data/{index:05d}", contents=b"x")
    rig.put("big", large("abc"))
    parts = rig.segments_written("cut", 2)
    rig.clock.advance(ABANDONED + 1)
    rig.swift.calls.clear()
    done = rig.collect()
    assert done.segments_deleted == [parts.prefix]
    # Two listings of the private prefixes, the note, the segments under its
    # prefix and their deletes: nothing that grows with the container.
    assert rig.swift.listed_prefixes == [NOTES, parts.prefix, TOMBSTONES]
    assert sorted(rig.swift.calls) == sorted(["get_container"] * 3 + ["get_object"]
                                             + ["delete_object"] * 3)
    assert note_name(parts.prefix) == parts.lease.name

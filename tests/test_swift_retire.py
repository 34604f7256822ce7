"""The Swift driver's tombstones and segment sweeper, alone: a fake clock, an in-memory Swift.

The real-Swift tests (tests/test_swift_driver.py) show that segments go
in the end; these show *when*, and what a sweep does when Swift fails under
it, which a real Swift cannot be made to do on cue. Each test drives
``Retirement.sweep`` by hand (no background thread) with a clock it moves,
and builds versions with the driver's own ``Uploader`` and ``Mover`` on a
:class:`FakeSwift`: the few swiftclient ``Connection`` calls they make,
answered from a dict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from fake_swift import FakeClock, FakeSwift, md5_hex

from blobsvc.storage import Upload
from blobsvc.storage.errors import BackendUnavailable
from blobsvc.storage.swift.claims import Claims
from blobsvc.storage.swift.client import ContainerClient
from blobsvc.storage.swift.layout import SLO_GET, SLO_PUT, upload_prefix
from blobsvc.storage.swift.lending import Lending, record_name
from blobsvc.storage.swift.moves import Mover
from blobsvc.storage.swift.retire import RETRY_SECONDS, Retirement, retire_tombstone
from blobsvc.storage.swift.upload import Uploader

GRACE = 60.0
SEGMENT = 4  # bytes: ten bytes make a large object of three segments
SEGMENTS = ".blobsvc/segments/"
TOMBSTONES = ".blobsvc/replaced/"


# -- the parts under test, on the fake -------------------------------------------------


@dataclass
class Rig:
    """The retirement and the writers that feed it, on one fake Swift and clock."""

    swift: FakeSwift
    clock: FakeClock
    retirement: Retirement
    uploads: Uploader
    mover: Mover

    def put(self, path: str, data: bytes) -> None:
        self.uploads.put(path, Upload(data))

    def sweep(self) -> None:
        self.retirement.sweep()


@pytest.fixture
def parts() -> Rig:
    swift, clock = FakeSwift(), FakeClock()
    client = ContainerClient(swift.container, lambda role: swift)
    # Verdicts confirmed at once: the confirmation has tests of its own, below.
    retirement = Retirement(client, GRACE, clock=clock, background=False, confirm_after=0)
    return Rig(swift, clock, retirement, Uploader(client, retirement, SEGMENT),
               Mover(client, retirement, Claims()))


def large(seed: str) -> bytes:
    return (seed * 10).encode()[:10]  # three segments


# -- replaced versions: kept for the grace period, then deleted -----------------------


@pytest.mark.parametrize("change", ["overwrite", "delete"])
def test_replaced_large_version_keeps_its_segments_for_the_grace_period_then_loses_them(parts, change):
    parts.put("big", large("old"))
    old = parts.swift.segments_of("big")
    if change == "overwrite":
        parts.put("big", b"new")
    else:
        parts.mover.delete("big", None)
    [tombstone] = parts.swift.names(TOMBSTONES)
    parts.clock.advance(GRACE - 0.5)
    parts.sweep()
    assert set(old) <= set(parts.swift.names(SEGMENTS)), "gone before the grace period was over"
    assert parts.swift.names(TOMBSTONES) == [tombstone]
    parts.clock.advance(0.5)
    parts.sweep()
    assert not set(old) & set(parts.swift.names(SEGMENTS))
    assert parts.swift.names(TOMBSTONES) == []
    assert parts.retirement.pending() == ([], [])


def test_close_retires_everything_pending_whatever_its_age(parts):
    parts.put("big", large("old"))
    parts.put("big", large("new"))
    parts.retirement.close()
    assert parts.swift.names(TOMBSTONES) == []
    assert parts.swift.names(SEGMENTS) == parts.swift.segments_of("big")


# -- what is still referenced is kept ---------------------------------------------------


def test_a_replaced_version_still_current_keeps_its_segments_and_its_tombstone_goes(parts):
    # As when a write that started later won in Swift: the old version is still there.
    parts.put("big", large("old"))
    old = parts.swift.segments_of("big")
    replaced = parts.retirement.prepare_replace("big", None, parts.swift)
    assert parts.swift.names(TOMBSTONES)
    parts.retirement.settle("big", replaced)  # "big" was never replaced after all
    assert parts.swift.names(TOMBSTONES) == []
    assert parts.swift.segments_of("big") == old
    assert set(old) <= set(parts.swift.names(SEGMENTS))
    assert parts.retirement.pending()[0] == []


def test_a_new_version_listing_the_same_segments_keeps_them(parts):
    # A retried move: the manifest copied over the name lists the very same segments.
    parts.put("big", large("old"))
    old = parts.swift.segments_of("big")
    parts.swift.put_object("c", "copy", headers={"X-Copy-From": "/c/big"}, query_string=SLO_GET)
    replaced = parts.retirement.prepare_replace("big", None, parts.swift)
    parts.swift.put_object("c", "big", headers={"X-Copy-From": "/c/copy"}, query_string=SLO_GET)
    parts.retirement.settle("big", replaced)
    parts.clock.advance(GRACE)
    parts.sweep()
    assert set(old) <= set(parts.swift.names(SEGMENTS))
    assert parts.swift.names(TOMBSTONES) == []


def test_an_upload_a_pending_tombstone_still_lists_is_not_collected(parts):
    # Another instance replaced our version properly: its tombstone owns the
    # segments now, and deletes them when its own grace period is over.
    parts.put("big", large("ours"))
    ours = parts.swift.segments_of("big")
    parts.swift.put_object("c", TOMBSTONES + "big/theirs", headers={"X-Copy-From": "/c/big"},
                           query_string=SLO_GET)
    parts.swift.overwrite_unseen("big", b"theirs")
    parts.clock.advance(GRACE)
    parts.sweep()
    assert set(ours) <= set(parts.swift.names(SEGMENTS))
    assert parts.swift.names(TOMBSTONES) == [TOMBSTONES + "big/theirs"]
    assert parts.retirement.pending() == ([], [])  # settled: not ours to delete


def test_an_upload_moved_away_before_being_overwritten_is_not_collected(parts):
    parts.put("big", large("ours"))
    ours = parts.swift.segments_of("big")
    parts.mover.move("big", "moved", None)
    parts.swift.overwrite_unseen("big", b"plain")
    parts.clock.advance(GRACE)
    parts.sweep()
    assert parts.swift.segments_of("moved") == ours
    assert set(ours) <= set(parts.swift.names(SEGMENTS))


# -- orphans of racing uploads ----------------------------------------------------------


def test_segments_orphaned_by_a_racing_upload_are_collected_after_the_grace_period(parts):
    # The other writer took the version before ours for the one it replaced:
    # ours was overwritten, yet tombstoned by nobody.
    parts.put("big", large("ours"))
    ours = parts.swift.segments_of("big")
    parts.swift.overwrite_unseen("big", b"theirs")
    parts.clock.advance(GRACE - 0.5)
    parts.sweep()
    assert set(ours) <= set(parts.swift.names(SEGMENTS)), "a reader may still stream them"
    parts.clock.advance(0.5)
    parts.sweep()
    assert parts.swift.names(SEGMENTS) == []
    assert parts.retirement.pending() == ([], [])


def test_the_current_version_is_never_collected(parts):
    parts.put("big", large("ours"))
    parts.clock.advance(GRACE)
    parts.sweep()
    assert parts.swift.names(SEGMENTS) == parts.swift.segments_of("big")
    assert parts.retirement.pending() == ([], [])


# -- a sweep Swift fails under keeps its work ---------------------------------------------


def test_due_tombstones_stay_queued_while_swift_is_down(parts):
    parts.put("big", large("old"))
    old = parts.swift.segments_of("big")
    parts.put("big", b"new")
    parts.clock.advance(GRACE)
    parts.swift.down = True
    parts.sweep()  # one warning, no exception: the next round tries again
    parts.swift.down = False
    assert parts.retirement.pending()[0] == parts.swift.names(TOMBSTONES)
    parts.clock.advance(RETRY_SECONDS)
    parts.sweep()
    assert parts.swift.names(TOMBSTONES) == []
    assert not set(old) & set(parts.swift.names(SEGMENTS))


def test_watched_uploads_stay_queued_while_swift_is_down(parts):
    parts.put("big", large("ours"))
    parts.swift.overwrite_unseen("big", b"theirs")
    parts.clock.advance(GRACE)
    parts.swift.down = True
    parts.sweep()  # the HEAD of "big" fails: unsure, so nothing is deleted
    parts.swift.down = False
    assert parts.swift.names(SEGMENTS)
    assert parts.retirement.pending()[1], "the orphan was forgotten"
    parts.clock.advance(RETRY_SECONDS)
    parts.sweep()
    assert parts.swift.names(SEGMENTS) == []


def test_watched_uploads_stay_queued_when_the_container_listing_fails(parts):
    parts.put("big", large("ours"))
    parts.swift.overwrite_unseen("big", b"theirs")
    parts.clock.advance(GRACE)
    parts.swift.failing = {"get_container"}
    with pytest.raises(BackendUnavailable):  # the sweeper thread logs it, one line
        parts.sweep()
    parts.swift.failing = set()
    assert parts.retirement.pending()[1], "the orphan was forgotten"
    parts.clock.advance(RETRY_SECONDS)
    parts.sweep()
    assert parts.swift.names(SEGMENTS) == []


def test_orphaned_segments_whose_deletion_fails_are_tried_again(parts):
    parts.put("big", large("ours"))
    parts.swift.overwrite_unseen("big", b"theirs")
    parts.clock.advance(GRACE)
    parts.swift.failing = {"delete_object"}
    parts.sweep()
    parts.swift.failing = set()
    assert parts.swift.names(SEGMENTS)
    parts.clock.advance(RETRY_SECONDS)
    parts.sweep()
    assert parts.swift.names(SEGMENTS) == []


def test_work_kept_by_a_failed_sweep_waits_before_it_is_tried_again(parts):
    # While Swift is down, a round every few seconds must not mean a warning
    # (and a request) every few seconds.
    parts.put("big", large("old"))
    parts.put("big", b"new")
    parts.clock.advance(GRACE)
    parts.swift.down = True
    parts.sweep()
    parts.swift.calls.clear()
    parts.clock.advance(RETRY_SECONDS - 0.5)
    parts.sweep()
    assert parts.swift.calls == []
    parts.clock.advance(0.5)
    parts.sweep()
    assert parts.swift.calls


# -- a plain version slipping in before the tombstone ------------------------------------


@pytest.mark.parametrize("change", ["overwrite", "delete"])
def test_a_plain_version_between_the_head_and_the_tombstone_leaves_no_tombstone(
        parts, monkeypatch, change):
    # Racing overwrites: the HEAD saw a large version, then another writer's
    # plain object landed before the copy. A copy of that would be a plain
    # object, which Swift's manifest delete answers 200 for and leaves in
    # place: a tombstone nobody could ever retire.
    parts.put("big", large("old"))
    real_check = parts.retirement.client.check_current

    def check_then_replaced(path, precondition, conn):
        headers = real_check(path, precondition, conn)
        parts.swift.overwrite_unseen(path, b"plain")
        return headers

    monkeypatch.setattr(parts.retirement.client, "check_current", check_then_replaced)
    if change == "overwrite":
        parts.put("big", large("new"))
        assert parts.swift.get_object("c", "big")[1] == large("new")
    else:
        monkeypatch.setattr(parts.mover.client, "head", lambda path: (
            check_then_replaced(path, None, parts.swift)))
        parts.mover.delete("big", None)
        assert "big" not in parts.swift.names()
    parts.retirement.close()
    assert parts.swift.names(TOMBSTONES) == []


# -- a move racing the write that replaces its source -----------------------------------


def test_a_move_racing_an_overwrite_of_its_source_keeps_the_moved_segments(parts, monkeypatch):
    # The overwrite tombstones the version at "big"; before it commits, a
    # move copies that very manifest to "moved" and deletes "big". The
    # tombstone, retired once the overwrite won, must not take the
    # segments "moved" now lists: the move's lending record says where they went.
    parts.mover.lending = parts.retirement.lending = Lending(parts.retirement.client, 3600)
    parts.put("big", large("ours"))
    ours = parts.swift.segments_of("big")
    real_tombstone = parts.retirement.tombstone

    def tombstone_then_moved(path, conn, seen):
        made = real_tombstone(path, conn, seen)
        monkeypatch.setattr(parts.retirement, "tombstone", real_tombstone)
        parts.mover.move("big", "moved", None)
        return made

    monkeypatch.setattr(parts.retirement, "tombstone", tombstone_then_moved)
    parts.put("big", large("new"))
    [tombstone] = parts.swift.names(TOMBSTONES)
    parts.clock.advance(GRACE)
    parts.sweep()
    assert parts.swift.names(TOMBSTONES) == []
    assert parts.swift.segments_of("moved") == ours
    assert set(ours) <= set(parts.swift.names(SEGMENTS))
    assert parts.swift.get_object("c", "moved")[1] == large("ours")
    assert parts.swift.get_object("c", "big")[1] == large("new")
    parts.retirement.close()
    assert parts.swift.get_object("c", "moved")[1] == large("ours")


def test_a_tombstone_of_a_join_keeps_only_the_segments_another_name_holds(parts):
    # A cat result lists segments of two uploads; one of them was lent on to
    # "kept" meanwhile. Retiring the result's tombstone deletes the rest.
    lending = Lending(parts.retirement.client, 3600)
    parts.put("a", large("aaa"))
    parts.put("b", large("bbb"))
    entries = [{"path": f"/c/{name}", "etag": md5_hex(parts.swift.get_object("c", name)[1]),
                "size_bytes": len(parts.swift.get_object("c", name)[1])}
               for name in parts.swift.segments_of("a") + parts.swift.segments_of("b")]
    parts.swift.put_object("c", TOMBSTONES + "ab/old", contents=json.dumps(entries),
                           query_string=SLO_PUT)
    for path in ("a", "b"):
        parts.swift.delete_object("c", path)
    parts.swift.put_object("c", "kept", contents=json.dumps(entries[:3]), query_string=SLO_PUT)
    lending.lend({upload_prefix(entries[0]["path"].split("/", 2)[2])}, "kept")
    lent = [entry["path"].split("/", 2)[2] for entry in entries[:3]]
    assert retire_tombstone(parts.retirement.client, TOMBSTONES + "ab/old", lending) is None
    assert parts.swift.names(TOMBSTONES) == []
    assert parts.swift.names(SEGMENTS) == lent
    assert parts.swift.get_object("c", "kept")[1] == large("aaa")


# -- a listing that lags behind writes --------------------------------------------------


CONFIRM = 300.0


@pytest.fixture
def lagging(parts) -> Rig:
    parts.retirement.confirm_after = CONFIRM
    return parts


def test_a_move_the_listing_lacks_keeps_the_segments_until_the_verdict_is_confirmed(lagging):
    # Another instance moved the object right after it was written; the
    # container listing does not show the new name yet.
    lagging.put("big", large("ours"))
    ours = lagging.swift.segments_of("big")
    lagging.swift.put_object("c", "moved", headers={"X-Copy-From": "/c/big"},
                             query_string=SLO_GET)
    lagging.swift.delete_object("c", "big")
    lagging.swift.unlisted.add("moved")
    lagging.clock.advance(GRACE)
    lagging.sweep()  # no manifest listed lists them: suspected, not deleted
    assert set(ours) <= set(lagging.swift.names(SEGMENTS))
    lagging.swift.unlisted.clear()  # the listing caught up
    lagging.clock.advance(CONFIRM)
    lagging.sweep()
    assert lagging.swift.get_object("c", "moved")[1] == large("ours")
    assert lagging.retirement.pending() == ([], [])


def test_an_orphan_still_unlisted_when_confirmed_is_collected(lagging):
    lagging.put("big", large("ours"))
    lagging.swift.overwrite_unseen("big", b"theirs")
    lagging.clock.advance(GRACE)
    lagging.sweep()
    assert lagging.swift.names(SEGMENTS), "deleted on one look"
    lagging.clock.advance(CONFIRM - 1)
    lagging.sweep()
    assert lagging.swift.names(SEGMENTS)
    lagging.clock.advance(1)
    lagging.sweep()
    assert lagging.swift.names(SEGMENTS) == []
    assert lagging.retirement.pending() == ([], [])


def test_at_close_a_move_the_listing_lacks_keeps_its_segments_by_its_lending_record(parts):
    # close() decides on one look; the move's record of where the segments
    # went is read by name, so the copy the listing lacks still counts.
    parts.mover.lending = parts.retirement.lending = Lending(parts.retirement.client, 3600)
    parts.put("big", large("ours"))
    ours = parts.swift.segments_of("big")
    parts.swift.unlisted.add("moved")
    parts.mover.move("big", "moved", None)
    parts.retirement.close()
    assert set(ours) <= set(parts.swift.names(SEGMENTS))
    assert parts.swift.get_object("c", "moved")[1] == large("ours")
    assert parts.swift.names(".blobsvc/lent/") == [record_name(ours[0].rsplit("/", 1)[0])]

"""What a collection pass costs on a real Swift container of 100 000 objects.

Why: a pass must not read the whole container to find what dead writes
left. It lists ``.blobsvc/pending/`` and ``.blobsvc/replaced/`` and sends
a few requests per thing it settles, whatever the container holds, in
every case. Each case asserts its requests one by one, and the figures
(requests, seconds) are shown after the run.

The 100 000 rows are merged into the container's database by Swift itself
(see swift_rows): listed and counted as if PUT, in seconds rather than
the minutes the proxy would take.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Iterator

import pytest
from conftest import swift_settings
from reports import REPORTS
from swift_requests import Sent, SentRequests
from swift_rows import add_rows

from blobsvc.storage import create_driver
from blobsvc.storage.contract import ObjectMeta
from blobsvc.storage.swift.collector import Collected, Collector
from blobsvc.storage.swift.driver import SwiftDriver
from blobsvc.storage.swift.journal import COMMITTING, read_note
from blobsvc.storage.swift.upload import Parts

ROWS = 100_000
#: Large objects whose manifests the full read GETs: two segments each.
LARGE = ("large/one", "large/two")
SEGMENT_SIZE = 1024 * 1024
#: Swift's container_listing_limit: names per listing page.
PAGE = 10_000
NOTES = ".blobsvc/pending/"
TOMBSTONES = ".blobsvc/replaced/"


@dataclass
class Crowded:
    """A driver on a container of :data:`ROWS` listed objects and the :data:`LARGE` ones."""

    driver: SwiftDriver
    fill_seconds: float

    def objects(self) -> int:
        """The container's object count, as Swift reports it."""
        headers = self.driver.client.conn().head_container(self.driver.container)
        return int(headers["x-container-object-count"])

    def later_collector(self) -> Collector:
        """A collector whose clock is past every lease now running: what is
        there now counts as abandoned, with no wait."""
        settings = self.driver.settings
        ahead = settings.abandoned_after_seconds + settings.segment_grace_seconds + 1
        return Collector(self.driver.client, settings.abandoned_after_seconds,
                         settings.segment_grace_seconds, clock=lambda: time.time() + ahead)

    def cut_off_write(self, path: str, segments: int) -> Parts:
        """A write of ``path`` that dies after ``segments`` segments, its note left."""
        uploads = self.driver.uploads
        parts = uploads.new_parts(path, ObjectMeta())
        for index in range(segments):
            uploads.write_segment(path, [b"%04d" % index], parts)
        return parts

    def names(self, prefix: str) -> list[str]:
        return self.driver.client.names_below(prefix)


@pytest.fixture(scope="module")
def crowded(swift_stack) -> Iterator[Crowded]:
    """One filled container for the module: filling it is what takes time."""
    settings = swift_settings(swift_stack, segment_size=SEGMENT_SIZE, segment_grace_seconds=0,
                              collect_interval_seconds=0)
    # The large objects come from a driver of their own, closed before any
    # count: a commit starts the sweeper thread, whose requests would count.
    writer = create_driver("swift", settings)
    for path in LARGE:
        writer.put_object(path, b"x" * (SEGMENT_SIZE + 1))
    writer.close()
    started = time.perf_counter()
    add_rows(swift_stack, settings["container"],
             (f"{'-drafts' if index % 2 else 'photos'}/{index:06d}" for index in range(ROWS)))
    filled = Crowded(create_driver("swift", settings), time.perf_counter() - started)
    yield filled
    filled.driver.close()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> SentRequests:
    return SentRequests(monkeypatch)


def report(request: pytest.FixtureRequest, case: str, seconds: float, sent: SentRequests) -> None:
    """Show a pass's figures after the run, and in the JUnit XML."""
    text = (f"swift collection, {case}: {len(sent.sent)} requests "
            f"({dict(Counter(s.function for s in sent.sent))}), {seconds:.3f} s")
    request.node.user_properties.append((case, text))
    request.config.stash.setdefault(REPORTS, []).append(text)


def timed_pass(collector: Collector) -> tuple[Collected, float]:
    """One pass, and its wall-clock seconds."""
    started = time.perf_counter()
    done = collector.collect()
    return done, time.perf_counter() - started


def test_the_rows_are_swift_s_own(crowded, request):
    assert crowded.objects() == ROWS + len(LARGE) * 3  # a manifest and two segments each
    page = crowded.driver.client.conn().get_container(crowded.driver.container,
                                                      prefix="photos/0999", limit=3)[1]
    assert [entry["name"] for entry in page] == ["photos/099900", "photos/099902",
                                                 "photos/099904"]
    assert page[0]["bytes"] == 1024 and "last_modified" in page[0]
    request.config.stash.setdefault(REPORTS, []).append(
        f"swift collection: {ROWS} rows merged in {crowded.fill_seconds:.1f} s")


def test_a_pass_with_nothing_abandoned_lists_two_prefixes_and_nothing_else(crowded, sent,
                                                                           request):
    done, seconds = timed_pass(crowded.driver.collector)
    assert done == Collected()
    assert sent.sent == [Sent("get_container", NOTES), Sent("get_container", TOMBSTONES)]
    report(request, "nothing abandoned", seconds, sent)


def test_a_pass_settling_a_write_cut_off_sends_a_request_per_step(crowded, sent, request):
    parts = crowded.cut_off_write("cut/off", 3)
    segments = crowded.names(parts.prefix)
    assert len(segments) == 3
    sent.clear()
    done, seconds = timed_pass(crowded.later_collector())
    assert (done.notes, done.segments_deleted) == ([parts.lease.name], [parts.prefix])
    assert sent.sent == [
        Sent("get_container", NOTES), Sent("get_container", NOTES),  # a page, then an empty one
        Sent("get_object", parts.lease.name),
        Sent("get_container", parts.prefix), Sent("get_container", parts.prefix),
        *(Sent("delete_object", name) for name in segments),
        Sent("delete_object", parts.lease.name),
        Sent("get_container", TOMBSTONES),
    ]
    report(request, "a write cut off", seconds, sent)
    assert crowded.names(parts.prefix) == [] and crowded.names(NOTES) == []


def test_a_write_cut_off_mid_commit_is_decided_without_reading_the_container(
        crowded, sent, request):
    parts = crowded.cut_off_write("cut/committing", 2)
    crowded.driver.journal.committing(parts.lease)  # killed before its manifest PUT
    assert read_note(crowded.driver.client.conn().get_object(
        crowded.driver.container, parts.lease.name)[1]).state == COMMITTING
    segments = crowded.names(parts.prefix)
    assert crowded.objects() > ROWS
    sent.clear()
    done, seconds = timed_pass(crowded.later_collector())
    # Its path holds nothing: committed and moved since, or never committed.
    # Only every manifest could tell, and a listing may lag: the segments stay.
    assert (done.notes, done.segments_deleted) == ([parts.lease.name], [])
    assert sent.sent == [
        Sent("get_container", NOTES), Sent("get_container", NOTES),
        Sent("get_object", parts.lease.name),
        Sent("head_object", "cut/committing"),
        Sent("delete_object", parts.lease.name),
        Sent("get_container", TOMBSTONES),
    ]
    report(request, "a write cut off mid-commit", seconds, sent)
    assert crowded.names(parts.prefix) == segments
    for path in LARGE:
        assert crowded.driver.get_object(path) == b"x" * (SEGMENT_SIZE + 1)

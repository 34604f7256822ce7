"""What one run measures: object sizes, repetitions, durations.

Two presets: ``quick`` (a few minutes, for checking that the harness and
the service work) and ``full`` (the sizes the goals are stated for). Big
files are checked against the free disk space before anything is written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bench.system import BenchError, GiB, MiB

#: Kept free on top of the estimate: the machine is shared.
DISK_MARGIN = 1 * GiB

#: W5's directories: the goal is stated for the largest; the smaller ones
#: show how page time grows with the directory.
LIST_SIZES = (1_000, 10_000, 100_000)


@dataclass
class Plan:
    mode: str
    reps: int                 # interleaved repetitions per workload
    wrk_reps: int             # repetitions of the wrk workloads (W2, W6)
    wrk_seconds: int          # duration of one wrk run
    big: int                  # W1 GET, W3 PUT and W9 S3 GET/PUT object size
    parallel_size: int        # W4 object size
    parallel_count: int       # W4 concurrent downloads
    small: int                # W2 and W6 object size
    list_sizes: tuple         # W5 directory sizes, one row each
    list_limit: int           # W5 page size
    list_passes: int          # W5 walks through each directory
    rss_small: int            # W7 object sizes whose peak RSS must match
    rss_big: int
    swift_size: int           # W8 object size, PUT and GET through Swift
    notes: list = dataclasses.field(default_factory=list)

    @classmethod
    def preset(cls, quick: bool) -> Plan:
        if quick:
            # W5 keeps its full 100 000 objects: the goal is about that size,
            # and paging cost grows with the directory.
            return cls(mode="quick", reps=3, wrk_reps=2, wrk_seconds=2, big=128 * MiB,
                       parallel_size=16 * MiB, parallel_count=8, small=4096,
                       list_sizes=LIST_SIZES, list_limit=1000, list_passes=1,
                       rss_small=32 * MiB, rss_big=256 * MiB, swift_size=32 * MiB)
        return cls(mode="full", reps=5, wrk_reps=5, wrk_seconds=10, big=1 * GiB,
                   parallel_size=64 * MiB, parallel_count=8, small=4096,
                   list_sizes=LIST_SIZES, list_limit=1000, list_passes=3,
                   rss_small=256 * MiB, rss_big=4 * GiB, swift_size=256 * MiB)

    def disk_needed(self) -> int:
        """Peak bytes on disk: workloads clean up after themselves, so the
        largest single workload decides (W3 holds a source and up to four
        copies of ``big``; W4 sixteen objects; W7 a source and its copy;
        W8 a source and, in Swift, one copy per side plus the one replacing
        it; W9 a source and one copy, deleted before each PUT)."""
        w3 = 5 * self.big
        w4 = (2 * self.parallel_count + 1) * self.parallel_size + self.big
        w7 = 2 * self.rss_big
        w8 = 5 * self.swift_size + self.big
        w9 = 2 * self.big
        return max(w3, w4, w7, w8, w9) + DISK_MARGIN

    def fit_disk(self, free: int) -> None:
        """Shrink the big objects to fit ``free`` bytes, or refuse."""
        wanted = self.disk_needed()
        while self.disk_needed() > free and self.rss_big > 4 * self.rss_small:
            self.rss_big //= 2
        while self.disk_needed() > free and self.big > 64 * MiB:
            self.big //= 2
        if self.disk_needed() > free:
            raise BenchError(f"not enough disk space: this run needs about "
                             f"{self.disk_needed() / GiB:.1f} GiB free where its temporary "
                             f"files go, and {free / GiB:.1f} GiB are; free some or pass "
                             f"--tmpdir on a bigger filesystem")
        if self.disk_needed() < wanted:
            self.notes.append(f"shrunk to fit {free / GiB:.1f} GiB free disk: W1/W3/W9 object "
                              f"{self.big // MiB} MiB, W7 big object {self.rss_big // MiB} MiB")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

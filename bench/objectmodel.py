"""The filesystem driver's recursive listing and reaper, measured in process.

    python -m bench.objectmodel [--objects 100000] [--due 1000] [--reps 3] [--tmpdir DIR]

Two figures, each on a fresh root (filesystem driver, ``fsync: false``; the
objects that never expire are plain files made directly on disk, served as
objects without metadata, as the tests make them):

- recursive walk: pages of 1000 through ``list_recursive`` of ``--objects``
  objects, in two layouts: 100 directories of two levels, and one flat
  directory (settled, so the second walk reads its names from the cache).
  Milliseconds per page (median, p90, max), the tracemalloc peak of the
  largest page (a separate walk: tracing slows Python down), and the growth
  of the process's peak RSS over the walk;
- reaper: one ``reap_expired`` pass with 0, 10 000 and ``--objects`` objects
  that never expire beside ``--due`` objects that expired a second ago, and
  an idle pass (nothing due) beside the same objects: a pass should cost
  the same whatever the number of objects that never expire.

Nothing here asserts anything: the tests hold the behaviour
(tests/test_filesystem_object_model.py), this prints the numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc

from bench.system import MiB, memory
from blobsvc.storage import ObjectMeta, Upload
from blobsvc.storage.filesystem import FilesystemDriver

PAGE = 1000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.objectmodel",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000,
                        help="objects to walk, and the largest count of objects that never expire")
    parser.add_argument("--due", type=int, default=1000, help="expired objects a reaper pass deletes")
    parser.add_argument("--reps", type=int, default=3, help="reaper passes measured per count")
    parser.add_argument("--tmpdir", help="where the roots live (default: the system's temp directory)")
    return parser.parse_args(argv)


def make_files(directory: str, count: int) -> None:
    os.makedirs(directory, exist_ok=True)
    for i in range(count):
        os.close(os.open(os.path.join(directory, f"{i:06d}"), os.O_CREAT | os.O_WRONLY, 0o600))


def settle(directory: str) -> None:
    """Age the directory's mtime, as a store's directories are once written."""
    then = time.time() - 60
    os.utime(directory, (then, then))


def reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def walk(driver: FilesystemDriver) -> tuple[list[float], int]:
    """Page through everything: seconds per page, entries seen."""
    times, marker, seen = [], None, 0
    while True:
        started = time.perf_counter()
        page = driver.list_recursive("", marker=marker, limit=PAGE)
        times.append(time.perf_counter() - started)
        if not page:
            return times, seen
        seen += len(page)
        marker = page[-1].path


def traced_peak(driver: FilesystemDriver) -> int:
    """The tracemalloc peak of the largest page of a whole walk."""
    marker, worst = None, 0
    tracemalloc.start()
    try:
        while True:
            tracemalloc.reset_peak()
            page = driver.list_recursive("", marker=marker, limit=PAGE)
            worst = max(worst, tracemalloc.get_traced_memory()[1])
            if not page:
                return worst
            marker = page[-1].path
            del page
    finally:
        tracemalloc.stop()


def describe_walk(name: str, times: list[float], seen: int, rss_growth: int,
                  peak: int | None) -> str:
    ms = sorted(t * 1000 for t in times[:-1])  # the last, empty page aside
    p90 = ms[int(len(ms) * 0.9)]
    traced = "" if peak is None else f", tracemalloc peak of a page {peak / MiB:.1f} MiB"
    return (f"  {name:34} {seen} objects, {len(ms)} pages: {statistics.median(ms):6.1f} ms/page "
            f"median, p90 {p90:.1f}, max {ms[-1]:.1f}; peak RSS +{rss_growth / MiB:.1f} MiB{traced}")


def measure_walks(workdir: str, objects: int) -> None:
    print(f"recursive walk, pages of {PAGE}:")
    nested = os.path.join(workdir, "nested")
    driver = FilesystemDriver.build(root=nested, fsync=False, reap_interval=0)
    per_directory = max(1, objects // 100)
    for top in range(10):
        for sub in range(10):
            make_files(os.path.join(nested, f"t{top}", f"s{sub}"), per_directory)
    report_walk(driver, "100 directories (10 x 10)", traced=True)
    driver.close()
    flat = os.path.join(workdir, "flat")
    driver = FilesystemDriver.build(root=flat, fsync=False, reap_interval=0)
    make_files(os.path.join(flat, "all"), objects)
    settle(os.path.join(flat, "all"))
    report_walk(driver, "1 directory, first walk", traced=False)
    report_walk(driver, "1 directory, names cached", traced=True)
    driver.close()


def report_walk(driver: FilesystemDriver, name: str, traced: bool) -> None:
    reset_peak_rss()
    before = memory(os.getpid()).get("VmHWM", 0)
    times, seen = walk(driver)
    growth = memory(os.getpid()).get("VmHWM", 0) - before
    print(describe_walk(name, times, seen, growth, traced_peak(driver) if traced else None))


def measure_reaper(workdir: str, objects: int, due: int, reps: int) -> None:
    print(f"reaper, one pass deleting {due} expired objects (median of {reps}), "
          "and an idle pass (nothing due):")
    for never in sorted({0, min(10_000, objects), objects}):
        root = os.path.join(workdir, f"reap-{never}")
        driver = FilesystemDriver.build(root=root, fsync=False, reap_interval=0)
        for i in range(100):
            make_files(os.path.join(root, "never", f"{i:02d}"), never // 100)
        passes, idle = [], []
        for _ in range(reps):
            expired = int(time.time()) - 1
            for i in range(due):
                driver.put_object(f"due/{i % 10}/{i}", Upload(b"x", meta=ObjectMeta(expires_at=expired)))
            started = time.perf_counter()
            reaped = driver.reap_expired()
            passes.append(time.perf_counter() - started)
            assert reaped == due, (reaped, due)
            started = time.perf_counter()
            driver.reap_expired()
            idle.append(time.perf_counter() - started)
        print(f"  {never:7d} objects that never expire: pass {statistics.median(passes) * 1000:8.1f} ms "
              f"({statistics.median(passes) / due * 1e6:.0f} us per expired object), idle pass "
              f"{statistics.median(idle) * 1e6:.0f} us")
        driver.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="blobsvc-bench-objectmodel-", dir=args.tmpdir) as workdir:
        measure_walks(workdir, args.objects)
        measure_reaper(workdir, args.objects, args.due, args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m bench [--quick]``: blobsvc against its ceilings, side by side, one run.

Starts blobsvc (fsync on, and a second instance with fsync off), nginx and,
for W2, the bare CherryPy store on loopback with generated configs in one
temporary directory (W8 adds the test fixture's Swift and a blobsvc on it,
W9 a blobsvc with a user for its S3 and native requests), runs the
workloads interleaved, prints the table and writes it to bench/results/.
Exit status: 0 when every workload was measured (whatever the goals say:
this is a measurement, not a test), 1 when the harness could not measure
something, 2 when a required tool is missing.
"""

from __future__ import annotations

import argparse
import atexit
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from datetime import datetime, timezone

from bench import report
from bench.plan import Plan
from bench.servers import Bare, Blobsvc, Nginx
from bench.system import (
    BenchError,
    check_tools,
    filesystem_type,
    free_bytes,
    loadavg,
    process_tree,
    run,
    tool_version,
)
from bench.workloads import WORKLOADS, Context, new_row

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small objects, fewer and shorter runs (about five minutes)")
    parser.add_argument("--only", metavar="W1,W2,...", help="run only these workloads")
    parser.add_argument("--reps", type=int, help="repetitions per workload (default: 3 quick, 5 full)")
    parser.add_argument("--wrk-seconds", type=int, help="duration of each wrk run")
    parser.add_argument("--workers", type=int,
                        help="worker processes for every server (default: each server's own, one per CPU)")
    parser.add_argument("--blobsvc-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the blobsvc processes (repeatable), "
                        "e.g. MALLOC_ARENA_MAX=2 to try an allocator setting")
    parser.add_argument("--tmpdir", help="where the servers keep their data (default: the system's "
                        "temporary directory); it must be a real disk for fsync to mean anything")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, configs)")
    return parser.parse_args(argv)


class Run:
    """Owns what the run started: servers (by PID) and the temporary directory."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.workdir: str | None = None
        self.servers: list = []

    def cleanup(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers = []
        if self.workdir and os.path.isdir(self.workdir):
            if self.keep:
                print(f"kept {self.workdir}", file=sys.stderr)
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir = None


def git_describe() -> str:
    try:
        head = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], timeout=10).stdout.strip()
        dirty = run(["git", "-C", REPO, "status", "--porcelain", "--", "blobsvc"], timeout=10).stdout
    except (OSError, BenchError):
        return "unknown"
    return head + (" with uncommitted changes in blobsvc/" if dirty.strip() else "")


def blobsvc_version() -> str:
    try:
        import blobsvc
    except ImportError:
        return "not importable"
    return getattr(blobsvc, "__version__", "unknown")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problems = check_tools()
    if problems:
        for problem in problems:
            print(f"bench: {problem}", file=sys.stderr)
        return 2
    selected = [w.strip().upper() for w in args.only.split(",")] if args.only else list(WORKLOADS)
    unknown = [w for w in selected if w not in WORKLOADS]
    if unknown:
        print(f"bench: unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}",
              file=sys.stderr)
        return 2
    extra_env = dict(item.split("=", 1) for item in args.blobsvc_env if "=" in item)
    if len(extra_env) != len(args.blobsvc_env):
        print("bench: --blobsvc-env takes NAME=VALUE", file=sys.stderr)
        return 2
    plan = Plan.preset(args.quick)
    if args.reps:
        plan.reps = plan.wrk_reps = args.reps
    if args.wrk_seconds:
        plan.wrk_seconds = args.wrk_seconds

    owned = Run(args.keep)
    atexit.register(owned.cleanup)

    def on_sigterm(*_: object) -> None:
        print("\nbench: stopped by SIGTERM", file=sys.stderr)
        sys.exit(143)  # unwinds through the finally below: servers stopped, files removed

    signal.signal(signal.SIGTERM, on_sigterm)
    started = time.monotonic()
    try:
        owned.workdir = tempfile.mkdtemp(prefix="blobsvc-bench-", dir=args.tmpdir)
        plan.fit_disk(free_bytes(owned.workdir))
        fstype = filesystem_type(owned.workdir)
        if fstype in ("tmpfs", "ramfs"):
            plan.notes.append(f"temporary directory is on {fstype}: fsync costs nothing there; "
                              f"use --tmpdir on a disk")
        meta = {
            "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "blobsvc": f"{blobsvc_version()} at {git_describe()}",
            "nginx": tool_version(["nginx", "-v"]),
            "curl": " ".join(tool_version(["curl", "--version"]).split()[:2]),
            "wrk": " ".join(tool_version(["wrk", "-v"]).split()[:2]), "data filesystem": fstype,
            "load average at start": loadavg(),
            "blobsvc extra environment": extra_env or "none",
        }
        print(f"bench: {plan.mode} run in {owned.workdir} ({fstype}); workloads {', '.join(selected)}",
              flush=True)
        ctx = Context(plan, owned.workdir,
                      Blobsvc("blobsvc", owned.workdir, fsync=True, workers=args.workers,
                              extra_env=extra_env),
                      Blobsvc("blobsvc-nofsync", owned.workdir, fsync=False, workers=args.workers,
                              extra_env=extra_env),
                      Nginx("nginx", owned.workdir, workers=args.workers),
                      bare=Bare("bare", owned.workdir, workers=args.workers) if "W2" in selected else None,
                      own=owned.servers.append, workers=args.workers, extra_env=extra_env)
        for server in standing_servers(ctx):
            owned.servers.append(server)
            server.start()
        time.sleep(0.5)  # let forked workers come up before counting them
        for server in standing_servers(ctx):
            meta[f"{server.kind} processes"] = len(process_tree(server.pid))
        rows = run_workloads(ctx, selected)
        meta["load average at end"] = loadavg()
        meta["duration s"] = round(time.monotonic() - started, 1)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping the servers", file=sys.stderr)
        return 130
    finally:
        owned.cleanup()

    report.summarize(rows)
    document = {"meta": meta, "plan": plan.to_json(), "rows": rows}
    print()
    print(report.text_table(rows))
    passed, judged = report.verdicts(rows)
    print(f"\nGoals met: {passed} of {judged}.")
    for note in report.notes(rows) + plan.notes:
        print(f"- {note}")
    stamped, latest = report.write(document)
    print(f"\nwrote {os.path.relpath(stamped)} and {os.path.relpath(latest)} (+ .md); "
          f"took {meta['duration s']:.0f} s")
    return 1 if any(row["error"] for row in rows) else 0


def standing_servers(ctx: Context) -> list:
    """The servers that live for the whole run (W8 and W9 start and stop their own)."""
    return [s for s in (ctx.blobsvc, ctx.blobsvc_nofsync, ctx.nginx, ctx.bare) if s is not None]


def run_workloads(ctx: Context, selected: list[str]) -> list[dict]:
    """Each workload in turn; one that fails is recorded and the run goes on,
    unless a server has died, which would only make every later one fail."""
    rows = []
    for wid, workload in WORKLOADS.items():
        if wid not in selected:
            continue
        began = time.monotonic()
        print(f"  {wid} ...", end=" ", flush=True)
        try:
            rows += workload(ctx)
            print(f"{time.monotonic() - began:.0f} s", flush=True)
        except BenchError as exc:
            print(f"failed: {exc}", flush=True)
            row = new_row(wid, workload.__name__, "-")
            row["error"] = str(exc)
            rows.append(row)
        dead = [s for s in standing_servers(ctx) if not s.alive()]
        if dead:
            raise BenchError("; ".join(f"{s.name} died during {wid}; its log ends with:\n{s.log_tail()}"
                                       for s in dead))
    return rows


if __name__ == "__main__":
    sys.exit(main())

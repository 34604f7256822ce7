"""The workloads W1-W9, each run on blobsvc and its ceiling side by side.

Contenders of one workload run interleaved, rotating the order every
repetition (A B C, B C A, ...), so a burst of load from whatever else runs
on this shared machine, or a slow drift, hits all alike; each repetition
gives one blobsvc/ceiling ratio, and the ratios are what the goals judge.
The ceiling is nginx for the big transfers, the bare CherryPy store for
small GETs (nginx shown beside, for reference), min(nginx, one-core MD5)
for PUTs, swiftclient talking straight to the same Swift for W8, and the
native API of the same blobsvc for its S3 API (W9).

Every workload prepares its own objects (the same bytes on every server)
and removes them afterwards, so disk use stays bounded by the largest one.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence
from urllib.parse import quote

from bench.plan import Plan
from bench.servers import REPO, Bare, Blobsvc, BlobsvcAuth, BlobsvcSwift, Nginx, Server, SwiftFixture
from bench.system import BenchError, Meter, MiB, run, write_random_file

HERE = os.path.dirname(os.path.abspath(__file__))
WRK_REPORT = os.path.join(HERE, "wrk", "report.lua")
WRK_PUT = os.path.join(HERE, "wrk", "put.lua")

#: curl prints numbers with the C locale's decimal point only under LC_ALL=C.
C_LOCALE = {**os.environ, "LC_ALL": "C"}


def transfer_timeout(size: int) -> float:
    """Seconds allowed to move ``size`` bytes: generous, but bounded."""
    return 60 + size / (10 * MiB)


@dataclass
class Context:
    plan: Plan
    workdir: str
    blobsvc: Blobsvc          # fsync on: the default durability
    blobsvc_nofsync: Blobsvc  # fsync: false
    nginx: Nginx
    bare: Bare | None = None  # W2's ceiling, started when W2 runs
    #: Hands a server started mid-run (W8's Swift and its blobsvc) to the
    #: run, which stops it on every way out: error, Ctrl-C, SIGTERM.
    own: Callable[[object], None] = lambda server: None
    workers: int | None = None  # --workers, for servers a workload starts
    extra_env: dict = field(default_factory=dict)  # --blobsvc-env, likewise

    def source(self, name: str, size: int) -> str:
        """A file of ``size`` random bytes to upload, made once per run."""
        path = os.path.join(self.workdir, "sources", f"{name}-{size}")
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_random_file(path, size)
        return path

    def drop_sources(self) -> None:
        shutil.rmtree(os.path.join(self.workdir, "sources"), ignore_errors=True)


def new_row(wid: str, title: str, unit: str, better: str = "higher") -> dict:
    """One line of the table; ``ceiling`` is what blobsvc is divided by, and
    ``ceiling_label`` names it there."""
    return {"id": wid, "title": title, "unit": unit, "better": better,
            "blobsvc": [], "ceiling": None, "ceiling_label": None, "ratios": None,
            "blobsvc_cpu_s": [], "ceiling_cpu_s": None, "blobsvc_peak_rss": None, "goal": None,
            "also": [], "notes": [], "extra": {}, "error": None}


def add_also(row: dict, label: str, values: list, suffix: str = "") -> None:
    """A figure the row shows beside its own without judging it."""
    row["also"].append({"label": label, "values": list(values), "suffix": suffix})


# -- HTTP by curl --------------------------------------------------------------

def curl(args: list[str], timeout: float) -> list[str]:
    cmd = ["curl", "-sS", "--max-time", str(int(timeout)), "-o", "/dev/null", *args]
    return run(cmd, timeout=timeout + 10, env=C_LOCALE).stdout.split()


def curl_get(url: str, size: int, auth: Sequence[str] = ()) -> float:
    """Download to /dev/null; seconds as curl measured them. ``auth``: curl's
    credential options, for a server that wants them."""
    code, got, seconds = curl([*auth, "-w", "%{http_code} %{size_download} %{time_total}", url],
                              transfer_timeout(size))
    if code != "200" or int(got) != size:
        raise BenchError(f"GET {url}: status {code}, {got} of {size} bytes")
    return float(seconds)


def curl_put(url: str, path: str, auth: Sequence[str] = (), md5: str | None = None) -> float:
    """Upload a file (curl -T streams it); seconds as curl measured them.
    With ``md5``, the ETag answered must be it: the server stored these bytes."""
    size = os.path.getsize(path)
    answer = curl([*auth, "-T", path, "-w", "%{http_code} %{time_total} %header{etag}", url],
                  transfer_timeout(size))
    code, seconds = answer[:2]
    if code not in ("200", "201", "204"):
        raise BenchError(f"PUT {url}: status {code}")
    etag = answer[2].strip('"') if len(answer) > 2 else "(none)"
    if md5 is not None and etag != md5:
        raise BenchError(f"PUT {url}: ETag {etag}, but the file's MD5 is {md5}")
    return float(seconds)


def curl_delete(url: str, auth: Sequence[str] = ()) -> None:
    code, = curl([*auth, "-X", "DELETE", "-w", "%{http_code}", url], 30)
    if code not in ("200", "204", "404"):
        raise BenchError(f"DELETE {url}: status {code}")


def curl_md5(url: str, size: int, auth: Sequence[str] = ()) -> tuple[int, str]:
    """GET streamed through MD5: bytes received and their hex digest, so a
    workload can check that what it times is the object, not an error page."""
    timeout = transfer_timeout(size)
    cmd = ["curl", "-sS", "--fail", "--max-time", str(int(timeout)), *auth, url]
    digest, got = hashlib.md5(), 0
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=C_LOCALE) as process:
        try:
            # Ends: curl closes its stdout when done or after --max-time.
            for block in iter(lambda: process.stdout.read(MiB), b""):
                digest.update(block)
                got += len(block)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
        problem = process.stderr.read().decode(errors="replace").strip()
    if process.returncode != 0:
        raise BenchError(f"GET {url}: curl exited with {process.returncode}: {problem[-300:]}")
    return got, digest.hexdigest()


def file_md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def sync(paths: list[str]) -> float:
    """fsync the given files/directories (``sync FILE``); seconds taken."""
    started = time.monotonic()
    run(["sync", *paths], timeout=300)
    return time.monotonic() - started


def sync_filesystem(path: str) -> None:
    """Flush everything on the filesystem of ``path`` (untimed, between runs),
    so dirty pages of one run are not written back during the next."""
    run(["sync", "-f", path], timeout=300)


def wrk(url: str, seconds: int, script: str, args: tuple = (), threads: int = 2,
        connections: int = 16) -> dict:
    """One bounded wrk run; its totals, as report.lua prints them."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
           "-s", script, url]
    if args:
        cmd += ["--", *args]
    out = run(cmd, timeout=seconds + 60).stdout
    for line in out.splitlines():
        if line.startswith("BENCH-JSON "):
            result = json.loads(line[len("BENCH-JSON "):])
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            result["error_count"] = sum(result["errors"].values())
            return result
    raise BenchError(f"wrk printed no result: {out[-300:]}")


# -- interleaving --------------------------------------------------------------

@dataclass
class Contender:
    label: str
    server: Server | None  # whose CPU is metered; None: a client-only figure
    measure: Callable[[int], float]  # repetition number -> the measured value


def interleave(reps: int, contenders: list[Contender], warmup: Callable[[Contender], None] | None = None
               ) -> tuple[dict[str, list[float]], dict[str, list[float | None]]]:
    """Run every contender ``reps`` times, rotating the order; values and CPU s."""
    if warmup is not None:
        for contender in contenders:
            warmup(contender)
    values: dict[str, list[float]] = {c.label: [] for c in contenders}
    cpu: dict[str, list[float | None]] = {c.label: [] for c in contenders}
    for rep in range(reps):
        shift = rep % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            meter = Meter(contender.server.pid) if contender.server is not None else None
            if meter is not None:
                meter.start()
            values[contender.label].append(contender.measure(rep))
            cpu[contender.label].append(meter.cpu() if meter is not None else None)
    return values, cpu


def per_rep_ratios(mine: list[float], theirs: list[float]) -> list[float | None]:
    return [b / c if c else None for b, c in zip(mine, theirs, strict=True)]


def compare(row: dict, values: dict, cpu: dict, blobsvc: str, ceiling: str, label: str) -> dict:
    """Fill ``row`` with blobsvc's figures against the contender ``ceiling``."""
    row["blobsvc"], row["ceiling"], row["ceiling_label"] = values[blobsvc], values[ceiling], label
    row["blobsvc_cpu_s"], row["ceiling_cpu_s"] = cpu[blobsvc], cpu[ceiling]
    row["ratios"] = per_rep_ratios(values[blobsvc], values[ceiling])
    return row


def ratio_goal(row: dict, minimum: float) -> None:
    ratios = [r for r in row["ratios"] if r is not None]
    row["goal"] = {"text": f">= {minimum:g}x {row['ceiling_label']}",
                   "pass": bool(ratios) and statistics.median(ratios) >= minimum}


def no_goal(row: dict, text: str = "(no goal)") -> None:
    row["goal"] = {"text": text, "pass": None}


def peak_meter(server: Server) -> Meter:
    meter = Meter(server.pid)
    meter.start(reset=True)
    return meter


# -- W1: one big GET -----------------------------------------------------------

def w1_get_big(ctx: Context) -> list[dict]:
    size = ctx.plan.big
    row = new_row("W1", f"GET {size // MiB} MiB, one stream (curl)", "MiB/s")
    key = "w1/big.bin"
    source = ctx.source("big", size)
    for server in (ctx.blobsvc, ctx.nginx):
        curl_put(server.url(key), source)

    def measure(server: Server) -> Callable[[int], float]:
        return lambda rep: size / MiB / curl_get(server.url(key), size)

    peak = peak_meter(ctx.blobsvc)
    values, cpu = interleave(ctx.plan.reps, [Contender("b", ctx.blobsvc, measure(ctx.blobsvc)),
                                             Contender("n", ctx.nginx, measure(ctx.nginx))],
                             warmup=lambda c: c.measure(-1))
    compare(row, values, cpu, "b", "n", "nginx")
    row["blobsvc_peak_rss"] = peak.peak_rss()
    ratio_goal(row, 0.9)
    for server in (ctx.blobsvc, ctx.nginx):
        curl_delete(server.url(key))
    return [row]


# -- W2: small GETs under load -------------------------------------------------

@dataclass(frozen=True)
class Level:
    """One W2 load level and what the issue asks of blobsvc at it."""

    threads: int
    connections: int
    min_ratio: float | None = None   # req/s against the bare store
    max_p99_ms: float | None = None
    no_errors: bool = False


#: One client alone, the goals' 16, and a crowd; wrk's -t never above -c.
W2_LEVELS = (Level(1, 1), Level(2, 16, min_ratio=1.0, max_p99_ms=15.0),
             Level(2, 256, max_p99_ms=100.0, no_errors=True))

BARE = "bare CherryPy"


def w2_get_small(ctx: Context) -> list[dict]:
    """blobsvc, the bare CherryPy store and nginx, interleaved at each level.

    The bare store is the goal's ceiling: it is what CherryPy with blobsvc's
    process model serves with no code of blobsvc's. nginx is shown for
    reference only.
    """
    if ctx.bare is None:
        raise BenchError("W2 needs the bare CherryPy store, which was not started")
    key = "w2/small.bin"
    source = ctx.source("small", ctx.plan.small)
    servers = {"b": ctx.blobsvc, "c": ctx.bare, "n": ctx.nginx}
    for server in servers.values():
        curl_put(server.url(key), source)
    rows = []
    for level in W2_LEVELS:
        rows += w2_level(ctx, servers, key, level)
    for server in (ctx.blobsvc, ctx.nginx):
        curl_delete(server.url(key))
    os.unlink(ctx.bare.disk_path(key))  # it has no DELETE
    return rows


def w2_level(ctx: Context, servers: dict[str, Server], key: str, level: Level) -> list[dict]:
    plan = ctx.plan
    results: dict[str, list[dict]] = {label: [] for label in servers}

    def load(server: Server, seconds: int) -> dict:
        return wrk(server.url(key), seconds, WRK_REPORT, threads=level.threads,
                   connections=level.connections)

    def measure(label: str, server: Server) -> Callable[[int], float]:
        def one(rep: int) -> float:
            results[label].append(load(server, plan.wrk_seconds))
            return results[label][-1]["rps"]
        return one

    peak = peak_meter(ctx.blobsvc)
    values, cpu = interleave(plan.wrk_reps, [Contender(label, server, measure(label, server))
                                             for label, server in servers.items()],
                             warmup=lambda c: load(c.server, 1))
    head = f"GET {plan.small // 1024} KiB, wrk -t{level.threads} -c{level.connections}"
    rps = new_row("W2", f"{head} -d{plan.wrk_seconds}s: req/s", "req/s")
    compare(rps, values, cpu, "b", "c", BARE)
    rps["blobsvc_peak_rss"] = peak.peak_rss()
    if level.min_ratio is None:
        no_goal(rps)
    else:
        ratio_goal(rps, level.min_ratio)
    reference = new_row("W2", f"  -c{level.connections}: req/s against nginx", "req/s")
    compare(reference, values, cpu, "b", "n", "nginx")
    no_goal(reference, "(reference)")
    rps["extra"]["wrk"] = results
    return [rps, reference, latency_row(results, level), cpu_per_request_row(results, cpu, level)]


def errors_per_run(results: list[dict]) -> list[int]:
    return [r["error_count"] for r in results]


def latency_row(results: dict[str, list[dict]], level: Level) -> dict:
    """p99 against the bare store's; p50 and errors beside it."""
    row = new_row("W2", f"  -c{level.connections}: p99 latency", "ms", better="lower")

    def percentile(label: str, name: str) -> list[float]:
        return [r["latency_us"][name] / 1000 for r in results[label]]

    row["blobsvc"], row["ceiling"] = percentile("b", "p99"), percentile("c", "p99")
    row["ceiling_label"] = BARE
    row["blobsvc_cpu_s"] = []
    row["ratios"] = per_rep_ratios(row["blobsvc"], row["ceiling"])
    add_also(row, "p50", percentile("b", "p50"))
    add_also(row, "bare p50", percentile("c", "p50"))
    errors = errors_per_run(results["b"])
    add_also(row, "errors", [sum(errors)])  # over all runs: the goal wants none at all
    p99 = statistics.median(row["blobsvc"])
    if level.max_p99_ms is None:
        no_goal(row)
    elif level.no_errors:
        row["goal"] = {"text": f"no errors, p99 < {level.max_p99_ms:g} ms",
                       "pass": sum(errors) == 0 and p99 < level.max_p99_ms}
    else:
        row["goal"] = {"text": f"p99 < {level.max_p99_ms:g} ms", "pass": p99 < level.max_p99_ms}
    who = {"b": "blobsvc", "c": "bare", "n": "nginx"}
    row["notes"].append("errors (non-2xx, timeouts, socket) over all runs: " + ", ".join(
        f"{who[label]} {sum(errors_per_run(runs))}" for label, runs in results.items()))
    return row


def cpu_per_request_row(results: dict[str, list[dict]], cpu: dict, level: Level) -> dict:
    """Server CPU (all worker processes) per request served, in microseconds:
    what a request costs, whatever the load from the rest of the machine."""
    row = new_row("W2", f"  -c{level.connections}: server CPU per request", "us", better="lower")

    def per_request(label: str) -> list[float | None]:
        return [seconds * 1e6 / r["requests"] if seconds is not None and r["requests"] else None
                for seconds, r in zip(cpu[label], results[label], strict=True)]

    row["blobsvc"], row["ceiling"] = per_request("b"), per_request("c")
    row["ceiling_label"] = BARE
    row["blobsvc_cpu_s"] = []
    row["ratios"] = per_rep_ratios(row["blobsvc"], row["ceiling"])
    nginx = per_request("n")
    add_also(row, "nginx", nginx)
    no_goal(row)
    medians = [median_or_none(values) for values in (row["blobsvc"], row["ceiling"], nginx)]
    if None not in medians:
        mine, bare, theirs = medians
        row["notes"].append(f"per-request CPU (median): blobsvc {mine:.0f} us, bare {bare:.0f} us, "
                            f"nginx {theirs:.0f} us; blobsvc's own code: {mine - bare:+.0f} us a request")
    return row


def median_or_none(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


# -- W3: one big PUT, durable and not ------------------------------------------

#: Hashes a buffer of MD5_BUFFER_MIB several times in a child process (one
#: core, nothing else of the harness in it); prints the median MiB/s.
MD5_PROBE = """
import hashlib, os, statistics, sys, time
mib, rounds = int(sys.argv[1]), int(sys.argv[2])
block = os.urandom(mib << 20)
rates = []
for _ in range(rounds):
    started = time.perf_counter()
    hashlib.md5(block).digest()
    rates.append(mib / (time.perf_counter() - started))
print(statistics.median(rates))
"""
MD5_BUFFER_MIB = 64
MD5_ROUNDS = 3


def md5_rate() -> float:
    """One core's MD5 rate now, in MiB/s: blobsvc hashes every PUT body for
    its ETag, so no PUT can beat it, whatever the disk does."""
    out = run([sys.executable, "-I", "-c", MD5_PROBE, str(MD5_BUFFER_MIB), str(MD5_ROUNDS)],
              timeout=120).stdout
    return float(out)


def w3_put_big(ctx: Context) -> list[dict]:
    """blobsvc fsyncs the file and its directory before answering; nginx does
    not, so its durable peer is the PUT followed by ``sync FILE DIR`` (the same
    two fsyncs, and nothing of what other processes wrote, unlike a bare
    ``sync``). Without fsync, the peers are blobsvc fsync: false and nginx.
    Either way the ceiling is the lower of nginx's figure and the one-core
    MD5 rate measured in the same repetition."""
    size = ctx.plan.big
    source = ctx.source("big", size)
    key = "w3/big.bin"

    def measure(server: Server, then_sync: bool) -> Callable[[int], float]:
        def one(rep: int) -> float:
            curl_delete(server.url(key))
            sync_filesystem(server.root)
            seconds = curl_put(server.url(key), source)
            if then_sync:
                target = server.disk_path(key)
                seconds += sync([target, os.path.dirname(target)])
            else:
                sync_filesystem(server.root)  # untimed: the next run starts clean
            return size / MiB / seconds
        return one

    rows, md5_rates = [], []
    for blobsvc, durable in ((ctx.blobsvc, True), (ctx.blobsvc_nofsync, False)):
        peak = peak_meter(blobsvc)
        values, cpu = interleave(ctx.plan.reps, [Contender("b", blobsvc, measure(blobsvc, False)),
                                                 Contender("n", ctx.nginx, measure(ctx.nginx, durable)),
                                                 Contender("m", None, lambda rep: md5_rate())])
        row = w3_row(size, durable, values, cpu)
        row["blobsvc_peak_rss"] = peak.peak_rss()
        rows.append(row)
        md5_rates += values["m"]
        for server in (blobsvc, ctx.nginx):
            curl_delete(server.url(key))
    return rows + [md5_row(md5_rates)]


def w3_row(size: int, durable: bool, values: dict, cpu: dict) -> dict:
    """blobsvc against min(nginx, MD5) of each repetition; nginx beside."""
    nginx = "nginx + sync" if durable else "nginx"
    title = f"PUT {size // MiB} MiB, fsync {'on' if durable else 'off'}"
    row = new_row("W3", title, "MiB/s")
    values = {**values, "ceiling": [min(n, m) for n, m in zip(values["n"], values["m"], strict=True)]}
    compare(row, values, {**cpu, "ceiling": cpu["n"]}, "b", "ceiling", f"min({nginx}, MD5)")
    add_also(row, nginx, values["n"])
    add_also(row, f"blobsvc/{nginx}", per_rep_ratios(values["b"], values["n"]), "x")
    ratio_goal(row, 0.85)
    bound = sum(m < n for n, m in zip(values["n"], values["m"], strict=True))
    row["notes"].append(f"the MD5 rate was the lower ceiling in {bound} of {len(values['n'])} repetitions")
    return row


def md5_row(rates: list[float]) -> dict:
    row = new_row("W3", f"  one-core MD5 rate ({MD5_BUFFER_MIB} MiB buffer)", "MiB/s")
    row["blobsvc"], row["ceiling"], row["ceiling_label"] = [], rates, "one-core MD5"
    no_goal(row, "(ceiling of the PUTs)")
    return row


# -- W4: parallel big GETs -----------------------------------------------------

def parallel_get(urls: list[str], size: int) -> float:
    """Start one curl per URL at once; aggregate MiB/s from launch to last byte."""
    timeout = transfer_timeout(size * len(urls))
    cmd = ["curl", "-sS", "--max-time", str(int(timeout)), "-o", "/dev/null",
           "-w", "%{http_code} %{size_download}"]
    started = time.monotonic()
    processes = [subprocess.Popen([*cmd, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=C_LOCALE) for url in urls]
    outputs = []
    try:
        for process in processes:
            remaining = max(1.0, started + timeout + 10 - time.monotonic())
            outputs.append(process.communicate(timeout=remaining)[0].split())
    except subprocess.TimeoutExpired:
        raise BenchError(f"parallel GETs took longer than {timeout:.0f}s") from None
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(5)
    elapsed = time.monotonic() - started
    for url, out in zip(urls, outputs, strict=True):
        if out != ["200", str(size)]:
            raise BenchError(f"GET {url}: {' '.join(out) or 'no answer'} (wanted 200 and {size} bytes)")
    return size * len(urls) / MiB / elapsed


def w4_parallel_get(ctx: Context) -> list[dict]:
    plan = ctx.plan
    size, count = plan.parallel_size, plan.parallel_count
    row = new_row("W4", f"GET {size // MiB} MiB x {count} parallel curls", "MiB/s")
    keys = [f"w4/part-{i}.bin" for i in range(count)]
    source = ctx.source("parallel", size)
    for server in (ctx.blobsvc, ctx.nginx):
        for key in keys:
            curl_put(server.url(key), source)

    def measure(server: Server) -> Callable[[int], float]:
        return lambda rep: parallel_get([server.url(k) for k in keys], size)

    peak = peak_meter(ctx.blobsvc)
    values, cpu = interleave(plan.reps, [Contender("b", ctx.blobsvc, measure(ctx.blobsvc)),
                                         Contender("n", ctx.nginx, measure(ctx.nginx))],
                             warmup=lambda c: c.measure(-1))
    compare(row, values, cpu, "b", "n", "nginx")
    row["blobsvc_peak_rss"] = peak.peak_rss()
    ratio_goal(row, 0.9)
    for server in (ctx.blobsvc, ctx.nginx):
        for key in keys:
            curl_delete(server.url(key))
    return [row]


# -- W5: paging through a huge directory ---------------------------------------

#: RSS growth over the measured walks that still counts as flat. The first
#: walks of a large directory fill each worker's cache of its sorted names
#: (blobsvc.storage.filesystem.dircache, capped at about 17 MiB for all
#: directories): memory bought once, not per page or walk.
FLAT_RSS_TOLERANCE = 1 * MiB
#: Walks, one connection each, that reach every worker before the measured ones.
W5_WARM_WALKS = 8


def make_empty_files(directory: str, count: int) -> None:
    """Objects made directly on disk: a listing reads names and stat only."""
    os.makedirs(directory)
    for i in range(count):
        os.close(os.open(os.path.join(directory, f"obj-{i:07d}"), os.O_WRONLY | os.O_CREAT, 0o644))


def walk_listing(server: Blobsvc, directory: str, limit: int, expected: int) -> list[float]:
    """Read every page of ``directory`` on one connection; ms per page."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    times, marker, seen = [], None, 0
    try:
        while True:
            query = f"limit={limit}" + (f"&marker={quote(marker)}" if marker else "")
            started = time.perf_counter()
            connection.request("GET", f"/v1/objects/{directory}/?{query}")
            response = connection.getresponse()
            body = response.read()
            times.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise BenchError(f"listing page {len(times)}: status {response.status}: {body[:200]!r}")
            page = json.loads(body)
            seen += len(page["entries"])
            if not page["truncated"]:
                break
            marker = page["next_marker"]
            if len(times) > expected // limit + 10:
                raise BenchError("listing does not end")
    finally:
        connection.close()
    if seen != expected:
        raise BenchError(f"listing gave {seen} entries, expected {expected}")
    return times


def nginx_autoindex_ms(server: Nginx, directory: str, expected: int) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        started = time.perf_counter()
        connection.request("GET", f"/{directory}/")
        response = connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        connection.close()
    if response.status != 200 or len(json.loads(body)) != expected:
        raise BenchError(f"nginx autoindex of {directory}: status {response.status}")
    return elapsed


def w5_listing(ctx: Context) -> list[dict]:
    """On a freshly started blobsvc, warmed on a small directory, walks
    directories of growing size (plan.list_sizes), one row each: RSS growth
    over a walk is what listing that directory costs (flat: it does not
    grow with the directory, nor page after page)."""
    plan, server = ctx.plan, ctx.blobsvc
    for count in plan.list_sizes:
        w5_directory(ctx, f"w5-{count}", count)
    make_empty_files(server.disk_path("w5-warm"), 2 * plan.list_limit)
    server.restart()
    for _ in range(8):  # new connections: every worker has served a listing
        walk_listing(server, "w5-warm", plan.list_limit, 2 * plan.list_limit)
    meter = peak_meter(server)
    try:
        return [w5_row(ctx, meter, f"w5-{count}", count) for count in plan.list_sizes]
    finally:
        for count in plan.list_sizes:
            os.unlink(ctx.nginx.disk_path(f"w5-{count}"))
            shutil.rmtree(server.disk_path(f"w5-{count}"))
        shutil.rmtree(server.disk_path("w5-warm"))


def w5_directory(ctx: Context, directory: str, count: int) -> None:
    """``count`` empty objects in blobsvc's root; nginx lists the very same
    directory through a symlink: creating 100 000 files is the slow part of
    this workload on a busy disk."""
    make_empty_files(ctx.blobsvc.disk_path(directory), count)
    os.makedirs(os.path.dirname(ctx.nginx.disk_path(directory)), exist_ok=True)
    os.symlink(ctx.blobsvc.disk_path(directory), ctx.nginx.disk_path(directory))


def w5_row(ctx: Context, meter: Meter, directory: str, count: int) -> dict:
    """Median ms/page of each walk, the slowest page beside it; RSS noted."""
    plan, limit = ctx.plan, ctx.plan.list_limit
    row = new_row("W5", f"list {count:,} objects, limit={limit}: ms/page (median)", "ms",
                  better="lower")
    meter.start(reset=True)  # this directory's peak, not the previous one's
    rss_before = meter.rss()
    # Each walk is one connection, so one worker: the first walks, on new
    # connections each, reach every worker (with 2 workers, 8 miss one with
    # odds of 1 in 128) and fill its cache; the walks after them must not
    # grow any process.
    slowest = max(max(walk_listing(ctx.blobsvc, directory, limit, count))
                  for _ in range(W5_WARM_WALKS))
    rss_warm = meter.rss()
    pages, cpu = [], []
    for _ in range(plan.list_passes):
        started_cpu = meter.cpu()
        times = walk_listing(ctx.blobsvc, directory, limit, count)
        cpu.append(meter.cpu() - started_cpu)
        pages.append(times)
    rss_after = meter.rss()

    def growth(before: dict, after: dict) -> int:
        return max((after.get(pid, 0) - before.get(pid, 0) for pid in before), default=0)

    first, later = growth(rss_before, rss_warm), growth(rss_warm, rss_after)
    row["blobsvc"] = [statistics.median(times) for times in pages]
    add_also(row, "slowest page", [max(times) for times in pages])
    row["notes"].append(f"slowest page of the first {W5_WARM_WALKS} walks (caches filling): "
                        f"{slowest:.1f} ms")
    row["blobsvc_cpu_s"] = cpu
    row["blobsvc_peak_rss"] = meter.peak_rss()
    flat = later <= FLAT_RSS_TOLERANCE
    row["goal"] = {"text": "< 50 ms/page, RSS flat once warm",
                   "pass": statistics.median(row["blobsvc"]) < 50 and flat}
    row["extra"] = {"rss_before": rss_before, "rss_warm": rss_warm, "rss_after": rss_after,
                    "rss_growth_warming": first, "rss_growth_measured": later, "pages_ms": pages}
    row["notes"].append(
        f"RSS of a serving process {max(rss_before.values()) / MiB:.1f} MiB before: "
        f"{first / MiB:+.1f} MiB over the first {W5_WARM_WALKS} walks (each worker's cache of "
        f"the sorted names), {later / MiB:+.1f} MiB over the {plan.list_passes} measured "
        f"(flat: <= {FLAT_RSS_TOLERANCE // MiB} MiB): {'flat' if flat else 'NOT flat'}")
    row["notes"].append(nginx_reference(ctx.nginx, directory, count, row))
    return row


def nginx_reference(server: Nginx, directory: str, count: int, row: dict) -> str:
    """nginx's autoindex of the whole directory, as a note: no paging, no ratio."""
    try:
        nginx_autoindex_ms(server, directory, count)  # warm
        whole = nginx_autoindex_ms(server, directory, count)
    except BenchError as exc:
        return f"nginx autoindex reference failed: {exc}"
    row["extra"]["nginx_autoindex_ms"] = whole
    return (f"nginx autoindex (json) of the whole directory in one response: {whole:.0f} ms; "
            f"it has no paging, so no ratio")


# -- W6: many small PUTs -------------------------------------------------------

def w6_put_small(ctx: Context) -> list[dict]:
    plan = ctx.plan
    size = str(plan.small)

    trouble: dict[str, int] = {}

    def measure(server: Server) -> Callable[[int], float]:
        def one(rep: int) -> float:
            top = f"w6-{server.name}-{rep}"
            result = wrk(server.base_url + "/", plan.wrk_seconds, WRK_PUT,
                         (server.url_path(top) + "/", size))
            shutil.rmtree(server.disk_path(top), ignore_errors=True)
            sync_filesystem(server.root)
            if result["errors"]["status"]:  # refused PUTs would count as throughput
                raise BenchError(f"{server.name}: {result['errors']['status']} PUTs answered 4xx/5xx")
            if result["error_count"]:  # timeouts on a busy disk: worth knowing, not fatal
                trouble[server.name] = trouble.get(server.name, 0) + result["error_count"]
            return result["rps"]
        return one

    contenders = [Contender("b", ctx.blobsvc, measure(ctx.blobsvc)),
                  Contender("n", ctx.nginx, measure(ctx.nginx)),
                  Contender("b0", ctx.blobsvc_nofsync, measure(ctx.blobsvc_nofsync))]
    peaks = {"b": peak_meter(ctx.blobsvc), "b0": peak_meter(ctx.blobsvc_nofsync)}
    values, cpu = interleave(plan.wrk_reps, contenders)
    rows = []
    for label, title in (("b", "fsync on vs nginx"), ("b0", "fsync off vs nginx")):
        row = new_row("W6", f"PUT {plan.small // 1024} KiB, 16 clients, {title}", "req/s")
        compare(row, values, cpu, label, "n", "nginx")
        row["blobsvc_peak_rss"] = peaks[label].peak_rss()
        no_goal(row)
        rows.append(row)
    for name, count in trouble.items():
        rows[0]["notes"].append(f"{name}: {count} timeouts or socket errors over all runs")
    return rows


# -- W8: blobsvc on Swift against swiftclient on the same Swift ----------------

W8_CONTAINER = "bench-blobsvc"   # blobsvc's container (it creates it at start)
DIRECT_CONTAINER = "bench-direct"  # swiftclient's own: the two never collide
W8_KEY = "w8/blob.bin"


def w8_swift(ctx: Context) -> list[dict]:
    """Starts the test fixture's Swift on loopback and a blobsvc on the swift
    driver against it (same worker count), both handed to the run at once so
    they are stopped however it ends; stops them itself when done."""
    swift = SwiftFixture("swift", ctx.workdir)
    ctx.own(swift)
    swift.start()
    blobsvc = BlobsvcSwift("blobsvc-swift", ctx.workdir, swift, W8_CONTAINER, workers=ctx.workers,
                           extra_env=ctx.extra_env)
    ctx.own(blobsvc)
    try:
        blobsvc.start()
        return w8_measure(ctx, swift, blobsvc)
    finally:
        blobsvc.stop()
        swift.stop()


def swiftdirect(swift: SwiftFixture, args: list[str], timeout: float) -> dict:
    """One bench.swiftdirect child; its JSON line."""
    env = {**os.environ, "BENCH_SWIFT_AUTH_URL": swift.auth_url, "BENCH_SWIFT_USER": swift.user,
           "BENCH_SWIFT_KEY": swift.key,
           "PYTHONPATH": os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)}
    out = run([sys.executable, "-m", "bench.swiftdirect", *args], timeout=timeout, env=env).stdout
    return json.loads(out.splitlines()[-1])


def w8_measure(ctx: Context, swift: SwiftFixture, blobsvc: BlobsvcSwift) -> list[dict]:
    size = ctx.plan.swift_size
    source = ctx.source("swift", size)
    url, timeout = blobsvc.url(W8_KEY), transfer_timeout(size) + 30
    swiftdirect(swift, ["prepare", DIRECT_CONTAINER, W8_KEY], 60)

    def direct(verb: str, arg: str) -> float:
        result = swiftdirect(swift, [verb, DIRECT_CONTAINER, W8_KEY, arg], timeout)
        return size / MiB / result["seconds"]

    def put_through_blobsvc(rep: int) -> float:
        sync_filesystem(swift.data_dir)  # untimed: no run pays for the previous one's writes
        return size / MiB / curl_put(url, source)

    def put_direct(rep: int) -> float:
        sync_filesystem(swift.data_dir)
        return direct("put", source)

    rows = []
    for title, mine, theirs, minimum in (
            ("PUT", put_through_blobsvc, put_direct, 0.9),
            ("GET", lambda rep: size / MiB / curl_get(url, size), lambda rep: direct("get", str(size)),
             0.95)):
        row = new_row("W8", f"Swift {title} {size // MiB} MiB: curl via blobsvc", "MiB/s")
        peak = peak_meter(blobsvc)
        values, cpu = interleave(ctx.plan.reps, [Contender("b", blobsvc, mine), Contender("s", None, theirs)],
                                 warmup=lambda c: c.measure(-1))
        compare(row, values, cpu, "b", "s", "swiftclient direct")
        row["blobsvc_peak_rss"] = peak.peak_rss()
        ratio_goal(row, minimum)
        rows.append(row)
    curl_delete(url)
    swiftdirect(swift, ["clean", DIRECT_CONTAINER, W8_KEY], 60)
    os.unlink(source)
    return rows


# -- W9: S3 against the native API of the same blobsvc -------------------------

W9_BUCKET = "benchbucket"
W9_KEY = "big"  # S3 benchbucket/big is the native object benchbucket/big
#: curl's SigV4 (7.75+); before 8.1 it sends no payload hash, so the
#: requests name UNSIGNED-PAYLOAD, as the README's recipe does.
SIGV4 = ["--aws-sigv4", "aws:amz:us-east-1:s3", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]


def w9_s3(ctx: Context) -> list[dict]:
    """Starts its own blobsvc (filesystem, fsync on as shipped, the run's
    workers and environment) with a user whose password is also the S3
    secret key, handed to the run at once so it is stopped however the run
    ends; stops it itself when done."""
    server = BlobsvcAuth("blobsvc-s3", ctx.workdir, workers=ctx.workers, extra_env=ctx.extra_env)
    ctx.own(server)
    try:
        server.start()
        return w9_measure(ctx, server)
    finally:
        server.stop()


def w9_measure(ctx: Context, server: BlobsvcAuth) -> list[dict]:
    """Each row: S3 (curl --aws-sigv4) against the native API (curl -u, the
    same user), interleaved on the same server and file, so the ratio is
    what S3's routing and signature checks cost on top of Basic auth."""
    size = ctx.plan.big
    source = ctx.source("big", size)
    native_auth = ["-K", server.curl_config]
    s3_auth = [*native_auth, *SIGV4]
    native_url = server.url(f"{W9_BUCKET}/{W9_KEY}")
    s3_url = f"{server.base_url}/{W9_BUCKET}/{W9_KEY}"
    code, = curl([*s3_auth, "-X", "PUT", "-w", "%{http_code}", f"{server.base_url}/{W9_BUCKET}"], 30)
    if code != "200":
        raise BenchError(f"S3 CreateBucket {W9_BUCKET}: status {code}")
    md5 = file_md5(source)
    curl_put(s3_url, source, s3_auth, md5)
    # Once per run: S3 and native GETs give the uploaded bytes, so the timed
    # GETs (status and size checked each time) cannot be of an error page.
    for label, url, auth in (("S3", s3_url, s3_auth), ("native", native_url, native_auth)):
        got = curl_md5(url, size, auth)
        if got != (size, md5):
            raise BenchError(f"{label} GET of {W9_KEY}: {got[0]} bytes, MD5 {got[1]}; "
                             f"uploaded {size} bytes, MD5 {md5}")
    verified = f"checked: S3 and native GET both gave the {size:,} bytes put through S3 (MD5 {md5})"

    def get(url: str, auth: list[str]) -> Callable[[int], float]:
        return lambda rep: size / MiB / curl_get(url, size, auth)

    def put(url: str, auth: list[str]) -> Callable[[int], float]:
        def one(rep: int) -> float:
            curl_delete(native_url, native_auth)  # untimed: every PUT makes a new file
            sync_filesystem(server.root)  # and no run pays for the previous one's writes
            return size / MiB / curl_put(url, source, auth, md5)
        return one

    rows = []
    for title, mine, theirs, warm in (("GET", get(s3_url, s3_auth), get(native_url, native_auth), True),
                                      ("PUT", put(s3_url, s3_auth), put(native_url, native_auth), False)):
        row = new_row("W9", f"S3 {title} {size // MiB} MiB: curl --aws-sigv4", "MiB/s")
        peak = peak_meter(server)
        contenders = [Contender("s", server, mine), Contender("n", server, theirs)]
        values, cpu = interleave(ctx.plan.reps, contenders,
                                 warmup=(lambda c: c.measure(-1)) if warm else None)
        compare(row, values, cpu, "s", "n", f"native {title} (curl -u)")
        row["blobsvc_peak_rss"] = peak.peak_rss()
        ratio_goal(row, 0.9)
        rows.append(row)
    rows[0]["notes"].append(verified)
    rows[1]["notes"].append("fsync on (the shipped default) for both, as W3's durable row; every PUT "
                            "makes a new file (deleted and flushed untimed before it), and its ETag "
                            "must be the file's MD5")
    curl_delete(native_url, native_auth)
    code, = curl([*s3_auth, "-X", "DELETE", "-w", "%{http_code}", f"{server.base_url}/{W9_BUCKET}"], 30)
    if code != "204":
        rows[0]["notes"].append(f"S3 DeleteBucket {W9_BUCKET} answered {code}")
    return rows


# -- W7: memory stays flat whatever the object size ----------------------------

#: Peak RSS at the big size may exceed the small one's by this much.
SAME_RSS_TOLERANCE = 4 * MiB
RSS_LIMIT = 64 * MiB


def w7_memory(ctx: Context) -> list[dict]:
    """On a freshly started blobsvc: what earlier workloads left in its heap
    (concurrent requests, big listings) would hide what one transfer costs."""
    ctx.drop_sources()  # room for the biggest object
    server, plan = ctx.blobsvc, ctx.plan
    server.restart()
    time.sleep(0.5)  # forked workers settle
    baseline = max(Meter(server.pid).rss().values())
    rows = []
    for size in (plan.rss_small, plan.rss_big):
        row = new_row("W7", f"peak RSS, PUT + GET of {size // MiB} MiB", "MiB", better="lower")
        key = f"w7/obj-{size}.bin"
        source = ctx.source("rss", size)
        meter = peak_meter(server)
        put_seconds = curl_put(server.url(key), source)
        put_peak = meter.peak_rss()
        os.unlink(source)
        meter.start(reset=True)
        get_seconds = curl_get(server.url(key), size)
        get_peak = meter.peak_rss()
        curl_delete(server.url(key))
        row["blobsvc"] = [max(put_peak, get_peak) / MiB]
        row["blobsvc_peak_rss"] = max(put_peak, get_peak)
        row["extra"] = {"put_peak_rss": put_peak, "get_peak_rss": get_peak,
                        "put_mib_s": size / MiB / put_seconds, "get_mib_s": size / MiB / get_seconds}
        row["notes"].append(f"PUT {size / MiB / put_seconds:.0f} MiB/s peak {put_peak / MiB:.1f} MiB; "
                            f"GET {size / MiB / get_seconds:.0f} MiB/s peak {get_peak / MiB:.1f} MiB")
        rows.append(row)
    small, big = rows
    same = big["blobsvc_peak_rss"] - small["blobsvc_peak_rss"] <= SAME_RSS_TOLERANCE
    for row in rows:
        row["goal"] = {"text": f"< {RSS_LIMIT // MiB} MiB, same at both sizes",
                       "pass": row["blobsvc_peak_rss"] < RSS_LIMIT and same}
    small["notes"].append(f"fresh process before the transfers: {baseline / MiB:.1f} MiB")
    big["notes"].append(f"growth over the small object: "
                        f"{(big['blobsvc_peak_rss'] - small['blobsvc_peak_rss']) / MiB:+.1f} MiB "
                        f"(same: <= {SAME_RSS_TOLERANCE // MiB} MiB)")
    return rows


#: In the order they run: W7 last, it needs the disk space the others free.
WORKLOADS = {
    "W1": w1_get_big,
    "W2": w2_get_small,
    "W4": w4_parallel_get,
    "W3": w3_put_big,
    "W6": w6_put_small,
    "W5": w5_listing,
    "W8": w8_swift,
    "W9": w9_s3,
    "W7": w7_memory,
}

"""The workloads W1-W7, each run on blobsvc and nginx side by side.

Contenders of one workload run interleaved, rotating the order every
repetition (A B, B A, A B...), so a burst of load from whatever else runs
on this shared machine, or a slow drift, hits both alike; each repetition
gives one blobsvc/nginx ratio, and the ratios are what the goals judge.

Every workload prepares its own objects (the same bytes on both servers)
and removes them afterwards, so disk use stays bounded by the largest one.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from bench.plan import Plan
from bench.servers import Blobsvc, Nginx, Server
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
    return {"id": wid, "title": title, "unit": unit, "better": better,
            "blobsvc": [], "nginx": None, "ratios": None, "blobsvc_cpu_s": [], "nginx_cpu_s": None,
            "blobsvc_peak_rss": None, "goal": None, "notes": [], "extra": {}, "error": None}


# -- HTTP by curl --------------------------------------------------------------

def curl(args: list[str], timeout: float) -> list[str]:
    cmd = ["curl", "-sS", "--max-time", str(int(timeout)), "-o", "/dev/null", *args]
    return run(cmd, timeout=timeout + 10, env=C_LOCALE).stdout.split()


def curl_get(url: str, size: int) -> float:
    """Download to /dev/null; seconds as curl measured them."""
    code, got, seconds = curl(["-w", "%{http_code} %{size_download} %{time_total}", url],
                              transfer_timeout(size))
    if code != "200" or int(got) != size:
        raise BenchError(f"GET {url}: status {code}, {got} of {size} bytes")
    return float(seconds)


def curl_put(url: str, path: str) -> float:
    """Upload a file (curl -T streams it); seconds as curl measured them."""
    size = os.path.getsize(path)
    code, seconds = curl(["-T", path, "-w", "%{http_code} %{time_total}", url], transfer_timeout(size))
    if code not in ("200", "201", "204"):
        raise BenchError(f"PUT {url}: status {code}")
    return float(seconds)


def curl_delete(url: str) -> None:
    code, = curl(["-X", "DELETE", "-w", "%{http_code}", url], 30)
    if code not in ("200", "204", "404"):
        raise BenchError(f"DELETE {url}: status {code}")


def sync(paths: list[str]) -> float:
    """fsync the given files/directories (``sync FILE``); seconds taken."""
    started = time.monotonic()
    run(["sync", *paths], timeout=300)
    return time.monotonic() - started


def sync_filesystem(path: str) -> None:
    """Flush everything on the filesystem of ``path`` (untimed, between runs),
    so dirty pages of one run are not written back during the next."""
    run(["sync", "-f", path], timeout=300)


def wrk(url: str, seconds: int, script: str, args: tuple = ()) -> dict:
    cmd = ["wrk", "-t2", "-c16", f"-d{seconds}s", "--timeout", "5s", "-s", script, url]
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
    server: Server
    measure: Callable[[int], float]  # repetition number -> the measured value


def interleave(reps: int, contenders: list[Contender], warmup: Callable[[Contender], None] | None = None
               ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Run every contender ``reps`` times, rotating the order; values and CPU s."""
    if warmup is not None:
        for contender in contenders:
            warmup(contender)
    values = {c.label: [] for c in contenders}
    cpu = {c.label: [] for c in contenders}
    for rep in range(reps):
        shift = rep % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            meter = Meter(contender.server.pid)
            meter.start()
            values[contender.label].append(contender.measure(rep))
            cpu[contender.label].append(meter.cpu())
    return values, cpu


def compare(row: dict, values: dict, cpu: dict, blobsvc: str, nginx: str) -> dict:
    row["blobsvc"], row["nginx"] = values[blobsvc], values[nginx]
    row["blobsvc_cpu_s"], row["nginx_cpu_s"] = cpu[blobsvc], cpu[nginx]
    row["ratios"] = [b / n if n else None for b, n in zip(values[blobsvc], values[nginx], strict=True)]
    return row


def ratio_goal(row: dict, minimum: float) -> None:
    ratios = [r for r in row["ratios"] if r is not None]
    row["goal"] = {"text": f">= {minimum:g}x nginx",
                   "pass": bool(ratios) and statistics.median(ratios) >= minimum}


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
    compare(row, values, cpu, "b", "n")
    row["blobsvc_peak_rss"] = peak.peak_rss()
    ratio_goal(row, 0.9)
    for server in (ctx.blobsvc, ctx.nginx):
        curl_delete(server.url(key))
    return [row]


# -- W2: small GETs under load -------------------------------------------------

def w2_get_small(ctx: Context) -> list[dict]:
    plan = ctx.plan
    rps = new_row("W2", f"GET {plan.small // 1024} KiB, wrk -t2 -c16 -d{plan.wrk_seconds}s", "req/s")
    p99 = new_row("W2", f"GET {plan.small // 1024} KiB, p99 latency", "ms", better="lower")
    key = "w2/small.bin"
    source = ctx.source("small", plan.small)
    for server in (ctx.blobsvc, ctx.nginx):
        curl_put(server.url(key), source)
    results: dict[str, list[dict]] = {"b": [], "n": []}

    def measure(label: str, server: Server) -> Callable[[int], float]:
        def one(rep: int) -> float:
            result = wrk(server.url(key), plan.wrk_seconds, WRK_REPORT)
            results[label].append(result)
            return result["rps"]
        return one

    peak = peak_meter(ctx.blobsvc)
    values, cpu = interleave(plan.wrk_reps, [Contender("b", ctx.blobsvc, measure("b", ctx.blobsvc)),
                                             Contender("n", ctx.nginx, measure("n", ctx.nginx))],
                             warmup=lambda c: wrk(c.server.url(key), 1, WRK_REPORT))
    compare(rps, values, cpu, "b", "n")
    rps["blobsvc_peak_rss"] = peak.peak_rss()
    ratio_goal(rps, 0.065)
    p99["blobsvc"] = [r["latency_us"]["p99"] / 1000 for r in results["b"]]
    p99["nginx"] = [r["latency_us"]["p99"] / 1000 for r in results["n"]]
    p99["ratios"] = [b / n if n else None for b, n in zip(p99["blobsvc"], p99["nginx"], strict=True)]
    p99["goal"] = {"text": "blobsvc < 15 ms", "pass": statistics.median(p99["blobsvc"]) < 15}
    for label, row in (("b", rps), ("n", rps)):
        errors = sum(r["error_count"] for r in results[label])
        if errors:
            who = "blobsvc" if label == "b" else "nginx"
            row["notes"].append(f"{who}: {errors} errors (non-2xx, timeouts, socket) over all runs")
    rps["extra"]["wrk"] = results
    for server in (ctx.blobsvc, ctx.nginx):
        curl_delete(server.url(key))
    return [rps, p99]


# -- W3: one big PUT, durable and not ------------------------------------------

def w3_put_big(ctx: Context) -> list[dict]:
    """blobsvc fsyncs the file and its directory before answering; nginx does
    not, so its durable peer is the PUT followed by ``sync FILE DIR`` (the same
    two fsyncs, and nothing of what other processes wrote, unlike a bare
    ``sync``). Without fsync, the peers are blobsvc fsync: false and nginx."""
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

    rows = []
    for blobsvc, durable in ((ctx.blobsvc, True), (ctx.blobsvc_nofsync, False)):
        if durable:
            row = new_row("W3", f"PUT {size // MiB} MiB, fsync on vs nginx + sync", "MiB/s")
        else:
            row = new_row("W3", f"PUT {size // MiB} MiB, fsync off vs nginx", "MiB/s")
        peak = peak_meter(blobsvc)
        values, cpu = interleave(ctx.plan.reps, [Contender("b", blobsvc, measure(blobsvc, False)),
                                                 Contender("n", ctx.nginx, measure(ctx.nginx, durable))])
        compare(row, values, cpu, "b", "n")
        row["blobsvc_peak_rss"] = peak.peak_rss()
        ratio_goal(row, 0.8)
        rows.append(row)
        for server in (blobsvc, ctx.nginx):
            curl_delete(server.url(key))
    return rows


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
    compare(row, values, cpu, "b", "n")
    row["blobsvc_peak_rss"] = peak.peak_rss()
    ratio_goal(row, 0.8)
    for server in (ctx.blobsvc, ctx.nginx):
        for key in keys:
            curl_delete(server.url(key))
    return [row]


# -- W5: paging through a huge directory ---------------------------------------

#: RSS growth over a whole walk that still counts as flat.
FLAT_RSS_TOLERANCE = 8 * MiB


def make_empty_files(directory: str, count: int) -> None:
    """Objects made directly on disk: a listing reads names and stat only."""
    os.makedirs(directory)
    for i in range(count):
        os.close(os.open(os.path.join(directory, f"obj-{i:07d}"), os.O_WRONLY | os.O_CREAT, 0o644))


def walk_listing(server: Blobsvc, directory: str, limit: int, expected: int,
                 after_first_page: Callable[[], None] | None = None) -> list[float]:
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
            if after_first_page is not None and len(times) == 1:
                after_first_page()
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
    """On a freshly started blobsvc, warmed on a small directory: RSS growth
    then is what listing the big one costs (flat: it does not grow with the
    directory, nor page after page)."""
    plan = ctx.plan
    count, limit = plan.list_objects, plan.list_limit
    median_row = new_row("W5", f"list {count} objects, limit={limit}: ms/page (median)", "ms",
                         better="lower")
    max_row = new_row("W5", "  the same: ms/page (slowest page)", "ms", better="lower")
    directory = "w5"
    make_empty_files(ctx.blobsvc.disk_path(directory), count)
    # nginx lists the very same directory (it follows symlinks): creating
    # 100 000 files is the slow part of this workload on a busy disk.
    os.makedirs(os.path.dirname(ctx.nginx.disk_path(directory)), exist_ok=True)
    os.symlink(ctx.blobsvc.disk_path(directory), ctx.nginx.disk_path(directory))
    make_empty_files(ctx.blobsvc.disk_path("w5-warm"), 2 * limit)
    server = ctx.blobsvc
    server.restart()
    for _ in range(8):  # new connections: every worker has served a listing
        walk_listing(server, "w5-warm", limit, 2 * limit)
    meter = peak_meter(server)
    rss_before = meter.rss()
    rss_first: dict[int, int] = {}
    pages, cpu = [], []
    for walk in range(plan.list_passes):
        started_cpu = meter.cpu()
        after_first = (lambda: rss_first.update(meter.rss())) if walk == 0 else None
        times = walk_listing(server, directory, limit, count, after_first_page=after_first)
        cpu.append(meter.cpu() - started_cpu)
        pages.append(times)
    rss_after = meter.rss()

    def growth(before: dict, after: dict) -> int:
        return max((after.get(pid, 0) - before.get(pid, 0) for pid in before), default=0)

    total, first = growth(rss_before, rss_after), growth(rss_before, rss_first)
    median_row["blobsvc"] = [statistics.median(times) for times in pages]
    max_row["blobsvc"] = [max(times) for times in pages]
    median_row["blobsvc_cpu_s"] = cpu
    median_row["blobsvc_peak_rss"] = meter.peak_rss()
    flat = total <= FLAT_RSS_TOLERANCE
    median_row["goal"] = {"text": "< 50 ms/page, flat RSS",
                          "pass": statistics.median(median_row["blobsvc"]) < 50 and flat}
    max_row["goal"] = {"text": "(shown, not judged)", "pass": None}
    median_row["extra"] = {"rss_before": rss_before, "rss_after_first_page": rss_first,
                           "rss_after": rss_after, "rss_growth": total, "pages_ms": pages}
    median_row["notes"].append(
        f"RSS of the serving process {max(rss_before.values()) / MiB:.1f} MiB before, "
        f"{total / MiB:+.1f} MiB after {plan.list_passes} walk(s), of which {first / MiB:+.1f} MiB "
        f"at the first page (flat: growth <= {FLAT_RSS_TOLERANCE // MiB} MiB): "
        f"{'flat' if flat else 'NOT flat'}")
    try:
        nginx_autoindex_ms(ctx.nginx, directory, count)  # warm
        whole = nginx_autoindex_ms(ctx.nginx, directory, count)
        median_row["extra"]["nginx_autoindex_ms"] = whole
        median_row["notes"].append(f"nginx autoindex (json) of the whole directory in one "
                                   f"response: {whole:.0f} ms; it has no paging, so no ratio")
    except BenchError as exc:
        median_row["notes"].append(f"nginx autoindex reference failed: {exc}")
    os.unlink(ctx.nginx.disk_path(directory))
    shutil.rmtree(ctx.blobsvc.disk_path(directory))
    shutil.rmtree(ctx.blobsvc.disk_path("w5-warm"))
    return [median_row, max_row]


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
        compare(row, values, cpu, label, "n")
        row["blobsvc_peak_rss"] = peaks[label].peak_rss()
        row["goal"] = {"text": "(no goal)", "pass": None}
        rows.append(row)
    for name, count in trouble.items():
        rows[0]["notes"].append(f"{name}: {count} timeouts or socket errors over all runs")
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
    "W7": w7_memory,
}

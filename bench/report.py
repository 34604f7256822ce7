"""Summaries, the table, and the JSON and Markdown files of a run.

Each row compares blobsvc with the ceiling it names (nginx, the bare
CherryPy store, the one-core MD5 rate, swiftclient straight to Swift...).
Each figure is the median of its repetitions with the min-max range beside
it; the ratio column is the median of the per-repetition ratios (each
blobsvc run divided by the ceiling's run next to it), not a ratio of
medians, because side-by-side pairs are what survive a noisy machine.
Figures a row shows without judging them (p50, errors, nginx's own rate
under a min() ceiling) go in its "also" column.
"""

from __future__ import annotations

import json
import os
import statistics
from datetime import datetime, timezone

from bench.system import MiB

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def summary(values: list | None) -> dict | None:
    values = [v for v in values or [] if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarize(rows: list[dict]) -> None:
    for row in rows:
        row["summary"] = {key: summary(row.get(key)) for key in
                          ("blobsvc", "ceiling", "ratios", "blobsvc_cpu_s", "ceiling_cpu_s")}
        for figure in row.get("also", []):
            figure["summary"] = summary(figure["values"])


def number(value: float) -> str:
    if isinstance(value, int):  # counts: errors
        return f"{value:,}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def spread(s: dict | None, suffix: str = "") -> str:
    if s is None:
        return "-"
    if s["n"] == 1 or s["min"] == s["max"]:
        return number(s["median"]) + suffix
    return f"{number(s['median'])}{suffix} ({number(s['min'])}-{number(s['max'])})"


HEADER = ("", "workload", "unit", "blobsvc", "ceiling", "ceiling value", "blobsvc/ceiling", "also",
          "CPU s/run (b / c)", "peak RSS MiB", "goal", "result")


def also(row: dict) -> str:
    """The row's shown-not-judged figures: ``p50 1.20; errors 0``."""
    return "; ".join(f"{figure['label']} {spread(figure['summary'], figure.get('suffix', ''))}"
                     for figure in row.get("also", []))


def cells(row: dict) -> tuple[str, ...]:
    s = row["summary"]
    cpu_b = s["blobsvc_cpu_s"]
    cpu_c = s["ceiling_cpu_s"]
    cpu = "-"
    if cpu_b is not None:
        cpu = number(cpu_b["median"]) + (f" / {number(cpu_c['median'])}" if cpu_c else "")
    rss = "-" if row["blobsvc_peak_rss"] is None else f"{row['blobsvc_peak_rss'] / MiB:.1f}"
    goal = row["goal"] or {"text": "", "pass": None}
    if row["error"]:
        verdict = "ERROR"
    else:
        verdict = {True: "PASS", False: "FAIL", None: ""}[goal["pass"]]
    return (row["id"], row["title"], row["unit"], spread(s["blobsvc"]), row["ceiling_label"] or "-",
            spread(s["ceiling"]), spread(s["ratios"], "x"), also(row) or "-", cpu, rss, goal["text"],
            verdict)


def text_table(rows: list[dict]) -> str:
    table = [HEADER] + [cells(row) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
             for line in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(row)) + " |" for row in rows]
    return "\n".join(lines)


def notes(rows: list[dict]) -> list[str]:
    found = []
    for row in rows:
        if row["error"]:
            found.append(f"{row['id']} {row['title']}: ERROR: {row['error']}")
        found += [f"{row['id']} {row['title'].strip()}: {note}" for note in row["notes"]]
    return found


def verdicts(rows: list[dict]) -> tuple[int, int]:
    judged = [row["goal"]["pass"] for row in rows if row["goal"] and row["goal"]["pass"] is not None]
    return sum(judged), len(judged)


def markdown(document: dict) -> str:
    meta, plan, rows = document["meta"], document["plan"], document["rows"]
    passed, judged = verdicts(rows)
    out = [f"# blobsvc against its ceilings, {meta['started']} ({plan['mode']} run)", "",
           "Median of the interleaved repetitions, (min-max) beside it. Each row names its ceiling; "
           "blobsvc/ceiling is the median of per-repetition ratios (blobsvc against the ceiling's "
           "run next to it). \"also\" holds figures shown but not judged. CPU is server CPU seconds "
           "per run (blobsvc / ceiling, all worker processes); peak RSS is blobsvc's largest process "
           "over the workload.", "",
           markdown_table(rows), "", f"Goals met: {passed} of {judged}.", ""]
    found = notes(rows) + plan.get("notes", [])
    if found:
        out += ["Notes:", ""] + [f"- {note}" for note in found] + [""]
    out += ["Machine and versions:", ""]
    out += [f"- {key}: {value}" for key, value in meta.items()]
    return "\n".join(out) + "\n"


def write(document: dict) -> tuple[str, str]:
    """The timestamped pair and latest.*; returns the two JSON paths."""
    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text_json = json.dumps(document, indent=1, sort_keys=False, default=str) + "\n"
    text_md = markdown(document)
    paths = []
    for name in (stamp, "latest"):
        for suffix, text in ((".json", text_json), (".md", text_md)):
            path = os.path.join(RESULTS, name + suffix)
            with open(path, "w") as stream:
                stream.write(text)
            paths.append(path)
    return paths[0], paths[2]

"""The benchmark harness's own pieces, without a benchmark run: the bare
CherryPy store it divides W2 by, and the table's named ceilings.

The figures themselves are ``python -m bench``'s business; these check that
the ceiling serves what it is given and that each ratio says what it is
against.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # bench is not installed; it lives beside tests/
    sys.path.insert(0, REPO)

from bench import report, workloads  # noqa: E402
from bench.plan import Plan  # noqa: E402
from bench.servers import Bare, BlobsvcAuth  # noqa: E402
from bench.system import MiB, process_tree  # noqa: E402
from bench.workloads import curl, curl_md5, file_md5, new_row, w3_row  # noqa: E402


@pytest.fixture
def bare(tmp_path):
    server = Bare("bare", str(tmp_path), workers=2)
    server.start()
    yield server
    server.stop()


def request(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method=method),
                                timeout=10) as response:
        return response.status, response.read()


def test_bare_store_puts_and_serves_files_from_two_workers(bare):
    body = os.urandom(3 * MiB + 5)
    assert request("PUT", bare.url("a/b.bin"), body)[0] == 201
    with open(bare.disk_path("a/b.bin"), "rb") as stream:
        assert stream.read() == body
    assert request("GET", bare.url("a/b.bin")) == (200, body)
    assert len(process_tree(bare.pid)) == 3  # the supervisor and its two workers


def test_bare_store_stays_under_its_root(bare):
    with pytest.raises(urllib.error.HTTPError) as refused:
        request("PUT", bare.base_url + "/a/%2e%2e/%2e%2e/outside.bin", b"x")
    assert refused.value.code == 404
    assert not os.path.exists(os.path.join(os.path.dirname(bare.root), "outside.bin"))


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_bare_store_stops_with_its_workers(tmp_path):
    server = Bare("bare", str(tmp_path), workers=2)
    server.start()
    tree = process_tree(server.pid)
    assert len(tree) == 3
    server.stop()
    assert not [pid for pid in tree if running(pid)]


def test_w3_is_judged_against_the_lower_of_nginx_and_md5_in_each_repetition():
    values = {"b": [500.0, 300.0, 400.0], "n": [900.0, 350.0, 1000.0], "m": [600.0, 600.0, 450.0]}
    cpu = {"b": [1.0] * 3, "n": [0.5] * 3, "m": [None] * 3}
    row = w3_row(128 * MiB, True, values, cpu)
    assert row["ceiling"] == [600.0, 350.0, 450.0]
    assert row["ceiling_label"] == "min(nginx + sync, MD5)"
    assert row["goal"]["text"] == ">= 0.85x min(nginx + sync, MD5)"
    assert row["goal"]["pass"] is True  # ratios 0.83, 0.86, 0.89: median 0.86


def test_table_names_each_rows_ceiling_and_its_unjudged_figures():
    row = new_row("W2", "GET 4 KiB", "req/s")
    row.update(blobsvc=[2000.0, 2200.0], ceiling=[4000.0, 4000.0], ceiling_label="bare CherryPy",
               ratios=[0.5, 0.55])
    row["also"].append({"label": "errors", "values": [0], "suffix": ""})
    row["goal"] = {"text": ">= 1x bare CherryPy", "pass": False}
    report.summarize([row])
    table = report.text_table([row])
    assert "blobsvc/ceiling" in table.splitlines()[0]
    cells = report.cells(row)
    assert cells[4:8] == ("bare CherryPy", "4,000", "0.525x (0.500-0.550)", "errors 0")
    assert cells[-1] == "FAIL"


def test_presets_reserve_disk_for_every_workload():
    for quick in (True, False):
        plan = Plan.preset(quick)
        assert plan.list_sizes == (1_000, 10_000, 100_000)
        assert plan.disk_needed() > 5 * plan.swift_size


def test_w9_server_takes_the_same_user_by_s3_and_natively_and_no_one_else(tmp_path):
    """W9 times S3 against native requests of one user: both must work, and
    an anonymous request must not, or one side would skip authentication."""
    server = BlobsvcAuth("blobsvc-s3", str(tmp_path), workers=1)
    try:
        server.start()
        native = ["-K", server.curl_config]
        s3 = [*native, *workloads.SIGV4]
        assert curl([*s3, "-X", "PUT", "-w", "%{http_code}", server.base_url + "/benchbucket"], 10) == ["200"]
        source = tmp_path / "up.bin"
        source.write_bytes(os.urandom(MiB + 3))
        md5 = file_md5(str(source))
        workloads.curl_put(server.base_url + "/benchbucket/big", str(source), s3, md5)
        assert curl_md5(server.url("benchbucket/big"), MiB + 3, native) == (MiB + 3, md5)
        assert curl_md5(server.base_url + "/benchbucket/big", MiB + 3, s3) == (MiB + 3, md5)
        workloads.curl_get(server.url("benchbucket/big"), MiB + 3, native)
        assert curl(["-w", "%{http_code}", server.url("benchbucket/big")], 10) == ["401"]
        with open(server.curl_config) as stream:
            assert server.password in stream.read()
        assert os.stat(server.curl_config).st_mode & 0o077 == 0
    finally:
        server.stop()


def test_w9_runs_before_w7_and_fits_the_disk_plan():
    order = list(workloads.WORKLOADS)
    assert order.index("W9") < order.index("W7")
    plan = Plan.preset(True)
    assert plan.disk_needed() > 2 * plan.big

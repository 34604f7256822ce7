"""The download tools and the build cache users point at blobsvc, unmodified.

curl is exercised everywhere else; these are the other clients the
service's strict framing and its Range handling must suit as they are:
wget (a plain download, and ``-c`` resuming a partial file), aria2 (one
file fetched in four ranged pieces at once) and ccache (its HTTP remote
storage: a miss stores the object, a cold local cache then hits).
Each runs against a live ``blobsvc serve``; every byte is compared. Under
CI a missing tool fails the test (``.ci/run`` installs them all).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import requests
from live_server import filesystem_config, running_server, tool

SIZE = 5 * 1024 * 1024 + 12345  # several of aria2's pieces, not a round number


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("clients")
    with running_server(workdir, filesystem_config(workdir / "data")) as server:
        yield server


@pytest.fixture(scope="module")
def stored(server, tmp_path_factory) -> tuple[str, bytes]:
    data = os.urandom(SIZE)
    answer = requests.put(f"{server.url}/v1/objects/tools/blob.bin", data=data, timeout=30)
    assert answer.status_code == 201
    return f"{server.url}/v1/objects/tools/blob.bin", data


def run(args: list[str], cwd: Path, env: dict | None = None) -> None:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}"


def test_wget_downloads_byte_exact(stored, tmp_path):
    url, data = stored
    run([tool("wget"), "-q", "-O", "got.bin", url], tmp_path)
    assert (tmp_path / "got.bin").read_bytes() == data


def test_wget_continue_resumes_a_partial_file(stored, tmp_path):
    url, data = stored
    (tmp_path / "blob.bin").write_bytes(data[:1_000_003])  # what an interrupted download left
    run([tool("wget"), "-q", "-c", url], tmp_path)
    assert (tmp_path / "blob.bin").read_bytes() == data


def test_aria2_fetches_one_file_in_four_ranged_pieces(stored, tmp_path):
    url, data = stored
    run([tool("aria2c"), "-q", "-x4", "-s4", "-k1M", "--file-allocation=none",
         "-d", str(tmp_path), "-o", "got.bin", url], tmp_path)
    assert hashlib.sha256((tmp_path / "got.bin").read_bytes()).digest() == hashlib.sha256(data).digest()


def test_ccache_uses_blobsvc_as_its_remote_storage(server, tmp_path):
    compiler = tool("gcc")
    ccache = tool("ccache")
    (tmp_path / "unit.c").write_text("int triple(int x) { return 3 * x; }\n")
    env = {**os.environ, "CCACHE_DIR": str(tmp_path / "local"), "CCACHE_REMOTE_ONLY": "true",
           "CCACHE_REMOTE_STORAGE": f"{server.url}/v1/objects/ccache"}

    def compile_and_count(output: str) -> str:
        run([ccache, "-z"], tmp_path, env)
        run([ccache, compiler, "-c", "unit.c", "-o", output], tmp_path, env)
        stats = subprocess.run([ccache, "--print-stats"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=30, check=True).stdout
        return dict(line.split("\t", 1) for line in stats.splitlines())

    first = compile_and_count("first.o")
    assert (first["remote_storage_miss"], first["remote_storage_hit"]) == ("1", "0")
    kept = requests.get(f"{server.url}/v1/objects/ccache/", timeout=30).json()["entries"]
    assert kept, "ccache stored nothing in blobsvc"
    second = compile_and_count("second.o")
    assert (second["remote_storage_miss"], second["remote_storage_hit"]) == ("0", "1")
    assert (tmp_path / "second.o").read_bytes() == (tmp_path / "first.o").read_bytes()

"""RFC 9110 behaviour users rely on, with real clients over a real socket:
curl resuming and revalidating, and create-only PUTs racing across worker
processes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time

import pytest
import requests
from api_client import ServerProcess

pytestmark = pytest.mark.skipif(subprocess.run(["which", "curl"], capture_output=True).returncode,
                                reason="curl is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("http-semantics")
    # Two workers: create-only must hold across processes, not just threads.
    proc = ServerProcess(work, {"server": {"port": 0, "workers": 2},
                                "storage": {"driver": "filesystem", "root": str(work / "data")},
                                "log": {"access_log": False}}).start()
    yield proc
    proc.stop()


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=60)


def test_curl_resumes_a_broken_download(server, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    requests.put(f"{server.url}/v1/objects/resume.bin", data=data, timeout=30).raise_for_status()
    partial = tmp_path / "resume.bin"
    partial.write_bytes(data[:1_000_001])  # what a broken transfer left
    result = curl("-C", "-", "-o", str(partial), "-w", "%{http_code}", f"{server.url}/v1/objects/resume.bin")
    assert result.stdout == "206", result.stderr
    assert hashlib.sha256(partial.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_curl_z_with_a_current_copy_gets_304_and_keeps_it(server, tmp_path):
    requests.put(f"{server.url}/v1/objects/cached.txt", data=b"current", timeout=30).raise_for_status()
    local = tmp_path / "cached.txt"
    local.write_bytes(b"current")
    future = time.time() + 3600
    os.utime(local, (future, future))
    result = curl("-z", str(local), "-o", str(local), "-w", "%{http_code}",
                  f"{server.url}/v1/objects/cached.txt")
    assert result.stdout == "304", result.stderr
    assert local.read_bytes() == b"current"


def test_curl_z_with_an_old_copy_downloads_again(server, tmp_path):
    requests.put(f"{server.url}/v1/objects/stale.txt", data=b"new bytes", timeout=30).raise_for_status()
    local = tmp_path / "stale.txt"
    local.write_bytes(b"old")
    os.utime(local, (1_000_000_000, 1_000_000_000))
    result = curl("-z", str(local), "-o", str(local), "-w", "%{http_code}",
                  f"{server.url}/v1/objects/stale.txt")
    assert result.stdout == "200", result.stderr
    assert local.read_bytes() == b"new bytes"


def test_concurrent_create_only_puts_exactly_one_wins(server):
    contenders = 16
    bodies = [f"writer {i} ".encode() * 5000 for i in range(contenders)]
    statuses: list[int | None] = [None] * contenders
    start = threading.Barrier(contenders)

    def put(index: int) -> None:
        start.wait(timeout=10)
        response = requests.put(f"{server.url}/v1/objects/race/once", data=bodies[index],
                                headers={"If-None-Match": "*"}, timeout=30)
        statuses[index] = response.status_code

    threads = [threading.Thread(target=put, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [201] + [412] * (contenders - 1), statuses
    winner = statuses.index(201)
    stored = requests.get(f"{server.url}/v1/objects/race/once", timeout=30).content
    assert stored == bodies[winner]


def test_if_match_put_replaces_only_the_version_the_client_saw(server):
    url = f"{server.url}/v1/objects/guarded.txt"
    seen = requests.put(url, data=b"v1", timeout=30).headers["ETag"]
    requests.put(url, data=b"v2 by someone else", timeout=30).raise_for_status()
    lost_update = requests.put(url, data=b"v3 based on v1", headers={"If-Match": seen}, timeout=30)
    assert lost_update.status_code == 412
    assert lost_update.json()["error"]["code"] == "precondition_failed"
    assert requests.get(url, timeout=30).content == b"v2 by someone else"

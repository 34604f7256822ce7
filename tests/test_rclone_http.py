"""rclone's ``http`` backend mirrors a tree from the HTML listing.

The backend reads a directory as a web server's index page: it GETs the
directory URL, takes every ``<a href>`` below it (a trailing ``/`` marks a
directory; links with a query, like "Next page", and links above it, like
the breadcrumbs, are left out), then HEADs each file for its size and
modification time. It sends no ``Accept`` header, so blobsvc answers it
JSON, which it cannot read: the recipe is ``--http-headers "Accept,text/html"``.
It follows no "Next page" link either, so an HTML page given no ``limit``
holds the whole directory, up to the maximum page of 10000 entries.

rclone skips a file whose name holds a colon when it lies directly in the
directory a remote points at: it asks for ``./name`` (Go's URL escaping
guards the colon that way), a path blobsvc refuses. One level further
down it asks for ``dir/name`` and all is well, which is where TREE keeps
its colon.

Debian's rclone runs against a live ``blobsvc serve`` with no config file;
every copied file is compared byte for byte with what was PUT. Under CI a
missing rclone fails the tests (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from live_server import filesystem_config, running_server, tool

from blobsvc.native.resources import LIST_DEFAULT_LIMIT

README = Path(__file__).resolve().parent.parent / "README.rst"

#: Path below the remote's root -> body. Spaces, non-ASCII, characters URLs
#: reserve, a name that is markup, nested directories, an empty file, and
#: sizes from 0 to a few hundred KiB.
TREE = {
    "a b.txt": b"spaces\n",
    "caf\u00e9 \u65e5\u672c.txt": "unicode \u2713\n".encode(),
    "emoji \U0001f600.bin": os.urandom(1000),
    "100% sure?#frag": b"percent, question mark, hash",
    '<script>alert("x")<script>.txt': b"markup in a name",
    "plus+sign=eq;semi,comma&amp": b"reserved characters",
    "empty": b"",
    "nested dir/inner file.txt": b"one level down\n",
    "nested dir/deeper/ratio 16:9.bin": os.urandom(300 * 1024 + 7),
    "nested dir/deeper/\u00fcber/last.txt": b"three levels down",
}
DIRECTORIES = {"nested dir", "nested dir/deeper", "nested dir/deeper/\u00fcber"}

#: The recipe: have rclone ask for the HTML page.
RECIPE = ["--http-headers", "Accept,text/html"]
#: Every run: no config file, and a failure quickly rather than after retries.
QUICK = ["--config", "/dev/null", "--retries", "1", "--low-level-retries", "1",
         "--contimeout", "5s", "--timeout", "10s"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rclone")
    with running_server(workdir, filesystem_config(workdir / "data")) as server:
        with requests.Session() as session:
            for path, body in TREE.items():
                answer = session.put(f"{server.url}/v1/objects/tree/{quote(path)}", data=body,
                                     timeout=10)
                assert answer.status_code == 201, (path, answer.text)
        server.stored_at = time.time()
        yield server


def remote(server, directory: str) -> str:
    """An on-the-fly remote (no config file) at ``directory`` of the store."""
    return f":http,url='{server.url}/v1/objects/{quote(directory)}/':"


def rclone(*args: str) -> subprocess.CompletedProcess:
    """One rclone run (its log, -v's included, is on stderr)."""
    return subprocess.run([tool("rclone"), *QUICK, *args], capture_output=True, text=True,
                          timeout=60)


def rclone_ok(*args: str) -> str:
    done = rclone(*args)
    assert done.returncode == 0, f"rclone {args[0]} failed: {done.stderr[-2000:]}"
    return done.stdout


def test_without_the_recipe_rclone_gets_json_and_says_it_cannot_read_it(server):
    done = rclone("lsf", remote(server, "tree"))
    assert done.returncode != 0
    assert "application/json" in done.stderr  # JSON stays the answer to a client without Accept


def test_rclone_lists_every_name_size_and_time_of_the_tree(server):
    listed = json.loads(rclone_ok("lsjson", "-R", *RECIPE, remote(server, "tree")))
    files = {entry["Path"]: entry for entry in listed if not entry["IsDir"]}
    assert {entry["Path"] for entry in listed if entry["IsDir"]} == DIRECTORIES
    assert {path: entry["Size"] for path, entry in files.items()} == {
        path: len(body) for path, body in TREE.items()}
    for path, entry in files.items():  # from Last-Modified, which has whole seconds
        when = datetime.fromisoformat(entry["ModTime"].replace("Z", "+00:00")).timestamp()
        assert server.stored_at - 60 < when <= server.stored_at + 1, (path, entry["ModTime"])


def test_rclone_copies_the_tree_byte_for_byte_and_a_second_copy_fetches_nothing(server, tmp_path):
    target = tmp_path / "copy"
    first = rclone("copy", "-v", "--stats", "0", *RECIPE, remote(server, "tree"), str(target))
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stderr.count(": Copied (new)") == len(TREE)
    copied = {path.relative_to(target).as_posix(): path.read_bytes()
              for path in target.rglob("*") if path.is_file()}
    assert copied.keys() == TREE.keys()
    for path, body in TREE.items():
        assert copied[path] == body, path
    again = rclone("copy", "-v", "--stats", "0", *RECIPE, remote(server, "tree"), str(target))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Copied" not in again.stderr  # the sizes and times rclone saw match what it wrote


def test_a_directory_bigger_than_a_json_page_is_listed_whole(server):
    names = [f"{index:05d}" for index in range(LIST_DEFAULT_LIMIT + 1)]
    with requests.Session() as session:
        for name in names:
            assert session.put(f"{server.url}/v1/objects/many/{name}", data=b"",
                               timeout=10).status_code == 201
    listed = rclone_ok("lsf", "--http-no-head", *RECIPE, remote(server, "many"))
    assert listed.splitlines() == names


def test_a_copy_reads_the_listing_pages_only_below_its_root(server, tmp_path):
    # Breadcrumbs lead above the root and "Next page" carries a query: a
    # copy of one sub-directory must take neither for a file or directory.
    target: Path = tmp_path / "sub"
    rclone_ok("copy", *RECIPE, remote(server, "tree/nested dir"), str(target))
    copied = sorted(path.relative_to(target).as_posix() for path in target.rglob("*"))
    assert copied == ["deeper", "deeper/ratio 16:9.bin", "deeper/\u00fcber",
                      "deeper/\u00fcber/last.txt", "inner file.txt"]
    assert (target / "deeper/ratio 16:9.bin").read_bytes() == TREE["nested dir/deeper/ratio 16:9.bin"]


def test_the_readme_recipe_run_as_given_copies_the_tree(server, tmp_path):
    commands = [line.strip()[2:] for line in README.read_text(encoding="utf-8").splitlines()
                if line.strip().startswith("$ rclone copy ")]
    assert len(commands) == 1, commands
    example = "http://127.0.0.1:8080/v1/objects/reports/"
    assert example in commands[0]
    args = shlex.split(commands[0].replace(example, f"{server.url}/v1/objects/tree/"))
    assert args[-1] == "reports"
    done = subprocess.run([tool("rclone"), *args[1:]], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "RCLONE_CONFIG": "/dev/null"})
    assert done.returncode == 0, done.stderr[-2000:]
    target = tmp_path / "reports"
    assert {path.relative_to(target).as_posix(): path.read_bytes()
            for path in target.rglob("*") if path.is_file()} == TREE

"""A real browser opens the listing: headless Chromium from Debian.

Chromium fetches the page the way a person's browser does (its own Accept
header, its own HTML parser), so what it builds is what a user would see:
the DOM it dumps must hold every hostile name as text and no script, and
its links must lead where they say. A screenshot of the page is kept in
``test-artifacts/`` at the repository's root. Under CI a missing chromium
fails the test (``.ci/run`` installs it).
"""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from live_server import filesystem_config, running_server, tool

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

HOSTILE = ['<script>alert("x")<script>.txt', "<img src=x onerror=alert(1)>.png",
           "\"quoted' & ampersand.bin"]


class Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: dict[str, str] = {}
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "a":
            self._href = dict(attrs)["href"]
            self.links[self._href] = ""

    def handle_endtag(self, tag):
        if tag == "a":
            self._href = None

    def handle_data(self, data):
        if self._href is not None:
            self.links[self._href] += data


def chromium(*args: str) -> str:
    done = subprocess.run(
        [tool("chromium"), "--headless=new", "--no-sandbox", "--disable-gpu",
         "--disable-dev-shm-usage", "--no-first-run", *args],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("browser")
    with running_server(workdir, filesystem_config(workdir / "data")) as server:
        for index, name in enumerate(HOSTILE):
            url = f"{server.url}/v1/objects/shared/{quote(name)}"
            assert requests.put(url, data=f"file {index}".encode(), timeout=10).status_code == 201
        url = f"{server.url}/v1/objects/shared/reports/2026.csv"
        assert requests.put(url, data=b"a,b\n", headers={"Content-Type": "text/csv"},
                            timeout=10).status_code == 201
        yield server


def test_chromium_builds_the_page_with_every_name_as_text_and_no_script(server):
    dom = Dom()
    dom.feed(chromium("--dump-dom", f"{server.url}/v1/objects/shared/"))
    assert "table" in dom.tags
    assert not {"script", "img", "iframe", "object"} & set(dom.tags)
    texts = set(dom.links.values())
    assert set(HOSTILE) <= texts
    assert "reports/" in texts
    for href, text in dom.links.items():
        answer = requests.get(server.url + href, timeout=10)
        assert answer.status_code == 200, (href, text)
        if text in HOSTILE:
            assert answer.content == f"file {HOSTILE.index(text)}".encode()


def test_chromium_follows_a_directory_link_to_its_page(server):
    dom = Dom()
    dom.feed(chromium("--dump-dom", f"{server.url}/v1/objects/shared/reports/"))
    assert dom.links["/v1/objects/shared/reports/2026.csv"] == "2026.csv"
    assert dom.links["/v1/objects/shared/"] == "shared"  # the breadcrumb back up


def test_a_screenshot_of_the_page_is_kept(server):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "listing.png"
    shot.unlink(missing_ok=True)
    chromium(f"--screenshot={shot}", "--window-size=900,500", f"{server.url}/v1/objects/shared/")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 2000  # a page, not a blank image

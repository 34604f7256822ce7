"""A listing asked for by a browser is a plain, escaped HTML page.

Runs on every (transport x driver), as the API suite does. Pages are read
with the standard library's HTML parser, so a hostile name must come out as
text, never as markup, and every link is followed to prove it resolves.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import quote, urljoin

import pytest
from api_client import listing, put_ok

from blobsvc.native.htmllisting import human_size, wants_html
from blobsvc.native.resources import LIST_DEFAULT_LIMIT

#: What Firefox and Chromium send for a page.
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}

HOSTILE = [
    '<script>alert("x")<script>.txt',  # no '/' or '\\': paths cannot hold them
    "\"onmouseover='alert(1)'.bin",
    "a&amp;b <b>bold<b>",
    "caf\u00e9 \u65e5\u672c.txt",
    "100% sure?#frag",
]


class Page(HTMLParser):
    """Links (href, text), the text of the table cells, and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.tags: set[str] = set()
        self.cells: list[str] = []
        self._href: str | None = None
        self._text = ""
        self._cell = ""
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "a":
            self._href, self._text = dict(attrs)["href"], ""
        if tag == "td":
            self._in_cell, self._cell = True, ""

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._href, self._text))
            self._href = None
        if tag == "td":
            self._in_cell = False
            self.cells.append(self._cell)

    def handle_data(self, data):
        if self._href is not None:
            self._text += data
        if self._in_cell:
            self._cell += data


def page_of(client, url: str):
    res = client.request("GET", url, None, BROWSER)
    assert res.status == 200, res.body
    assert res.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src" not in res.headers["Content-Security-Policy"]
    assert res.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert res.headers["Vary"] == "Accept"
    page = Page()
    page.feed(res.body.decode("utf-8"))
    return page


def test_a_browser_gets_a_page_and_every_other_client_json(client):
    put_ok(client, "docs/a.txt", b"hello")
    page = page_of(client, "/v1/objects/docs/")
    assert ("/v1/objects/docs/a.txt", "a.txt") in page.links
    for accept in (None, "*/*", "application/json", "text/html;q=0.5, application/json"):
        res = client.request("GET", "/v1/objects/docs/", None,
                             {"Accept": accept} if accept else {})
        assert res.status == 200
        assert res.headers["Content-Type"] == "application/json", accept
        assert res.headers["Vary"] == "Accept"
        assert [e["name"] for e in res.json()["entries"]] == ["a.txt"]


def test_hostile_names_are_text_and_their_links_resolve(client):
    for index, name in enumerate(HOSTILE):
        put_ok(client, quote(f"h/{name}", safe="/"), f"body {index}".encode())
    put_ok(client, "h/sub dir/inner", b"inner")
    page = page_of(client, "/v1/objects/h/")
    assert page.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "a", "table",
                         "thead", "tbody", "tr", "th", "td"}
    texts = [text for _, text in page.links]
    for name in HOSTILE:
        assert name in texts
    assert "sub dir/" in texts
    for href, text in page.links:
        res = client.request("GET", href, None, {})
        assert res.status == 200, (href, text)
        if text in HOSTILE:
            assert res.body == f"body {HOSTILE.index(text)}".encode()
        if text == "sub dir/":
            assert [e["name"] for e in res.json()["entries"]] == ["inner"]


def test_breadcrumbs_lead_to_every_level(client):
    put_ok(client, "x/y z/w/file", b"1")
    page = page_of(client, "/v1/objects/x/y%20z/w/")
    crumbs = page.links[:4]
    assert crumbs == [("/v1/objects/", "/"), ("/v1/objects/x/", "x"),
                      ("/v1/objects/x/y%20z/", "y z"), ("/v1/objects/x/y%20z/w/", "w")]
    for href, _ in crumbs:
        assert client.request("GET", href, None, {}).status == 200


def test_pages_follow_one_another_through_every_entry_once(client):
    names = [f"n{index:02d}" for index in range(7)]
    for name in names:
        put_ok(client, f"p/{name}", b"x" * 1536)
    seen, url = [], "/v1/objects/p/?limit=3"
    for _ in range(10):  # bounded: 7 entries, 3 a page
        page = page_of(client, url)
        seen += [text for href, text in page.links if href.startswith("/v1/objects/p/n")]
        following = [href for href, text in page.links if text == "Next page"]
        if not following:
            break
        url = urljoin(url, following[0])
    assert seen == names
    assert "1.5 KiB" in page.cells


def test_a_page_given_no_limit_holds_the_whole_directory_a_json_page_would_cut(client):
    # Read whole, as a web server's directory index is: rclone's http
    # backend walks these pages and follows no "Next page" link.
    names = [f"{index:05d}" for index in range(LIST_DEFAULT_LIMIT + 1)]
    for name in names:
        put_ok(client, f"big/{name}", b"")
    page = page_of(client, "/v1/objects/big/")
    texts = [text for _, text in page.links]
    assert [text for text in texts if text.isdigit()] == names
    assert "Next page" not in texts
    assert listing(client, "big/").json()["truncated"] is True  # JSON keeps its default


def test_a_recursive_page_lists_full_paths_below(client):
    put_ok(client, "r/a/1", b"1")
    put_ok(client, "r/b", b"2")
    page = page_of(client, "/v1/objects/r/?recursive=true")
    assert [(h, t) for h, t in page.links if t in ("a/1", "b")] == [
        ("/v1/objects/r/a/1", "a/1"), ("/v1/objects/r/b", "b")]


def test_an_empty_or_missing_directory(client):
    assert "(empty)" in page_of(client, "/v1/objects/").cells
    res = client.request("GET", "/v1/objects/nowhere/", None, BROWSER)
    assert res.status == 404
    assert res.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("size, shown", [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"),
                                         (1536, "1.5 KiB"), (5 * 1024**3, "5.0 GiB"),
                                         (3 * 1024**6, "3072.0 PiB")])
def test_human_sizes(size, shown):
    assert human_size(size) == shown


@pytest.mark.parametrize("accept, html", [
    (BROWSER["Accept"], True), ("text/html", True), ("*/*", False), ("", False),
    ("application/json", False), ("text/html;q=0", False),
    ("application/json;q=0.5, text/html", True), ("text/html;q=bad", False),
])
def test_what_counts_as_a_browser(accept, html):
    assert wants_html(accept) is html


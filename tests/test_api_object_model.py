"""The object model of the API document (API.md): what an object carries
besides its bytes, checked through the same two transports as test_api.py.

User metadata (``X-Object-Meta-*``), the representation headers a write
stores (Content-Type, Content-Encoding, Content-Disposition,
Content-Language, Cache-Control, Expires), expiry (``X-Delete-At``,
``X-Delete-After``), ``POST`` on an object, ``/v1/copy``, the metadata of a
cat's result, and listings by ``prefix`` and ``recursive``.

Every test runs on every (transport x driver), with the ``client`` and
``servers`` fixtures of conftest.py; the curl tests at the end run against
the same live servers. Header values are compared as the bytes on the wire.
Expiry tests wait for an object to expire (2 s at most each), and come last:
an expired object a driver keeps until it reclaims the space must not
disturb the tests that share its server.
"""

from __future__ import annotations

import gzip
import http.client
import json
import math
import shutil
import subprocess
import time
from urllib.parse import quote

import pytest
import requests
import webtest
from api_client import (
    Response,
    assert_absent,
    assert_json_error,
    entry_names,
    get,
    listing,
    object_url,
    payload,
    post_json,
    put,
    put_ok,
    wipe,
)
from requests.structures import CaseInsensitiveDict
from swiftstack import ci_mode

#: What test objects are stored with, and how GET and HEAD must send it back.
STORED_HEADERS = {
    "Content-Type": "text/plain;charset=UTF-8",
    "Content-Encoding": "gzip",
    "Content-Disposition": 'inline; filename="notes.txt"',
    "Content-Language": "de-CH, en",
    "Cache-Control": "public, max-age=60, stale-while-revalidate=30",
    "Expires": "Wed, 21 Oct 2037 07:28:00 GMT",
}

ORIGINAL = b"blobsvc keeps what it is given, byte for byte.\n" * 200
GZIPPED = gzip.compress(ORIGINAL, mtime=0)


# -- helpers -------------------------------------------------------------------


def wire(text: str) -> str:
    """``text``'s UTF-8 bytes as a header value of either transport: WSGI and
    http.client both carry header values as one character per byte."""
    return text.encode("utf-8").decode("latin-1")


def header_bytes(res: Response, name: str) -> bytes:
    """A response header's value as the bytes that were on the wire."""
    return res.headers[name].encode("latin-1")


def meta_headers(res: Response) -> dict[str, bytes]:
    """The ``X-Object-Meta-*`` headers of an answer: lower-cased name -> value bytes."""
    prefix = "x-object-meta-"
    return {name.lower()[len(prefix):]: value.encode("latin-1")
            for name, value in res.headers.items() if name.lower().startswith(prefix)}


def undecoded(client, method: str, path: str, headers: dict | None = None) -> Response:
    """GET or HEAD ``path``, the answer exactly as the server sent it.

    Both usual clients decode a gzip answer behind our back: WebTest's
    TestApp (it drops Content-Encoding and even rewrites a HEAD's
    Content-Length) and requests (urllib3 inflates the body). Objects are
    served as stored, so this asks the WSGI app itself (in-process), or
    http.client without an Accept-Encoding of its own (over the socket).
    """
    headers = dict(headers or {})
    if client.transport == "webtest":
        request = webtest.TestRequest.blank(path, method=method, headers=headers)
        answer = request.get_response(client.app.app)
        return Response(answer.status_int, CaseInsensitiveDict(answer.headerlist), answer.body)
    conn = http.client.HTTPConnection(client.host, client.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        answer = conn.getresponse()
        body = answer.read()
        return Response(answer.status, CaseInsensitiveDict(answer.getheaders()), body)
    finally:
        conn.close()


def head(client, path: str, headers=None) -> Response:
    return client.request("HEAD", object_url(path), None, headers)


def post(client, path: str, headers=None) -> Response:
    """POST on an object: its metadata in the headers, no body."""
    return client.request("POST", object_url(path), b"", headers)


def paths_of(res: Response) -> list[str]:
    assert res.status == 200, res.body
    return paths_of_body(res.json())


def paths_of_body(body: dict) -> list[str]:
    return [entry["path"] for entry in body["entries"]]


def in_a_while(seconds: int = 3600) -> int:
    return int(time.time()) + seconds


def soon() -> int:
    """An ``X-Delete-At`` one to two seconds ahead: in the future still when
    the request arrives, near enough to wait for."""
    return int(time.time()) + 2


def wait_past(expires_at: int) -> None:
    time.sleep(max(0.0, expires_at - time.time()) + 0.05)


def assert_unchanged(client, path: str, data: bytes, metadata: dict[str, str]) -> None:
    """``path`` still holds ``data`` with ``metadata`` (after a refused write)."""
    res = get(client, path)
    assert res.status == 200, res.body
    assert res.body == data
    assert meta_headers(res) == {name: wire(value).encode("latin-1")
                                 for name, value in metadata.items()}


# -- metadata on PUT, back on GET and HEAD --------------------------------------


def test_put_metadata_comes_back_on_get_and_head_as_the_same_bytes(client):
    values = {"color": "blue", "city": "Zürich", "script": "日本語 🚀", "punct": "a  b;c=d, e"}
    headers = {f"X-Object-Meta-{name.title()}": wire(value) for name, value in values.items()}
    info = put_ok(client, "meta/obj", b"bytes", headers)
    assert info["metadata"] == values
    expected = {name: value.encode("utf-8") for name, value in values.items()}
    for res in (get(client, "meta/obj"), head(client, "meta/obj")):
        assert res.status == 200, res.body
        assert meta_headers(res) == expected
    assert get(client, "meta/obj").body == b"bytes"


def test_metadata_names_are_kept_lower_cased(client):
    info = put_ok(client, "obj", b"x", {"X-Object-Meta-CamelCase-Name": "v"})
    assert info["metadata"] == {"camelcase-name": "v"}
    assert meta_headers(head(client, "obj")) == {"camelcase-name": b"v"}


def test_object_info_has_metadata_and_no_expiry_by_default(client):
    info = put_ok(client, "plain", b"x")
    assert info["metadata"] == {}
    assert info["expires_at"] is None
    res = get(client, "plain")
    assert meta_headers(res) == {}
    assert "X-Delete-At" not in res.headers


# WSGI names headers HTTP_*, where '_' and '-' are one: only the server,
# which keeps the names as sent, can tell them apart, so no WebTest run.
@pytest.mark.parametrize("transport", ["socket"])
def test_metadata_name_with_underscore_is_kept_over_a_socket(client):
    info = put_ok(client, "obj", b"x", {"X-Object-Meta-build_id": "42"})
    assert info["metadata"] == {"build_id": "42"}
    assert meta_headers(head(client, "obj")) == {"build_id": b"42"}


def test_metadata_of_exactly_8_kib_is_stored(client):
    # Names and values count: 1 + 4095 + 2 + 4094 = 8192 bytes.
    headers = {"X-Object-Meta-A": "a" * 4095, "X-Object-Meta-Bb": "b" * 4094}
    assert put_ok(client, "full", b"x", headers)["metadata"] == {"a": "a" * 4095, "bb": "b" * 4094}
    assert meta_headers(head(client, "full")) == {"a": b"a" * 4095, "bb": b"b" * 4094}


@pytest.mark.parametrize("headers", [
    {"X-Object-Meta-A": "a" * 4095, "X-Object-Meta-Bb": "b" * 4095},
    {"X-Object-Meta-K": "v" * 8192},
    {"X-Object-Meta-K": wire("é" * 4096)},  # 8192 characters' worth of bytes, plus the name
], ids=["two-headers", "one-header", "utf-8-bytes-count"])
def test_metadata_over_8_kib_is_400_and_stores_nothing(client, headers):
    put_ok(client, "kept", b"old", {"X-Object-Meta-Color": "blue"})
    assert_json_error(put(client, "kept", b"new", headers), 400, "metadata_too_large")
    assert_unchanged(client, "kept", b"old", {"color": "blue"})
    assert_json_error(put(client, "fresh", b"new", headers), 400, "metadata_too_large")
    assert_absent(client, "fresh")


@pytest.mark.parametrize("name, value", [
    ("X-Object-Meta-a.b", "v"),
    ("X-Object-Meta-a+b", "v"),
    ("X-Object-Meta-" + "n" * 129, "v"),
    ("X-Object-Meta-Bad", "\xff\xfe"),  # bytes that are not UTF-8
    ("X-Object-Meta-Bad", wire("é")[:1]),  # half of a UTF-8 sequence
    ("X-Object-Meta-Bad", "bell\x07"),
], ids=["dot", "plus", "name-129", "not-utf-8", "truncated-utf-8", "control"])
def test_invalid_metadata_is_400_and_stores_nothing(client, name, value):
    put_ok(client, "kept", b"old", {"X-Object-Meta-Color": "blue"})
    assert_json_error(put(client, "kept", b"new", {name: value}), 400, "invalid_metadata")
    assert_unchanged(client, "kept", b"old", {"color": "blue"})
    assert_json_error(put(client, "fresh", b"new", {name: value}), 400, "invalid_metadata")
    assert_absent(client, "fresh")


def test_metadata_name_of_128_characters_is_stored(client):
    name = "n" * 128
    assert put_ok(client, "obj", b"x", {f"X-Object-Meta-{name}": "v"})["metadata"] == {name: "v"}


def test_listing_entries_carry_no_metadata(client):
    put_ok(client, "dir/obj", b"x", {"X-Object-Meta-Color": "blue", "X-Delete-At": str(in_a_while())})
    for query in ("", "?recursive=true"):
        (entry,) = listing(client, "dir/", query).json()["entries"]
        assert entry["metadata"] is None
        assert "expires_at" in entry


# -- stored headers ------------------------------------------------------------


def test_stored_headers_come_back_verbatim_on_get_and_head(client):
    put_ok(client, "notes.txt.gz", GZIPPED, STORED_HEADERS)
    for method in ("GET", "HEAD"):
        res = undecoded(client, method, object_url("notes.txt.gz"))
        assert res.status == 200, res.body
        for name, value in STORED_HEADERS.items():
            assert header_bytes(res, name) == value.encode("latin-1"), (method, name)
        assert res.headers["Content-Length"] == str(len(GZIPPED))
        assert res.body == (GZIPPED if method == "GET" else b"")


@pytest.mark.parametrize("accept", [None, "gzip", "identity"])
def test_gzip_object_is_served_as_stored_never_decoded(client, accept):
    put_ok(client, "page.gz", GZIPPED, {"Content-Encoding": "gzip", "Content-Type": "text/plain"})
    res = undecoded(client, "GET", object_url("page.gz"), {"Accept-Encoding": accept} if accept else {})
    assert res.status == 200
    assert res.headers["Content-Encoding"] == "gzip"
    assert res.headers["Content-Length"] == str(len(GZIPPED))
    assert res.body == GZIPPED


def test_range_of_gzip_object_counts_stored_bytes(client):
    put_ok(client, "page.gz", GZIPPED, {"Content-Encoding": "gzip"})
    res = undecoded(client, "GET", object_url("page.gz"), {"Range": "bytes=10-29"})
    assert res.status == 206
    assert res.headers["Content-Encoding"] == "gzip"
    assert res.headers["Content-Range"] == f"bytes 10-29/{len(GZIPPED)}"
    assert res.headers["Content-Length"] == "20"
    assert res.body == GZIPPED[10:30]


# A comma makes a list, of which browsers take the last valid type.
@pytest.mark.parametrize("content_type", ["text/html", "text/html; charset=utf-8", "image/svg+xml",
                                          "text/html,", "text/plain, text/html"])
def test_active_type_is_attachment_whatever_disposition_was_stored(client, content_type):
    put_ok(client, "page", b"<p>hi</p>", {"Content-Type": content_type,
                                          "Content-Disposition": 'inline; filename="page.html"'})
    for res in (get(client, "page"), head(client, "page")):
        assert res.headers["Content-Type"] == content_type
        assert res.headers["Content-Disposition"] == "attachment"


def test_not_modified_repeats_cache_control_and_expires(client):
    info = put_ok(client, "cached", b"x", {"Cache-Control": "max-age=3600, must-revalidate",
                                           "Expires": "0"})
    for method in ("GET", "HEAD"):
        res = client.request(method, object_url("cached"), None, {"If-None-Match": f'"{info["etag"]}"'})
        assert res.status == 304
        assert res.body == b""
        assert res.headers["Cache-Control"] == "max-age=3600, must-revalidate"
        assert res.headers["Expires"] == "0"
        assert res.headers["ETag"] == f'"{info["etag"]}"'


def test_an_object_without_stored_headers_sends_none(client):
    put_ok(client, "bare", b"x")
    res = get(client, "bare")
    for name in ("Content-Encoding", "Content-Language", "Cache-Control", "Expires",
                 "Content-Disposition"):
        assert name not in res.headers, name


# -- POST on an object -----------------------------------------------------------


def test_post_replaces_metadata_and_stored_headers_and_keeps_bytes_and_etag(client):
    data = payload(5000, seed=7)
    before = put_ok(client, "doc", data, {
        "Content-Type": "text/csv", "X-Object-Meta-Color": "blue", "X-Object-Meta-Size": "L",
        "Content-Language": "fr", "Cache-Control": "no-cache", "X-Delete-At": str(in_a_while())})
    res = post(client, "doc", {"X-Object-Meta-Shape": wire("rond à souhait"),
                               "Content-Disposition": 'attachment; filename="doc.csv"'})
    assert res.status == 200, res.body
    assert res.headers["Content-Type"].startswith("application/json")
    info = res.json()
    assert info["metadata"] == {"shape": "rond à souhait"}
    assert info["expires_at"] is None
    for key in ("path", "name", "isdir", "size", "etag", "content_type"):
        assert info[key] == before[key], key
    got = get(client, "doc")
    assert got.body == data
    assert got.headers["ETag"] == f'"{before["etag"]}"'
    assert got.headers["Content-Type"] == "text/csv"
    assert meta_headers(got) == {"shape": "rond à souhait".encode()}
    assert got.headers["Content-Disposition"] == 'attachment; filename="doc.csv"'
    for gone in ("Content-Language", "Cache-Control", "X-Delete-At"):
        assert gone not in got.headers, gone


def test_post_without_headers_removes_all_metadata(client):
    put_ok(client, "doc", b"x", {"X-Object-Meta-Color": "blue", "Expires": "0"})
    assert post(client, "doc").json()["metadata"] == {}
    res = head(client, "doc")
    assert meta_headers(res) == {}
    assert "Expires" not in res.headers


def test_post_changes_content_type_only_when_sent(client):
    put_ok(client, "img", b"x", {"Content-Type": "image/png"})
    assert post(client, "img", {"X-Object-Meta-A": "1"}).json()["content_type"] == "image/png"
    assert head(client, "img").headers["Content-Type"] == "image/png"
    assert post(client, "img", {"Content-Type": "image/webp"}).json()["content_type"] == "image/webp"
    assert head(client, "img").headers["Content-Type"] == "image/webp"


def test_post_to_missing_object_is_404_and_creates_nothing(client):
    assert_json_error(post(client, "nothing", {"X-Object-Meta-A": "1"}), 404, "not_found")
    assert_absent(client, "nothing")


def test_post_to_directory_is_404(client):
    put_ok(client, "dir/inside")
    assert_json_error(post(client, "dir", {"X-Object-Meta-A": "1"}), 404, "not_found")
    assert get(client, "dir/inside").status == 200


@pytest.mark.parametrize("condition", [
    {"If-Match": '"0123456789abcdef0123456789abcdef"'},
    {"If-None-Match": "*"},
    {"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
], ids=["if-match-other", "if-none-match-star", "if-unmodified-since-past"])
def test_post_failing_a_precondition_is_412_and_changes_nothing(client, condition):
    put_ok(client, "doc", b"x", {"X-Object-Meta-Color": "blue"})
    res = post(client, "doc", {**condition, "X-Object-Meta-Color": "red"})
    assert_json_error(res, 412, "precondition_failed")
    assert_unchanged(client, "doc", b"x", {"color": "blue"})


def test_post_if_match_current_etag_applies(client):
    info = put_ok(client, "doc", b"x", {"X-Object-Meta-Color": "blue"})
    res = post(client, "doc", {"If-Match": f'"{info["etag"]}"', "X-Object-Meta-Color": "red"})
    assert res.status == 200, res.body
    assert meta_headers(head(client, "doc")) == {"color": b"red"}


@pytest.mark.parametrize("headers, code", [
    ({"X-Object-Meta-a.b": "v"}, "invalid_metadata"),
    ({"X-Object-Meta-K": "v" * 8192}, "metadata_too_large"),
    ({"X-Delete-After": "0"}, "invalid_metadata"),
])
def test_post_with_bad_metadata_is_400_and_changes_nothing(client, headers, code):
    put_ok(client, "doc", b"x", {"X-Object-Meta-Color": "blue"})
    assert_json_error(post(client, "doc", headers), 400, code)
    assert_unchanged(client, "doc", b"x", {"color": "blue"})


# -- expiry, set and refused -------------------------------------------------------


def test_x_delete_at_is_reported_and_sent_back(client):
    expires_at = in_a_while()
    info = put_ok(client, "exp", b"x", {"X-Delete-At": str(expires_at)})
    assert info["expires_at"] == expires_at
    for res in (get(client, "exp"), head(client, "exp")):
        assert res.status == 200
        assert res.headers["X-Delete-At"] == str(expires_at)


def test_x_delete_after_counts_from_now(client):
    before = time.time()
    info = put_ok(client, "exp", b"x", {"X-Delete-After": "600"})
    after = time.time()
    # Rounded up: the object lives at least the seconds asked for.
    assert before + 600 <= info["expires_at"] <= math.ceil(after + 600)
    assert head(client, "exp").headers["X-Delete-At"] == str(info["expires_at"])


def test_post_sets_an_expiry_and_a_post_without_removes_it(client):
    put_ok(client, "doc", b"x")
    expires_at = in_a_while()
    assert post(client, "doc", {"X-Delete-At": str(expires_at)}).json()["expires_at"] == expires_at
    assert head(client, "doc").headers["X-Delete-At"] == str(expires_at)
    assert post(client, "doc").json()["expires_at"] is None
    assert "X-Delete-At" not in head(client, "doc").headers


BAD_EXPIRIES = {
    "both": lambda: {"X-Delete-At": str(in_a_while()), "X-Delete-After": "60"},
    "at-past": lambda: {"X-Delete-At": str(int(time.time()) - 10)},
    "at-zero": lambda: {"X-Delete-At": "0"},
    "after-zero": lambda: {"X-Delete-After": "0"},
    "after-negative": lambda: {"X-Delete-After": "-5"},
    "after-fraction": lambda: {"X-Delete-After": "1.5"},
    "after-words": lambda: {"X-Delete-After": "soon"},
    "at-exponent": lambda: {"X-Delete-At": "2e9"},
    "at-date": lambda: {"X-Delete-At": "Wed, 21 Oct 2037 07:28:00 GMT"},
    "at-non-ascii-digits": lambda: {"X-Delete-At": wire("١٢٣٤٥٦٧٨٩٠")},
}


@pytest.mark.parametrize("headers", list(BAD_EXPIRIES.values()), ids=list(BAD_EXPIRIES))
def test_bad_expiry_on_put_is_400_and_stores_nothing(client, headers):
    put_ok(client, "kept", b"old", {"X-Object-Meta-Color": "blue"})
    assert_json_error(put(client, "kept", b"new", headers()), 400, "invalid_metadata")
    assert_unchanged(client, "kept", b"old", {"color": "blue"})
    assert "X-Delete-At" not in head(client, "kept").headers
    assert_json_error(put(client, "fresh", b"new", headers()), 400, "invalid_metadata")
    assert_absent(client, "fresh")


@pytest.mark.parametrize("headers", list(BAD_EXPIRIES.values()), ids=list(BAD_EXPIRIES))
def test_bad_expiry_on_post_is_400_and_changes_nothing(client, headers):
    put_ok(client, "kept", b"old", {"X-Object-Meta-Color": "blue"})
    assert_json_error(post(client, "kept", headers()), 400, "invalid_metadata")
    assert_unchanged(client, "kept", b"old", {"color": "blue"})
    assert "X-Delete-At" not in head(client, "kept").headers


# -- copy ------------------------------------------------------------------------


def test_copy_answers_201_with_location_and_info_and_keeps_the_source(client):
    data = payload(300_000, seed=5)
    source = put_ok(client, "src/a.bin", data)
    res = post_json(client, "/v1/copy", {"from": "src/a.bin", "to": "dst/b.bin"})
    assert res.status == 201, res.body
    assert res.headers["Location"] == "/v1/objects/dst/b.bin"
    info = res.json()
    assert (info["path"], info["name"], info["isdir"], info["size"]) == (
        "dst/b.bin", "b.bin", False, len(data))
    assert info["etag"] == source["etag"]
    assert get(client, "dst/b.bin").body == data
    assert get(client, "src/a.bin").body == data


def test_copy_carries_metadata_stored_headers_and_content_type_not_expiry(client):
    put_ok(client, "src", GZIPPED, {**STORED_HEADERS, "X-Object-Meta-City": wire("Zürich"),
                                    "X-Delete-At": str(in_a_while())})
    res = post_json(client, "/v1/copy", {"from": "src", "to": "dst"})
    assert res.status == 201, res.body
    assert res.json()["metadata"] == {"city": "Zürich"}
    assert res.json()["content_type"] == STORED_HEADERS["Content-Type"]
    assert res.json()["expires_at"] is None
    copied = undecoded(client, "GET", object_url("dst"))
    assert copied.body == GZIPPED
    for name, value in STORED_HEADERS.items():
        assert header_bytes(copied, name) == value.encode("latin-1"), name
    assert meta_headers(copied) == {"city": "Zürich".encode()}
    assert "X-Delete-At" not in copied.headers
    assert "X-Delete-At" in head(client, "src").headers  # the source keeps its own


def test_copy_with_metadata_and_content_type_replaces_both(client):
    put_ok(client, "src", b"x", {"Content-Type": "text/plain", "X-Object-Meta-Color": "blue"})
    res = post_json(client, "/v1/copy", {"from": "src", "to": "dst", "content_type": "text/csv",
                                         "metadata": {"Shape": "round", "note": "ça va"}})
    assert res.status == 201, res.body
    assert res.json()["metadata"] == {"shape": "round", "note": "ça va"}
    assert res.json()["content_type"] == "text/csv"
    copied = head(client, "dst")
    assert copied.headers["Content-Type"] == "text/csv"
    assert meta_headers(copied) == {"shape": b"round", "note": "ça va".encode()}
    assert meta_headers(head(client, "src")) == {"color": b"blue"}


@pytest.mark.parametrize("field, value", [
    ("metadata", {"shape": "round"}),
    ("content_type", "text/csv"),
])
def test_copy_replaces_only_what_its_body_names(client, field, value):
    """A field the request leaves out is the source's: a new content type
    must not strip an object's metadata, nor new metadata its encoding
    (its gzip bytes would then be served as plain text)."""
    put_ok(client, "src", GZIPPED, {"Content-Type": "text/plain", "Content-Encoding": "gzip",
                                    "Content-Language": "fr", "X-Object-Meta-Color": "blue"})
    res = post_json(client, "/v1/copy", {"from": "src", "to": "dst", field: value})
    assert res.status == 201, res.body
    expected_metadata = value if field == "metadata" else {"color": "blue"}
    expected_type = value if field == "content_type" else "text/plain"
    assert res.json()["metadata"] == expected_metadata
    assert res.json()["content_type"] == expected_type
    copied = undecoded(client, "HEAD", object_url("dst"))
    assert copied.headers["Content-Type"] == expected_type
    assert copied.headers["Content-Encoding"] == "gzip"
    assert copied.headers["Content-Language"] == "fr"
    assert meta_headers(copied) == {k: v.encode() for k, v in expected_metadata.items()}


def test_copy_with_headers_and_expiry_sets_them_and_keeps_the_rest(client):
    put_ok(client, "src", GZIPPED, {"Content-Type": "text/plain", "Content-Encoding": "gzip",
                                    "X-Object-Meta-Color": "blue"})
    expires_at = in_a_while()
    res = post_json(client, "/v1/copy", {"from": "src", "to": "dst", "expires_at": expires_at,
                                         "headers": {"Content-Disposition": "inline",
                                                     "Cache-Control": "no-store"}})
    assert res.status == 201, res.body
    assert res.json()["headers"] == {"Content-Disposition": "inline", "Cache-Control": "no-store"}
    assert (res.json()["expires_at"], res.json()["metadata"]) == (expires_at, {"color": "blue"})
    copied = undecoded(client, "HEAD", object_url("dst"))
    assert copied.headers["X-Delete-At"] == str(expires_at)
    assert copied.headers["Cache-Control"] == "no-store"
    assert "Content-Encoding" not in copied.headers  # the headers named replace all stored ones
    assert undecoded(client, "HEAD", object_url("src")).headers["Content-Encoding"] == "gzip"


def test_copy_if_none_match_star_onto_existing_is_412_and_keeps_it(client):
    put_ok(client, "src", b"new")
    put_ok(client, "dst", b"old", {"X-Object-Meta-Color": "blue"})
    res = client.request("POST", "/v1/copy", json.dumps({"from": "src", "to": "dst"}).encode(),
                         {"Content-Type": "application/json", "If-None-Match": "*"})
    assert_json_error(res, 412, "precondition_failed")
    assert_unchanged(client, "dst", b"old", {"color": "blue"})


def test_copy_if_none_match_star_onto_nothing_creates(client):
    put_ok(client, "src", b"new")
    res = client.request("POST", "/v1/copy", json.dumps({"from": "src", "to": "dst"}).encode(),
                         {"Content-Type": "application/json", "If-None-Match": "*"})
    assert res.status == 201, res.body
    assert get(client, "dst").body == b"new"


def test_copy_replaces_an_existing_destination(client):
    put_ok(client, "src", b"new", {"X-Object-Meta-Color": "red"})
    put_ok(client, "dst", b"old", {"X-Object-Meta-Color": "blue", "X-Object-Meta-Old": "1"})
    assert post_json(client, "/v1/copy", {"from": "src", "to": "dst"}).status == 201
    assert_unchanged(client, "dst", b"new", {"color": "red"})


def test_copy_missing_source_is_404_and_creates_nothing(client):
    assert_json_error(post_json(client, "/v1/copy", {"from": "absent", "to": "dst"}), 404, "not_found")
    assert_absent(client, "dst")


def test_copy_of_a_directory_or_onto_one_is_409(client):
    put_ok(client, "d/x")
    put_ok(client, "src")
    assert_json_error(post_json(client, "/v1/copy", {"from": "d", "to": "e"}), 409, "conflict")
    assert_json_error(post_json(client, "/v1/copy", {"from": "src", "to": "d"}), 409, "conflict")
    assert_absent(client, "e")
    assert get(client, "d/x").status == 200


@pytest.mark.parametrize("document, code", [
    ({"from": "src"}, "bad_request"),
    ({"from": 1, "to": "dst"}, "bad_request"),
    ({"from": "src", "to": "dst", "metadata": ["a"]}, "bad_request"),
    ({"from": "src", "to": "dst", "content_type": 5}, "bad_request"),
    ({"from": "src", "to": "dst", "metadata": {"a.b": "v"}}, "invalid_metadata"),
    ({"from": "src", "to": "dst", "metadata": {"a": 1}}, "invalid_metadata"),
    ({"from": "src", "to": "dst", "metadata": {"k": "v" * 8192}}, "metadata_too_large"),
    ({"from": "src", "to": "../dst"}, "invalid_path"),
    (b"{not json", "bad_request"),
    ({"from": "src", "to": "dst", "headers": {"X-Custom": "1"}}, "invalid_metadata"),
    ({"from": "src", "to": "dst", "headers": {"Cache-Control": 1}}, "bad_request"),
    ({"from": "src", "to": "dst", "expires_at": 1}, "invalid_metadata"),
    ({"from": "src", "to": "dst", "expires_at": "soon"}, "invalid_metadata"),
], ids=["no-to", "from-not-string", "metadata-list", "content-type-number", "metadata-name",
        "metadata-number", "metadata-too-large", "invalid-path", "not-json", "not-a-stored-header",
        "header-number", "expiry-past", "expiry-text"])
def test_copy_bad_request_is_400_and_creates_nothing(client, document, code):
    put_ok(client, "src", b"x")
    assert_json_error(post_json(client, "/v1/copy", document), 400, code)
    assert_absent(client, "dst")
    assert entry_names(listing(client)) == ["src"]


# -- cat with metadata -------------------------------------------------------------


def test_cat_result_carries_the_requested_metadata_and_content_type(client):
    put_ok(client, "c1", b"ab")
    put_ok(client, "c2", b"cd")
    res = post_json(client, "/v1/cat", {"path": "out", "chunks": ["c1", "c2"], "content_type": "text/plain",
                                        "metadata": {"Parts": "2", "city": "Zürich"}})
    assert res.status == 201, res.body
    assert res.json()["metadata"] == {"parts": "2", "city": "Zürich"}
    assert res.json()["content_type"] == "text/plain"
    got = get(client, "out")
    assert got.body == b"abcd"
    assert got.headers["Content-Type"] == "text/plain"
    assert meta_headers(got) == {"parts": b"2", "city": "Zürich".encode()}


def test_cat_result_carries_the_requested_headers_and_expiry(client):
    put_ok(client, "c1", b"ab")
    expires_at = in_a_while()
    res = post_json(client, "/v1/cat", {"path": "out", "chunks": ["c1"], "expires_at": expires_at,
                                        "headers": {"Content-Language": "fr"}})
    assert res.status == 201, res.body
    assert (res.json()["headers"], res.json()["expires_at"]) == ({"Content-Language": "fr"},
                                                                 expires_at)
    got = get(client, "out")
    assert (got.headers["Content-Language"], got.headers["X-Delete-At"]) == ("fr", str(expires_at))


def test_head_sends_the_exact_write_time_of_the_json_as_x_timestamp(client):
    info = put_ok(client, "obj", b"x")
    assert float(head(client, "obj").headers["X-Timestamp"]) == info["ctime"]
    assert float(get(client, "obj").headers["X-Timestamp"]) == info["ctime"]


def test_cat_result_carries_none_of_the_chunks_metadata(client):
    put_ok(client, "c1", b"ab", {"Content-Type": "text/csv", "X-Object-Meta-Color": "blue",
                                 "Content-Language": "fr"})
    res = post_json(client, "/v1/cat", {"path": "out", "chunks": ["c1"]})
    assert res.status == 201, res.body
    assert res.json()["metadata"] == {}
    assert res.json()["content_type"] == "application/octet-stream"
    got = get(client, "out")
    assert meta_headers(got) == {}
    assert "Content-Language" not in got.headers


@pytest.mark.parametrize("extra, code", [
    ({"metadata": {"a.b": "v"}}, "invalid_metadata"),
    ({"metadata": {"k": "v" * 8192}}, "metadata_too_large"),
    ({"metadata": "color=blue"}, "bad_request"),
    ({"content_type": ["text/plain"]}, "bad_request"),
    ({"headers": {"Content-Type": "text/plain"}}, "invalid_metadata"),
    ({"headers": "Cache-Control: no-store"}, "bad_request"),
    ({"expires_at": True}, "invalid_metadata"),
])
def test_cat_with_bad_metadata_is_400_and_keeps_the_chunks(client, extra, code):
    put_ok(client, "c1", b"ab")
    res = post_json(client, "/v1/cat", {"path": "out", "chunks": ["c1"], **extra})
    assert_json_error(res, 400, code)
    assert_absent(client, "out")
    assert get(client, "c1").body == b"ab"


# -- every 201 says where the object lives ------------------------------------------


def test_every_201_carries_location_of_the_new_object(client):
    name = "loc/ünï code & more?.txt"

    def check(res: Response, path: str) -> None:
        assert res.status == 201, res.body
        assert res.headers["Location"] == "/v1/objects/" + quote(path, safe="/")
        assert client.request("GET", res.headers["Location"]).body == b"x"

    check(put(client, quote(name), b"x"), name)
    check(post_json(client, "/v1/copy", {"from": name, "to": name + ".copy"}), name + ".copy")
    check(post_json(client, "/v1/move", {"from": name + ".copy", "to": name + ".moved"}),
          name + ".moved")
    check(post_json(client, "/v1/cat", {"path": name + ".cat", "chunks": [name + ".moved"]}),
          name + ".cat")


# -- listings: prefix and recursive ---------------------------------------------------


def test_prefix_keeps_entries_of_the_level_whose_names_start_with_it(client):
    for path in ("p/apple", "p/apricot/x", "p/apricot/y/z", "p/ap", "p/banana", "p/bap", "pa"):
        put_ok(client, path)
    res = listing(client, "p/", "?prefix=ap")
    assert [(e["path"], e["isdir"]) for e in res.json()["entries"]] == [
        ("p/ap", False), ("p/apple", False), ("p/apricot", True)]
    assert res.json()["path"] == "p/"


def test_prefix_at_the_root_and_with_non_ascii(client):
    for path in ("alpha", "alps/x", "beta", "über", "übel/x"):
        put_ok(client, quote(path))
    assert entry_names(listing(client, "", "?prefix=al")) == ["alpha", "alps"]
    assert entry_names(listing(client, "", "?prefix=" + quote("üb"))) == ["übel", "über"]
    assert entry_names(listing(client, "", "?prefix=zzz")) == []


def test_prefix_paginates_with_marker(client):
    for path in ("p/ap", "p/apple", "p/apricot/x", "p/b"):
        put_ok(client, path)
    first = listing(client, "p/", "?prefix=ap&limit=2").json()
    assert [e["name"] for e in first["entries"]] == ["ap", "apple"]
    assert (first["truncated"], first["next_marker"]) == (True, "apple")
    rest = listing(client, "p/", "?prefix=ap&limit=2&marker=apple").json()
    assert [e["name"] for e in rest["entries"]] == ["apricot"]
    assert (rest["truncated"], rest["next_marker"]) == (False, None)


RECURSIVE_TREE = ("b", "a/c/d", "a-z", "a/b", "a.txt", "ab/x")


def test_recursive_lists_every_object_flat_in_full_path_order(client):
    for path in RECURSIVE_TREE:
        put_ok(client, path, path.encode())
    res = listing(client, "", "?recursive=true")
    # By code point, as Swift sorts: '-' < '.' < '/' < 'b'.
    assert paths_of(res) == ["a-z", "a.txt", "a/b", "a/c/d", "ab/x", "b"]
    assert all(entry["isdir"] is False for entry in res.json()["entries"])
    assert [e["name"] for e in res.json()["entries"]] == ["a-z", "a.txt", "b", "d", "x", "b"]
    assert (res.json()["truncated"], res.json()["next_marker"]) == (False, None)


def test_recursive_below_a_directory(client):
    for path in RECURSIVE_TREE:
        put_ok(client, path)
    res = listing(client, "a/", "?recursive=true")
    assert res.json()["path"] == "a/"
    assert paths_of(res) == ["a/b", "a/c/d"]


@pytest.mark.parametrize("directory, prefix, expected", [
    ("", "a/c", ["a/c/d"]),
    ("", "a", ["a-z", "a.txt", "a/b", "a/c/d", "ab/x"]),
    ("", "a/", ["a/b", "a/c/d"]),
    ("a/", "c", ["a/c/d"]),
    ("a/", "c/d", ["a/c/d"]),
    ("a/", "x", []),
])
def test_recursive_with_prefix_keeps_paths_starting_with_it(client, directory, prefix, expected):
    for path in RECURSIVE_TREE:
        put_ok(client, path)
    assert paths_of(listing(client, directory, f"?recursive=true&prefix={quote(prefix)}")) == expected


def test_recursive_paginates_with_full_paths_as_markers(client):
    for path in RECURSIVE_TREE:
        put_ok(client, path)
    seen, marker = [], None
    for _ in range(10):  # bounded walk
        query = "?recursive=true&limit=2" + (f"&marker={quote(marker)}" if marker else "")
        body = listing(client, "", query).json()
        page = [e["path"] for e in body["entries"]]
        seen += page
        if not body["truncated"]:
            assert body["next_marker"] is None
            break
        assert body["next_marker"] == page[-1]
        marker = body["next_marker"]
    assert seen == ["a-z", "a.txt", "a/b", "a/c/d", "ab/x", "b"]


def test_recursive_marker_below_a_directory_is_a_full_path(client):
    for path in RECURSIVE_TREE:
        put_ok(client, path)
    body = listing(client, "a/", "?recursive=true&limit=1").json()
    assert (paths_of_body(body), body["truncated"], body["next_marker"]) == (["a/b"], True, "a/b")
    body = listing(client, "a/", "?recursive=true&limit=1&marker=a%2Fb").json()
    assert (paths_of_body(body), body["truncated"]) == (["a/c/d"], False)


def test_recursive_listing_of_an_empty_store_is_empty(client):
    res = listing(client, "", "?recursive=true")
    assert res.status == 200, res.body
    assert res.json() == {"path": "", "entries": [], "truncated": False, "next_marker": None}


@pytest.mark.parametrize("directory", ["", "d/"])
def test_recursive_listing_with_a_prefix_nothing_starts_with_is_empty(client, directory):
    put_ok(client, "d/x")
    res = listing(client, directory, "?recursive=true&prefix=nothing")
    assert res.status == 200, res.body
    assert res.json() == {"path": directory, "entries": [], "truncated": False, "next_marker": None}


def test_recursive_false_is_one_level(client):
    for path in RECURSIVE_TREE:
        put_ok(client, path)
    assert entry_names(listing(client, "", "?recursive=false")) == entry_names(listing(client))


@pytest.mark.parametrize("value", ["maybe", "yes", "1", "TRUE", ""])
def test_recursive_other_than_true_or_false_is_400(client, value):
    put_ok(client, "x")
    assert_json_error(listing(client, "", f"?recursive={value}"), 400, "bad_request")


def test_recursive_listing_of_missing_directory_is_404(client):
    put_ok(client, "x")
    assert_json_error(listing(client, "nowhere/", "?recursive=true"), 404, "not_found")


@pytest.mark.parametrize("method, target", [
    ("GET", "/v1/objects/?delimiter=/"),
    ("GET", "/v1/objects/?Recursive=true"),
    ("GET", "/v1/objects/obj?prefix=o"),
    ("HEAD", "/v1/objects/obj?recursive=true"),
    ("PUT", "/v1/objects/obj?overwrite=false"),
    ("POST", "/v1/objects/obj?merge=true"),
    ("POST", "/v1/copy?overwrite=false"),
])
def test_unknown_query_parameter_is_400_and_changes_nothing(client, method, target):
    put_ok(client, "obj", b"old", {"X-Object-Meta-Color": "blue"})
    body = None
    headers = {"X-Object-Meta-Color": "red"}
    if method == "PUT":
        body = b"new"
    elif target.startswith("/v1/copy"):
        body = json.dumps({"from": "obj", "to": "copy"}).encode()
        headers = {"Content-Type": "application/json"}
    elif method == "POST":
        body = b""
    res = client.request(method, target, body, headers)
    assert_json_error(res, 400, "bad_request", head=method == "HEAD")
    assert_unchanged(client, "obj", b"old", {"color": "blue"})
    assert_absent(client, "copy")


# -- curl against a live server ---------------------------------------------------


def curl_path() -> str:
    path = shutil.which("curl")
    if path is None:
        if ci_mode():
            pytest.fail("curl is not installed; .ci/run installs it")
        pytest.skip("curl is not installed")
    return path


@pytest.fixture
def live(driver_name, servers):
    """The module's ``blobsvc serve`` for this driver, emptied."""
    server = servers(driver_name)
    api = server.client()
    wipe(api)
    api.close()
    return server


def curl(*args: str | bytes, cwd=None) -> bytes:
    """curl's output; arguments may be bytes (a header of UTF-8, as typed)."""
    done = subprocess.run([curl_path(), "-sS", *args], cwd=cwd, capture_output=True, timeout=60)
    assert done.returncode == 0, f"curl failed ({done.returncode}): {done.stderr[-2000:]!r}"
    return done.stdout


def curl_status(*args: str | bytes, cwd=None) -> str:
    return curl("-o", "/dev/null", "-w", "%{http_code}", *args, cwd=cwd).decode()


def head_lines(output: bytes) -> dict[bytes, bytes]:
    """``curl -I`` output as lower-cased name -> value, values as sent."""
    lines = output.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 200"), lines[0]
    fields = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
    return fields


def test_curl_gets_a_gzip_object_as_stored_and_compressed_decodes_it(live, tmp_path):
    url = f"{live.url}/v1/objects/curl/notes.txt"
    (tmp_path / "notes.txt.gz").write_bytes(GZIPPED)
    assert curl_status("-T", "notes.txt.gz", "-H", "Content-Encoding: gzip",
                       "-H", "Content-Type: text/plain; charset=utf-8", url, cwd=tmp_path) == "201"
    assert curl("-o", "plain.out", "-D", "headers.out", url, cwd=tmp_path) == b""
    assert (tmp_path / "plain.out").read_bytes() == GZIPPED
    assert b"\r\ncontent-encoding: gzip\r\n" in (tmp_path / "headers.out").read_bytes().lower()
    curl("--compressed", "-o", "decoded.out", url, cwd=tmp_path)
    assert (tmp_path / "decoded.out").read_bytes() == ORIGINAL


def test_curl_metadata_put_with_h_comes_back_in_curl_i(live, tmp_path):
    url = f"{live.url}/v1/objects/curl/meta.bin"
    (tmp_path / "meta.bin").write_bytes(b"metadata travels in headers")
    assert curl_status("-T", "meta.bin", "-H", "X-Object-Meta-Color: blue",
                       "-H", "X-Object-Meta-City: Zürich".encode(), "-H", "Content-Language: de-CH",
                       url, cwd=tmp_path) == "201"
    fields = head_lines(curl("-I", url))
    assert fields[b"x-object-meta-color"] == b"blue"
    assert fields[b"x-object-meta-city"] == "Zürich".encode()
    assert fields[b"content-language"] == b"de-CH"
    assert fields[b"content-length"] == b"27"


def test_curl_post_replaces_metadata(live, tmp_path):
    url = f"{live.url}/v1/objects/curl/post.bin"
    requests.put(url, data=b"x", headers={"X-Object-Meta-Color": "blue",
                                          "X-Object-Meta-Size": "L"}, timeout=30)
    assert curl_status("-X", "POST", "-H", "X-Object-Meta-Color: red", url) == "200"
    fields = head_lines(curl("-I", url))
    assert fields[b"x-object-meta-color"] == b"red"
    assert b"x-object-meta-size" not in fields


def test_curl_lists_with_prefix_and_recursive(live):
    for path in ("curl/list/a.txt", "curl/list/a/b", "curl/list/a/c/d", "curl/list/b", "curl/list/über/x"):
        answer = requests.put(f"{live.url}/v1/objects/{quote(path)}", data=b"x", timeout=30)
        assert answer.status_code == 201
    base = f"{live.url}/v1/objects/curl/list/"
    flat = json.loads(curl(base + "?recursive=true&prefix=a"))
    assert [e["path"] for e in flat["entries"]] == ["curl/list/a.txt", "curl/list/a/b", "curl/list/a/c/d"]
    level = json.loads(curl(base + "?prefix=a"))
    assert [(e["name"], e["isdir"]) for e in level["entries"]] == [("a", True), ("a.txt", False)]
    encoded = json.loads(curl("-G", "--data-urlencode", "prefix=üb".encode(), "-d", "recursive=true", base))
    assert [e["path"] for e in encoded["entries"]] == ["curl/list/über/x"]
    page = json.loads(curl(base + "?recursive=true&limit=2"))
    assert (page["truncated"], page["next_marker"]) == (True, "curl/list/a/b")


# -- expiry: after it ---------------------------------------------------------------
# Last in the module: see the module docstring.


def test_expired_object_is_404_everywhere_and_unlisted(client):
    expires_at = soon()
    put_ok(client, "exp1/gone", b"x", {"X-Delete-At": str(expires_at)})
    put_ok(client, "exp1/stays", b"x")
    put_ok(client, "exp1-top", b"x")
    assert post(client, "exp1-top", {"X-Delete-At": str(expires_at)}).status == 200  # set by POST
    assert get(client, "exp1/gone").status == 200
    wait_past(expires_at)
    for path in ("exp1/gone", "exp1-top"):
        assert_json_error(get(client, path), 404, "not_found")
        assert_json_error(head(client, path), 404, head=True)
        assert_json_error(client.request("DELETE", object_url(path)), 404, "not_found")
        assert_json_error(post(client, path, {"X-Object-Meta-A": "1"}), 404, "not_found")
    assert entry_names(listing(client, "exp1/")) == ["stays"]
    assert entry_names(listing(client, "", "?prefix=exp1")) == ["exp1"]
    assert paths_of(listing(client, "exp1/", "?recursive=true")) == ["exp1/stays"]
    assert paths_of(listing(client, "", "?recursive=true&prefix=exp1")) == ["exp1/stays"]


def test_expired_object_is_absent_for_writes_that_need_it_or_replace_it(client):
    expires_at = soon()
    for path in ("exp2/a", "exp2/b", "exp2/c", "exp2/d"):
        put_ok(client, path, b"old", {"X-Delete-At": str(expires_at)})
    put_ok(client, "exp2/keep", b"k")
    wait_past(expires_at)
    res = put(client, "exp2/a", b"new", {"If-None-Match": "*"})
    assert res.status == 201, res.body
    assert res.json()["expires_at"] is None
    assert get(client, "exp2/a").body == b"new"
    for operation in ("/v1/copy", "/v1/move"):
        res = post_json(client, operation, {"from": "exp2/b", "to": "exp2/out"})
        assert_json_error(res, 404, "not_found")
    res = post_json(client, "/v1/cat", {"path": "exp2/out", "chunks": ["exp2/keep", "exp2/c"]})
    assert "exp2/c" in assert_json_error(res, 404, "not_found")["message"]
    assert get(client, "exp2/keep").body == b"k"
    assert_absent(client, "exp2/out")


def test_an_expired_object_leaves_no_directory_behind(client):
    """A directory exists while some object lives below it; an expired one does not."""
    expires_at = soon()
    put_ok(client, "exp3/sub/gone", b"x", {"X-Delete-At": str(expires_at)})
    wait_past(expires_at)
    assert "exp3" not in entry_names(listing(client))
    assert_json_error(listing(client, "exp3/"), 404, "not_found")
    assert_json_error(client.request("DELETE", object_url("exp3")), 404, "not_found")
    res = put(client, "exp3", b"an object where the directory was")
    assert res.status == 201, res.body


def test_bulk_delete_reports_each_outcome_with_a_directory_and_an_expired_object(client):
    expires_at = soon()
    put_ok(client, "bulk/expired", b"x", {"X-Delete-At": str(expires_at)})
    put_ok(client, "bulk/a", b"x")
    put_ok(client, "bulk/dir/inside", b"x")
    wait_past(expires_at)
    paths = ["bulk/a", "bulk/dir", "bulk/missing", "bulk/expired", "bulk/../x", "bulk/a"]
    res = post_json(client, "/v1/delete", {"paths": paths})
    assert res.status == 200, res.body
    answer = res.json()
    assert answer["deleted"] == ["bulk/a"]
    assert answer["not_found"] == ["bulk/missing", "bulk/expired", "bulk/a"]
    assert {e["path"]: e["code"] for e in answer["errors"]} == {
        "bulk/dir": "conflict", "bulk/../x": "invalid_path"}
    assert all(e["message"] for e in answer["errors"])
    assert get(client, "bulk/dir/inside").body == b"x"
    assert entry_names(listing(client, "bulk/")) == ["dir"]

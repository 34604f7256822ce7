"""The HTTP contract of the API document (API.md), checked through two transports.

Every test runs on every (transport x driver): in-process through WebTest
on each driver, and over a real socket against a ``blobsvc serve`` process
(one per driver, shared by the module; the store is emptied before each
test). The assertions are the same; only the client differs. The
``client`` and ``servers`` fixtures live in conftest.py, shared with the
other suites of the API.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
from urllib.parse import quote

import pytest
from api_client import (
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
)
from conftest import MAX_OBJECT_SIZE

# -- objects: PUT ------------------------------------------------------------


def test_put_answers_201_with_object_info(client):
    res = put(client, "a/b.bin", b"x" * 10, {"Content-Type": "text/plain"})
    assert res.status == 201
    assert res.headers["Content-Type"].startswith("application/json")
    info = res.json()
    assert info["path"] == "a/b.bin"
    assert info["name"] == "b.bin"
    assert info["isdir"] is False
    assert info["size"] == 10
    assert isinstance(info["ctime"], (int, float))
    assert isinstance(info["etag"], str) and info["etag"]
    assert info["content_type"] == "text/plain"


def test_put_etag_header_matches_info(client):
    res = put(client, "obj", b"hello")
    assert res.headers["ETag"] == f'"{res.json()["etag"]}"'


def test_put_reports_md5_and_no_sha256_unless_asked(client):
    """SHA-256 costs as much as MD5 again: computed only when the client
    sends X-Checksum-Sha256 (or the server is configured to always)."""
    data = payload(1000)
    info = put_ok(client, "hashed", data)
    assert info["md5"] == hashlib.md5(data).hexdigest()
    assert info["sha256"] is None


def test_put_reports_sha256_when_the_client_sends_one(client):
    data = payload(1000)
    digest = hashlib.sha256(data).hexdigest()
    info = put_ok(client, "hashed", data, {"X-Checksum-Sha256": digest.upper()})
    assert info["md5"] == hashlib.md5(data).hexdigest()
    assert info["sha256"] == digest


def test_put_replaces_previous_version(client):
    put_ok(client, "obj", b"first")
    put_ok(client, "obj", b"second version")
    assert get(client, "obj").body == b"second version"


def test_put_implies_missing_parent_directories(client):
    put_ok(client, "p/q/r/obj", b"deep")
    assert entry_names(listing(client, "p/q/")) == ["r"]
    assert get(client, "p/q/r/obj").body == b"deep"


def test_put_chunked_body_is_stored_byte_exact(client):
    data = payload(700_000, seed=3)
    pieces = [data[i:i + 65536] for i in range(0, len(data), 65536)]
    res = client.request("PUT", object_url("chunked.bin"), iter(pieces))
    assert res.status == 201, res.body
    assert res.json()["size"] == len(data)
    assert get(client, "chunked.bin").body == data


def test_put_empty_object_round_trips(client):
    assert put_ok(client, "empty", b"")["size"] == 0
    res = get(client, "empty")
    assert res.status == 200
    assert res.body == b""
    assert res.headers["Content-Length"] == "0"


def test_put_non_ascii_name_round_trips(client):
    name = "dir/grüße €.txt"
    res = put(client, quote(name), b"unicode")
    assert res.status == 201, res.body
    assert res.json()["path"] == name
    assert get(client, quote(name)).body == b"unicode"
    assert entry_names(listing(client, "dir/")) == ["grüße €.txt"]


def test_put_name_with_encoded_percent_is_decoded_once(client):
    # "%252F" is "%2F" after the one decoding the API promises: the name
    # has a literal "%2F" in it, it is not a directory separator.
    res = put(client, "pct%252Fname", b"once")
    assert res.status == 201, res.body
    assert res.json()["path"] == "pct%2Fname"
    assert entry_names(listing(client)) == ["pct%2Fname"]


def test_put_over_directory_is_409(client):
    put_ok(client, "d/inside")
    assert_json_error(put(client, "d"), 409, "conflict")
    assert get(client, "d/inside").status == 200


def test_put_below_object_is_409(client):
    put_ok(client, "f")
    assert_json_error(put(client, "f/below"), 409, "conflict")
    assert get(client, "f").body == b"data"


# -- objects: GET / HEAD -----------------------------------------------------


def test_get_returns_bytes_exactly(client):
    data = payload(1_500_000, seed=1)  # more than one read/stream chunk
    put_ok(client, "big.bin", data)
    res = get(client, "big.bin")
    assert res.status == 200
    assert res.body == data


def test_get_sends_object_headers(client):
    info = put_ok(client, "doc.txt", b"hello", {"Content-Type": "text/plain; charset=utf-8"})
    res = get(client, "doc.txt")
    assert res.headers["Content-Length"] == "5"
    assert res.headers["ETag"] == f'"{info["etag"]}"'
    assert res.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert res.headers["Accept-Ranges"] == "bytes"
    modified = email.utils.parsedate_to_datetime(res.headers["Last-Modified"])
    assert abs(modified.timestamp() - info["ctime"]) < 1.0


def test_get_content_type_defaults_to_octet_stream(client):
    put_ok(client, "untyped", b"\x00\x01")
    assert get(client, "untyped").headers["Content-Type"] == "application/octet-stream"


def test_head_sends_get_headers_without_body(client):
    put_ok(client, "h.txt", b"0123456789", {"Content-Type": "text/csv"})
    got, head = get(client, "h.txt"), client.request("HEAD", object_url("h.txt"))
    assert head.status == 200
    assert head.body == b""
    for name in ("Content-Length", "ETag", "Last-Modified", "Content-Type", "Accept-Ranges"):
        assert head.headers[name] == got.headers[name], name


def test_get_missing_object_is_404(client):
    assert_json_error(get(client, "nothing/here"), 404, "not_found")


def test_head_missing_object_is_404_without_body(client):
    res = client.request("HEAD", object_url("nothing"))
    assert_json_error(res, 404, head=True)


def test_get_directory_as_object_is_404(client):
    put_ok(client, "dir/obj")
    assert_json_error(get(client, "dir"), 404, "not_found")


def test_get_range_answers_206_with_content_range(client):
    data = payload(1000, seed=2)
    put_ok(client, "r.bin", data)
    res = get(client, "r.bin", {"Range": "bytes=100-199"})
    assert res.status == 206
    assert res.body == data[100:200]
    assert res.headers["Content-Range"] == "bytes 100-199/1000"
    assert res.headers["Content-Length"] == "100"


def test_get_unsatisfiable_range_is_416(client):
    put_ok(client, "r.bin", b"0123456789")
    res = get(client, "r.bin", {"Range": "bytes=50-60"})
    assert_json_error(res, 416, "range_not_satisfiable")
    assert res.headers["Content-Range"] == "bytes */10"


def test_get_if_none_match_current_etag_is_304(client):
    info = put_ok(client, "c", b"cached")
    res = get(client, "c", {"If-None-Match": f'"{info["etag"]}"'})
    assert res.status == 304
    assert res.body == b""


def test_put_if_none_match_star_on_existing_object_is_412(client):
    put_ok(client, "once", b"first")
    res = put(client, "once", b"second", {"If-None-Match": "*"})
    assert_json_error(res, 412, "precondition_failed")
    assert get(client, "once").body == b"first"


def test_delete_if_match_other_etag_is_412(client):
    put_ok(client, "kept", b"v1")
    res = client.request("DELETE", object_url("kept"), None, {"If-Match": '"0123abc"'})
    assert_json_error(res, 412, "precondition_failed")
    assert get(client, "kept").status == 200


# -- objects: DELETE ---------------------------------------------------------


def test_delete_answers_204_then_get_is_404(client):
    put_ok(client, "gone")
    res = client.request("DELETE", object_url("gone"))
    assert res.status == 204
    assert res.body == b""
    assert_absent(client, "gone")


def test_delete_204_sends_no_content_type(client):
    # A 204 has no content, so nothing to type (CherryPy's default is text/html).
    put_ok(client, "gone")
    res = client.request("DELETE", object_url("gone"))
    assert res.status == 204
    assert "Content-Type" not in res.headers, res.headers["Content-Type"]


def test_delete_missing_object_is_404(client):
    assert_json_error(client.request("DELETE", object_url("never")), 404, "not_found")


def test_delete_non_empty_directory_is_409(client):
    put_ok(client, "full/obj")
    assert_json_error(client.request("DELETE", object_url("full")), 409, "conflict")
    assert get(client, "full/obj").status == 200


def test_empty_directory_vanishes_after_delete(client):
    put_ok(client, "tmpdir/sub/obj")
    assert client.request("DELETE", object_url("tmpdir/sub/obj")).status == 204
    assert entry_names(listing(client)) == []
    assert_json_error(listing(client, "tmpdir/"), 404, "not_found")


# -- upload checks -----------------------------------------------------------


def md5_header(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_put_with_matching_content_md5_is_stored(client):
    res = put(client, "md5ok", b"payload", {"Content-MD5": md5_header(b"payload")})
    assert res.status == 201, res.body


def test_put_with_wrong_content_md5_is_400_and_keeps_old_object(client):
    put_ok(client, "obj", b"old")
    res = put(client, "obj", b"new", {"Content-MD5": md5_header(b"other")})
    assert_json_error(res, 400, "checksum_mismatch")
    assert get(client, "obj").body == b"old"


def test_put_with_wrong_content_md5_creates_nothing(client):
    res = put(client, "newobj", b"new", {"Content-MD5": md5_header(b"other")})
    assert_json_error(res, 400, "checksum_mismatch")
    assert_absent(client, "newobj")
    assert entry_names(listing(client)) == []


def test_put_with_matching_sha256_is_stored(client):
    res = put(client, "shaok", b"payload",
              {"X-Checksum-Sha256": hashlib.sha256(b"payload").hexdigest()})
    assert res.status == 201, res.body


def test_put_with_wrong_sha256_is_400_and_keeps_old_object(client):
    put_ok(client, "obj", b"old")
    res = put(client, "obj", b"new", {"X-Checksum-Sha256": hashlib.sha256(b"x").hexdigest()})
    assert_json_error(res, 400, "checksum_mismatch")
    assert get(client, "obj").body == b"old"


def test_put_with_malformed_content_md5_is_400(client):
    assert_json_error(put(client, "obj", b"x", {"Content-MD5": "not base64!"}), 400, "bad_request")
    assert_absent(client, "obj")


def test_put_with_malformed_sha256_is_400(client):
    assert_json_error(put(client, "obj", b"x", {"X-Checksum-Sha256": "abc"}), 400, "bad_request")
    assert_absent(client, "obj")


def test_put_without_length_and_not_chunked_is_411(client):
    res = client.request("PUT", object_url("nolength"), None)
    assert_json_error(res, 411)
    assert_absent(client, "nolength")


def test_put_announcing_more_than_max_object_size_is_413(client):
    res = client.request("PUT", object_url("huge"), None,
                         {"Content-Length": str(MAX_OBJECT_SIZE + 1)})
    assert_json_error(res, 413, "too_large")
    assert_absent(client, "huge")


def test_put_chunked_over_max_object_size_is_413(client):
    piece = b"z" * 65536
    pieces = [piece] * (MAX_OBJECT_SIZE // len(piece) + 1)
    res = client.request("PUT", object_url("huge"), iter(pieces))
    assert_json_error(res, 413, "too_large")
    assert_absent(client, "huge")


def test_put_of_exactly_max_object_size_is_stored(client):
    assert put_ok(client, "limit", b"m" * MAX_OBJECT_SIZE)["size"] == MAX_OBJECT_SIZE


# -- listing -------------------------------------------------------------------


def test_list_empty_root(client):
    res = listing(client)
    assert res.status == 200
    assert res.headers["Content-Type"].startswith("application/json")
    assert res.json() == {"path": "", "entries": [], "truncated": False, "next_marker": None}


def test_list_root_shows_objects_and_directories_sorted(client):
    for path in ("zeta", "alpha/x", "mid", "beta/y/z", "Upper"):
        put_ok(client, path)
    res = listing(client)
    entries = res.json()["entries"]
    assert [e["name"] for e in entries] == ["Upper", "alpha", "beta", "mid", "zeta"]
    assert {e["name"]: e["isdir"] for e in entries} == {
        "Upper": False, "alpha": True, "beta": True, "mid": False, "zeta": False}
    assert res.json()["truncated"] is False
    assert res.json()["next_marker"] is None


def test_list_directory_shows_one_level(client):
    for path in ("dir/b", "dir/a", "dir/sub/deep", "other"):
        put_ok(client, path)
    res = listing(client, "dir/")
    assert res.json()["path"] == "dir/"
    assert [(e["path"], e["isdir"]) for e in res.json()["entries"]] == [
        ("dir/a", False), ("dir/b", False), ("dir/sub", True)]


def test_list_entries_carry_object_info(client):
    info = put_ok(client, "dir/file.txt", b"12345", {"Content-Type": "text/plain"})
    (entry,) = listing(client, "dir/").json()["entries"]
    assert entry == {**{key: info[key] for key in
                        ("path", "name", "isdir", "size", "ctime", "etag", "content_type")},
                     "metadata": None, "headers": None,  # listings carry no metadata
                     "expires_at": None}


def test_list_directory_entry_info(client):
    put_ok(client, "d/sub/obj")
    (entry,) = listing(client, "d/").json()["entries"]
    assert entry["path"] == "d/sub"
    assert entry["name"] == "sub"
    assert entry["isdir"] is True


def test_list_root_hides_internal_names(client):
    put_ok(client, "visible")
    assert entry_names(listing(client)) == ["visible"]


def test_list_without_trailing_slash_on_prefix_is_root(client):
    put_ok(client, "x")
    res = client.request("GET", "/v1/objects")
    assert entry_names(res) == ["x"]


def test_list_paginates_with_limit_and_marker(client):
    names = [f"n{i:02d}" for i in range(7)]
    for name in names:
        put_ok(client, f"pages/{name}")
    seen, marker, pages = [], None, 0
    for _ in range(10):  # bounded walk
        query = "?limit=3" + (f"&marker={quote(marker)}" if marker else "")
        body = listing(client, "pages/", query).json()
        pages += 1
        page = [e["name"] for e in body["entries"]]
        seen += page
        if not body["truncated"]:
            assert body["next_marker"] is None
            break
        assert len(page) == 3
        assert body["next_marker"] == page[-1]
        marker = body["next_marker"]
    assert seen == names
    assert pages == 3


def test_list_marker_returns_names_after_it(client):
    for name in ("a", "b", "c", "d"):
        put_ok(client, name)
    assert entry_names(listing(client, "", "?marker=b")) == ["c", "d"]


def test_list_limit_equal_to_count_is_not_truncated(client):
    for name in ("a", "b"):
        put_ok(client, name)
    body = listing(client, "", "?limit=2").json()
    assert [e["name"] for e in body["entries"]] == ["a", "b"]
    assert body["truncated"] is False
    assert body["next_marker"] is None


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "10001", "1.5", ""])
def test_list_bad_limit_is_400(client, limit):
    assert_json_error(listing(client, "", f"?limit={limit}"), 400, "bad_request")


def test_list_undecodable_marker_is_400(client):
    assert_json_error(listing(client, "", "?marker=%ff"), 400, "bad_request")


@pytest.mark.parametrize("limit", ["%C2%B2", "%D9%A3"])  # superscript two, Arabic-Indic three
def test_list_limit_of_non_ascii_digits_is_400(client, limit):
    assert_json_error(listing(client, "", f"?limit={limit}"), 400, "bad_request")


def test_head_listing_is_200_without_body(client):
    put_ok(client, "x")
    res = client.request("HEAD", object_url(""))
    assert res.status == 200
    assert res.body == b""


def test_list_missing_directory_is_404(client):
    assert_json_error(listing(client, "nowhere/"), 404, "not_found")


def test_list_object_as_directory_is_404(client):
    put_ok(client, "plain")
    assert_json_error(listing(client, "plain/"), 404, "not_found")


@pytest.mark.parametrize("directory", ["%2e%2e/", "a//", ".blobsvc/", ".blobsvc/tmp/"])
def test_list_invalid_directory_is_400(client, directory):
    assert_json_error(listing(client, directory), 400, "invalid_path")


# -- move ----------------------------------------------------------------------


def test_move_answers_201_with_info_of_target(client):
    data = payload(3000, seed=4)
    put_ok(client, "src/a.bin", data, {"Content-Type": "image/png"})
    res = post_json(client, "/v1/move", {"from": "src/a.bin", "to": "dst/b.bin"})
    assert res.status == 201, res.body
    info = res.json()
    assert (info["path"], info["name"], info["isdir"], info["size"]) == (
        "dst/b.bin", "b.bin", False, len(data))
    assert info["content_type"] == "image/png"
    assert get(client, "dst/b.bin").body == data


def test_move_removes_source(client):
    put_ok(client, "src/a")
    assert post_json(client, "/v1/move", {"from": "src/a", "to": "b"}).status == 201
    assert_absent(client, "src/a")
    assert entry_names(listing(client)) == ["b"]


def test_move_replaces_existing_target(client):
    put_ok(client, "a", b"new")
    put_ok(client, "b", b"old")
    assert post_json(client, "/v1/move", {"from": "a", "to": "b"}).status == 201
    assert get(client, "b").body == b"new"


def test_move_missing_source_is_404(client):
    res = post_json(client, "/v1/move", {"from": "absent", "to": "b"})
    assert_json_error(res, 404, "not_found")
    assert_absent(client, "b")


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"text"'])
def test_move_bad_json_is_400(client, body):
    assert_json_error(post_json(client, "/v1/move", body), 400, "bad_request")


@pytest.mark.parametrize("document", [{"from": "a"}, {"to": "b"}, {"from": 1, "to": "b"}])
def test_move_missing_or_non_string_field_is_400(client, document):
    put_ok(client, "a")
    assert_json_error(post_json(client, "/v1/move", document), 400)
    assert get(client, "a").status == 200


@pytest.mark.parametrize("source, target", [
    ("a", "../b"), ("a", "x//y"), ("a", ".blobsvc/tmp/x"), ("a", ""),
    ("../a", "b"), ("a\u0000", "b"), ("a", "/b"),
])
def test_move_invalid_path_is_400(client, source, target):
    put_ok(client, "a")
    res = post_json(client, "/v1/move", {"from": source, "to": target})
    assert_json_error(res, 400, "invalid_path")
    assert get(client, "a").body == b"data"


def test_move_onto_directory_is_409(client):
    put_ok(client, "a")
    put_ok(client, "d/x")
    assert_json_error(post_json(client, "/v1/move", {"from": "a", "to": "d"}), 409, "conflict")
    assert get(client, "a").status == 200


# -- cat -----------------------------------------------------------------------


def test_cat_answers_201_with_exact_concatenation(client):
    parts = [payload(300_000, seed=s) for s in range(3)]
    for i, part in enumerate(parts):
        put_ok(client, f"up/part{i}", part)
    res = post_json(client, "/v1/cat", {"path": "out/whole", "chunks": [f"up/part{i}" for i in range(3)]})
    assert res.status == 201, res.body
    info = res.json()
    assert (info["path"], info["name"], info["isdir"]) == ("out/whole", "whole", False)
    assert info["size"] == sum(map(len, parts))
    assert get(client, "out/whole").body == b"".join(parts)


def test_cat_deletes_chunks(client):
    for i in range(3):
        put_ok(client, f"up/part{i}")
    res = post_json(client, "/v1/cat", {"path": "whole", "chunks": ["up/part0", "up/part1", "up/part2"]})
    assert res.status == 201, res.body
    for i in range(3):
        assert_absent(client, f"up/part{i}")
    assert entry_names(listing(client)) == ["whole"]


def test_cat_missing_chunks_is_404_naming_every_one(client):
    put_ok(client, "c1", b"one")
    put_ok(client, "c3", b"three")
    res = post_json(client, "/v1/cat", {"path": "out", "chunks": ["c1", "gone2", "c3", "gone4"]})
    error = assert_json_error(res, 404, "not_found")
    assert "gone2" in error["message"] and "gone4" in error["message"]
    assert "c1" not in error["message"] and "c3" not in error["message"]


def test_cat_missing_chunks_creates_and_deletes_nothing(client):
    put_ok(client, "c1", b"one")
    put_ok(client, "c3", b"three")
    post_json(client, "/v1/cat", {"path": "out", "chunks": ["c1", "gone2", "c3"]})
    assert_absent(client, "out")
    assert get(client, "c1").body == b"one"
    assert get(client, "c3").body == b"three"


@pytest.mark.parametrize("document", [
    {"path": "out", "chunks": []}, {"path": "out"}, {"chunks": ["c1"]},
    {"path": "out", "chunks": "c1"}, {"path": "out", "chunks": [1]},
])
def test_cat_bad_document_is_400(client, document):
    put_ok(client, "c1")
    assert_json_error(post_json(client, "/v1/cat", document), 400)
    assert get(client, "c1").status == 200


def test_cat_bad_json_is_400(client):
    assert_json_error(post_json(client, "/v1/cat", b"{"), 400, "bad_request")


@pytest.mark.parametrize("document", [
    {"path": "../out", "chunks": ["c1"]}, {"path": "out", "chunks": ["c1", "a//b"]},
    {"path": ".blobsvc/out", "chunks": ["c1"]},
])
def test_cat_invalid_path_is_400(client, document):
    put_ok(client, "c1")
    assert_json_error(post_json(client, "/v1/cat", document), 400, "invalid_path")
    assert get(client, "c1").status == 200


# -- invalid paths -------------------------------------------------------------

INVALID_PATHS = {
    "empty-segment": "a//b",
    "dotdot": "a/../b",
    "dotdot-leading": "../b",
    "dotdot-trailing": "a/..",
    "dot": "a/./b",
    "dotdot-encoded": "a/%2e%2e/b",
    "dotdot-encoded-upper": "%2E%2E/b",
    "dotdot-encoded-mixed": ".%2e/b",
    "traversal-encoded-slashes": "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "nul": "a%00b",
    "control": "a%01b",
    "newline": "a%0ab",
    "delete-char": "a%7fb",
    "backslash": "a%5c..%5cb",
    "not-utf8": "a%ffb",
    "long-segment": "x" * 256,
    "long-path": "/".join(["y" * 250] * 5),
    "reserved": ".blobsvc/tmp/x",
    "reserved-alone": ".blobsvc",
    "reserved-encoded": "%2Eblobsvc/tmp/x",
    "reserved-encoded-slash": ".blobsvc%2Ftmp%2Fx",
}


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
@pytest.mark.parametrize("path", list(INVALID_PATHS.values()), ids=list(INVALID_PATHS))
def test_invalid_path_is_400_invalid_path(client, method, path):
    body = b"data" if method == "PUT" else None
    res = client.request(method, object_url(path), body)
    assert_json_error(res, 400, "invalid_path", head=method == "HEAD")


@pytest.mark.parametrize("path", list(INVALID_PATHS.values()), ids=list(INVALID_PATHS))
def test_put_to_invalid_path_stores_nothing(client, path):
    client.request("PUT", object_url(path), b"data")
    assert entry_names(listing(client)) == []


def test_segment_of_255_bytes_is_valid(client):
    name = "s" * 255
    assert put_ok(client, name)["name"] == name


# -- routes and errors ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1", "/v1/other", "/v1/objectsX", "/healthz/x"])
def test_unknown_route_is_404_json(client, path):
    assert_json_error(client.request("GET", path), 404, "not_found")


@pytest.mark.parametrize("path", ["/nope", "/v2/objects/a"])
def test_other_first_segments_are_s3_buckets_answered_in_xml(client, path):
    """The S3 API shares the port: a path outside the native ones names a bucket."""
    res = client.request("GET", path)
    assert res.status in (400, 404)
    assert res.headers["Content-Type"] == "application/xml"
    assert b"<Code>NoSuchBucket</Code>" in res.body or b"<Code>InvalidBucketName</Code>" in res.body


@pytest.mark.parametrize("method, path, allowed", [
    ("DELETE", "/healthz", {"GET", "HEAD"}),
    ("POST", "/readyz", {"GET", "HEAD"}),
    ("GET", "/v1/move", {"POST"}),
    ("PUT", "/v1/cat", {"POST"}),
    ("PATCH", "/v1/objects/a", {"GET", "HEAD", "PUT", "POST", "DELETE"}),
    ("POST", "/v1/objects/", {"GET", "HEAD"}),
    ("DELETE", "/v1/objects/", {"GET", "HEAD"}),
])
def test_wrong_method_is_405_json_with_allow(client, method, path, allowed):
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    res = client.request(method, path, body)
    assert_json_error(res, 405, "method_not_allowed")
    assert {m.strip() for m in res.headers["Allow"].split(",")} == allowed


# -- service endpoints ---------------------------------------------------------


def test_healthz_is_200_json(client):
    res = client.request("GET", "/healthz")
    assert res.status == 200
    assert res.headers["Content-Type"].startswith("application/json")
    assert res.json() == {"status": "ok"}


def test_readyz_is_200_json(client):
    res = client.request("GET", "/readyz")
    assert res.status == 200
    assert res.headers["Content-Type"].startswith("application/json")
    assert isinstance(res.json(), dict)


def test_openapi_is_json(client):
    res = client.request("GET", "/openapi.json")
    assert res.status == 200
    assert res.headers["Content-Type"].startswith("application/json")
    assert res.json()["openapi"].startswith("3.")


def test_openapi_describes_every_endpoint(client):
    documented = set(client.request("GET", "/openapi.json").json()["paths"])
    for path in ("/v1/objects/{path}", "/v1/move", "/v1/cat", "/healthz", "/readyz", "/metrics"):
        assert path in documented, f"{path} missing from /openapi.json"


def test_metrics_is_prometheus_text(client):
    client.request("GET", "/healthz")
    res = client.request("GET", "/metrics")
    assert res.status == 200
    assert res.headers["Content-Type"].startswith("text/plain")
    assert b"# TYPE " in res.body


# -- POST /v1/delete -------------------------------------------------------------

def test_bulk_delete_reports_every_path_and_deletes_the_rest(client):
    put_ok(client, "bulk/a")
    put_ok(client, "bulk/b/c")
    put_ok(client, "bulk/d/e")
    alone = client.request("DELETE", object_url("bulk/d"))  # a non-empty directory
    paths = ["bulk/a", "bulk/missing", "bulk/b/c", "bulk/../x", "bulk/d", "bulk/a"]
    res = post_json(client, "/v1/delete", {"paths": paths})
    assert res.status == 200, res.body
    answer = res.json()
    assert answer["deleted"] == ["bulk/a", "bulk/b/c"]
    assert answer["not_found"] == ["bulk/missing", "bulk/a"]
    assert {e["path"]: e["code"] for e in answer["errors"]} == {
        "bulk/../x": "invalid_path", "bulk/d": alone.json()["error"]["code"]}
    assert get(client, "bulk/a").status == 404 and get(client, "bulk/b/c").status == 404
    assert get(client, "bulk/d/e").status == 200


@pytest.mark.parametrize("document", [
    {}, {"paths": []}, {"paths": "bulk/keep"}, {"paths": [1]}, {"paths": ["bulk/keep"] * 1001},
    b"not json"], ids=["no paths", "empty", "a string", "not strings", "too many", "not json"])
def test_a_malformed_bulk_delete_is_400_and_deletes_nothing(client, document):
    put_ok(client, "bulk/keep")
    res = post_json(client, "/v1/delete", document)
    assert_json_error(res, 400)
    assert get(client, "bulk/keep").status == 200

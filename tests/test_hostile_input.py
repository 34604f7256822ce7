"""Hostile input over a raw socket: paths, headers and JSON bodies meant to break out.

Every request is written byte for byte (``live_server.request_bytes``), so
nothing is normalised on the client side: ``..``, ``%2e%2e``, ``//``,
backslashes and raw control bytes reach the server exactly as given.

The server (filesystem driver) has its root at ``BASE/data``; next to it,
``BASE/outside/sentinel.txt`` holds a unique token, and symbolic links
planted directly on disk inside the root point at it, at its directory, by
relative and absolute paths, and at themselves. After every request the
test checks that:

* the answer is the expected 4xx with a JSON error body (or, where RFC 9110
  says to ignore a header, such as a garbage Range or a bad date, the
  normal 2xx);
* no answer contains the sentinel's token (nothing outside the root was read);
* the sentinel's bytes and mtime are unchanged, no file appeared, changed or
  vanished anywhere under BASE outside the root, nor next to BASE;
* for refused requests, nothing changed inside the root either;
* the service keeps serving (a normal GET right after).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from live_server import GroupServer, filesystem_config, raw_exchange, request_bytes

TOKEN = f"SENTINEL-{uuid.uuid4().hex}"
NORMAL = b"normal object, must survive everything\n"
USER, PASSWORD = "alice", "correct horse"
BIG_DIGITS = "9" * 5000  # beyond Python's 4300-digit int() limit


@dataclass
class Env:
    base: Path
    root: Path
    sentinel: Path
    server: GroupServer

    @property
    def port(self) -> int:
        return self.server.port

    def send(self, data: bytes, method: str = "GET"):
        return raw_exchange("127.0.0.1", self.port, data, method=method)


def _plant(base: Path) -> tuple[Path, Path]:
    root, outside = base / "data", base / "outside"
    (outside / "dir").mkdir(parents=True)
    sentinel = outside / "sentinel.txt"
    sentinel.write_text(TOKEN + "\n")
    (outside / "dir" / "sentinel.txt").write_text(TOKEN + " in dir\n")
    (root / "sub").mkdir(parents=True)
    (root / "link_file").symlink_to("../outside/sentinel.txt")
    (root / "link_abs").symlink_to(sentinel)
    (root / "link_dir").symlink_to("../outside")
    (root / "sub" / "inner_link").symlink_to("../../outside")
    (root / "sub" / "plain.txt").write_text("a regular file in sub/\n")
    (root / "loop").symlink_to("loop")
    return root, sentinel


def _start(base: Path, auth: dict | None = None) -> Env:
    root, sentinel = _plant(base)
    config = filesystem_config(root, workers=2, max_object_size=64 * 1024 * 1024)
    if auth is not None:
        config["auth"] = auth
    server = GroupServer(base / "server", config)
    server.start()
    env = Env(base, root, sentinel, server)
    headers = _auth_headers() if auth is not None else {}
    res = env.send(request_bytes("PUT", "/v1/objects/ok/normal.bin", headers, NORMAL))
    assert res.status == 201, res.describe()
    return env


def _auth_headers() -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = _start(tmp_path_factory.mktemp("hostile"))
    yield env
    env.server.stop()


@pytest.fixture(scope="module")
def auth_env(tmp_path_factory):
    env = _start(tmp_path_factory.mktemp("hostile-auth"), auth={
        "anonymous": "none",
        "users": {USER: {"password": PASSWORD, "access": "write"}},
        "tokens": [{"name": "ci", "token": "t0ken-for-ci-0123", "access": "read"}],
        "signing_key": "a-signing-key-of-some-length-0123456789",
    })
    yield env
    env.server.stop()


# -- the checks ----------------------------------------------------------------


def _tree(top: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple]:
    """path -> (kind, size, mtime_ns, link target) for everything below ``top``."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skip]
        for name in dirnames + filenames:
            path = here / name
            if path in skip:
                continue
            st = path.lstat()
            target = os.readlink(path) if path.is_symlink() else None
            found[str(path.relative_to(top))] = (st.st_mode >> 12, st.st_size, st.st_mtime_ns, target)
    return found


@dataclass
class State:
    outside: dict
    neighbours: list
    root: dict
    temp_files: list
    sentinel: tuple = field(default=())


def _state(env: Env) -> State:
    logs = (env.server.stderr_path, env.server.stdout_path)
    return State(
        outside=_tree(env.base, skip=(env.root, *logs)),
        neighbours=sorted(os.listdir(env.base.parent)),
        # Lock files appear lazily; a discarded upload creates and removes a
        # temp file, which touches the temp directory's mtime: compare its content.
        root=_tree(env.root, skip=(env.root / ".blobsvc" / "locks", env.root / ".blobsvc" / "tmp")),
        temp_files=sorted(os.listdir(env.root / ".blobsvc" / "tmp")),
        sentinel=(env.sentinel.read_bytes(), env.sentinel.stat().st_mtime_ns),
    )


def _assert_service_serves(env: Env, headers: dict | None = None) -> None:
    res = env.send(request_bytes("GET", "/v1/objects/ok/normal.bin", headers))
    assert (res.status, res.body) == (200, NORMAL), f"the service stopped serving: {res.describe()}"


def _assert_json_error(res, method: str, code: str | None = None) -> None:
    content_type = res.headers.get("Content-Type", "")
    assert content_type.startswith("application/json"), \
        f"error answer is not JSON ({content_type!r}): {res.describe()}"
    if method == "HEAD":
        return
    try:
        error = json.loads(res.body)["error"]
    except (ValueError, KeyError, TypeError):
        pytest.fail(f"error body is not the JSON error document: {res.describe()}")
    assert error["status"] == res.status, res.describe()
    if code is not None:
        assert error["code"] == code, res.describe()


def exchange(env: Env, data: bytes, method: str, expect: set[int], code: str | None = None,
             root_may_change: bool = False, auth: dict | None = None):
    """Send one hostile request and check everything the module docstring promises."""
    before = _state(env)
    res = env.send(data, method=method)
    after = _state(env)
    assert TOKEN.encode() not in res.body, f"the sentinel leaked: {res.describe()}"
    assert res.status in expect, f"expected {sorted(expect)}, got {res.describe()}"
    if res.status >= 400:
        _assert_json_error(res, method, code)
    assert after.sentinel == before.sentinel, "the sentinel outside the root was modified"
    assert after.outside == before.outside, "files outside the root changed: " + _diff(before.outside,
                                                                                        after.outside)
    assert after.neighbours == before.neighbours, "files appeared next to the test's base directory"
    assert after.temp_files == [], f"temporary files left: {after.temp_files}"
    if not root_may_change:
        assert after.root == before.root, "a refused request changed the root: " + _diff(before.root,
                                                                                          after.root)
    _assert_service_serves(env, auth)
    return res


def _diff(before: dict, after: dict) -> str:
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return ", ".join(changed[:20])


# -- paths ---------------------------------------------------------------------

#: Object paths after /v1/objects/, exactly as sent; all must be 400 invalid_path.
BAD_PATHS = {
    "dotdot-raw": "../outside/sentinel.txt",
    "dotdot-deep": "a/../../outside/sentinel.txt",
    "dotdot-alone": "..",
    "dotdot-last": "ok/..",
    "dot-segment": "./ok/normal.bin",
    "dotdot-pct-lower": "%2e%2e/outside/sentinel.txt",
    "dotdot-pct-upper-lower": "%2E%2e/outside/sentinel.txt",
    "dotdot-pct-half": ".%2e/outside/sentinel.txt",
    "dotdot-pct-other-half": "%2e./outside/sentinel.txt",
    "dotdot-encoded-slashes": "..%2foutside%2fsentinel.txt",
    "dotdot-all-encoded": "%2e%2e%2f%2e%2e%2foutside%2fsentinel.txt",
    "overlong-utf8-dots": "%c0%ae%c0%ae/outside/sentinel.txt",
    "overlong-utf8-3-byte-dots": "%e0%80%ae%e0%80%ae/outside/sentinel.txt",
    "overlong-utf8-slash": "..%c0%afoutside%c0%afsentinel.txt",
    "invalid-utf8": "%ff%fe",
    "utf16-surrogate": "%ed%a0%80",
    "backslash-raw": "..\\outside\\sentinel.txt",
    "backslash-encoded": "..%5coutside%5csentinel.txt",
    "backslash-in-name": "ok%5cnormal.bin",
    "absolute-double-slash": "/etc/passwd",
    "absolute-encoded": "%2fetc%2fpasswd",
    "empty-segment": "ok//normal.bin",
    "nul-encoded": "ok/normal.bin%00.txt",
    "nul-alone": "%00",
    "newline": "a%0ab",
    "crlf-header-injection": "a%0d%0aX-Injected:%20yes",
    "escape-char": "a%1bb",
    "del-char": "a%7fb",
    "tab": "a%09b",
    "segment-256-bytes": "a" * 256,
    "segment-256-bytes-multibyte": "%c3%a9" * 128,
    "path-1026-bytes": "/".join(["b" * 255] * 4) + "/cc",
    "reserved-prefix": ".blobsvc",
    "reserved-tmp": ".blobsvc/tmp/x",
    "reserved-locks": ".blobsvc/locks/00",
    "reserved-encoded-dot": "%2eblobsvc/tmp/x",
    "reserved-encoded-slash": ".blobsvc%2ftmp%2fx",
}

#: Raw bytes in the request target (no percent-encoding at all).
RAW_BAD_TARGETS = {
    "raw-nul": b"/v1/objects/a\x00b",
    "raw-control": b"/v1/objects/a\x01b",
    "raw-escape": b"/v1/objects/a\x1b[31mb",
    "raw-del": b"/v1/objects/a\x7fb",
    "raw-high-bytes-not-utf8": b"/v1/objects/a\xffb",
    "raw-overlong-dots": b"/v1/objects/\xc0\xae\xc0\xae/outside/sentinel.txt",
}

METHODS = ["GET", "HEAD", "PUT", "DELETE"]


def _object_request(method: str, target: bytes | str) -> bytes:
    body = f"EVIL {TOKEN[::-1]}".encode() if method == "PUT" else b""
    return request_bytes(method, target, body=body)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", BAD_PATHS.values(), ids=BAD_PATHS.keys())
def test_bad_object_path_is_400_invalid_path_and_stays_inside_root(env, path, method):
    exchange(env, _object_request(method, "/v1/objects/" + path), method, {400}, "invalid_path")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("target", RAW_BAD_TARGETS.values(), ids=RAW_BAD_TARGETS.keys())
def test_raw_bytes_in_target_are_refused_with_json(env, target, method):
    exchange(env, _object_request(method, target), method, {400}, None)


@pytest.mark.parametrize("path", ["../", "%2e%2e/", "ok/../", "%2e%2e%2f", ".blobsvc/", ".blobsvc/tmp/",
                                  "ok//", "%c0%ae%c0%ae/", "a%00/", "..%5c/"],
                         ids=["dotdot", "dotdot-encoded", "dotdot-last", "dotdot-encoded-slash",
                              "reserved", "reserved-tmp", "empty-segment", "overlong-utf8", "nul",
                              "backslash"])
def test_bad_listing_path_is_400_invalid_path(env, path):
    exchange(env, request_bytes("GET", "/v1/objects/" + path), "GET", {400}, "invalid_path")


def test_absolute_form_target_with_dotdot_is_400(env):
    target = f"http://127.0.0.1:{env.port}/v1/objects/../outside/sentinel.txt"
    exchange(env, request_bytes("GET", target), "GET", {400}, "invalid_path")


def test_dotdot_before_the_objects_prefix_is_an_unknown_route(env):
    exchange(env, request_bytes("GET", "/v1/objects/../../outside/sentinel.txt"), "GET", {400, 404})
    exchange(env, request_bytes("GET", "/v1/../../outside/sentinel.txt"), "GET", {404}, "not_found")


#: Names that look like traversal but are valid once decoded exactly once:
#: they must be stored as that literal name, inside the root.
LITERAL_NAMES = {
    "double-encoded-dotdot": ("%252e%252e", "%2e%2e"),
    "double-encoded-traversal": ("%252e%252e%252f%252e%252e%252foutside%252fsentinel.txt",
                                 "%2e%2e%2f%2e%2e%2foutside%2fsentinel.txt"),
    "double-encoded-dotdot-directory": ("%252e%252e/%252e%252e/x", "%2e%2e/%2e%2e/x"),
    "three-dots": ("...", "..."),
    "dotdot-with-suffix": ("..a", "..a"),
    "fullwidth-dots": ("%ef%bc%8e%ef%bc%8e", "\uff0e\uff0e"),
    "one-dot-leaders": ("%e2%80%a5", "\u2025"),
    "segment-255-bytes": ("a" * 255, "a" * 255),
}


@pytest.mark.parametrize("target, name", LITERAL_NAMES.values(), ids=LITERAL_NAMES.keys())
def test_traversal_lookalike_is_stored_literally_inside_root(env, target, name):
    body = f"literal {name}".encode()
    res = exchange(env, request_bytes("PUT", "/v1/objects/" + target, body=body), "PUT", {201},
                   root_may_change=True)
    assert res.json()["path"] == name
    on_disk = env.root / name
    assert on_disk.is_file() and on_disk.read_bytes() == body, f"not stored at {on_disk}"
    assert env.root in on_disk.resolve().parents
    assert exchange(env, request_bytes("GET", "/v1/objects/" + target), "GET", {200}).body == body
    exchange(env, request_bytes("DELETE", "/v1/objects/" + target), "DELETE", {204},
             root_may_change=True)
    assert not on_disk.exists()


# -- symbolic links planted in the root ----------------------------------------------

LINKED = {
    "relative-file-link": "link_file",
    "absolute-file-link": "link_abs",
    "through-directory-link": "link_dir/sentinel.txt",
    "through-nested-directory-link": "link_dir/dir/sentinel.txt",
    "through-link-in-subdirectory": "sub/inner_link/sentinel.txt",
    "self-loop": "loop",
    "below-self-loop": "loop/x",
    "new-file-through-directory-link": "link_dir/created-by-test",
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", LINKED.values(), ids=LINKED.keys())
def test_symlink_in_root_is_not_followed(env, path, method):
    exchange(env, _object_request(method, "/v1/objects/" + path), method, {400, 404})
    assert (env.root / "link_file").is_symlink(), "the planted link itself was removed"


@pytest.mark.parametrize("path", ["link_dir/", "link_dir/dir/", "sub/inner_link/", "loop/"],
                         ids=["directory-link", "nested", "link-in-subdirectory", "self-loop"])
def test_listing_through_symlink_is_refused(env, path):
    exchange(env, request_bytes("GET", "/v1/objects/" + path), "GET", {400, 404})


def test_listings_hide_planted_symlinks(env):
    root = exchange(env, request_bytes("GET", "/v1/objects/"), "GET", {200}).json()
    names = {entry["name"] for entry in root["entries"]}
    assert not names & {"link_file", "link_abs", "link_dir", "loop", ".blobsvc"}, names
    sub = exchange(env, request_bytes("GET", "/v1/objects/sub/"), "GET", {200}).json()
    assert [entry["name"] for entry in sub["entries"]] == ["plain.txt"]


SYMLINK_JSON = {
    "move-from-file-link": ("/v1/move", {"from": "link_file", "to": "stolen"}),
    "move-from-through-directory-link": ("/v1/move", {"from": "link_dir/sentinel.txt", "to": "stolen"}),
    "move-into-directory-link": ("/v1/move", {"from": "ok/normal.bin", "to": "link_dir/moved"}),
    "move-onto-file-link": ("/v1/move", {"from": "ok/normal.bin", "to": "link_file"}),
    "cat-from-file-link": ("/v1/cat", {"path": "stolen", "chunks": ["link_file"]}),
    "cat-from-absolute-link": ("/v1/cat", {"path": "stolen", "chunks": ["ok/normal.bin", "link_abs"]}),
    "cat-into-directory-link": ("/v1/cat", {"path": "link_dir/catted", "chunks": ["ok/normal.bin"]}),
    "cat-onto-file-link": ("/v1/cat", {"path": "link_file", "chunks": ["ok/normal.bin"]}),
}


@pytest.mark.parametrize("url, document", SYMLINK_JSON.values(), ids=SYMLINK_JSON.keys())
def test_move_and_cat_through_symlinks_are_refused_and_change_nothing(env, url, document):
    exchange(env, request_bytes("POST", url, {"Content-Type": "application/json"},
                                json.dumps(document).encode()), "POST", {400, 404})


# -- headers -------------------------------------------------------------------------


def _put(headers: dict, body: bytes = b"hello", target: str = "/v1/objects/hdr/x",
         content_length: bool = True) -> bytes:
    return request_bytes("PUT", target, headers, body, content_length=content_length)


BAD_CONTENT_LENGTH = {
    "negative": "-1",
    "non-numeric": "abc",
    "plus-sign": "+5",
    "hex": "0x5",
    "float": "5.0",
    "list": "5, 5",
    "two-numbers": "5 5",
    "empty": "",
}


@pytest.mark.parametrize("value", BAD_CONTENT_LENGTH.values(), ids=BAD_CONTENT_LENGTH.keys())
def test_malformed_content_length_is_400_json(env, value):
    exchange(env, _put({"Content-Length": value}), "PUT", {400})


@pytest.mark.parametrize("digits", [30, len(BIG_DIGITS)])
def test_huge_content_length_is_413_too_large(env, digits):
    exchange(env, _put({"Content-Length": "9" * digits}), "PUT", {413}, "too_large")


def test_content_length_longer_than_body_stores_nothing(env):
    exchange(env, _put({"Content-Length": "1000"}, b"short"), "PUT", {400}, "incomplete_body")


@pytest.mark.parametrize("value", ["gzip", "chunked, gzip", "identity", "xchunked"])
def test_unsupported_transfer_encoding_is_refused_with_json(env, value):
    exchange(env, _put({"Transfer-Encoding": value}, b"5\r\nhello\r\n0\r\n\r\n",
                       content_length=False), "PUT", {400, 411, 501})


def test_broken_chunked_framing_is_400_and_stores_nothing(env):
    exchange(env, _put({"Transfer-Encoding": "chunked"}, b"zz\r\nhello\r\n0\r\n\r\n",
                       content_length=False), "PUT", {400})


def test_content_length_with_chunked_is_refused_or_closes_the_connection(env):
    """RFC 9112 6.1: reject, or use the chunked framing and close the connection.

    The bytes after the chunked body are a second request (a DELETE): a
    server that keeps the connection open runs it, which is request
    smuggling behind any proxy that frames by Content-Length.
    """
    victim = request_bytes("PUT", "/v1/objects/hdr/victim", body=b"must stay")
    assert env.send(victim).status == 201
    chunked = b"5\r\nhello\r\n0\r\n\r\n"
    smuggled = b"DELETE /v1/objects/hdr/victim HTTP/1.1\r\nHost: x\r\n\r\n"
    head = (b"PUT /v1/objects/hdr/smuggle HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % (len(chunked) + len(smuggled)))
    with socket.create_connection(("127.0.0.1", env.port), timeout=3) as sock:
        sock.sendall(head + chunked + smuggled)
        answer = b""
        try:
            while piece := sock.recv(65536):
                answer += piece
        except TimeoutError:
            pass
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 201")), answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 1, f"the smuggled request was answered:\n{answer.decode()}"
    res = env.send(request_bytes("GET", "/v1/objects/hdr/victim"))
    assert (res.status, res.body) == (200, b"must stay"), "the smuggled DELETE ran"


#: Range values RFC 9110 says to ignore: the whole object, 200.
IGNORED_RANGES = {
    "not-a-number": "bytes=abc",
    "reversed": "bytes=5-1",
    "unknown-unit": "chars=0-1",
    "double-dash": "bytes=--1",
    "empty-spec": "bytes=",
    "trailing-comma": "bytes=1-2,",
    "no-equals": "bytes 0-1",
    "negative-start": "bytes=-5-6",
    "thousand-ranges": ",".join(["0-0"] * 1000).join(["bytes=", ""]),
}


@pytest.mark.parametrize("value", IGNORED_RANGES.values(), ids=IGNORED_RANGES.keys())
def test_garbage_range_is_ignored_with_200(env, value):
    res = exchange(env, request_bytes("GET", "/v1/objects/ok/normal.bin", {"Range": value}), "GET", {200})
    assert res.body == NORMAL


@pytest.mark.parametrize("value, expect", [
    (f"bytes={BIG_DIGITS}-", {200, 416}),
    (f"bytes=0-{BIG_DIGITS}", {200, 206}),
    (f"bytes=-{BIG_DIGITS}", {200, 206}),
    ("bytes=99999999999999999999999-", {416}),
], ids=["start-5000-digits", "end-5000-digits", "suffix-5000-digits", "start-past-end"])
def test_range_with_huge_numbers_is_not_a_server_error(env, value, expect):
    exchange(env, request_bytes("GET", "/v1/objects/ok/normal.bin", {"Range": value}), "GET", expect)


@pytest.mark.parametrize("name, value", [
    ("If-Modified-Since", "yesterday"),
    ("If-Modified-Since", "Mon, 32 Foo 2020 25:61:61 GMT"),
    ("If-Modified-Since", "Mon, 01 Jan 99999999999 00:00:00 GMT"),
    ("If-Modified-Since", f"Mon, 01 Jan {BIG_DIGITS} 00:00:00 GMT"),
    ("If-Unmodified-Since", "not a date"),
    ("If-Unmodified-Since", "Mon, 01 Jan 99999999999 00:00:00 GMT"),
    ("If-None-Match", "garbage-without-quotes"),
    ("If-None-Match", '"unterminated'),
    ("If-Range", "garbage"),
], ids=["ims-word", "ims-impossible-fields", "ims-huge-year", "ims-5000-digit-year", "ius-words",
        "ius-huge-year", "inm-unquoted", "inm-unterminated", "if-range-garbage"])
def test_malformed_conditional_header_on_get_is_ignored(env, name, value):
    headers = {name: value}
    if name == "If-Range":
        headers["Range"] = "bytes=0-3"
    res = exchange(env, request_bytes("GET", "/v1/objects/ok/normal.bin", headers), "GET", {200})
    assert res.body == NORMAL


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_malformed_if_match_fails_the_precondition(env, method):
    body = b"replacement" if method == "PUT" else b""
    exchange(env, request_bytes(method, "/v1/objects/ok/normal.bin", {"If-Match": "garbage"}, body),
             method, {400, 412})


@pytest.mark.parametrize("query", [
    "limit=-1", "limit=0", "limit=abc", "limit=10001", f"limit={BIG_DIGITS}", "limit=%C2%B2",
    "limit=1&limit=2", "marker=%ff", "limit=1%00",
], ids=["negative", "zero", "word", "above-max", "5000-digits", "superscript-two", "repeated",
        "marker-not-utf8", "nul"])
def test_bad_listing_query_is_400(env, query):
    exchange(env, request_bytes("GET", "/v1/objects/?" + query), "GET", {400}, "bad_request")


def test_oversized_header_is_refused_with_json(env):
    exchange(env, request_bytes("GET", "/v1/objects/ok/normal.bin", {"X-Big": "a" * 70000}), "GET",
             {400, 413, 431})


def test_http11_request_without_host_is_400_json(env):
    exchange(env, b"GET /v1/objects/ok/normal.bin HTTP/1.1\r\nConnection: close\r\n\r\n", "GET", {400})


BAD_AUTHORIZATION = {
    "basic-not-base64": "Basic !!!",
    "basic-no-colon": "Basic bm9jb2xvbg==",
    "basic-not-utf8": "Basic /w==",
    "basic-empty": "Basic ",
    "basic-wrong-password": "Basic YWxpY2U6d3Jvbmc=",
    "bearer-empty": "Bearer",
    "bearer-several-words": "Bearer a b c",
    "unknown-scheme": "Digest username=alice",
    "scheme-only-garbage": "\x7f\x01",
    "huge": "Basic " + "A" * 60000,
}


@pytest.mark.parametrize("value", BAD_AUTHORIZATION.values(), ids=BAD_AUTHORIZATION.keys())
def test_malformed_authorization_is_401_with_challenge(auth_env, value):
    res = exchange(auth_env, request_bytes("GET", "/v1/objects/ok/normal.bin", {"Authorization": value}),
                   "GET", {401}, "unauthorized", auth=_auth_headers())
    assert res.headers.get("WWW-Authenticate"), res.describe()


@pytest.mark.parametrize("query", [
    f"expires={BIG_DIGITS}&signature=x", "expires=-1&signature=x", "expires=%C2%B2&signature=x",
    "expires=1&expires=2&signature=x", "signature=x", "expires=9999999999&signature=%ff",
], ids=["expires-5000-digits", "expires-negative", "expires-superscript", "expires-repeated",
        "no-expires", "signature-not-utf8"])
def test_malformed_signed_url_is_403(auth_env, query):
    exchange(auth_env, request_bytes("GET", "/v1/objects/ok/normal.bin?" + query), "GET", {401, 403},
             auth=_auth_headers())


# -- JSON bodies of move and cat -------------------------------------------------------

BAD_JSON = {
    "not-json": b"not json",
    "truncated": b'{"from": "ok/normal.bin"',
    "array": b"[]",
    "string": b'"ok/normal.bin"',
    "null": b"null",
    "number": b"123",
    "empty-body": b"",
    "not-utf8": b'{"from": "\xff\xfe", "to": "b"}',
    "nan": b'{"from": NaN, "to": "b"}',
    "deeply-nested-arrays": b"[" * 100000,
    "deeply-nested-objects": b'{"a":' * 50000,
    "huge-string": b'{"from": "' + b"a" * 2_000_000 + b'", "to": "b"}',
}


@pytest.mark.parametrize("url", ["/v1/move", "/v1/cat"])
@pytest.mark.parametrize("body", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_malformed_json_body_is_4xx_json(env, url, body):
    expect = {413} if len(body) > 1024 * 1024 else {400}
    exchange(env, request_bytes("POST", url, {"Content-Type": "application/json",
                                              "Content-Length": str(len(body))}, body), "POST", expect)


BAD_MOVE = {
    "missing-to": {"from": "ok/normal.bin"},
    "missing-both": {},
    "from-number": {"from": 1, "to": "b"},
    "to-null": {"from": "ok/normal.bin", "to": None},
    "from-list": {"from": ["ok/normal.bin"], "to": "b"},
    "from-object": {"from": {"$gt": ""}, "to": "b"},
    "to-bool": {"from": "ok/normal.bin", "to": True},
    "from-outside": {"from": "../outside/sentinel.txt", "to": "stolen"},
    "to-outside": {"from": "ok/normal.bin", "to": f"../escape-{TOKEN}"},
    "to-absolute": {"from": "ok/normal.bin", "to": "/tmp/escape"},
    "to-reserved": {"from": "ok/normal.bin", "to": ".blobsvc/tmp/x"},
    "from-reserved": {"from": ".blobsvc/locks/00", "to": "stolen"},
    "to-nul": {"from": "ok/normal.bin", "to": "a\u0000b"},
    "to-backslash": {"from": "ok/normal.bin", "to": "..\\escape"},
}


@pytest.mark.parametrize("document", BAD_MOVE.values(), ids=BAD_MOVE.keys())
def test_bad_move_document_is_400_and_moves_nothing(env, document):
    exchange(env, request_bytes("POST", "/v1/move", {"Content-Type": "application/json"},
                                json.dumps(document).encode()), "POST", {400})


BAD_CAT = {
    "missing-chunks": {"path": "out"},
    "missing-path": {"chunks": ["ok/normal.bin"]},
    "chunks-string": {"path": "out", "chunks": "ok/normal.bin"},
    "chunks-empty": {"path": "out", "chunks": []},
    "chunks-numbers": {"path": "out", "chunks": [1, 2]},
    "chunks-null": {"path": "out", "chunks": [None]},
    "chunks-nested": {"path": "out", "chunks": [["ok/normal.bin"]]},
    "path-number": {"path": 5, "chunks": ["ok/normal.bin"]},
    "chunk-outside": {"path": "out", "chunks": ["ok/normal.bin", "../outside/sentinel.txt"]},
    "path-outside": {"path": f"../escape-{TOKEN}", "chunks": ["ok/normal.bin"]},
    "chunk-reserved": {"path": "out", "chunks": [".blobsvc/locks/00"]},
    "path-reserved": {"path": ".blobsvc/tmp/out", "chunks": ["ok/normal.bin"]},
    "chunk-absolute": {"path": "out", "chunks": ["/etc/passwd"]},
}


@pytest.mark.parametrize("document", BAD_CAT.values(), ids=BAD_CAT.keys())
def test_bad_cat_document_is_400_and_deletes_nothing(env, document):
    exchange(env, request_bytes("POST", "/v1/cat", {"Content-Type": "application/json"},
                                json.dumps(document).encode()), "POST", {400})


def test_cat_with_many_missing_chunks_is_404_naming_them_all(env):
    chunks = [f"missing/{i}" for i in range(20000)]
    res = exchange(env, request_bytes("POST", "/v1/cat", {"Content-Type": "application/json"},
                                      json.dumps({"path": "out", "chunks": chunks}).encode()),
                   "POST", {404}, "not_found")
    assert sorted(res.json()["error"]["missing"]) == sorted(chunks)


def test_chunked_json_body_over_the_limit_is_413(env):
    piece = b" " * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(20)) + b"0\r\n\r\n"
    exchange(env, request_bytes("POST", "/v1/move", {"Transfer-Encoding": "chunked"}, body),
             "POST", {413}, "too_large")


def test_post_without_length_is_411(env):
    exchange(env, request_bytes("POST", "/v1/move", body=b""), "POST", {411}, "length_required")

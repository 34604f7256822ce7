"""HTTP details a new user trips over, on a live server: query parameters the
service does not know, directories where an object is asked for, what the
access log counts, /metrics for a prefix-limited reader, and the JSON of
errors cheroot answers itself."""

from __future__ import annotations

import json
import time

import pytest
import requests
from api_client import wait_for
from live_server import GroupServer, filesystem_config, raw_exchange, request_bytes

WRITE_TOKEN = "details-write-token-0123456789"
READ_ALL_TOKEN = "details-read-all-0123456789"
READ_PREFIX_TOKEN = "details-read-docs-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("details")
    config = filesystem_config(workdir / "data", workers=1)
    config["log"] = {"level": "info", "access_log": True, "format": "json"}
    config["auth"] = {"anonymous": "none", "tokens": [
        {"name": "writer", "token": WRITE_TOKEN, "access": "write"},
        {"name": "reader", "token": READ_ALL_TOKEN, "access": "read"},
        {"name": "docs-reader", "token": READ_PREFIX_TOKEN, "access": "read", "prefix": "docs/"},
    ]}
    server = GroupServer(workdir, config).start()
    for path in ("docs/a.txt", "docs/b.txt", "other/c.txt"):
        response = requests.put(f"{server.url}/v1/objects/{path}", data=path.encode(),
                                headers=_auth(WRITE_TOKEN), timeout=10)
        assert response.status_code == 201
    yield server
    server.stop()


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _get(server, target: str, token: str = WRITE_TOKEN, **kwargs) -> requests.Response:
    return requests.get(server.url + target, headers=_auth(token), timeout=10, **kwargs)


# -- unknown query parameters -------------------------------------------------------


@pytest.mark.parametrize("target,name", [
    ("/v1/objects/?prefixes=do", "prefixes"),
    ("/v1/objects/docs/?recurse=true", "recurse"),
    ("/v1/objects/docs/?limit=1&delimiter=/", "delimiter"),
    ("/v1/objects/docs/a.txt?versionId=3", "versionId"),
])
def test_an_unknown_query_parameter_is_400_naming_it(server, target, name):
    response = _get(server, target)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    assert repr(name) in error["message"]


def test_a_move_with_an_unknown_parameter_moves_nothing(server):
    response = requests.post(f"{server.url}/v1/move?overwrite=false", headers=_auth(WRITE_TOKEN),
                             json={"from": "docs/a.txt", "to": "docs/moved.txt"}, timeout=10)
    assert response.status_code == 400
    assert "'overwrite'" in response.json()["error"]["message"]
    assert _get(server, "/v1/objects/docs/a.txt").content == b"docs/a.txt"
    assert _get(server, "/v1/objects/docs/moved.txt").status_code == 404


def test_known_parameters_still_work(server):
    response = _get(server, "/v1/objects/docs/?limit=1")
    assert response.status_code == 200
    page = response.json()
    assert [e["name"] for e in page["entries"]] == ["a.txt"] and page["truncated"]
    response = _get(server, f"/v1/objects/docs/?limit=1&marker={page['next_marker']}")
    assert [e["name"] for e in response.json()["entries"]] == ["b.txt"]


# -- a directory where an object is asked for -----------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_directory_asked_for_as_an_object_is_404_pointing_at_its_listing(server, method):
    response = requests.request(method, f"{server.url}/v1/objects/docs", headers=_auth(WRITE_TOKEN),
                                timeout=10)
    assert response.status_code == 404
    if method == "GET":
        assert "directory" in response.json()["error"]["message"]


def test_writing_over_a_directory_is_409(server):
    response = requests.put(f"{server.url}/v1/objects/docs", data=b"x", headers=_auth(WRITE_TOKEN),
                            timeout=10)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


# -- /metrics for a prefix-limited reader ----------------------------------------------


def test_metrics_need_read_access_to_the_whole_store(server):
    assert _get(server, "/metrics", READ_ALL_TOKEN).status_code == 200
    limited = _get(server, "/metrics", READ_PREFIX_TOKEN)
    assert limited.status_code == 403
    assert limited.json()["error"]["code"] == "forbidden"


# -- what the access log counts ------------------------------------------------------


def _access_line(server, request_id: str) -> dict:
    def find():
        for line in server.stderr().splitlines():
            if request_id in line and line.startswith("{"):
                record = json.loads(line)
                if record.get("request_id") == request_id:
                    return record
        return None
    assert wait_for(lambda: find() is not None, timeout=5), f"no access line for {request_id}"
    return find()


@pytest.mark.parametrize("target,token", [
    ("/v1/objects/docs/", WRITE_TOKEN),            # a listing
    ("/v1/objects/docs/missing.txt", WRITE_TOKEN),  # an error body
    ("/v1/objects/docs/a.txt", "wrong-token-0123456789"),  # a 401
    ("/v1/objects/docs/a.txt", WRITE_TOKEN),        # an object
])
def test_the_access_log_counts_the_bytes_really_sent(server, target, token):
    request_id = f"bytes-{time.monotonic_ns()}"
    response = requests.get(server.url + target, timeout=10,
                            headers={**_auth(token), "X-Request-Id": request_id})
    line = _access_line(server, request_id)
    assert line["bytes_out"] == len(response.content) > 0


def test_the_access_log_percent_encodes_a_path_with_a_space(server):
    request_id = f"space-{time.monotonic_ns()}"
    requests.get(f"{server.url}/v1/objects/docs/with%20space.txt", timeout=10,
                 headers={**_auth(WRITE_TOKEN), "X-Request-Id": request_id})
    assert _access_line(server, request_id)["path"] == "/v1/objects/docs/with%20space.txt"


# -- errors cheroot answers itself are JSON too ----------------------------------------


@pytest.mark.parametrize("request_line,status,code", [
    (b"GET /healthz HTTP/2.0", 505, "http_version_not_supported"),
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1", 414, "uri_too_long"),
])
def test_protocol_level_errors_are_json(server, request_line, status, code):
    response = raw_exchange("127.0.0.1", server.port, request_line + b"\r\nHost: x\r\n\r\n")
    assert response.status == status
    assert response.json()["error"]["code"] == code


def test_oversized_headers_are_431_json(server):
    request = request_bytes("GET", "/healthz", {f"X-Pad-{i}": "p" * 1000 for i in range(70)})
    response = raw_exchange("127.0.0.1", server.port, request)
    assert response.status == 431
    assert response.json()["error"]["code"] == "headers_too_large"


# -- where a new object lives ---------------------------------------------------------


def test_every_201_says_where_the_object_lives(server):
    put = requests.put(f"{server.url}/v1/objects/loc/a%20b%3F.txt", data=b"x",
                       headers=_auth(WRITE_TOKEN), timeout=10)
    assert put.status_code == 201
    assert put.headers["Location"] == "/v1/objects/loc/a%20b%3F.txt"
    moved = requests.post(f"{server.url}/v1/move", headers=_auth(WRITE_TOKEN), timeout=10,
                          json={"from": "loc/a b?.txt", "to": "loc/moved #1"})
    assert moved.headers["Location"] == "/v1/objects/loc/moved%20%231"
    joined = requests.post(f"{server.url}/v1/cat", headers=_auth(WRITE_TOKEN), timeout=10,
                           json={"path": "loc/joined", "chunks": ["loc/moved #1"]})
    assert joined.headers["Location"] == "/v1/objects/loc/joined"
    assert _get(server, joined.headers["Location"]).content == b"x"

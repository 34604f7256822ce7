"""CORS: a web app on an allowed origin may call the API from a browser.

In process through WebTest, with auth on (preflights carry no credentials
and must be answered all the same), and once over a real socket.
"""

from __future__ import annotations

import base64

import pytest
from api_client import ServerProcess, WebTestClient

import blobsvc.config
from blobsvc.config import ConfigError
from blobsvc.http.app import build_app
from blobsvc.storage import create_driver

APP = "https://app.example"
TOKEN = "s3cr3t-token-for-cors"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def service(cors: dict | None) -> WebTestClient:
    document: dict = {"storage": {"driver": "memory"}, "auth": {
        "tokens": [{"name": "app", "token": TOKEN, "access": "write"}]}}
    if cors is not None:
        document["cors"] = cors
    config = blobsvc.config.build(document, {})
    return WebTestClient(build_app(config, create_driver("memory", {})))


@pytest.fixture
def api() -> WebTestClient:
    return service({"allow_origins": [APP, "http://127.0.0.1:3000"]})


def preflight(client, path: str, method: str, headers: str | None = None, origin: str = APP):
    sent = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        sent["Access-Control-Request-Headers"] = headers
    return client.request("OPTIONS", path, None, sent)


def test_a_preflight_is_answered_without_credentials(api):
    res = preflight(api, "/v1/objects/a/b.txt", "PUT",
                    "authorization, content-type, x-object-meta-color, if-none-match")
    assert res.status == 204
    assert res.body == b""
    assert res.headers["Access-Control-Allow-Origin"] == APP
    assert res.headers["Access-Control-Allow-Methods"] == "GET, HEAD, PUT, POST, DELETE"
    assert res.headers["Access-Control-Allow-Headers"] == \
        "authorization, content-type, x-object-meta-color, if-none-match"
    assert res.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in res.headers["Vary"]


@pytest.mark.parametrize("origin, method, headers, reason", [
    ("https://evil.example", "GET", None, "origin"),
    (APP + ":8443", "GET", None, "origin"),
    (APP, "PATCH", None, "method"),
    (APP, "PUT", "x-secret-header", "header"),
])
def test_a_preflight_beyond_the_policy_is_refused(api, origin, method, headers, reason):
    res = preflight(api, "/v1/objects/a", method, headers, origin)
    assert res.status == 403
    assert res.json()["error"]["code"] == "forbidden"
    assert reason in res.json()["error"]["message"]
    assert "Access-Control-Allow-Origin" not in res.headers


def test_answers_to_an_allowed_origin_can_be_read_errors_included(api):
    headers = {**AUTH, "Origin": APP, "X-Object-Meta-Color": "blue"}
    res = api.request("PUT", "/v1/objects/a.txt", b"hello", headers)
    assert res.status == 201
    assert res.headers["Access-Control-Allow-Origin"] == APP
    res = api.request("GET", "/v1/objects/a.txt", None, {**AUTH, "Origin": APP})
    assert res.body == b"hello"
    exposed = [h.strip() for h in res.headers["Access-Control-Expose-Headers"].split(",")]
    assert {"ETag", "Content-Length", "Location", "X-Request-Id"} <= set(exposed)
    assert "X-Object-Meta-Color" in exposed
    for status, headers in ((401, {"Origin": APP}), (404, {**AUTH, "Origin": APP})):
        res = api.request("GET", "/v1/objects/missing", None, headers)
        assert res.status == status
        assert res.headers["Access-Control-Allow-Origin"] == APP


def test_another_origin_gets_no_cors_headers_and_nothing_else_changes(api):
    api.request("PUT", "/v1/objects/a.txt", b"hello", AUTH)
    res = api.request("GET", "/v1/objects/a.txt", None, {**AUTH, "Origin": "https://evil.example"})
    assert res.status == 200 and res.body == b"hello"
    assert "Access-Control-Allow-Origin" not in res.headers
    assert "Origin" in res.headers["Vary"]


def test_any_origin_with_a_star(api):
    star = service({"allow_origins": "*"})
    res = preflight(star, "/v1/objects/", "GET", origin="https://anyone.example")
    assert res.headers["Access-Control-Allow-Origin"] == "*"
    res = star.request("GET", "/v1/objects/", None, {**AUTH, "Origin": "https://x.example"})
    assert res.headers["Access-Control-Allow-Origin"] == "*"


def test_without_a_policy_a_preflight_is_an_ordinary_request_without_cors_headers():
    plain = service(None)
    res = preflight(plain, "/v1/objects/a", "GET")
    assert res.status == 401  # no credentials: refused like any request
    assert "Access-Control-Allow-Origin" not in res.headers
    res = plain.request("OPTIONS", "/v1/objects/a", None, {**AUTH, "Origin": APP})
    assert res.status == 405
    res = plain.request("GET", "/healthz", None, {"Origin": APP})
    assert "Access-Control-Allow-Origin" not in res.headers
    assert "Vary" not in res.headers


@pytest.mark.parametrize("cors, message", [
    ({"allow_origins": ["app.example"]}, "not an origin"),
    ({"allow_origins": [APP + "/"]}, "has a path"),
    ({"allow_origins": ["https://a.example https://b.example"]}, "single value"),
    ({"allow_origins": [APP], "max_age": -1}, "max_age"),
    ({"allow_origins": [APP], "allow_method": ["GET"]}, "unknown key cors.allow_method"),
])
def test_a_bad_policy_stops_start_up_naming_it(cors, message):
    with pytest.raises(ConfigError, match=message):
        blobsvc.config.build({"storage": {"driver": "memory"}, "cors": cors}, {})


def test_origins_from_the_environment_as_comma_separated_text(tmp_path):
    path = tmp_path / "blobsvc.yaml"
    path.write_text("storage: {driver: memory}\n")
    config = blobsvc.config.load(str(path), {
        "BLOBSVC_CORS_ALLOW_ORIGINS": f"{APP}, http://localhost:3000"})
    api = WebTestClient(build_app(config, create_driver("memory", {})))
    for origin in (APP, "http://localhost:3000"):
        assert preflight(api, "/v1/objects/", "GET", origin=origin).status == 204


def test_a_preflight_over_a_real_socket(tmp_path):
    config = {"server": {"host": "127.0.0.1", "port": 0},
              "storage": {"driver": "filesystem", "root": str(tmp_path / "data")},
              "auth": {"users": {"alice": {"password": "wonderland-password",
                                           "access": "write"}}},
              "cors": {"allow_origins": [APP]}}
    server = ServerProcess(tmp_path, config).start()
    try:
        client = server.client()
        res = preflight(client, "/v1/objects/x", "PUT", "authorization")
        assert res.status == 204
        assert res.headers["Access-Control-Allow-Origin"] == APP
        basic = "Basic " + base64.b64encode(b"alice:wonderland-password").decode()
        res = client.request("PUT", "/v1/objects/x", b"1", {"Origin": APP, "Authorization": basic})
        assert res.status == 201
        assert res.headers["Access-Control-Allow-Origin"] == APP
    finally:
        server.stop()

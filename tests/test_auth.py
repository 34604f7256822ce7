"""Access control: users, tokens, anonymous access, signed URLs, TLS.

The access matrix and most checks run in-process (WebTest on the memory
driver, a fresh store per test); the command line (``hash-secret``,
``sign``, ``check-config``, refusing to start) and TLS run against real
``blobsvc serve`` processes on 127.0.0.1, stopped by their PID.

Every refusal is also checked for having changed nothing in storage, and
a refusal must not tell whether the object exists.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
import yaml
from api_client import ServerProcess, WebTestClient, clean_environ, free_port, run_cli, wait_for

import blobsvc.config
from blobsvc.auth import signed_query
from blobsvc.http.app import build_app
from blobsvc.secrets import hash_secret
from blobsvc.storage import create_driver

SIGNING_KEY = "test-signing-key-0123456789abcdef"

USERS = {
    "reader": {"password": "reader-pw", "access": "read"},
    "writer": {"password": "writer-pw", "access": "write"},
    "builds-reader": {"password": "builds-reader-pw", "access": "read", "prefix": "builds/"},
}
TOKENS = [
    {"name": "ci", "token": "write-token-0123456789", "access": "write"},
    {"name": "builds-ci", "token": "builds-token-0123456789", "access": "write", "prefix": "builds"},
]

#: The content of every seeded object, by path.
SEED = {
    "builds/seed.bin": b"builds seed object",
    "builds/part1": b"builds part one|",
    "builds/part2": b"builds part two",
    "other/seed.bin": b"other seed object",
    "other/part1": b"other part one|",
    "other/part2": b"other part two",
}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bearer(token: str) -> str:
    return f"Bearer {token}"


#: principal -> (auth.anonymous of the service, request headers)
PRINCIPALS = {
    "anonymous-none": ("none", {}),
    "anonymous-read": ("read", {}),
    "read-user": ("none", {"Authorization": basic("reader", "reader-pw")}),
    "write-user": ("none", {"Authorization": basic("writer", "writer-pw")}),
    "write-token": ("none", {"Authorization": bearer("write-token-0123456789")}),
    "builds-write-token": ("none", {"Authorization": bearer("builds-token-0123456789")}),
    "builds-read-user": ("none", {"Authorization": basic("builds-reader", "builds-reader-pw")}),
}

# The expected status of every operation, inside the prefix (builds/),
# outside it (other/) and on the root; "." = not applicable. The prefix-
# limited principals are limited to builds/, so the root is outside too.
MATRIX = """
principal           area     GET  HEAD PUT  DELETE LIST MOVE CAT
anonymous-none      builds   401  401  401  401    401  401  401
anonymous-none      other    401  401  401  401    401  401  401
anonymous-none      root     .    .    .    .      401  .    .
anonymous-read      builds   200  200  401  401    200  401  401
anonymous-read      other    200  200  401  401    200  401  401
anonymous-read      root     .    .    .    .      200  .    .
read-user           builds   200  200  403  403    200  403  403
read-user           other    200  200  403  403    200  403  403
read-user           root     .    .    .    .      200  .    .
write-user          builds   200  200  201  204    200  201  201
write-user          other    200  200  201  204    200  201  201
write-user          root     .    .    .    .      200  .    .
write-token         builds   200  200  201  204    200  201  201
write-token         other    200  200  201  204    200  201  201
write-token         root     .    .    .    .      200  .    .
builds-write-token  builds   200  200  201  204    200  201  201
builds-write-token  other    403  403  403  403    403  403  403
builds-write-token  root     .    .    .    .      403  .    .
builds-read-user    builds   200  200  403  403    200  403  403
builds-read-user    other    403  403  403  403    403  403  403
builds-read-user    root     .    .    .    .      403  .    .
"""


def matrix_cases() -> list:
    lines = [line.split() for line in MATRIX.strip().splitlines()]
    operations = lines[0][2:]
    cases = []
    for principal, area, *statuses in lines[1:]:
        for operation, status in zip(operations, statuses, strict=True):
            if status != ".":
                cases.append(pytest.param(principal, operation, area, int(status),
                                          id=f"{principal}-{operation}-{area}-{status}"))
    return cases


def operation_request(operation: str, area: str) -> tuple[str, str, bytes | None]:
    """(method, target, body) of ``operation`` on objects under ``area``."""
    if operation == "LIST":
        return "GET", "/v1/objects/" if area == "root" else f"/v1/objects/{area}/", None
    if operation == "PUT":
        return "PUT", f"/v1/objects/{area}/new.bin", b"new object bytes"
    if operation == "MOVE":
        return "POST", "/v1/move", json.dumps({"from": f"{area}/seed.bin",
                                               "to": f"{area}/moved.bin"}).encode()
    if operation == "CAT":
        return "POST", "/v1/cat", json.dumps({"path": f"{area}/joined.bin",
                                              "chunks": [f"{area}/part1", f"{area}/part2"]}).encode()
    return operation, f"/v1/objects/{area}/seed.bin", None


# -- in-process service ------------------------------------------------------


class Service:
    """The app on a memory driver, plus direct access to that driver."""

    def __init__(self, auth: dict | None, environ: dict | None = None, **sections) -> None:
        document = {"storage": {"driver": "memory"}, "log": {"access_log": False}, **sections}
        if auth is not None:
            document["auth"] = auth
        config = blobsvc.config.build(document, environ or {})
        self.driver = create_driver("memory", {})
        self.client = WebTestClient(build_app(config, self.driver))

    def request(self, method, target, body=None, headers=None):
        headers = dict(headers or {})
        if method == "POST":
            headers.setdefault("Content-Type", "application/json")
        return self.client.request(method, target, body, headers)

    def seed(self) -> None:
        for path, data in SEED.items():
            self.driver.put_object(path, data)

    def snapshot(self) -> dict:
        """Every object with its bytes and ETag, read straight from the driver."""
        found, todo = {}, [""]
        while todo:
            directory = todo.pop()
            for entry in self.driver.list_objects(directory):
                if entry.isdir:
                    todo.append(entry.path)
                else:
                    found[entry.path] = (self.driver.get_object(entry.path), entry.etag)
        return found


def auth_section(anonymous: str = "none", **extra) -> dict:
    return {"anonymous": anonymous, "users": USERS, "tokens": TOKENS,
            "signing_key": SIGNING_KEY, **extra}


@pytest.fixture
def service() -> Service:
    svc = Service(auth_section())
    svc.seed()
    return svc


def assert_refused(response, status: int, method: str = "GET") -> None:
    """``status`` with a JSON error (no body for HEAD), and a challenge on 401."""
    assert response.status == status, response.body
    if status == 401:
        challenge = response.headers.get("WWW-Authenticate", "")
        assert "Basic" in challenge and "Bearer" in challenge, challenge
    if method == "HEAD":
        assert response.body == b""
        return
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["status"] == status
    assert error["code"] == ("unauthorized" if status == 401 else "forbidden")


# -- the access matrix ---------------------------------------------------------


@pytest.mark.parametrize("principal, operation, area, expected", matrix_cases())
def test_access_matrix(principal, operation, area, expected):
    anonymous, headers = PRINCIPALS[principal]
    svc = Service(auth_section(anonymous))
    svc.seed()
    before = svc.snapshot()
    method, target, body = operation_request(operation, area)

    response = svc.request(method, target, body, headers)

    assert response.status == expected, response.body
    if expected in (401, 403):
        assert_refused(response, expected, method)
        assert svc.snapshot() == before
    elif method in ("PUT", "DELETE", "POST"):
        assert svc.snapshot() != before
    elif method == "GET" and operation != "LIST":
        assert response.body == SEED[f"{area}/seed.bin"]


@pytest.mark.parametrize("source, target", [("builds/seed.bin", "other/moved.bin"),
                                            ("other/seed.bin", "builds/moved.bin")])
def test_prefix_token_cannot_move_across_its_prefix(service, source, target):
    before = service.snapshot()
    response = service.request("POST", "/v1/move", json.dumps({"from": source, "to": target}).encode(),
                               PRINCIPALS["builds-write-token"][1])
    assert_refused(response, 403)
    assert service.snapshot() == before


def test_prefix_token_cannot_cat_a_chunk_outside_its_prefix(service):
    before = service.snapshot()
    body = json.dumps({"path": "builds/joined.bin", "chunks": ["builds/part1", "other/part2"]}).encode()
    response = service.request("POST", "/v1/cat", body, PRINCIPALS["builds-write-token"][1])
    assert_refused(response, 403)
    assert service.snapshot() == before


def test_prefix_is_a_directory_not_a_string_prefix(service):
    """``builds/`` does not cover ``builds-old/x``."""
    service.driver.put_object("builds-old/x", b"old")
    response = service.request("GET", "/v1/objects/builds-old/x", None,
                               PRINCIPALS["builds-write-token"][1])
    assert_refused(response, 403)


# -- refusals do not reveal whether an object exists --------------------------

LEAK_CASES = [
    ("anonymous-none", "GET", "builds/seed.bin"),
    ("anonymous-none", "HEAD", "builds/seed.bin"),
    ("anonymous-none", "DELETE", "builds/seed.bin"),
    ("anonymous-read", "DELETE", "builds/seed.bin"),
    ("read-user", "DELETE", "builds/seed.bin"),
    ("read-user", "PUT", "builds/seed.bin"),
    ("builds-write-token", "GET", "other/seed.bin"),
    ("builds-write-token", "HEAD", "other/seed.bin"),
    ("builds-write-token", "DELETE", "other/seed.bin"),
    ("builds-read-user", "GET", "other/seed.bin"),
    ("builds-read-user", "DELETE", "builds/seed.bin"),
]


def comparable(response) -> tuple:
    headers = {k.lower(): v for k, v in response.headers.items()
               if k.lower() not in ("date", "x-request-id")}
    return response.status, headers, response.body


@pytest.mark.parametrize("principal, method, path", LEAK_CASES,
                         ids=[f"{p}-{m}-{path}" for p, m, path in LEAK_CASES])
def test_refusal_is_the_same_for_an_existing_and_a_missing_object(principal, method, path):
    anonymous, headers = PRINCIPALS[principal]
    svc = Service(auth_section(anonymous))
    svc.seed()
    body = b"replacement" if method == "PUT" else None
    existing = svc.request(method, f"/v1/objects/{path}", body, headers)
    svc.driver.delete_object(path)
    missing = svc.request(method, f"/v1/objects/{path}", body, headers)
    assert existing.status in (401, 403)
    assert comparable(existing) == comparable(missing)


def test_refused_move_is_the_same_for_an_existing_and_a_missing_source(service):
    headers = PRINCIPALS["read-user"][1]
    body = json.dumps({"from": "other/seed.bin", "to": "other/moved.bin"}).encode()
    existing = service.request("POST", "/v1/move", body, headers)
    service.driver.delete_object("other/seed.bin")
    missing = service.request("POST", "/v1/move", body, headers)
    assert existing.status == 403
    assert comparable(existing) == comparable(missing)


# -- credentials that do not authenticate -------------------------------------

@pytest.mark.parametrize("authorization", [
    basic("reader", "wrong-pw"),
    basic("reader", ""),
    basic("nobody", "reader-pw"),
    basic("READER", "reader-pw"),
    bearer("no-such-token"),
    bearer("write-token-012345678"),  # a prefix of a real token
    bearer("reader-pw"),  # a password is not a token
], ids=["wrong-password", "empty-password", "unknown-user", "user-name-case", "unknown-token",
        "token-prefix", "password-as-token"])
def test_wrong_credentials_are_401(service, authorization):
    before = service.snapshot()
    for method in ("GET", "PUT", "DELETE"):
        body = b"x" if method == "PUT" else None
        response = service.request(method, "/v1/objects/builds/seed.bin", body,
                                   {"Authorization": authorization})
        assert_refused(response, 401)
    assert service.snapshot() == before


def test_wrong_credentials_are_401_even_where_anonymous_may_read():
    svc = Service(auth_section("read"))
    svc.seed()
    response = svc.request("GET", "/v1/objects/builds/seed.bin", None,
                           {"Authorization": basic("reader", "wrong-pw")})
    assert_refused(response, 401)


def test_a_prefix_limited_credential_keeps_what_anonymous_access_gives():
    svc = Service(auth_section("read"))
    svc.seed()
    headers = {"Authorization": bearer("builds-token-0123456789")}
    assert svc.request("GET", "/v1/objects/other/seed.bin", None, headers).status == 200
    assert_refused(svc.request("PUT", "/v1/objects/other/new.bin", b"x", headers), 403)


@pytest.mark.parametrize("authorization", [
    "Basic !!!not-base64!!!",
    "Basic " + base64.b64encode(b"no-colon-here").decode(),
    "Basic " + base64.b64encode(b"\xff\xfe:reader-pw").decode(),
    "Basic",
    "Bearer",
    "Bearer ",
    "Digest username=\"reader\"",
    "Negotiate YIIC",
    "garbage",
    "reader:reader-pw",
], ids=["not-base64", "no-colon", "not-utf8", "basic-alone", "bearer-alone", "bearer-empty",
        "digest", "negotiate", "garbage", "no-scheme"])
def test_malformed_authorization_is_401_json(service, authorization):
    response = service.request("GET", "/v1/objects/builds/seed.bin", None,
                               {"Authorization": authorization})
    assert_refused(response, 401)


# -- secrets: hashed, from the environment, BLOBSVC_TOKEN --------------------

def hashed_service(password_hash: str, token_hash: str | None = None) -> Service:
    auth = {"users": {"alice": {"password": password_hash, "access": "write"}}}
    if token_hash is not None:
        auth["tokens"] = [{"name": "hashed", "token": token_hash, "access": "write"}]
    svc = Service(auth)
    svc.seed()
    return svc


def test_hashed_password_authenticates():
    svc = hashed_service(hash_secret("alice-pw", iterations=100_000))
    response = svc.request("GET", "/v1/objects/builds/seed.bin", None,
                           {"Authorization": basic("alice", "alice-pw")})
    assert response.status == 200
    assert response.body == SEED["builds/seed.bin"]


def test_wrong_password_against_a_hash_is_401():
    svc = hashed_service(hash_secret("alice-pw", iterations=100_000))
    response = svc.request("GET", "/v1/objects/builds/seed.bin", None,
                           {"Authorization": basic("alice", "alice-pW")})
    assert_refused(response, 401)


def test_the_hash_itself_is_not_a_password():
    password_hash = hash_secret("alice-pw", iterations=100_000)
    svc = hashed_service(password_hash)
    response = svc.request("GET", "/v1/objects/builds/seed.bin", None,
                           {"Authorization": basic("alice", password_hash)})
    assert_refused(response, 401)


def test_hashed_token_authenticates_and_a_wrong_one_does_not():
    svc = hashed_service(hash_secret("alice-pw", iterations=100_000),
                         hash_secret("hashed-token-42", iterations=100_000))
    good = svc.request("PUT", "/v1/objects/builds/by-token", b"t",
                       {"Authorization": bearer("hashed-token-42")})
    bad = svc.request("PUT", "/v1/objects/builds/by-token-2", b"t",
                      {"Authorization": bearer("hashed-token-43")})
    assert good.status == 201
    assert_refused(bad, 401)
    assert "builds/by-token-2" not in svc.snapshot()


def test_default_hash_strength_authenticates_repeatedly():
    svc = hashed_service(hash_secret("alice-pw"))
    for _ in range(3):  # the second and third check come from the cache
        response = svc.request("HEAD", "/v1/objects/builds/seed.bin", None,
                               {"Authorization": basic("alice", "alice-pw")})
        assert response.status == 200


def test_a_correct_password_does_not_unlock_a_wrong_one_after_caching():
    svc = hashed_service(hash_secret("alice-pw", iterations=100_000))
    good = svc.request("GET", "/v1/objects/builds/seed.bin", None,
                       {"Authorization": basic("alice", "alice-pw")})
    bad = svc.request("GET", "/v1/objects/builds/seed.bin", None,
                      {"Authorization": basic("alice", "alice-px")})
    assert good.status == 200
    assert_refused(bad, 401)


def run_hash_secret(stdin: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blobsvc", "hash-secret"], input=stdin,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env=clean_environ())


def test_cli_hash_secret_reads_stdin_and_prints_one_hash_line(tmp_path):
    result = run_hash_secret("cli-secret\n", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("pbkdf2-sha256$")
    assert "cli-secret" not in result.stdout + result.stderr


def test_cli_hash_secret_output_authenticates_in_the_config(tmp_path):
    password_hash = run_hash_secret("cli-secret\n", tmp_path).stdout.strip()
    svc = hashed_service(password_hash)
    good = svc.request("GET", "/v1/objects/builds/seed.bin", None,
                       {"Authorization": basic("alice", "cli-secret")})
    bad = svc.request("GET", "/v1/objects/builds/seed.bin", None,
                      {"Authorization": basic("alice", "cli-secret\n")})
    assert good.status == 200
    assert_refused(bad, 401)


def test_cli_hash_secret_with_nothing_on_stdin_exits_2(tmp_path):
    result = run_hash_secret("", tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1


def test_malformed_hash_in_the_config_is_refused():
    with pytest.raises(blobsvc.config.ConfigError, match=r"auth\.users\.alice\.password"):
        blobsvc.config.build({"auth": {"users": {"alice": {"password": "pbkdf2-sha256$x$y"}}}}, {})


def load_yaml_config(tmp_path, document: dict, environ: dict):
    path = tmp_path / "blobsvc.yaml"
    path.write_text(yaml.safe_dump(document))
    return blobsvc.config.load(str(path), environ)


def test_secrets_from_environment_variables_authenticate(tmp_path):
    config = load_yaml_config(tmp_path, {
        "storage": {"driver": "memory"},
        "auth": {"users": {"env-user": {"password": "${TEST_USER_PASSWORD}", "access": "read"}},
                 "tokens": [{"name": "env", "token": "${TEST_TOKEN}", "access": "write"}]},
    }, {"TEST_USER_PASSWORD": "pw-from-env", "TEST_TOKEN": "token-from-env-0123"})
    driver = create_driver("memory", {})
    client = WebTestClient(build_app(config, driver))
    put = client.request("PUT", "/v1/objects/env/x", b"env", {"Authorization": bearer("token-from-env-0123")})
    get = client.request("GET", "/v1/objects/env/x", None,
                         {"Authorization": basic("env-user", "pw-from-env")})
    literal = client.request("GET", "/v1/objects/env/x", None,
                             {"Authorization": basic("env-user", "${TEST_USER_PASSWORD}")})
    assert put.status == 201
    assert (get.status, get.body) == (200, b"env")
    assert_refused(literal, 401)


def test_secret_from_a_missing_environment_variable_is_a_config_error(tmp_path):
    with pytest.raises(blobsvc.config.ConfigError, match=r"TEST_MISSING_TOKEN"):
        load_yaml_config(tmp_path, {"auth": {"tokens": [{"token": "${TEST_MISSING_TOKEN}"}]}}, {})


def test_blobsvc_token_environment_variable_grants_write():
    svc = Service(None, environ={"BLOBSVC_TOKEN": "env-token-value-0123"})
    put = svc.request("PUT", "/v1/objects/a/b", b"x", {"Authorization": bearer("env-token-value-0123")})
    anonymous = svc.request("GET", "/v1/objects/a/b")
    assert put.status == 201
    assert_refused(anonymous, 401)


# -- signed URLs (in-process) ------------------------------------------------

def signed(method: str, path: str, expires_in: int = 300, key: str = SIGNING_KEY) -> str:
    expires = int(time.time()) + expires_in
    return f"/v1/objects/{path}?{signed_query(key, method, path, expires)}"


def with_query(target: str, **changes) -> str:
    parts = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def tampered_signature(target: str) -> str:
    signature = parse_qs(urlsplit(target).query)["signature"][0]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    return with_query(target, signature=flipped)


def test_signed_get_url_reads_the_object(service):
    response = service.request("GET", signed("GET", "other/seed.bin"))
    assert (response.status, response.body) == (200, SEED["other/seed.bin"])


def test_signed_get_url_also_allows_head(service):
    response = service.request("HEAD", signed("GET", "other/seed.bin"))
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(SEED["other/seed.bin"]))


def test_signed_put_url_uploads(service):
    response = service.request("PUT", signed("PUT", "uploads/new.bin"), b"signed upload")
    assert response.status == 201
    assert service.driver.get_object("uploads/new.bin") == b"signed upload"


BAD_SIGNED_URLS = [
    ("expired", lambda: signed("GET", "other/seed.bin", expires_in=-5), "GET"),
    ("tampered-signature", lambda: tampered_signature(signed("GET", "other/seed.bin")), "GET"),
    ("tampered-expiry", lambda: with_query(signed("GET", "other/seed.bin", 60),
                                           expires=str(int(time.time()) + 86400)), "GET"),
    ("tampered-path", lambda: signed("GET", "other/seed.bin").replace("other/seed.bin",
                                                                      "other/part1", 1), "GET"),
    ("other-key", lambda: signed("GET", "other/seed.bin", key="another-key-0123456789"), "GET"),
    ("get-signed-used-for-put", lambda: signed("GET", "other/seed.bin"), "PUT"),
    ("get-signed-used-for-delete", lambda: signed("GET", "other/seed.bin"), "DELETE"),
    ("put-signed-used-for-get", lambda: signed("PUT", "other/seed.bin"), "GET"),
    ("put-signed-used-for-delete", lambda: signed("PUT", "other/seed.bin"), "DELETE"),
    ("signature-missing", lambda: with_query("/v1/objects/other/seed.bin",
                                             expires=str(int(time.time()) + 60)), "GET"),
    ("expiry-missing", lambda: "/v1/objects/other/seed.bin?"
                               + urlencode({"signature": "0" * 64}), "GET"),
    ("expiry-not-a-number", lambda: with_query(signed("GET", "other/seed.bin"),
                                               expires="soon"), "GET"),
]


@pytest.mark.parametrize("describe, target, method", BAD_SIGNED_URLS,
                         ids=[case[0] for case in BAD_SIGNED_URLS])
def test_bad_signed_url_is_403_and_changes_nothing(service, describe, target, method):
    before = service.snapshot()
    body = b"overwrite" if method == "PUT" else None
    response = service.request(method, target(), body)
    assert_refused(response, 403)
    assert service.snapshot() == before


def test_signed_url_for_one_path_is_refused_on_another(service):
    url = signed("GET", "other/seed.bin")
    query = urlsplit(url).query
    response = service.request("GET", f"/v1/objects/builds/seed.bin?{query}")
    assert_refused(response, 403)


def test_signed_put_url_cannot_write_another_path(service):
    query = urlsplit(signed("PUT", "uploads/a.bin")).query
    response = service.request("PUT", f"/v1/objects/uploads/b.bin?{query}", b"x")
    assert_refused(response, 403)
    assert "uploads/b.bin" not in service.snapshot()


def test_signed_query_on_a_listing_is_403(service):
    query = urlsplit(signed("GET", "other/seed.bin")).query
    response = service.request("GET", f"/v1/objects/other/?{query}")
    assert_refused(response, 403)


def test_signed_url_is_refused_when_no_signing_key_is_configured():
    svc = Service({"users": USERS})
    svc.seed()
    response = svc.request("GET", signed("GET", "other/seed.bin"))
    assert_refused(response, 403)


# -- service endpoints ---------------------------------------------------------

@pytest.mark.parametrize("target", ["/healthz", "/readyz", "/openapi.json"])
def test_probes_and_api_description_need_no_credentials(service, target):
    assert service.request("GET", target).status == 200


def test_metrics_without_credentials_is_401(service):
    assert_refused(service.request("GET", "/metrics"), 401)


@pytest.mark.parametrize("principal", ["read-user", "write-user", "write-token"])
def test_metrics_with_read_access_is_200(service, principal):
    response = service.request("GET", "/metrics", None, PRINCIPALS[principal][1])
    assert response.status == 200
    assert b"blobsvc_requests_total" in response.body


def test_metrics_for_a_prefix_limited_principal_is_403(service):
    response = service.request("GET", "/metrics", None, PRINCIPALS["builds-read-user"][1])
    assert_refused(response, 403)


def test_public_metrics_need_no_credentials():
    svc = Service(auth_section(public_metrics=True))
    assert svc.request("GET", "/metrics").status == 200


def test_public_metrics_do_not_open_the_objects():
    svc = Service(auth_section(public_metrics=True))
    svc.seed()
    assert_refused(svc.request("GET", "/v1/objects/other/seed.bin"), 401)


# -- start-up: refusing to serve openly ----------------------------------------

def write_config(tmp_path, document: dict, name: str = "blobsvc.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return str(path)


def open_config(host: str, **extra) -> dict:
    return {"server": {"host": host, "port": free_port(), "workers": 1},
            "storage": {"driver": "memory"}, **extra}


def run_serve_expecting_exit(config_path: str, cwd, env: dict | None = None,
                             timeout: float = 20) -> subprocess.CompletedProcess:
    """``blobsvc serve`` that must exit by itself; killed (by PID) if it does not."""
    proc = subprocess.Popen([sys.executable, "-m", "blobsvc", "serve", "-c", config_path],
                            cwd=cwd, env=clean_environ(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"blobsvc serve kept running on {config_path} instead of refusing to start")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_serve_on_all_interfaces_without_auth_exits_2_with_one_line(tmp_path):
    result = run_serve_expecting_exit(write_config(tmp_path, open_config("0.0.0.0")), tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "0.0.0.0" in lines[0] and "BLOBSVC_TOKEN" in lines[0]


def test_serve_with_host_from_the_environment_and_no_auth_exits_2(tmp_path):
    config = write_config(tmp_path, open_config("127.0.0.1"))
    result = run_serve_expecting_exit(config, tmp_path, {"BLOBSVC_SERVER_HOST": "0.0.0.0"})
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_check_config_on_all_interfaces_without_auth_exits_2(tmp_path):
    result = run_cli(["check-config", "-c", write_config(tmp_path, open_config("0.0.0.0"))], tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1


def test_check_config_on_all_interfaces_accepts_blobsvc_token(tmp_path):
    result = run_cli(["check-config", "-c", write_config(tmp_path, open_config("0.0.0.0"))], tmp_path,
                     {"BLOBSVC_TOKEN": "a-token-from-the-environment"})
    assert result.returncode == 0, result.stderr


def test_check_config_on_all_interfaces_accepts_an_s3_key_pair_from_the_environment(tmp_path):
    result = run_cli(["check-config", "-c", write_config(tmp_path, open_config("0.0.0.0"))], tmp_path,
                     {"BLOBSVC_ACCESS_KEY": "ci-uploader", "BLOBSVC_SECRET_KEY": "a-secret-key-of-length"})
    assert result.returncode == 0, result.stderr


def test_check_config_refuses_half_an_s3_key_pair(tmp_path):
    result = run_cli(["check-config", "-c", write_config(tmp_path, open_config("127.0.0.1"))], tmp_path,
                     {"BLOBSVC_ACCESS_KEY": "ci-uploader"})
    assert result.returncode == 2
    assert "BLOBSVC_SECRET_KEY is not set" in result.stderr


def test_check_config_on_all_interfaces_accepts_anonymous_write_on_purpose(tmp_path):
    config = open_config("0.0.0.0", auth={"anonymous": "write"})
    result = run_cli(["check-config", "-c", write_config(tmp_path, config)], tmp_path)
    assert result.returncode == 0, result.stderr


def test_check_config_on_all_interfaces_accepts_users(tmp_path):
    config = open_config("0.0.0.0", auth={"users": USERS})
    result = run_cli(["check-config", "-c", write_config(tmp_path, config)], tmp_path)
    assert result.returncode == 0, result.stderr


# -- over a real server ----------------------------------------------------------

@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("auth-server")
    config = {
        "server": {"host": "127.0.0.1", "port": 0},
        "storage": {"driver": "filesystem", "root": "./data", "fsync": False},
        "log": {"access_log": False},
        "auth": auth_section(),
    }
    server = ServerProcess(workdir, config).start()
    yield server
    server.stop()


def test_real_server_refuses_anonymous_put_with_a_challenge(auth_server):
    response = requests.put(auth_server.url + "/v1/objects/real/anon.bin", data=b"x", timeout=10)
    assert response.status_code == 401
    assert "Basic" in response.headers["WWW-Authenticate"]
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert not (auth_server.workdir / "data" / "real" / "anon.bin").exists()


def test_real_server_token_writes_and_basic_user_reads(auth_server):
    put = requests.put(auth_server.url + "/v1/objects/real/both.bin", data=b"token wrote this",
                       headers={"Authorization": bearer("write-token-0123456789")}, timeout=10)
    get = requests.get(auth_server.url + "/v1/objects/real/both.bin",
                       auth=("reader", "reader-pw"), timeout=10)
    assert put.status_code == 201
    assert (get.status_code, get.content) == (200, b"token wrote this")


def test_real_server_read_user_cannot_delete(auth_server):
    requests.put(auth_server.url + "/v1/objects/real/keep.bin", data=b"keep",
                 headers={"Authorization": bearer("write-token-0123456789")}, timeout=10)
    response = requests.delete(auth_server.url + "/v1/objects/real/keep.bin",
                               auth=("reader", "reader-pw"), timeout=10)
    assert response.status_code == 403
    assert (auth_server.workdir / "data" / "real" / "keep.bin").read_bytes() == b"keep"


def sign_cli(server: ServerProcess, path: str, *options: str) -> str:
    result = run_cli(["sign", "-c", str(server.config_path), "--base-url", server.url, *options, path],
                     server.workdir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    return lines[0]


def curl(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True,
                          timeout=timeout)


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@needs_curl
def test_cli_signed_get_url_works_with_curl(auth_server):
    requests.put(auth_server.url + "/v1/objects/signed/get.bin", data=b"signed for curl",
                 headers={"Authorization": bearer("write-token-0123456789")}, timeout=10)
    url = sign_cli(auth_server, "signed/get.bin")
    result = curl("-f", url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"signed for curl"


def test_cli_signed_get_url_works_with_requests_for_get_and_head(auth_server):
    requests.put(auth_server.url + "/v1/objects/signed/head.bin", data=b"twelve bytes",
                 headers={"Authorization": bearer("write-token-0123456789")}, timeout=10)
    url = sign_cli(auth_server, "signed/head.bin", "--method", "GET")
    get = requests.get(url, timeout=10)
    head = requests.head(url, timeout=10)
    assert (get.status_code, get.content) == (200, b"twelve bytes")
    assert (head.status_code, head.headers["Content-Length"]) == (200, "12")


@needs_curl
def test_cli_signed_put_url_uploads_with_curl(auth_server, tmp_path):
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(100_000))
    url = sign_cli(auth_server, "signed/put.bin", "--method", "PUT", "--expires-in", "120")
    result = curl("-f", "-T", str(upload), url)
    assert result.returncode == 0, result.stderr
    assert (auth_server.workdir / "data" / "signed" / "put.bin").read_bytes() == upload.read_bytes()


def test_cli_signed_url_that_has_expired_is_403(auth_server):
    requests.put(auth_server.url + "/v1/objects/signed/old.bin", data=b"old",
                 headers={"Authorization": bearer("write-token-0123456789")}, timeout=10)
    # blobsvc sign refuses to print a dead URL, so this one is made by hand.
    query = signed_query(SIGNING_KEY, "GET", "signed/old.bin", int(time.time()) - 1)
    url = f"{auth_server.url}/v1/objects/signed/old.bin?{query}"
    assert requests.get(url, timeout=10).status_code == 403


@pytest.mark.parametrize("tamper", ["signature", "path", "expiry"])
def test_cli_signed_url_tampered_with_is_403(auth_server, tamper):
    requests.put(auth_server.url + "/v1/objects/signed/tamper.bin", data=b"tamper",
                 headers={"Authorization": bearer("write-token-0123456789")}, timeout=10)
    requests.put(auth_server.url + "/v1/objects/signed/other.bin", data=b"other",
                 headers={"Authorization": bearer("write-token-0123456789")}, timeout=10)
    url = sign_cli(auth_server, "signed/tamper.bin", "--expires-in", "60")
    if tamper == "signature":
        url = tampered_signature(url)
    elif tamper == "path":
        url = url.replace("signed/tamper.bin", "signed/other.bin")
    else:
        url = with_query(url, expires=str(int(time.time()) + 86400))
    assert requests.get(url, timeout=10).status_code == 403


def test_cli_get_signed_url_cannot_put(auth_server):
    url = sign_cli(auth_server, "signed/not-here.bin")
    response = requests.put(url, data=b"x", timeout=10)
    assert response.status_code == 403
    assert not (auth_server.workdir / "data" / "signed" / "not-here.bin").exists()


def test_cli_sign_without_a_signing_key_exits_2(tmp_path):
    config = write_config(tmp_path, {"storage": {"driver": "memory"}, "auth": {"users": USERS}})
    result = run_cli(["sign", "-c", config, "a/b"], tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""


# -- TLS -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, certificate):
    cert, key = certificate
    workdir = tmp_path_factory.mktemp("tls-server")
    port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "storage": {"driver": "filesystem", "root": "./data", "fsync": False},
        "log": {"access_log": False},
        "auth": {"tokens": [{"name": "tls", "token": "tls-token-0123456789", "access": "write"}]},
        "tls": {"cert": str(cert), "key": str(key)},
    }
    server = ServerProcess(workdir, config)
    server.port = port
    server.start(wait=False)

    def ready() -> bool:
        assert server.proc.poll() is None, server.stderr()
        try:
            return requests.get(f"https://127.0.0.1:{port}/healthz", verify=str(cert),
                                timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        assert wait_for(ready, timeout=20), server.stderr()
        yield server
    finally:
        server.stop()


@needs_curl
def test_tls_put_and_get_with_curl_cacert_are_byte_exact(tls_server, certificate, tmp_path):
    cert, _ = certificate
    source, copy = tmp_path / "source.bin", tmp_path / "copy.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    url = f"https://127.0.0.1:{tls_server.port}/v1/objects/tls/blob.bin"
    auth = ["-H", "Authorization: Bearer tls-token-0123456789"]
    put = curl("-f", "--cacert", str(cert), *auth, "-T", str(source), url)
    get = curl("-f", "--cacert", str(cert), *auth, "-o", str(copy), url)
    assert put.returncode == 0, put.stderr
    assert get.returncode == 0, get.stderr
    assert copy.read_bytes() == source.read_bytes()


@needs_curl
def test_tls_certificate_is_checked_by_curl(tls_server):
    result = curl(f"https://127.0.0.1:{tls_server.port}/healthz")
    assert result.returncode == 60  # peer certificate cannot be authenticated


def test_plain_http_to_the_tls_port_fails(tls_server):
    url = f"http://127.0.0.1:{tls_server.port}/v1/objects/tls/plain.bin"
    headers = {"Authorization": bearer("tls-token-0123456789")}
    try:
        response = requests.put(url, data=b"plain", headers=headers, timeout=10)
    except requests.RequestException:
        pass  # the connection is dropped: a failure too
    else:
        assert response.status_code == 400
        assert b"plain" not in response.content
    assert not (tls_server.workdir / "data" / "tls" / "plain.bin").exists()


def test_bulk_delete_judges_each_path_by_the_callers_prefix(service):
    service.driver.put_object("builds/a", b"a")
    service.driver.put_object("other/b", b"b")
    body = json.dumps({"paths": ["builds/a", "other/b"]}).encode()
    response = service.request("POST", "/v1/delete", body, PRINCIPALS["builds-write-token"][1])
    assert response.status == 200, response.body
    answer = json.loads(response.body)
    assert answer["deleted"] == ["builds/a"] and answer["not_found"] == []
    assert [(e["path"], e["code"]) for e in answer["errors"]] == [("other/b", "forbidden")]
    assert service.driver.get_object("other/b") == b"b"


def test_bulk_delete_is_refused_before_its_body_to_a_reader(service):
    before = service.snapshot()
    body = json.dumps({"paths": ["builds/seed.bin"]}).encode()
    response = service.request("POST", "/v1/delete", body, PRINCIPALS["builds-read-user"][1])
    assert_refused(response, 403)
    assert service.snapshot() == before

"""``/openapi.json`` is valid OpenAPI 3 and tells the truth about real answers.

Each request below is checked the way a fuzzer (schemathesis) checks the live
service: the status is documented for the operation, required headers are
there and match their schemas, and the body matches the documented schema
(OpenAPI 3.0's ``nullable`` understood by openapi-schema-validator).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
import webtest
from openapi_schema_validator import OAS30ReadValidator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

import blobsvc.config
import blobsvc.http.app
import blobsvc.storage
from blobsvc.native.schemas import PATH_PATTERN
from blobsvc.storage import paths
from blobsvc.storage.errors import BackendUnavailable

SPEC_URI = "urn:blobsvc:openapi"
TOKEN_READ = "read-token-0123456789"


def make_app(**document) -> webtest.TestApp:
    document = {"storage": {"driver": "memory"}, **document}
    config = blobsvc.config.build(document)
    driver = blobsvc.storage.create_driver("memory", {})
    return webtest.TestApp(blobsvc.http.app.build_app(config, driver))


@pytest.fixture
def app() -> webtest.TestApp:
    return make_app()


@pytest.fixture
def spec(app) -> dict:
    return app.get("/openapi.json").json


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class Conformance:
    """Checks one real response against what the spec documents for it."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        resource = Resource.from_contents(spec, default_specification=DRAFT4)
        self.registry = Registry().with_resource(SPEC_URI, resource)

    def resolve(self, node: dict) -> dict:
        while "$ref" in node:
            target = self.spec
            for token in node["$ref"].lstrip("#/").split("/"):
                target = target[token.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def validate(self, instance: object, pointer: str) -> None:
        validator = OAS30ReadValidator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=self.registry)
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
        assert not errors, f"{instance!r} does not match {pointer}: {errors}"

    def check(self, response: webtest.TestResponse, template: str, method: str) -> None:
        method = method.lower()
        status = str(response.status_int)
        operation = self.spec["paths"][template][method]
        assert status in operation["responses"], (
            f"{method.upper()} {template} answered {status}, documented: "
            f"{sorted(operation['responses'])}")
        documented = self.resolve(operation["responses"][status])
        where = f"/paths/{_escape(template)}/{method}/responses/{status}"

        for name, header in documented.get("headers", {}).items():
            header = self.resolve(header)
            if header.get("required"):
                assert name in response.headers, f"{status} without required header {name}"
            if name in response.headers:
                value: object = response.headers[name]
                schema = self.resolve(header["schema"])
                if schema.get("type") == "integer":
                    value = int(value)
                validator = OAS30ReadValidator(schema, registry=self.registry)
                assert validator.is_valid(value), f"header {name}: {value!r} vs {schema}"

        content = documented.get("content")
        if not content:
            assert response.body == b"", f"{status} is documented without a body"
            return
        if method == "head":
            assert response.body == b""
            return
        if "application/json" in content:
            assert response.content_type == "application/json"
            self.validate(json.loads(response.body),
                          f"{where}/content/application~1json/schema")
        elif "text/plain" in content:
            assert response.content_type == "text/plain"
        else:
            assert "*/*" in content


@pytest.fixture
def conform(spec) -> Conformance:
    return Conformance(spec)


def call(app, method, url, *, body=b"", headers=None, json_body=None):
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    if method in ("PUT", "POST"):
        return app.request(url, method=method, body=body, headers=headers or {},
                           expect_errors=True)
    return app.request(url, method=method, headers=headers or {}, expect_errors=True)


OBJECT = "/v1/objects/{path}"
DIR = "/v1/objects/{dir}/"
ROOT = "/v1/objects/"


# -- the document itself ------------------------------------------------------


def test_document_is_valid_openapi_3(spec):
    assert spec["openapi"] == "3.0.3"
    validate_openapi(spec)


def test_every_route_is_described(spec):
    assert set(spec["paths"]) == {
        OBJECT, ROOT, DIR, "/v1/objects", "/v1/move", "/v1/copy", "/v1/cat", "/v1/delete",
        "/healthz", "/readyz", "/openapi.json", "/metrics",
    }
    schemas = spec["components"]["schemas"]
    for name in ("ObjectInfo", "PutResult", "Listing", "Error"):
        assert name in schemas


@pytest.mark.parametrize("path", [
    "a", "a/b.bin", "...", ".a", "a..", "x/.blobsvc", ".blobsvcx", "ä/ü €", "a b/c%2Fd",
    "s" * 255, "/".join(["s" * 255] * 3 + ["s" * 254, "s"]),  # 1024 bytes
], ids=lambda path: repr(path)[:40])
def test_path_pattern_accepts_what_the_service_accepts(path):
    assert paths.validate_path(path) == path
    assert re.search(PATH_PATTERN, path)


@pytest.mark.parametrize("path", [
    "", "/a", "a/", "a//b", ".", "..", "a/./b", "a/..", ".blobsvc", ".blobsvc/x", "a\\b",
    "a\x00b", "a\nb", "a\x7f", "s" * 256, "a/" + "s" * 256,
    "/".join(["s" * 255] * 4 + ["s"]),  # 1025 bytes
], ids=lambda path: repr(path)[:40])
def test_path_pattern_refuses_what_the_service_refuses(path):
    with pytest.raises(paths.InvalidPath):
        paths.validate_path(path)
    assert len(path) > 1024 or not re.search(PATH_PATTERN, path)


def test_path_parameter_schema_bounds_the_length(spec, conform):
    schema = conform.resolve(spec["components"]["schemas"]["ObjectPath"])
    assert schema["maxLength"] == paths.MAX_PATH_BYTES
    assert schema["pattern"] == PATH_PATTERN


# -- real answers against the schemas -----------------------------------------


def test_put_get_head_and_ranges(app, conform):
    body = b"hello, world"
    headers = {"Content-Type": "text/plain",
               "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
               "X-Checksum-Sha256": hashlib.sha256(body).hexdigest()}
    res = call(app, "PUT", "/v1/objects/dir/a.txt", body=body, headers=headers)
    assert res.status_int == 201
    conform.check(res, OBJECT, "PUT")
    assert res.json["sha256"] == headers["X-Checksum-Sha256"]
    etag = res.headers["ETag"]

    for method in ("GET", "HEAD"):
        res = call(app, method, "/v1/objects/dir/a.txt")
        assert res.status_int == 200
        conform.check(res, OBJECT, method)
        res = call(app, method, "/v1/objects/dir/a.txt", headers={"If-None-Match": etag})
        assert res.status_int == 304
        conform.check(res, OBJECT, method)
        res = call(app, method, "/v1/objects/dir/a.txt", headers={"If-Match": '"other"'})
        assert res.status_int == 412
        conform.check(res, OBJECT, method)

    res = call(app, "GET", "/v1/objects/dir/a.txt", headers={"Range": "bytes=0-4"})
    assert res.status_int == 206 and res.body == b"hello"
    conform.check(res, OBJECT, "GET")
    res = call(app, "GET", "/v1/objects/dir/a.txt", headers={"Range": "bytes=100-"})
    assert res.status_int == 416
    conform.check(res, OBJECT, "GET")


def test_put_errors(app, conform):
    call(app, "PUT", "/v1/objects/d/x", body=b"x")
    cases = [
        ("/v1/objects/d/y", {"X-Checksum-Sha256": "0" * 64}, 400),  # checksum_mismatch
        ("/v1/objects/d/y", {"Content-MD5": "nope"}, 400),  # bad_request
        ("/v1/objects/a//b", {}, 400),  # invalid_path
        ("/v1/objects/d", {}, 409),  # a directory
        ("/v1/objects/d/x/z", {}, 409),  # below an object
        ("/v1/objects/d/x", {"If-None-Match": "*"}, 412),
    ]
    for url, headers, status in cases:
        res = call(app, "PUT", url, body=b"data", headers=headers)
        assert res.status_int == status, (url, headers, res.body)
        conform.check(res, OBJECT, "PUT")
        assert res.json["error"]["status"] == status


def test_put_too_large(conform):
    app = make_app(server={"max_object_size": 4})
    res = call(app, "PUT", "/v1/objects/big", body=b"too large")
    assert res.status_int == 413
    conform.check(res, OBJECT, "PUT")


def test_read_and_delete_errors(app, conform):
    call(app, "PUT", "/v1/objects/d/x", body=b"x")
    for method in ("GET", "HEAD", "DELETE"):
        on_dir = 409 if method == "DELETE" else 404  # a non-empty directory
        for url, status in [("/v1/objects/missing", 404), ("/v1/objects/d", on_dir),
                            ("/v1/objects/.blobsvc/x", 400)]:
            res = call(app, method, url)
            assert res.status_int == status, (method, url, res.body)
            conform.check(res, OBJECT, method)
    res = call(app, "DELETE", "/v1/objects/d/x")
    assert res.status_int == 204
    conform.check(res, OBJECT, "DELETE")


def test_listings(app, conform):
    for name in ("b", "a", "c/d"):
        call(app, "PUT", f"/v1/objects/top/{name}", body=name.encode())
    for url, template in [("/v1/objects/", ROOT), ("/v1/objects", "/v1/objects"),
                          ("/v1/objects/top/", DIR), ("/v1/objects/top/?limit=2", DIR),
                          ("/v1/objects/top/?limit=2&marker=b", DIR)]:
        for method in ("GET", "HEAD"):
            res = call(app, method, url)
            assert res.status_int == 200
            conform.check(res, template, method)
    page = call(app, "GET", "/v1/objects/top/?limit=2").json
    assert page["truncated"] and page["next_marker"] == "b"
    assert [e["isdir"] for e in page["entries"]] == [False, False]
    assert call(app, "GET", "/v1/objects/top/?marker=b").json["entries"][0]["isdir"] is True

    for url, template, status in [("/v1/objects/nope/", DIR, 404), ("/v1/objects/top/a/", DIR, 404),
                                  ("/v1/objects/?limit=0", ROOT, 400),
                                  ("/v1/objects/?limit=10001", ROOT, 400),
                                  ("/v1/objects/?marker=a&marker=b", ROOT, 400),
                                  ("/v1/objects/a//", DIR, 400)]:
        res = call(app, "GET", url)
        assert res.status_int == status, (url, res.body)
        conform.check(res, template, "GET")


def test_move(app, conform):
    call(app, "PUT", "/v1/objects/src", body=b"x")
    call(app, "PUT", "/v1/objects/dir/obj", body=b"x")
    res = call(app, "POST", "/v1/move", json_body={"from": "src", "to": "dst/file"})
    assert res.status_int == 201 and res.json["path"] == "dst/file"
    conform.check(res, "/v1/move", "POST")
    for body, status in [({"from": "src", "to": "x"}, 404), ({"from": "dst/file", "to": "dir"}, 409),
                         ({"from": "a"}, 400), ({"from": "a/../b", "to": "c"}, 400),
                         (["a", "b"], 400)]:
        res = call(app, "POST", "/v1/move", json_body=body)
        assert res.status_int == status, (body, res.body)
        conform.check(res, "/v1/move", "POST")
    res = call(app, "POST", "/v1/move", body=b"{not json", headers={"Content-Type": "application/json"})
    assert res.status_int == 400
    conform.check(res, "/v1/move", "POST")


def test_cat(app, conform):
    for name in ("c1", "c2"):
        call(app, "PUT", f"/v1/objects/{name}", body=name.encode())
    res = call(app, "POST", "/v1/cat", json_body={"path": "out", "chunks": ["c1", "gone1", "gone2"]})
    assert res.status_int == 404 and res.json["error"]["missing"] == ["gone1", "gone2"]
    conform.check(res, "/v1/cat", "POST")
    res = call(app, "POST", "/v1/cat", json_body={"path": "out", "chunks": ["c1", "c2"]})
    assert res.status_int == 201 and res.json["size"] == 4
    conform.check(res, "/v1/cat", "POST")
    res = call(app, "POST", "/v1/cat", json_body={"path": "out", "chunks": []})
    assert res.status_int == 400
    conform.check(res, "/v1/cat", "POST")


def test_service_endpoints(app, conform):
    for url, method in [("/healthz", "GET"), ("/healthz", "HEAD"), ("/readyz", "GET"),
                        ("/readyz", "HEAD"), ("/openapi.json", "GET"), ("/metrics", "GET")]:
        res = call(app, method, url)
        assert res.status_int == 200, url
        conform.check(res, url, method)


def test_readyz_when_the_backend_is_down(conform):
    config = blobsvc.config.build({"storage": {"driver": "memory"}})
    driver = blobsvc.storage.create_driver("memory", {})

    def down() -> None:
        raise BackendUnavailable("the backend is down")

    driver.check_ready = down
    app = webtest.TestApp(blobsvc.http.app.build_app(config, driver))
    for method in ("GET", "HEAD"):
        res = call(app, method, "/readyz")
        assert res.status_int == 503
        conform.check(res, "/readyz", method)


def test_access_denied(conform):
    app = make_app(auth={"anonymous": "none",
                         "tokens": [{"name": "reader", "token": TOKEN_READ, "access": "read"}]})
    reader = {"Authorization": f"Bearer {TOKEN_READ}"}
    cases = [("GET", "/v1/objects/a", OBJECT, {}, 401), ("PUT", "/v1/objects/a", OBJECT, reader, 403),
             ("GET", "/v1/objects/", ROOT, {}, 401), ("GET", "/metrics", "/metrics", {}, 401),
             ("DELETE", "/v1/objects/a", OBJECT, reader, 403)]
    for method, url, template, headers, status in cases:
        res = call(app, method, url, headers=headers)
        assert res.status_int == status, (method, url)
        conform.check(res, template, method)
    res = call(app, "POST", "/v1/move", json_body={"from": "a", "to": "b"}, headers=reader)
    assert res.status_int == 403
    conform.check(res, "/v1/move", "POST")
    for url in ("/healthz", "/readyz", "/openapi.json"):
        assert call(app, "GET", url).status_int == 200


#: A concrete URL for each documented path template.
EXAMPLE_URLS = {OBJECT: "/v1/objects/a/b", DIR: "/v1/objects/a/", ROOT: "/v1/objects/"}


def test_undocumented_methods_are_405_with_the_documented_allow(app, spec):
    for template, item in spec["paths"].items():
        documented = sorted(m.upper() for m in item if m in
                            ("get", "head", "put", "post", "delete", "patch", "options", "trace"))
        res = call(app, "PATCH", EXAMPLE_URLS.get(template, template))
        assert res.status_int == 405, template
        assert res.headers["Allow"] == ", ".join(documented), template


def test_the_checker_catches_a_lie(app, spec):
    """The checks above are not vacuous: a spec that is wrong fails them."""
    call(app, "PUT", "/v1/objects/a", body=b"x")
    listing = call(app, "GET", "/v1/objects/")
    wrong = json.loads(json.dumps(spec))
    wrong["components"]["schemas"]["ObjectInfo"]["properties"]["size"] = {"type": "string"}
    with pytest.raises(AssertionError, match="does not match"):
        Conformance(wrong).check(listing, ROOT, "GET")
    del wrong["paths"][ROOT]["get"]["responses"]["200"]
    with pytest.raises(AssertionError, match="answered 200"):
        Conformance(wrong).check(listing, ROOT, "GET")
    wrong["paths"][OBJECT]["put"]["responses"]["201"]["headers"]["X-Absent"] = {
        "required": True, "schema": {"type": "string"}}
    with pytest.raises(AssertionError, match="required header X-Absent"):
        Conformance(wrong).check(call(app, "PUT", "/v1/objects/b", body=b"y"), OBJECT, "PUT")

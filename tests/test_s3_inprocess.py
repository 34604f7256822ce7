"""The S3 front end in-process (WebTest, memory driver): configuration
(virtual-hosted style, region, switched off), and answers hard to provoke
on a live server (a bug's 500)."""

from __future__ import annotations

import pytest
from api_client import WebTestClient
from defusedxml import ElementTree
from s3_helpers import S3_NAMESPACE

import blobsvc.config
from blobsvc.http.app import build_app
from blobsvc.s3.objects import S3Objects
from blobsvc.storage import create_driver


def app(**s3_section) -> WebTestClient:
    config = blobsvc.config.build({"storage": {"driver": "memory"}, "log": {"access_log": False},
                                   "s3": s3_section})
    return WebTestClient(build_app(config, create_driver("memory", {})))


def code_of(body: bytes) -> str | None:
    return ElementTree.fromstring(body).findtext("Code")


def test_virtual_hosted_requests_name_the_bucket_in_the_host():
    client = app(domain="s3.test")
    host = {"Host": "media.s3.test:8080"}
    assert client.request("PUT", "/", headers=host).status == 200
    assert client.request("PUT", "/healthz", b"a key, not the probe", headers=host).status == 200
    assert client.request("GET", "/v1/objects/media/healthz").body == b"a key, not the probe"
    assert client.request("GET", "/healthz").body == b'{"status": "ok"}\n'
    listing = client.request("GET", "/?list-type=2", headers=host)
    root = ElementTree.fromstring(listing.body)
    assert [key.text for key in root.iter(f"{S3_NAMESPACE}Key")] == ["healthz"]
    assert client.request("GET", "/media/healthz").body == b"a key, not the probe"


def test_a_host_outside_the_domain_is_path_style():
    client = app(domain="s3.test")
    assert client.request("PUT", "/plain", headers={"Host": "other.example"}).status == 200
    assert client.request("HEAD", "/plain", headers={"Host": "s3.test"}).status == 200


def test_an_invalid_bucket_in_the_host_is_invalid_bucket_name():
    answer = app(domain="s3.test").request("GET", "/", headers={"Host": "a_b.s3.test"})
    assert answer.status == 400 and code_of(answer.body) == "InvalidBucketName"


def test_the_region_is_the_bucket_location():
    client = app(region="eu-central-1")
    client.request("PUT", "/where")
    answer = client.request("GET", "/where?location")
    assert ElementTree.fromstring(answer.body).text == "eu-central-1"


def test_switched_off_the_s3_paths_are_no_routes():
    answer = app(enabled=False).request("PUT", "/bucket")
    assert answer.status == 404 and answer.json()["error"]["code"] == "not_found"


def test_an_empty_bucket_stays_out_of_native_listings_on_the_memory_driver():
    client = app()
    client.request("PUT", "/empty")
    assert client.request("GET", "/v1/objects/").json()["entries"] == []
    assert client.request("GET", "/v1/objects/?recursive=true").json()["entries"] == []
    assert b"<Name>empty</Name>" in client.request("GET", "/").body


def test_a_bug_is_an_s3_internal_error_naming_the_request(monkeypatch):
    def broken(self, bucket, key):
        raise RuntimeError("a bug")

    monkeypatch.setattr(S3Objects, "get_object", broken)
    client = app()
    client.request("PUT", "/bkt")
    client.request("PUT", "/bkt/k", b"x")
    answer = client.request("GET", "/bkt/k")
    assert answer.status == 500 and answer.headers["Content-Type"] == "application/xml"
    root = ElementTree.fromstring(answer.body)
    assert root.findtext("Code") == "InternalError"
    assert root.findtext("RequestId") == answer.headers["X-Request-Id"]
    assert "a bug" not in answer.body.decode()


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_a_missing_key_is_404_with_or_without_a_body(method):
    client = app()
    client.request("PUT", "/bkt")
    answer = client.request(method, "/bkt/absent")
    assert answer.status == 404
    assert (answer.body == b"") == (method == "HEAD")


@pytest.mark.parametrize("sent, stored", [("aws-chunked", None), ("aws-chunked,gzip", "gzip"),
                                          ("gzip", "gzip"), ("AWS-Chunked, br", "br")])
def test_aws_chunked_is_never_stored_as_the_object_content_encoding(sent, stored):
    from blobsvc.http import exchange
    from blobsvc.http.exchange import Request, Response
    from blobsvc.s3.headers import meta_from_s3_request

    environ = {"REQUEST_METHOD": "PUT", "HTTP_CONTENT_ENCODING": sent, "wsgi.input": None}
    exchange.begin(Request(environ), Response(0.0))
    try:
        assert meta_from_s3_request().headers.get("Content-Encoding") == stored
    finally:
        exchange.end()


def test_the_access_log_names_the_s3_operation(caplog):
    import logging

    config = blobsvc.config.build({"storage": {"driver": "memory"}, "log": {"access_log": True}})
    client = WebTestClient(build_app(config, create_driver("memory", {})))
    with caplog.at_level(logging.INFO, logger="blobsvc.access"):
        client.request("PUT", "/logged")
        client.request("PUT", "/logged/key", b"x")
        client.request("GET", "/logged?list-type=2")
        client.request("DELETE", "/logged/key")
    routes = [record.route for record in caplog.records if record.name == "blobsvc.access"]
    assert routes == ["s3:CreateBucket", "s3:PutObject", "s3:ListObjectsV2", "s3:DeleteObject"]

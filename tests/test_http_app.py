"""The WSGI application's own duties, which no resource sees: an answer
for what nobody expected, and the end of every exchange run exactly once,
whether its body was sent or not."""

from __future__ import annotations

import io
import json
import logging
import os

import pytest
import webtest

import blobsvc.config
from blobsvc.http import exchange
from blobsvc.http.app import build_app
from blobsvc.metrics import Metrics
from blobsvc.native.resources import ObjectResource
from blobsvc.storage import create_driver


def make_app(tmp_path, metrics: Metrics):
    config = blobsvc.config.build({"storage": {"driver": "filesystem", "root": str(tmp_path)},
                                   "log": {"access_log": False}})
    return build_app(config, create_driver("filesystem", {"root": str(tmp_path)}), metrics)


def in_flight(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("blobsvc_requests_in_flight") or 0.0


def environ(method: str, path: str) -> dict:
    return {"REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "localhost",
            "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http"}


def test_an_unexpected_error_is_a_json_500_and_logged(tmp_path, monkeypatch, caplog):
    metrics = Metrics()
    app = webtest.TestApp(make_app(tmp_path, metrics))

    def broken(self, path):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ObjectResource, "GET", broken)
    monkeypatch.setattr(ObjectResource, "HEAD", broken)
    with caplog.at_level(logging.ERROR):
        answer = app.get("/v1/objects/x", status=500)
        assert app.head("/v1/objects/x", status=500).body == b""
    assert answer.json["error"]["code"] == "internal_error"
    assert "a bug" not in answer.text  # the traceback is the log's, not the client's
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert f"(request id {answer.headers['X-Request-Id']})" in caplog.text
    assert "Date" in answer.headers and answer.headers["Server"] == "blobsvc"
    assert int(answer.headers["Content-Length"]) == len(answer.body)
    assert "RuntimeError: a bug" in caplog.text
    assert in_flight(metrics) == 0


def test_a_get_whose_body_is_never_sent_still_ends_and_closes_the_file(tmp_path):
    metrics = Metrics()
    app = make_app(tmp_path, metrics)
    webtest.TestApp(app).put("/v1/objects/big", os.urandom(3 * 1024 * 1024))
    fds = len(os.listdir("/proc/self/fd"))
    statuses = []
    answer = app(environ("GET", "/v1/objects/big"), lambda status, headers: statuses.append(status))
    assert statuses == ["200 OK"] and in_flight(metrics) == 1
    assert len(os.listdir("/proc/self/fd")) == fds + 1  # the object, open
    answer.close()  # a client gone before the first byte
    assert len(os.listdir("/proc/self/fd")) == fds
    assert in_flight(metrics) == 0
    with pytest.raises(RuntimeError):
        exchange.request()  # the exchange is over on this thread


@pytest.mark.parametrize(("method", "status", "body"), [
    ("HEAD", "200 OK", b""), ("GET", "200 OK", b"hello"), ("DELETE", "204 No Content", b"")])
def test_framing_headers_follow_the_status(tmp_path, method, status, body):
    app = make_app(tmp_path, Metrics())
    webtest.TestApp(app).put("/v1/objects/o", b"hello")
    seen = {}
    answer = app(environ(method, "/v1/objects/o"),
                 lambda line, headers: seen.update(status=line, headers=dict(headers)))
    sent = b"".join(answer)
    answer.close()
    assert (seen["status"], sent) == (status, body)
    if status.startswith("204"):
        assert "Content-Length" not in seen["headers"] and "Content-Type" not in seen["headers"]
    else:
        assert seen["headers"]["Content-Length"] == "5"


def test_a_listing_answer_is_whole_json_with_its_length(tmp_path):
    app = make_app(tmp_path, Metrics())
    webtest.TestApp(app).put("/v1/objects/d/o", b"x")
    seen = {}
    answer = app(environ("GET", "/v1/objects/d/"), lambda line, headers: seen.update(h=dict(headers)))
    sent = b"".join(answer)
    answer.close()
    assert int(seen["h"]["Content-Length"]) == len(sent)
    assert [entry["name"] for entry in json.loads(sent)["entries"]] == ["o"]


@pytest.mark.parametrize("query", ["1,2x", "12,34", "limit=2;marker=a"])
def test_odd_query_strings_get_a_json_400_not_a_crash(tmp_path, query):
    """CherryPy's parser read ``?12,34`` as an image map's coordinates (and
    raised on ``?1,2x``) and split on ``;``: only ``&`` separates here."""
    app = webtest.TestApp(make_app(tmp_path, Metrics()))
    answer = app.get(f"/v1/objects/?{query}", status=400)
    assert answer.json["error"]["code"] == "bad_request"
    assert "X-Request-Id" in answer.headers


def test_a_bulk_delete_counts_every_object_it_deleted(tmp_path):
    metrics = Metrics()
    app = webtest.TestApp(make_app(tmp_path, metrics))
    for name in ("a", "b", "c"):
        app.put(f"/v1/objects/m/{name}", b"x")
    app.delete("/v1/objects/m/c")
    app.post_json("/v1/delete", {"paths": ["m/a", "m/b", "m/absent"]})
    assert metrics.registry.get_sample_value("blobsvc_objects_deleted_total") == 3

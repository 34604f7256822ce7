"""Operating the service: Prometheus metrics, access logs, request ids.

Metrics are read the way a scraper reads them, from ``/metrics``, and
compared before and after the requests under test. Most run in-process
(WebTest, memory driver, one Metrics per test); the summing over worker
processes and the logs run against real ``blobsvc serve`` processes on
127.0.0.1, whose stderr is the log.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import uuid

import pytest
import requests
from api_client import ServerProcess, WebTestClient, wait_for
from prometheus_client.parser import text_string_to_metric_families

import blobsvc.config
from blobsvc.http.app import build_app
from blobsvc.metrics import Metrics
from blobsvc.storage import create_driver
from blobsvc.storage.errors import BackendUnavailable

SAFE_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


# -- in-process service with metrics --------------------------------------------


class FlakyDriver:
    """Wraps a driver; methods named in ``failing`` raise BackendUnavailable."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.failing: set[str] = set()

    def __getattr__(self, name: str):
        attribute = getattr(self.inner, name)
        if name not in self.failing:
            return attribute

        def unavailable(*_args, **_kwargs):
            raise BackendUnavailable("injected: the backend does not answer")

        return unavailable


class Service:
    def __init__(self) -> None:
        config = blobsvc.config.build({"storage": {"driver": "memory"}, "log": {"access_log": False}}, {})
        self.driver = FlakyDriver(create_driver("memory", {}))
        self.metrics = Metrics()
        self.client = WebTestClient(build_app(config, self.driver, self.metrics))

    def request(self, method, target, body=None, headers=None):
        return self.client.request(method, target, body, headers)

    def put(self, path: str, data: bytes):
        response = self.request("PUT", f"/v1/objects/{path}", data)
        assert response.status == 201, response.body
        return response

    def scrape(self) -> Scrape:
        response = self.request("GET", "/metrics")
        assert response.status == 200
        return Scrape(response.body.decode())


class Scrape:
    """One ``/metrics`` answer, parsed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def service() -> Service:
    return Service()


def delta(service: Service, action, name: str, **labels) -> float:
    before = service.scrape().value(name, **labels)
    action()
    return service.scrape().value(name, **labels) - before


# -- request counter -------------------------------------------------------------

@pytest.mark.parametrize("method, target, body, route, status", [
    ("PUT", "/v1/objects/a/new.bin", b"abc", "object", "201"),
    ("GET", "/v1/objects/a/seed.bin", None, "object", "200"),
    ("HEAD", "/v1/objects/a/seed.bin", None, "object", "200"),
    ("GET", "/v1/objects/a/missing.bin", None, "object", "404"),
    ("DELETE", "/v1/objects/a/seed.bin", None, "object", "204"),
    ("GET", "/v1/objects/a/", None, "listing", "200"),
    ("GET", "/v1/objects/", None, "listing", "200"),
    ("GET", "/v1/objects/a/%00", None, "object", "400"),
    ("GET", "/healthz", None, "/healthz", "200"),
    ("POST", "/v1/move", b'{"from": "a/seed.bin", "to": "a/moved.bin"}', "/v1/move", "201"),
    ("POST", "/v1/cat", b'{"path": "a/cat.bin", "chunks": ["a/seed.bin"]}', "/v1/cat", "201"),
    ("PROPFIND", "/v1/objects/a/seed.bin", None, "object", "405"),
])
@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")  # WebTest's lint, on PROPFIND
def test_request_counter_counts_method_route_and_status(service, method, target, body, route, status):
    service.put("a/seed.bin", b"seed")
    counted_method = method if method != "PROPFIND" else "other"
    moved = delta(service, lambda: service.request(method, target, body),
                  "blobsvc_requests_total", method=counted_method, route=route, status=status)
    assert moved == 1


def test_unknown_endpoint_is_counted_under_one_route(service):
    # Outside /v1/objects but under the native API's /v1 (any other path is S3's).
    service.request("GET", "/v1/no-such-endpoint-7f3a")
    scrape = service.scrape()
    assert scrape.value("blobsvc_requests_total", method="GET", route="unknown", status="404") == 1


# -- bytes, objects, latency, in-flight -----------------------------------------------

def test_received_bytes_count_the_uploaded_body(service):
    moved = delta(service, lambda: service.put("a/up.bin", b"x" * 12345), "blobsvc_received_bytes_total")
    assert moved == 12345


def test_received_bytes_count_a_chunked_upload(service):
    def upload():
        response = service.request("PUT", "/v1/objects/a/chunked.bin", iter([b"a" * 1000, b"b" * 234]))
        assert response.status == 201

    assert delta(service, upload, "blobsvc_received_bytes_total") == 1234


def test_sent_bytes_count_a_download(service):
    service.put("a/down.bin", b"y" * 5000)
    moved = delta(service, lambda: service.request("GET", "/v1/objects/a/down.bin"),
                  "blobsvc_sent_bytes_total")
    assert moved == 5000


def test_sent_bytes_count_only_the_range_sent(service):
    service.put("a/range.bin", b"z" * 5000)

    def ranged():
        response = service.request("GET", "/v1/objects/a/range.bin", None, {"Range": "bytes=100-199"})
        assert response.status == 206

    assert delta(service, ranged, "blobsvc_sent_bytes_total") == 100


def test_head_sends_no_body_bytes(service):
    service.put("a/head.bin", b"h" * 5000)
    moved = delta(service, lambda: service.request("HEAD", "/v1/objects/a/head.bin"),
                  "blobsvc_sent_bytes_total")
    assert moved == 0


def test_objects_written_count_put_move_and_cat(service):
    def writes():
        service.put("w/one", b"1")
        service.put("w/two", b"2")
        assert service.request("POST", "/v1/move", b'{"from": "w/one", "to": "w/three"}').status == 201
        assert service.request("POST", "/v1/cat", b'{"path": "w/four", "chunks": ["w/two"]}').status == 201

    assert delta(service, writes, "blobsvc_objects_written_total") == 4


def test_refused_upload_is_not_counted_as_written(service):
    def bad_upload():
        response = service.request("PUT", "/v1/objects/w/bad", b"data",
                                   {"X-Checksum-Sha256": "0" * 64})
        assert response.status == 400

    assert delta(service, bad_upload, "blobsvc_objects_written_total") == 0


def test_objects_deleted_count_successful_deletes_only(service):
    service.put("d/one", b"1")

    def deletes():
        assert service.request("DELETE", "/v1/objects/d/one").status == 204
        assert service.request("DELETE", "/v1/objects/d/one").status == 404

    assert delta(service, deletes, "blobsvc_objects_deleted_total") == 1


def test_latency_histogram_counts_every_request(service):
    service.put("l/x", b"latency")
    before = service.scrape()
    for _ in range(5):
        service.request("GET", "/v1/objects/l/x")
    after = service.scrape()
    labels = {"method": "GET", "route": "object"}
    count = after.value("blobsvc_request_duration_seconds_count", **labels)
    assert count - before.value("blobsvc_request_duration_seconds_count", **labels) == 5
    assert after.value("blobsvc_request_duration_seconds_bucket", le="+Inf", **labels) == count
    assert after.value("blobsvc_request_duration_seconds_sum", **labels) > 0


def test_in_flight_gauge_is_back_to_zero_after_requests(service):
    service.put("f/x", b"x" * 3_000_000)
    service.request("GET", "/v1/objects/f/x")
    service.request("GET", "/v1/objects/f/missing")
    service.request("PUT", "/v1/objects/f/bad", b"data", {"Content-MD5": "not-md5"})
    service.driver.failing.add("open_object")
    service.request("GET", "/v1/objects/f/x")
    assert service.metrics.registry.get_sample_value("blobsvc_requests_in_flight") == 0


def test_in_flight_gauge_counts_the_scrape_itself(service):
    assert service.scrape().value("blobsvc_requests_in_flight") == 1


# -- backend errors ----------------------------------------------------------------

@pytest.mark.parametrize("failing, method, target, body", [
    ("open_object", "GET", "/v1/objects/b/x", None),
    ("stat_object", "HEAD", "/v1/objects/b/x", None),
    ("put_object", "PUT", "/v1/objects/b/y", b"new"),
    ("delete_object", "DELETE", "/v1/objects/b/x", None),
    ("list_objects", "GET", "/v1/objects/b/", None),
    ("move_object", "POST", "/v1/move", b'{"from": "b/x", "to": "b/z"}'),
])
def test_injected_backend_unavailable_is_503_and_counted(service, failing, method, target, body):
    service.put("b/x", b"backend")
    service.driver.failing.add(failing)
    before = service.scrape().value("blobsvc_backend_errors_total", kind="backend_unavailable")
    response = service.request(method, target, body)
    after = service.scrape().value("blobsvc_backend_errors_total", kind="backend_unavailable")
    assert response.status == 503
    if method != "HEAD":
        assert response.json()["error"]["code"] == "backend_unavailable"
    assert after - before == 1


def test_not_found_is_not_a_backend_error(service):
    moved = delta(service, lambda: service.request("GET", "/v1/objects/b/none"),
                  "blobsvc_backend_errors_total", kind="not_found")
    assert moved == 0
    assert "not_found" not in service.scrape().text


def test_readyz_is_503_while_the_backend_is_down(service):
    service.driver.failing.add("check_ready")
    response = service.request("GET", "/readyz")
    assert response.status == 503
    assert response.json()["error"]["code"] == "backend_unavailable"


# -- no object paths in /metrics -------------------------------------------------------

def test_no_object_path_appears_in_metrics(service):
    secret = "zq7secret"
    service.put(f"{secret}-dir/{secret}-a.bin", b"1")
    service.put(f"{secret}-dir/{secret}-b.bin", b"2")
    service.request("GET", f"/v1/objects/{secret}-dir/{secret}-a.bin")
    service.request("HEAD", f"/v1/objects/{secret}-dir/{secret}-a.bin")
    service.request("GET", f"/v1/objects/{secret}-dir/")
    service.request("GET", f"/v1/objects/{secret}-missing/{secret}-none")
    service.request("GET", f"/v1/objects/{secret}-dir/../{secret}-dotdot")
    service.request("POST", "/v1/move", json.dumps({"from": f"{secret}-dir/{secret}-a.bin",
                                                    "to": f"{secret}-dir/{secret}-c.bin"}).encode())
    service.request("POST", "/v1/cat", json.dumps({"path": f"{secret}-dir/{secret}-d.bin",
                                                   "chunks": [f"{secret}-dir/{secret}-b.bin",
                                                              f"{secret}-gone"]}).encode())
    service.request("DELETE", f"/v1/objects/{secret}-dir/{secret}-c.bin")
    service.request("GET", f"/{secret}-unknown-endpoint")
    service.driver.failing.add("open_object")
    service.request("GET", f"/v1/objects/{secret}-dir/{secret}-b.bin")
    assert secret not in service.scrape().text


# -- a real server with several workers ------------------------------------------------------

@pytest.fixture(scope="module")
def workers_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("metrics-server")
    config = {
        "server": {"host": "127.0.0.1", "port": 0, "workers": 2},
        "storage": {"driver": "filesystem", "root": "./data", "fsync": False},
        "log": {"access_log": False},
    }
    server = ServerProcess(workdir, config).start()
    yield server
    server.stop()


def scrape_url(base: str) -> Scrape:
    response = requests.get(base + "/metrics", timeout=10)
    assert response.status_code == 200
    return Scrape(response.text)


def test_metrics_are_summed_over_worker_processes(workers_server):
    before = scrape_url(workers_server.url)
    for index in range(20):  # a new connection each: the kernel spreads them over the workers
        response = requests.put(f"{workers_server.url}/v1/objects/spread/{index}", data=b"s" * 100,
                                timeout=10)
        assert response.status_code == 201
    labels = {"method": "PUT", "route": "object", "status": "201"}
    name = "blobsvc_requests_total"
    # A request is counted once its answer is sent: a scrape on another
    # worker right after the last answer may come a moment before its count.
    wait_for(lambda: scrape_url(workers_server.url).value(name, **labels)
             - before.value(name, **labels) >= 20, timeout=5)
    after = scrape_url(workers_server.url)
    assert after.value(name, **labels) - before.value(name, **labels) == 20
    assert after.value("blobsvc_objects_written_total") - before.value("blobsvc_objects_written_total") == 20
    assert after.value("blobsvc_received_bytes_total") - before.value("blobsvc_received_bytes_total") == 2000


def test_in_flight_gauge_over_workers_is_only_the_scrape(workers_server):
    for _ in range(5):
        requests.get(workers_server.url + "/healthz", timeout=10)
    assert scrape_url(workers_server.url).value("blobsvc_requests_in_flight") == 1


# -- request ids, in-process -------------------------------------------------------------------

@pytest.fixture
def access_records(caplog):
    caplog.set_level(logging.INFO, logger="blobsvc.access")
    return lambda: [r for r in caplog.records if r.name == "blobsvc.access"]


def logging_service() -> WebTestClient:
    config = blobsvc.config.build({"storage": {"driver": "memory"}}, {})
    return WebTestClient(build_app(config, create_driver("memory", {})))


def test_client_request_id_is_echoed_and_logged(access_records):
    response = logging_service().request("GET", "/healthz", None, {"X-Request-Id": "client-id-42"})
    assert response.headers["X-Request-Id"] == "client-id-42"
    assert [r.request_id for r in access_records()] == ["client-id-42"]


@pytest.mark.parametrize("hostile", [
    "evil\nINFO forged log line",
    "evil\r\nX-Injected: 1",
    "x" * 129,
    "has space",
    '"}, {"user": "admin',
    "caf\u00e9",
    "",
], ids=["newline", "crlf", "too-long", "space", "json-quote", "non-ascii", "empty"])
def test_hostile_request_id_is_replaced_by_a_generated_one(access_records, hostile):
    response = logging_service().request("GET", "/healthz", None, {"X-Request-Id": hostile})
    echoed = response.headers["X-Request-Id"]
    assert echoed != hostile
    assert SAFE_ID.match(echoed)
    assert [r.request_id for r in access_records()] == [echoed]


def test_generated_request_ids_differ(access_records):
    client = logging_service()
    ids = {client.request("GET", "/healthz").headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5


# -- access logs of a real server --------------------------------------------------------------

TOKEN = "ops-token-0123456789"


def logging_config(fmt: str) -> dict:
    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "storage": {"driver": "filesystem", "root": "./data", "fsync": False},
        "log": {"format": fmt, "access_log": True},
        "auth": {"anonymous": "read", "tokens": [{"name": "ops", "token": TOKEN, "access": "write"}]},
    }


@pytest.fixture(scope="module")
def json_server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("json-log"), logging_config("json")).start()
    yield server
    server.stop()


def complete_lines(server: ServerProcess) -> list[str]:
    """stderr's lines, without one still being written."""
    return server.stderr().split("\n")[:-1]


def json_lines(server: ServerProcess) -> list[dict]:
    """Every complete stderr line, parsed: any line that is not JSON fails."""
    return [json.loads(line) for line in complete_lines(server)]


def access_line(server: ServerProcess, request_id: str) -> dict:
    """The access-log line of ``request_id`` (written after the response)."""
    def find():
        matches = [line for line in json_lines(server)
                   if line.get("logger") == "blobsvc.access" and line.get("request_id") == request_id]
        return matches[0] if matches else None

    line = wait_for(find, timeout=10)
    assert line is not None, f"no access line for {request_id}:\n{server.stderr()}"
    return line


def new_id() -> str:
    return "test-" + uuid.uuid4().hex


def test_json_access_line_of_an_upload_has_every_field(json_server):
    request_id = new_id()
    response = requests.put(json_server.url + "/v1/objects/logs/up.bin", data=b"u" * 4321,
                            headers={"Authorization": f"Bearer {TOKEN}", "X-Request-Id": request_id},
                            timeout=10)
    assert response.status_code == 201
    line = access_line(json_server, request_id)
    assert {k: line[k] for k in ("method", "route", "status", "bytes_in", "bytes_out", "user")} == {
        "method": "PUT", "route": "object", "status": 201, "bytes_in": 4321,
        "bytes_out": len(response.content), "user": "ops"}  # the JSON answer, really sent
    assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0


def test_json_access_line_of_a_download_counts_bytes_out(json_server):
    requests.put(json_server.url + "/v1/objects/logs/down.bin", data=b"d" * 2345,
                 headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    request_id = new_id()
    response = requests.get(json_server.url + "/v1/objects/logs/down.bin",
                            headers={"X-Request-Id": request_id}, timeout=10)
    assert response.status_code == 200
    line = access_line(json_server, request_id)
    assert (line["method"], line["status"], line["bytes_out"]) == ("GET", 200, 2345)
    assert line["user"] == "anonymous"


def test_json_access_line_of_a_refused_request(json_server):
    request_id = new_id()
    response = requests.delete(json_server.url + "/v1/objects/logs/down.bin",
                               headers={"X-Request-Id": request_id}, timeout=10)
    assert response.status_code == 401
    line = access_line(json_server, request_id)
    assert (line["method"], line["route"], line["status"]) == ("DELETE", "object", 401)


def test_every_stderr_line_of_a_json_server_is_json(json_server):
    requests.get(json_server.url + "/v1/objects/logs/missing", timeout=10)
    requests.get(json_server.url + "/v1/objects/logs/%0Anewline", timeout=10)
    requests.get(json_server.url + "/no-such-endpoint", timeout=10)
    request_id = new_id()
    requests.get(json_server.url + "/healthz", headers={"X-Request-Id": request_id}, timeout=10)
    access_line(json_server, request_id)
    lines = json_lines(json_server)
    assert all(isinstance(line, dict) and "message" in line for line in lines)


def test_real_server_echoes_the_client_request_id_into_the_log(json_server):
    request_id = new_id()
    response = requests.get(json_server.url + "/healthz", headers={"X-Request-Id": request_id}, timeout=10)
    assert response.headers["X-Request-Id"] == request_id
    assert access_line(json_server, request_id)["status"] == 200


@pytest.mark.parametrize("hostile", ["t" * 200, 'a b"}{"user": "admin"}', "semi;colon"],
                         ids=["too-long", "json-injection", "semicolon"])
def test_real_server_replaces_a_hostile_request_id(json_server, hostile):
    response = requests.get(json_server.url + "/healthz", headers={"X-Request-Id": hostile}, timeout=10)
    generated = response.headers["X-Request-Id"]
    assert generated != hostile and SAFE_ID.match(generated)
    assert access_line(json_server, generated)["request_id"] == generated
    assert hostile not in json_server.stderr()


def test_real_server_replaces_a_request_id_with_a_raw_control_character(json_server):
    conn = http.client.HTTPConnection("127.0.0.1", json_server.port, timeout=10)
    try:
        conn.putrequest("GET", "/healthz")
        conn.putheader("X-Request-Id", "ab\x0bcd")  # http.client refuses only CR and LF
        conn.endheaders()
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    generated = response.getheader("X-Request-Id")
    assert generated is not None and SAFE_ID.match(generated)
    assert access_line(json_server, generated)["status"] == 200


@pytest.fixture(scope="module")
def text_server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("text-log"), logging_config("text")).start()
    yield server
    server.stop()


TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")


def test_text_access_log_has_one_line_per_request(text_server):
    batch = new_id()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    requests.put(text_server.url + "/v1/objects/text/a.bin", data=b"a",
                 headers={**auth, "X-Request-Id": f"{batch}-1"}, timeout=10)
    for index, target in enumerate(["/v1/objects/text/a.bin", "/v1/objects/text/missing",
                                    "/v1/objects/text/", "/healthz"], start=2):
        requests.get(text_server.url + target, headers={"X-Request-Id": f"{batch}-{index}"}, timeout=10)
    requests.delete(text_server.url + "/v1/objects/text/a.bin",  # 401
                    headers={"X-Request-Id": f"{batch}-6"}, timeout=10)
    assert wait_for(lambda: "\n".join(complete_lines(text_server)).count(batch) >= 6, timeout=10)
    lines = [line for line in complete_lines(text_server) if batch in line]
    logged_ids = sorted(line.rsplit("id=", 1)[1].split()[0] for line in lines)
    assert logged_ids == [f"{batch}-{i}" for i in range(1, 7)]
    assert all(TEXT_LINE.match(line) and " INFO blobsvc.access: " in line for line in lines)


def test_text_log_lines_cannot_be_split_by_a_request_path(text_server):
    """A path with an encoded newline is refused, and logged on one line."""
    marker = new_id()
    response = requests.get(text_server.url + "/v1/objects/text/evil%0A2030-01-01 00:00:00,000 INFO forged",
                            headers={"X-Request-Id": marker}, timeout=10)
    assert response.status_code == 400
    assert wait_for(lambda: any(marker in line for line in complete_lines(text_server)), timeout=10)
    bad = [line for line in complete_lines(text_server) if not TEXT_LINE.match(line)]
    assert bad == [], f"lines that are not log records: {bad}"


def test_text_log_never_contains_a_token(text_server):
    requests.put(text_server.url + "/v1/objects/text/t.bin", data=b"t",
                 headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    marker = new_id()
    requests.get(text_server.url + "/healthz", headers={"X-Request-Id": marker}, timeout=10)
    assert wait_for(lambda: marker in text_server.stderr(), timeout=10)
    assert TOKEN not in text_server.stderr()


def test_json_log_never_contains_a_token_or_password(json_server):
    requests.put(json_server.url + "/v1/objects/logs/t.bin", data=b"t",
                 headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    requests.get(json_server.url + "/v1/objects/logs/t.bin", auth=("nobody", "pw-9f8e7d"), timeout=10)
    marker = new_id()
    requests.get(json_server.url + "/healthz", headers={"X-Request-Id": marker}, timeout=10)
    access_line(json_server, marker)
    assert TOKEN not in json_server.stderr()
    assert "pw-9f8e7d" not in json_server.stderr()


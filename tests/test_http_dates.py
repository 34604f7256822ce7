"""HTTP dates as blobsvc formats them, and the response object that sends them."""

from __future__ import annotations

import random
import time
from email.utils import formatdate, parsedate_to_datetime

import pytest
import webtest

import blobsvc.config
from blobsvc.http import dates
from blobsvc.http.app import build_app
from blobsvc.http.exchange import Response
from blobsvc.storage import create_driver

EDGES = [0, 59.999, 86399, 951782400, 1e9, 1796101387.8, 2**31 - 1, 2**31, 4102444800, 253402300799]


@pytest.mark.parametrize("timestamp", EDGES)
def test_http_date_is_the_imf_fixdate_email_utils_writes(timestamp: float) -> None:
    assert dates.http_date(timestamp) == formatdate(timestamp, usegmt=True)


def test_http_date_agrees_with_email_utils_over_the_years() -> None:
    sample = random.Random(7)
    for timestamp in (sample.uniform(0, 4e9) for _ in range(5000)):
        assert dates.http_date(timestamp) == formatdate(timestamp, usegmt=True), timestamp


def test_now_follows_the_clock_second_by_second() -> None:
    first = dates.now(1_000_000_000.1)
    assert dates.now(1_000_000_000.9) == first == "Sun, 09 Sep 2001 01:46:40 GMT"
    assert dates.now(1_000_000_001.0) == "Sun, 09 Sep 2001 01:46:41 GMT"
    assert dates.now(999_999_999.5) == "Sun, 09 Sep 2001 01:46:39 GMT"  # a clock stepped back


def test_every_answer_starts_with_date_server_and_nosniff() -> None:
    response = Response(1_000_000_000.5)
    assert response.headers["Server"] == "blobsvc"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Date"] == "Sun, 09 Sep 2001 01:46:40 GMT"
    assert "Content-Type" not in response.headers  # a 204 or 304 carries none


def test_answers_carry_the_date_and_the_objects_last_modified() -> None:
    config = blobsvc.config.build({"storage": {"driver": "memory"}, "log": {"access_log": False}})
    app = webtest.TestApp(build_app(config, create_driver("memory", {})))
    before = time.time()
    put = app.put("/v1/objects/dated.txt", b"x")
    got = app.get("/v1/objects/dated.txt")
    assert parsedate_to_datetime(got.headers["Last-Modified"]).timestamp() == int(put.json["ctime"])
    assert int(before) <= parsedate_to_datetime(got.headers["Date"]).timestamp() <= time.time()

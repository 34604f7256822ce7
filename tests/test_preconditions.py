"""Conditional requests, in the order RFC 9110 section 13.2.2 gives."""

import time

import pytest

from blobsvc.http.preconditions import FAILED, NOT_MODIFIED, evaluate, if_range_allows, write_precondition
from blobsvc.storage.contract import ObjectInfo
from blobsvc.storage.errors import PreconditionFailed

CURRENT = ObjectInfo(path="a", name="a", isdir=False, size=3, ctime=1_700_000_000.7,
                     etag="abc", content_type="text/plain")
AT = "Tue, 14 Nov 2023 22:13:20 GMT"       # == int(CURRENT.ctime)
BEFORE = "Tue, 14 Nov 2023 22:13:19 GMT"
AFTER = "Tue, 14 Nov 2023 22:13:21 GMT"


@pytest.mark.parametrize("headers, method, expected", [
    ({}, "GET", None),
    ({"If-None-Match": '"abc"'}, "GET", NOT_MODIFIED),
    ({"If-None-Match": 'W/"abc"'}, "GET", NOT_MODIFIED),
    ({"If-None-Match": '"x", "abc"'}, "HEAD", NOT_MODIFIED),
    ({"If-None-Match": '"x"'}, "GET", None),
    ({"If-None-Match": "*"}, "GET", NOT_MODIFIED),
    ({"If-None-Match": '"abc"'}, "PUT", FAILED),
    ({"If-None-Match": "*"}, "PUT", FAILED),
    ({"If-Match": '"abc"'}, "GET", None),
    ({"If-Match": 'W/"abc"'}, "GET", FAILED),
    ({"If-Match": '"x"'}, "DELETE", FAILED),
    ({"If-Match": "*"}, "PUT", None),
    ({"If-Modified-Since": AT}, "GET", NOT_MODIFIED),
    ({"If-Modified-Since": AFTER}, "GET", NOT_MODIFIED),
    ({"If-Modified-Since": BEFORE}, "GET", None),
    ({"If-Modified-Since": AT}, "PUT", None),
    ({"If-Modified-Since": "yesterday"}, "GET", None),
    ({"If-Unmodified-Since": BEFORE}, "GET", FAILED),
    ({"If-Unmodified-Since": AT}, "DELETE", None),
    ({"If-Unmodified-Since": "garbage"}, "PUT", None),
    # If-None-Match takes precedence over If-Modified-Since.
    ({"If-None-Match": '"x"', "If-Modified-Since": AFTER}, "GET", None),
    # If-Match takes precedence over If-Unmodified-Since.
    ({"If-Match": '"abc"', "If-Unmodified-Since": BEFORE}, "GET", None),
])
def test_conditions_on_an_existing_object(headers, method, expected):
    assert evaluate(headers, method, CURRENT) == expected


@pytest.mark.parametrize("headers, expected", [
    ({"If-None-Match": "*"}, None),
    ({"If-Match": "*"}, FAILED),
    ({"If-Match": '"abc"'}, FAILED),
    ({"If-Unmodified-Since": BEFORE}, None),
])
def test_conditions_on_a_missing_object(headers, expected):
    assert evaluate(headers, "PUT", None) == expected


def test_create_only_put_passes_once_then_fails():
    check = write_precondition({"If-None-Match": "*"}, "PUT")
    check(None)
    with pytest.raises(PreconditionFailed):
        check(CURRENT)


def test_no_conditional_header_means_no_write_check():
    assert write_precondition({"If-Modified-Since": AT}, "PUT") is None


@pytest.mark.parametrize("header, allowed", [
    (None, True), ('"abc"', True), ('"x"', False), ('W/"abc"', False),
    (AT, True), (BEFORE, False), ("nonsense", False),
])
def test_if_range(header, allowed):
    assert if_range_allows(header, CURRENT) is allowed


# -- hostile headers: evaluation must stay linear --------------------------------

#: About the largest header value the server accepts (its header limit is 64 KiB).
N = 60_000

HOSTILE_VALUES = {
    "a long list of tags": ", ".join(['"x"'] * (N // 5)),
    "spaces": " " * N,
    "an unclosed tag": '"' + "a" * N,
    "spaces then a quote": " " * N + '"',
    "weak prefixes": "W/" * (N // 2),
    "tags without commas": '"a" ' * (N // 4),
    "tag then spaces": '"a"' + " " * N + "x",
    "commas": "," * N,
    "quotes": '"' * N,
    "a date then spaces": AT + " " * N,
    "words": "a " * (N // 2),
    "digits": "1" * N,
    "commas and spaces": ", " * (N // 2),
    "colons": ":" * N,
    "a zone of digits": "Tue, 14 Nov 2023 22:13:20 +" + "0" * N,
    "clock of colons": "14 Nov 2023 " + "1:" * (N // 2),
}


@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_hostile_conditional_headers_are_evaluated_in_linear_time(value):
    """The class of bug of the old Range parser: no header here may backtrack."""
    for name in ("If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
                 "If-Range"):
        best = float("inf")
        for _ in range(3):  # the best of three: a busy machine is not the parser's fault
            started = time.perf_counter()
            if name == "If-Range":
                if_range_allows(value, CURRENT)
            else:
                evaluate({name: value}, "GET", CURRENT)
            best = min(best, time.perf_counter() - started)
        assert best < 0.05, f"{name}: {best:.3f}s for a {len(value)}-byte value"

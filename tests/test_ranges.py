"""Range parsing against RFC 9110 section 14, edges first."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobsvc.ranges import ByteRange, Unsatisfiable, parse_range


@pytest.mark.parametrize("header, size, expected", [
    ("bytes=0-0", 10, ByteRange(0, 1)),
    ("bytes=0-9", 10, ByteRange(0, 10)),
    ("bytes=9-9", 10, ByteRange(9, 1)),
    ("bytes=5-", 10, ByteRange(5, 5)),
    ("bytes=0-", 1, ByteRange(0, 1)),
    ("bytes=3-100", 10, ByteRange(3, 7)),
    ("bytes=-1", 10, ByteRange(9, 1)),
    ("bytes=-10", 10, ByteRange(0, 10)),
    ("bytes=-50", 10, ByteRange(0, 10)),
    ("Bytes = 2 - 4", 10, ByteRange(2, 3)),
])
def test_single_ranges_select_the_right_bytes(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header, size", [
    ("bytes=10-", 10), ("bytes=10-20", 10), ("bytes=-0", 10),
    ("bytes=0-", 0), ("bytes=-5", 0), ("bytes=0-0", 0),
])
def test_ranges_beyond_the_end_are_unsatisfiable(header, size):
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


@pytest.mark.parametrize("header", [
    "bytes=abc", "bytes=5-2", "bytes=", "bytes=-", "items=0-1", "bytes=1-2-3",
    "bytes=0-1,", "0-1", "bytes=0x1-2", "bytes=--1",
])
def test_malformed_headers_are_ignored(header):
    assert parse_range(header, 10) is None


def test_several_ranges_get_the_whole_object():
    assert parse_range("bytes=0-1,4-5", 10) is None


def test_no_header_is_the_whole_object():
    assert parse_range(None, 10) is None


def test_content_range_names_first_and_last_byte():
    assert ByteRange(9, 1).content_range(10) == "bytes 9-9/10"


@given(size=st.integers(0, 10**12), first=st.integers(0, 10**12), last=st.integers(0, 10**12))
def test_any_satisfiable_range_stays_inside_the_object(size, first, last):
    header = f"bytes={first}-{last}"
    try:
        byte_range = parse_range(header, size)
    except Unsatisfiable:
        assert first >= size
        return
    if last < first:
        assert byte_range is None
        return
    assert byte_range is not None
    assert 0 <= byte_range.start <= byte_range.end < size
    assert byte_range.length >= 1


@given(size=st.integers(1, 10**12), suffix=st.integers(1, 10**12))
def test_suffix_ranges_end_at_the_last_byte(size, suffix):
    byte_range = parse_range(f"bytes=-{suffix}", size)
    assert byte_range.end == size - 1
    assert byte_range.length == min(size, suffix)


@given(st.text(max_size=40))
def test_arbitrary_headers_never_crash(header):
    try:
        result = parse_range(header, 100)
    except Unsatisfiable:
        return
    assert result is None or 0 <= result.start <= result.end < 100

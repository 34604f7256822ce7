"""Byte ranges (RFC 9110 section 14): parse ``Range``, decide 206/416/200.

Only single ranges are served. A request for several ranges gets the
whole object with ``200`` (RFC 9110 lets a server ignore Range), which every
client handles and which cannot be abused to make the service read the
same bytes many times. A malformed header is ignored, as the RFC says; a
well-formed one that selects nothing is ``416``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC = re.compile(r"^\s*([0-9]*)\s*-\s*([0-9]*)\s*$")

#: Larger than any object; positions with more digits are read as this, so
#: a 5000-digit position is a very large number, not an error.
_HUGE = 10**18


@dataclass(frozen=True)
class ByteRange:
    start: int
    length: int

    @property
    def end(self) -> int:
        """The last byte's offset, as Content-Range writes it."""
        return self.start + self.length - 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable(Exception):
    """Every requested range lies beyond the end of the object."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range to send, or None to send the whole object.

    Raises :class:`Unsatisfiable` when the header is valid but selects no
    byte of an object of ``size`` bytes.
    """
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    specs = spec.split(",")
    parsed = [_parse_spec(item) for item in specs]
    if any(item is None for item in parsed):
        return None  # malformed: ignore the header entirely
    if len(parsed) > 1:
        return None  # several ranges: the whole object, see the docstring
    first, last = parsed[0]  # type: ignore[misc]
    return _resolve(first, last, size)


def _parse_spec(spec: str) -> tuple[int | None, int | None] | None:
    match = _SPEC.match(spec)
    if not match or match.group(1) == match.group(2) == "":
        return None
    first = _number(match.group(1)) if match.group(1) else None
    last = _number(match.group(2)) if match.group(2) else None
    if first is not None and last is not None and last < first:
        return None
    return first, last


def _number(digits: str) -> int:
    return int(digits) if len(digits) < 19 else _HUGE


def _resolve(first: int | None, last: int | None, size: int) -> ByteRange:
    if first is None:  # suffix range: the last `last` bytes
        assert last is not None
        if last == 0 or size == 0:
            raise Unsatisfiable()
        length = min(last, size)
        return ByteRange(size - length, length)
    if first >= size:
        raise Unsatisfiable()
    end = size - 1 if last is None else min(last, size - 1)
    return ByteRange(first, end - first + 1)

"""Byte ranges (RFC 9110 section 14): parse ``Range``, decide 206/416/200.

Only single ranges are served. A request for several ranges gets the
whole object with ``200`` (RFC 9110 lets a server ignore Range), which every
client handles and which cannot be abused to make the service read the
same bytes many times. A malformed header is ignored, as the RFC says; a
well-formed one that selects nothing is ``416``.

Parsing is done with ``partition`` and ``strip``, never a regex: a pattern
with optional whitespace on both sides of optional digits backtracks in
cubic time, and a few KB of spaces then froze a worker for seconds. Every
step here is one linear pass over the header.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """``first-last`` with optional whitespace around each part, else None."""
    first_digits, dash, last_digits = spec.partition("-")
    first_digits, last_digits = first_digits.strip(), last_digits.strip()
    if not dash or not _is_digits(first_digits) or not _is_digits(last_digits):
        return None
    if first_digits == last_digits == "":
        return None
    first = _number(first_digits) if first_digits else None
    last = _number(last_digits) if last_digits else None
    if first is not None and last is not None and last < first:
        return None
    return first, last


def _is_digits(text: str) -> bool:
    """ASCII digits only (or nothing): ``str.isdigit`` alone accepts other scripts."""
    return text == "" or (text.isascii() and text.isdigit())


def _number(digits: str) -> int:
    """The value, capped: leading zeros do not count towards the cap."""
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) < 19 else _HUGE


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

"""HTTP dates (RFC 9110 5.6.7, IMF-fixdate), cheap enough for every answer.

``email.utils.formatdate`` builds a datetime and a timezone to print one
line; two of them (Date and Last-Modified) were a twentieth of a small GET.
The names are spelled out rather than taken from ``strftime``, whose day
and month names follow the process locale.
"""

from __future__ import annotations

import time

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: The whole second last formatted by :func:`now`, and its text.
_last: tuple[int, str] = (-1, "")


def http_date(timestamp: float) -> str:
    """``timestamp`` (seconds since the epoch) as ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    t = time.gmtime(timestamp)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def now(timestamp: float) -> str:
    """:func:`http_date` of ``timestamp``, formatted once per second: a Date
    header for every answer."""
    global _last
    second = int(timestamp)
    cached = _last  # one read: another thread may replace it meanwhile
    if cached[0] != second:
        cached = (second, http_date(second))
        _last = cached
    return cached[1]

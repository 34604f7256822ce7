"""Strict HTTP/1.1 message framing (RFC 9112), for cheroot's request reader.

Where a request's body ends decides where the next request starts, so any
leniency here is a request-smuggling hole: a proxy in front that frames a
message one way while blobsvc frames it another lets a client slip a
second request past the proxy's rules. Everything that RFC 9112 leaves a
server to "reject or repair" is rejected:

- header lines folded onto the next line (obs-fold), whitespace before the
  colon, names that are not tokens, control characters in values;
- Content-Length that is not plain digits (``+10``, ``1_0``, ``0x5``,
  ``5, 5``); Content-Length, Host or Authorization given twice;
- chunk sizes that are not plain hex, chunk lines ended by a bare LF, chunk
  extensions or trailers beyond a few KiB, a chunk not followed by CRLF.

The body readers never hold more than the caller asked for (one declared
chunk of 300 MiB is read piece by piece, like any other body) and know
whether the body was read to its end: a request whose body was not must
close its connection, since the bytes left on it are not a request.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator, MutableMapping, Protocol

CRLF = b"\r\n"

#: RFC 9110 5.6.2: a field name is a token.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
#: RFC 9110 5.5: NUL, CR and LF in a field value must be refused; other
#: control characters may be kept (the handlers treat them as text).
_FIELD_VALUE = re.compile(rb"[^\x00\r\n]*\Z")
_DIGITS = re.compile(rb"[0-9]+\Z")
#: More digits than any storage holds (and than int() takes from a string).
_MAX_LENGTH_DIGITS = 18
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}\Z")

#: Fields that may appear once: two values would let two parsers disagree.
_SINGLETON_FIELDS = frozenset({b"Host", b"Authorization", b"Content-Length"})
#: Fields whose repeated lines join into one comma-separated list (RFC 9110 5.3).
_LIST_FIELDS = frozenset({
    b"Accept", b"Accept-Charset", b"Accept-Encoding", b"Accept-Language",
    b"Accept-Ranges", b"Allow", b"Cache-Control", b"Connection", b"Content-Encoding",
    b"Content-Language", b"Expect", b"If-Match", b"If-None-Match", b"Pragma",
    b"Proxy-Authenticate", b"TE", b"Te", b"Trailer", b"Transfer-Encoding", b"Upgrade",
    b"Vary", b"Via", b"Warning", b"Www-Authenticate",
})

#: A chunk-size line with its extensions, and all trailer lines together.
MAX_CHUNK_LINE = 4096
MAX_TRAILERS = 16 * 1024


class Reader(Protocol):
    """What the readers here read from: cheroot's buffered socket reader."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self, size: int = -1, /) -> bytes: ...


class FramingError(ValueError):
    """The message cannot be framed; answer 400 and close the connection."""


class DeclaredTooLarge(FramingError):
    """A declared length beyond any object; answer 413 and close."""


def read_header_fields(rfile: Reader, fields: MutableMapping[bytes, bytes]
                       ) -> MutableMapping[bytes, bytes]:
    """Read header lines up to the empty line into ``fields``, strictly.

    ``rfile`` is cheroot's size-checked reader, so the total is bounded by
    the server's header limit before any line is parsed.
    """
    while True:
        line = rfile.readline()
        if not line:
            raise FramingError("the connection ended inside the request headers")
        if line == CRLF:
            return fields
        if not line.endswith(CRLF) or b"\r" in line[:-2] or b"\n" in line[:-2]:
            raise FramingError("header lines must end with CRLF")
        if line[:1] in (b" ", b"\t"):
            raise FramingError("folded header lines (obs-fold) are not accepted")
        name, colon, value = line[:-2].partition(b":")
        if not colon or not _TOKEN.match(name):
            raise FramingError("malformed header line")
        value = value.strip(b" \t")
        if not _FIELD_VALUE.match(value):
            raise FramingError(f"control character in the {name.decode('ascii')} header")
        _add_field(fields, name.title(), value)


def _add_field(fields: MutableMapping[bytes, bytes], name: bytes, value: bytes) -> None:
    existing = fields.get(name)
    if existing is None:
        fields[name] = value
    elif name in _SINGLETON_FIELDS:
        raise FramingError(f"the {name.decode('ascii')} header is given more than once")
    elif name in _LIST_FIELDS:
        fields[name] = existing + b", " + value
    else:
        fields[name] = value


def content_length(raw: bytes) -> int:
    """RFC 9110 8.6: ``1*DIGIT``. A list, even of one value repeated, is
    refused: RFC 9110 lets a server reject it, and no client needs it."""
    if not _DIGITS.match(raw):
        raise FramingError("Content-Length must be a single non-negative decimal integer")
    if len(raw) > _MAX_LENGTH_DIGITS:
        raise DeclaredTooLarge("Content-Length larger than any object can be")
    return int(raw)


def transfer_codings(raw: bytes) -> list[bytes]:
    return [coding.strip(b" \t").lower() for coding in raw.split(b",") if coding.strip(b" \t")]


class RawReader(Protocol):
    """Where a body reader takes its bytes from when asked to fill a buffer:
    the connection (see :class:`blobsvc.http.connections.DirectReader`)."""

    def readinto(self, buffer: memoryview, /) -> int: ...


class _ReadAndCopy:
    """A :class:`RawReader` over ``read``, for connections read only through
    cheroot's reader (TLS): one copy more, the same bytes."""

    def __init__(self, rfile: Reader) -> None:
        self.rfile = rfile

    def readinto(self, buffer: memoryview, /) -> int:
        data = self.rfile.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class BodyReader:
    """WSGI input for one request body; ``complete`` once read to its end.

    Bytes come through ``read`` (cheroot's reader, a new bytes object each
    time) or ``readinto`` (the caller's buffer, filled by ``raw``); both
    obey the same framing, kept in ``_allowed`` and ``_consumed``.
    """

    def __init__(self, rfile: Reader, before_first_read: Callable[[], None] | None = None,
                 raw: RawReader | None = None) -> None:
        self.rfile = rfile
        self._before_first_read = before_first_read
        self._raw = raw or _ReadAndCopy(rfile)

    @property
    def complete(self) -> bool:
        raise NotImplementedError

    def _allowed(self, size: int) -> int:
        """How many of ``size`` (> 0) bytes may be read now; 0 at the body's end."""
        raise NotImplementedError

    def _consumed(self, count: int) -> None:
        """``count`` bytes were read after ``_allowed`` (0: the connection ended)."""
        raise NotImplementedError

    def _started(self) -> None:
        if self._before_first_read is not None:
            self._before_first_read()
            self._before_first_read = None

    def _read_some(self, size: int) -> bytes:
        """At most ``size`` (> 0) bytes; ``b""`` only at the body's end."""
        allowed = self._allowed(size)
        if not allowed:
            return b""
        data = self.rfile.read(allowed)
        self._consumed(len(data))
        return data

    def readinto(self, buffer: memoryview | bytearray) -> int:
        """Up to ``len(buffer)`` bytes into ``buffer``, 0 only at the body's
        end: an upload's bytes land in its own buffer, no object made per read."""
        self._started()
        view = memoryview(buffer)
        allowed = self._allowed(len(view)) if len(view) else 0
        if not allowed:
            return 0
        count = self._raw.readinto(view[:allowed])
        self._consumed(count)
        return count

    def read(self, size: int | None = -1) -> bytes:
        self._started()
        if size is not None and size >= 0:
            return self._read_some(size) if size else b""
        parts = []
        while piece := self._read_some(1024 * 1024):
            parts.append(piece)
        return b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        """For WSGI's sake; blobsvc reads bodies by size, never by line."""
        line = bytearray()
        while size is None or size < 0 or len(line) < size:
            byte = self.read(1)
            line += byte
            if not byte or byte == b"\n":
                break
        return bytes(line)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        while line := self.readline():
            lines.append(line)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def close(self) -> None:
        """The connection owns the socket; nothing of our own to release."""


class FixedLengthBody(BodyReader):
    """A body framed by Content-Length."""

    def __init__(self, rfile: Reader, length: int,
                 before_first_read: Callable[[], None] | None = None,
                 raw: RawReader | None = None) -> None:
        super().__init__(rfile, before_first_read if length else None, raw)
        self.remaining = length

    @property
    def complete(self) -> bool:
        return self.remaining == 0

    def _allowed(self, size: int) -> int:
        return min(size, self.remaining)

    def _consumed(self, count: int) -> None:
        if not count:
            raise FramingError(f"the connection ended {self.remaining} bytes before the body's end")
        self.remaining -= count


class ChunkedBody(BodyReader):
    """A body in the chunked transfer coding, read a bounded piece at a time."""

    def __init__(self, rfile: Reader, before_first_read: Callable[[], None] | None = None,
                 raw: RawReader | None = None) -> None:
        super().__init__(rfile, before_first_read, raw)
        self._chunk_left = 0
        self._done = False

    @property
    def complete(self) -> bool:
        return self._done

    def _allowed(self, size: int) -> int:
        """Chunk-size lines and trailers are read here, through cheroot's
        reader; only chunk data is left to the caller's read."""
        if self._done:
            return 0
        if not self._chunk_left:
            self._chunk_left = self._chunk_size()
            if not self._chunk_left:
                self._skip_trailers()
                self._done = True
                return 0
        return min(size, self._chunk_left)

    def _consumed(self, count: int) -> None:
        if not count:
            raise FramingError("the connection ended inside a chunk")
        self._chunk_left -= count
        if not self._chunk_left and self.rfile.read(2) != CRLF:
            raise FramingError("a chunk is not followed by CRLF (chunk longer than its size?)")

    def _chunk_size(self) -> int:
        line = self._line("chunk-size line", MAX_CHUNK_LINE)
        size, semicolon, extensions = line.partition(b";")
        if semicolon:
            size = size.rstrip(b" \t")
            if not _FIELD_VALUE.match(extensions):
                raise FramingError("control character in a chunk extension")
        if not _HEX.match(size):
            raise FramingError(f"malformed chunk size {size[:20]!r}")
        return int(size, 16)

    def _skip_trailers(self) -> None:
        budget = MAX_TRAILERS
        while True:
            line = self._line("trailer section", budget)
            if not line:
                return
            budget -= len(line) + 2
            name, colon, _ = line.partition(b":")
            if not colon or not _TOKEN.match(name):
                raise FramingError("malformed trailer line")

    def _line(self, what: str, limit: int) -> bytes:
        line = self.rfile.readline(limit + 2)
        if not line:
            raise FramingError(f"the connection ended inside a {what}")
        if not line.endswith(CRLF):
            raise FramingError(f"{what} too long or not ended by CRLF")
        body = line[:-2]
        if b"\r" in body or b"\n" in body:
            raise FramingError(f"bare CR or LF in a {what}")
        return body

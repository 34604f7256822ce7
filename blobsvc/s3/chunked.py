"""The aws-chunked body framing S3 clients stream uploads in.

::

    <hex size>[;chunk-signature=<hex>]\\r\\n<size bytes>\\r\\n   (repeated)
    0[;chunk-signature=<hex>]\\r\\n                              (the last chunk)
    <name>:<value>\\r\\n                                         (trailers, optional)
    \\r\\n

This module only reads the framing, from a body read into buffers
(``readinto``) that gives its bytes in pieces of any size; what the
signatures and checksums mean is checked by :mod:`blobsvc.s3.payload`.
A chunk's bytes are read straight into the caller's buffer, as many as
the buffer and the chunk allow, so no object is made per piece and memory
stays flat whatever size a client gives its chunks. Only the few bytes
read ahead with a header line are copied once. Every limit is explicit:
a header line, a trailer, their number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from blobsvc.storage.upload import BodySource

#: The longest chunk header or trailer line accepted (a signature line is ~90 bytes).
MAX_LINE = 4096
MAX_TRAILERS = 16
#: Bytes read at a time while looking for a line's end: a signed chunk's
#: header and the CRLF before it fit, and little of the chunk is read ahead.
LINE_READ = 256
_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")


class FramingError(ValueError):
    """The body is not well-formed aws-chunked (or ends early)."""

    def __init__(self, message: str, incomplete: bool = False) -> None:
        super().__init__(message)
        #: The body ended before its framing did (S3's IncompleteBody).
        self.incomplete = incomplete


@dataclass(frozen=True)
class ChunkHeader:
    size: int
    #: The chunk-signature extension, None when the chunk has none.
    signature: str | None


class ChunkedReader:
    """Reads aws-chunked framing from ``source``: chunk headers (:meth:`next_chunk`),
    each chunk's data (:meth:`readinto`), trailers, and the end."""

    def __init__(self, source: BodySource) -> None:
        self._source = source
        #: Bytes read ahead of the framing, not consumed yet: ``_ahead[_start:]``.
        self._ahead = bytearray()
        self._start = 0
        self._scratch = memoryview(bytearray(LINE_READ))
        self._chunks = 0
        #: Data bytes of the current chunk not read yet.
        self._remaining = 0
        #: The current chunk had data, so a CRLF follows it.
        self._crlf_due = False

    def next_chunk(self) -> ChunkHeader:
        """The next chunk's header, once the previous chunk's data was read."""
        assert not self._remaining, "the previous chunk was not read to its end"
        if self._crlf_due:
            self._expect_crlf()
        line = self._line()
        if line is None:
            raise FramingError("the body ended before its last (zero-size) chunk", incomplete=True)
        if not line.endswith(b"\r"):
            raise FramingError(f"chunk {self._chunks} header does not end in CRLF")
        size_text, _, extensions = line[:-1].partition(b";")
        if not _SIZE.fullmatch(size_text):
            raise FramingError(f"chunk {self._chunks} header has no hexadecimal size")
        signature = None
        for extension in extensions.split(b";") if extensions else ():
            name, _, value = extension.partition(b"=")
            if name.strip() == b"chunk-signature":
                if signature is not None:
                    raise FramingError(f"chunk {self._chunks} has two signatures")
                signature = value.strip().decode("ascii", "replace")
        self._chunks += 1
        size = int(size_text, 16)
        self._remaining = size
        self._crlf_due = size > 0
        return ChunkHeader(size, signature)

    def readinto(self, buffer: memoryview) -> int:
        """Up to ``len(buffer)`` bytes of the current chunk's data into
        ``buffer``; 0 once the chunk has been read (or has none), its
        closing CRLF checked: the framing is judged before the signature."""
        want = min(len(buffer), self._remaining)
        if not want:
            if self._crlf_due and not self._remaining:
                self._expect_crlf()
            return 0
        held = len(self._ahead) - self._start
        if held:
            count = min(want, held)
            buffer[:count] = self._ahead[self._start:self._start + count]
            self._consume(count)
        else:
            count = self._source.readinto(buffer[:want])
            if not count:
                raise FramingError("the body ended inside a chunk", incomplete=True)
        self._remaining -= count
        return count

    def trailers(self, expected: bool) -> list[tuple[str, str]]:
        """The trailer lines after the last chunk, up to the blank line that ends the body.

        Some clients put a blank line between the last chunk and its trailers:
        when trailers are ``expected``, one leading blank line is skipped.
        """
        found: list[tuple[str, str]] = []
        skipped = False
        while True:
            line = self._line()
            if line is None:
                return found  # tolerated: a body that ends without the final blank line
            line = line.rstrip(b"\r")
            if not line:
                if expected and not found and not skipped:
                    skipped = True
                    continue
                return found
            name, colon, value = line.partition(b":")
            if not colon or not name.strip():
                raise FramingError("a trailer line is not 'name:value'")
            if len(found) == MAX_TRAILERS:
                raise FramingError(f"more than {MAX_TRAILERS} trailers")
            found.append((name.strip().lower().decode("ascii", "replace"),
                          value.strip().decode("ascii", "replace")))

    def finish(self) -> None:
        """Refuse anything but line ends after the body's end."""
        if self._ahead[self._start:].strip(b"\r\n"):
            raise FramingError("data after the end of the aws-chunked body")
        self._consume(len(self._ahead) - self._start)
        rest = memoryview(bytearray(64 * 1024))
        while count := self._source.readinto(rest):
            if bytes(rest[:count]).strip(b"\r\n"):
                raise FramingError("data after the end of the aws-chunked body")

    def _line(self) -> bytes | None:
        """The next line without its ``\\n``; None at the end of the body."""
        searched = 0
        while True:
            end = self._ahead.find(b"\n", self._start + searched)
            if end >= 0:
                if end - self._start > MAX_LINE:
                    break
                line = bytes(self._ahead[self._start:end])
                self._consume(end + 1 - self._start)
                return line
            if len(self._ahead) - self._start > MAX_LINE:
                break
            searched = len(self._ahead) - self._start  # of what is held: _fill moves it
            if not self._fill():
                if len(self._ahead) > self._start:
                    raise FramingError("the body ended inside a line", incomplete=True)
                return None
        raise FramingError(f"a chunk header or trailer line is longer than {MAX_LINE} bytes")

    def _expect_crlf(self) -> None:
        while len(self._ahead) - self._start < 2:
            if not self._fill():
                raise FramingError("the body ended after a chunk's data", incomplete=True)
        if self._ahead[self._start:self._start + 2] != b"\r\n":
            raise FramingError(f"chunk {self._chunks - 1} is longer than its size says")
        self._consume(2)
        self._crlf_due = False

    def _consume(self, count: int) -> None:
        self._start += count
        if self._start == len(self._ahead):
            self._ahead.clear()
            self._start = 0

    def _fill(self) -> bool:
        """Read some more of the body after what is held; False at its end."""
        if self._start:  # what is held moves to the front: the buffer stays a line long
            del self._ahead[:self._start]
            self._start = 0
        count = self._source.readinto(self._scratch)
        if not count:
            return False
        self._ahead += self._scratch[:count]
        return True

"""The aws-chunked body framing S3 clients stream uploads in.

::

    <hex size>[;chunk-signature=<hex>]\\r\\n<size bytes>\\r\\n   (repeated)
    0[;chunk-signature=<hex>]\\r\\n                              (the last chunk)
    <name>:<value>\\r\\n                                         (trailers, optional)
    \\r\\n

This module only reads the framing, from a body that arrives in pieces of
any size; what the signatures and checksums mean is checked by
:mod:`blobsvc.s3.sigv4`. A chunk's bytes pass through in the pieces they
arrive in, so memory stays flat whatever size a client gives its chunks.
Every limit is explicit: a header line, a trailer, their number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

#: The longest chunk header or trailer line accepted (a signature line is ~90 bytes).
MAX_LINE = 4096
MAX_TRAILERS = 16
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
    """Reads aws-chunked framing from ``body``: chunk headers, chunk data, trailers."""

    def __init__(self, body: Iterator[bytes]) -> None:
        self._body = iter(body)
        self._buffer = b""
        self._chunks = 0

    def next_chunk(self) -> ChunkHeader:
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
        return ChunkHeader(int(size_text, 16), signature)

    def chunk_data(self, size: int) -> Iterator[bytes]:
        """The chunk's ``size`` bytes, in the pieces they arrive in, then its CRLF is consumed."""
        remaining = size
        while remaining:
            if not self._buffer and not self._fill():
                raise FramingError("the body ended inside a chunk", incomplete=True)
            piece, self._buffer = self._buffer[:remaining], self._buffer[remaining:]
            remaining -= len(piece)
            yield piece
        if size:
            self._expect_crlf()

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
        while True:
            if self._buffer.strip(b"\r\n"):
                raise FramingError("data after the end of the aws-chunked body")
            self._buffer = b""
            if not self._fill():
                return

    def _line(self) -> bytes | None:
        """The next line without its ``\\n``; None at the end of the body."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                if end > MAX_LINE:
                    break
                line, self._buffer = self._buffer[:end], self._buffer[end + 1:]
                return line
            if len(self._buffer) > MAX_LINE:
                break
            if not self._fill():
                if self._buffer:
                    raise FramingError("the body ended inside a line", incomplete=True)
                return None
        raise FramingError(f"a chunk header or trailer line is longer than {MAX_LINE} bytes")

    def _expect_crlf(self) -> None:
        while len(self._buffer) < 2:
            if not self._fill():
                raise FramingError("the body ended after a chunk's data", incomplete=True)
        if self._buffer[:2] != b"\r\n":
            raise FramingError(f"chunk {self._chunks - 1} is longer than its size says")
        self._buffer = self._buffer[2:]

    def _fill(self) -> bool:
        """Append the body's next piece; False at its end."""
        for piece in self._body:
            if piece:
                self._buffer += piece
                return True
        return False

"""PUT bodies that Swift commits only when every check has passed, and cut into segments.

Why: with chunked transfer Swift commits an object when its body ends, and
an exception raised from inside the body aborts the PUT. So the body holds
back its last chunk until the upload's length and checksum checks and the
write precondition (``before_end``) have passed: Swift never receives the
end of a wrong body. A large upload is cut into segment bodies lazily,
without reading ahead more than one chunk.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from swiftclient.client import ClientException

#: What ``before_end`` returns, kept for the caller as ``Body.end_result``.
R = TypeVar("R")


class BodyFailed(Exception):
    """Stops a PUT from inside its body; deliberately not an OSError.

    The HTTP stack would take an OSError for a network failure and retry or
    wrap it; this passes through untouched, and the caller re-raises the
    real cause kept in ``Body.error``.
    """


class Body(Generic[R]):
    """A PUT body that holds back its last chunk until ``before_end`` passed."""

    def __init__(self, chunks: Iterable[bytes], before_end: Callable[[], R] | None = None,
                 hashed: bool = False) -> None:
        self._chunks = chunks
        self._before_end = before_end
        self._md5 = hashlib.md5() if hashed else None
        self.error: BaseException | None = None
        self.end_result: R | None = None
        self.size = 0
        self._started = False

    @property
    def md5_hex(self) -> str:
        assert self._md5 is not None, "a body made without hashed=True"
        return self._md5.hexdigest()

    def reset(self, *_: object, **__: object) -> None:
        """swiftclient's hook before it retries the PUT: fine while no byte was
        read (Swift refused the connection, say), since the PUT is then often
        a write's first request; a body read once cannot be sent again."""
        if self._started:
            raise ClientException("a streamed body cannot be sent again")

    def __iter__(self) -> Iterator[bytes]:
        self._started = True
        held = None
        try:
            for chunk in self._chunks:
                if not chunk:
                    continue
                if held is not None:
                    yield held
                held = chunk
                self.size += len(chunk)
                if self._md5 is not None:
                    self._md5.update(chunk)
            if self._before_end is not None:
                self.end_result = self._before_end()
        except Exception as exc:
            self.error = exc
            raise BodyFailed(str(exc)) from exc
        if held is not None:
            yield held


class Splitter:
    """Cuts one stream into consecutive segment streams, lazily."""

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._chunks = iter(chunks)
        self._size = size
        self._pending = b""

    def next_segment(self) -> Iterator[bytes] | None:
        """The next segment's chunks, or None at the end (never an empty one)."""
        while not self._pending:
            pending = next(self._chunks, None)
            if pending is None:
                self._pending = b""
                return None
            self._pending = pending
        return self._segment()

    def _segment(self) -> Iterator[bytes]:
        left = self._size
        while left:
            if not self._pending:
                self._pending = next(self._chunks, b"")
                if not self._pending:
                    return
            piece = self._pending
            if len(piece) > left:
                piece, self._pending = piece[:left], piece[left:]
            else:
                self._pending = b""
            left -= len(piece)
            yield piece


def read_ahead(chunks: Iterator[bytes], limit: int) -> tuple[list[bytes], bool]:
    """Up to a little over ``limit`` bytes, and whether the stream ended within them."""
    head, size = [], 0
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size > limit:
            return head, False
    return head, True

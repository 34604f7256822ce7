"""MD5 (unless the backend computes it) and SHA-256 (when asked) of a
stream, off the thread that moves the bytes.

MD5 runs at about 550 MB/s on one core and cannot be split, so it bounds
what a PUT can reach; SHA-256 costs as much again, which is why it runs
only when a client sends ``X-Checksum-Sha256`` or the config asks for it.
hashlib releases the GIL on large buffers, so once a body is large each
digest gets a thread of its own and runs beside the reading and writing.
Small bodies hash inline: a thread per 4 KiB upload would cost more than
the hashing.

The hashed chunks may be views of buffers their producer reuses (the
request body is read into a few rotating buffers, never copied):
:meth:`StreamHasher.update` returns only once at most :data:`MAX_PENDING`
chunks are still unhashed, so a producer cycling ``MAX_PENDING + 1``
buffers never overwrites one a thread still reads.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from typing import Union

#: Bytes hashed inline before hashing moves to threads.
INLINE_LIMIT = 4 * 1024 * 1024

#: Chunks a hashing thread may lag behind: bounds the memory held, and
#: tells a producer of reused buffers how many it needs (one more).
MAX_PENDING = 3

Chunk = Union[bytes, bytearray, memoryview]

_DONE = None


class _HashThread:
    """One digest, updated in order by a thread fed through a queue."""

    def __init__(self, digest: hashlib._Hash, max_pending: int) -> None:
        self.digest = digest
        self.chunks: queue.SimpleQueue[Chunk | None] = queue.SimpleQueue()
        #: One slot per chunk not hashed yet; taken by put, given back once hashed.
        self.slots = threading.Semaphore(max_pending)
        self.thread = threading.Thread(target=self._run, name=f"hash-{digest.name}", daemon=True)
        self.thread.start()

    def put(self, chunk: Chunk) -> None:
        self.slots.acquire()
        self.chunks.put(chunk)

    def _run(self) -> None:
        while (chunk := self.chunks.get()) is not _DONE:
            self.digest.update(chunk)
            del chunk  # the producer may reuse the buffer: hold no view of it
            self.slots.release()

    def finish(self) -> hashlib._Hash:
        self.chunks.put(_DONE)
        self.thread.join()
        return self.digest


class StreamHasher:
    """The digests of everything fed to :meth:`update`, in order."""

    def __init__(self, sha256: bool = True, max_pending: int = MAX_PENDING) -> None:
        self._md5: hashlib._Hash | None = hashlib.md5()
        self._sha256 = hashlib.sha256() if sha256 else None
        self._max_pending = max_pending
        self._inline_bytes = 0
        self._threads: list[_HashThread] | None = None

    def skip_md5(self) -> None:
        """Compute no MD5 (the backend does); only before the first update."""
        assert self._inline_bytes == 0 and self._threads is None, "hashing has begun"
        self._md5 = None

    def _digests(self) -> list[hashlib._Hash]:
        return [digest for digest in (self._md5, self._sha256) if digest is not None]

    def update(self, chunk: Chunk) -> None:
        """Hash ``chunk``; see the module docstring for when its buffer is free again."""
        if self._threads is not None:
            for worker in self._threads:
                worker.put(chunk)
            return
        for digest in self._digests():
            digest.update(chunk)
        self._inline_bytes += len(chunk)
        if self._inline_bytes >= INLINE_LIMIT:
            self._threads = [_HashThread(digest, self._max_pending) for digest in self._digests()]

    def finish(self) -> tuple[bytes | None, str | None]:
        """The MD5 digest (None if skipped), and the SHA-256 hex if asked for; call once."""
        self.abandon()
        return (None if self._md5 is None else self._md5.digest(),
                None if self._sha256 is None else self._sha256.hexdigest())

    def abandon(self) -> None:
        """Stop the threads (of an upload that failed midway, or ended)."""
        if self._threads is not None:
            for worker in self._threads:
                worker.finish()
            self._threads = None

"""Commit locks: a precondition check and its commit, atomic across processes.

A write checks the destination's current version and then renames over it;
nothing may commit in between, whichever thread or worker process (all
sharing one root) tries. Names hash onto a fixed set of stripes; each
stripe is a thread lock (this process's threads) plus an ``flock`` on a
lock file in the private area (the other processes).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import zlib
from typing import Iterator

#: Stripes: enough that unrelated writes rarely wait on each other.
STRIPES = 64


class CommitLocks:
    def __init__(self, lock_dir: str) -> None:
        self._lock_dir = lock_dir
        self._locks = [threading.Lock() for _ in range(STRIPES)]
        # Stripe lock files, opened once each; the thread lock of a stripe
        # is always held while its fd is used.
        self._fds: dict[int, int] = {}

    @contextlib.contextmanager
    def held(self, *names: str) -> Iterator[None]:
        """Hold the commit locks of ``names`` (striped, taken in one order,
        so two writers of the same names cannot deadlock)."""
        indexes = sorted({zlib.crc32(name.encode()) % len(self._locks) for name in names})
        with contextlib.ExitStack() as stack:
            for index in indexes:
                stack.enter_context(self._locks[index])
                fd = self._fd(index)
                fcntl.flock(fd, fcntl.LOCK_EX)
                stack.callback(fcntl.flock, fd, fcntl.LOCK_UN)
            yield

    def _fd(self, index: int) -> int:
        fd = self._fds.get(index)
        if fd is None:
            path = os.path.join(self._lock_dir, f"{index:02d}")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fds[index] = fd
        return fd

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

"""Start writing an upload to disk while the rest of it still arrives.

With ``fsync`` on, a PUT is acknowledged only once its bytes are on disk.
Left to itself the kernel starts writing dirty pages back after seconds,
so the final fsync of a large upload had to write nearly all of it, with
the client waiting: receiving, then writing, one after the other.
``sync_file_range(SYNC_FILE_RANGE_WRITE)`` asks the kernel to start
writeback of what has been written so far without waiting for it, so the
disk works while the network does and the fsync finds little left. It
changes no durability guarantee (the fsync still decides); where the call
is missing (not Linux, no glibc) uploads behave as before.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Callable

log = logging.getLogger(__name__)

#: Start writeback after every this many bytes (enough to keep the disk
#: queue busy; small enough that the fsync finds little dirty).
STEP = 8 * 1024 * 1024

#: From <fcntl.h>: start writeback of the range's dirty pages, do not wait.
_SYNC_FILE_RANGE_WRITE = 2


def _load() -> Callable[[int, int, int, int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load()


class Writeback:
    """Starts writeback of one file's pages as its bytes are written."""

    def __init__(self, fd: int, enabled: bool = True) -> None:
        self.fd = fd
        self.enabled = enabled and _sync_file_range is not None
        #: Bytes whose writeback has been started (the file's first ones).
        self.started = 0

    def written(self, total: int) -> None:
        """``total`` bytes of the file have been written so far."""
        if not self.enabled or total - self.started < STEP:
            return
        assert _sync_file_range is not None
        if _sync_file_range(self.fd, self.started, total - self.started, _SYNC_FILE_RANGE_WRITE):
            # A hint, not a guarantee: the fsync reports what matters.
            log.debug("sync_file_range failed (errno %d); writeback left to the kernel",
                      ctypes.get_errno())
            self.enabled = False
        self.started = total

"""Which files are objects, and how their bytes and attributes are read.

Only regular files with a single link are objects. Anything else found in
the root (a FIFO, a device, a socket, a hard link) was put there by other
means and behaves as absent: it is never opened for reading when seen in
advance, and opened only with :data:`READ_FLAGS` when it appears in a race,
so it cannot block a thread, feed endless bytes or become the server's
terminal. The store never creates hard links itself (writes are renames of
fresh temp files), so a file with more than one link is planted, possibly
pointing at a file outside the root: it is not served and its attributes
are never written.

The ETag (MD5 of the content) and Content-Type travel with the file as
``user.*`` extended attributes set before the rename, so they change
atomically with the bytes.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from typing import Any, Iterator

from blobsvc.storage.errors import InvalidPath, NotFound
from blobsvc.storage.filesystem.errors import FULL_DISK

log = logging.getLogger(__package__)  # the driver's logger

#: Bytes per read() on the data path: large enough that per-chunk Python
#: work is negligible next to the copy, small enough to keep memory flat.
CHUNK_SIZE = 1024 * 1024

#: Flags for every read open: never through a link, never blocking on a
#: FIFO, never acquiring a terminal.
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

ETAG_XATTR = "user.blobsvc.etag"
CONTENT_TYPE_XATTR = "user.blobsvc.content_type"


def is_served(st: os.stat_result) -> bool:
    """A regular file with one link (0: replaced or deleted while open)."""
    return stat.S_ISREG(st.st_mode) and st.st_nlink <= 1


def check_served(path: str, st: os.stat_result) -> None:
    """NotFound for what is not an object; see the module docstring."""
    if stat.S_ISDIR(st.st_mode):
        raise NotFound(f"{path} is a directory, not an object", path)
    if stat.S_ISLNK(st.st_mode):  # refused for every operation, a PUT over it too
        raise InvalidPath(f"{path} goes through a symbolic link", path)
    if not is_served(st):
        kind = "hard link" if stat.S_ISREG(st.st_mode) else "file that is not a regular file"
        log.warning("not serving %s: a %s placed in the root by other means", path, kind)
        raise NotFound(f"no object at {path}", path)


def read_range(fd: int, offset: int, end: int | None) -> Iterator[bytes]:
    """Yield the bytes of ``fd`` from ``offset`` up to ``end`` (None: EOF)."""
    position = offset
    while end is None or position < end:
        want = CHUNK_SIZE if end is None else min(CHUNK_SIZE, end - position)
        chunk = os.pread(fd, want, position)
        if not chunk:
            return
        position += len(chunk)
        yield chunk


class Attributes:
    """The ``user.*`` extended attributes of files under one root.

    A volume without user xattrs is noticed at the first write: from then
    on nothing is written (ETags are computed on read instead).
    """

    def __init__(self, root: str) -> None:
        self._root = root
        self._supported = True

    def get(self, handle: int | str, name: str) -> str | None:
        try:
            return os.getxattr(handle, name, **_no_follow(handle)).decode("utf-8")
        except OSError:
            return None

    def set(self, handle: int | str, name: str, value: str) -> None:
        if not self._supported:
            return
        try:
            os.setxattr(handle, name, value.encode("utf-8"), **_no_follow(handle))
        except OSError as exc:
            if exc.errno in FULL_DISK:
                raise
            if exc.errno in (errno.ENOTSUP, errno.EPERM):
                self._supported = False
                log.warning("%s has no user xattrs: ETags are computed on read "
                            "and Content-Type is not kept", self._root)


def _no_follow(handle: int | str) -> dict[str, Any]:
    """xattr calls on a name must not follow links; on an fd they cannot."""
    return {} if isinstance(handle, int) else {"follow_symlinks": False}

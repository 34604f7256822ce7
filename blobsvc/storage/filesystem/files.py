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

The ETag (MD5 of the content) and the metadata record (content type, user
metadata, stored headers, expiry: see ``objectmeta``) travel with the file
as ``user.*`` extended attributes set before the rename, so they change
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
#: Where objects written before the metadata record kept their content type.
CONTENT_TYPE_XATTR = "user.blobsvc.content_type"

#: What ``setxattr`` raises on a volume without user xattrs.
UNSUPPORTED = (errno.ENOTSUP, errno.EOPNOTSUPP)


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

    @property
    def supported(self) -> bool:
        """False once a write found the volume without user xattrs."""
        return self._supported

    def get(self, handle: int | str, name: str) -> str | None:
        raw = self.get_bytes(handle, name)
        return None if raw is None else raw.decode("utf-8", "replace")

    def get_bytes(self, handle: int | str, name: str) -> bytes | None:
        try:
            return os.getxattr(handle, name, **_no_follow(handle))
        except OSError:
            return None

    def put(self, handle: int | str, name: str, value: bytes) -> bool:
        """Set ``name`` or raise its OSError (a value too big included);
        False when the volume has no user xattrs."""
        if not self._supported:
            return False
        try:
            os.setxattr(handle, name, value, **_no_follow(handle))
        except OSError as exc:
            if exc.errno not in UNSUPPORTED:
                raise
            self._unsupported()
            return False
        return True

    def set(self, handle: int | str, name: str, value: str) -> None:
        if not self._supported:
            return
        try:
            os.setxattr(handle, name, value.encode("utf-8"), **_no_follow(handle))
        except OSError as exc:
            if exc.errno in FULL_DISK:
                raise
            if exc.errno in (*UNSUPPORTED, errno.EPERM):
                self._unsupported()

    def _unsupported(self) -> None:
        if self._supported:
            self._supported = False
            log.warning("%s has no user xattrs: ETags are computed on read, Content-Type "
                        "is not kept, and writes with metadata or an expiry are refused",
                        self._root)


def _no_follow(handle: int | str) -> dict[str, Any]:
    """xattr calls on a name must not follow links; on an fd they cannot."""
    return {} if isinstance(handle, int) else {"follow_symlinks": False}


#: What ``copy_file_range`` raises where the kernel cannot copy between these
#: files (another filesystem, an old kernel, a filesystem without support).
_NO_KERNEL_COPY = (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP)


class ShortSource(Exception):
    """The source ended before its size: it was cut short while being copied."""


def copy_bytes(src: int, dst: int, size: int) -> None:
    """Copy the first ``size`` bytes of ``src`` to the start of ``dst``.

    ``os.copy_file_range`` keeps the bytes in the kernel (a reflink or an
    in-filesystem copy where the filesystem offers one); where it is not
    available it falls back to a read/write loop of :data:`CHUNK_SIZE`
    pieces. Never more than one chunk is in memory.
    """
    copied = 0
    in_kernel = hasattr(os, "copy_file_range")
    while copied < size:
        count = 0
        if in_kernel:
            try:
                count = os.copy_file_range(src, dst, size - copied, copied, copied)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                in_kernel = False
                continue
        else:
            chunk = os.pread(src, min(CHUNK_SIZE, size - copied), copied)
            view = memoryview(chunk)
            while view:
                written = os.pwrite(dst, view, copied + len(chunk) - len(view))
                view = view[written:]
            count = len(chunk)
        if not count:
            raise ShortSource(f"ended after {copied} of {size} bytes")
        copied += count

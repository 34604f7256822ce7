"""Objects as plain files under one root directory.

Every write goes to a temporary file in ``ROOT/.blobsvc/tmp`` (on the same
filesystem as its target, so the final ``rename`` is atomic), is fsynced when
``fsync`` is on, then renamed into place: readers see the old object or the
new one, never a mix, and a failed write leaves only a temp file that is
removed at once (or, after a crash, at the next start).

The ETag (MD5 of the content) and Content-Type travel with the file as
``user.*`` extended attributes set before the rename, so they change
atomically with the bytes. Files placed in the root by other means get
their ETag computed on first read.

No path resolves outside the root: paths are validated before they get
here, and any symlink on the way to an object is refused.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import itertools
import logging
import os
import random
import stat
import threading
import time
import uuid
import zlib

from blobsvc.storage import paths
from blobsvc.storage.base import (
    DEFAULT_CONTENT_TYPE,
    REQUIRED,
    ObjectInfo,
    ObjectStream,
    Precondition,
    StorageDriver,
    Upload,
)
from blobsvc.storage.dircache import DirectoryNames
from blobsvc.storage.errors import (
    Conflict,
    InsufficientStorage,
    InvalidPath,
    MissingChunks,
    NotFound,
    StorageError,
)

log = logging.getLogger(__name__)

#: Bytes per read() on the data path: large enough that per-chunk Python
#: work is negligible next to the copy, small enough to keep memory flat.
CHUNK_SIZE = 1024 * 1024

ETAG_XATTR = "user.blobsvc.etag"
CONTENT_TYPE_XATTR = "user.blobsvc.content_type"
PRIVATE_DIR = paths.RESERVED_PREFIX
TEMP_SUFFIX = ".tmp"

#: How often a commit retries when a concurrent delete pruned the parent
#: directory it had just created; each retry waits a little, at random, so
#: writers and pruners cannot stay in lockstep.
_PRUNE_RACE_RETRIES = 200

_FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


class FilesystemDriver(StorageDriver):
    name = "filesystem"
    SETTINGS = {"root": (str, REQUIRED), "fsync": (bool, True)}

    def __init__(self, root: str, fsync: bool = True) -> None:
        self.root = os.path.realpath(root)
        self.fsync = fsync
        self._tmp_dir = os.path.join(self.root, PRIVATE_DIR, "tmp")
        self._lock_dir = os.path.join(self.root, PRIVATE_DIR, "locks")
        os.makedirs(self._tmp_dir, exist_ok=True)
        os.makedirs(self._lock_dir, exist_ok=True)
        self._locks = [threading.Lock() for _ in range(64)]
        # Stripe lock files, opened once each; the thread lock of a stripe
        # is always held while its fd is used.
        self._lock_fds: dict[int, int] = {}
        self._xattrs_supported = True
        self._names = DirectoryNames()
        remove_abandoned_temp_files(self._tmp_dir)

    # -- reads ---------------------------------------------------------------

    def _list(self, path, marker, limit):
        directory = self._resolve(path) if path else self.root
        try:
            names = self._names.sorted_names(directory)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no directory at {path}/", path) from None
        except OSError as exc:
            raise self._os_error(exc, path) from None
        start = bisect.bisect_right(names, marker) if marker is not None else 0
        infos: list[ObjectInfo] = []
        # Entries that are not served (links, the private area) are
        # skipped and made up for from the names that follow.
        for name in itertools.islice(names, start, None):
            if limit is not None and len(infos) >= limit:
                break
            if not path and name == PRIVATE_DIR:
                continue
            info = self._entry_info(paths.join(path, name), os.path.join(directory, name))
            if info is not None:
                infos.append(info)
        return infos

    def _entry_info(self, path: str, full: str) -> ObjectInfo | None:
        """A listing entry; None for what clients cannot address."""
        try:
            path.encode("utf-8")
            st = os.lstat(full)
        except UnicodeEncodeError:
            return None  # not a name any client could have written
        except FileNotFoundError:
            return None  # deleted while we listed
        if stat.S_ISDIR(st.st_mode):
            return ObjectInfo.directory(path, st.st_mtime)
        if not stat.S_ISREG(st.st_mode):
            return None  # symlinks and the like are never served
        # Size and ETag from one open file, so a rename in between cannot
        # pair one version's size with another's ETag.
        try:
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError:
            return None  # replaced by something that is not served
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            return self._file_info(path, st, fd, compute_etag=False)
        finally:
            os.close(fd)

    def _stat(self, path):
        fd = self._open_fd(path)
        try:
            return self._fd_info(path, fd)
        finally:
            os.close(fd)

    def _open_fd(self, path: str) -> int:
        """A read descriptor of the object itself (never through a link)."""
        try:
            return os.open(self._resolve(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no object at {path}", path) from None
        except OSError as exc:
            raise self._os_error(exc, path) from None

    def _open(self, path, offset, length):
        fd = self._open_fd(path)
        try:
            info = self._fd_info(path, fd)
        except BaseException:
            os.close(fd)
            raise
        assert info.size is not None
        end = info.size if length is None else min(info.size, offset + length)
        return info, ObjectStream(_read_range(fd, offset, end), lambda: os.close(fd))

    def _fd_info(self, path: str, fd: int) -> ObjectInfo:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise NotFound(f"{path} is a directory, not an object", path)
        return self._file_info(path, st, fd, compute_etag=True)

    def _file_info(self, path: str, st: os.stat_result, handle: int | str,
                   compute_etag: bool) -> ObjectInfo:
        etag = self._get_xattr(handle, ETAG_XATTR)
        if etag is None and compute_etag:
            etag = self._compute_etag(handle)
        return ObjectInfo(
            path=path, name=paths.basename(path), isdir=False, size=st.st_size,
            ctime=st.st_mtime, etag=etag,
            content_type=self._get_xattr(handle, CONTENT_TYPE_XATTR) or DEFAULT_CONTENT_TYPE,
        )

    def _compute_etag(self, handle: int | str) -> str:
        """ETag of a file that arrived without one (placed by hand)."""
        digest = hashlib.md5()
        fd = handle if isinstance(handle, int) else os.open(handle, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            for chunk in _read_range(fd, 0, None):
                digest.update(chunk)
        finally:
            if fd is not handle:
                os.close(fd)
        etag = digest.hexdigest()
        self._set_xattr(handle, ETAG_XATTR, etag)
        return etag

    # -- writes --------------------------------------------------------------

    def _put(self, path, upload: Upload):
        full = self._resolve(path)
        tmp_path, fd = self._new_temp_file()
        try:
            self._write_all(fd, upload)
            self._set_xattr(fd, ETAG_XATTR, upload.md5_hex)
            self._set_xattr(fd, CONTENT_TYPE_XATTR, upload.content_type)
            if self.fsync:
                os.fsync(fd)
            written = os.fstat(fd)
        except BaseException as exc:
            os.close(fd)
            _unlink_quietly(tmp_path)
            raise self._os_error(exc, path) if isinstance(exc, OSError) else exc
        os.close(fd)
        try:
            with self._locked(path):
                upload.check_precondition(self._current(path))
                self._commit(tmp_path, full, path)
        except BaseException:
            _unlink_quietly(tmp_path)
            raise
        # Described from what was written, not read back: a concurrent
        # writer may already have replaced it.
        return ObjectInfo(path=path, name=paths.basename(path), isdir=False, size=written.st_size,
                          ctime=written.st_mtime, etag=upload.md5_hex,
                          content_type=upload.content_type)

    def _write_all(self, fd: int, chunks) -> None:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                written = os.write(fd, view)
                view = view[written:]

    def _commit(self, source: str, target: str, path: str) -> None:
        """Rename ``source`` over ``target``, creating parent directories.

        A concurrent delete may prune a parent directory between its creation
        and the rename (seen as ENOENT, or as EEXIST from makedirs); that is
        retried. A parent that really is an object is a Conflict.
        """
        parent = os.path.dirname(target)
        for attempt in itertools.count():
            try:
                os.makedirs(parent, exist_ok=True)
                os.rename(source, target)
                break
            except IsADirectoryError:
                raise Conflict(f"{path} is a directory", path) from None
            except (FileExistsError, NotADirectoryError, FileNotFoundError):
                if self._parent_is_object(parent):
                    raise Conflict(f"a parent of {path} is an object", path) from None
                if attempt >= _PRUNE_RACE_RETRIES or not os.path.exists(source):
                    raise
                time.sleep(random.random() * min(0.0001 * attempt, 0.005))
            except OSError as exc:
                raise self._os_error(exc, path) from None
        if self.fsync:
            _fsync_directory(parent)

    def _parent_is_object(self, directory: str) -> bool:
        relative = os.path.relpath(directory, self.root)
        current = self.root
        for segment in relative.split(os.sep) if relative != "." else []:
            current = os.path.join(current, segment)
            try:
                if not stat.S_ISDIR(os.lstat(current).st_mode):
                    return True
            except FileNotFoundError:
                return False
        return False

    def _delete(self, path, precondition: Precondition | None):
        full = self._resolve(path)
        with self._locked(path):
            current = self._current_or_dir(path, full)
            if precondition is not None:
                precondition(current)
            try:
                os.unlink(full)
            except FileNotFoundError:
                raise NotFound(f"no object at {path}", path) from None
        self._prune(os.path.dirname(full))

    def _current_or_dir(self, path: str, full: str) -> ObjectInfo:
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no object at {path}", path) from None
        except OSError as exc:
            raise self._os_error(exc, path) from None
        if stat.S_ISDIR(st.st_mode):
            if os.listdir(full):
                raise Conflict(f"{path} is a non-empty directory", path)
            self._prune(full)
            raise NotFound(f"no object at {path}", path)
        return self._stat(path)

    def _move(self, src, dst):
        full_src, full_dst = self._resolve(src), self._resolve(dst)
        with self._locked(src, dst):
            moved = self._current_or_dir(src, full_src)
            try:
                self._commit(full_src, full_dst, dst)
            except FileNotFoundError:
                raise NotFound(f"no object at {src}", src) from None
        self._prune(os.path.dirname(full_src))
        return dataclasses.replace(moved, path=dst, name=paths.basename(dst))

    def _cat(self, path, chunks):
        missing = [chunk for chunk in chunks if not self._is_object(chunk)]
        if missing:
            raise MissingChunks(missing)
        streams = (self._open(chunk, 0, None)[1] for chunk in chunks)
        info = self._put(path, Upload(itertools.chain.from_iterable(streams)))
        for chunk in dict.fromkeys(chunks):
            if chunk != path:
                self._delete_quietly(chunk)
        return info

    def close(self) -> None:
        for fd in self._lock_fds.values():
            os.close(fd)
        self._lock_fds.clear()

    def _delete_quietly(self, path: str) -> None:
        try:
            self._delete(path, None)
        except NotFound:
            pass  # removed concurrently: the outcome is the same

    # -- helpers -------------------------------------------------------------

    def _resolve(self, path: str) -> str:
        """The file name of ``path``, refusing any route out of the root."""
        full = os.path.join(self.root, path)
        if os.path.realpath(full) != full:
            raise InvalidPath(f"{path} goes through a symbolic link", path)
        return full

    def _is_object(self, path: str) -> bool:
        try:
            return stat.S_ISREG(os.lstat(self._resolve(path)).st_mode)
        except OSError:  # missing, or behind a link loop: not an object
            return False

    def _current(self, path: str) -> ObjectInfo | None:
        try:
            return self._stat(path)
        except NotFound:
            return None

    @contextlib.contextmanager
    def _locked(self, *names: str):
        """Hold the commit locks of ``names`` (striped, taken in one order).

        A thread lock orders this process's threads; an ``flock`` on the
        stripe's lock file orders the worker processes sharing the root, so
        a precondition check and its commit are atomic across all of them.
        """
        indexes = sorted({zlib.crc32(name.encode()) % len(self._locks) for name in names})
        with contextlib.ExitStack() as stack:
            for index in indexes:
                stack.enter_context(self._locks[index])
                fd = self._lock_fd(index)
                fcntl.flock(fd, fcntl.LOCK_EX)
                stack.callback(fcntl.flock, fd, fcntl.LOCK_UN)
            yield

    def _lock_fd(self, index: int) -> int:
        fd = self._lock_fds.get(index)
        if fd is None:
            path = os.path.join(self._lock_dir, f"{index:02d}")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._lock_fds[index] = fd
        return fd

    def _new_temp_file(self) -> tuple[str, int]:
        name = f"{os.getpid()}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
        tmp_path = os.path.join(self._tmp_dir, name)
        try:
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise self._os_error(exc, None) from None
        return tmp_path, fd

    def _prune(self, directory: str) -> None:
        """Remove empty directories from ``directory`` up to the root."""
        while directory != self.root and directory.startswith(self.root + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)

    def _get_xattr(self, handle: int | str, name: str) -> str | None:
        try:
            return os.getxattr(handle, name, **_no_follow(handle)).decode("utf-8")
        except OSError:
            return None

    def _set_xattr(self, handle: int | str, name: str, value: str) -> None:
        if not self._xattrs_supported:
            return
        try:
            os.setxattr(handle, name, value.encode("utf-8"), **_no_follow(handle))
        except OSError as exc:
            if exc.errno in _FULL_DISK:
                raise
            if exc.errno in (errno.ENOTSUP, errno.EPERM):
                self._xattrs_supported = False
                log.warning("%s has no user xattrs: ETags are computed on read "
                            "and Content-Type is not kept", self.root)

    def _os_error(self, exc: OSError, path: str | None) -> StorageError | OSError:
        if exc.errno in _FULL_DISK:
            return InsufficientStorage("no space left on the storage volume", path)
        if exc.errno == errno.ELOOP:  # a link the path check could not resolve
            return InvalidPath(f"{path} goes through a symbolic link", path)
        return exc


def _no_follow(handle: int | str) -> dict:
    """xattr calls on a name must not follow links; on an fd they cannot."""
    return {} if isinstance(handle, int) else {"follow_symlinks": False}


def _read_range(fd: int, offset: int, end: int | None):
    """Yield the bytes of ``fd`` from ``offset`` up to ``end`` (None: EOF)."""
    position = offset
    while end is None or position < end:
        want = CHUNK_SIZE if end is None else min(CHUNK_SIZE, end - position)
        chunk = os.pread(fd, want, position)
        if not chunk:
            return
        position += len(chunk)
        yield chunk


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_abandoned_temp_files(tmp_dir: str) -> int:
    """Remove temp files left by processes that died (crash, kill -9).

    Temp names start with the writer's PID, so files of live processes (other
    workers sharing this root) are kept.
    """
    removed = 0
    for entry in os.scandir(tmp_dir):
        pid = entry.name.split(".", 1)[0]
        if pid.isdigit() and _process_alive(int(pid)) and int(pid) != os.getpid():
            continue
        _unlink_quietly(entry.path)
        removed += 1
    if removed:
        log.info("removed %d abandoned temporary file(s) from %s", removed, tmp_dir)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


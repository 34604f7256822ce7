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

Only regular files with a single link are objects. Anything else found in
the root (a FIFO, a device, a socket, a hard link) was put there by other
means and behaves as absent: it is never opened for reading when seen in
advance, and opened only with ``O_NONBLOCK | O_NOCTTY | O_NOFOLLOW`` when it
appears in a race, so it cannot block a thread, feed endless bytes or
become the server's terminal. The store never creates hard links itself
(writes are renames of fresh temp files), so a file with more than one
link is planted, possibly pointing at a file outside the root: it is not
served and its attributes are never written. A file or directory the
service may not read or write raises StoragePermissionDenied (500), never
a bare OSError. Every other OSError becomes the typed error its errno calls
for (see ``_os_error``): a full disk 507, a read-only or failing volume 503, a
name too long for the volume 400, anything else 500 ``storage_error``.

Objects are created with ``file_mode`` (default 0600) and directories with
``dir_mode`` (default 0700), exactly, whatever the process umask; operators
who want a group to read the files set e.g. 0640 and 0750.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import errno
import fcntl
import functools
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
from typing import Iterator

from blobsvc.storage import paths
from blobsvc.storage.base import (
    DEFAULT_CONTENT_TYPE,
    REQUIRED,
    ObjectInfo,
    ObjectStream,
    Precondition,
    StorageDriver,
    Upload,
    check_total_size,
)
from blobsvc.storage.dircache import DirectoryNames
from blobsvc.storage.errors import (
    BackendUnavailable,
    Conflict,
    InsufficientStorage,
    InvalidPath,
    MissingChunks,
    NotFound,
    StorageError,
    StorageFault,
    StoragePermissionDenied,
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
_DENIED = (errno.EACCES, errno.EPERM)
#: The volume cannot serve now (a failing disk, a read-only remount): 503.
_UNAVAILABLE = {errno.EIO: "has I/O errors", errno.EROFS: "is read-only"}
#: What a name that names no object meets: absent, below a file, behind a link loop.
_NO_OBJECT = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)
#: What opening a listed entry meets when it is not an object that can be served
#: (gone, a socket or device, swapped for a link): it is skipped.
_NOT_SERVED = (*_NO_OBJECT, errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP)

#: Flags for every read open: never through a link, never blocking on a
#: FIFO, never acquiring a terminal.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

DEFAULT_FILE_MODE = 0o600
DEFAULT_DIR_MODE = 0o700
#: The service's own area (temp files, locks) is private whatever dir_mode says.
PRIVATE_DIR_MODE = 0o700


def _typed_os_errors(method):
    """An OSError anywhere in an operation becomes its typed storage error, so no
    errno reaches the HTTP layer as a bare exception (a 500 with a traceback)."""

    @functools.wraps(method)
    def wrapper(self, path, *args):
        try:
            return method(self, path, *args)
        except OSError as exc:
            raise self._os_error(exc, path) from None

    return wrapper


def _permission_denied(path: str | None) -> StoragePermissionDenied:
    """No disk path in the message: the client sees it."""
    where = path if path else "its storage"
    return StoragePermissionDenied(
        f"the service is not allowed to access {where} on its storage volume "
        "(file ownership or modes)", path)


def parse_mode(value: int | str, setting: str, needed: int) -> int:
    """A permission mode from the config: an int, or a string read as octal.

    Refused: bits beyond 0777 (set-ID, sticky, or a decimal 640 meant as
    octal), modes without ``needed`` for the owner (the service could not
    use its own files), and world-writable modes.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"storage.{setting} must be an octal mode such as 0640")
    if isinstance(value, str):
        digits = value.strip().lower().removeprefix("0o")
        if not digits or not set(digits) <= set("01234567"):
            raise ValueError(f"storage.{setting} must be an octal mode such as 0640, "
                             f"not {value!r}")
        value = int(digits, 8)
    if not 0 <= value <= 0o777:
        raise ValueError(f"storage.{setting} must be an octal mode of at most 0777 "
                         f"(write it with a leading 0), not {value:o} in octal")
    if value & needed != needed:
        raise ValueError(f"storage.{setting} {value:04o} lacks {needed:04o}, which the "
                         "service needs on its own files")
    if value & 0o002:
        raise ValueError(f"storage.{setting} {value:04o} is world-writable")
    return value


class FilesystemDriver(StorageDriver):
    name = "filesystem"
    SETTINGS = {
        "root": (str, REQUIRED),
        "fsync": (bool, True),
        "file_mode": ((int, str), DEFAULT_FILE_MODE),
        "dir_mode": ((int, str), DEFAULT_DIR_MODE),
    }

    @classmethod
    def check_settings(cls, params: dict) -> None:
        parse_mode(params.get("file_mode", DEFAULT_FILE_MODE), "file_mode", 0o600)
        parse_mode(params.get("dir_mode", DEFAULT_DIR_MODE), "dir_mode", 0o700)

    def __init__(self, root: str, fsync: bool = True, file_mode: int | str = DEFAULT_FILE_MODE,
                 dir_mode: int | str = DEFAULT_DIR_MODE) -> None:
        self.root = os.path.realpath(root)
        self.fsync = fsync
        self.file_mode = parse_mode(file_mode, "file_mode", 0o600)
        self.dir_mode = parse_mode(dir_mode, "dir_mode", 0o700)
        self._tmp_dir = os.path.join(self.root, PRIVATE_DIR, "tmp")
        self._lock_dir = os.path.join(self.root, PRIVATE_DIR, "locks")
        os.makedirs(os.path.dirname(self.root), exist_ok=True)
        _make_dir(self.root, self.dir_mode)
        for private in (os.path.dirname(self._tmp_dir), self._tmp_dir, self._lock_dir):
            _make_dir(private, PRIVATE_DIR_MODE)
        self._locks = [threading.Lock() for _ in range(64)]
        # Stripe lock files, opened once each; the thread lock of a stripe
        # is always held while its fd is used.
        self._lock_fds: dict[int, int] = {}
        self._xattrs_supported = True
        self._names = DirectoryNames()
        remove_abandoned_temp_files(self._tmp_dir)

    # -- reads ---------------------------------------------------------------

    @_typed_os_errors
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
        if not _is_served(st):
            return None  # symlinks, special files and hard links are never served
        # Size and ETag from one open file, so a rename in between cannot
        # pair one version's size with another's ETag.
        try:
            fd = os.open(full, _READ_FLAGS)
        except OSError as exc:
            if exc.errno in _NOT_SERVED:
                return None  # deleted or replaced by something that is not served
            raise self._os_error(exc, path) from None  # names the entry, not the directory
        try:
            st = os.fstat(fd)
            if not _is_served(st):
                return None
            return self._file_info(path, st, fd, compute_etag=False)
        finally:
            os.close(fd)

    @_typed_os_errors
    def _stat(self, path):
        fd = self._open_fd(path)
        try:
            return self._fd_info(path, fd)
        finally:
            os.close(fd)

    def _open_fd(self, path: str) -> int:
        """A read descriptor of the object itself (never through a link).

        Whatever is not served is refused from an lstat before any open
        (opening a device can have side effects); the fstat in
        ``_fd_info`` catches a swap in between.
        """
        full = self._resolve(path)
        try:
            st = os.lstat(full)
            if not stat.S_ISDIR(st.st_mode):
                _check_served(path, st)
            return os.open(full, _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no object at {path}", path) from None
        except OSError as exc:
            if exc.errno in (errno.ENXIO, errno.ENODEV):  # a socket or device after all
                raise NotFound(f"no object at {path}", path) from None
            raise self._os_error(exc, path) from None

    @_typed_os_errors
    def _open(self, path, offset, length):
        fd = self._open_fd(path)
        try:
            info = self._fd_info(path, fd)
        except BaseException:
            os.close(fd)
            raise
        assert info.size is not None
        end = info.size if length is None else min(info.size, offset + length)
        return info, ObjectStream(self._typed_reads(_read_range(fd, offset, end), path),
                                  lambda: os.close(fd))

    def _typed_reads(self, chunks: Iterator[bytes], path: str) -> Iterator[bytes]:
        """``chunks``, with a read error raised as its typed error: a stream is
        read after the operation that opened it has returned."""
        try:
            yield from chunks
        except OSError as exc:
            raise self._os_error(exc, path) from None

    def _fd_info(self, path: str, fd: int) -> ObjectInfo:
        st = os.fstat(fd)
        _check_served(path, st)
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
        fd = handle if isinstance(handle, int) else os.open(handle, _READ_FLAGS)
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

    @_typed_os_errors
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
        except BaseException:
            os.close(fd)
            _unlink_quietly(tmp_path)
            raise
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
                self._make_dirs(parent)
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

    @_typed_os_errors
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

    @_typed_os_errors
    def _move(self, src, dst, precondition: Precondition | None):
        full_src, full_dst = self._resolve(src), self._resolve(dst)
        with self._locked(src, dst):
            moved = self._current_or_dir(src, full_src)
            if precondition is not None:
                precondition(self._current(dst))
            try:
                self._commit(full_src, full_dst, dst)
            except FileNotFoundError:
                raise NotFound(f"no object at {src}", src) from None
        self._prune(os.path.dirname(full_src))
        return dataclasses.replace(moved, path=dst, name=paths.basename(dst))

    @_typed_os_errors
    def _cat(self, path, chunks, max_size, precondition: Precondition | None):
        sizes = {chunk: self._chunk_size(chunk) for chunk in dict.fromkeys(chunks)}
        missing = [chunk for chunk in chunks if sizes[chunk] is None]
        if missing:
            raise MissingChunks(missing)
        check_total_size((sizes[chunk] for chunk in chunks), max_size, path)
        # The Upload counts again: a chunk may have grown since its lstat.
        # Its precondition is checked under the commit lock, like a PUT's.
        info = self._put(path, Upload(self._joined(chunks), max_size=max_size,
                                      precondition=precondition))
        for chunk in dict.fromkeys(chunks):
            if chunk != path:
                self._delete_quietly(chunk)
        return info

    def _joined(self, chunks: list[str]):
        """The chunks' bytes in order; each file is closed once read or on error."""
        for chunk in chunks:
            _, stream = self._open(chunk, 0, None)
            with stream:
                yield from stream

    def check_ready(self) -> None:
        """Ready only if a write could succeed now: the root is a directory the
        service can create files in, on a volume with free blocks. The reason
        names no disk path, since anyone may ask."""
        try:
            if not stat.S_ISDIR(os.stat(self.root).st_mode):
                raise BackendUnavailable("the storage root is not a directory")
            volume = os.statvfs(self.root)
        except FileNotFoundError:
            raise BackendUnavailable("the storage root does not exist") from None
        except OSError as exc:
            raise _not_ready(exc, "the storage root cannot be read") from None
        # Blocks reserved for root are usable only when running as root.
        free = volume.f_bfree if os.geteuid() == 0 else volume.f_bavail
        if free == 0:
            raise BackendUnavailable("the storage volume is full")
        self._probe_write()

    def _probe_write(self) -> None:
        """Create and remove a small file where every write starts."""
        probe = self._temp_name()
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, b"ready")
            finally:
                os.close(fd)
                os.unlink(probe)
        except FileNotFoundError:
            raise BackendUnavailable(
                f"the service's area {PRIVATE_DIR}/tmp is missing from the storage root") from None
        except OSError as exc:
            raise _not_ready(exc, "the service cannot write to its storage root") from None

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

    def _chunk_size(self, path: str) -> int | None:
        """The size of the object at ``path``, None if there is none."""
        try:
            st = os.lstat(self._resolve(path))
        except OSError as exc:
            if exc.errno in _NO_OBJECT:
                return None
            raise
        return st.st_size if _is_served(st) else None

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
        """A new temp file with exactly ``file_mode`` (the umask may only narrow it)."""
        tmp_path = self._temp_name()
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, self.file_mode)
        except OSError:
            os.close(fd)
            _unlink_quietly(tmp_path)
            raise
        return tmp_path, fd

    def _temp_name(self) -> str:
        """A new name in the temp area; the PID prefix lets a restart sweep it."""
        return os.path.join(self._tmp_dir, f"{os.getpid()}.{uuid.uuid4().hex}{TEMP_SUFFIX}")

    def _make_dirs(self, directory: str) -> None:
        """``os.makedirs(exist_ok=True)`` below the root, new levels with ``dir_mode``.

        Raises what makedirs raises in the races ``_commit`` retries: a level
        pruned meanwhile (ENOENT), a level that is a file (EEXIST).
        """
        missing = []
        current = directory
        while current.startswith(self.root + os.sep) and not os.path.isdir(current):
            missing.append(current)
            current = os.path.dirname(current)
        for level in reversed(missing):
            _make_dir(level, self.dir_mode)

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

    def _os_error(self, exc: OSError, path: str | None) -> StorageError:
        """The typed error of ``exc``: its status says whose fault it is, its
        message names the object (never a disk path: the client reads it)."""
        where = path if path else "its storage"
        name = _errno_name(exc)
        if exc.errno in _FULL_DISK:
            return InsufficientStorage(f"no space left on the storage volume for {where}", path)
        if exc.errno in _DENIED:
            return _permission_denied(path)
        if exc.errno == errno.ELOOP:  # a link the path check could not resolve
            return InvalidPath(f"{path} goes through a symbolic link", path)
        if exc.errno == errno.ENAMETOOLONG:
            # Valid for the API, too long for this volume: the operator should know.
            log.warning("%s is a name the storage filesystem cannot hold (%s)", where, name)
            return InvalidPath(f"{where} is a name the storage filesystem cannot hold", path)
        if exc.errno in _UNAVAILABLE:
            return BackendUnavailable(
                f"the storage volume {_UNAVAILABLE[exc.errno]} ({name}) at {where}", path)
        return StorageFault(f"storage error {name} ({os.strerror(exc.errno or 0)}) at {where}", path)


def _not_ready(exc: OSError, otherwise: str) -> BackendUnavailable:
    """Why the volume cannot take writes, in words for a readiness probe."""
    name = _errno_name(exc)
    if exc.errno in _UNAVAILABLE:
        return BackendUnavailable(f"the storage volume {_UNAVAILABLE[exc.errno]} ({name})")
    if exc.errno in _FULL_DISK:
        return BackendUnavailable(f"the storage volume is full ({name})")
    if exc.errno in _DENIED:
        return BackendUnavailable(f"the service may not access its storage root ({name})")
    return BackendUnavailable(f"{otherwise} ({name})")


def _errno_name(exc: OSError) -> str:
    """``EIO`` rather than 5: what operators search for."""
    return errno.errorcode.get(exc.errno or 0, f"errno {exc.errno}")


def _is_served(st: os.stat_result) -> bool:
    """A regular file with one link (0: replaced or deleted while open)."""
    return stat.S_ISREG(st.st_mode) and st.st_nlink <= 1


def _check_served(path: str, st: os.stat_result) -> None:
    """NotFound for what is not an object; see the module docstring."""
    if stat.S_ISDIR(st.st_mode):
        raise NotFound(f"{path} is a directory, not an object", path)
    if stat.S_ISLNK(st.st_mode):  # refused for every operation, a PUT over it too
        raise InvalidPath(f"{path} goes through a symbolic link", path)
    if not _is_served(st):
        kind = "hard link" if stat.S_ISREG(st.st_mode) else "file that is not a regular file"
        log.warning("not serving %s: a %s placed in the root by other means", path, kind)
        raise NotFound(f"no object at {path}", path)


def _make_dir(directory: str, mode: int) -> None:
    """Create ``directory`` with exactly ``mode``; an existing directory is left as it is."""
    try:
        os.mkdir(directory, mode)
    except FileExistsError:
        if os.path.isdir(directory):
            return  # made by someone else: not ours to change
        raise
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(fd, mode)  # mkdir's mode went through the umask
    finally:
        os.close(fd)


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


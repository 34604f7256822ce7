"""The filesystem driver: objects as plain files under one root directory.

Every write goes to a temporary file in ``ROOT/.blobsvc/tmp`` (see
``tempfiles``), is fsynced when ``fsync`` is on, then renamed into place
under the commit lock of its name (see ``locks``): readers see the old
object or the new one, never a mix, and a failed write leaves only a temp
file that is removed at once (or, after a crash, at the next start).

No path resolves outside the root: paths are validated before they get
here, and any symlink on the way to an object is refused. What counts as an
object, and how ETag and Content-Type travel with it, is in ``files``; how
an OSError becomes a typed error (never a bare OSError upward) in
``errors``; parent directories in ``tree``; ``/readyz`` in ``readiness``.
This module holds the operations themselves, in the order of the contract.
"""

from __future__ import annotations

import bisect
import dataclasses
import errno
import hashlib
import itertools
import os
import stat
from typing import ClassVar, Iterable, Iterator

from blobsvc.storage import paths
from blobsvc.storage.contract import (
    DEFAULT_CONTENT_TYPE,
    FileRegion,
    ObjectInfo,
    ObjectStream,
    Precondition,
    StorageDriver,
    Upload,
    check_total_size,
)
from blobsvc.storage.errors import Conflict, InvalidPath, MissingChunks, NotFound
from blobsvc.storage.filesystem import readiness
from blobsvc.storage.filesystem.dircache import DirectoryNames
from blobsvc.storage.filesystem.errors import NO_OBJECT, NOT_SERVED, os_error, typed_os_errors
from blobsvc.storage.filesystem.files import (
    CONTENT_TYPE_XATTR,
    ETAG_XATTR,
    READ_FLAGS,
    Attributes,
    check_served,
    is_served,
    read_range,
)
from blobsvc.storage.filesystem.locks import CommitLocks
from blobsvc.storage.filesystem.settings import FilesystemSettings
from blobsvc.storage.filesystem.tempfiles import (
    new_temp_file,
    remove_abandoned_temp_files,
    unlink_quietly,
)
from blobsvc.storage.filesystem.tree import Tree, make_dir
from blobsvc.storage.filesystem.writeback import Writeback
from blobsvc.storage.settings import DriverSettings

PRIVATE_DIR = paths.RESERVED_PREFIX
#: The service's own area (temp files, locks) is private whatever dir_mode says.
PRIVATE_DIR_MODE = 0o700


class FilesystemDriver(StorageDriver):
    name = "filesystem"
    settings_class: ClassVar[type[DriverSettings]] = FilesystemSettings

    def __init__(self, settings: FilesystemSettings) -> None:
        self.root = os.path.realpath(settings.root)
        self.fsync = settings.fsync
        self.file_mode = settings.file_permissions
        self.dir_mode = settings.dir_permissions
        self._tmp_dir = os.path.join(self.root, PRIVATE_DIR, "tmp")
        lock_dir = os.path.join(self.root, PRIVATE_DIR, "locks")
        os.makedirs(os.path.dirname(self.root), exist_ok=True)
        make_dir(self.root, self.dir_mode)
        for private in (os.path.dirname(self._tmp_dir), self._tmp_dir, lock_dir):
            make_dir(private, PRIVATE_DIR_MODE)
        self._locks = CommitLocks(lock_dir)
        self._tree = Tree(self.root, self.dir_mode, self.fsync)
        self._attributes = Attributes(self.root)
        self._names = DirectoryNames()
        remove_abandoned_temp_files(self._tmp_dir)

    # -- reads ---------------------------------------------------------------

    @typed_os_errors
    def _list(self, path: str, marker: str | None, limit: int | None) -> list[ObjectInfo]:
        directory = self._resolve(path) if path else self.root
        try:
            names = self._names.sorted_names(directory)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no directory at {path}/", path) from None
        except OSError as exc:
            raise os_error(exc, path) from None
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
        if not is_served(st):
            return None  # symlinks, special files and hard links are never served
        # Size and ETag from one open file, so a rename in between cannot
        # pair one version's size with another's ETag.
        try:
            fd = os.open(full, READ_FLAGS)
        except OSError as exc:
            if exc.errno in NOT_SERVED:
                return None  # deleted or replaced by something that is not served
            raise os_error(exc, path) from None  # names the entry, not the directory
        try:
            st = os.fstat(fd)
            if not is_served(st):
                return None
            return self._file_info(path, st, fd, compute_etag=False)
        finally:
            os.close(fd)

    @typed_os_errors
    def _stat(self, path: str) -> ObjectInfo:
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
        full = self._resolve(path, last=False)
        try:
            st = os.lstat(full)  # the last segment's link check (check_served)
            if not stat.S_ISDIR(st.st_mode):
                check_served(path, st)
            return os.open(full, READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no object at {path}", path) from None
        except OSError as exc:
            if exc.errno in (errno.ENXIO, errno.ENODEV):  # a socket or device after all
                raise NotFound(f"no object at {path}", path) from None
            raise os_error(exc, path) from None

    @typed_os_errors
    def _open(self, path: str, offset: int,
              length: int | None) -> tuple[ObjectInfo, ObjectStream]:
        fd = self._open_fd(path)
        try:
            info = self._fd_info(path, fd)
        except BaseException:
            os.close(fd)
            raise
        assert info.size is not None
        end = info.size if length is None else min(info.size, offset + length)
        return info, ObjectStream(self._typed_reads(read_range(fd, offset, end), path),
                                  lambda: os.close(fd),
                                  region=FileRegion(fd, offset, max(0, end - offset)))

    def _typed_reads(self, chunks: Iterator[bytes], path: str) -> Iterator[bytes]:
        """``chunks``, with a read error raised as its typed error: a stream is
        read after the operation that opened it has returned."""
        try:
            yield from chunks
        except OSError as exc:
            raise os_error(exc, path) from None

    def _fd_info(self, path: str, fd: int) -> ObjectInfo:
        st = os.fstat(fd)
        check_served(path, st)
        return self._file_info(path, st, fd, compute_etag=True)

    def _file_info(self, path: str, st: os.stat_result, handle: int | str,
                   compute_etag: bool) -> ObjectInfo:
        etag = self._attributes.get(handle, ETAG_XATTR)
        if etag is None and compute_etag:
            etag = self._compute_etag(handle)
        return ObjectInfo(
            path=path, name=paths.basename(path), isdir=False, size=st.st_size,
            ctime=st.st_mtime, etag=etag,
            content_type=self._attributes.get(handle, CONTENT_TYPE_XATTR) or DEFAULT_CONTENT_TYPE,
        )

    def _compute_etag(self, handle: int | str) -> str:
        """ETag of a file that arrived without one (placed by hand)."""
        digest = hashlib.md5()
        fd = handle if isinstance(handle, int) else os.open(handle, READ_FLAGS)
        try:
            for chunk in read_range(fd, 0, None):
                digest.update(chunk)
        finally:
            if fd is not handle:
                os.close(fd)
        etag = digest.hexdigest()
        self._attributes.set(handle, ETAG_XATTR, etag)
        return etag

    # -- writes --------------------------------------------------------------

    @typed_os_errors
    def _put(self, path: str, upload: Upload) -> ObjectInfo:
        full = self._resolve(path)
        tmp_path, fd = self._new_temp_file()
        try:
            self._write_all(fd, upload.views(), Writeback(fd, enabled=self.fsync))
            self._attributes.set(fd, ETAG_XATTR, upload.md5_hex)
            self._attributes.set(fd, CONTENT_TYPE_XATTR, upload.content_type)
            if self.fsync:
                os.fsync(fd)
            written = os.fstat(fd)
        except BaseException:
            os.close(fd)
            unlink_quietly(tmp_path)
            raise
        os.close(fd)
        try:
            with self._locks.held(path):
                upload.check_precondition(self._current(path))
                self._tree.commit(tmp_path, full, path)
        except BaseException:
            unlink_quietly(tmp_path)
            raise
        # Described from what was written, not read back: a concurrent
        # writer may already have replaced it.
        return ObjectInfo(path=path, name=paths.basename(path), isdir=False, size=written.st_size,
                          ctime=written.st_mtime, etag=upload.md5_hex,
                          content_type=upload.content_type)

    def _write_all(self, fd: int, views: Iterable[memoryview], writeback: Writeback) -> None:
        """Each view straight from the upload's buffer to the file, no copy
        (the view is only valid until the next is asked for)."""
        total = 0
        for view in views:
            while view:
                written = os.write(fd, view)
                view = view[written:]
                total += written
            writeback.written(total)

    @typed_os_errors
    def _delete(self, path: str, precondition: Precondition | None) -> None:
        full = self._resolve(path)
        with self._locks.held(path):
            current = self._current_or_dir(path, full)
            if precondition is not None:
                precondition(current)
            try:
                os.unlink(full)
            except FileNotFoundError:
                raise NotFound(f"no object at {path}", path) from None
        self._tree.prune(os.path.dirname(full))

    def _current_or_dir(self, path: str, full: str) -> ObjectInfo:
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no object at {path}", path) from None
        except OSError as exc:
            raise os_error(exc, path) from None
        if stat.S_ISDIR(st.st_mode):
            if os.listdir(full):
                raise Conflict(f"{path} is a non-empty directory", path)
            self._tree.prune(full)
            raise NotFound(f"no object at {path}", path)
        return self._stat(path)

    @typed_os_errors
    def _move(self, src: str, dst: str, precondition: Precondition | None) -> ObjectInfo:
        full_src, full_dst = self._resolve(src), self._resolve(dst)
        with self._locks.held(src, dst):
            moved = self._current_or_dir(src, full_src)
            if precondition is not None:
                precondition(self._current(dst))
            try:
                self._tree.commit(full_src, full_dst, dst)
            except FileNotFoundError:
                raise NotFound(f"no object at {src}", src) from None
        self._tree.prune(os.path.dirname(full_src))
        return dataclasses.replace(moved, path=dst, name=paths.basename(dst))

    @typed_os_errors
    def _cat(self, path: str, chunks: list[str], max_size: int | None,
             precondition: Precondition | None) -> ObjectInfo:
        sizes = {chunk: self._chunk_size(chunk) for chunk in dict.fromkeys(chunks)}
        missing = [chunk for chunk in chunks if sizes[chunk] is None]
        if missing:
            raise MissingChunks(missing)
        found = {chunk: size for chunk, size in sizes.items() if size is not None}
        check_total_size((found[chunk] for chunk in chunks), max_size, path)
        # The Upload counts again: a chunk may have grown since its lstat.
        # Its precondition is checked under the commit lock, like a PUT's.
        info = self._put(path, Upload(self._joined(chunks), max_size=max_size,
                                      precondition=precondition))
        for chunk in dict.fromkeys(chunks):
            if chunk != path:
                self._delete_quietly(chunk)
        return info

    def _joined(self, chunks: list[str]) -> Iterator[bytes]:
        """The chunks' bytes in order; each file is closed once read or on error."""
        for chunk in chunks:
            _, stream = self._open(chunk, 0, None)
            with stream:
                yield from stream

    # -- readiness and lifecycle ----------------------------------------------

    def _check_ready(self) -> None:
        readiness.check_ready(self.root, self._tmp_dir, f"{PRIVATE_DIR}/tmp")

    def close(self) -> None:
        self._locks.close()

    def _delete_quietly(self, path: str) -> None:
        try:
            self._delete(path, None)
        except NotFound:
            pass  # removed concurrently: the outcome is the same

    # -- helpers -------------------------------------------------------------

    def _resolve(self, path: str, last: bool = True) -> str:
        """The file name of ``path``, refusing any route out of the root.

        ``path`` is already free of ``.``, ``..`` and empty segments, so only
        a symbolic link could lead out: one lstat per segment below the root
        finds one (``os.path.realpath`` would lstat the root's own ancestors
        too, on every request). Segments from the first missing one on
        cannot be links. ``last=False`` leaves the final segment to a caller
        that lstats it anyway.
        """
        full = os.path.join(self.root, path)
        segments = path.split("/")
        current = self.root
        for segment in segments if last else segments[:-1]:
            current = f"{current}/{segment}"
            try:
                st = os.lstat(current)
            except OSError:
                break
            if stat.S_ISLNK(st.st_mode):
                raise InvalidPath(f"{path} goes through a symbolic link", path)
        return full

    def _chunk_size(self, path: str) -> int | None:
        """The size of the object at ``path``, None if there is none."""
        try:
            st = os.lstat(self._resolve(path))
        except OSError as exc:
            if exc.errno in NO_OBJECT:
                return None
            raise
        return st.st_size if is_served(st) else None

    def _current(self, path: str) -> ObjectInfo | None:
        try:
            return self._stat(path)
        except NotFound:
            return None

    def _new_temp_file(self) -> tuple[str, int]:
        """A new temp file with exactly ``file_mode`` (the umask may only narrow it)."""
        return new_temp_file(self._tmp_dir, self.file_mode)

"""The filesystem driver: objects as plain files under one root directory.

Every write goes to a temporary file in ``ROOT/.blobsvc/tmp`` (see
``tempfiles``), is fsynced when ``fsync`` is on, then renamed into place
under the commit lock of its name (see ``locks``): readers see the old
object or the new one, never a mix, and a failed write leaves only a temp
file that is removed at once (or, after a crash, at the next start).

No path resolves outside the root: paths are validated before they get
here, and any symlink on the way to an object is refused. What counts as an
object, and how its ETag travels with it, is in ``files``; its metadata
record (content type, user metadata, stored headers, expiry) and the
sidecars of large ones in ``objectmeta``; the expiry index and the reaper
in ``expiry``; the sorted recursive walk in ``walk``; how an OSError
becomes a typed error (never a bare OSError upward) in ``errors``; parent
directories in ``tree``; ``/readyz`` in ``readiness``. This module holds
the operations themselves, in the order of the contract.

Everything under ``ROOT/.blobsvc`` is the service's own: never an object,
never listed.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import errno
import hashlib
import itertools
import logging
import os
import stat
import time
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, TypeVar

from blobsvc.storage import paths
from blobsvc.storage.contract import (
    DEFAULT_CONTENT_TYPE,
    FileRegion,
    ObjectInfo,
    ObjectMeta,
    ObjectStream,
    Precondition,
    StorageDriver,
    Upload,
    check_alive,
    check_total_size,
)
from blobsvc.storage.errors import (
    Conflict,
    InvalidPath,
    MissingChunks,
    NotFound,
    StorageError,
    StorageFault,
)
from blobsvc.storage.filesystem import readiness
from blobsvc.storage.filesystem.dircache import DirectoryNames
from blobsvc.storage.filesystem.errors import NO_OBJECT, NOT_SERVED, os_error, typed_os_errors
from blobsvc.storage.filesystem.expiry import ExpiryIndex, Reaper
from blobsvc.storage.filesystem.files import (
    CONTENT_TYPE_XATTR,
    ETAG_XATTR,
    READ_FLAGS,
    Attributes,
    ShortSource,
    check_served,
    copy_bytes,
    is_served,
    read_range,
)
from blobsvc.storage.filesystem.locks import CommitLocks
from blobsvc.storage.filesystem.objectmeta import (
    META_XATTR,
    TOO_BIG,
    SidecarGone,
    Sidecars,
    carries_more_than_a_type,
    document,
    encode,
    no_user_xattrs,
    read_record,
)
from blobsvc.storage.filesystem.settings import FilesystemSettings
from blobsvc.storage.filesystem.tempfiles import (
    new_temp_file,
    remove_abandoned_temp_files,
    unlink_quietly,
)
from blobsvc.storage.filesystem.tree import Tree, make_dir
from blobsvc.storage.filesystem.walk import walk_files
from blobsvc.storage.filesystem.writeback import Writeback
from blobsvc.storage.metadata import is_expired
from blobsvc.storage.settings import DriverSettings

log = logging.getLogger(__package__)  # the driver's logger

T = TypeVar("T")

PRIVATE_DIR = paths.RESERVED_PREFIX
#: The service's own area (temp files, locks) is private whatever dir_mode says.
PRIVATE_DIR_MODE = 0o700

#: How often a read starts over when the sidecar of the version it opened
#: went away (the object was replaced or updated meanwhile); the last try
#: serves the object without what the sidecar held, and says so in the log.
SIDECAR_RETRIES = 5

#: A version of an object as found under its commit lock: what the
#: precondition judges, and the sidecar a write replacing it drops.
Found = tuple[ObjectInfo, str | None]


class _NotDue(Exception):
    """The object an expiry entry names no longer has that expiry."""


class FilesystemDriver(StorageDriver):
    name = "filesystem"
    settings_class: ClassVar[type[DriverSettings]] = FilesystemSettings

    def __init__(self, settings: FilesystemSettings) -> None:
        self.root = os.path.realpath(settings.root)
        self.fsync = settings.fsync
        self.file_mode = settings.file_permissions
        self.dir_mode = settings.dir_permissions
        private = os.path.join(self.root, PRIVATE_DIR)
        self._tmp_dir = os.path.join(private, "tmp")
        lock_dir = os.path.join(private, "locks")
        os.makedirs(os.path.dirname(self.root), exist_ok=True)
        make_dir(self.root, self.dir_mode)
        for area in (private, self._tmp_dir, lock_dir, *(os.path.join(private, name)
                                                         for name in ("meta", "journal", "expiring"))):
            make_dir(area, PRIVATE_DIR_MODE)
        self._locks = CommitLocks(lock_dir)
        self._tree = Tree(self.root, self.dir_mode, self.fsync)
        self._attributes = Attributes(self.root)
        self._names = DirectoryNames()
        self._sidecars = Sidecars(self.root, private, self._attributes, self._locks, self.fsync)
        self._expiry = ExpiryIndex(private, self._tmp_dir, self.fsync)
        self._reaper = Reaper(self.reap_expired, settings.reap_interval)
        remove_abandoned_temp_files(self._tmp_dir)
        self._sidecars.sweep()
        # The thread runs only where something can expire: from the start if
        # the index holds entries, else from this driver's first expiring write.
        if self._expiry.has_entries():
            self._reaper.start()

    # -- reads ---------------------------------------------------------------

    @typed_os_errors
    def _list(self, path: str, marker: str | None, limit: int | None,
              prefix: str | None) -> list[ObjectInfo]:
        self._reap_expired()  # a directory only expired objects kept must not show
        directory = self._resolve(path) if path else self.root
        try:
            names = self._names.sorted_names(directory)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no directory at {path}/", path) from None
        except OSError as exc:
            raise os_error(exc, path) from None
        start = bisect.bisect_right(names, marker) if marker is not None else 0
        if prefix is not None:
            start = max(start, bisect.bisect_left(names, prefix))
        infos: list[ObjectInfo] = []
        # Entries that are not served (links, the private area) are
        # skipped and made up for from the names that follow.
        for name in itertools.islice(names, start, None):
            if limit is not None and len(infos) >= limit:
                break
            if prefix is not None and not name.startswith(prefix):
                break  # sorted: no later name has the prefix
            if not path and name == PRIVATE_DIR:
                continue
            info = self._entry_info(paths.join(path, name), os.path.join(directory, name))
            if info is not None:
                infos.append(info)
        return infos

    @typed_os_errors
    def _list_recursive(self, path: str, marker: str | None, limit: int | None,
                        prefix: str | None) -> list[ObjectInfo]:
        self._reap_expired()  # as for _list: NotFound for what only expired objects kept
        directory = self._resolve(path) if path else self.root
        try:
            files = walk_files(self._names, directory, path, marker, prefix,
                               skip_at_top=None if path else PRIVATE_DIR)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no directory at {path}/", path) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InvalidPath(f"{path} goes through a symbolic link", path) from None
            raise os_error(exc, path) from None
        infos: list[ObjectInfo] = []
        try:
            for entry_path, full in files:
                if limit is not None and len(infos) >= limit:
                    break
                info = self._entry_info(entry_path, full)
                if info is not None and not info.isdir:  # a directory now: changed meanwhile
                    infos.append(info)
        finally:
            files.close()
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
        # Size, ETag and record from one open file, so a rename in between
        # cannot pair one version's size with another's ETag.
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
            return self._file_info(path, st, fd, compute_etag=False, full=False)[0]
        finally:
            os.close(fd)

    @typed_os_errors
    def _stat(self, path: str) -> ObjectInfo:
        fd, info, _ = self._open_described(path)
        os.close(fd)
        return info

    def _open_fd(self, path: str) -> int:
        """A read descriptor of the object itself (never through a link).

        Whatever is not served is refused from an lstat before any open
        (opening a device can have side effects); the fstat in
        ``_open_described`` catches a swap in between.
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

    def _open_described(self, path: str) -> tuple[int, ObjectInfo, str | None]:
        """An open descriptor of the object, its whole info (metadata
        included) and its sidecar, all of one version.

        A sidecar found gone means the file was replaced or updated after
        it was opened: the object is opened again (see SIDECAR_RETRIES).
        """
        for attempt in range(SIDECAR_RETRIES):
            fd = self._open_fd(path)
            try:
                st = os.fstat(fd)
                check_served(path, st)
                info, sidecar = self._file_info(path, st, fd, compute_etag=True, full=True,
                                                last_try=attempt == SIDECAR_RETRIES - 1)
            except SidecarGone:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            return fd, info, sidecar
        raise AssertionError("the last try does not raise SidecarGone")  # pragma: no cover

    @typed_os_errors
    def _open(self, path: str, offset: int,
              length: int | None) -> tuple[ObjectInfo, ObjectStream]:
        fd, info, _ = self._open_described(path)
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

    def _file_info(self, path: str, st: os.stat_result, handle: int | str, *,
                   compute_etag: bool, full: bool, last_try: bool = True) -> Found:
        """The info of the file ``handle``: with its user metadata and stored
        headers when ``full`` (reading its sidecar if it has one), as a
        listing shows it otherwise. Raises SidecarGone for a sidecar found
        gone, unless ``last_try`` (the object is then described without it)."""
        etag = self._attributes.get(handle, ETAG_XATTR)
        if etag is None and compute_etag:
            etag = self._compute_etag(handle)
        record = read_record(self._attributes, handle, path)
        content_type: str | None = None
        expires_at: int | None = None
        headers: Mapping[str, str] = {}
        metadata: Mapping[str, str] | None = {} if full else None
        sidecar: str | None = None
        if record is None:
            content_type = self._attributes.get(handle, CONTENT_TYPE_XATTR)
        else:
            content_type, expires_at, sidecar = record.content_type, record.expires_at, record.sidecar
            if sidecar is None:
                if full:
                    headers, metadata = record.headers or {}, record.metadata or {}
            elif full:
                stored = self._read_sidecar(sidecar, path, last_try)
                headers, metadata = stored.headers, stored.metadata
                content_type = content_type or stored.content_type
            elif content_type is None:  # too long for the xattr: a listing needs it too
                with contextlib.suppress(SidecarGone):  # replaced since: any type will do
                    content_type = self._sidecars.read(sidecar, path).content_type
        info = ObjectInfo(
            path=path, name=paths.basename(path), isdir=False, size=st.st_size,
            ctime=st.st_mtime, etag=etag, content_type=content_type or DEFAULT_CONTENT_TYPE,
            metadata=None if metadata is None else dict(metadata), headers=dict(headers),
            expires_at=expires_at)
        return info, sidecar

    def _read_sidecar(self, sidecar: str, path: str, last_try: bool) -> ObjectMeta:
        try:
            return self._sidecars.read(sidecar, path)
        except SidecarGone:
            if not last_try:
                raise
            log.error("the metadata sidecar of %s is missing: serving it without its user "
                      "metadata and stored headers", path)
            return ObjectMeta()

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
        doc = document(upload.meta)
        self._check_keepable(doc, path)  # before a byte of the body is read
        tmp_path, fd = self._new_temp_file()
        try:
            try:
                self._write_all(fd, upload.views(), Writeback(fd, enabled=self.fsync))
                self._attributes.set(fd, ETAG_XATTR, upload.md5_hex)
                inline = self._store_record(fd, doc, path)
                if self.fsync:
                    os.fsync(fd)
                written = os.fstat(fd)
                self._clearing_expired(lambda: self._commit_new(
                    path, full, tmp_path, fd, doc, inline, upload.check_precondition))
            finally:
                os.close(fd)
        except BaseException:
            unlink_quietly(tmp_path)
            raise
        # Described from what was written, not read back: a concurrent
        # writer may already have replaced it.
        return self._written_info(path, written, upload.md5_hex, upload.meta)

    def _written_info(self, path: str, written: os.stat_result, etag: str | None,
                      meta: ObjectMeta) -> ObjectInfo:
        return ObjectInfo(path=path, name=paths.basename(path), isdir=False, size=written.st_size,
                          ctime=written.st_mtime, etag=etag,
                          content_type=meta.content_type or DEFAULT_CONTENT_TYPE,
                          metadata=dict(meta.metadata), headers=dict(meta.headers),
                          expires_at=meta.expires_at)

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

    def _check_keepable(self, doc: Mapping[str, Any], path: str) -> None:
        """Refuse at once what a volume found without xattrs cannot keep."""
        if not self._attributes.supported and carries_more_than_a_type(doc):
            raise no_user_xattrs(path)

    def _store_record(self, handle: int | str, doc: Mapping[str, Any], path: str,
                      required: bool = False) -> bool:
        """Set ``doc`` as the record of ``handle``: True when it is set (or
        there is nothing a volume without xattrs could keep and ``required``
        is off), False when it does not fit and needs a sidecar."""
        try:
            if self._attributes.put(handle, META_XATTR, encode(doc)):
                return True
        except OSError as exc:
            if exc.errno in TOO_BIG:
                return False
            raise
        if required or carries_more_than_a_type(doc):
            raise no_user_xattrs(path)
        return True  # a plain write on a volume without xattrs, as it always was

    def _reference(self, handle: int | str, doc: Mapping[str, Any], sidecar: str) -> None:
        """Point the record of ``handle`` at ``sidecar``, keeping content type
        and expiry in the xattr (the content type unless it is too long)."""
        reference = {"content_type": doc["content_type"], "expires_at": doc["expires_at"],
                     "sidecar": sidecar}
        try:
            self._attributes.put(handle, META_XATTR, encode(reference))
        except OSError as exc:
            if exc.errno not in TOO_BIG:
                raise
            del reference["content_type"]
            self._attributes.put(handle, META_XATTR, encode(reference))

    def _commit_new(self, path: str, full: str, tmp_path: str, fd: int, doc: Mapping[str, Any],
                    inline: bool, check: Callable[[ObjectInfo | None], None] | None) -> None:
        """Commit the temp file ``fd`` at ``path``, as a PUT does: under the
        commit lock, judge the current version, file the expiry, write the
        sidecar if the record needs one, rename; the replaced version's
        sidecar is dropped."""
        expires_at = doc["expires_at"]
        entry = None if expires_at is None else self._expiry.prepare(path, expires_at)
        try:
            with self._locks.held(path):
                current = self._found(path)
                if check is not None:
                    check(None if current is None else current[0])
                new = None if inline else self._sidecars.new_id()
                with self._sidecars.journaled([path], [new, None if current is None else current[1]]):
                    if new is not None:
                        self._sidecars.write(new, doc)
                        self._reference(fd, doc, new)
                        if self.fsync:
                            os.fsync(fd)
                    if entry is not None:
                        self._expiry.file(entry)
                        entry = None
                    self._tree.commit(tmp_path, full, path)
                if current is not None:
                    self._forget_expiry(path, current[0].expires_at, expires_at)
        finally:
            self._expiry.discard(entry)
        if expires_at is not None:
            self._reaper.start()

    @typed_os_errors
    def _update(self, path: str, meta: ObjectMeta, precondition: Precondition) -> ObjectInfo:
        self._resolve(path)
        if not self._attributes.supported:
            raise no_user_xattrs(path)
        entry = None if meta.expires_at is None else self._expiry.prepare(path, meta.expires_at)
        try:
            return self._update_locked(path, meta, precondition, entry)
        finally:
            self._expiry.discard(entry)

    def _update_locked(self, path: str, meta: ObjectMeta, precondition: Precondition,
                       entry: tuple[str, str] | None) -> ObjectInfo:
        with self._locks.held(path):
            fd, info, old = self._open_described(path)
            try:
                precondition(info)
                updated = ObjectMeta(content_type=meta.content_type or info.content_type,
                                     headers=meta.headers, metadata=meta.metadata,
                                     expires_at=meta.expires_at)
                doc = document(updated)
                if entry is not None:  # filed before the record says so
                    self._expiry.file(entry)
                # The old sidecar is journaled before the record that drops it
                # is replaced: a crash in between cannot orphan it.
                with self._sidecars.journaled([path], [old]):
                    # One setxattr replaces the whole record: readers see the
                    # old metadata or the new, never a mix.
                    inline = self._store_record(fd, doc, path, required=True)
                    new = None if inline else self._sidecars.new_id()
                    with self._sidecars.journaled([path], [new]):
                        if new is not None:
                            self._sidecars.write(new, doc)
                            self._reference(fd, doc, new)
                        if self.fsync:
                            os.fsync(fd)
                self._forget_expiry(path, info.expires_at, updated.expires_at)
            finally:
                os.close(fd)
        if updated.expires_at is not None:
            self._reaper.start()
        return info.with_meta(updated)

    @typed_os_errors
    def _delete(self, path: str, precondition: Precondition | None) -> None:
        self._clearing_expired(lambda: self._delete_once(path, precondition))

    def _delete_once(self, path: str, precondition: Precondition | None) -> None:
        full = self._resolve(path)
        with self._locks.held(path):
            self._delete_locked(path, full, precondition)
        self._tree.prune(os.path.dirname(full))

    def _delete_locked(self, path: str, full: str, precondition: Precondition | None) -> None:
        """Delete the object at ``path`` if ``precondition`` lets it, and its
        sidecar; the caller holds the commit lock and prunes the parents."""
        current, sidecar = self._current_or_dir(path, full)
        if precondition is not None:
            precondition(current)
        with self._sidecars.journaled([path], [sidecar]):
            try:
                os.unlink(full)
            except FileNotFoundError:
                raise NotFound(f"no object at {path}", path) from None
        self._forget_expiry(path, current.expires_at, None)

    def _current_or_dir(self, path: str, full: str) -> Found:
        """The object at ``path``; Conflict for a non-empty directory, NotFound
        for nothing (an empty directory left behind is pruned)."""
        self._refuse_directory(path, full)
        fd, info, sidecar = self._open_described(path)
        os.close(fd)
        return info, sidecar

    def _refuse_directory(self, path: str, full: str) -> None:
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

    @typed_os_errors
    def _move(self, src: str, dst: str, precondition: Precondition | None) -> ObjectInfo:
        return self._clearing_expired(lambda: self._move_once(src, dst, precondition))

    def _move_once(self, src: str, dst: str, precondition: Precondition | None) -> ObjectInfo:
        full_src, full_dst = self._resolve(src), self._resolve(dst)
        with self._locks.held(src, dst):
            moved, sidecar = self._current_or_dir(src, full_src)
            check_alive(moved)
            target = self._found(dst)
            if precondition is not None:
                precondition(None if target is None else target[0])
            # The moved object gets a sidecar of its own (see objectmeta):
            # set on the source file before the rename, like any record.
            new = None if sidecar is None else self._sidecars.new_id()
            replaced = None if target is None else target[1]
            with self._sidecars.journaled([src, dst], [sidecar, new, replaced]):
                if new is not None:
                    doc = document(ObjectMeta.of(moved))
                    self._sidecars.write(new, doc)
                    self._reference(full_src, doc, new)
                    if self.fsync:
                        self._fsync_file(full_src)
                if moved.expires_at is not None:
                    self._expiry.add(dst, moved.expires_at)
                try:
                    self._tree.commit(full_src, full_dst, dst)
                except FileNotFoundError:
                    raise NotFound(f"no object at {src}", src) from None
            self._forget_expiry(src, moved.expires_at, None)
            if target is not None:
                self._forget_expiry(dst, target[0].expires_at, moved.expires_at)
        self._tree.prune(os.path.dirname(full_src))
        if moved.expires_at is not None:
            self._reaper.start()
        return dataclasses.replace(moved, path=dst, name=paths.basename(dst))

    @typed_os_errors
    def _copy(self, src: str, dst: str, precondition: Precondition | None,
              meta: ObjectMeta | None) -> ObjectInfo:
        full_src, full_dst = self._resolve(src), self._resolve(dst)
        self._refuse_directory(src, full_src)
        fd, info, _ = self._open_described(src)
        try:
            check_alive(info)
            if meta is None:
                meta = ObjectMeta.of(info).without_expiry()
            elif meta.content_type is None:
                meta = dataclasses.replace(meta, content_type=info.content_type)
            doc = document(meta)
            self._check_keepable(doc, dst)
            assert info.size is not None and info.etag is not None
            tmp_path, out = self._new_temp_file()
            try:
                try:
                    copy_bytes(fd, out, info.size)
                    self._attributes.set(out, ETAG_XATTR, info.etag)
                    inline = self._store_record(out, doc, dst)
                    if self.fsync:
                        os.fsync(out)
                    written = os.fstat(out)
                    self._clearing_expired(lambda: self._commit_new(
                        dst, full_dst, tmp_path, out, doc, inline, precondition))
                finally:
                    os.close(out)
            except BaseException:
                unlink_quietly(tmp_path)
                raise
        except ShortSource as exc:
            raise StorageFault(f"{src} changed while it was copied ({exc})", src) from None
        finally:
            os.close(fd)
        return self._written_info(dst, written, info.etag, meta)

    @typed_os_errors
    def _cat(self, path: str, chunks: list[str], max_size: int | None,
             precondition: Precondition | None, meta: ObjectMeta) -> ObjectInfo:
        sizes = {chunk: self._chunk_size(chunk) for chunk in dict.fromkeys(chunks)}
        missing = [chunk for chunk in chunks if sizes[chunk] is None]
        if missing:
            raise MissingChunks(missing)
        found = {chunk: size for chunk, size in sizes.items() if size is not None}
        check_total_size((found[chunk] for chunk in chunks), max_size, path)
        # The Upload counts again: a chunk may have grown since its lstat.
        # Its precondition is checked under the commit lock, like a PUT's.
        info = self._put(path, Upload(self._joined(chunks), max_size=max_size,
                                      precondition=precondition, meta=meta))
        for chunk in dict.fromkeys(chunks):
            if chunk != path:
                self._delete_quietly(chunk)
        return info

    def _joined(self, chunks: list[str]) -> Iterator[bytes]:
        """The chunks' bytes in order; each file is closed once read or on error."""
        for chunk in chunks:
            try:
                info, stream = self._open(chunk, 0, None)
            except NotFound:
                raise MissingChunks([chunk]) from None  # removed since it was counted
            with stream:
                if is_expired(info):
                    raise MissingChunks([chunk])
                yield from stream

    # -- expiry ----------------------------------------------------------------

    def _forget_expiry(self, path: str, old: int | None, new: int | None) -> None:
        """Drop the index entry of a version whose expiry ``old`` is gone from
        ``path`` (under its commit lock); an entry for the same expiry is
        the new version's too, and stays."""
        if old is not None and old != new:
            self._expiry.forget(path, old)

    def _clearing_expired(self, attempt: Callable[[], T]) -> T:
        """``attempt()``, and once more after a reaper pass when it met a
        Conflict that the pass cleared: an expired object, or a directory
        only expired objects kept, must not stand in a write's way until the
        next scheduled pass. Called outside every commit lock (the pass
        takes the locks of the objects it deletes)."""
        try:
            return attempt()
        except Conflict:
            if not self._reap_expired():
                raise
        return attempt()

    def _reap_expired(self) -> int:
        """One pass over the due part of the expiry index (see ``expiry``):
        its cost grows with the entries due (and the number of hours some
        object is still to expire in), never with objects that never expire."""
        reaped = failed = 0
        first_error: Exception | None = None
        for entry, _ in self._expiry.due(time.time()):
            if self._reaper.stopping.is_set():
                break  # closing: the next start finds what is left
            try:
                reaped += self._reap_entry(entry)
            except (StorageError, OSError) as exc:  # kept for the next pass
                failed += 1
                first_error = first_error or exc
        if failed:
            log.warning("could not reap %d expired object(s), left for the next pass: %s",
                        failed, first_error)
        return reaped

    def _reap_entry(self, entry: str) -> int:
        """Delete the object of one due entry if it still has that expiry;
        the entry goes either way. 1 if an object was deleted."""
        found = self._expiry.read(entry)
        if found is None:
            return 0  # taken by another pass
        expires_at, path = found
        try:
            paths.validate_path(path)
            full = self._resolve(path)
        except InvalidPath:
            self._expiry.drop(entry)
            return 0

        def still_due(current: ObjectInfo | None) -> None:
            if current is None or current.expires_at != expires_at:
                raise _NotDue(path)

        with self._locks.held(path):
            try:
                self._delete_locked(path, full, still_due)
                deleted = True
            except (_NotDue, NotFound, Conflict, InvalidPath):
                deleted = False  # a stale entry: overwritten, updated, moved or deleted
            self._expiry.drop(entry)
        if deleted:
            self._tree.prune(os.path.dirname(full))
        return int(deleted)

    # -- readiness and lifecycle ----------------------------------------------

    def _check_ready(self) -> None:
        readiness.check_ready(self.root, self._tmp_dir, f"{PRIVATE_DIR}/tmp")

    def close(self) -> None:
        self._reaper.stop()
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
        """The size of the object at ``path``, None if there is none (or it expired)."""
        full = self._resolve(path)
        try:
            st = os.lstat(full)
        except OSError as exc:
            if exc.errno in NO_OBJECT:
                return None
            raise
        if not is_served(st):
            return None
        record = read_record(self._attributes, full, path)
        if record is not None and record.expires_at is not None and record.expires_at <= time.time():
            return None
        return st.st_size

    def _found(self, path: str) -> Found | None:
        """The version at ``path`` and its sidecar, None if there is none."""
        try:
            fd, info, sidecar = self._open_described(path)
        except NotFound:
            return None
        os.close(fd)
        return info, sidecar

    def _current(self, path: str) -> ObjectInfo | None:
        found = self._found(path)
        return None if found is None else found[0]

    def _fsync_file(self, full: str) -> None:
        fd = os.open(full, READ_FLAGS)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _new_temp_file(self) -> tuple[str, int]:
        """A new temp file with exactly ``file_mode`` (the umask may only narrow it)."""
        return new_temp_file(self._tmp_dir, self.file_mode)

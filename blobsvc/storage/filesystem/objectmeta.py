"""What an object carries besides its bytes, on disk: one xattr, or a sidecar.

User metadata, stored headers, expiry and content type travel together in
one ``user.blobsvc.meta`` extended attribute of the object's file: compact
JSON, ``{"content_type", "expires_at", "headers", "metadata"}``. It is set
on the temp file before the rename that commits the object, so it changes
atomically with the bytes, and an update (POST) replaces all of it with one
``setxattr``. Objects written before it existed keep their content type in
``user.blobsvc.content_type``, still read when the record is missing.

ext4 keeps all the xattrs of an inode in about 4 KiB, and an object may
carry 8 KiB of user metadata. When the record does not fit (E2BIG, ENOSPC
or ERANGE from ``setxattr``), the whole document goes to a *sidecar*, an
immutable file ``.blobsvc/meta/<id>`` written and fsynced before the
commit, and the xattr holds a reference: ``{"content_type", "expires_at",
"sidecar": id}`` (content type and expiry stay in the xattr, so listings
and the reaper never open a sidecar). Every object has its own sidecar: a
copy writes a new one, and a move gives the object a new one (see below).

Sidecars are created and dropped under the commit lock of their object's
path, inside a *journal* entry: ``.blobsvc/journal/<pid>.<uuid>.json``
names the paths involved and every sidecar the operation may leave
unreferenced (the one it writes, the ones of the versions it replaces). It
is written before anything else and, when the operation ends, whatever it
did, *settled*: each sidecar no object at those paths references is
removed, then the entry. A crash (or a failing unlink) leaves the entry
behind; the next start settles the entries of dead processes the same way,
under the same locks, so a crash orphans no sidecar for longer than until
the next start, and never removes one that is still referenced. Moves give
the object a new sidecar so that a sidecar is only ever referenced from
the paths its journal entries name.

A reader that opened an object just before it was replaced or updated may
find its sidecar already gone; it starts over from the path
(:class:`SidecarGone`), and sees the new version whole.

A volume without user xattrs cannot keep any of this: plain writes work as
before (their content type is lost, as it always was there), writes that
carry metadata, stored headers or an expiry are refused
(:func:`no_user_xattrs`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

from blobsvc.storage.errors import StorageError, StorageFault
from blobsvc.storage.filesystem.files import Attributes, is_served
from blobsvc.storage.filesystem.locks import CommitLocks
from blobsvc.storage.filesystem.tempfiles import process_alive, unlink_quietly
from blobsvc.storage.filesystem.tree import fsync_directory
from blobsvc.storage.metadata import ObjectMeta

log = logging.getLogger(__package__)  # the driver's logger

META_XATTR = "user.blobsvc.meta"

#: What ``setxattr`` raises for a value this inode cannot hold.
TOO_BIG = frozenset({errno.E2BIG, errno.ENOSPC, errno.ERANGE})

#: A sidecar is a few tens of KiB at most; anything larger is not one of ours.
MAX_SIDECAR_BYTES = 1024 * 1024

#: What reading an xattr meets when a file has none, or is no longer there.
_ABSENT = (errno.ENODATA, errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


class SidecarGone(Exception):
    """The sidecar an open file referenced is gone: the file was replaced or
    updated since it was opened; read it again from its path."""


@dataclass(frozen=True)
class Record:
    """What an object's xattr says (``headers``/``metadata`` None: in the sidecar)."""

    content_type: str | None
    expires_at: int | None
    headers: dict[str, str] | None
    metadata: dict[str, str] | None
    sidecar: str | None


def document(meta: ObjectMeta) -> dict[str, Any]:
    """The record of ``meta`` (its content type already resolved)."""
    return {"content_type": meta.content_type, "expires_at": meta.expires_at,
            "headers": dict(meta.headers), "metadata": dict(meta.metadata)}


def carries_more_than_a_type(doc: Mapping[str, Any]) -> bool:
    """Whether a record holds what a volume without xattrs could not keep."""
    return bool(doc["headers"] or doc["metadata"]) or doc["expires_at"] is not None


def encode(doc: Mapping[str, Any]) -> bytes:
    # surrogatepass: a value is kept exactly as it was given, whatever it holds.
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass")


def decode(raw: bytes) -> dict[str, Any]:
    doc = json.loads(raw.decode("utf-8", "surrogatepass"))
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return doc


@functools.lru_cache(maxsize=256)  # records are at most ~4 KiB: 1 MiB at worst
def parse_record(raw: bytes) -> Record:
    """The record in ``raw``; ValueError when it is not one of ours.

    Kept per distinct record: every GET reads one, and most objects share a
    few (a content type, no metadata); checking one again as a write is
    checked cost a small GET a fifth of blobsvc's own time."""
    doc = decode(raw)
    sidecar = doc.get("sidecar")
    if sidecar is not None and not (isinstance(sidecar, str) and _is_id(sidecar)):
        raise ValueError("bad sidecar reference")
    checked = checked_meta(doc) if sidecar is None else checked_meta(
        {"content_type": doc.get("content_type"), "expires_at": doc.get("expires_at")})
    return Record(content_type=checked.content_type, expires_at=checked.expires_at,
                  headers=None if sidecar else dict(checked.headers),
                  metadata=None if sidecar else dict(checked.metadata), sidecar=sidecar)


def checked_meta(doc: Mapping[str, Any]) -> ObjectMeta:
    """``doc`` as ObjectMeta, checked as a write is (ValueError if it is not)."""
    content_type = doc.get("content_type")
    if content_type is not None and not isinstance(content_type, str):
        raise ValueError("bad content type")
    try:
        return ObjectMeta.from_json(doc, content_type)
    except (StorageError, AttributeError, TypeError) as exc:
        raise ValueError(str(exc)) from None


def read_record(attributes: Attributes, handle: int | str, where: str) -> Record | None:
    """The record of the file ``handle``; None when it has none (or one that
    is not ours, which is logged and ignored)."""
    raw = attributes.get_bytes(handle, META_XATTR)
    if raw is None:
        return None
    try:
        return parse_record(raw)
    except ValueError as exc:
        log.warning("ignoring the unreadable metadata record of %s (%s)", where, exc)
        return None


def no_user_xattrs(path: str) -> StorageFault:
    """The refusal of a write that needs xattrs on a volume without them."""
    return StorageFault(
        f"the storage volume has no user extended attributes, so {path} cannot keep "
        "user metadata, stored headers or an expiry (plain writes still work)", path)


def _is_id(name: str) -> bool:
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)


class Sidecars:
    """The sidecar files and the journal that keeps them from being orphaned."""

    def __init__(self, root: str, private_dir: str, attributes: Attributes,
                 locks: CommitLocks, fsync: bool) -> None:
        self.root = root
        self.dir = os.path.join(private_dir, "meta")
        self.journal_dir = os.path.join(private_dir, "journal")
        self._attributes = attributes
        self._locks = locks
        self._fsync = fsync

    # -- sidecars ------------------------------------------------------------

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def write(self, sidecar: str, doc: Mapping[str, Any]) -> None:
        """Write the sidecar ``sidecar`` (durably with fsync on), before any
        file references it."""
        name = os.path.join(self.dir, sidecar)
        _write_new(name, encode(doc), self._fsync)
        if self._fsync:
            fsync_directory(self.dir)

    def read(self, sidecar: str, where: str) -> ObjectMeta:
        """What ``sidecar`` holds; SidecarGone when it is not there."""
        try:
            fd = os.open(os.path.join(self.dir, sidecar), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise SidecarGone(sidecar) from None
        try:
            raw = os.read(fd, MAX_SIDECAR_BYTES + 1)
        finally:
            os.close(fd)
        try:
            if len(raw) > MAX_SIDECAR_BYTES:
                raise ValueError("too large")
            return checked_meta(decode(raw))
        except ValueError as exc:
            log.warning("ignoring the unreadable metadata sidecar of %s (%s)", where, exc)
            return ObjectMeta()

    def reference_at(self, path: str) -> str | None:
        """The sidecar the object at ``path`` references, if any. Only an
        absent file or record counts as none: any other error raises, so a
        sidecar is never taken for unreferenced when it cannot be told."""
        full = os.path.join(self.root, path)
        try:
            if not is_served(os.lstat(full)):
                return None
            raw = os.getxattr(full, META_XATTR, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in _ABSENT or exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                return None
            raise
        try:
            return parse_record(raw).sidecar
        except ValueError:
            return None

    # -- the journal -----------------------------------------------------------

    @contextlib.contextmanager
    def journaled(self, paths: Iterable[str], sidecars: Iterable[str | None]) -> Iterator[None]:
        """Run the block, then drop each of ``sidecars`` that no object at
        ``paths`` references; call with the commit locks of ``paths`` held.
        Nothing is written when there is no sidecar to look after."""
        paths, wanted = list(paths), [s for s in dict.fromkeys(sidecars) if s]
        if not wanted:
            yield
            return
        entry = self._begin(paths, wanted)
        try:
            yield
        finally:
            try:
                self._settle(paths, wanted)
                os.unlink(entry)
            except OSError as exc:  # the next start settles it
                log.warning("could not clean up metadata sidecars of %s (%s); they are "
                            "looked at again at the next start", ", ".join(paths),
                            errno.errorcode.get(exc.errno or 0, exc))

    def _begin(self, paths: list[str], sidecars: list[str]) -> str:
        entry = os.path.join(self.journal_dir, f"{os.getpid()}.{uuid.uuid4().hex}.json")
        _write_new(entry, json.dumps({"paths": paths, "sidecars": sidecars}).encode(), self._fsync)
        if self._fsync:
            fsync_directory(self.journal_dir)
        return entry

    def _settle(self, paths: list[str], sidecars: list[str]) -> None:
        referenced = {self.reference_at(path) for path in paths}
        dropped = False
        for sidecar in sidecars:
            if sidecar not in referenced:
                unlink_quietly(os.path.join(self.dir, sidecar))
                dropped = True
        if dropped and self._fsync:
            fsync_directory(self.dir)

    def sweep(self) -> int:
        """Settle the journal entries of processes that died (this process's
        own PID included: it has just started); how many were settled."""
        settled = 0
        for name in os.listdir(self.journal_dir):
            pid = name.split(".", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and process_alive(int(pid)):
                continue
            entry = os.path.join(self.journal_dir, name)
            try:
                with open(entry, "rb") as handle:
                    doc = json.loads(handle.read())
                paths = [str(path) for path in doc["paths"]]
                sidecars = [s for s in doc["sidecars"] if isinstance(s, str) and _is_id(s)]
            except (ValueError, KeyError, TypeError):
                log.warning("removing an unreadable journal entry %s", name)
                unlink_quietly(entry)
                continue
            except FileNotFoundError:
                continue  # settled by another process starting at the same time
            try:
                with self._locks.held(*paths):
                    self._settle(paths, sidecars)
                    unlink_quietly(entry)
            except OSError as exc:  # left for the next start
                log.warning("could not settle the journal entry %s (%s)", name,
                            errno.errorcode.get(exc.errno or 0, exc))
                continue
            settled += 1
        if settled:
            log.info("settled %d metadata journal entr%s left by a crash", settled,
                     "y" if settled == 1 else "ies")
        return settled


def _write_new(name: str, data: bytes, fsync: bool) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_quietly(name)
        raise
    os.close(fd)


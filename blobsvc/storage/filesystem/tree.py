"""The directories below the root: made on commit, pruned when empty.

A "directory" exists only while an object lives below it, so a commit
creates the missing parents (with exactly ``dir_mode``) and a delete or
move removes the levels it emptied. The two race: a delete may prune a
parent another writer has just created; :meth:`Tree.commit` retries that,
and tells it apart from a parent that really is an object (a Conflict).
"""

from __future__ import annotations

import itertools
import os
import random
import stat
import time

from blobsvc.storage.errors import Conflict
from blobsvc.storage.filesystem.errors import os_error

#: How often a commit retries when a concurrent delete pruned the parent
#: directory it had just created; each retry waits a little, at random, so
#: writers and pruners cannot stay in lockstep.
PRUNE_RACE_RETRIES = 200


class Tree:
    def __init__(self, root: str, dir_mode: int, fsync: bool) -> None:
        self.root = root
        self.dir_mode = dir_mode
        self.fsync = fsync

    def commit(self, source: str, target: str, path: str) -> None:
        """Rename ``source`` over ``target``, creating parent directories.

        A concurrent delete may prune a parent directory between its creation
        and the rename (seen as ENOENT, or as EEXIST from makedirs); that is
        retried. A parent that really is an object is a Conflict.
        """
        parent = os.path.dirname(target)
        for attempt in itertools.count():
            try:
                self.make_dirs(parent)
                os.rename(source, target)
                break
            except IsADirectoryError:
                raise Conflict(f"{path} is a directory", path) from None
            except (FileExistsError, NotADirectoryError, FileNotFoundError):
                if self._parent_is_object(parent):
                    raise Conflict(f"a parent of {path} is an object", path) from None
                if attempt >= PRUNE_RACE_RETRIES or not os.path.exists(source):
                    raise
                time.sleep(random.random() * min(0.0001 * attempt, 0.005))
            except OSError as exc:
                raise os_error(exc, path) from None
        if self.fsync:
            fsync_directory(parent)

    def make_dirs(self, directory: str) -> None:
        """``os.makedirs(exist_ok=True)`` below the root, new levels with ``dir_mode``.

        Raises what makedirs raises in the races ``commit`` retries: a level
        pruned meanwhile (ENOENT), a level that is a file (EEXIST).
        """
        missing = []
        current = directory
        while current.startswith(self.root + os.sep) and not os.path.isdir(current):
            missing.append(current)
            current = os.path.dirname(current)
        for level in reversed(missing):
            make_dir(level, self.dir_mode)

    def prune(self, directory: str) -> None:
        """Remove empty directories from ``directory`` up to the root."""
        while directory != self.root and directory.startswith(self.root + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)

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


def make_dir(directory: str, mode: int) -> None:
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


def fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

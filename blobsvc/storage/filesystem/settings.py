"""The filesystem driver's settings, and how its permission modes are read.

Declared once here, so the config loader, ``check-config`` and the driver
agree on the keys, their defaults and the values refused; a refused mode is
a one-line config error before start-up, never a crash once serving.

Objects are created with ``file_mode`` (default 0600) and directories with
``dir_mode`` (default 0700), exactly, whatever the process umask; operators
who want a group to read the files set e.g. 0640 and 0750.

An expired object is absent at once; ``reap_interval`` says how soon its
space comes back: a pass of the reaper every that many seconds (default 60),
so the space of an object is reclaimed within ``reap_interval`` seconds of
its expiry. 0 turns the reaper thread off (``reap_expired`` still works).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from blobsvc.storage.settings import DriverSettings

DEFAULT_FILE_MODE = 0o600
DEFAULT_DIR_MODE = 0o700
DEFAULT_REAP_INTERVAL = 60.0
#: What the service needs on its own files and directories.
FILE_MODE_NEEDED = 0o600
DIR_MODE_NEEDED = 0o700


@dataclass(frozen=True)
class FilesystemSettings(DriverSettings):
    """``storage.*`` of the filesystem driver."""

    #: Where the objects live; created if missing.
    root: str
    #: fsync each object and its directory before a write is acknowledged.
    fsync: bool = True
    #: Octal modes (an int, or a string read as octal such as ``"0640"``).
    file_mode: int | str = DEFAULT_FILE_MODE
    dir_mode: int | str = DEFAULT_DIR_MODE
    #: Seconds between passes of the reaper of expired objects; 0: no reaper thread.
    reap_interval: float = DEFAULT_REAP_INTERVAL

    def validate(self) -> None:
        self.file_permissions  # noqa: B018 - each raises ValueError for a bad mode
        self.dir_permissions  # noqa: B018
        if not 0 <= self.reap_interval < math.inf:
            raise ValueError("storage.reap_interval must be a number of seconds, 0 or more "
                             f"(0: no reaper thread), not {self.reap_interval!r}")

    @property
    def file_permissions(self) -> int:
        """``file_mode`` as a number."""
        return parse_mode(self.file_mode, "file_mode", FILE_MODE_NEEDED)

    @property
    def dir_permissions(self) -> int:
        """``dir_mode`` as a number."""
        return parse_mode(self.dir_mode, "dir_mode", DIR_MODE_NEEDED)


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

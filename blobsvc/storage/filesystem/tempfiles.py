"""Temp files, where every write starts, and the sweep of those a crash left.

A write goes to a fresh temp file in the private area (on the same
filesystem as its target, so the final rename is atomic). Temp names start
with the writer's PID, so a restart can tell a dead process's leftovers
from the files other live workers are writing.
"""

from __future__ import annotations

import logging
import os
import uuid

log = logging.getLogger(__package__)  # the driver's logger

TEMP_SUFFIX = ".tmp"


def temp_name(tmp_dir: str) -> str:
    """A new name in the temp area; the PID prefix lets a restart sweep it."""
    return os.path.join(tmp_dir, f"{os.getpid()}.{uuid.uuid4().hex}{TEMP_SUFFIX}")


def new_temp_file(tmp_dir: str, mode: int) -> tuple[str, int]:
    """A new temp file with exactly ``mode`` (the umask may only narrow it)."""
    tmp_path = temp_name(tmp_dir)
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, mode)
    except OSError:
        os.close(fd)
        unlink_quietly(tmp_path)
        raise
    return tmp_path, fd


def unlink_quietly(path: str) -> None:
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
        if pid.isdigit() and process_alive(int(pid)) and int(pid) != os.getpid():
            continue
        unlink_quietly(entry.path)
        removed += 1
    if removed:
        log.info("removed %d abandoned temporary file(s) from %s", removed, tmp_dir)
    return removed


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Whether the root can take a write now: what ``/readyz`` asks of the volume.

A root that exists but is read-only, full, or not writable by the service
would answer reads and fail every write; the probe finds each of these
before a client does. Reasons name no disk path, since anyone may ask.
"""

from __future__ import annotations

import os
import stat

from blobsvc.storage.errors import BackendUnavailable
from blobsvc.storage.filesystem.errors import not_ready
from blobsvc.storage.filesystem.tempfiles import temp_name


def check_ready(root: str, tmp_dir: str, tmp_area: str) -> None:
    """Ready only if a write could succeed now: ``root`` is a directory the
    service can create files in (in ``tmp_dir``, named ``tmp_area`` in
    messages), on a volume with free blocks."""
    try:
        if not stat.S_ISDIR(os.stat(root).st_mode):
            raise BackendUnavailable("the storage root is not a directory")
        volume = os.statvfs(root)
    except FileNotFoundError:
        raise BackendUnavailable("the storage root does not exist") from None
    except OSError as exc:
        raise not_ready(exc, "the storage root cannot be read") from None
    # Blocks reserved for root are usable only when running as root.
    free = volume.f_bfree if os.geteuid() == 0 else volume.f_bavail
    if free == 0:
        raise BackendUnavailable("the storage volume is full")
    _probe_write(tmp_dir, tmp_area)


def _probe_write(tmp_dir: str, tmp_area: str) -> None:
    """Create and remove a small file where every write starts."""
    probe = temp_name(tmp_dir)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, b"ready")
        finally:
            os.close(fd)
            os.unlink(probe)
    except FileNotFoundError:
        raise BackendUnavailable(
            f"the service's area {tmp_area} is missing from the storage root") from None
    except OSError as exc:
        raise not_ready(exc, "the service cannot write to its storage root") from None

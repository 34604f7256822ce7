"""OSError to typed storage error: whose fault it is, said by the status.

Every OSError of an operation becomes the typed error its errno calls for:
a full disk 507, a read-only or failing volume 503, a name too long for the
volume 400, a file the service may not read or write 500
``storage_permission_denied``, anything else 500 ``storage_error`` naming
the errno. Messages name the object, never a disk path: the client reads
them. Kept apart from the driver so the mapping reads as one table.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
from typing import Callable, TypeVar

from blobsvc.storage.errors import (
    BackendUnavailable,
    InsufficientStorage,
    InvalidPath,
    StorageError,
    StorageFault,
    StoragePermissionDenied,
)

log = logging.getLogger(__package__)  # the driver's logger

FULL_DISK = (errno.ENOSPC, errno.EDQUOT)
DENIED = (errno.EACCES, errno.EPERM)
#: The volume cannot serve now (a failing disk, a read-only remount): 503.
UNAVAILABLE = {errno.EIO: "has I/O errors", errno.EROFS: "is read-only"}
#: What a name that names no object meets: absent, below a file, behind a link loop.
NO_OBJECT = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)
#: What opening a listed entry meets when it is not an object that can be served
#: (gone, a socket or device, swapped for a link): it is skipped.
NOT_SERVED = (*NO_OBJECT, errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP)

Hook = TypeVar("Hook", bound=Callable[..., object])


def typed_os_errors(method: Hook) -> Hook:
    """An OSError anywhere in an operation becomes its typed storage error, so no
    errno reaches the HTTP layer as a bare exception (a 500 with a traceback)."""

    @functools.wraps(method)
    def wrapper(self: object, path: str, *args: object) -> object:
        try:
            return method(self, path, *args)
        except OSError as exc:
            raise os_error(exc, path) from None

    return wrapper  # type: ignore[return-value]


def os_error(exc: OSError, path: str | None) -> StorageError:
    """The typed error of ``exc``: its status says whose fault it is, its
    message names the object (never a disk path: the client reads it)."""
    where = path if path else "its storage"
    name = errno_name(exc)
    if exc.errno in FULL_DISK:
        return InsufficientStorage(f"no space left on the storage volume for {where}", path)
    if exc.errno in DENIED:
        return permission_denied(path)
    if exc.errno == errno.ELOOP:  # a link the path check could not resolve
        return InvalidPath(f"{path} goes through a symbolic link", path)
    if exc.errno == errno.ENAMETOOLONG:
        # Valid for the API, too long for this volume: the operator should know.
        log.warning("%s is a name the storage filesystem cannot hold (%s)", where, name)
        return InvalidPath(f"{where} is a name the storage filesystem cannot hold", path)
    if exc.errno in UNAVAILABLE:
        return BackendUnavailable(
            f"the storage volume {UNAVAILABLE[exc.errno]} ({name}) at {where}", path)
    return StorageFault(f"storage error {name} ({os.strerror(exc.errno or 0)}) at {where}", path)


def permission_denied(path: str | None) -> StoragePermissionDenied:
    """No disk path in the message: the client sees it."""
    where = path if path else "its storage"
    return StoragePermissionDenied(
        f"the service is not allowed to access {where} on its storage volume "
        "(file ownership or modes)", path)


def not_ready(exc: OSError, otherwise: str) -> BackendUnavailable:
    """Why the volume cannot take writes, in words for a readiness probe."""
    name = errno_name(exc)
    if exc.errno in UNAVAILABLE:
        return BackendUnavailable(f"the storage volume {UNAVAILABLE[exc.errno]} ({name})")
    if exc.errno in FULL_DISK:
        return BackendUnavailable(f"the storage volume is full ({name})")
    if exc.errno in DENIED:
        return BackendUnavailable(f"the service may not access its storage root ({name})")
    return BackendUnavailable(f"{otherwise} ({name})")


def errno_name(exc: OSError) -> str:
    """``EIO`` rather than 5: what operators search for."""
    return errno.errorcode.get(exc.errno or 0, f"errno {exc.errno}")

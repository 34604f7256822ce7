"""The service's errors as the built-in exceptions fsspec callers catch.

pandas, pyarrow and fsspec's own helpers (``exists``, ``copy`` with
``on_error="ignore"``...) decide by the built-in class: a missing object
must be ``FileNotFoundError``, a create-only write that lost its race
``FileExistsError``, a refused credential ``PermissionError``. The
service's exception stays attached as ``__cause__``, code and request id
included.
"""

from __future__ import annotations

import contextlib
import errno
from typing import Iterator

from blobsvc.client.errors import (
    BackendUnavailable,
    BlobsvcError,
    Conflict,
    Forbidden,
    InsufficientStorage,
    InvalidPath,
    NotFound,
    PreconditionFailed,
    RangeNotSatisfiable,
    TooLarge,
    TransportError,
    Unauthorized,
)

#: Service error class -> (built-in class, errno). Checked in order, so a
#: subclass must come before its base; anything else is ``EIO``.
_MAPPING: tuple[tuple[type[BlobsvcError], type[OSError], int], ...] = (
    (NotFound, FileNotFoundError, errno.ENOENT),
    (PreconditionFailed, FileExistsError, errno.EEXIST),
    (Conflict, FileExistsError, errno.EEXIST),
    (Unauthorized, PermissionError, errno.EACCES),
    (Forbidden, PermissionError, errno.EACCES),
    (InvalidPath, OSError, errno.EINVAL),
    (RangeNotSatisfiable, OSError, errno.EINVAL),
    (TooLarge, OSError, errno.EFBIG),
    (InsufficientStorage, OSError, errno.ENOSPC),
    (TransportError, ConnectionError, errno.ECONNABORTED),
    (BackendUnavailable, ConnectionError, errno.EAGAIN),
)


def os_error(error: BlobsvcError, path: str) -> OSError:
    """The built-in exception standing for ``error`` on ``path``."""
    for service_class, builtin, number in _MAPPING:
        if isinstance(error, service_class):
            return builtin(number, str(error), path)
    return OSError(errno.EIO, str(error), path)


@contextlib.contextmanager
def translated(path: str) -> Iterator[None]:
    """Raise the service's errors inside as built-in ones about ``path``."""
    try:
        yield
    except BlobsvcError as error:
        raise os_error(error, path) from error

"""Errors every driver raises, so the HTTP layer maps them in one place.

Each error carries a stable ``code`` (the JSON error code of the API) and the
path it concerns; drivers never raise backend-specific exceptions upward.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class: an error the service answers with a JSON error body."""

    code = "internal_error"

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class NotFound(StorageError):
    code = "not_found"


class InvalidPath(StorageError):
    code = "invalid_path"


class Conflict(StorageError):
    """The path is a directory where an object is expected, or the reverse."""

    code = "conflict"


class BackendUnavailable(StorageError):
    """The backend did not answer (down, too slow, refusing connections)."""

    code = "backend_unavailable"


class InsufficientStorage(StorageError):
    """The backend is full (ENOSPC, EDQUOT, Swift's 507)."""

    code = "insufficient_storage"


class ChecksumMismatch(StorageError):
    code = "checksum_mismatch"


class PreconditionFailed(StorageError):
    code = "precondition_failed"


class TooLarge(StorageError):
    code = "too_large"


class IncompleteBody(StorageError):
    """The client sent fewer bytes than it announced, or vanished."""

    code = "incomplete_body"


class InvalidMetadata(StorageError):
    """A metadata name or value, a stored header or an expiry that cannot be stored."""

    code = "invalid_metadata"


class MetadataTooLarge(StorageError):
    """More user metadata than one object may carry."""

    code = "metadata_too_large"


class MissingChunks(NotFound):
    """``cat`` was given chunks that do not exist; names them all."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__("missing chunks: " + ", ".join(missing))
        self.missing = missing


class StoragePermissionDenied(StorageError):
    """The service itself may not read or write a file of its storage.

    A server-side fault (ownership or modes on the volume), so it answers
    500 with this code: the client's credentials are not the problem, and
    403 is kept for what the client may not do.
    """

    code = "storage_permission_denied"


class StorageFault(StorageError):
    """The backend failed in a way no other error names (an errno such as
    EMFILE or ESTALE): a server-side fault, told apart from a bug
    (``internal_error``) so operators look at the volume, not the code.

    The driver base also raises it for any other exception a driver lets
    escape (a driver bug, logged with its traceback), naming the driver.
    """

    code = "storage_error"

    def __init__(self, message: str, path: str | None = None, driver: str | None = None) -> None:
        super().__init__(message, path)
        self.driver = driver

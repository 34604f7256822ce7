"""Exit statuses and the one line printed for a failure.

A script tells "it is not there" (or "it changed") from "something is
broken" by the status alone, so the two never share one: 1 for an absent
object or a failed precondition, 2 for a command line the service or the
client cannot make sense of, 3 for every other refusal or failure.
"""

from __future__ import annotations

from blobsvc.client.errors import (
    BlobsvcError,
    InvalidPath,
    NotFound,
    PreconditionFailed,
    TransportError,
)

EXIT_OK = 0
#: No such object or directory, or an If-* condition did not hold.
EXIT_NOT_FOUND = 1
#: The command line is wrong (argparse uses 2 as well); a path the service
#: refuses as invalid is the command line's fault too.
EXIT_USAGE = 2
#: Any other error of the service, of the connection, or of local files.
EXIT_FAILURE = 3
#: 128 + SIGINT, as a shell reports a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130
#: 128 + SIGPIPE, as a shell reports a writer whose reader went away.
EXIT_BROKEN_PIPE = 141


class UsageError(Exception):
    """A command line that cannot work, worded for the one line printed."""


class LocalNotFound(Exception):
    """A local file or directory named on the command line does not exist."""


def exit_status(error: BlobsvcError) -> int:
    if isinstance(error, (NotFound, PreconditionFailed)):
        return EXIT_NOT_FOUND
    if isinstance(error, InvalidPath):
        return EXIT_USAGE
    return EXIT_FAILURE


def describe(error: BlobsvcError) -> str:
    """The service's code and message and the request's id, on one line."""
    message = _root_cause(error) if isinstance(error, TransportError) else error.message
    where = f" (request {error.request_id})" if error.request_id else ""
    return f"{error.code}: {message}{where}".replace("\n", " ")


def _root_cause(error: BaseException) -> str:
    """A transport error's first words (method and URL) with the OS's reason,
    not urllib3's nested representation of the pool that failed."""
    what = str(error.args[0] if error.args else error).split(": ", 1)[0]
    cause: BaseException | None = error
    seen = 0
    while cause is not None and seen < 10:  # chains are short; bounded anyway
        reason = getattr(cause, "reason", None)
        if isinstance(reason, BaseException):
            cause = reason
        elif hasattr(cause, "partial") and hasattr(cause, "expected"):  # IncompleteRead
            partial = cause.partial if isinstance(cause.partial, int) else len(cause.partial)
            return f"{what}: the connection broke after {partial} bytes, {cause.expected} more expected"
        elif isinstance(cause, OSError) and cause.strerror:
            return f"{what}: {cause.strerror}"
        else:
            cause = cause.__cause__ or cause.__context__
        seen += 1
    return str(error.args[0] if error.args else error)

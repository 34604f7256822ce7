"""The one place object paths are checked; every driver goes through it.

A path is 1..N segments joined by ``/``: each segment 1-255 bytes of UTF-8,
no control characters (NUL included) and no backslash (which some clients
treat as a separator), not ``.`` or ``..``; the whole path at
most 1024 bytes; no leading or trailing ``/``, no empty segment. The first
segment ``.blobsvc`` is reserved for the service's own data (temporary
files, large-object segments), so no client can read or list it.
"""

from __future__ import annotations

import re

from blobsvc.storage.errors import InvalidPath

MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255
RESERVED_PREFIX = ".blobsvc"

_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")


def validate_path(path: object) -> str:
    """Return ``path`` unchanged if it names an object, else raise."""
    if not isinstance(path, str):
        raise InvalidPath("path must be a string", None)
    if path == "":
        raise InvalidPath("empty path", path)
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPath("path is not valid UTF-8", repr(path)) from None
    if len(encoded) > MAX_PATH_BYTES:
        raise InvalidPath(f"path longer than {MAX_PATH_BYTES} bytes", path)
    if _FORBIDDEN.search(path):
        raise InvalidPath(
            "path contains a control character or backslash", repr(path)
        )
    if path.startswith("/"):
        raise InvalidPath("path must not start with '/'", path)
    segments = path.split("/")
    for segment in segments:
        _check_segment(segment, path)
    if segments[0] == RESERVED_PREFIX:
        raise InvalidPath(f"'{RESERVED_PREFIX}' is reserved", path)
    return path


def validate_dir(path: object) -> str:
    """Return a directory prefix without its trailing slash (``""`` = root)."""
    if path == "" or path == "/":
        return ""
    if isinstance(path, str) and path.endswith("/"):
        path = path[:-1]
    return validate_path(path)


def _check_segment(segment: str, path: str) -> None:
    if segment == "":
        raise InvalidPath("empty path segment", path)
    if segment in (".", ".."):
        raise InvalidPath(f"'{segment}' is not allowed as a path segment", path)
    if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
        raise InvalidPath(
            f"path segment longer than {MAX_SEGMENT_BYTES} bytes", path
        )


def join(directory: str, name: str) -> str:
    """The path of ``name`` inside ``directory`` (``""`` = root)."""
    return f"{directory}/{name}" if directory else name


def basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]

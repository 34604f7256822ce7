"""The one place object paths are checked; every driver goes through it.

A path is 1..N segments joined by ``/``: each segment 1-255 bytes of UTF-8,
no control characters (NUL included) and no backslash (which some clients
treat as a separator), not ``.`` or ``..``; the whole path at
most 1024 bytes; no leading or trailing ``/``, no empty segment. The first
segment ``.blobsvc`` is reserved for the service's own data (temporary
files, large-object segments), so no client can read or list it.

Unicode: a path must be in NFC, so that one name has one spelling (``é``
precomposed or as ``e`` plus a combining accent would otherwise be two
objects that look the same). Non-NFC paths are refused rather than
normalised, so the name a client sends is always the name it gets back in
listings. Bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E,
U+200F, U+061C) are refused: they make a name display differently from
what it is (``invoice<U+202E>fdp.exe`` shows as ``invoiceexe.pdf``).
Right-to-left letters themselves are fine.
"""

from __future__ import annotations

import re
import unicodedata

from blobsvc.storage.errors import InvalidPath

MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255
RESERVED_PREFIX = ".blobsvc"

_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


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
    _check_unicode(path)
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


def _check_unicode(path: str) -> None:
    """One spelling per name, displayed as it is (see the module docstring)."""
    if _BIDI_CONTROLS.search(path):
        raise InvalidPath("path contains a bidirectional control character", repr(path))
    if not unicodedata.is_normalized("NFC", path):
        raise InvalidPath("path is not in Unicode NFC; send its NFC form", path)


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

"""Bucket names and keys, and the native path a bucket and key name.

Bucket ``b``, key ``k`` is the native object ``b/k``. Bucket names follow
S3's rules for new buckets (3-63 characters of lowercase letters, digits,
``-`` and ``.``, a letter or digit at each end, no ``..``, not an IP
address), which also keeps them valid path segments; the native API's own
first segments (``v1``, ``healthz``...) are refused, so no bucket can hide
an endpoint. A key must make a valid native path: keys with an empty
segment (``a//b``, a trailing ``/``), a ``.`` or ``..`` segment, a control
character or a backslash, or too long a path cannot be stored, and a write
is refused before its body is read.
"""

from __future__ import annotations

import ipaddress
import re

from blobsvc.s3.errors import S3Error
from blobsvc.storage import paths
from blobsvc.storage.errors import InvalidPath

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

#: First path segments the native API answers on the same port.
NATIVE_NAMES = frozenset({"v1", "healthz", "readyz", "metrics", "openapi.json"})

#: S3's longest key, in bytes of UTF-8.
MAX_KEY_BYTES = 1024


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a bucket, or None when it can."""
    if name in NATIVE_NAMES:
        return f"{name!r} is a path of the native API on this port"
    if not _BUCKET.match(name):
        return ("a bucket name is 3 to 63 lowercase letters, digits, '-' and '.', "
                "beginning and ending with a letter or digit")
    if ".." in name:
        return "a bucket name may not hold '..'"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return None
    return "a bucket name may not look like an IP address"


def check_bucket_name(name: str) -> str:
    problem = bucket_name_problem(name)
    if problem is not None:
        raise S3Error("InvalidBucketName", f"invalid bucket name: {problem}")
    return name


def object_path(bucket: str, key: str) -> str:
    """The native path of ``key`` in ``bucket``; KeyTooLongError or
    InvalidArgument when no native path can hold it."""
    if key == "":
        raise S3Error("InvalidArgument", "an object key may not be empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", f"an object key is at most {MAX_KEY_BYTES} bytes")
    path = paths.join(bucket, key)
    if len(path.encode("utf-8", "surrogatepass")) > paths.MAX_PATH_BYTES:
        room = paths.MAX_PATH_BYTES - len(bucket) - 1
        raise S3Error("KeyTooLongError", f"a key in bucket {bucket} is at most {room} bytes "
                                         f"(bucket, '/' and key make a path of at most "
                                         f"{paths.MAX_PATH_BYTES} bytes)")
    try:
        return paths.validate_path(path)
    except InvalidPath as exc:
        raise S3Error("InvalidArgument", f"this key cannot be stored: {exc.message}") from None


def can_be_stored(bucket: str, key: str) -> bool:
    try:
        object_path(bucket, key)
    except S3Error:
        return False
    return True

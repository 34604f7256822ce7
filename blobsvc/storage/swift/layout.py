"""Where the driver keeps its private objects, and how it speaks SLO.

Why one place: segment and tombstone names are written by uploads, read by
the sweeper and recognised by listings; the three must agree. Everything
private lives under the reserved prefix, which listings never show:

* ``.blobsvc/segments/<object path>/<upload id>/<index>``: one upload's segments;
* ``.blobsvc/replaced/<object path>/<id>``: a tombstone, a copy of a replaced
  manifest that owns its segments until the grace period is over;
* ``.blobsvc/pending/<upload id>``: a note of a write whose segments are
  not yet listed by a committed manifest (see :mod:`.journal`);
* ``.blobsvc/lent/<upload id>``: the names a move or cat gave an upload's
  segments (see :mod:`.lending`).

A digest replaces the path when a name would exceed Swift's 1024 bytes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from blobsvc.storage import paths

#: Swift's default ``max_object_name_length``.
MAX_OBJECT_NAME_BYTES = 1024

SEGMENTS_DIR = f"{paths.RESERVED_PREFIX}/segments"
REPLACED_DIR = f"{paths.RESERVED_PREFIX}/replaced"
PENDING_DIR = f"{paths.RESERVED_PREFIX}/pending"
LENT_DIR = f"{paths.RESERVED_PREFIX}/lent"

#: Bytes a private name adds after its prefix: "<upload id>/<index>".
_UNIQUE_SUFFIX_BYTES = 32 + 1 + 8

#: Query strings of Static Large Object requests: write a manifest, read it
#: (not the bytes it lists), delete it with the segments it lists.
SLO_PUT = "multipart-manifest=put"
SLO_GET = "multipart-manifest=get"
SLO_DELETE = "multipart-manifest=delete"

#: One entry of a manifest, in the form a manifest PUT takes:
#: ``{"path": "/<container>/<name>", "etag": ..., "size_bytes": ...}``.
ManifestEntry = dict[str, Any]


def private_prefix(directory: str, path: str) -> str:
    """``<directory>/<path>/``, or a digest of the path if the name would be too long."""
    prefix = f"{directory}/{path}/"
    if len(prefix.encode("utf-8")) + _UNIQUE_SUFFIX_BYTES > MAX_OBJECT_NAME_BYTES:
        prefix = f"{directory}/{hashlib.sha256(path.encode('utf-8')).hexdigest()}/"
    return prefix


def upload_id(prefix: str) -> str:
    """The upload id a segment prefix (``.../<upload id>/``) ends in: what
    an upload's note and lending record are named by."""
    return prefix.rstrip("/").rsplit("/", 1)[-1]


def upload_prefix(segment: str) -> str:
    """The upload prefix (``.../<upload id>/``) a segment's name lies under."""
    return segment.rsplit("/", 1)[0] + "/"


def slo_etag(entries: list[ManifestEntry]) -> str:
    """The ETag Swift gives a manifest: the MD5 of its entries' ETags."""
    return hashlib.md5("".join(entry["etag"] for entry in entries).encode("ascii")).hexdigest()

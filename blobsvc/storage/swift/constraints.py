"""The cluster's limits on metadata, read from Swift's /info, checked before any byte goes.

Why: Swift's default constraints are smaller than what blobsvc accepts
(one value at most ``max_meta_value_length`` = 256 bytes, all of them
``max_meta_overall_size`` = 4096, at most ``max_meta_count`` = 90 names;
blobsvc takes 8 KiB in all). Swift would refuse such a write with a 400,
but only once the request reaches it: for a large object, after every
segment was uploaded. So the driver reads the cluster's constraints once
(``GET /info``; Swift's defaults when a cluster does not expose it) and
refuses metadata beyond them before the first request, with a message
naming the Swift limit an operator would raise. Sizes are counted as Swift
counts them: the bytes of each name (after ``X-Object-Meta-``) and value
as sent, escapes included (see :mod:`.objectmeta`).

To store everything blobsvc accepts, a cluster's ``swift.conf`` needs, in
``[swift-constraints]``: ``max_meta_value_length`` and
``max_meta_overall_size`` of 8192 or more (plus two bytes per ``_`` in a
name and per ``%`` in a value), ``max_meta_count`` of at least the
number of names clients use, ``max_meta_name_length`` of 128 (384 when
names hold ``_``), and ``max_header_size`` of 16384 (a header line holds
name and value). Swift keeps metadata in extended attributes of each
object file: its filesystem must hold them too (XFS does; ext4 holds at
most one block per file, so larger metadata fails there with a 507).
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from swiftclient.client import ClientException, Connection

from blobsvc.storage.contract import ObjectMeta
from blobsvc.storage.errors import MetadataTooLarge
from blobsvc.storage.swift.errors import log, swift_errors
from blobsvc.storage.swift.objectmeta import (
    LONGEST_ETAG_VALUE,
    META_PREFIX,
    check_content_type,
    write_headers,
)

#: Headers of an answer besides the metadata ones (Swift's own, stored
#: headers, large-object headers), for http.client's header count limit.
OTHER_ANSWER_HEADERS = 64


@dataclass(frozen=True)
class Constraints:
    """Swift's ``[swift-constraints]`` that bound an object's metadata."""

    max_meta_name_length: int = 128
    max_meta_value_length: int = 256
    max_meta_count: int = 90
    max_meta_overall_size: int = 4096
    max_header_size: int = 8192

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> Constraints:
        """From ``/info``'s ``swift`` section; Swift's defaults for what it leaves out."""
        swift = info.get("swift") or {}
        defaults = cls()
        values = {}
        for name in cls.__dataclass_fields__:
            value = swift.get(name)
            values[name] = value if isinstance(value, int) and value > 0 else getattr(defaults, name)
        return cls(**values)

    def check(self, meta: ObjectMeta, path: str | None) -> None:
        """MetadataTooLarge naming the Swift limit ``meta`` would exceed."""
        headers = write_headers(meta, LONGEST_ETAG_VALUE)  # room for a large object's ETag
        count = size = 0
        for name, value in headers.items():
            line = len(name.encode()) + len(value.encode()) + 4  # ": " and CRLF
            if line >= self.max_header_size:
                raise self._refused(f"the {name} header takes {line} bytes", "max_header_size",
                                    self.max_header_size, path)
            if not name.startswith(META_PREFIX):
                continue
            key, value_bytes = len(name) - len(META_PREFIX), len(value.encode())
            count += 1
            size += key + value_bytes
            if key > self.max_meta_name_length:
                raise self._refused(f"the metadata name {name[len(META_PREFIX):]!r} takes {key} "
                                    f"bytes", "max_meta_name_length",
                                    self.max_meta_name_length, path)
            if value_bytes > self.max_meta_value_length:
                raise self._refused(f"the value of {name[len(META_PREFIX):]!r} takes "
                                    f"{value_bytes} bytes", "max_meta_value_length",
                                    self.max_meta_value_length, path)
        if count > self.max_meta_count:
            raise self._refused(f"{count} metadata names are given", "max_meta_count",
                                self.max_meta_count, path)
        if size > self.max_meta_overall_size:
            raise self._refused(f"the metadata takes {size} bytes", "max_meta_overall_size",
                                self.max_meta_overall_size, path)

    @staticmethod
    def _refused(what: str, limit: str, value: int, path: str | None) -> MetadataTooLarge:
        return MetadataTooLarge(f"{what} as Swift stores it, more than this Swift cluster's "
                                f"{limit} of {value} allows", path)


class ClusterLimits:
    """The constraints of the cluster the driver writes to, read once when first needed.

    Read at start-up when Swift answers then, else by the first write that
    carries metadata; a write without metadata or stored headers never
    waits for them (the hot path makes no extra request).
    """

    def __init__(self, conn: Callable[[], Connection]) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._constraints: Constraints | None = None

    def load(self) -> Constraints:
        """The constraints, from ``/info`` on the first call (BackendUnavailable
        when Swift does not answer; Swift's defaults when /info is off)."""
        with self._lock:
            if self._constraints is None:
                self._constraints = self._read()
                _allow_answer_headers(self._constraints.max_meta_count + OTHER_ANSWER_HEADERS)
            return self._constraints

    def check(self, meta: ObjectMeta, path: str | None) -> None:
        """Refuse ``meta`` if Swift would: before any byte of the write goes."""
        check_content_type(meta.content_type)
        if meta.metadata or meta.headers:
            self.load().check(meta, path)

    def _read(self) -> Constraints:
        with swift_errors("read the cluster's constraints", None):
            try:
                info = self._conn().get_capabilities()
            except ClientException as exc:
                if exc.http_status is None or not 400 <= exc.http_status < 500:
                    raise
                log.info("Swift's /info is not exposed (HTTP %s): assuming Swift's default "
                         "constraints on metadata", exc.http_status)
                return Constraints()
        return Constraints.from_info(info)


def _allow_answer_headers(count: int) -> None:
    """Let http.client read answers with ``count`` headers: Swift answers
    with every metadata header, and http.client refuses more than its
    ``_MAXHEADERS`` (swiftclient raises it to 256; Swift's own proxy raises
    it the same way). Only ever raised, never lowered."""
    if getattr(http.client, "_MAXHEADERS", count) < count:
        http.client._MAXHEADERS = count  # type: ignore[attr-defined]

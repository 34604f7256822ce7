"""The REST resources of the API; each method is named after its HTTP verb.

Handlers stay thin: parse the request, call the driver, shape the answer.
Storage errors become JSON errors in :mod:`blobsvc.http.app`'s router, so no
handler catches them itself.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import json
import logging
import re
from typing import Callable, Iterator, NoReturn, Union
from urllib.parse import quote

from blobsvc.auth import AuthDenied
from blobsvc.config import ServerSettings
from blobsvc.http import context, exchange, preconditions
from blobsvc.http.bodies import RequestBody, declared_length, read_capped
from blobsvc.http.dates import http_date
from blobsvc.http.errors import ApiError
from blobsvc.http.ranges import ByteRange, Unsatisfiable, parse_range
from blobsvc.http.responses import send_json
from blobsvc.http.sendfile import FileChunk
from blobsvc.metrics import Metrics
from blobsvc.native import htmllisting
from blobsvc.native.metaheaders import (
    DELETE_AT,
    expiry_from_headers,
    meta_from_request,
    send_meta_headers,
)
from blobsvc.storage import ObjectInfo, ObjectMeta, ObjectStream, StorageDriver, Upload, paths
from blobsvc.storage.errors import NotFound
from blobsvc.storage.upload import UploadData

log = logging.getLogger(__name__)

#: Where objects live in this API; a 201's Location is this and the path.
OBJECTS_URL = "/v1/objects/"

LIST_DEFAULT_LIMIT = 1000
LIST_MAX_LIMIT = 10000
#: Entries on an HTML page with no ``limit``: as many as a page may hold.
#: A directory index is read whole, by people and by the tools that walk
#: one (rclone's http backend follows no "next page" link).
HTML_DEFAULT_LIMIT = LIST_MAX_LIMIT

_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")

#: Stored headers a 304 repeats (RFC 9110 15.4.5).
CACHING_HEADERS = ("Cache-Control", "Expires")

#: A ranged GET reads the object's version, then opens it; if a writer
#: replaced it in between, it tries again this many times.
_RANGE_ATTEMPTS = 3


#: Media types a browser runs script in, or renders documents from that can
#: (XML through XSLT): served from a shared origin, an object of this kind
#: uploaded by one writer would act with the rights of whoever opens it.
_ACTIVE_TYPES = frozenset({
    "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
    "text/xsl", "application/xslt+xml", "text/javascript", "application/javascript",
    "application/x-javascript", "text/ecmascript", "application/ecmascript",
    "multipart/x-mixed-replace",
})


def is_active_type(content_type: str) -> bool:
    """Whether a browser may run what it is served as. A comma makes a list
    of which browsers take the last valid type (Fetch's "extract a MIME
    type"): any type with one is taken as active, whatever it lists."""
    if "," in content_type:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type in _ACTIVE_TYPES or media_type.endswith("+xml")


def object_headers(info: ObjectInfo, inline_active: bool = False) -> None:
    """Headers GET and HEAD share, all from one ObjectInfo.

    The stored headers go first, so that for an active type the forced
    ``attachment`` wins over a stored ``Content-Disposition: inline``.
    """
    headers = exchange.response().headers
    content_type = info.content_type or "application/octet-stream"
    send_meta_headers(info)
    headers["Content-Length"] = str(info.size)
    headers["Content-Type"] = content_type
    if not inline_active and is_active_type(content_type):
        # Downloaded, not rendered; and if rendered anyway, in a sandbox
        # with no scripts and an origin of its own.
        headers["Content-Disposition"] = "attachment"
        headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    headers["Accept-Ranges"] = "bytes"
    if info.etag:
        headers["ETag"] = f'"{info.etag}"'
    if info.ctime is not None:
        headers["Last-Modified"] = http_date(info.ctime)
        # Swift's name; the exact time a listing's JSON gives, which
        # Last-Modified cuts to the second.
        headers["X-Timestamp"] = repr(info.ctime)


#: Decides the range of a read from the object's version (see ObjectResource.GET).
RangeSelector = Callable[[ObjectInfo], Union[ByteRange, None]]


def _partial(byte_range: ByteRange, size: int) -> None:
    """A 206's status and headers; an empty range has no Content-Range to
    name it and is a 200 of no bytes."""
    response = exchange.response()
    response.headers["Content-Length"] = str(byte_range.length)
    if byte_range.length:
        response.status = 206
        response.headers["Content-Range"] = byte_range.content_range(size)


class ObjectResource:
    """``/v1/objects/{path}``: one object."""

    def __init__(self, driver: StorageDriver, settings: ServerSettings,
                 read_meta: Callable[[], ObjectMeta] = meta_from_request,
                 read_body: BodyReader | None = None) -> None:
        self.driver = driver
        self.settings = settings
        #: How a write's metadata is spelled in the request (X-Object-Meta-* here).
        self.read_meta = read_meta
        #: What a write's bytes are, and their announced length (the body as sent here).
        self.read_body = read_body or request_body

    def GET(self, path: str, select: RangeSelector | None = None) -> Iterator[bytes] | bytes:
        """``select``, when given, decides the range from the version sent
        instead of the Range header (S3's ``partNumber``)."""
        headers = exchange.request().headers
        if "Range" not in headers and select is None:
            info, stream = self.driver.open_object(path)
            with closed_unless_sent(stream):
                if not self._conditions_allow(info):
                    return b""
                self._object_headers(info)
                return self._stream(stream, info.size or 0, path)
        for _ in range(_RANGE_ATTEMPTS):
            info = self.driver.stat_object(path)
            if not self._conditions_allow(info):
                return b""
            byte_range = self._range_of(info) if select is None else select(info)
            if byte_range is None:
                opened, stream = self.driver.open_object(path)
            else:
                opened, stream = self.driver.open_object(path, byte_range.start, byte_range.length)
            if opened.etag == info.etag and opened.size == info.size:
                break
            stream.close()  # replaced between stat and open: decide again
        else:
            raise ApiError(503, f"{path} keeps changing; try again", code="backend_unavailable")
        with closed_unless_sent(stream):
            self._object_headers(opened)
            if byte_range is None:
                return self._stream(stream, info.size or 0, path)
            _partial(byte_range, info.size or 0)
            return self._stream(stream, byte_range.length, path)

    def HEAD(self, path: str, select: RangeSelector | None = None) -> bytes:
        """``select`` as for GET: the answer is then the range's."""
        info = self.driver.stat_object(path)
        if self._conditions_allow(info):
            self._object_headers(info)
            byte_range = None if select is None else select(info)
            if byte_range is not None:
                _partial(byte_range, info.size or 0)
        return b""

    def _object_headers(self, info: ObjectInfo) -> None:
        object_headers(info, self.settings.inline_active_content)

    def _conditions_allow(self, info: ObjectInfo) -> bool:
        """Apply If-* headers; False when a 304 has been set up instead."""
        outcome = preconditions.evaluate(exchange.request().headers,
                                         exchange.request().method, info)
        if outcome == preconditions.FAILED:
            raise ApiError(412, "the object does not match the request's preconditions")
        if outcome == preconditions.NOT_MODIFIED:
            response = exchange.response()
            response.status = 304
            response.headers.pop("Content-Type", None)
            if info.etag:
                response.headers["ETag"] = f'"{info.etag}"'
            if info.ctime is not None:
                response.headers["Last-Modified"] = http_date(info.ctime)
            for name in CACHING_HEADERS:  # RFC 9110 15.4.5: as a 200 would
                if name in info.headers:
                    response.headers[name] = info.headers[name]
            return False
        return True

    def _range_of(self, info: ObjectInfo) -> ByteRange | None:
        headers = exchange.request().headers
        if not preconditions.if_range_allows(headers.get("If-Range"), info):
            return None
        try:
            return parse_range(headers.get("Range"), info.size or 0)
        except Unsatisfiable:
            raise ApiError(416, f"range not satisfiable for {info.size} bytes",
                           headers={"Content-Range": f"bytes */{info.size}"}) from None

    @staticmethod
    def _stream(stream: ObjectStream, size: int, path: str) -> Iterator[bytes]:
        exchange.response().stream = True
        context.current().sends_object = True
        body = ExactLengthBody(stream, size, path)
        exchange.response().after_sent(body.release)
        return body

    def PUT(self, path: str) -> bytes:
        upload = None
        try:
            paths.validate_path(path)
            upload = self.upload_from_request(path)
            info = self.driver.put_object(path, upload)
        finally:
            if upload is not None:
                context.current().bytes_in = upload.size
        created(path)
        exchange.response().headers["ETag"] = f'"{info.etag}"'
        document = info.to_json()
        document.update(md5=upload.known_md5_hex, sha256=upload.sha256_hex)
        return send_json(document, 201)

    def POST(self, path: str) -> bytes:
        """Replace metadata, stored headers and expiry; the bytes stay (Swift's POST)."""
        paths.validate_path(path)
        meta = meta_from_request()
        precondition = preconditions.write_precondition(exchange.request().headers, "POST")
        info = self.driver.update_object(path, meta, precondition)
        return send_json(info.to_json())

    def _current(self, path: str) -> ObjectInfo | None:
        try:
            return self.driver.stat_object(path)
        except NotFound:
            return None

    def DELETE(self, path: str) -> None:
        headers = exchange.request().headers
        self.driver.delete_object(path, preconditions.write_precondition(headers, "DELETE"))
        context.current().deleted_objects += 1
        response = exchange.response()
        response.status = 204
        response.headers.pop("Content-Type", None)

    def upload_from_request(self, path: str) -> Upload:
        """Everything decidable before the body is read is decided here, so a
        refused upload costs the client no bytes (and ``100 Continue`` is
        only sent for one that may succeed)."""
        headers = exchange.request().headers
        body, content_length = self.read_body()
        max_size = self.settings.max_object_size
        if max_size is not None and content_length is not None and content_length > max_size:
            raise ApiError(413, f"object larger than the limit of {max_size} bytes")
        precondition = preconditions.write_precondition(headers, "PUT")
        if precondition is not None:
            precondition(self._current(path))  # checked again, atomically, at commit
        meta = self.read_meta()
        return Upload(
            body,
            precondition=precondition,
            meta=meta,
            expected_size=content_length,
            max_size=max_size,
            content_md5=content_md5(headers.get("Content-MD5")),
            sha256_hex=_sha256(headers.get("X-Checksum-Sha256")),
            # SHA-256 costs as much as MD5 again: only when asked for.
            compute_sha256=self.settings.always_sha256,
            chunk_size=self.settings.chunk_size,
        )


#: A write's bytes as the request carries them, and their announced length
#: (None: unknown until the end).
BodyReader = Callable[[], tuple[UploadData, Union[int, None]]]


def request_body() -> tuple[UploadData, int | None]:
    """The body as it arrives (Content-Length or chunked framing), read
    into the upload's buffers as it goes."""
    request = exchange.request()
    content_length = declared_length(request.headers)
    return RequestBody(request.rfile, content_length), content_length


def created(path: str) -> None:
    """A write answered 201: say where the object now lives (RFC 9110 10.2.2)."""
    exchange.response().headers["Location"] = OBJECTS_URL + quote(path, safe="/")
    context.current().wrote_object = True


@contextlib.contextmanager
def closed_unless_sent(stream: ObjectStream) -> Iterator[None]:
    """Close ``stream`` if the handler leaves without handing it to the server
    (a failed precondition, a 304, any error): an open file per refused
    request is how a few hundred requests exhaust a worker's descriptors."""
    try:
        yield
    except BaseException:
        stream.close()
        raise
    if not getattr(exchange.response(), "stream", False):
        stream.close()


class ExactLengthBody:
    """The response body of one object: the stream, held to ``size`` bytes.

    The status line and Content-Length are already out when it runs; a
    short body would leave the client waiting forever, so a stream of the
    wrong length raises and the server drops the connection instead.
    The exchange calls :meth:`release` once the answer is over, whether or
    not the body was sent, which closes the stream (a generator that never
    started could not).

    A stream backed by a file first offers its region to the server as a
    :class:`~blobsvc.http.sendfile.FileChunk`; if the server takes it, the
    server sends the bytes, reports them here, and the same length check
    applies when the iteration ends (see :mod:`blobsvc.http.sendfile`).
    """

    def __init__(self, stream: ObjectStream, size: int, path: str) -> None:
        self.stream = stream
        self.size = size
        self.path = path
        #: Bytes that reached the socket (the access log's ``out=``).
        self.sent = 0
        self._chunks = iter(stream)
        region = stream.region
        self._offer = region if region is not None and region.count == size > 0 else None
        self._taken = False

    def __iter__(self) -> ExactLengthBody:
        return self

    def __next__(self) -> bytes:
        if self._offer is not None:
            region, self._offer = self._offer, None
            return FileChunk(region, self)
        if self._taken:
            self._finish()
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._finish()
        self.sent += len(chunk)
        if self.sent > self.size:
            self.release()
            self._abort()
        return chunk

    def region_taken(self) -> None:
        self._taken = True

    def region_sent(self, count: int) -> None:
        self.sent += count

    def _finish(self) -> NoReturn:
        """The end of the body: exact, or the connection is dropped."""
        self.release()
        if self.sent != self.size:
            self._abort()
        raise StopIteration

    def _abort(self) -> NoReturn:
        log.error("object %s changed size while being sent (%d of %d bytes); "
                  "connection aborted", self.path, self.sent, self.size)
        raise ConnectionAbortedError(f"object {self.path} ended after {self.sent} of {self.size} bytes")

    def release(self) -> None:
        self.stream.close()


class ListingResource:
    """``/v1/objects/`` and ``/v1/objects/{dir}/``: one directory level, as
    JSON, or as a page for a browser (see :mod:`.htmllisting`)."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    def GET(self, path: str) -> bytes:
        directory = paths.validate_dir(path)
        as_html = htmllisting.wants_html(exchange.request().headers.get("Accept"))
        limit = _limit(query_param("limit"), HTML_DEFAULT_LIMIT if as_html else LIST_DEFAULT_LIMIT)
        marker = query_param("marker") or None
        prefix = query_param("prefix") or None
        recursive = _flag(query_param("recursive"), "recursive")
        lister = self.driver.list_recursive if recursive else self.driver.list_objects
        entries = lister(directory, marker=marker, limit=limit + 1, prefix=prefix)
        truncated = len(entries) > limit
        entries = entries[:limit]
        last = None
        if entries:
            last = entries[-1].path if recursive else entries[-1].name
        response = exchange.response()
        response.headers["Vary"] = "Accept"  # one URL, two representations
        if as_html:
            kept = {name: value for name, value in (
                ("limit", query_param("limit")), ("prefix", prefix),
                ("recursive", "true" if recursive else None)) if value}
            response.headers["Content-Type"] = "text/html; charset=utf-8"
            response.headers["Content-Security-Policy"] = htmllisting.CONTENT_SECURITY_POLICY
            return htmllisting.render(directory, entries, last if truncated else None, kept)
        return send_json({
            "path": f"{directory}/" if directory else "",
            "entries": [entry.to_json() for entry in entries],
            "truncated": truncated,
            "next_marker": last if truncated else None,
        })

    HEAD = GET


class MoveResource:
    """``POST /v1/move``: rename an object, server side.

    The destination is replaced unless ``If-None-Match: *`` (create only) or
    ``If-Match`` say otherwise; the driver checks them atomically with the commit.
    """

    def __init__(self, driver: StorageDriver, require_write: Callable[[str], None]) -> None:
        self.driver = driver
        self.require_write = require_write

    def POST(self) -> bytes:
        body = read_json_body()
        source, target = _string_field(body, "from"), _string_field(body, "to")
        for path in (source, target):
            self.require_write(path)  # the source is removed: writing it too
        precondition = preconditions.write_precondition(exchange.request().headers, "PUT")
        moved = self.driver.move_object(source, target, precondition)
        created(moved.path)
        return send_json(moved.to_json(), 201)


class CopyResource:
    """``POST /v1/copy``: copy an object server side, metadata included
    (or replaced by the request's ``metadata``/``content_type``); the
    destination as for a move.

    A body naming one field replaces that one only: the others are the
    source's, read just before the copy (a source replaced in between
    lends the new bytes the old version's other fields).
    """

    def __init__(self, driver: StorageDriver, require: Callable[[str, str], None]) -> None:
        self.driver = driver
        self.require = require

    def POST(self) -> bytes:
        body = read_json_body()
        source, target = _string_field(body, "from"), _string_field(body, "to")
        self.require("read", source)
        self.require("write", target)
        precondition = preconditions.write_precondition(exchange.request().headers, "PUT")
        copied = self.driver.copy_object(source, target, precondition,
                                         self._meta(body, source))
        created(copied.path)
        return send_json(copied.to_json(), 201)

    def _meta(self, body: dict, source: str) -> ObjectMeta | None:
        """None (all the source's but its expiry), or that with the fields
        ``body`` names replaced."""
        named = set(COPY_META_FIELDS) & body.keys()
        if not named:
            return None
        given = meta_from_json(body)
        current = ObjectMeta.of(self.driver.stat_object(source)).without_expiry()
        return dataclasses.replace(current, **{
            COPY_META_FIELDS[name]: getattr(given, COPY_META_FIELDS[name]) for name in named})


#: Paths one bulk delete may name.
MAX_BULK_DELETE = 1000


class BulkDeleteResource:
    """``POST /v1/delete``: delete many objects in one request.

    Each path is judged alone, its access included: one that may not be
    written, is absent or fails is reported and the others go on, as S3's
    DeleteObjects and Swift's bulk delete do. The answer is ``200`` whatever
    the outcomes; only a malformed request changes nothing.
    """

    def __init__(self, driver: StorageDriver, require_write: Callable[[str], None]) -> None:
        self.driver = driver
        self.require_write = require_write

    def POST(self) -> bytes:
        paths = read_json_body().get("paths")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            raise ApiError(400, "'paths' must be a non-empty list of paths")
        if len(paths) > MAX_BULK_DELETE:
            raise ApiError(400, f"at most {MAX_BULK_DELETE} paths per request, not {len(paths)}")
        errors: list[dict[str, str]] = []
        allowed: list[str] = []
        for path in paths:
            try:
                self.require_write(path)
            except AuthDenied as exc:
                errors.append({"path": path, "code": exc.code, "message": exc.message})
            else:
                allowed.append(path)
        outcome = self.driver.delete_objects(allowed)
        errors += [{"path": path, "code": exc.code, "message": exc.message}
                   for path, exc in outcome.errors]
        context.current().deleted_objects += len(outcome.deleted)
        return send_json({"deleted": outcome.deleted, "not_found": outcome.not_found,
                          "errors": errors})


class CatResource:
    """``POST /v1/cat``: concatenate chunks into a new object.

    ``If-None-Match`` and ``If-Match`` apply to the result's path, as for a PUT.
    """

    def __init__(self, driver: StorageDriver, require_write: Callable[[str], None],
                 settings: ServerSettings) -> None:
        self.driver = driver
        self.require_write = require_write
        self.settings = settings

    def POST(self) -> bytes:
        body = read_json_body()
        target = _string_field(body, "path")
        chunks = body.get("chunks")
        if not isinstance(chunks, list) or not chunks or not all(isinstance(c, str) for c in chunks):
            raise ApiError(400, "'chunks' must be a non-empty list of paths")
        for path in (target, *chunks):
            self.require_write(path)  # the chunks are deleted afterwards
        precondition = preconditions.write_precondition(exchange.request().headers, "PUT")
        meta = meta_from_json(body)
        joined = self.driver.cat_objects(target, chunks, max_size=self.settings.max_object_size,
                                         precondition=precondition, meta=meta)
        created(joined.path)
        return send_json(joined.to_json(), 201)


class HealthResource:
    """``/healthz``: the process serves requests."""

    def GET(self) -> bytes:
        return send_json({"status": "ok"})

    HEAD = GET


class MetricsResource:
    """``/metrics``: Prometheus text format."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def GET(self) -> bytes:
        body, content_type = self.metrics.exposition()
        exchange.response().headers["Content-Type"] = content_type
        return body


class ReadyResource:
    """``/readyz``: the backend answers too."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    def GET(self) -> bytes:
        self.driver.check_ready()
        return send_json({"status": "ready", "driver": self.driver.name})

    HEAD = GET


#: A move or cat request is a few paths; anything bigger is a mistake.
MAX_JSON_BODY = 1024 * 1024


def read_json_body() -> dict:
    """The request's JSON object, read only up to :data:`MAX_JSON_BODY` bytes
    whatever the client declares (a bigger one is refused mid-read and its
    connection closed)."""
    raw = read_capped(MAX_JSON_BODY, ApiError(413, f"JSON body larger than {MAX_JSON_BODY} bytes"))
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
        raise ApiError(400, f"body is not valid JSON: {type(exc).__name__}") from None
    if not isinstance(document, dict):
        raise ApiError(400, "body must be a JSON object")
    return document


#: A copy's or cat's JSON fields -> the ObjectMeta field each sets.
COPY_META_FIELDS = {"metadata": "metadata", "content_type": "content_type",
                    "headers": "headers", "expires_at": "expires_at"}


def meta_from_json(document: dict) -> ObjectMeta:
    """A copy's or cat's ``metadata``, ``content_type``, ``headers`` (stored
    representation headers) and ``expires_at`` (Unix seconds) fields."""
    metadata = document.get("metadata", {})
    content_type = document.get("content_type")
    headers = document.get("headers", {})
    expires_at = document.get("expires_at")
    if not isinstance(metadata, dict):
        raise ApiError(400, "'metadata' must be an object of names and text values")
    if content_type is not None and not isinstance(content_type, str):
        raise ApiError(400, "'content_type' must be a string")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ApiError(400, "'headers' must be an object of header names and text values")
    if expires_at is not None:
        if isinstance(expires_at, bool) or not isinstance(expires_at, int) or expires_at < 0:
            raise ApiError(400, "'expires_at' must be whole Unix seconds or null",
                           code="invalid_metadata")
        expires_at = expiry_from_headers({DELETE_AT: str(expires_at)})
    return ObjectMeta(content_type=content_type or None, metadata=metadata,
                      headers=headers, expires_at=expires_at)


def _string_field(document: dict, name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str):
        raise ApiError(400, f"'{name}' must be a string path")
    return value


def content_md5(raw: str | None) -> bytes | None:
    """A Content-MD5 header's digest; 400 when it is not one."""
    if raw is None:
        return None
    try:
        digest = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise ApiError(400, "Content-MD5 must be the base64 of a 16-byte MD5 digest")
    return digest


def _sha256(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not _SHA256_HEX.match(raw):
        raise ApiError(400, "X-Checksum-Sha256 must be 64 hex digits")
    return raw


def query_param(name: str) -> str | None:
    """One query parameter as text; 400 when repeated or not UTF-8."""
    value = exchange.request().params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"query parameter {name!r} must be given once")
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise ApiError(400, f"query parameter {name!r} is not valid UTF-8") from None


def _flag(raw: str | None, name: str) -> bool:
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise ApiError(400, f"{name} must be true or false")


def _limit(raw: str | None, default: int = LIST_DEFAULT_LIMIT) -> int:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= LIST_MAX_LIMIT:
        raise ApiError(400, f"limit must be an integer from 1 to {LIST_MAX_LIMIT}")
    return int(raw)

"""A Python client for the whole native API, on urllib3.

urllib3 because it streams both ways (an iterator or a file object as the
body, the answer read in chunks without decoding), pools connections, and
retries by policy; requests and httpx sit on top of the same ideas with
more layers and no gain here. Bodies are never decoded: an object stored
gzip-encoded comes back as its stored bytes, as the service sends it.

Retries are limited to where they cannot change the outcome: reads (GET,
HEAD, listings) are retried on connection failures and on 502/503/504;
create-only PUTs (``if_none_match="*"``) with a body that can be sent again
(bytes or a seekable file) on connection failures and 503, which mean
nothing was stored; anything else only when the connection could not be
made at all, so the request never left. A ``Retry-After`` delays the next
attempt by at most RETRY_AFTER_MAX seconds.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid
from typing import IO, Any, Iterable, Iterator, Mapping
from urllib.parse import quote, urlsplit

import urllib3
from urllib3.util import Retry, Timeout

from blobsvc.client.download import Download, translate_transport_errors
from blobsvc.client.errors import (
    BlobsvcError,
    InvalidPath,
    PreconditionFailed,
    TransportError,
    error_from_answer,
)
from blobsvc.client.objects import (
    META_PREFIX,
    DeleteResult,
    Listing,
    info_from_headers,
    info_from_json,
)
from blobsvc.storage.contract import ObjectInfo

OBJECTS = "/v1/objects/"
#: Bytes read from a file body or an answer per step.
CHUNK_SIZE = 1024 * 1024
_RETRIED_STATUSES = frozenset({502, 503, 504})
#: The longest pause a ``Retry-After`` may impose before the next attempt.
RETRY_AFTER_MAX = 5.0

Body = bytes | bytearray | memoryview | IO[bytes] | Iterable[bytes]


class _Retry(Retry):
    """urllib3's retry policy with ``Retry-After`` capped at RETRY_AFTER_MAX:
    urllib3 would otherwise sleep up to six hours when a proxy says "come
    back in an hour", unbounded by the client's timeouts."""

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), RETRY_AFTER_MAX)


class Client:
    """The native API of one blobsvc, at ``url`` (``http(s)://host:port``).

    Credentials: ``token`` (sent as ``Bearer``) or ``user`` and
    ``password`` (HTTP Basic); none for an open service. ``signing_key`` is
    the service's ``auth.signing_key``, needed only by :meth:`sign`.
    TLS certificates are verified unless ``verify=False``; ``ca_certs``
    names a bundle for a private CA. ``timeout`` bounds each wait for the
    service (connecting, and each read), not a whole transfer.
    """

    def __init__(self, url: str, *, token: str | None = None, user: str | None = None,
                 password: str | None = None, signing_key: str | None = None,
                 timeout: float = 60.0, connect_timeout: float = 10.0, retries: int = 3,
                 verify: bool = True, ca_certs: str | None = None, pool_size: int = 10,
                 chunk_size: int = CHUNK_SIZE) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"the service URL takes no query or fragment: {url!r}")
        if token is not None and (user is not None or password is not None):
            raise ValueError("give a token or a user and password, not both")
        if (user is None) != (password is None):
            raise ValueError("a user needs a password, and a password a user")
        self.url = url.rstrip("/")
        self.signing_key = signing_key
        self.chunk_size = chunk_size
        self.retries = retries
        self._headers: dict[str, str] = {"User-Agent": "blobsvc-client"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        elif user is not None and password is not None:
            pair = f"{user}:{password}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        tls: dict[str, Any] = {}
        if parts.scheme == "https":
            tls = {"cert_reqs": "CERT_REQUIRED" if verify else "CERT_NONE"}
            if ca_certs:
                tls["ca_certs"] = ca_certs
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=pool_size, block=False,
            timeout=Timeout(connect=connect_timeout, read=timeout),
            retries=False, blocksize=chunk_size, **tls)

    # -- objects ----------------------------------------------------------------

    def put(self, path: str, data: Body, *, size: int | None = None,
            content_type: str | None = None, metadata: Mapping[str, str] | None = None,
            headers: Mapping[str, str] | None = None, delete_at: int | None = None,
            delete_after: int | None = None, if_none_match: str | None = None,
            if_match: str | None = None, content_md5: bytes | None = None,
            sha256: str | None = None) -> ObjectInfo:
        """Store ``data`` (bytes, a binary file or an iterator of bytes) at ``path``.

        A file or iterator is streamed, never read whole: with ``size``
        (or a file whose size can be told) it is sent with its length,
        otherwise chunked. ``headers`` are stored representation headers
        (``Content-Disposition``, ``Cache-Control``...); ``content_md5``
        (the raw 16 bytes) and ``sha256`` (hex) make the service check the
        body. ``if_none_match="*"`` creates only; ``if_match`` replaces only
        that ETag. The object's info comes back.
        """
        request = self._meta_headers(content_type, metadata, headers, delete_at, delete_after)
        request.update(_conditions(if_none_match, if_match))
        if content_md5 is not None:
            request["Content-MD5"] = base64.b64encode(content_md5).decode("ascii")
        if sha256 is not None:
            request["X-Checksum-Sha256"] = sha256
        body, length, replayable = _body(data, size)
        if length is not None:
            request["Content-Length"] = str(length)
        # A create-only PUT whose body can be sent again is retried when the
        # connection fails mid-way too: if an attempt did store the object,
        # the next one meets it and fails (412), which the caller is told.
        safe_retry = if_none_match == "*" and replayable
        retries = _Retry(total=None, connect=self.retries, read=self.retries if safe_retry else 0,
                        redirect=False, other=0,
                        status=self.retries if safe_retry else 0, status_forcelist={503},
                        allowed_methods=frozenset({"PUT"}),
                        backoff_factor=0.2, backoff_max=5.0, raise_on_status=False)
        answer = self._call("PUT", self._object_url(path), headers=request, body=body,
                            chunked=length is None, retries=retries,
                            body_pos=0 if isinstance(body, _FilePart) and replayable else None)
        lost = answer.retries is not None and any(
            attempt.error is not None for attempt in answer.retries.history)
        if answer.status == 412 and lost:  # a 503 before stored nothing: its 412 is plain
            raise PreconditionFailed(
                f"{path} exists; an earlier attempt of this create-only PUT, whose answer "
                "was lost, may be the one that created it: compare its ETag",
                412, "precondition_failed", answer.headers.get("X-Request-Id"))
        return info_from_json(self._json(answer, 201))

    def put_file(self, path: str, filename: str | os.PathLike[str], **options: Any) -> ObjectInfo:
        """Upload a local file, streamed, with its length."""
        with open(filename, "rb") as file:
            return self.put(path, file, size=os.fstat(file.fileno()).st_size, **options)

    def open(self, path: str, offset: int = 0, length: int | None = None, *,
             if_match: str | None = None, if_none_match: str | None = None) -> Download:
        """The object's bytes as a stream: iterate it or ``read()`` it, then close it.

        ``offset``/``length`` ask for a byte range (``206``); a range past
        the end raises RangeNotSatisfiable. ``if_none_match`` with the ETag
        you hold gives a Download whose ``not_modified`` is true and no body.
        """
        if offset < 0 or (length is not None and length < 1):
            raise ValueError("offset must not be negative, and length must be at least 1")
        request = _conditions(if_none_match, if_match)
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            request["Range"] = f"bytes={offset}-{end}"
        answer = self._call("GET", self._object_url(path), headers=request, stream=True,
                            retries=self._read_retries())
        if answer.status not in (200, 206, 304):
            raise self._error(answer)
        if "Range" in request and answer.status != 304 and \
                not _holds_range(answer, offset, length):
            answer.close()
            answer.release_conn()
            raise TransportError(
                f"GET {path}: asked for {request['Range']}, the answer ({answer.status}) holds "
                f"{answer.headers.get('Content-Range') or 'the whole object'}")
        return Download(path, answer, self.chunk_size)

    def get(self, path: str, offset: int = 0, length: int | None = None) -> bytes:
        """The object's bytes (or a range of them) in memory: for small objects."""
        with self.open(path, offset, length) as download:
            return download.read()

    def download(self, path: str, filename: str | os.PathLike[str]) -> ObjectInfo:
        """Write the object to a local file, atomically: the file appears
        whole (under a temporary name until then) or not at all."""
        target = os.fspath(filename)
        # a name of this call's own: another download to the same file, in
        # this process or another, writes its own until it is whole
        partial = f"{target}.part-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            with self.open(path) as download, open(partial, "xb") as file:
                for chunk in download:
                    file.write(chunk)
            os.replace(partial, target)
        except BaseException:
            if os.path.exists(partial):
                os.unlink(partial)
            raise
        return download.info

    def stat(self, path: str) -> ObjectInfo:
        """The object's info, metadata and stored headers included (a HEAD)."""
        answer = self._call("HEAD", self._object_url(path), retries=self._read_retries())
        if answer.status != 200:
            raise self._error(answer)
        return info_from_headers(path, answer.headers)

    def exists(self, path: str) -> bool:
        from blobsvc.client.errors import NotFound

        try:
            self.stat(path)
        except NotFound:
            return False
        return True

    def update(self, path: str, *, content_type: str | None = None,
               metadata: Mapping[str, str] | None = None,
               headers: Mapping[str, str] | None = None, delete_at: int | None = None,
               delete_after: int | None = None, if_match: str | None = None,
               if_none_match: str | None = None) -> ObjectInfo:
        """Replace the object's metadata, stored headers and expiry (Swift's
        POST: what is not given is removed, except the content type, which
        changes only when given); the bytes stay."""
        request = self._meta_headers(content_type, metadata, headers, delete_at, delete_after)
        request.update(_conditions(if_none_match, if_match))
        answer = self._call("POST", self._object_url(path), headers=request, body=b"")
        return info_from_json(self._json(answer, 200))

    def delete(self, path: str, *, if_match: str | None = None,
               if_none_match: str | None = None) -> None:
        """Delete the object (``if_match``: only that version)."""
        answer = self._call("DELETE", self._object_url(path),
                            headers=_conditions(if_none_match, if_match))
        self._expect(answer, 204)

    def delete_many(self, paths: list[str]) -> DeleteResult:
        """Delete up to 1 000 objects in one request; each is judged alone."""
        document = self._post_json("/v1/delete", {"paths": paths}, 200)
        return DeleteResult(document["deleted"], document["not_found"], document["errors"])

    def move(self, src: str, dst: str, *, if_none_match: str | None = None,
             if_match: str | None = None) -> ObjectInfo:
        """Rename ``src`` to ``dst`` server side, metadata and expiry included."""
        return info_from_json(self._post_json("/v1/move", {"from": src, "to": dst}, 201,
                                              _conditions(if_none_match, if_match)))

    def copy(self, src: str, dst: str, *, metadata: Mapping[str, str] | None = None,
             content_type: str | None = None, headers: Mapping[str, str] | None = None,
             expires_at: int | None = None, if_none_match: str | None = None,
             if_match: str | None = None) -> ObjectInfo:
        """Copy ``src`` to ``dst`` server side. Its metadata, content type and
        stored headers come along, each replaced when given; the expiry is
        not copied (``expires_at`` sets one)."""
        document = _meta_fields({"from": src, "to": dst}, metadata, content_type, headers,
                                expires_at)
        return info_from_json(self._post_json("/v1/copy", document, 201,
                                              _conditions(if_none_match, if_match)))

    def cat(self, path: str, chunks: list[str], *, metadata: Mapping[str, str] | None = None,
            content_type: str | None = None, headers: Mapping[str, str] | None = None,
            expires_at: int | None = None, if_none_match: str | None = None,
            if_match: str | None = None) -> ObjectInfo:
        """Join ``chunks`` into ``path`` server side, then delete the chunks."""
        document = _meta_fields({"path": path, "chunks": list(chunks)}, metadata,
                                content_type, headers, expires_at)
        return info_from_json(self._post_json("/v1/cat", document, 201,
                                              _conditions(if_none_match, if_match)))

    # -- listings ---------------------------------------------------------------

    def list(self, path: str = "", *, marker: str | None = None, limit: int | None = None,
             prefix: str | None = None, recursive: bool = False) -> Listing:
        """One page of the listing of directory ``path`` ("" is the root)."""
        query: dict[str, str] = {}
        if marker is not None:
            query["marker"] = marker
        if limit is not None:
            query["limit"] = str(limit)
        if prefix:
            query["prefix"] = prefix
        if recursive:
            query["recursive"] = "true"
        target = OBJECTS + (_quote_path(path.strip("/")) + "/" if path.strip("/") else "")
        answer = self._call("GET", self.url + target, query=query,
                            headers={"Accept": "application/json"},
                            retries=self._read_retries())
        document = self._json(answer, 200)
        return Listing(document["path"], [info_from_json(entry) for entry in document["entries"]],
                       bool(document["truncated"]), document.get("next_marker"))

    def iter_list(self, path: str = "", *, prefix: str | None = None, recursive: bool = False,
                  page_size: int | None = None) -> Iterator[ObjectInfo]:
        """Every entry of the listing, page after page."""
        marker = None
        while True:
            page = self.list(path, marker=marker, limit=page_size, prefix=prefix,
                             recursive=recursive)
            yield from page.entries
            if not page.truncated or page.next_marker is None:
                return
            marker = page.next_marker

    # -- service ------------------------------------------------------------------

    def health(self) -> bool:
        """Whether the process answers ``/healthz``."""
        answer = self._call("GET", self.url + "/healthz", retries=self._read_retries())
        answer.drain_conn()
        return answer.status == 200

    def ready(self) -> dict[str, Any]:
        """``/readyz``'s answer; BackendUnavailable when the backend does not answer."""
        answer = self._call("GET", self.url + "/readyz", retries=self._read_retries())
        return self._json(answer, 200)

    def sign(self, path: str, method: str = "GET", expires_in: int = 3600) -> str:
        """A URL anyone may use for ``method`` on ``path`` for ``expires_in``
        seconds, signed with the service's ``auth.signing_key``."""
        from blobsvc.auth import signed_query

        if not self.signing_key:
            raise ValueError("signing needs the service's signing key (signing_key=...)")
        if expires_in < 1:
            raise ValueError("expires_in must be at least 1 second")
        expires = int(time.time()) + expires_in
        # the service signs the method as it arrives, upper case
        query = signed_query(self.signing_key, method.upper(), path, expires)
        return f"{self._object_url(path)}?{query}"

    def url_for(self, path: str) -> str:
        """The object's URL (not signed)."""
        return self._object_url(path)

    def close(self) -> None:
        self._pool.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------

    def _object_url(self, path: str) -> str:
        return self.url + OBJECTS + _quote_path(path)

    def _read_retries(self) -> Retry:
        return _Retry(total=None, connect=self.retries, read=self.retries,
                     status=self.retries, other=0, redirect=False,
                     allowed_methods=frozenset({"GET", "HEAD"}),
                     status_forcelist=_RETRIED_STATUSES, backoff_factor=0.2, backoff_max=5.0,
                     raise_on_status=False)

    def _call(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
              body: Any = None, query: Mapping[str, str] | None = None, stream: bool = False,
              retries: Retry | None = None, chunked: bool = False,
              body_pos: int | None = None) -> urllib3.BaseHTTPResponse:
        if query:
            url += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query.items())
        if retries is None:  # only what never left: the connection could not be made
            retries = _Retry(total=None, connect=self.retries, read=0, status=0, other=0,
                            redirect=False, backoff_factor=0.2, backoff_max=5.0)
        with translate_transport_errors(f"{method} {url}"):
            return self._pool.urlopen(
                method, url, body=body, headers={**self._headers, **(headers or {})},
                retries=retries, redirect=False, chunked=chunked, body_pos=body_pos,
                preload_content=not stream, decode_content=False)

    def _post_json(self, route: str, document: dict[str, Any], expected: int,
                   headers: Mapping[str, str] | None = None) -> Any:
        answer = self._call("POST", self.url + route, body=json.dumps(document).encode(),
                            headers={"Content-Type": "application/json", **(headers or {})})
        return self._json(answer, expected)

    def _json(self, answer: urllib3.BaseHTTPResponse, expected: int) -> Any:
        self._expect(answer, expected)
        return json.loads(answer.data)

    def _expect(self, answer: urllib3.BaseHTTPResponse, expected: int) -> None:
        if answer.status != expected:
            raise self._error(answer)

    @staticmethod
    def _error(answer: urllib3.BaseHTTPResponse) -> BlobsvcError:
        with translate_transport_errors("reading an error answer"):
            body = answer.data  # an error's JSON is small; a streamed answer's unread yet
        answer.release_conn()
        return error_from_answer(answer.status, body, answer.headers.get("X-Request-Id"))

    @staticmethod
    def _meta_headers(content_type: str | None, metadata: Mapping[str, str] | None,
                      headers: Mapping[str, str] | None, delete_at: int | None,
                      delete_after: int | None) -> dict[str, str]:
        """The request headers that carry what a write stores besides the bytes."""
        request: dict[str, str] = {}
        if content_type is not None:
            request["Content-Type"] = content_type
        for name, value in (headers or {}).items():
            request[name] = value
        for name, value in (metadata or {}).items():
            # http.client sends header values as Latin-1: the UTF-8 bytes
            # go through unchanged that way, as the service reads them.
            request[META_PREFIX + name] = value.encode("utf-8").decode("latin-1")
        if delete_at is not None:
            request["X-Delete-At"] = str(delete_at)
        if delete_after is not None:
            request["X-Delete-After"] = str(delete_after)
        return request


def _holds_range(answer: urllib3.BaseHTTPResponse, offset: int, length: int | None) -> bool:
    """Whether an answer to a ranged GET holds the bytes asked for, from
    ``offset`` and no more than ``length`` of them. A proxy may drop the
    Range header (the whole object comes back, 200) or a cache answer
    another range: either would pass for the range unless checked."""
    if answer.status == 200:  # the whole object: the range only if it starts at 0
        size = answer.headers.get("Content-Length")
        return offset == 0 and (length is None or (size is not None and size.isdigit()
                                                   and int(size) <= length))
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)",
                         answer.headers.get("Content-Range", "").strip())
    if match is None:
        return False
    first, last = int(match.group(1)), int(match.group(2))
    return first == offset and (length is None or last - first + 1 <= length)


def _quote_path(path: str) -> str:
    """``path`` percent-encoded for a URL, refused first if it has a ``.`` or
    ``..`` segment: urllib3 (as browsers do) resolves those, so ``a/../b``
    would silently address ``b``. The service refuses such a path as
    ``invalid_path``, and so does this, with the same class, before sending:
    a HEAD's answer could not tell which 400 it is."""
    for segment in path.split("/"):
        if segment in (".", ".."):
            raise InvalidPath(f"{segment!r} is not allowed as a path segment: {path!r}",
                              400, "invalid_path")
    return quote(path, safe="/")


def _meta_fields(document: dict[str, Any], metadata: Mapping[str, str] | None,
                 content_type: str | None, headers: Mapping[str, str] | None,
                 expires_at: int | None) -> dict[str, Any]:
    """A copy's or cat's JSON with the fields given (absent ones: the default)."""
    if metadata is not None:
        document["metadata"] = dict(metadata)
    if content_type is not None:
        document["content_type"] = content_type
    if headers is not None:
        document["headers"] = dict(headers)
    if expires_at is not None:
        document["expires_at"] = expires_at
    return document


def _conditions(if_none_match: str | None, if_match: str | None) -> dict[str, str]:
    conditions = {}
    if if_none_match is not None:
        conditions["If-None-Match"] = _entity_tag(if_none_match)
    if if_match is not None:
        conditions["If-Match"] = _entity_tag(if_match)
    return conditions


def _entity_tag(etag: str) -> str:
    """``*`` or a quoted ETag, whether the caller quoted it or not."""
    if etag == "*" or etag.startswith(('"', 'W/"')):
        return etag
    return f'"{etag}"'


def _body(data: Body, size: int | None) -> tuple[Any, int | None, bool]:
    """What urllib3 sends, its length if known, and whether it can be sent again."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        # a memoryview's length in bytes, not items; a contiguous one goes out uncopied
        view = memoryview(data)
        view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
        if size is not None and size != view.nbytes:
            raise ValueError(f"size={size} but the body holds {view.nbytes} bytes")
        return view, view.nbytes, True
    if hasattr(data, "read"):
        file: IO[bytes] = data  # type: ignore[assignment]
        seekable = bool(getattr(file, "seekable", lambda: False)())
        if size is None and seekable:
            size = _remaining(file)
        if size is None:
            return file, None, False
        return _FilePart(file, size, seekable), size, seekable
    return _checked_length(iter(data), size) if size is not None else iter(data), size, False


def _remaining(file: IO[bytes]) -> int | None:
    """The bytes from a seekable file's position to its end."""
    try:
        position = file.tell()
        end = file.seek(0, os.SEEK_END)
        file.seek(position)
    except (OSError, ValueError):
        return None
    return max(end - position, 0)


class _FilePart:
    """``length`` bytes of a file, from its position when the upload began.

    urllib3 reads a file body to its end, whatever Content-Length says: the
    bytes past it would reach the service as the start of another request on
    the connection. This reads no further than the length announced, fails
    (the service then stores nothing) if the file ends before it, and
    rewinds to the part's start for a retry.
    """

    def __init__(self, file: IO[bytes], length: int, seekable: bool) -> None:
        self._file = file
        self._start = file.tell() if seekable else None
        self._length = length
        self._left = length

    def read(self, size: int | None = -1) -> bytes:
        if self._left <= 0:
            return b""
        wanted = self._left if size is None or size < 0 else min(size, self._left)
        chunk = self._file.read(wanted)
        if not chunk:
            raise ValueError(f"the file ended {self._left} bytes short of the "
                             f"{self._length} announced")
        self._left -= len(chunk)
        return chunk

    def tell(self) -> int:
        return self._length - self._left

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Back to the part's start (all a retry needs), and only there."""
        if offset != 0 or whence != os.SEEK_SET or self._start is None:
            raise OSError("a file part rewinds to its start only")
        self._file.seek(self._start)
        self._left = self._length
        return 0


def _checked_length(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """An iterator announced as ``size`` bytes must hold exactly that many:
    otherwise stop sending, so the service stores nothing."""
    sent = 0
    for chunk in chunks:
        sent += len(chunk)
        if sent > size:
            raise ValueError(f"the body holds more than the {size} bytes announced")
        yield chunk
    if sent != size:
        raise ValueError(f"the body held {sent} bytes, not the {size} announced")

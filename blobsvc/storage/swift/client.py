"""One container's small requests, on the calling thread's connection, errors translated.

Why apart: every job (listings, uploads, cat, moves, retirement, clash
checks) makes the same few requests: a HEAD that may find nothing, a
listing page, a server-side copy, a manifest PUT or read, a delete that
only leaves garbage when it fails. Each is written once here, with the
action its failure is reported as. The connections come from a callable
(``ConnectionPool.conn``), so a test can hand in an in-memory Swift.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable
from urllib.parse import quote

from swiftclient.client import ClientException, Connection

from blobsvc.storage.contract import Precondition
from blobsvc.storage.errors import BackendUnavailable, NotFound, StorageError
from blobsvc.storage.swift.errors import log, swift_errors
from blobsvc.storage.swift.headers import Headers, Stored, info_from_headers
from blobsvc.storage.swift.layout import SLO_DELETE, SLO_GET, SLO_PUT, ManifestEntry
from blobsvc.storage.swift.objectmeta import split_content_type

#: One entry of a container listing, as swiftclient decodes it.
Listed = dict[str, Any]

#: Entries per page when looking past expired objects for a live one.
EXPIRED_PAGE = 1000


def _expired(entry: Listed, now: float) -> bool:
    expires_at = split_content_type(entry.get("content_type"))[1]
    return expires_at is not None and expires_at <= now


#: Sent with every read of an object: Swift's proxy then asks every node
#: holding a copy and answers with the newest, not with the first that
#: answers, which after an outage may be a node back with the version it
#: held before writes acknowledged meanwhile (until replication heals it).
NEWEST = {"X-Newest": "true"}

#: The Content-Type Swift's proxy gives an answer it makes up itself.
_PROXY_DEFAULT_TYPE = "text/html; charset=utf-8"


def from_a_copy(headers: Headers) -> bool:
    """Whether a 2xx answer to an ``X-Newest`` read came from a stored copy.

    When a delete has reached one node but not the others (in flight, or a
    delete that lost its quorum), the newest answer is that node's 404,
    and Swift's proxy drops every older copy; but when those copies make a
    quorum, it answers their 2xx without any of them: no body, no
    Content-Type and no Accept-Ranges, which every answer made from a copy
    carries. Its ETag and timestamp are the deleted version's, so it would
    pass for an empty (or, for a large object, unreadable) version of it.
    The newest state is "deleted", and that is what such an answer means.
    """
    return ("accept-ranges" in headers
            or headers.get("content-type", "").lower() != _PROXY_DEFAULT_TYPE)


def _deleted(name: str) -> ClientException:
    return ClientException(f"{name}: the newest copy is a delete", http_status=404,
                           http_reason="Not Found")


def head_or_none(conn: Connection, container: str, name: str) -> Headers | None:
    """HEAD ``name`` (the newest copy); None when Swift has no such object.
    Errors untranslated."""
    try:
        headers: Headers = conn.head_object(container, name, headers=dict(NEWEST))
    except ClientException as exc:
        if exc.http_status == 404:
            return None
        raise
    return headers if from_a_copy(headers) else None


def get_newest(conn: Connection, container: str, name: str,
               headers: dict[str, str] | None = None, **options: Any) -> tuple[Headers, Any]:
    """GET ``name``'s newest copy (swiftclient's ``get_object`` with ``options``):
    its headers and body; a 404 as swiftclient raises it when Swift has none."""
    found, body = conn.get_object(container, name, headers={**NEWEST, **(headers or {})},
                                  **options)
    if not from_a_copy(found):
        if hasattr(body, "close"):
            body.close()
        raise _deleted(name)
    return found, body


class ContainerClient:
    """The requests every job makes on one container."""

    def __init__(self, container: str, conn: Callable[[str], Connection]) -> None:
        self.container = container
        self._conn = conn

    def conn(self, role: str = "main") -> Connection:
        """This thread's connection (``side``: while ``main`` streams a PUT body)."""
        return self._conn(role)

    def using(self, conn: Connection) -> ContainerClient:
        """This container's requests, all on ``conn``: checks made while
        ``main`` streams a PUT body go on the ``side`` connection."""
        return ContainerClient(self.container, lambda role: conn)

    # -- the container itself ------------------------------------------------

    def ensure_container(self) -> None:
        """Create the container when missing: a fresh deployment just works."""
        with swift_errors("create the container", None):
            try:
                self.conn().head_container(self.container)
            except ClientException as exc:
                if exc.http_status != 404:
                    raise
                self.conn().put_container(self.container)
                log.info("created Swift container %s", self.container)

    def check_container(self) -> None:
        """BackendUnavailable unless the container answers."""
        with swift_errors("check the container", None):
            try:
                self.conn().head_container(self.container)
            except ClientException as exc:
                if exc.http_status == 404:
                    raise BackendUnavailable(f"Swift container {self.container} is gone") from None
                raise

    # -- looking up ------------------------------------------------------------

    def head(self, name: str) -> Headers | None:
        with swift_errors("look up", name):
            return head_or_none(self.conn(), self.container, name)

    def check_current(self, path: str, precondition: Precondition | None,
                      conn: Connection) -> Headers | None:
        """HEAD ``path`` and judge it by ``precondition``; its headers, None if absent."""
        with swift_errors("read", path):
            headers = head_or_none(conn, self.container, path)
        if precondition is not None:
            precondition(info_from_headers(path, headers) if headers is not None else None)
        return headers

    def listing_page(self, prefix: str, marker: str | None, limit: int,
                     action: str = "list", delimiter: str | None = "/",
                     end_marker: str | None = None) -> list[Listed]:
        """One page of a listing below ``prefix``: one level (``delimiter``
        ``/``) or every name (None), names after ``marker`` and before ``end_marker``."""
        try:
            with swift_errors(action, prefix or "/"):
                page: list[Listed] = self.conn().get_container(
                    self.container, prefix=prefix or None, delimiter=delimiter, marker=marker,
                    end_marker=end_marker, limit=limit)[1]
                return page
        except NotFound:
            raise BackendUnavailable(f"Swift container {self.container} is missing") from None

    def has_objects_below(self, prefix: str) -> bool:
        """Whether an object that has not expired lives below ``prefix``."""
        return self.first_live_below(prefix) is not None

    def first_live_below(self, prefix: str, marker: str | None = None,
                         end_marker: str | None = None) -> str | None:
        """The first name below ``prefix`` (after ``marker``, before
        ``end_marker``) of an object that has not expired; None if none.

        Expired objects stay in Swift's listings until its object-expirer
        removes them, and must not make a directory of a name meanwhile
        (a clash, a delete refused, a listing found). One one-entry request
        while the first object below is live, as it nearly always is."""
        limit = 1
        while True:
            page = self.listing_page(prefix, marker, limit, "look up", delimiter=None,
                                     end_marker=end_marker)
            now = time.time()
            for entry in page:
                if not _expired(entry, now):
                    name: str = entry["name"]
                    return name
            if len(page) < limit:
                return None
            marker, limit = page[-1]["name"], EXPIRED_PAGE

    def names_below(self, prefix: str) -> list[str]:
        """Every name below ``prefix``, however many pages it takes."""
        with swift_errors("list", prefix):
            listing = self.conn().get_container(self.container, prefix=prefix,
                                                full_listing=True)[1]
        return [entry["name"] for entry in listing]

    # -- manifests and copies --------------------------------------------------

    def swift_path(self, name: str) -> str:
        return f"/{self.container}/{name}"

    def entry(self, name: str, etag: str, size: int) -> ManifestEntry:
        return {"path": self.swift_path(name), "etag": etag, "size_bytes": size}

    def put_manifest(self, name: str, entries: list[ManifestEntry], headers: dict[str, str],
                     path: str) -> Stored:
        """Write a manifest listing ``entries``, with ``headers`` (its Content-Type among them)."""
        response: dict[str, Any] = {}
        with swift_errors("store", path):
            etag = self.conn().put_object(self.container, name, contents=json.dumps(entries),
                                          headers=dict(headers), query_string=SLO_PUT,
                                          response_dict=response)
        return Stored.of(etag, response)

    def manifest(self, name: str, path: str) -> list[dict[str, Any]]:
        """A stored manifest as Swift lists it (``name``, ``hash``, ``bytes``, ``sub_slo``)."""
        with swift_errors("read", path):
            _, body = get_newest(self.conn(), self.container, name, query_string=SLO_GET)
        listed: list[dict[str, Any]] = json.loads(body)
        for stored in listed:
            if stored.get("range"):
                raise StorageError(f"{name} is a large object with ranged segments", path)
        return listed

    def manifest_entries(self, name: str, path: str) -> list[ManifestEntry]:
        """A stored manifest, in the form a manifest PUT takes."""
        return [{"path": stored["name"], "etag": stored["hash"], "size_bytes": stored["bytes"]}
                for stored in self.manifest(name, path) if stored.get("bytes")]

    def leaf_entries(self, name: str, path: str) -> list[ManifestEntry]:
        """The segments holding a large object's bytes, in order, nested manifests
        opened: what a copy copies (copying a nested manifest would copy its bytes)."""
        leaves: list[ManifestEntry] = []
        for stored in self.manifest(name, path):
            if not stored.get("bytes"):
                continue
            if stored.get("sub_slo"):
                leaves.extend(self.leaf_entries(self.name_of(stored["name"]), path))
            else:
                leaves.append({"path": stored["name"], "etag": stored["hash"],
                               "size_bytes": stored["bytes"]})
        return leaves

    def listed_names(self, name: str, path: str) -> list[str]:
        """Every object a manifest lists, nested manifests and theirs included."""
        names = []
        for stored in self.manifest(name, path):
            listed = self.name_of(stored["name"])
            names.append(listed)
            if stored.get("sub_slo"):
                names.extend(self.listed_names(listed, path))
        return names

    def name_of(self, swift_path: str) -> str:
        """The object name in a manifest's ``/<container>/<name>``."""
        return swift_path.split("/", 2)[2]

    def copy(self, src: str, dst: str, manifest_only: bool, path: str | None = None,
             headers: dict[str, str] | None = None) -> Stored:
        """Server-side copy; ``manifest_only`` copies an SLO's manifest, not its bytes.

        ``headers`` go with it (``X-Fresh-Metadata`` and what the copy
        carries instead of the source's metadata).
        """
        response: dict[str, Any] = {}
        sent = {"X-Copy-From": quote(self.swift_path(src)), **(headers or {})}
        with swift_errors("copy", path or dst):
            etag = self.conn().put_object(self.container, dst, contents=None, headers=sent,
                                          query_string=SLO_GET if manifest_only else None,
                                          response_dict=response)
        return Stored.of(etag, response)

    def post(self, name: str, headers: dict[str, str], path: str) -> None:
        """Replace an object's metadata (a POST: the bytes stay)."""
        with swift_errors("update", path):
            self.conn().post_object(self.container, name, headers=dict(headers))

    # -- deleting --------------------------------------------------------------

    def delete(self, name: str, with_segments: bool = False) -> None:
        """Delete ``name`` (a manifest ``with_segments``: the segments it lists too)."""
        with swift_errors("delete", name):
            self.conn().delete_object(self.container, name,
                                      query_string=SLO_DELETE if with_segments else None)

    def delete_quietly(self, name: str) -> None:
        """Delete a name; gone already is fine, a failure only leaves garbage."""
        try:
            self.delete(name)
        except NotFound:
            pass
        except StorageError as exc:
            log.warning("could not delete %s (%s): left for a later clean-up", name, exc.message)

    def remove_sources(self, path: str, names: list[str], with_segments: list[str]) -> None:
        """Delete a move's source or cat's chunks by name (segments stay with ``path``).

        A source left behind would share segments with ``path``, so failing
        to remove it is an error, not a warning.
        """
        failed = []
        for name in names:
            try:
                self.delete(name, with_segments=name in with_segments)
            except NotFound:
                pass  # removed concurrently: the outcome is the same
            except StorageError:
                failed.append(name)
        if failed:
            raise BackendUnavailable(f"{path} was written, but Swift did not delete "
                                     + ", ".join(failed), path)

"""Which uploads the container still lists: the sweep's evidence before it deletes segments.

Why apart: a large object moved, or lent to a cat result, keeps its
segments where they were written, under another name's upload prefix, so
"is anyone still using these segments?" can only be answered by reading
manifests: the current version's, or every manifest and tombstone in the
container. A manifest that changes between the listing and its read may
have been copied somewhere unseen; then the answer is "don't know", and
nothing is deleted.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from blobsvc.storage.errors import BackendUnavailable, NotFound, StorageError
from blobsvc.storage.swift.client import ContainerClient, get_newest
from blobsvc.storage.swift.errors import swift_errors
from blobsvc.storage.swift.headers import is_large, unquote
from blobsvc.storage.swift.layout import REPLACED_DIR, SEGMENTS_DIR, SLO_GET, upload_prefix

#: Threads that read manifests in parallel.
READ_THREADS = 8


class References:
    """Reads of one container's manifests, to tell which upload prefixes are in use."""

    def __init__(self, client: ContainerClient) -> None:
        self.client = client

    def is_current(self, path: str, prefix: str) -> bool | None:
        """Whether the version at ``path`` lists segments under ``prefix``.

        None when Swift did not answer (asked again next time); True when it
        refused to tell (the segments are kept, as when unsure).
        """
        try:
            headers = self.client.head(path)
            if headers is None or not is_large(headers):
                return False
            return prefix in (self.manifest_uploads(path) or ())
        except NotFound:
            return False
        except BackendUnavailable:
            return None
        except StorageError:
            return True

    def manifest_uploads(self, name: str, expected_etag: str | None = None) -> set[str] | None:
        """Upload prefixes a manifest lists; None when gone or not ``expected_etag`` any more."""
        try:
            with swift_errors("read", name):
                headers, body = get_newest(self.client.conn(), self.client.container, name,
                                           query_string=SLO_GET)
        except NotFound:
            return None
        if expected_etag is not None and unquote(headers.get("etag")) != expected_etag:
            return None
        root = f"/{self.client.container}/"
        uploads = set()
        for entry in json.loads(body):
            if not entry["name"].startswith(root):
                continue
            listed = entry["name"][len(root):]
            uploads.add(upload_prefix(listed))
            if entry.get("sub_slo"):  # nested: lent segments may be listed only there
                nested = self.manifest_uploads(listed)
                if nested is None:
                    return None
                uploads |= nested
        return uploads

    def referenced_uploads(self) -> set[str] | None:
        """Upload prefixes any manifest or tombstone lists; None if the container moved under us.

        A large object moved or lent by cat keeps its segments where they
        were written, so only the whole container tells what is unused. A
        manifest gone or changed between the listing and its read may have
        been copied elsewhere unseen: then the answer is None.
        """
        referenced: set[str] = set()
        with swift_errors("list", None):
            listing = self.client.conn().get_container(self.client.container,
                                                       full_listing=True)[1]
        manifests = [entry for entry in listing
                     if "slo_etag" in entry and not entry["name"].startswith(f"{SEGMENTS_DIR}/")]
        with ThreadPoolExecutor(READ_THREADS) as pool:
            found = pool.map(lambda entry: self.manifest_uploads(entry["name"], entry.get("hash")),
                             manifests)
            for entry, uploads in zip(manifests, found, strict=True):
                if uploads is None:
                    if entry["name"].startswith(f"{REPLACED_DIR}/"):
                        continue  # a tombstone retired meanwhile: never copied anywhere
                    return None
                referenced |= uploads
        return referenced

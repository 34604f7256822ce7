"""The bucket operations: ListBuckets, CreateBucket, HeadBucket,
DeleteBucket, GetBucketLocation and GetBucketVersioning.

One owner holds every bucket here (access is decided per path, see
:mod:`blobsvc.s3.access`), there is one region (``s3.region``), whatever
a client names on creation, and versioning is never on.
"""

from __future__ import annotations

from blobsvc.http import exchange
from blobsvc.s3 import xmldoc
from blobsvc.s3.access import S3Access
from blobsvc.s3.buckets import Buckets
from blobsvc.s3.errors import S3Error
from blobsvc.s3.headers import iso_time

#: The owner every listing names.
OWNER = "blobsvc"

#: A CreateBucketConfiguration is a few elements; more is a mistake.
MAX_CONFIGURATION = 64 * 1024


class BucketOperations:
    def __init__(self, buckets: Buckets, access: S3Access, region: str) -> None:
        self.buckets = buckets
        self.access = access
        self.region = region

    def list_buckets(self, bucket: str, key: str) -> bytes:
        """The buckets the client may read (a prefix grant sees its own)."""
        root = xmldoc.document("ListAllMyBucketsResult")
        add_owner(root)
        listed = xmldoc.add(root, "Buckets")
        for found in self.buckets.all():
            if self.access.allows("read", f"{found.name}/"):
                entry = xmldoc.add(listed, "Bucket")
                xmldoc.add_all(entry, [("Name", found.name), ("CreationDate", iso_time(found.created))])
        return xmldoc.send_xml(root)

    def create_bucket(self, bucket: str, key: str) -> bytes:
        if _has_body():
            # Only a region could be asked for, and there is one: read to
            # refuse malformed XML, not to act on it.
            root = xmldoc.parse_xml(self.access.read_document(MAX_CONFIGURATION))
            if xmldoc.local_name(root) != "CreateBucketConfiguration":
                raise S3Error("MalformedXML", "expected <CreateBucketConfiguration>")
        self.buckets.create(bucket)
        exchange.response().headers["Location"] = f"/{bucket}"
        return b""

    def head_bucket(self, bucket: str, key: str) -> bytes:
        self.buckets.require(bucket)
        return b""

    def delete_bucket(self, bucket: str, key: str) -> None:
        self.buckets.delete(bucket)
        response = exchange.response()
        response.status = 204
        response.headers.pop("Content-Type", None)

    def get_bucket_location(self, bucket: str, key: str) -> bytes:
        """The one region (us-east-1 is named by no text, as S3 has it)."""
        self.buckets.require(bucket)
        root = xmldoc.document("LocationConstraint")
        if self.region != "us-east-1":
            root.text = self.region
        return xmldoc.send_xml(root)

    def get_bucket_versioning(self, bucket: str, key: str) -> bytes:
        """No Status: versioning was never enabled."""
        self.buckets.require(bucket)
        return xmldoc.send_xml(xmldoc.document("VersioningConfiguration"))


def add_owner(parent: xmldoc.Element) -> None:
    owner = xmldoc.add(parent, "Owner")
    xmldoc.add_all(owner, [("ID", OWNER), ("DisplayName", OWNER)])


def _has_body() -> bool:
    headers = exchange.request().headers
    return "Transfer-Encoding" in headers or headers.get("Content-Length", "0") != "0"

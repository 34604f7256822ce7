"""The S3 front end: from method, path and query to an S3 operation.

Path-style addressing: ``/`` is the service, ``/{bucket}`` a bucket,
``/{bucket}/{key}`` an object (the key percent-decoded once). Paths whose
first segment is the native API's (``/v1/...``, ``/healthz``...), or holds
a percent-escape, are left to it, so they keep their meaning. With
``s3.domain`` set, a request whose Host is ``{bucket}.{domain}`` is
virtual-hosted: its whole path is the key, ``/healthz`` included. Which
operation a request is follows S3: the method, then the subresource in
the query (``?location``, ``?delete``, ``?list-type=2``...), then
``x-amz-copy-source``. Subresources blobsvc does not implement (ACLs,
policies, lifecycle, tagging, CORS, website, versioning on), and headers
asking for encryption, object lock, tags or a redirect, answer ``501
NotImplemented``; a canned ``x-amz-acl`` granting the owner alone
(``private``, ``bucket-owner-full-control``, ``bucket-owner-read``) is
accepted. Every multipart operation on an upload
(its parts included) needs write access to the upload's key;
ListMultipartUploads needs read access to the prefix it lists.

The route name in logs and metrics is ``s3:`` and the operation's name
(``s3:PutObject``). Every error is S3's XML (:meth:`S3Api.render_error`).
"""

from __future__ import annotations

from typing import Callable, Mapping

from blobsvc.auth import Authenticator
from blobsvc.config import Config
from blobsvc.http import context, exchange
from blobsvc.http.dispatch import Failure, Route, decode_path
from blobsvc.http.errors import ApiError
from blobsvc.native.resources import query_param
from blobsvc.s3 import xmldoc
from blobsvc.s3.access import S3Access
from blobsvc.s3.bucketlists import BucketListings
from blobsvc.s3.bucketops import BucketOperations
from blobsvc.s3.buckets import Buckets
from blobsvc.s3.bulk import DeleteObjects
from blobsvc.s3.errors import STATUS, S3Error, s3_code_of
from blobsvc.s3.multipart import Multipart
from blobsvc.s3.names import NATIVE_NAMES, check_bucket_name
from blobsvc.s3.objects import S3Objects, copy_source
from blobsvc.s3.uploads import Uploads
from blobsvc.storage import StorageDriver

#: Subresources (query parameters) of S3 features blobsvc has not.
UNSUPPORTED = frozenset({
    "accelerate", "acl", "analytics", "attributes", "cors", "encryption", "intelligent-tiering",
    "inventory", "legal-hold", "lifecycle", "logging", "metrics", "notification", "object-lock",
    "ownershipControls", "policy", "policyStatus", "publicAccessBlock",
    "replication", "requestPayment", "restore", "retention", "select", "tagging", "torrent",
    "website",
})

#: Operations on one multipart upload: by the method, with ``?uploadId``.
UPLOAD_OPERATIONS = {"PUT": "UploadPart", "POST": "CompleteMultipartUpload",
                     "DELETE": "AbortMultipartUpload", "GET": "ListParts"}

#: Request headers asking for what blobsvc would not do (encryption at
#: rest, object lock, tags, redirects): refused rather than ignored, so no
#: client believes it got them.
UNSUPPORTED_HEADERS = ("x-amz-server-side-encryption", "x-amz-object-lock-", "x-amz-tagging",
                       "x-amz-website-redirect-location", "x-amz-bucket-object-lock-enabled")

#: Operations on a bucket as a whole (a missing one is NoSuchBucket).
BUCKET_OPERATIONS = frozenset({
    "CreateBucket", "HeadBucket", "DeleteBucket", "GetBucketLocation", "GetBucketVersioning",
    "ListObjects", "ListObjectsV2", "ListObjectVersions", "DeleteObjects",
    "ListMultipartUploads",
})
#: Refusals decided from the request alone, raised by the route's handler.
REFUSALS = frozenset({"NotImplemented", "MethodNotAllowed", "InvalidVersion", "InvalidKey"})

Handler = Callable[[str, str], object]


class Operation:
    """One S3 operation as the dispatcher calls a resource: by the verb."""

    def __init__(self, method: str, handler: Handler) -> None:
        setattr(self, method, handler)


class S3Api:
    """S3's API as a front end of the dispatcher (see blobsvc.http.dispatch)."""

    #: S3 never challenges: a refusal is 403 AccessDenied.
    challenge = ""

    def __init__(self, driver: StorageDriver, config: Config, auth: Authenticator) -> None:
        self.access = S3Access(auth)
        self.domain = config.s3.domain
        buckets = Buckets(driver)
        self.objects = S3Objects(driver, config.server, buckets, self.access)
        self.bucket_ops = BucketOperations(buckets, self.access, config.s3.region)
        listings = BucketListings(driver, buckets)
        bulk = DeleteObjects(driver, buckets, self.access)
        multipart = Multipart(driver, config.server, buckets, self.access, self.objects,
                              Uploads(driver, config.s3.multipart_expiry))
        self.handlers: dict[str, Handler] = {
            "ListBuckets": self.bucket_ops.list_buckets,
            "CreateBucket": self.bucket_ops.create_bucket,
            "HeadBucket": self.bucket_ops.head_bucket,
            "DeleteBucket": self.bucket_ops.delete_bucket,
            "GetBucketLocation": self.bucket_ops.get_bucket_location,
            "GetBucketVersioning": self.bucket_ops.get_bucket_versioning,
            "ListObjectsV2": listings.list_objects_v2,
            "ListObjects": listings.list_objects,
            "ListObjectVersions": listings.list_object_versions,
            "DeleteObjects": bulk.delete_objects,
            "PutObject": self.objects.put_object,
            "GetObject": self.objects.get_object,
            "HeadObject": self.objects.head_object,
            "DeleteObject": self.objects.delete_object,
            "CopyObject": self.objects.copy_object,
            "CreateMultipartUpload": multipart.create,
            "UploadPart": multipart.upload_part,
            "UploadPartCopy": multipart.upload_part_copy,
            "CompleteMultipartUpload": multipart.complete,
            "AbortMultipartUpload": multipart.abort,
            "ListParts": multipart.list_parts,
            "ListMultipartUploads": multipart.list_uploads,
            "NotImplemented": _not_implemented,
            "MethodNotAllowed": _method_not_allowed,
            "InvalidVersion": _invalid_version,
            "InvalidKey": _invalid_key,
        }

    def match(self, raw_path: str) -> Route | None:
        request = exchange.request()
        hosted = self._bucket_of_host(request.headers.get("Host", ""))
        if hosted is not None:
            bucket, rest = hosted, raw_path[1:]
        else:
            bucket, _, rest = raw_path[1:].partition("/")
            if bucket in NATIVE_NAMES or "%" in bucket:
                # No bucket name needs an escape: one that has one is no route
                # (``/%6detrics`` must not be /metrics by another name).
                return None
        try:
            key = decode_path(rest) if rest else ""
        except ApiError:  # not UTF-8: refused in S3's words, by the route's handler
            key, name = rest, "InvalidKey"
        else:
            name = operation(bucket, key, request.method, request.params, request.headers)
        handler = self.handlers.get(name, _not_implemented)
        return Route(Operation(request.method, handler), f"s3:{name}", (bucket, key))

    def _bucket_of_host(self, host: str) -> str | None:
        """The bucket a virtual-hosted request names in its Host, if any."""
        if self.domain is None:
            return None
        name, _, port = host.lower().rpartition(":")
        if not port.isdigit():
            name = host.lower()
        suffix = f".{self.domain}"
        return name[:-len(suffix)] if name.endswith(suffix) else None

    def authorize(self, route: Route) -> None:
        """Decide access before any storage is touched or body read."""
        exchange.response().headers["X-Amz-Request-Id"] = context.current().request_id
        name = route.name.removeprefix("s3:")
        bucket, key = route.args
        if bucket or key:  # "//key" names no bucket
            check_bucket_name(bucket)
        self.access.identify()
        if name in REFUSALS:
            return
        if name == "ListBuckets":
            self.access.require_some("read")
        elif name in ("ListObjects", "ListObjectsV2", "ListObjectVersions",
                      "ListMultipartUploads"):
            self.access.require("read", f"{bucket}/{query_param('prefix') or ''}")
        elif name in ("HeadBucket", "GetBucketLocation", "GetBucketVersioning"):
            self.access.require("read", f"{bucket}/")
        elif name in ("CreateBucket", "DeleteBucket"):
            self.access.require("write", f"{bucket}/")
        elif name == "DeleteObjects":
            self.access.require_some("write")  # and each key as the body names it
        elif name in ("GetObject", "HeadObject"):
            self.access.require("read", f"{bucket}/{key}")
        elif name in ("CopyObject", "UploadPartCopy"):
            source_bucket, source_key = copy_source()
            self.access.require("read", f"{source_bucket}/{source_key}")
            self.access.require("write", f"{bucket}/{key}")
        else:
            self.access.require("write", f"{bucket}/{key}")

    def render_error(self, failure: Failure) -> bytes:
        """S3's error document: Code, Message, Resource, RequestId."""
        exc = failure.exception
        code = exc.s3_code if isinstance(exc, S3Error) else s3_code_of(failure.code)
        if code == "NoSuchKey" and context.current().route.removeprefix("s3:") in BUCKET_OPERATIONS:
            code = "NoSuchBucket"
        status = exc.s3_status if isinstance(exc, S3Error) else STATUS[code]
        request_id = context.current().request_id
        response = exchange.response()
        response.headers.pop("WWW-Authenticate", None)
        response.headers.pop("Content-Length", None)
        response.headers["X-Amz-Request-Id"] = request_id
        root = xmldoc.Element("Error")
        xmldoc.add_all(root, [("Code", code), ("Message", failure.message),
                              ("Resource", exchange.request().path_info),
                              ("RequestId", request_id)])
        response.status = status
        response.headers["Content-Type"] = "application/xml"
        return xmldoc.to_bytes(root)


def operation(bucket: str, key: str, method: str, params: Mapping[str, object],
              headers: Mapping[str, str]) -> str:
    """The S3 operation a request is (or the refusal it gets)."""
    if not bucket:
        return "ListBuckets" if method in ("GET", "HEAD") else "MethodNotAllowed"
    if UNSUPPORTED & params.keys() or not _acl_supported(headers) or any(
            name.lower().startswith(UNSUPPORTED_HEADERS) for name in headers):
        return "NotImplemented"
    if key:
        if params.get("versionId", "null") != "null":
            return "InvalidVersion"
        if "uploadId" in params:
            return _upload_operation(method, headers)
        if "partNumber" in params and method not in ("GET", "HEAD"):
            return "NotImplemented"  # only a read of one part is S3's
        if "uploads" in params:
            return "CreateMultipartUpload" if method == "POST" else "MethodNotAllowed"
        if method == "PUT":
            return "CopyObject" if "X-Amz-Copy-Source" in headers else "PutObject"
        return {"GET": "GetObject", "HEAD": "HeadObject",
                "DELETE": "DeleteObject"}.get(method, "MethodNotAllowed")
    if "uploadId" in params or "partNumber" in params or ("uploads" in params
                                                          and method != "GET"):
        return "MethodNotAllowed"
    if method == "GET":
        for subresource, name in (("uploads", "ListMultipartUploads"),
                                  ("location", "GetBucketLocation"),
                                  ("versioning", "GetBucketVersioning"),
                                  ("versions", "ListObjectVersions")):
            if subresource in params:
                return name
        return "ListObjectsV2" if params.get("list-type") == "2" else "ListObjects"
    if method == "PUT":
        return "NotImplemented" if "versioning" in params else "CreateBucket"
    if method == "POST":
        return "DeleteObjects" if "delete" in params else "MethodNotAllowed"
    return {"HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(method, "MethodNotAllowed")


def _upload_operation(method: str, headers: Mapping[str, str]) -> str:
    name = UPLOAD_OPERATIONS.get(method, "MethodNotAllowed")
    return "UploadPartCopy" if name == "UploadPart" and "X-Amz-Copy-Source" in headers else name


#: Canned ACLs that grant no one but the owner: every bucket and object has
#: the one owner, so the bucket owner's grants are the object owner's, and
#: tools that send ``bucket-owner-full-control`` by habit get what they ask.
OWNER_ONLY_ACLS = frozenset({"private", "bucket-owner-full-control", "bucket-owner-read"})


def _acl_supported(headers: Mapping[str, str]) -> bool:
    """Only the ACL everything here has: the owner's alone (and no grants)."""
    if headers.get("X-Amz-Acl", "private") not in OWNER_ONLY_ACLS:
        return False
    return not any(name.lower().startswith("x-amz-grant-") for name in headers)


def _not_implemented(bucket: str, key: str) -> object:
    request = exchange.request()
    raise S3Error("NotImplemented",
                  f"{_refused_feature(request.params, request.headers)} is not implemented "
                  "by blobsvc")


def _refused_feature(params: Mapping[str, object], headers: Mapping[str, str]) -> str:
    """What made a request NotImplemented, in its own words: a command-line
    client shows only the message, and "this feature" leaves its user to
    guess which of the options given was refused."""
    subresources = sorted(UNSUPPORTED & params.keys())
    if subresources:
        return f"the ?{subresources[0]} subresource"
    acl = headers.get("X-Amz-Acl", "private")
    if acl not in OWNER_ONLY_ACLS:
        return f"the canned ACL {acl[:64]!r} (only the owner's: private)"
    for name in sorted(headers, key=str.lower):
        if name.lower().startswith(UNSUPPORTED_HEADERS + ("x-amz-grant-",)):
            return f"the header {name.lower()}"
    if "versioning" in params:
        return "enabling versioning"
    return "this S3 feature"


def _method_not_allowed(bucket: str, key: str) -> object:
    raise S3Error("MethodNotAllowed", f"{exchange.request().method} is not allowed here")


def _invalid_version(bucket: str, key: str) -> object:
    raise S3Error("InvalidArgument", "an object's only version is null")


def _invalid_key(bucket: str, key: str) -> object:
    raise S3Error("InvalidArgument", "an object key is UTF-8 text, percent-encoded once")

"""S3's error codes and statuses, and the XML error answer.

A handler raises :class:`S3Error` with S3's own code where S3 has a word
for the case (NoSuchBucket, BucketNotEmpty...). Everything else that goes
wrong (a storage error, an auth refusal, a bad header caught by the shared
HTTP code) arrives in the native vocabulary and is worded here the way S3
words it, so an S3 client sees S3's codes whatever raised the error.
"""

from __future__ import annotations

from blobsvc.http.errors import CODE_BY_STATUS, ApiError

#: S3 error code -> HTTP status, as S3 answers them.
STATUS: dict[str, int] = {
    "AccessDenied": 403,
    "BadDigest": 400,
    "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409,
    "EntityTooLarge": 400,
    "EntityTooSmall": 400,
    "IncompleteBody": 400,
    "InsufficientStorage": 507,
    "InternalError": 500,
    "InvalidArgument": 400,
    "InvalidBucketName": 400,
    "InvalidDigest": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "InvalidPartNumber": 416,
    "InvalidRange": 416,
    "InvalidRequest": 400,
    "KeyTooLongError": 400,
    "MalformedXML": 400,
    "MetadataTooLarge": 400,
    "MethodNotAllowed": 405,
    "MissingContentLength": 411,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "NotImplemented": 501,
    #: An object and a "directory" would share a name (blobsvc's own code:
    #: S3 has none, as its keys are not paths).
    "ObjectPrefixConflict": 409,
    "PreconditionFailed": 412,
    "RequestTimeout": 400,
    "ServiceUnavailable": 503,
    "SignatureDoesNotMatch": 403,
    "SlowDown": 503,
}

#: The native API's codes (blobsvc.http.errors) as S3 words them.
FROM_NATIVE: dict[str, str] = {
    "bad_request": "InvalidRequest",
    "invalid_path": "InvalidArgument",
    "checksum_mismatch": "BadDigest",
    "incomplete_body": "IncompleteBody",
    "invalid_metadata": "InvalidArgument",
    "metadata_too_large": "MetadataTooLarge",
    # S3 answers 403 to anonymous and signed requests alike.
    "unauthorized": "AccessDenied",
    "forbidden": "AccessDenied",
    "not_found": "NoSuchKey",
    "method_not_allowed": "MethodNotAllowed",
    "request_timeout": "RequestTimeout",
    "conflict": "ObjectPrefixConflict",
    "length_required": "MissingContentLength",
    "precondition_failed": "PreconditionFailed",
    "too_large": "EntityTooLarge",
    "range_not_satisfiable": "InvalidRange",
    "not_implemented": "NotImplemented",
    "backend_unavailable": "ServiceUnavailable",
    "insufficient_storage": "InsufficientStorage",
}


class S3Error(ApiError):
    """An error answer in S3's words; its native code follows its status,
    so logs, metrics and the shared error handling treat it as any other."""

    def __init__(self, s3_code: str, message: str, headers: dict[str, str] | None = None,
                 status: int | None = None) -> None:
        """``status`` only for a code not in :data:`STATUS` (one a signature
        check names, say)."""
        self.s3_code = s3_code
        self.s3_status = status if status is not None else STATUS[s3_code]
        super().__init__(self.s3_status, message, CODE_BY_STATUS[self.s3_status], headers)


def s3_code_of(native_code: str) -> str:
    """The S3 code for an error raised in the native vocabulary."""
    return FROM_NATIVE.get(native_code, "InternalError")

"""Who the client of an S3 request is, and what it may do.

The one place the S3 front end meets authentication, so that signature
verification (AWS SigV4) plugs in here and nowhere else. Until it does, a
request is anonymous unless it carries the native API's Basic or Bearer
credentials; a SigV4-signed request is refused on a service with ``auth``
(it cannot be verified), and taken as anyone's on an open one, as the
native API takes every request there.

Decisions reuse :mod:`blobsvc.auth`: bucket ``b``, key ``k`` is the path
``b/k``, and a bucket as a whole is ``b/``, so prefix grants hold as they
do natively.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from blobsvc.auth import LEVELS, OPEN, AuthDenied, Authenticator, Principal
from blobsvc.http import context, exchange
from blobsvc.http.bodies import read_capped
from blobsvc.native.resources import request_body
from blobsvc.s3.errors import S3Error
from blobsvc.storage.upload import UploadData

#: Query parameters of a presigned URL, in either signature version.
_PRESIGNED = ("X-Amz-Signature", "X-Amz-Credential", "Signature", "AWSAccessKeyId")


class S3Access:
    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def identify(self) -> Principal:
        """The request's principal, kept on its context for the access log."""
        principal = self._identify()
        context.current().principal = principal
        return principal

    def _identify(self) -> Principal:
        request = exchange.request()
        if not self.auth.settings.enabled:
            return OPEN
        header = request.headers.get("Authorization", "")
        if header.startswith("AWS") or any(name in request.params for name in _PRESIGNED):
            raise S3Error("AccessDenied", "S3 signatures are not accepted by this service yet")
        # Basic and Bearer as on the native API; a signed native URL is not S3's.
        return self.auth.identify(request.headers, {}, request.method, None)

    def require(self, access: str, path: str) -> None:
        """AuthDenied unless the request's principal may ``access`` ``path``."""
        principal = context.current().principal
        assert principal is not None  # identify() ran in authorize()
        self.auth.require(principal, access, path, exchange.request().method)

    def allows(self, access: str, path: str) -> bool:
        try:
            self.require(access, path)
        except AuthDenied:
            return False
        return True

    def require_some(self, access: str) -> None:
        """Before a body naming its paths is read (DeleteObjects), or a list
        of what may be read is made (ListBuckets): the client may at least
        ``access`` somewhere."""
        principal = context.current().principal
        assert principal is not None
        if max(LEVELS[principal.access], LEVELS[self.auth.settings.anonymous]) >= LEVELS[access]:
            return
        if not principal.authenticated:
            raise AuthDenied(401, "credentials required")
        raise AuthDenied(403, f"{principal.name} may not {access}")

    def may_override_response(self) -> bool:
        """``response-*`` parameters, as S3 has them: signed requests only
        (and anyone's on an open service)."""
        principal = context.current().principal
        return not self.auth.settings.enabled or (principal is not None and principal.authenticated)

    def upload_body(self) -> tuple[UploadData, int | None]:
        """An object's bytes from the request body, and their length.

        A body framed in aws-chunked (signed chunks, trailing checksums) is
        refused before it is read: stored as sent, its framing would become
        the object's bytes.
        """
        headers = exchange.request().headers
        if (headers.get("X-Amz-Content-Sha256", "").startswith("STREAMING-")
                or "aws-chunked" in headers.get("Content-Encoding", "").lower()
                or "X-Amz-Decoded-Content-Length" in headers):
            raise S3Error("NotImplemented", "aws-chunked request bodies are not accepted yet; "
                                            "send the body as it is")
        return request_body()

    def read_document(self, limit: int) -> bytes:
        """A small request body (an XML document) whole, read only up to
        ``limit`` bytes whatever the client declares, and checked against
        the Content-MD5 sent with it."""
        raw = read_capped(limit, S3Error("MalformedXML", f"the body is larger than {limit} bytes"))
        expected = exchange.request().headers.get("Content-MD5")
        if expected is not None:
            actual = base64.b64encode(hashlib.md5(raw).digest()).decode("ascii")
            if not hmac.compare_digest(actual, expected.strip()):
                raise S3Error("BadDigest", "the body does not match its Content-MD5")
        return raw

"""Who the client of an S3 request is, and what it may do.

The one place the S3 front end meets authentication. A request signed
with an S3 key pair (SigV4 or SigV2, header or presigned URL; see
:mod:`blobsvc.s3.sigv4`) is that key pair's user, with its access and
prefix (:mod:`blobsvc.s3.credentials`); a signature that does not verify
is refused, on an open service too, since the signature also guards the
body. An unsigned request is anonymous, or the native API's Basic or
Bearer credentials. On a service without ``auth`` everyone may write, as
natively.

Every body the S3 API reads comes through here (:meth:`upload_body`,
:meth:`read_document`), decoded from aws-chunked framing and checked
against the payload hash, chunk signatures, Content-MD5 and
``x-amz-checksum-*`` the request declares, as it streams: nothing is
stored from a body that fails them.

Decisions reuse :mod:`blobsvc.auth`: bucket ``b``, key ``k`` is the path
``b/k``, and a bucket as a whole is ``b/``, so prefix grants hold as they
do natively.
"""

from __future__ import annotations

import time
from typing import Iterable, Mapping

from blobsvc.auth import LEVELS, OPEN, AuthDenied, Authenticator, Principal
from blobsvc.http import context, exchange
from blobsvc.http.bodies import RequestBody, declared_length, read_capped
from blobsvc.http.dispatch import raw_path_info
from blobsvc.s3.credentials import s3_key_pairs
from blobsvc.s3.errors import S3Error
from blobsvc.s3.payload import VerifiedBody, verify_payload
from blobsvc.s3.sigv4 import STREAMING_PAYLOADS, S3AuthError, Signed, verify
from blobsvc.storage.upload import BodySource, UploadData

#: Where a request's verified signature is kept, in its WSGI environ.
SIGNED = "blobsvc.s3.signed"


class S3Access:
    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth
        self.key_pairs = s3_key_pairs(auth.settings)

    def _secret_for(self, access_key: str) -> str | None:
        grant = self.key_pairs.get(access_key)
        return grant.secret if grant is not None else None

    def identify(self) -> Principal:
        """The request's principal, kept on its context for the access log."""
        principal = self._identify()
        context.current().principal = principal
        return principal

    def _identify(self) -> Principal:
        request = exchange.request()
        environ = request.environ
        headers: Mapping[str, str] = request.headers
        if _native_scheme(headers):
            # Basic or Bearer: the native API's credentials, not a signature.
            headers = {name: value for name, value in headers.items() if name != "Authorization"}
        try:
            signed = verify(request.method, raw_path_info(environ, request.path_info),
                            environ.get("QUERY_STRING", ""), headers, self._secret_for, time.time())
        except S3AuthError as exc:
            raise _s3_error(exc) from None
        environ[SIGNED] = signed
        if not self.auth.settings.enabled:
            return OPEN
        if signed is not None:
            grant = self.key_pairs[signed.access_key]
            return Principal(name=grant.name, access=grant.access, prefix=grant.prefix,
                             authenticated=True)
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
        """An object's bytes from the request body, checked as they stream
        into the upload's buffers, and their length (an aws-chunked body's
        decoded length)."""
        request = exchange.request()
        headers = request.headers
        content_length = declared_length(headers)
        expected = content_length
        streaming = _payload_mode(request.environ.get(SIGNED), headers) in STREAMING_PAYLOADS
        if "aws-chunked" in headers.get("Content-Encoding", "").lower() and not streaming:
            # Its framing would be stored as the object's bytes.
            raise S3Error("InvalidRequest", "an aws-chunked body needs a STREAMING-* "
                                            "x-amz-content-sha256")
        if streaming:
            decoded = headers.get("X-Amz-Decoded-Content-Length", "")
            expected = int(decoded) if decoded.isascii() and decoded.isdigit() and len(decoded) < 19 \
                else None  # verify_payload refuses it
        # Content-MD5 is the upload's to check, against the MD5 it computes
        # for the ETag: the body is not hashed with MD5 twice.
        body = self._verified(RequestBody(request.rfile, content_length), hash_md5=False)
        return _Translated(body), expected

    def read_document(self, limit: int) -> bytes:
        """A small request body (an XML document) whole, read only up to
        ``limit`` bytes whatever the client declares, and checked as an
        object's bytes are."""
        raw = read_capped(limit, S3Error("MalformedXML", f"the body is larger than {limit} bytes"))
        body = self._verified((raw,))
        try:
            return b"".join(body)
        except S3AuthError as exc:
            raise _s3_error(exc) from None

    def _verified(self, body: BodySource | Iterable[bytes], hash_md5: bool = True) -> VerifiedBody:
        """``body`` decoded and checked; the headers are judged before a byte is read."""
        request = exchange.request()
        try:
            return verify_payload(request.environ.get(SIGNED), body, request.headers, hash_md5)
        except S3AuthError as exc:
            raise _s3_error(exc) from None


class _Translated:
    """A verified body whose refusals are S3 errors (raised while it is read)."""

    def __init__(self, body: VerifiedBody) -> None:
        self._body = body

    def readinto(self, buffer: memoryview, /) -> int:
        try:
            return self._body.readinto(buffer)
        except S3AuthError as exc:
            raise _s3_error(exc) from None


def _payload_mode(signed: Signed | None, headers: Mapping[str, str]) -> str:
    return signed.payload if signed is not None else headers.get("X-Amz-Content-Sha256", "")


def _s3_error(exc: S3AuthError) -> S3Error:
    return S3Error(exc.code, exc.message, status=exc.status)


def _native_scheme(headers: Mapping[str, str]) -> bool:
    scheme = headers.get("Authorization", "").partition(" ")[0].lower()
    return scheme in ("basic", "bearer")

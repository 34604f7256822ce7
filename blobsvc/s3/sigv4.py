"""AWS Signature Version 4 as S3 checks it, on the server side.

No maintained library verifies SigV4 on a server, so the canonical request
is built here once, to the letter of S3's rules (which differ from other
AWS services'):

* the path is the one sent, each segment percent-decoded and encoded again
  the AWS way (every byte but ``A-Za-z0-9-_.~``), never normalised (``//``,
  ``.`` and ``..`` stay) and never encoded twice;
* the query is decoded and encoded the same way, sorted by name then value;
  a name without ``=`` has the empty value;
* header values are trimmed, inner runs of white space become one space.

Both forms are accepted: the ``Authorization`` header and presigned query
strings (``X-Amz-Algorithm`` …, at most seven days). Signature Version 2
is accepted too (``AWS key:signature``, ``AWSAccessKeyId``/``Expires``):
boto3 still presigns with it unless configured otherwise. A request's
time may be 15 minutes off the server's. Signatures are compared in
constant time.
Errors carry the code and status S3 itself answers with, so S3 clients
show their usual messages.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from email.utils import parsedate_tz
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import quote, unquote_to_bytes

from blobsvc.auth import canonical_int
from blobsvc.s3 import checksums, chunked

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_PAYLOADS = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: How far a request's time may be from the server's, as S3 allows.
MAX_SKEW_SECONDS = 15 * 60
#: The longest a presigned URL may live: seven days.
MAX_EXPIRES_SECONDS = 7 * 24 * 3600
_PRESIGN_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                   "X-Amz-SignedHeaders", "X-Amz-Signature")
_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_UNRESERVED = "-_.~"


class S3AuthError(Exception):
    """A refused request: S3's error ``code``, its HTTP ``status`` and a ``message``."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.status = status
        self.message = message


def signature_mismatch() -> S3AuthError:
    return S3AuthError("SignatureDoesNotMatch", 403,
                       "The request signature we calculated does not match the signature you "
                       "provided. Check your key and signing method.")


def _unknown_key() -> S3AuthError:
    return S3AuthError("InvalidAccessKeyId", 403,
                       "The AWS Access Key Id you provided does not exist in our records.")


def _skewed() -> S3AuthError:
    return S3AuthError("RequestTimeTooSkewed", 403,
                       "The difference between the request time and the current time is too large.")


def _no_date() -> S3AuthError:
    return S3AuthError("AccessDenied", 403, "AWS authentication requires a valid Date or x-amz-date header")


@dataclass(frozen=True)
class Signed:
    """A request whose signature checked out, and what its body's checks need."""

    access_key: str
    #: The x-amz-content-sha256 value: a hex SHA-256, UNSIGNED-PAYLOAD or STREAMING-….
    payload: str
    region: str = ""
    #: The request's time as signed (``20130524T000000Z``).
    timestamp: str = ""
    #: ``date/region/s3/aws4_request``.
    scope: str = ""
    #: The request's signature: the seed of an aws-chunked body's chain.
    signature: str = ""
    signing_key: bytes = field(default=b"", repr=False)
    presigned: bool = False

    def chain_signature(self, kind: str, previous: str, digest_lines: str) -> str:
        """The signature of one link of a streaming body's chain (a chunk or the trailer)."""
        string_to_sign = "\n".join([kind, self.timestamp, self.scope, previous, digest_lines])
        return hmac.new(self.signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def verify(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
           secret_for: Callable[[str], str | None], now: float | None = None) -> Signed | None:
    """Check a request's signature (SigV4, or SigV2); None when it carries none (anonymous).

    ``raw_path`` and ``raw_query`` are as sent (still percent-encoded; WSGI
    strings, whose characters are the bytes received). Header names are
    case-insensitive. ``secret_for`` maps an access key id to its secret
    (None: unknown). Raises :class:`S3AuthError` on any refusal.
    """
    now = time.time() if now is None else now
    lowered = {name.lower(): value for name, value in headers.items()}
    query = _query_pairs(raw_query)
    names = {_text(name) for name, _ in query}
    authorization = lowered.get("authorization")
    presigned = "X-Amz-Algorithm" in names
    if authorization is not None and (presigned or "Signature" in names):
        raise S3AuthError("InvalidArgument", 400,
                          "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                          "Signature query string parameter or the Authorization header should be "
                          "specified")
    if authorization is not None and authorization.startswith("AWS "):
        return _verify_v2(method, raw_path, raw_query, lowered, secret_for, now,
                          _text(_raw_bytes(authorization[4:])))
    if authorization is not None:
        request = _from_header(_text(_raw_bytes(authorization)), lowered)
    elif presigned:
        request = _from_query(query, lowered)
    elif "Signature" in names or "AWSAccessKeyId" in names:
        return _verify_v2(method, raw_path, raw_query, lowered, secret_for, now, None)
    else:
        return None
    secret = secret_for(request.access_key)
    if secret is None:
        raise _unknown_key()
    _check_time(request, now)
    _check_signed_headers(request, lowered)
    canonical = canonical_request(method, raw_path, _without_signature(query, request.presigned),
                                  lowered, request.signed_headers, request.payload)
    key = signing_key(secret, request.date, request.region)
    string_to_sign = "\n".join([ALGORITHM, request.timestamp, request.scope,
                                hashlib.sha256(canonical).hexdigest()])
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), request.signature.encode("utf-8", "surrogateescape")):
        raise signature_mismatch()
    return Signed(access_key=request.access_key, payload=request.payload, region=request.region,
                  timestamp=request.timestamp, scope=request.scope, signature=expected,
                  signing_key=key, presigned=request.presigned)


@dataclass(frozen=True)
class _Claimed:
    """What a request says about its signature, before it is checked."""

    access_key: str
    date: str
    region: str
    timestamp: str
    signed_headers: tuple[str, ...]
    signature: str
    payload: str
    presigned: bool
    expires: int = 0

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/s3/aws4_request"


def _from_header(authorization: str, headers: Mapping[str, str]) -> _Claimed:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise S3AuthError("InvalidArgument", 400, "Unsupported Authorization Type")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, equals, value = part.strip().partition("=")
        if not equals or name in fields:
            raise _malformed(False, f"the component '{part.strip()}' is malformed")
        fields[name] = value
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if name not in fields]
    if missing:
        raise _malformed(False, f"missing {', '.join(missing)}")
    timestamp = _request_timestamp(headers)
    payload = headers.get("x-amz-content-sha256")
    if payload is None:
        raise S3AuthError("InvalidRequest", 400,
                          "Missing required header for this request: x-amz-content-sha256")
    return _claimed(fields["Credential"], timestamp, fields["SignedHeaders"], fields["Signature"],
                    _checked_payload(payload), presigned=False)


def _from_query(query: list[tuple[bytes, bytes]], headers: Mapping[str, str]) -> _Claimed:
    params: dict[str, str] = {}
    for raw_name, raw_value in query:
        name, value = _text(raw_name), _text(raw_value)
        if name in _PRESIGN_PARAMS or name == "X-Amz-Security-Token":
            if name in params:
                raise _malformed(True, f"{name} is given more than once")
            params[name] = value
    if any(name not in params for name in _PRESIGN_PARAMS):
        raise _malformed(True, "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                               "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
                               "and X-Amz-Expires parameters.", prefix=False)
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise _malformed(True, 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"', prefix=False)
    expires = params["X-Amz-Expires"]
    if not re.fullmatch(r"[0-9]{1,12}", expires):
        raise _malformed(True, "X-Amz-Expires should be a number", prefix=False)
    if int(expires) > MAX_EXPIRES_SECONDS:
        raise _malformed(True, "X-Amz-Expires must be less than a week (in seconds) that is 604800",
                         prefix=False)
    if not _AMZ_DATE.fullmatch(params["X-Amz-Date"]):
        raise _malformed(True, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
                         prefix=False)
    payload = _checked_payload(headers.get("x-amz-content-sha256", UNSIGNED_PAYLOAD))
    return _claimed(params["X-Amz-Credential"], params["X-Amz-Date"], params["X-Amz-SignedHeaders"],
                    params["X-Amz-Signature"], payload, presigned=True, expires=int(expires))


def _claimed(credential: str, timestamp: str, signed_headers: str, signature: str, payload: str,
             presigned: bool, expires: int = 0) -> _Claimed:
    """Check the credential scope (``key/date/region/s3/aws4_request``) and the header list."""
    parts = credential.rsplit("/", 4)
    if len(parts) != 5 or not parts[0]:
        raise _malformed(presigned, f"the Credential '{credential}' is not "
                                    "ACCESS_KEY/YYYYMMDD/REGION/s3/aws4_request")
    access_key, date, region, service, terminator = parts
    if terminator != "aws4_request":
        raise _malformed(presigned, f"incorrect terminal '{terminator}'. This endpoint uses 'aws4_request'.")
    if service != "s3":
        raise _malformed(presigned, f"incorrect service '{service}'. This endpoint belongs to 's3'.")
    if not region or not re.fullmatch(r"[0-9]{8}", date):
        raise _malformed(presigned, f"the Credential '{credential}' has no valid date or region")
    if date != timestamp[:8]:
        raise _malformed(presigned, f"Invalid credential date '{date}'. This date is not the same "
                                    f"as X-Amz-Date: '{timestamp[:8]}'.")
    names = tuple(signed_headers.split(";"))
    if not signed_headers or any(not name or name != name.lower() for name in names):
        raise _malformed(presigned, "SignedHeaders must list lower-case header names separated by ';'")
    return _Claimed(access_key=access_key, date=date, region=region, timestamp=timestamp,
                    signed_headers=names, signature=signature, payload=payload, presigned=presigned,
                    expires=expires)


def _malformed(presigned: bool, detail: str, prefix: bool = True) -> S3AuthError:
    if presigned:
        return S3AuthError("AuthorizationQueryParametersError", 400, detail)
    message = f"The authorization header is malformed; {detail}" if prefix else detail
    return S3AuthError("AuthorizationHeaderMalformed", 400, message)


def _request_timestamp(headers: Mapping[str, str]) -> str:
    """The request's time as ``YYYYMMDDTHHMMSSZ``: from x-amz-date, else from Date."""
    amz_date = headers.get("x-amz-date")
    if amz_date is not None:
        if _AMZ_DATE.fullmatch(amz_date.strip()) and _epoch(amz_date.strip()) is not None:
            return amz_date.strip()
    elif headers.get("date"):
        parsed = parsedate_tz(headers["date"])
        if parsed is not None:
            seconds = calendar.timegm(parsed[:9]) - (parsed[9] or 0)
            return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))
    raise _no_date()


def _epoch(timestamp: str) -> int | None:
    match = _AMZ_DATE.fullmatch(timestamp)
    if match is None:
        return None
    try:
        return calendar.timegm(time.strptime(timestamp, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return None


def _checked_payload(value: str) -> str:
    if value in (UNSIGNED_PAYLOAD, *STREAMING_PAYLOADS) or _HEX_SHA256.fullmatch(value):
        return value
    raise S3AuthError("InvalidArgument", 400,
                      "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "
                      "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-UNSIGNED-PAYLOAD-TRAILER "
                      "or a valid sha256 value.")


def _check_time(request: _Claimed, now: float) -> None:
    signed_at = _epoch(request.timestamp)
    if signed_at is None:
        raise _malformed(request.presigned, f"X-Amz-Date '{request.timestamp}' is not a valid time")
    if request.presigned:
        if signed_at - now > MAX_SKEW_SECONDS:
            raise S3AuthError("AccessDenied", 403, "Request is not valid yet")
        if now > signed_at + request.expires:
            raise S3AuthError("AccessDenied", 403, "Request has expired")
    elif abs(now - signed_at) > MAX_SKEW_SECONDS:
        raise _skewed()


def _check_signed_headers(request: _Claimed, headers: Mapping[str, str]) -> None:
    """Host must be signed, and so must every x-amz-* header sent (as S3 requires)."""
    signed = set(request.signed_headers)
    if "host" not in signed:
        raise S3AuthError("AccessDenied", 403, "There were headers present in the request which "
                                               "were not signed: host")
    unsigned = sorted(name for name in headers if name.startswith("x-amz-") and name not in signed)
    if unsigned:
        raise S3AuthError("AccessDenied", 403, "There were headers present in the request which "
                                               f"were not signed: {', '.join(unsigned)}")


def signing_key(secret: str, date: str, region: str) -> bytes:
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def canonical_request(method: str, raw_path: str, query: list[tuple[bytes, bytes]],
                      headers: Mapping[str, str], signed_headers: tuple[str, ...], payload: str) -> bytes:
    """S3's canonical request, as bytes (header values are the bytes received)."""
    lines = [_raw_bytes(method), canonical_path(raw_path).encode(),
             canonical_query(query).encode()]
    for name in signed_headers:
        lines.append(name.encode() + b":" + _trim(_raw_bytes(headers.get(name, ""))))
    lines += [b"", ";".join(signed_headers).encode(), payload.encode()]
    return b"\n".join(lines)


def canonical_path(raw_path: str) -> str:
    """The path as S3 signs it: each segment decoded and encoded once, nothing normalised."""
    segments = _raw_bytes(raw_path).split(b"/")
    return "/".join(_encode(unquote_to_bytes(segment)) for segment in segments) or "/"


def canonical_query(query: list[tuple[bytes, bytes]]) -> str:
    """Pairs encoded the AWS way and sorted by name, then value (repeated names keep every value)."""
    encoded = sorted((_encode(name), _encode(value)) for name, value in query)
    return "&".join(f"{name}={value}" for name, value in encoded)


def _query_pairs(raw_query: str) -> list[tuple[bytes, bytes]]:
    """The query's (name, value) pairs, percent-decoded (``+`` stays a plus)."""
    pairs = []
    for part in _raw_bytes(raw_query).split(b"&"):
        if part:
            name, _, value = part.partition(b"=")
            pairs.append((unquote_to_bytes(name), unquote_to_bytes(value)))
    return pairs


def _without_signature(query: list[tuple[bytes, bytes]], presigned: bool) -> list[tuple[bytes, bytes]]:
    return [pair for pair in query if not (presigned and pair[0] == b"X-Amz-Signature")]


def _text(raw: bytes) -> str:
    """Bytes a client sent as text (UTF-8; stray bytes kept as surrogates, never matching)."""
    return raw.decode("utf-8", "surrogateescape")


def _encode(raw: bytes) -> str:
    return quote(raw, safe=_UNRESERVED)


def _raw_bytes(text: str | bytes) -> bytes:
    """A WSGI string's bytes (latin-1); text beyond latin-1 is taken as UTF-8."""
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _trim(value: bytes) -> bytes:
    return b" ".join(value.split())


# --- Signature Version 2 --------------------------------------------------------------------------
# Still what boto3 presigns with unless told 's3v4', and what older tools send.

#: The query parameters SigV2 signs as part of the resource (S3's list).
_V2_SUBRESOURCES = frozenset({
    "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory", "lifecycle",
    "location", "logging", "metrics", "notification", "object-lock", "partNumber", "policy",
    "replication", "requestPayment", "response-cache-control", "response-content-disposition",
    "response-content-encoding", "response-content-language", "response-content-type",
    "response-expires", "restore", "select", "select-type", "storageClass", "tagging", "torrent",
    "uploadId", "uploads", "versionId", "versioning", "versions", "website",
})


def _verify_v2(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
               secret_for: Callable[[str], str | None], now: float, credential: str | None) -> Signed:
    """Check a SigV2 signature: ``Authorization: AWS key:signature`` or a query with Expires."""
    query = [(_text(unquote_to_bytes(name)), _text(unquote_to_bytes(value)) if equals else None)
             for name, equals, value in (part.partition(b"=") for part in _raw_bytes(raw_query).split(b"&")
                                         if part)]
    amz = {name: " ".join(value.split()) for name, value in headers.items() if name.startswith("x-amz-")}
    if credential is not None:
        access_key, colon, signature = credential.strip().rpartition(":")
        if not colon or not access_key:
            raise S3AuthError("InvalidArgument", 400,
                              "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature")
        when = "" if "x-amz-date" in amz else headers.get("date", "").strip()
        _check_v2_time(amz.get("x-amz-date", when), now)
        content_type = headers.get("content-type", "")
    else:
        params = _v2_query_params(query)
        access_key, signature, when = params["AWSAccessKeyId"], params["Signature"], params["Expires"]
        _check_v2_expiry(when, now)
        amz.update((name.lower(), value or "") for name, value in query if name.lower().startswith("x-amz-"))
        content_type = headers.get("content-type", params.get("content-type", ""))
    secret = secret_for(access_key)
    if secret is None:
        raise _unknown_key()
    subresources = sorted((name, value) for name, value in query if name in _V2_SUBRESOURCES)
    resource = canonical_path(raw_path)
    if subresources:
        resource += "?" + "&".join(name if value is None else f"{name}={value}"
                                   for name, value in subresources)
    string_to_sign = "\n".join([method, headers.get("content-md5", "").strip(), content_type.strip(), when,
                                *(f"{name}:{amz[name]}" for name in sorted(amz)), resource])
    digest = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8", "surrogateescape"),
                      hashlib.sha1).digest()
    if not hmac.compare_digest(base64.b64encode(digest), signature.encode("utf-8", "surrogateescape")):
        raise signature_mismatch()
    payload = headers.get("x-amz-content-sha256", "")
    if not _HEX_SHA256.fullmatch(payload):
        payload = UNSIGNED_PAYLOAD  # SigV2 does not sign the body; a stated hash is still checked
    return Signed(access_key=access_key, payload=payload, presigned=credential is None)


def _v2_query_params(query: list[tuple[str, str | None]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in query:
        if name in ("AWSAccessKeyId", "Signature", "Expires", "content-type"):
            if name in params:
                raise S3AuthError("InvalidArgument", 400, f"{name} is given more than once")
            params[name] = value or ""
    if not all(params.get(name) for name in ("AWSAccessKeyId", "Signature", "Expires")):
        raise S3AuthError("AccessDenied", 403, "Query-string authentication requires the Signature, "
                                               "Expires and AWSAccessKeyId parameters")
    return params


def _check_v2_time(date: str, now: float) -> None:
    parsed = parsedate_tz(date) if date else None
    if parsed is None:
        raise _no_date()
    if abs(calendar.timegm(parsed[:9]) - (parsed[9] or 0) - now) > MAX_SKEW_SECONDS:
        raise _skewed()


def _check_v2_expiry(expires: str, now: float) -> None:
    expires_at = canonical_int(expires)
    if expires_at is None:
        raise S3AuthError("AccessDenied", 403, "Expires must be a number of seconds since the epoch")
    if now > expires_at:
        raise S3AuthError("AccessDenied", 403, "Request has expired")
    if expires_at - now > MAX_EXPIRES_SECONDS:
        raise S3AuthError("AuthorizationQueryParametersError", 400,
                          "Expires must be less than a week (in seconds) from now, that is 604800")


# --- the body -----------------------------------------------------------------------------------

class VerifiedBody(Iterator[bytes]):
    """The object's bytes, checked as they pass; refusals come as :class:`S3AuthError`.

    The last piece is held back until every check has passed, so a caller
    that commits its write only once the iterator ends never stores a
    refused body. ``checksums`` then maps each ``x-amz-checksum-*``
    algorithm the client sent (header or trailer) to its verified value.
    """

    def __init__(self, pieces: Iterator[bytes], checksums: dict[str, str]) -> None:
        self._pieces = pieces
        #: Filled in when the body has been read and checked.
        self.checksums = checksums

    def __next__(self) -> bytes:
        return next(self._pieces)


class _Digests:
    """Every digest a body is checked against, fed once per piece."""

    def __init__(self) -> None:
        self.sha256: Any = None
        self.md5: Any = None
        self.md5_expected = b""
        self.checksums: dict[str, checksums.Checksum] = {}
        self.length = 0

    def update(self, piece: bytes) -> None:
        self.length += len(piece)
        for digest in (self.sha256, self.md5, *self.checksums.values()):
            if digest is not None:
                digest.update(piece)


def verify_payload(signed: Signed | None, body: Iterator[bytes],
                   headers: Mapping[str, str], hash_md5: bool = True) -> VerifiedBody:
    """The object's bytes from the raw request body, checked as the request declares.

    A hex x-amz-content-sha256 is checked against the body; a STREAMING-*
    body is decoded from aws-chunked framing, every chunk signature and the
    trailer signature checked, and its length held to
    x-amz-decoded-content-length. Content-MD5 and x-amz-checksum-* (header
    or trailer) are checked too. Memory stays flat: pieces pass through.

    Without ``hash_md5`` a Content-MD5 is only judged well-formed here: the
    caller checks it against the MD5 it computes anyway (an upload's, for
    its ETag), so no body is hashed with MD5 twice.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    mode = signed.payload if signed is not None else _checked_payload(
        lowered.get("x-amz-content-sha256", UNSIGNED_PAYLOAD))
    digests = _Digests()
    expected = _declared_checksums(lowered, digests, hash_md5)
    if _HEX_SHA256.fullmatch(mode):
        digests.sha256 = hashlib.sha256()
    verified: dict[str, str] = {}
    if mode in STREAMING_PAYLOADS:
        # The headers are checked now, before the caller reads or writes anything.
        framing = _streaming_framing(signed, mode, lowered, expected, digests)
        pieces = _decoded(signed, framing, body, digests, expected)
    else:
        pieces = _counted(body, digests)

    def check() -> None:
        if digests.sha256 is not None and digests.sha256.hexdigest() != mode:
            raise S3AuthError("XAmzContentSHA256Mismatch", 400,
                              "The provided 'x-amz-content-sha256' header does not match what was computed.")
        _check_digests(digests, expected)
        verified.update(expected)

    return VerifiedBody(_held_back(pieces, check), verified)


def _counted(body: Iterator[bytes], digests: _Digests) -> Iterator[bytes]:
    for piece in body:
        if piece:
            digests.update(piece)
            yield piece


def _held_back(pieces: Iterator[bytes], check: Callable[[], None]) -> Iterator[bytes]:
    """``pieces``, the last one only after ``check`` has passed."""
    previous = None
    for piece in pieces:
        if previous is not None:
            yield previous
        previous = piece
    check()
    if previous is not None:
        yield previous


def _declared_checksums(headers: Mapping[str, str], digests: _Digests,
                        hash_md5: bool = True) -> dict[str, str]:
    """The checksums sent as headers (algorithm -> value); digests set up for
    them and (if ``hash_md5``) Content-MD5, which is refused here when malformed."""
    expected: dict[str, str] = {}
    for name, value in headers.items():
        algorithm = checksums.algorithm_of(name)
        if algorithm is None:
            continue
        if not checksums.is_well_formed(algorithm, value.strip()):
            raise S3AuthError("InvalidRequest", 400, f"Value for {name} header is invalid.")
        expected[algorithm] = value.strip()
    if len(expected) > 1:
        raise S3AuthError("InvalidRequest", 400, "Expecting a single x-amz-checksum- header. "
                                                 "Multiple checksum Types are not allowed.")
    for algorithm in expected:
        digests.checksums[algorithm] = _new_checksum(algorithm)
    md5 = headers.get("content-md5")
    if md5 is not None:
        try:
            digests.md5_expected = base64.b64decode(md5.strip(), validate=True)
        except (binascii.Error, ValueError):
            digests.md5_expected = b""
        if len(digests.md5_expected) != 16:
            raise S3AuthError("InvalidDigest", 400, "The Content-MD5 you specified was not valid.")
        if hash_md5:
            digests.md5 = hashlib.md5(usedforsecurity=False)
    return expected


def _new_checksum(algorithm: str) -> checksums.Checksum:
    try:
        return checksums.new_checksum(algorithm)
    except ValueError:
        raise S3AuthError("InvalidRequest", 400, f"The {algorithm} checksum is not supported by this "
                                                 f"server (supported: {', '.join(checksums.AVAILABLE)}).")


def _check_digests(digests: _Digests, expected: Mapping[str, str]) -> None:
    if digests.md5 is not None and digests.md5.digest() != digests.md5_expected:
        raise S3AuthError("BadDigest", 400, "The Content-MD5 you specified did not match what we received.")
    for algorithm, value in expected.items():
        if digests.checksums[algorithm].b64digest() != value:
            raise S3AuthError("BadDigest", 400,
                              f"The {algorithm} you specified did not match the calculated checksum.")


@dataclass(frozen=True)
class _Framing:
    """What the headers of an aws-chunked upload announce."""

    mode: str
    #: x-amz-decoded-content-length: the object's size.
    length: int
    #: The algorithm of the checksum trailer, if one is announced.
    trailer: str | None

    @property
    def signed_chunks(self) -> bool:
        return self.mode != STREAMING_UNSIGNED_TRAILER


def _streaming_framing(signed: Signed | None, mode: str, headers: Mapping[str, str],
                       expected: dict[str, str], digests: _Digests) -> _Framing:
    declared = canonical_int(headers.get("x-amz-decoded-content-length", ""), max_digits=16)
    if declared is None:
        raise S3AuthError("MissingContentLength", 411,
                          "You must provide the x-amz-decoded-content-length HTTP header.")
    if mode != STREAMING_UNSIGNED_TRAILER and (signed is None or not signed.signing_key):
        raise S3AuthError("AccessDenied", 403, f"{mode} needs a signed request")
    return _Framing(mode, declared, _declared_trailer(headers, mode, expected, digests))


def _decoded(signed: Signed | None, framing: _Framing, body: Iterator[bytes],
             digests: _Digests, expected: dict[str, str]) -> Iterator[bytes]:
    """The object's bytes out of an aws-chunked body, each chunk's signature checked."""
    declared, signed_chunks, trailer = framing.length, framing.signed_chunks, framing.trailer
    reader = chunked.ChunkedReader(body)
    previous = signed.signature if signed is not None else ""
    try:
        while True:
            header = reader.next_chunk()
            if digests.length + header.size > declared:
                raise S3AuthError("InvalidRequest", 400,
                                  "The chunks hold more bytes than x-amz-decoded-content-length says.")
            chunk_hash = hashlib.sha256()
            for piece in reader.chunk_data(header.size):
                digests.update(piece)
                if signed_chunks:
                    chunk_hash.update(piece)
                yield piece
            if signed_chunks:
                assert signed is not None
                previous = _check_link(signed, "AWS4-HMAC-SHA256-PAYLOAD", previous, header.signature,
                                       f"{EMPTY_SHA256}\n{chunk_hash.hexdigest()}")
            if header.size == 0:
                break
        if digests.length != declared:
            raise S3AuthError("IncompleteBody", 400, "You did not provide the number of bytes specified "
                                                     "by the x-amz-decoded-content-length HTTP header.")
        _check_trailers(signed, framing.mode, reader.trailers(expected=trailer is not None), trailer,
                        previous, expected)
        reader.finish()
    except chunked.FramingError as exc:
        if exc.incomplete:
            raise S3AuthError("IncompleteBody", 400, f"The aws-chunked body is incomplete: {exc}")
        raise S3AuthError("InvalidRequest", 400, f"The aws-chunked body is malformed: {exc}")


def _declared_trailer(headers: Mapping[str, str], mode: str, expected: dict[str, str],
                      digests: _Digests) -> str | None:
    """The checksum trailer x-amz-trailer announces (its algorithm), if any."""
    names = [name.strip().lower() for name in headers.get("x-amz-trailer", "").split(",") if name.strip()]
    if not names:
        if mode != STREAMING_SIGNED:
            raise S3AuthError("InvalidRequest", 400, f"{mode} needs an x-amz-trailer header")
        return None
    if mode == STREAMING_SIGNED:
        raise S3AuthError("InvalidRequest", 400,
                          f"{mode} carries no trailers; use {STREAMING_SIGNED_TRAILER}")
    algorithm = checksums.algorithm_of(names[0])
    if len(names) != 1 or algorithm is None:
        raise S3AuthError("InvalidRequest", 400, "x-amz-trailer must name one x-amz-checksum-* header")
    if expected:
        raise S3AuthError("InvalidRequest", 400, "Expecting a single x-amz-checksum- header. "
                                                 "Multiple checksum Types are not allowed.")
    digests.checksums[algorithm] = _new_checksum(algorithm)
    return algorithm


def _check_trailers(signed: Signed | None, mode: str, trailers: list[tuple[str, str]],
                    algorithm: str | None, previous: str, expected: dict[str, str]) -> None:
    """The trailers must be the announced checksum (and, if signed, its signature)."""
    signature = [value for name, value in trailers if name == "x-amz-trailer-signature"]
    values = [(name, value) for name, value in trailers if name != "x-amz-trailer-signature"]
    if algorithm is None:
        if trailers:
            raise S3AuthError("InvalidRequest", 400, "The body has trailers x-amz-trailer did not announce.")
        return
    header = checksums.header_name(algorithm)
    if [name for name, _ in values] != [header]:
        raise S3AuthError("IncompleteBody", 400, f"The body has no {header} trailer.")
    value = values[0][1]
    if not checksums.is_well_formed(algorithm, value):
        raise S3AuthError("InvalidRequest", 400, f"Value for {header} trailing header is invalid.")
    if mode == STREAMING_SIGNED_TRAILER:
        assert signed is not None
        if len(signature) != 1:
            raise S3AuthError("SignatureDoesNotMatch", 403, "The trailer has no x-amz-trailer-signature.")
        canonical = f"{header}:{value}\n".encode()
        _check_link(signed, "AWS4-HMAC-SHA256-TRAILER", previous, signature[0],
                    hashlib.sha256(canonical).hexdigest())
    elif signature:
        raise S3AuthError("InvalidRequest", 400, f"{mode} has no trailer signature.")
    expected[algorithm] = value


def _check_link(signed: Signed, kind: str, previous: str, given: str | None, digest_lines: str) -> str:
    """Check one signature of a streaming body's chain; the next link chains on from it."""
    expected = signed.chain_signature(kind, previous, digest_lines)
    if given is None or not hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape")):
        raise signature_mismatch()
    return expected

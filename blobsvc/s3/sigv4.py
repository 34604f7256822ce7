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
import calendar
import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from email.utils import parsedate_tz
from typing import Callable, Mapping
from urllib.parse import quote, unquote_to_bytes

from blobsvc.auth import canonical_int

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
HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
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
                    checked_payload(payload), presigned=False)


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
    payload = checked_payload(headers.get("x-amz-content-sha256", UNSIGNED_PAYLOAD))
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


def checked_payload(value: str) -> str:
    if value in (UNSIGNED_PAYLOAD, *STREAMING_PAYLOADS) or HEX_SHA256.fullmatch(value):
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
    if not HEX_SHA256.fullmatch(payload):
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

"""SigV4 verification against the reference signer and AWS's published examples.

Requests are made by a real boto3 client whose sending is cut short: the
request botocore would put on the wire (URL, headers, body) is captured
and handed to :func:`blobsvc.s3.sigv4.verify` exactly as the WSGI
environment would carry it. Each accepted request is then changed in one
place and must be refused with the error code S3 uses.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import io
import time
import tracemalloc
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import boto3
import hypothesis.strategies as st
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from hypothesis import HealthCheck, given, settings

from blobsvc.s3 import checksums
from blobsvc.s3.payload import verify_payload
from blobsvc.s3.sigv4 import S3AuthError, Signed, canonical_path, verify

KEY, SECRET = "blob-user", "blob-user-secret-0123456789"
SECRETS = {KEY: SECRET, "other-user": "other-user-secret-0123456789"}

#: The example credentials and time of AWS's S3 SigV4 documentation.
AWS_KEY, AWS_SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_NOW = calendar.timegm((2013, 5, 24, 0, 0, 0))
AWS_HOST = "examplebucket.s3.amazonaws.com"
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@dataclass(frozen=True)
class Wire:
    """A request as the server receives it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""

    def verify(self, secrets: dict[str, str] | None = None, now: float | None = None) -> Signed | None:
        table = SECRETS if secrets is None else secrets
        return verify(self.method, self.path, self.query, self.headers, table.get,
                      time.time() if now is None else now)

    def with_header(self, name: str, value: str | None) -> Wire:
        headers = {k: v for k, v in self.headers.items() if k.lower() != name.lower()}
        if value is not None:
            headers[name] = value
        return replace(self, headers=headers)


def wire_from(request: AWSPreparedRequest) -> Wire:
    url = urlsplit(request.url)
    headers = {name: value.decode("latin-1") if isinstance(value, bytes) else value
               for name, value in request.headers.items()}
    body = request.body
    if hasattr(body, "read"):
        body = body.read()
    return Wire(request.method, url.path, url.query, headers, body or b"")


class _NoBody:
    def stream(self, **_: Any) -> Any:
        yield b""


def boto_client(https: bool = False, key: str = KEY, secret: str = SECRET, signature_version: str = "s3v4",
                **s3_config: Any) -> tuple[Any, list[AWSPreparedRequest]]:
    """A boto3 S3 client whose requests are captured instead of sent.

    SigV4 is asked for explicitly: for presigned URLs botocore would
    otherwise still use SigV2.
    """
    client = boto3.client(
        "s3", endpoint_url=("https" if https else "http") + "://127.0.0.1:9000",
        aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1",
        config=Config(s3={"addressing_style": "path", **s3_config}, retries={"max_attempts": 0},
                      signature_version=signature_version))
    sent: list[AWSPreparedRequest] = []

    def capture(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {}, _NoBody())

    client.meta.events.register("before-send.s3.*", capture)
    return client, sent


def boto_wire(call: Callable[[Any], Any], https: bool = False, **kwargs: Any) -> Wire:
    client, sent = boto_client(https=https, **kwargs)
    try:
        call(client)
    except Exception:  # noqa: BLE001 - the empty canned response may not parse; the request is what counts
        pass
    assert sent, "boto3 sent nothing"
    return wire_from(sent[-1])


def presigned_wire(method: str, params: dict[str, Any], expires: int = 3600,
                   http_method: str = "GET", **kwargs: Any) -> Wire:
    client, _ = boto_client(**kwargs)
    url = urlsplit(client.generate_presigned_url(method, Params=params, ExpiresIn=expires))
    return Wire(http_method, url.path, url.query, {"Host": url.netloc})


def refused(wire: Wire, code: str, status: int | None = None, **kwargs: Any) -> S3AuthError:
    with pytest.raises(S3AuthError) as caught:
        wire.verify(**kwargs)
    assert caught.value.code == code, caught.value.message
    if status is not None:
        assert caught.value.status == status
    return caught.value


def aws_auth(signed_headers: str, signature: str) -> str:
    return (f"AWS4-HMAC-SHA256 Credential={AWS_KEY}/20130524/us-east-1/s3/aws4_request,"
            f"SignedHeaders={signed_headers},Signature={signature}")


# --- AWS's published examples -------------------------------------------------------------------

AWS_EXAMPLES = {
    "GET Object": Wire("GET", "/test.txt", "", {
        "Host": AWS_HOST, "Range": "bytes=0-9", "x-amz-content-sha256": EMPTY,
        "x-amz-date": "20130524T000000Z",
        "Authorization": aws_auth("host;range;x-amz-content-sha256;x-amz-date",
                                  "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")}),
    "PUT Object": Wire("PUT", "/test%24file.text", "", {
        "Host": AWS_HOST, "Date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        "Authorization": aws_auth("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                                  "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")},
        b"Welcome to Amazon S3."),
    "GET Bucket Lifecycle": Wire("GET", "/", "lifecycle", {
        "Host": AWS_HOST, "x-amz-content-sha256": EMPTY, "x-amz-date": "20130524T000000Z",
        "Authorization": aws_auth("host;x-amz-content-sha256;x-amz-date",
                                  "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")}),
    "GET Bucket (List Objects)": Wire("GET", "/", "max-keys=2&prefix=J", {
        "Host": AWS_HOST, "x-amz-content-sha256": EMPTY, "x-amz-date": "20130524T000000Z",
        "Authorization": aws_auth("host;x-amz-content-sha256;x-amz-date",
                                  "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")}),
}
#: "Authenticating Requests: Using Query Parameters": GET /test.txt for 86400 s.
AWS_PRESIGNED = Wire("GET", "/test.txt", (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"),
    {"Host": AWS_HOST})
AWS_SECRETS = {AWS_KEY: AWS_SECRET}


@pytest.mark.parametrize("name", sorted(AWS_EXAMPLES))
def test_the_documented_header_examples_verify_with_their_published_signatures(name: str) -> None:
    example = AWS_EXAMPLES[name]
    signed = example.verify(AWS_SECRETS, AWS_NOW)
    assert signed is not None
    assert signed.access_key == AWS_KEY
    assert signed.signature in example.headers["Authorization"]
    assert signed.payload == example.headers["x-amz-content-sha256"]
    assert (signed.region, signed.scope) == ("us-east-1", "20130524/us-east-1/s3/aws4_request")


@pytest.mark.parametrize("name", sorted(AWS_EXAMPLES))
def test_the_documented_examples_are_refused_with_another_secret(name: str) -> None:
    refused(AWS_EXAMPLES[name], "SignatureDoesNotMatch", 403,
            secrets={AWS_KEY: AWS_SECRET.replace("K7", "K8")}, now=AWS_NOW)


def test_the_documented_presigned_url_verifies_during_its_day_only() -> None:
    for offset in (0, 3600, 86400):
        signed = AWS_PRESIGNED.verify(AWS_SECRETS, AWS_NOW + offset)
        assert signed is not None and signed.presigned and signed.payload == "UNSIGNED-PAYLOAD"
    error = refused(AWS_PRESIGNED, "AccessDenied", 403, secrets=AWS_SECRETS, now=AWS_NOW + 86401)
    assert error.message == "Request has expired"


# --- botocore's signer: accepted as sent ----------------------------------------------------------

KEYS = [
    "plain.txt",
    "dir/with space/and+plus~tilde",
    "unicode/é-ß-日本語-😀",
    "reserved/!'()*;:@&=$,[]#?%",
    "double//slash/./dot/../dots",
    "trailing/",
]


@pytest.mark.parametrize("key", KEYS)
def test_botocore_signed_object_requests_verify(key: str) -> None:
    for call in (lambda c: c.get_object(Bucket="bucket", Key=key, Range="bytes=0-9"),
                 lambda c: c.put_object(Bucket="bucket", Key=key, Body=b"object bytes",
                                        Metadata={"colour": "blue  and   green"}),
                 lambda c: c.head_object(Bucket="bucket", Key=key),
                 lambda c: c.delete_object(Bucket="bucket", Key=key)):
        wire = boto_wire(call)
        signed = wire.verify()
        assert signed is not None and signed.access_key == KEY


def test_a_key_is_signed_as_one_encoding_of_its_bytes() -> None:
    wire = boto_wire(lambda c: c.get_object(Bucket="b", Key="dir/a b+c~é"))
    assert wire.path == "/b/dir/a%20b%2Bc~%C3%A9"
    assert canonical_path(wire.path) == wire.path
    # The same bytes sent with other (valid) escapes sign the same.
    assert canonical_path("/b/dir/a%20b%2bc%7e%c3%a9") == wire.path
    assert canonical_path("/b/dir/a%20b+c~%C3%A9") == wire.path


def test_s3_paths_are_not_normalised_nor_encoded_twice() -> None:
    assert canonical_path("/b/a//b/./c/../d") == "/b/a//b/./c/../d"
    assert canonical_path("/b/100%25") == "/b/100%25"
    assert canonical_path("/b/a%2Fb") == "/b/a%2Fb"  # an escaped slash stays inside its segment
    wire = boto_wire(lambda c: c.get_object(Bucket="b", Key="x/./y"))
    refused(replace(wire, path="/b/x/y"), "SignatureDoesNotMatch")


@pytest.mark.parametrize("params", [
    {"Prefix": "with space+plus~tilde", "Delimiter": "/"},
    {"Prefix": "é/日本", "StartAfter": "a=b&c"},
    {"Prefix": "", "MaxKeys": 7},
])
def test_botocore_signed_listings_verify_with_their_queries(params: dict[str, Any]) -> None:
    wire = boto_wire(lambda c: c.list_objects_v2(Bucket="bucket", **params))
    assert wire.query
    assert wire.verify() is not None


def test_query_parameters_are_sorted_and_repeated_or_empty_ones_kept() -> None:
    client, sent = boto_client()
    client.meta.events.register(
        "before-sign.s3.ListObjectsV2",
        lambda request, **_: setattr(request, "url", request.url + "&z=&a=2&a=1&uploads"))
    try:
        client.list_objects_v2(Bucket="bucket", Prefix="p")
    except Exception:  # noqa: BLE001 - the canned response is empty
        pass
    wire = wire_from(sent[-1])
    assert "&a=2&a=1&uploads" in wire.query
    assert wire.verify() is not None
    refused(replace(wire, query=wire.query.replace("a=2&a=1", "a=2&a=3")), "SignatureDoesNotMatch")
    refused(replace(wire, query=wire.query.replace("&uploads", "")), "SignatureDoesNotMatch")


def test_a_request_without_any_signature_is_anonymous() -> None:
    assert Wire("GET", "/b/k", "", {"Host": "h"}).verify() is None
    assert Wire("GET", "/b/k", "prefix=x&X-Amz-Date=20130524T000000Z", {"Host": "h"}).verify() is None


def test_a_payload_signed_put_carries_its_hash_for_the_body_check() -> None:
    wire = boto_wire(lambda c: c.put_object(Bucket="b", Key="k", Body=b"hello"))
    signed = wire.verify()
    assert signed is not None
    assert signed.payload == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


def test_an_https_streaming_put_is_signed_as_a_trailer_upload() -> None:
    wire = boto_wire(lambda c: c.put_object(Bucket="b", Key="k", Body=io.BytesIO(b"hello world")),
                     https=True)
    signed = wire.verify()
    assert signed is not None and signed.payload == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


# --- one change, one refusal --------------------------------------------------------------------

@pytest.fixture
def put_wire() -> Wire:
    return boto_wire(lambda c: c.put_object(Bucket="bucket", Key="dir/key.txt", Body=b"payload",
                                            ContentType="text/plain", Metadata={"m": "v"}))


def test_changing_the_method_is_refused(put_wire: Wire) -> None:
    assert put_wire.verify() is not None
    refused(replace(put_wire, method="POST"), "SignatureDoesNotMatch", 403)


def test_changing_the_path_is_refused(put_wire: Wire) -> None:
    refused(replace(put_wire, path="/bucket/dir/key.txT"), "SignatureDoesNotMatch")
    refused(replace(put_wire, path="/bucket/dir/key.txt/"), "SignatureDoesNotMatch")


def test_adding_a_query_parameter_is_refused(put_wire: Wire) -> None:
    refused(replace(put_wire, query="acl"), "SignatureDoesNotMatch")


@pytest.mark.parametrize("header", ["Host", "Content-Type", "x-amz-meta-m", "X-Amz-Checksum-CRC32"])
def test_changing_a_signed_header_is_refused(put_wire: Wire, header: str) -> None:
    assert header.lower() in put_wire.headers["Authorization"].lower()
    refused(put_wire.with_header(header, "changed"), "SignatureDoesNotMatch")


def test_dropping_a_signed_header_is_refused(put_wire: Wire) -> None:
    refused(put_wire.with_header("Content-Type", None), "SignatureDoesNotMatch")


def test_changing_the_date_is_refused(put_wire: Wire) -> None:
    signed_at = calendar.timegm(time.strptime(put_wire.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
    later = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(signed_at + 1))
    refused(put_wire.with_header("X-Amz-Date", later), "SignatureDoesNotMatch")


def test_changing_the_payload_hash_is_refused(put_wire: Wire) -> None:
    refused(put_wire.with_header("x-amz-content-sha256", "UNSIGNED-PAYLOAD"), "SignatureDoesNotMatch")
    refused(put_wire.with_header("x-amz-content-sha256", "0" * 64), "SignatureDoesNotMatch")


def test_an_unknown_access_key_is_refused() -> None:
    wire = boto_wire(lambda c: c.get_object(Bucket="b", Key="k"), key="nobody")
    refused(wire, "InvalidAccessKeyId", 403)


def test_a_wrong_secret_is_refused() -> None:
    wire = boto_wire(lambda c: c.get_object(Bucket="b", Key="k"), secret="not-the-secret-0123456")
    refused(wire, "SignatureDoesNotMatch", 403)


def test_another_users_signature_is_refused(put_wire: Wire) -> None:
    other = put_wire.headers["Authorization"].replace(f"Credential={KEY}/", "Credential=other-user/")
    refused(put_wire.with_header("Authorization", other), "SignatureDoesNotMatch")


def test_changing_an_unsigned_header_is_not_covered(put_wire: Wire) -> None:
    assert "user-agent" not in put_wire.headers["Authorization"].lower()
    assert put_wire.with_header("User-Agent", "something else").verify() is not None
    assert put_wire.with_header("Content-Length", "99").verify() is not None


def test_an_unsigned_amz_header_is_refused(put_wire: Wire) -> None:
    error = refused(put_wire.with_header("x-amz-acl", "public-read"), "AccessDenied", 403)
    assert "x-amz-acl" in error.message


def test_an_unsigned_host_is_refused() -> None:
    wire = AWS_EXAMPLES["GET Object"]
    auth = wire.headers["Authorization"].replace("SignedHeaders=host;", "SignedHeaders=")
    refused(wire.with_header("Authorization", auth), "AccessDenied", 403, secrets=AWS_SECRETS, now=AWS_NOW)


# --- time ---------------------------------------------------------------------------------------

def test_fifteen_minutes_of_skew_are_allowed_and_more_refused(put_wire: Wire) -> None:
    signed_at = calendar.timegm(time.strptime(put_wire.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
    for offset in (-900, 0, 900):
        assert put_wire.verify(now=signed_at + offset) is not None
    for offset in (-901, 901, 86400):
        refused(put_wire, "RequestTimeTooSkewed", 403, now=signed_at + offset)


def test_a_request_without_a_date_is_refused() -> None:
    wire = AWS_EXAMPLES["GET Bucket Lifecycle"].with_header("x-amz-date", None)
    refused(wire, "AccessDenied", 403, secrets=AWS_SECRETS, now=AWS_NOW)


def test_the_credential_date_must_be_the_request_date() -> None:
    wire = AWS_EXAMPLES["GET Bucket Lifecycle"]
    auth = wire.headers["Authorization"].replace("/20130524/", "/20130523/")
    refused(wire.with_header("Authorization", auth), "AuthorizationHeaderMalformed", 400,
            secrets=AWS_SECRETS, now=AWS_NOW)


# --- malformed --------------------------------------------------------------------------------

@pytest.mark.parametrize("authorization, code", [
    ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request",
     "AuthorizationHeaderMalformed"),
    ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/ec2/aws4_request,"
     "SignedHeaders=host,Signature=00", "AuthorizationHeaderMalformed"),
    ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/us-east-1/s3/aws4_request,"
     "SignedHeaders=host,Signature=00", "AuthorizationHeaderMalformed"),
    ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
     "SignedHeaders=Host,Signature=00", "AuthorizationHeaderMalformed"),
    ("AWS4-ECDSA-P256-SHA256 Credential=x", "InvalidArgument"),
    ("Bearer some-token", "InvalidArgument"),
])
def test_a_malformed_authorization_header_is_refused(authorization: str, code: str) -> None:
    wire = AWS_EXAMPLES["GET Bucket Lifecycle"].with_header("Authorization", authorization)
    refused(wire, code, 400, secrets=AWS_SECRETS, now=AWS_NOW)


def test_header_auth_needs_the_content_sha256_header() -> None:
    wire = AWS_EXAMPLES["GET Bucket Lifecycle"].with_header("x-amz-content-sha256", None)
    refused(wire, "InvalidRequest", 400, secrets=AWS_SECRETS, now=AWS_NOW)


def test_a_content_sha256_that_is_neither_a_hash_nor_a_mode_is_refused(put_wire: Wire) -> None:
    refused(put_wire.with_header("x-amz-content-sha256", "STREAMING-SOMETHING"), "InvalidArgument", 400)


def test_header_and_query_signatures_together_are_refused() -> None:
    wire = replace(AWS_EXAMPLES["GET Object"], query=AWS_PRESIGNED.query)
    refused(wire, "InvalidArgument", 400, secrets=AWS_SECRETS, now=AWS_NOW)


# --- presigned URLs ---------------------------------------------------------------------------

def test_botocore_presigned_urls_verify() -> None:
    for key in KEYS:
        wire = presigned_wire("get_object", {"Bucket": "bucket", "Key": key})
        signed = wire.verify()
        assert signed is not None and signed.presigned and signed.payload == "UNSIGNED-PAYLOAD"
    put = presigned_wire("put_object", {"Bucket": "bucket", "Key": "k"}, http_method="PUT")
    assert put.verify() is not None
    refused(replace(put, method="GET"), "SignatureDoesNotMatch")


def test_a_presigned_url_expires() -> None:
    wire = presigned_wire("get_object", {"Bucket": "b", "Key": "k"}, expires=60)
    now = time.time()
    assert wire.verify(now=now + 59) is not None
    assert refused(wire, "AccessDenied", 403, now=now + 120).message == "Request has expired"


def test_a_presigned_url_may_live_seven_days_and_no_more() -> None:
    week = presigned_wire("get_object", {"Bucket": "b", "Key": "k"}, expires=604800)
    assert week.verify(now=time.time() + 604000) is not None
    longer = presigned_wire("get_object", {"Bucket": "b", "Key": "k"}, expires=604801)
    refused(longer, "AuthorizationQueryParametersError", 400)


def test_a_presigned_url_from_the_future_is_refused() -> None:
    wire = presigned_wire("get_object", {"Bucket": "b", "Key": "k"})
    refused(wire, "AccessDenied", 403, now=time.time() - 3600)


def test_a_presigned_url_changed_anywhere_is_refused() -> None:
    wire = presigned_wire("get_object", {"Bucket": "b", "Key": "k"}, expires=600)
    refused(replace(wire, path="/b/j"), "SignatureDoesNotMatch")
    refused(replace(wire, query=wire.query.replace("X-Amz-Expires=600", "X-Amz-Expires=6000")),
            "SignatureDoesNotMatch")
    refused(replace(wire, query=wire.query + "&extra=1"), "SignatureDoesNotMatch")
    refused(wire.with_header("Host", "elsewhere:9000"), "SignatureDoesNotMatch")
    refused(wire.with_header("x-amz-meta-new", "v"), "AccessDenied")
    assert wire.with_header("User-Agent", "curl").verify() is not None


@pytest.mark.parametrize("drop", ["X-Amz-Algorithm=", "X-Amz-Credential=", "X-Amz-Date=",
                                  "X-Amz-Expires=", "X-Amz-SignedHeaders=", "X-Amz-Signature="])
def test_a_presigned_url_missing_a_parameter_is_refused(drop: str) -> None:
    wire = presigned_wire("get_object", {"Bucket": "b", "Key": "k"})
    query = "&".join(part for part in wire.query.split("&") if not part.startswith(drop))
    if drop == "X-Amz-Algorithm=":
        query += "&X-Amz-Algorithm"  # still marks the request as presigned
    refused(replace(wire, query=query), "AuthorizationQueryParametersError", 400)


def test_a_presigned_url_without_a_signed_host_is_refused() -> None:
    query = AWS_PRESIGNED.query.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date")
    refused(replace(AWS_PRESIGNED, query=query), "AccessDenied", 403, secrets=AWS_SECRETS, now=AWS_NOW)


# --- bodies: hex payload hashes -----------------------------------------------------------------

def drain(body: Any) -> tuple[list[bytes], S3AuthError | None]:
    """The pieces a body yields before it ends or is refused, and the refusal."""
    pieces: list[bytes] = []
    try:
        for piece in body:
            pieces.append(piece)
    except S3AuthError as exc:
        return pieces, exc
    return pieces, None


def pieces_of(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_a_signed_payload_hash_passes_the_body_through() -> None:
    wire = boto_wire(lambda c: c.put_object(Bucket="b", Key="k", Body=b"0123456789" * 1000))
    signed = wire.verify()
    body = verify_payload(signed, iter(pieces_of(wire.body, 333)), wire.headers)
    assert b"".join(body) == wire.body
    assert body.checksums == {"CRC32": wire.headers["x-amz-checksum-crc32"]}


def test_a_body_that_does_not_match_its_hash_is_refused_before_its_last_piece() -> None:
    wire = boto_wire(lambda c: c.put_object(Bucket="b", Key="k", Body=b"0123456789" * 1000))
    signed = wire.verify()
    tampered = wire.body[:5000] + b"X" + wire.body[5001:]
    pieces, error = drain(verify_payload(signed, iter(pieces_of(tampered, 1000)), wire.headers))
    assert error is not None and error.code == "XAmzContentSHA256Mismatch" and error.status == 400
    assert b"".join(pieces) == tampered[:9000]  # the last piece was never handed over
    pieces, error = drain(verify_payload(signed, iter(pieces_of(wire.body[:-1], 1000)), wire.headers))
    assert error is not None and error.code == "XAmzContentSHA256Mismatch"


def test_content_md5_is_checked() -> None:
    data = b"some object bytes"
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    headers = {"Content-MD5": md5, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    assert b"".join(verify_payload(None, iter([data]), headers)) == data
    _, error = drain(verify_payload(None, iter([data + b"!"]), headers))
    assert error is not None and error.code == "BadDigest"
    with pytest.raises(S3AuthError) as caught:
        verify_payload(None, iter([data]), {"Content-MD5": "not base64!"})
    assert caught.value.code == "InvalidDigest"


def test_content_md5_left_to_the_caller_is_still_judged_well_formed() -> None:
    """An upload checks Content-MD5 against the MD5 it computes for the ETag:
    the payload check then only refuses a malformed one, up front."""
    data = b"some object bytes"
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    headers = {"Content-MD5": wrong, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    assert b"".join(verify_payload(None, iter([data]), headers, hash_md5=False)) == data
    with pytest.raises(S3AuthError) as caught:
        verify_payload(None, iter([data]), {"Content-MD5": "AAAA"}, hash_md5=False)
    assert caught.value.code == "InvalidDigest"


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_a_checksum_header_is_checked_and_returned(algorithm: str) -> None:
    wire = boto_wire(lambda c: c.put_object(Bucket="b", Key="k", Body=b"checksummed" * 100,
                                            ChecksumAlgorithm=algorithm))
    signed = wire.verify()
    header = f"x-amz-checksum-{algorithm.lower()}"
    value = {k.lower(): v for k, v in wire.headers.items()}[header]
    body = verify_payload(signed, iter([wire.body]), wire.headers)
    assert b"".join(body) == wire.body and body.checksums == {algorithm: value}
    unsigned = {header: value, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    _, error = drain(verify_payload(None, iter([wire.body[:-1] + b"?"]), unsigned))
    assert error is not None and error.code == "BadDigest" and algorithm in error.message


def test_a_malformed_or_second_checksum_header_is_refused() -> None:
    for headers in ({"x-amz-checksum-crc32": "not-base64"}, {"x-amz-checksum-sha256": "AAAAAA=="},
                    {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-crc32c": "AAAAAA=="}):
        with pytest.raises(S3AuthError) as caught:
            verify_payload(None, iter([b""]), headers)
        assert caught.value.code == "InvalidRequest"


# --- bodies: aws-chunked ------------------------------------------------------------------------

def chunk_signature(key: bytes, timestamp: str, scope: str, previous: str, data: bytes) -> str:
    """A chunk's signature, per AWS's 'Transferring Payload in Multiple Chunks'."""
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", timestamp, scope, previous, EMPTY,
                                hashlib.sha256(data).hexdigest()])
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def trailer_signature(key: bytes, timestamp: str, scope: str, previous: str, trailer: str) -> str:
    """The trailer's signature, per AWS's 'Signature calculations for trailing headers'."""
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", timestamp, scope, previous,
                                hashlib.sha256(trailer.encode()).hexdigest()])
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def derived_key(secret: str, date: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signed_chunks(key: bytes, timestamp: str, seed: str, chunks: list[bytes],
                  trailer: str | None = None) -> Iterator[bytes]:
    """An aws-chunked body, each chunk signed in the chain from ``seed``; a signed trailer if given."""
    scope = f"{timestamp[:8]}/us-east-1/s3/aws4_request"
    previous = seed
    for data in [*chunks, b""]:
        previous = chunk_signature(key, timestamp, scope, previous, data)
        yield b"%x;chunk-signature=%s\r\n" % (len(data), previous.encode())
        if data:
            yield data
            yield b"\r\n"
    if trailer is not None:
        signature = trailer_signature(key, timestamp, scope, previous, trailer + "\n")
        yield f"{trailer}\r\nx-amz-trailer-signature:{signature}\r\n".encode()
    yield b"\r\n"


DOC_CHUNKS = [b"a" * 65536, b"a" * 1024]
DOC_STREAM_HEADERS = {
    "Host": "s3.amazonaws.com", "x-amz-date": "20130524T000000Z", "x-amz-storage-class": "REDUCED_REDUNDANCY",
    "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "Content-Encoding": "aws-chunked",
    "x-amz-decoded-content-length": "66560", "Content-Length": "66824",
    "Authorization": aws_auth("content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                              "x-amz-decoded-content-length;x-amz-storage-class",
                              "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")}
DOC_STREAM_BODY = (
    b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n"
    + DOC_CHUNKS[0] + b"\r\n"
    b"400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n"
    + DOC_CHUNKS[1] + b"\r\n"
    b"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n")
DOC_TRAILER_HEADERS = {
    **DOC_STREAM_HEADERS, "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    "x-amz-trailer": "x-amz-checksum-crc32c",
    "Authorization": aws_auth("content-encoding;host;x-amz-content-sha256;x-amz-date;"
                              "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer",
                              "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e")}
DOC_TRAILER_BODY = (
    b"10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n"
    + DOC_CHUNKS[0] + b"\r\n"
    b"400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n"
    + DOC_CHUNKS[1] + b"\r\n"
    b"0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n"
    b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
    b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n")


def doc_stream(trailer: bool = False) -> tuple[Signed, dict[str, str], bytes]:
    headers = DOC_TRAILER_HEADERS if trailer else DOC_STREAM_HEADERS
    signed = Wire("PUT", "/examplebucket/chunkObject.txt", "", headers).verify(AWS_SECRETS, AWS_NOW)
    assert signed is not None
    return signed, headers, DOC_TRAILER_BODY if trailer else DOC_STREAM_BODY


def test_the_test_signer_reproduces_the_documented_chunk_signatures() -> None:
    key = derived_key(AWS_SECRET, "20130524")
    seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    assert b"".join(signed_chunks(key, "20130524T000000Z", seed, DOC_CHUNKS)) == DOC_STREAM_BODY
    seed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
    trailer = "x-amz-checksum-crc32c:sOO8/Q=="
    assert b"".join(signed_chunks(key, "20130524T000000Z", seed, DOC_CHUNKS, trailer)) == DOC_TRAILER_BODY


@pytest.mark.parametrize("piece_size", [1, 7, 4096, 65536 + 90, 1 << 20])
def test_the_documented_chunked_upload_decodes_in_pieces_of_any_size(piece_size: int) -> None:
    signed, headers, body = doc_stream()
    assert signed.signature == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    assert len(body) == int(headers["Content-Length"])
    decoded = verify_payload(signed, iter(pieces_of(body, piece_size)), headers)
    assert b"".join(decoded) == b"a" * 66560
    assert decoded.checksums == {}


def test_the_documented_chunked_upload_with_a_signed_trailer_decodes() -> None:
    signed, headers, body = doc_stream(trailer=True)
    decoded = verify_payload(signed, iter(pieces_of(body, 1000)), headers)
    assert b"".join(decoded) == b"a" * 66560
    assert decoded.checksums == {"CRC32C": "sOO8/Q=="}


def refused_body(signed: Signed | None, body: bytes, headers: dict[str, str], code: str) -> list[bytes]:
    pieces, error = drain(verify_payload(signed, iter(pieces_of(body, 4096)), headers))
    assert error is not None, "the body was accepted"
    assert error.code == code, error.message
    return pieces


def test_a_changed_chunk_byte_is_refused() -> None:
    signed, headers, body = doc_stream()
    at = body.index(b"a" * 10) + 100
    pieces = refused_body(signed, body[:at] + b"b" + body[at + 1:], headers, "SignatureDoesNotMatch")
    assert len(b"".join(pieces)) < 66560
    at = body.rindex(b"a")
    refused_body(signed, body[:at] + b"b" + body[at + 1:], headers, "SignatureDoesNotMatch")


def test_a_changed_chunk_signature_is_refused() -> None:
    signed, headers, body = doc_stream()
    for signature in (b"ad80c730", b"0055627c", b"b6c6ea8a"):
        refused_body(signed, body.replace(signature, b"ad80c731"), headers, "SignatureDoesNotMatch")


def test_chunks_out_of_their_chain_are_refused() -> None:
    signed, headers, body = doc_stream()
    first_end = body.index(b"\r\n400;") + 2
    last = body.index(b"0;chunk-signature=b6c6")
    reordered = body[first_end:last] + body[:first_end] + body[last:]
    refused_body(signed, reordered, headers, "SignatureDoesNotMatch")
    other_seed = replace(signed, signature="0" * 64)
    refused_body(other_seed, body, headers, "SignatureDoesNotMatch")


def test_a_missing_chunk_signature_is_refused() -> None:
    signed, headers, body = doc_stream()
    unsigned = body.replace(
        b";chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497", b"")
    refused_body(signed, unsigned, headers, "SignatureDoesNotMatch")


def test_a_changed_trailer_checksum_is_refused() -> None:
    signed, headers, body = doc_stream(trailer=True)
    refused_body(signed, body.replace(b"sOO8/Q==", b"sOO8/R=="), headers, "SignatureDoesNotMatch")
    # Re-signed by the key holder, a wrong checksum still fails as a checksum.
    key = derived_key(AWS_SECRET, "20130524")
    resigned = b"".join(signed_chunks(key, "20130524T000000Z", signed.signature, DOC_CHUNKS,
                                      "x-amz-checksum-crc32c:AAAAAA=="))
    refused_body(signed, resigned, headers, "BadDigest")


def test_a_changed_or_missing_trailer_signature_is_refused() -> None:
    signed, headers, body = doc_stream(trailer=True)
    refused_body(signed, body.replace(b"d81f82fc", b"d81f82fd"), headers, "SignatureDoesNotMatch")
    without = body.replace(
        b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n", b"")
    refused_body(signed, without, headers, "SignatureDoesNotMatch")


def test_a_missing_trailer_is_refused() -> None:
    signed, headers, body = doc_stream(trailer=True)
    refused_body(signed, body[:body.index(b"x-amz-checksum")] + b"\r\n", headers, "IncompleteBody")


def test_the_decoded_length_must_be_the_declared_one() -> None:
    signed, headers, body = doc_stream()
    key = derived_key(AWS_SECRET, "20130524")
    shorter = b"".join(signed_chunks(key, "20130524T000000Z", signed.signature, [b"a" * 65536]))
    refused_body(signed, shorter, headers, "IncompleteBody")
    longer = b"".join(signed_chunks(key, "20130524T000000Z", signed.signature, [*DOC_CHUNKS, b"a"]))
    pieces = refused_body(signed, longer, headers, "InvalidRequest")
    assert len(b"".join(pieces)) <= 66560
    with pytest.raises(S3AuthError) as caught:
        verify_payload(signed, iter([body]), {**headers, "x-amz-decoded-content-length": "-1"})
    assert caught.value.code == "MissingContentLength"


@pytest.mark.parametrize("cut", [10, 100, 66000, 66600, -40])
def test_a_truncated_chunked_body_is_refused(cut: int) -> None:
    signed, headers, body = doc_stream()
    refused_body(signed, body[:cut], headers, "IncompleteBody")


def test_a_chunked_body_may_end_without_its_final_blank_line() -> None:
    """Every byte and signature is there: only the closing CRLF is missing."""
    signed, headers, body = doc_stream()
    assert b"".join(verify_payload(signed, iter([body[:-2]]), headers)) == b"a" * 66560


@pytest.mark.parametrize("mangle", [
    lambda body: body.replace(b"10000;", b"1000g;", 1),
    lambda body: body.replace(b"\r\n400;", b"\n400;", 1),
    lambda body: body.replace(b"10000;", b"ffff;", 1),
    lambda body: b"x" * 5000 + body,
    lambda body: body + b"trailing garbage",
])
def test_malformed_framing_is_refused(mangle: Callable[[bytes], bytes]) -> None:
    signed, headers, body = doc_stream()
    refused_body(signed, mangle(body), headers, "InvalidRequest")


# --- boto3's streaming uploads: unsigned chunks, a checksum trailer -----------------------------

@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_boto3s_trailer_uploads_decode_and_their_checksum_is_checked(algorithm: str) -> None:
    data = bytes(range(256)) * 5000  # more than one of boto3's 1 MiB chunks
    wire = boto_wire(lambda c: c.put_object(Bucket="b", Key="k", Body=io.BytesIO(data),
                                            ChecksumAlgorithm=algorithm), https=True)
    signed = wire.verify()
    assert signed is not None and signed.payload == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    body = verify_payload(signed, iter(pieces_of(wire.body, 8192)), wire.headers)
    assert b"".join(body) == data
    trailer = wire.body[wire.body.index(b"x-amz-checksum-"):].split(b"\r\n")[0].decode()
    assert body.checksums == {algorithm: trailer.split(":")[1]}
    at = 700_000  # inside the first chunk
    _, error = drain(verify_payload(signed, iter(pieces_of(wire.body[:at] + b"!" + wire.body[at + 1:], 8192)),
                                    wire.headers))
    assert error is not None and error.code == "BadDigest"


def test_an_unsigned_trailer_upload_needs_its_trailer() -> None:
    wire = boto_wire(lambda c: c.put_object(Bucket="b", Key="k", Body=io.BytesIO(b"data")), https=True)
    signed = wire.verify()
    refused_body(signed, wire.body[:wire.body.index(b"x-amz-checksum")] + b"\r\n", wire.headers,
                 "IncompleteBody")


# --- memory -------------------------------------------------------------------------------------

def test_a_64_mib_chunked_body_passes_in_flat_memory() -> None:
    """Chunks pass through piece by piece: nothing holds the body, or even a whole chunk."""
    chunk = bytes(range(256)) * 256  # 64 KiB
    count = 1024
    timestamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    headers = {"x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
               "x-amz-decoded-content-length": str(len(chunk) * count)}
    key = derived_key(SECRET, timestamp[:8])
    signed = Signed(access_key=KEY, payload=headers["x-amz-content-sha256"], region="us-east-1",
                    timestamp=timestamp, scope=f"{timestamp[:8]}/us-east-1/s3/aws4_request",
                    signature="5" * 64, signing_key=key)

    def body() -> Iterator[bytes]:
        for framed in signed_chunks(key, timestamp, signed.signature, [chunk] * count):
            yield from pieces_of(framed, 16384)

    tracemalloc.start()
    try:
        total = sum(len(piece) for piece in verify_payload(signed, body(), headers))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == 64 * 1024 * 1024
    assert peak < 1024 * 1024, f"peak {peak} bytes"


# --- Signature Version 2: what boto3 presigns with unless told 's3v4' -------------------------

AWS_V2_EXAMPLES = {
    "Object GET": ("GET", "/johnsmith/photos/puppy.jpg", "", "Tue, 27 Mar 2007 19:36:42 +0000", {},
                   "bWq2s1WEIj+Ydj0vQ697zp+IXMU="),
    "Object PUT": ("PUT", "/johnsmith/photos/puppy.jpg", "", "Tue, 27 Mar 2007 21:15:45 +0000",
                   {"Content-Type": "image/jpeg", "Content-Length": "94328"}, "MyyxeRY7whkBe+bq8fHCL/2kKUg="),
    "List": ("GET", "/johnsmith/", "prefix=photos&max-keys=50&marker=puppy",
             "Tue, 27 Mar 2007 19:42:41 +0000", {}, "htDYFYduRNen8P9ZfE/s9SuKy0U="),
    "Fetch": ("GET", "/johnsmith/", "acl", "Tue, 27 Mar 2007 19:44:46 +0000", {},
              "c2WLPFtWHVgbEmeEG93a4cG37dM="),
}


def aws_v2_example(name: str) -> tuple[Wire, float]:
    method, path, query, date, headers, signature = AWS_V2_EXAMPLES[name]
    wire = Wire(method, path, query, {"Host": "s3.amazonaws.com", "Date": date, **headers,
                                      "Authorization": f"AWS {AWS_KEY}:{signature}"})
    return wire, float(calendar.timegm(time.strptime(date, "%a, %d %b %Y %H:%M:%S +0000")))


@pytest.mark.parametrize("name", sorted(AWS_V2_EXAMPLES))
def test_the_documented_v2_examples_verify_and_only_with_their_secret(name: str) -> None:
    wire, now = aws_v2_example(name)
    signed = wire.verify(AWS_SECRETS, now)
    assert signed is not None and signed.access_key == AWS_KEY and signed.payload == "UNSIGNED-PAYLOAD"
    refused(wire, "SignatureDoesNotMatch", 403, secrets={AWS_KEY: AWS_SECRET + "x"}, now=now)
    refused(replace(wire, method="DELETE"), "SignatureDoesNotMatch", secrets=AWS_SECRETS, now=now)
    refused(wire, "RequestTimeTooSkewed", 403, secrets=AWS_SECRETS, now=now + 901)


def test_the_documented_v2_presigned_url_verifies_until_it_expires() -> None:
    query = ("AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D"
             "&Expires=1175139620")
    wire = Wire("GET", "/johnsmith/photos/puppy.jpg", query, {"Host": "s3.amazonaws.com"})
    signed = wire.verify(AWS_SECRETS, 1175139620 - 3600)
    assert signed is not None and signed.presigned
    error = refused(wire, "AccessDenied", 403, secrets=AWS_SECRETS, now=1175139621)
    assert error.message == "Request has expired"


def test_boto3s_default_presigned_urls_are_v2_and_verify() -> None:
    for key in KEYS:
        wire = presigned_wire("get_object", {"Bucket": "bucket", "Key": key}, signature_version="s3")
        assert "AWSAccessKeyId=" in wire.query
        signed = wire.verify()
        assert signed is not None and signed.presigned and signed.access_key == KEY
    wire = presigned_wire("get_object", {"Bucket": "b", "Key": "k", "ResponseContentType": "text/plain"},
                          signature_version="s3")
    assert wire.verify() is not None
    refused(replace(wire, query=wire.query.replace("text%2Fplain", "text%2Fhtml")), "SignatureDoesNotMatch")
    refused(replace(wire, path="/b/j"), "SignatureDoesNotMatch")
    refused(replace(wire, method="PUT"), "SignatureDoesNotMatch")
    refused(wire, "AccessDenied", now=time.time() + 7200)


def test_a_v2_presigned_url_may_not_outlive_seven_days() -> None:
    wire = presigned_wire("get_object", {"Bucket": "b", "Key": "k"}, expires=604800 + 600,
                          signature_version="s3")
    refused(wire, "AuthorizationQueryParametersError", 400)


def test_boto3s_v2_signed_requests_verify_and_cover_amz_headers() -> None:
    wire = boto_wire(lambda c: c.put_object(Bucket="b", Key="dir/a b+é", Body=b"data",
                                            Metadata={"m": "v"}), signature_version="s3")
    assert wire.headers["Authorization"].startswith(f"AWS {KEY}:")
    signed = wire.verify()
    assert signed is not None and not signed.presigned
    refused(wire.with_header("x-amz-meta-m", "w"), "SignatureDoesNotMatch")
    refused(wire.with_header("x-amz-acl", "public-read"), "SignatureDoesNotMatch")
    refused(replace(wire, path="/b/dir/a b+e"), "SignatureDoesNotMatch")
    refused(boto_wire(lambda c: c.get_object(Bucket="b", Key="k"), signature_version="s3", key="nobody"),
            "InvalidAccessKeyId", 403)


def test_a_checksum_this_installation_cannot_compute_is_refused_not_skipped(monkeypatch: Any) -> None:
    """With an awscrt too old for CRC64NVME, such an upload is refused rather than taken unchecked."""
    monkeypatch.setattr(checksums, "AVAILABLE", ("CRC32", "CRC32C", "SHA1", "SHA256"))
    with pytest.raises(S3AuthError) as caught:
        verify_payload(None, iter([b"x"]), {"x-amz-checksum-crc64nvme": "AAAAAAAAAAA="})
    assert caught.value.code == "InvalidRequest" and "CRC64NVME" in caught.value.message
    headers = {"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
               "x-amz-decoded-content-length": "1", "x-amz-trailer": "x-amz-checksum-crc64nvme"}
    with pytest.raises(S3AuthError) as caught:
        verify_payload(None, iter([b"1\r\nx\r\n0\r\n\r\n"]), headers)
    assert caught.value.code == "InvalidRequest"


# --- any key, any listing ---------------------------------------------------------------------

_ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=24)
_CLIENT = None


def _shared_client() -> tuple[Any, list[AWSPreparedRequest]]:
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = boto_client()
    return _CLIENT


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=_ANY_TEXT, prefix=_ANY_TEXT)
def test_whatever_the_key_or_prefix_botocores_signature_verifies(key: str, prefix: str) -> None:
    client, sent = _shared_client()
    for call in (lambda: client.get_object(Bucket="bucket", Key=key),
                 lambda: client.list_objects_v2(Bucket="bucket", Prefix=prefix, StartAfter=key)):
        try:
            call()
        except Exception:  # noqa: BLE001 - the canned response is empty; the request is what counts
            pass
        wire = wire_from(sent[-1])
        assert wire.verify() is not None, (wire.path, wire.query)

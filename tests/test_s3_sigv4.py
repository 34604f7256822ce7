"""SigV4 verification against the reference signer and AWS's published examples.

Requests are made by a real boto3 client whose sending is cut short: the
request botocore would put on the wire (URL, headers, body) is captured
and handed to :func:`blobsvc.s3.sigv4.verify` exactly as the WSGI
environment would carry it. Each accepted request is then changed in one
place and must be refused with the error code S3 uses.
"""

from __future__ import annotations

import calendar
import io
import time
from dataclasses import dataclass, replace
from typing import Any, Callable
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config

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

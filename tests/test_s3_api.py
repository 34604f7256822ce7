"""The S3 API on a live server, on the memory and filesystem drivers and
on the real Swift fixture: buckets, objects, errors, and the same objects
through the native API.

Through boto3 (unsigned until the service verifies signatures) for what an
SDK does, and through plain HTTP for the error documents and hostile input.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from typing import Any, Iterator

import pytest
import requests
from api_client import ServerProcess
from defusedxml import ElementTree
from live_server import filesystem_config, running_server, swift_config
from s3_helpers import (
    S3_NAMESPACE,
    boto_code,
    boto_status,
    error_of,
    new_bucket_name,
    s3_client,
)


@pytest.fixture(scope="module")
def swift_s3_server(tmp_path_factory, swift_stack) -> Iterator[ServerProcess]:
    """The filesystem server's settings, on Swift (1 MiB segments: SLOs get made)."""
    config = swift_config(swift_stack, max_object_size=4 * 1024 * 1024, chunk_size=64 * 1024)
    with running_server(tmp_path_factory.mktemp("s3-api-swift"), config) as server:
        yield server


@pytest.fixture(scope="module")
def memory_s3_server(tmp_path_factory) -> Iterator[ServerProcess]:
    """The filesystem server's settings, on the memory driver (one process holds it)."""
    workdir = tmp_path_factory.mktemp("s3-api-memory")
    config = filesystem_config(workdir / "data", max_object_size=4 * 1024 * 1024,
                               chunk_size=64 * 1024, workers=1)
    config["storage"] = {"driver": "memory"}
    with running_server(workdir, config) as server:
        yield server


@pytest.fixture(params=["memory", "filesystem", "swift"])
def server(request) -> ServerProcess:
    return request.getfixturevalue({"memory": "memory_s3_server", "filesystem": "s3_server",
                                    "swift": "swift_s3_server"}[request.param])


_clients: dict[str, Any] = {}


@pytest.fixture
def s3(server):
    """A boto3 client on this test's server, one per server."""
    if server.url not in _clients:
        _clients[server.url] = s3_client(server.url)
    return _clients[server.url]


@pytest.fixture
def bucket(s3):
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    return name


def native(server, path: str) -> str:
    return f"{server.url}/v1/objects/{path}"


# -- buckets ------------------------------------------------------------------


def test_a_created_bucket_is_listed_headed_and_deleted_once_empty(s3, server):
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(Exception) as caught:
        s3.delete_bucket(Bucket=name)
    assert boto_code(caught.value) == "BucketNotEmpty" and boto_status(caught.value) == 409
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with pytest.raises(Exception) as caught:
        s3.head_bucket(Bucket=name)
    assert boto_status(caught.value) == 404


def test_an_empty_bucket_is_invisible_to_the_native_api(s3, server, bucket):
    listing = requests.get(f"{server.url}/v1/objects/").json()
    assert bucket not in [entry["name"] for entry in listing["entries"]]
    assert ".blobsvc" not in [entry["name"] for entry in listing["entries"]]


def test_creating_an_existing_bucket_is_bucket_already_owned_by_you(s3, bucket):
    with pytest.raises(Exception) as caught:
        s3.create_bucket(Bucket=bucket)
    assert boto_code(caught.value) == "BucketAlreadyOwnedByYou"
    assert boto_status(caught.value) == 409


def test_a_native_top_level_directory_is_a_bucket(s3, server):
    name = new_bucket_name()
    assert requests.put(native(server, f"{name}/doc.txt"), data=b"native").status_code == 201
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_object(Bucket=name, Key="doc.txt")["Body"].read() == b"native"


def test_deleting_a_missing_bucket_is_no_such_bucket(server):
    answer = requests.delete(f"{server.url}/{new_bucket_name()}")
    assert answer.status_code == 404
    assert error_of(answer)["Code"] == "NoSuchBucket"


def test_location_and_versioning_of_a_bucket(s3, bucket):
    assert s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") in (None, "")
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


@pytest.mark.parametrize("name", ["ab", "a" * 64, "UPPER-case", "-dash", "dash-", "a..b",
                                  "192.168.1.1", "under_score"])
def test_invalid_bucket_names_are_refused_in_s3_xml(server, name):
    answer = requests.put(f"{server.url}/{name}")
    assert answer.status_code == 400, answer.text
    error = error_of(answer)
    assert error["Code"] == "InvalidBucketName"
    assert error["Resource"] and error["RequestId"] == answer.headers["X-Amz-Request-Id"]
    assert error["Message"]


@pytest.mark.parametrize("name", ["healthz", "readyz", "metrics", "openapi.json"])
def test_native_names_keep_their_meaning_and_are_no_buckets(server, name):
    assert requests.put(f"{server.url}/{name}").headers["Content-Type"] == "application/json"
    answer = requests.put(f"{server.url}/{name}/key", data=b"x")
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "application/json"
    assert requests.get(f"{server.url}/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("target", ["/%6detrics", "/openapi%2ejson", "/%761/objects/x",
                                    "/b%75cket/key"])
def test_a_first_segment_with_an_escape_is_no_s3_route(server, target):
    from live_server import raw_exchange, request_bytes

    answer = raw_exchange("127.0.0.1", server.port, request_bytes("GET", target))
    assert answer.status == 404 and answer.json()["error"]["code"] == "not_found"


def test_bucket_name_rule_refuses_native_names():
    from blobsvc.s3.names import bucket_name_problem

    for name in ("healthz", "readyz", "metrics", "openapi.json"):
        assert bucket_name_problem(name) is not None
    assert bucket_name_problem("my.bucket-1") is None


# -- objects ------------------------------------------------------------------


def test_put_and_get_byte_for_byte_with_metadata_and_etag(s3, bucket):
    data = os.urandom(300_000)
    put = s3.put_object(Bucket=bucket, Key="dir/blob.bin", Body=data, ContentType="image/png",
                        Metadata={"color": "blue"}, CacheControl="max-age=60",
                        ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode())
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dir/blob.bin")
    assert got["Body"].read() == data
    assert got["ETag"] == put["ETag"] and got["ContentLength"] == len(data)
    assert got["ContentType"] == "image/png" and got["Metadata"] == {"color": "blue"}
    assert got["CacheControl"] == "max-age=60"
    head = s3.head_object(Bucket=bucket, Key="dir/blob.bin")
    assert head["ContentLength"] == len(data) and head["ETag"] == put["ETag"]
    assert head["Metadata"] == {"color": "blue"}


def test_an_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b"" and got["ETag"] == f'"{hashlib.md5(b"").hexdigest()}"'


def test_an_object_written_through_s3_reads_the_same_natively(s3, server, bucket):
    data = os.urandom(10_000)
    put = s3.put_object(Bucket=bucket, Key="a/b.bin", Body=data, Metadata={"owner": "ops"})
    answer = requests.get(native(server, f"{bucket}/a/b.bin"))
    assert answer.content == data
    assert answer.headers["ETag"] == put["ETag"]
    assert answer.headers["X-Object-Meta-Owner"] == "ops"


def test_an_object_written_natively_reads_the_same_through_s3(s3, server, bucket):
    data = os.urandom(10_000)
    written = requests.put(native(server, f"{bucket}/n.bin"), data=data,
                           headers={"X-Object-Meta-Tag": "v1", "Content-Type": "text/csv"})
    got = s3.get_object(Bucket=bucket, Key="n.bin")
    assert got["Body"].read() == data
    assert got["ETag"] == written.headers["ETag"]
    assert got["Metadata"] == {"tag": "v1"} and got["ContentType"] == "text/csv"


def test_ranges_and_invalid_range(s3, server, bucket):
    data = bytes(range(256)) * 4
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    for header, expected in (("bytes=0-0", data[:1]), ("bytes=10-19", data[10:20]),
                             ("bytes=-5", data[-5:]), ("bytes=1000-", data[1000:])):
        got = s3.get_object(Bucket=bucket, Key="r", Range=header)
        assert got["Body"].read() == expected
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    answer = requests.get(f"{server.url}/{bucket}/r", headers={"Range": "bytes=5000-"})
    assert answer.status_code == 416 and error_of(answer)["Code"] == "InvalidRange"


def test_conditional_put_and_get(s3, server, bucket):
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"one")
    with pytest.raises(Exception) as caught:
        s3.put_object(Bucket=bucket, Key="c", Body=b"two", IfNoneMatch="*")
    assert boto_code(caught.value) == "PreconditionFailed" and boto_status(caught.value) == 412
    with pytest.raises(Exception) as caught:
        s3.put_object(Bucket=bucket, Key="c", Body=b"two", IfMatch='"0123"')
    assert boto_status(caught.value) == 412
    s3.put_object(Bucket=bucket, Key="c", Body=b"two", IfMatch=put["ETag"])
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"two"
    etag = s3.head_object(Bucket=bucket, Key="c")["ETag"]
    answer = requests.get(f"{server.url}/{bucket}/c", headers={"If-None-Match": etag})
    assert answer.status_code == 304
    answer = requests.get(f"{server.url}/{bucket}/c", headers={"If-Match": '"nope"'})
    assert answer.status_code == 412 and error_of(answer)["Code"] == "PreconditionFailed"


def test_delete_object_is_204_even_when_absent(s3, server, bucket):
    s3.put_object(Bucket=bucket, Key="d", Body=b"x")
    assert requests.delete(f"{server.url}/{bucket}/d").status_code == 204
    assert requests.delete(f"{server.url}/{bucket}/d").status_code == 204
    assert requests.get(native(server, f"{bucket}/d")).status_code == 404


def test_missing_key_and_missing_bucket(server, bucket):
    answer = requests.get(f"{server.url}/{bucket}/nothing")
    assert answer.status_code == 404 and error_of(answer)["Code"] == "NoSuchKey"
    missing = new_bucket_name()
    answer = requests.get(f"{server.url}/{missing}/nothing")
    assert answer.status_code == 404 and error_of(answer)["Code"] == "NoSuchBucket"
    assert requests.delete(f"{server.url}/{missing}/nothing").status_code == 404
    assert requests.delete(f"{server.url}/{missing}/dir/").status_code == 404
    assert requests.delete(f"{server.url}/{bucket}/dir/").status_code == 204
    assert requests.get(f"{server.url}/{bucket}/dir/").status_code == 404


def test_put_into_a_missing_bucket_stores_nothing(server):
    missing = new_bucket_name()
    answer = requests.put(f"{server.url}/{missing}/k", data=b"x")
    assert answer.status_code == 404 and error_of(answer)["Code"] == "NoSuchBucket"
    assert requests.get(native(server, f"{missing}/k")).status_code == 404


def test_a_wrong_content_md5_is_bad_digest_and_stores_nothing(server, bucket):
    answer = requests.put(f"{server.url}/{bucket}/m", data=b"body",
                          headers={"Content-MD5": base64.b64encode(b"0" * 16).decode()})
    assert answer.status_code == 400 and error_of(answer)["Code"] == "BadDigest"
    answer = requests.put(f"{server.url}/{bucket}/m", data=b"body", headers={"Content-MD5": "zz"})
    assert answer.status_code == 400 and error_of(answer)["Code"] == "InvalidDigest"
    assert requests.get(native(server, f"{bucket}/m")).status_code == 404


@pytest.mark.parametrize("key, code", [
    ("a%2F%2Fb", "InvalidArgument"), ("dir%2F", "InvalidArgument"),
    ("x/./y", "InvalidArgument"), ("x/../y", "InvalidArgument"),
    ("k/" * 512 + "k", "KeyTooLongError"), ("k/" * 505 + "k", "KeyTooLongError"),
    ("k" * 256, "InvalidArgument"), ("e%CC%81", "InvalidArgument"),
    ("a%E2%80%AEb", "InvalidArgument"), ("a%5Cb", "InvalidArgument"), ("a%01b", "InvalidArgument"),
    ("a%FFb", "InvalidArgument"),
], ids=["empty-segment", "trailing-slash", "dot", "dot-dot", "over-1024-bytes",
        "over-the-path-limit", "segment-over-255-bytes", "not-nfc", "bidi-control", "backslash",
        "control-character", "not-utf-8"])
def test_keys_no_native_path_can_hold_are_refused_before_the_body(server, bucket, key, code):
    from live_server import raw_exchange, request_bytes

    answer = raw_exchange("127.0.0.1", server.port,
                          request_bytes("PUT", f"/{bucket}/{key}", body=b"data"))
    assert answer.status == 400, answer.describe()
    root = ElementTree.fromstring(answer.body)
    assert root.findtext("Code") == code
    listing = requests.get(f"{server.url}/v1/objects/{bucket}/?recursive=true")
    assert listing.status_code == 404  # the bucket holds nothing at all


@pytest.mark.parametrize("target", ["/{bucket}/a%01b", "/{bucket}/a%ED%A0%80b", "/{bucket}%01/k"])
def test_error_documents_stay_xml_whatever_the_path_holds(server, bucket, target):
    from live_server import raw_exchange, request_bytes

    answer = raw_exchange("127.0.0.1", server.port,
                          request_bytes("GET", target.format(bucket=bucket)))
    assert answer.status in (400, 404), answer.describe()
    if answer.headers["Content-Type"] == "application/xml":
        assert ElementTree.fromstring(answer.body).findtext("Code")
    else:  # an escaped bucket name is no S3 route: the native API's JSON
        assert answer.json()["error"]["code"] == "not_found"


def test_an_object_and_a_prefix_never_share_a_name(s3, server, bucket):
    s3.put_object(Bucket=bucket, Key="p/child", Body=b"x")
    answer = requests.put(f"{server.url}/{bucket}/p", data=b"y")
    assert answer.status_code == 409 and error_of(answer)["Code"] == "ObjectPrefixConflict"
    answer = requests.put(f"{server.url}/{bucket}/p/child/deeper", data=b"z")
    assert answer.status_code == 409 and error_of(answer)["Code"] == "ObjectPrefixConflict"
    assert s3.get_object(Bucket=bucket, Key="p/child")["Body"].read() == b"x"


def test_a_short_body_stores_nothing(server, bucket):
    from live_server import raw_exchange, request_bytes

    request = request_bytes("PUT", f"/{bucket}/short", {"Content-Length": "100"}, b"only ten b")
    try:
        raw_exchange("127.0.0.1", server.port, request, timeout=5)
    except (OSError, Exception):  # the server may close without an answer
        pass
    assert requests.get(native(server, f"{bucket}/short")).status_code == 404


# -- copy -----------------------------------------------------------------------


def test_copy_keeps_or_replaces_metadata(s3, server, bucket):
    data = os.urandom(5000)
    put = s3.put_object(Bucket=bucket, Key="src", Body=data, Metadata={"a": "1"},
                        ContentType="text/plain")
    copied = s3.copy_object(Bucket=bucket, Key="same", CopySource={"Bucket": bucket, "Key": "src"})
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    got = s3.get_object(Bucket=bucket, Key="same")
    assert got["Body"].read() == data and got["Metadata"] == {"a": "1"}
    s3.copy_object(Bucket=bucket, Key="new", CopySource=f"{bucket}/src",
                   MetadataDirective="REPLACE", Metadata={"b": "2"}, ContentType="text/csv")
    got = s3.head_object(Bucket=bucket, Key="new")
    assert got["Metadata"] == {"b": "2"} and got["ContentType"] == "text/csv"
    assert got["ETag"] == put["ETag"]


def test_copy_onto_itself_changes_metadata_only_with_replace(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="self", Body=b"bytes", Metadata={"v": "1"})
    with pytest.raises(Exception) as caught:
        s3.copy_object(Bucket=bucket, Key="self", CopySource=f"{bucket}/self")
    assert boto_code(caught.value) == "InvalidRequest"
    s3.copy_object(Bucket=bucket, Key="self", CopySource=f"{bucket}/self",
                   MetadataDirective="REPLACE", Metadata={"v": "2"})
    head = s3.head_object(Bucket=bucket, Key="self")
    assert head["Metadata"] == {"v": "2"} and head["ETag"] == put["ETag"]


def test_copy_source_conditions_and_missing_source(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="cs", Body=b"x")
    with pytest.raises(Exception) as caught:
        s3.copy_object(Bucket=bucket, Key="cd", CopySource=f"{bucket}/cs",
                       CopySourceIfMatch='"other"')
    assert boto_status(caught.value) == 412
    with pytest.raises(Exception) as caught:
        s3.copy_object(Bucket=bucket, Key="cd", CopySource=f"{bucket}/cs",
                       CopySourceIfNoneMatch=put["ETag"])
    assert boto_status(caught.value) == 412
    s3.copy_object(Bucket=bucket, Key="cd", CopySource=f"{bucket}/cs", CopySourceIfMatch=put["ETag"])
    with pytest.raises(Exception) as caught:
        s3.copy_object(Bucket=bucket, Key="cd", CopySource=f"{bucket}/absent")
    assert boto_code(caught.value) == "NoSuchKey"


# -- what is not implemented, ACLs, overrides ------------------------------------


@pytest.mark.parametrize("query", ["acl", "policy", "lifecycle", "tagging", "cors", "website",
                                   "analytics"])
def test_unsupported_subresources_are_501_not_implemented(server, bucket, query):
    answer = requests.get(f"{server.url}/{bucket}?{query}")
    assert answer.status_code == 501 and error_of(answer)["Code"] == "NotImplemented"


@pytest.mark.parametrize("headers", [{"x-amz-server-side-encryption": "AES256"},
                                     {"x-amz-tagging": "a=b"},
                                     {"x-amz-object-lock-mode": "GOVERNANCE"}],
                         ids=["encryption", "tagging", "object-lock"])
def test_headers_asking_for_what_is_not_done_are_refused(server, bucket, headers):
    answer = requests.put(f"{server.url}/{bucket}/refused", data=b"x", headers=headers)
    assert answer.status_code == 501 and error_of(answer)["Code"] == "NotImplemented"
    # A command-line client shows only the message: it names the header refused.
    assert f"the header {next(iter(headers))} is not implemented" in error_of(answer)["Message"]
    assert requests.get(native(server, f"{bucket}/refused")).status_code == 404


def test_enabling_versioning_is_not_implemented(s3, bucket):
    with pytest.raises(Exception) as caught:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert boto_code(caught.value) == "NotImplemented" and boto_status(caught.value) == 501
    assert caught.value.response["Error"]["Message"].startswith(  # type: ignore[attr-defined]
        "enabling versioning is not implemented")


def test_only_canned_acls_granting_the_owner_alone_are_accepted(s3, bucket):
    s3.put_object(Bucket=bucket, Key="acl", Body=b"x", ACL="private")
    # One owner owns every bucket and object: the bucket owner is the owner.
    for acl in ("bucket-owner-full-control", "bucket-owner-read"):
        s3.put_object(Bucket=bucket, Key=f"acl-{acl}", Body=b"x", ACL=acl)
        assert s3.get_object(Bucket=bucket, Key=f"acl-{acl}")["Body"].read() == b"x"
    with pytest.raises(Exception) as caught:
        s3.put_object(Bucket=bucket, Key="acl", Body=b"y", ACL="public-read")
    assert boto_code(caught.value) == "NotImplemented"
    assert "'public-read'" in caught.value.response["Error"]["Message"]  # type: ignore[attr-defined]
    assert s3.get_object(Bucket=bucket, Key="acl")["Body"].read() == b"x"


def test_response_overrides_and_active_types_stay_sandboxed(s3, server, bucket):
    s3.put_object(Bucket=bucket, Key="page", Body=b"<script>1</script>", ContentType="text/plain")
    got = s3.get_object(Bucket=bucket, Key="page", ResponseContentType="text/html",
                        ResponseCacheControl="no-store")
    assert got["ContentType"] == "text/html" and got["CacheControl"] == "no-store"
    answer = requests.get(f"{server.url}/{bucket}/page?response-content-type=text/html")
    assert answer.headers["Content-Disposition"] == "attachment"
    assert "sandbox" in answer.headers["Content-Security-Policy"]


def test_an_unsigned_aws_chunked_body_is_decoded_and_its_trailer_checked(server, bucket):
    import zlib

    checksum = base64.b64encode(zlib.crc32(b"hello").to_bytes(4, "big")).decode()
    headers = {"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": "5",
               "X-Amz-Content-Sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
               "X-Amz-Trailer": "x-amz-checksum-crc32"}
    for key, trailer, status in (("good", checksum, 200), ("bad", "AAAAAA==", 400)):
        body = f"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:{trailer}\r\n\r\n".encode()
        answer = requests.put(f"{server.url}/{bucket}/{key}", data=body, headers=headers)
        assert answer.status_code == status, answer.text
    stored = requests.get(native(server, f"{bucket}/good"))
    assert stored.content == b"hello" and "Content-Encoding" not in stored.headers
    assert requests.get(native(server, f"{bucket}/bad")).status_code == 404


def test_an_aws_chunked_body_is_held_to_its_content_md5_and_stored_byte_for_byte(server, bucket):
    """The decoded bytes, not the framing, are what Content-MD5 is checked
    against (by the upload, with the MD5 of its ETag); chunks of odd sizes
    cross the upload's buffers anywhere."""
    import zlib

    data = os.urandom(3 * 1024 * 1024 + 17)
    sizes = [1, 65536, 1000003, 7, 2 * 1024 * 1024]
    chunks, at = [], 0
    for size in sizes:
        chunks.append(data[at:at + size])
        at += size
    chunks.append(data[at:])
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks if chunk)
    checksum = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    framed += f"0\r\nx-amz-checksum-crc32:{checksum}\r\n\r\n".encode()
    headers = {"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(len(data)),
               "X-Amz-Content-Sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
               "X-Amz-Trailer": "x-amz-checksum-crc32"}
    right = base64.b64encode(hashlib.md5(data).digest()).decode()
    wrong = base64.b64encode(hashlib.md5(framed).digest()).decode()
    answer = requests.put(f"{server.url}/{bucket}/wrong", data=framed,
                          headers={**headers, "Content-MD5": wrong})
    assert answer.status_code == 400 and error_of(answer)["Code"] == "BadDigest"
    assert requests.get(native(server, f"{bucket}/wrong")).status_code == 404
    answer = requests.put(f"{server.url}/{bucket}/right", data=framed,
                          headers={**headers, "Content-MD5": right})
    assert answer.status_code == 200, answer.text
    assert answer.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert requests.get(native(server, f"{bucket}/right")).content == data


def test_aws_chunked_framing_without_a_streaming_payload_is_refused(server, bucket):
    answer = requests.put(f"{server.url}/{bucket}/framed", data=b"5\r\nhello\r\n0\r\n\r\n",
                          headers={"Content-Encoding": "aws-chunked"})
    assert answer.status_code == 400 and error_of(answer)["Code"] == "InvalidRequest"
    assert requests.get(native(server, f"{bucket}/framed")).status_code == 404


def test_the_only_version_is_null(s3, server, bucket):
    s3.put_object(Bucket=bucket, Key="v", Body=b"x")
    assert s3.get_object(Bucket=bucket, Key="v", VersionId="null")["Body"].read() == b"x"
    answer = requests.get(f"{server.url}/{bucket}/v?versionId=3HL4kqtJlcpXroDTDmJ")
    assert answer.status_code == 400 and error_of(answer)["Code"] == "InvalidArgument"


def test_method_not_allowed_is_s3_xml(server, bucket):
    answer = requests.post(f"{server.url}/{bucket}/k", data=b"")
    assert answer.status_code == 405 and error_of(answer)["Code"] == "MethodNotAllowed"


# -- hostile XML -------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<CreateBucketConfiguration><LocationConstraint>&lol3;</LocationConstraint></CreateBucketConfiguration>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<CreateBucketConfiguration><LocationConstraint>&x;</LocationConstraint></CreateBucketConfiguration>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, b"<not xml",
                                  b"<Wrong/>", b"<a>" * 100_000])
def test_hostile_xml_is_malformed_xml_and_creates_nothing(s3, server, body):
    name = new_bucket_name()
    answer = requests.put(f"{server.url}/{name}", data=body)
    assert answer.status_code == 400 and error_of(answer)["Code"] == "MalformedXML"
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_oversized_xml_is_refused_before_it_is_read(server):
    name = new_bucket_name()
    answer = requests.put(f"{server.url}/{name}", data=b" " * (65 * 1024))
    assert answer.status_code == 400 and error_of(answer)["Code"] == "MalformedXML"


def test_a_create_bucket_configuration_is_accepted(server, s3):
    name = new_bucket_name()
    body = (f'<CreateBucketConfiguration xmlns="{S3_NAMESPACE[1:-1]}">'
            "<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>")
    assert requests.put(f"{server.url}/{name}", data=body.encode()).status_code == 200
    s3.head_bucket(Bucket=name)


# -- logs and metrics ----------------------------------------------------------------


def test_metrics_name_s3_operations(s3, server, bucket):
    s3.put_object(Bucket=bucket, Key=f"m-{uuid.uuid4().hex}", Body=b"x")
    text = requests.get(f"{server.url}/metrics").text
    assert 'route="s3:PutObject"' in text and 'route="s3:CreateBucket"' in text

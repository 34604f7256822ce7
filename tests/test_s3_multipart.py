"""S3 multipart uploads on a live server (filesystem driver), as boto3
sends them with SigV4 and its default checksums: the low-level calls,
``upload_file``/``download_file`` engaging multipart, byte for byte and
with S3's ``md5-of-md5s-N`` ETag, the same object through the native API,
parts out of both APIs' listings, every error code, races between
Complete and Abort, the reclamation of uploads left unfinished, and
reading one part back (``partNumber``) on every driver."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from api_client import ServerProcess
from live_server import (
    MiB,
    filesystem_config,
    python_package,
    running_server,
    swift_config,
    swift_leftovers,
)
from s3_helpers import boto_code, boto_status, error_of, new_bucket_name

KEY, SECRET = "uploader", "uploader-secret-0123456789"
AUTH = (KEY, SECRET)
PART = 5 * MiB
#: The bucket where user "scoped" may write below mine/ only.
SCOPED_BUCKET = "scoped-uploads"
def driver_config(driver: str, workdir: Path, request) -> dict:
    """A server's config on ``driver``: Swift's is the real fixture, 1 MiB segments,
    so every part over that is an SLO of its own."""
    if driver == "swift":
        return swift_config(request.getfixturevalue("swift_stack"))
    config = filesystem_config(workdir / "data")
    if driver == "memory":
        config["storage"] = {"driver": "memory"}
    return config


@pytest.fixture(scope="module", params=["memory", "filesystem", "swift"])
def server(request, tmp_path_factory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp(f"s3-multipart-{request.param}")
    config = driver_config(request.param, workdir, request)
    config["auth"] = {"users": {
        KEY: {"password": SECRET, "access": "write"},
        "reader": {"password": "reader-secret-0123456789", "access": "read"},
        "scoped": {"password": "scoped-secret-0123456789", "access": "write",
                   "prefix": f"{SCOPED_BUCKET}/mine/"},
    }}
    with running_server(workdir, config) as server:
        yield server


def s3_client(url: str, key: str = KEY, secret: str = SECRET) -> Any:
    """boto3 signing as it does by default (aws-chunked, CRC checksums)."""
    boto3 = python_package("boto3")
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1, "mode": "standard"}))


@pytest.fixture(scope="module")
def s3(server):
    return s3_client(server.url)


@pytest.fixture
def bucket(s3):
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    return name


def md5_of_md5s(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.md5(part).digest() for part in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def upload_parts(s3, bucket: str, key: str, parts: list[bytes], **create) -> tuple[str, list[dict]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    listed = []
    for number, data in enumerate(parts, start=1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                              Body=data)["ETag"]
        assert etag == f'"{hashlib.md5(data).hexdigest()}"'
        listed.append({"PartNumber": number, "ETag": etag})
    return upload_id, listed


def complete(s3, bucket: str, key: str, upload_id: str, listed: list[dict]) -> dict:
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                        MultipartUpload={"Parts": listed})


def error_code(call, *args, **kwargs) -> str:
    with pytest.raises(Exception) as caught:
        call(*args, **kwargs)
    return boto_code(caught.value)


# -- the whole way through ------------------------------------------------------


def test_parts_joined_by_complete_are_the_object_byte_for_byte(s3, server, bucket):
    parts = [os.urandom(PART), os.urandom(PART), os.urandom(1234)]
    upload_id, listed = upload_parts(s3, bucket, "dir/big.bin", parts, ContentType="text/plain",
                                     Metadata={"camera": "x100"})
    done = complete(s3, bucket, "dir/big.bin", upload_id, listed)
    assert done["ETag"] == md5_of_md5s(parts)
    got = s3.get_object(Bucket=bucket, Key="dir/big.bin")
    assert got["Body"].read() == b"".join(parts)
    assert got["ETag"] == md5_of_md5s(parts) and got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"camera": "x100"}
    head = s3.head_object(Bucket=bucket, Key="dir/big.bin")
    assert head["ETag"] == md5_of_md5s(parts) and head["ContentLength"] == 2 * PART + 1234
    ranged = s3.get_object(Bucket=bucket, Key="dir/big.bin", Range=f"bytes={PART - 2}-{PART + 1}",
                           IfMatch=md5_of_md5s(parts))
    assert ranged["Body"].read() == b"".join(parts)[PART - 2:PART + 2]


def test_the_native_api_reads_the_same_bytes_and_shows_both_etags(s3, server, bucket, request):
    parts = [os.urandom(PART), b"tail"]
    upload_id, listed = upload_parts(s3, bucket, "k", parts)
    complete(s3, bucket, "k", upload_id, listed)
    native = requests.get(f"{server.url}/v1/objects/{bucket}/k", auth=AUTH)
    assert native.status_code == 200 and native.content == b"".join(parts)
    if request.node.callspec.params["server"] == "swift":  # joined unread: S3's composite
        assert native.headers["ETag"] == md5_of_md5s(parts)
    else:
        assert native.headers["ETag"] == f'"{hashlib.md5(native.content).hexdigest()}"'
    assert f'"{native.headers["X-Object-Meta-S3-Multipart-Etag"]}"' == md5_of_md5s(parts)


def test_upload_file_and_download_file_engage_multipart(s3, bucket, tmp_path: Path):
    boto3 = python_package("boto3")
    config = boto3.s3.transfer.TransferConfig(multipart_threshold=PART, multipart_chunksize=PART,
                                              max_concurrency=3)
    data = os.urandom(3 * PART + 4321)
    source, target = tmp_path / "up.bin", tmp_path / "down.bin"
    source.write_bytes(data)
    s3.upload_file(str(source), bucket, "file.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="file.bin")
    chunks = [data[i:i + PART] for i in range(0, len(data), PART)]
    assert head["ETag"] == md5_of_md5s(chunks)
    s3.download_file(bucket, "file.bin", str(target), Config=config)
    assert target.read_bytes() == data


def test_a_single_small_part_makes_an_object(s3, bucket):
    upload_id, listed = upload_parts(s3, bucket, "one", [b"only part"])
    assert complete(s3, bucket, "one", upload_id, listed)["ETag"] == md5_of_md5s([b"only part"])
    assert s3.get_object(Bucket=bucket, Key="one")["Body"].read() == b"only part"


def test_nothing_is_visible_until_complete_and_parts_are_never_listed(s3, server, bucket):
    upload_id, listed = upload_parts(s3, bucket, "hidden/obj", [os.urandom(PART), b"end"])
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert error_code(s3.head_object, Bucket=bucket, Key="hidden/obj") == "404"
    native = requests.get(f"{server.url}/v1/objects/", auth=AUTH).json()
    assert ".blobsvc" not in [entry["name"] for entry in native["entries"]]
    assert requests.get(f"{server.url}/v1/objects/{bucket}/", auth=AUTH).status_code == 404
    complete(s3, bucket, "hidden/obj", upload_id, listed)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["hidden/obj"]
    names = requests.get(f"{server.url}/v1/objects/{bucket}/hidden/", auth=AUTH).json()
    assert [entry["name"] for entry in names["entries"]] == ["obj"]


def test_parts_complete_leaves_out_are_discarded(s3, server, bucket):
    parts = [os.urandom(PART), b"unused", b"last"]
    upload_id, listed = upload_parts(s3, bucket, "k", parts)
    done = complete(s3, bucket, "k", upload_id, [listed[0], listed[2]])
    assert done["ETag"] == md5_of_md5s([parts[0], parts[2]])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == parts[0] + parts[2]
    assert not _leftovers(server, bucket)

def test_a_part_uploaded_again_replaces_the_earlier_one(s3, bucket):
    upload_id, _ = upload_parts(s3, bucket, "k", [os.urandom(PART)])
    first = os.urandom(PART)
    etag = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1,
                          Body=first)["ETag"]
    last = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2,
                          Body=b"z")["ETag"]
    parts = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [(1, etag, PART),
                                                                         (2, last, 1)]
    complete(s3, bucket, "k", upload_id, [{"PartNumber": 1, "ETag": etag},
                                          {"PartNumber": 2, "ETag": last}])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == first + b"z"


def test_abort_removes_the_upload_and_its_parts(s3, server, bucket):
    upload_id, listed = upload_parts(s3, bucket, "gone", [os.urandom(PART), b"x"])
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload_id)
    assert error_code(complete, s3, bucket, "gone", upload_id, listed) == "NoSuchUpload"
    assert error_code(s3.list_parts, Bucket=bucket, Key="gone", UploadId=upload_id) \
        == "NoSuchUpload"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert not list((server.workdir / "data" / ".blobsvc" / "multipart" / bucket).glob("*/*"))


def test_upload_part_copy_takes_a_whole_object_or_a_range(s3, bucket):
    source = os.urandom(PART + 100)
    s3.put_object(Bucket=bucket, Key="src", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="copied")["UploadId"]
    whole = s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=upload_id, PartNumber=1,
                                CopySource={"Bucket": bucket, "Key": "src"})["CopyPartResult"]
    ranged = s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=upload_id, PartNumber=2,
                                 CopySource={"Bucket": bucket, "Key": "src"},
                                 CopySourceRange="bytes=10-19")["CopyPartResult"]
    assert whole["ETag"] == f'"{hashlib.md5(source).hexdigest()}"'
    assert ranged["ETag"] == f'"{hashlib.md5(source[10:20]).hexdigest()}"'
    complete(s3, bucket, "copied", upload_id, [{"PartNumber": 1, "ETag": whole["ETag"]},
                                               {"PartNumber": 2, "ETag": ranged["ETag"]}])
    assert s3.get_object(Bucket=bucket, Key="copied")["Body"].read() == source + source[10:20]
    assert error_code(s3.upload_part_copy, Bucket=bucket, Key="copied", UploadId=upload_id,
                      PartNumber=1, CopySource={"Bucket": bucket, "Key": "src"}) \
        == "NoSuchUpload"


def test_list_multipart_uploads_names_each_upload_in_progress(s3, bucket):
    ids = {key: s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
           for key in ("a/1", "a/2", "b")}
    listed = s3.list_multipart_uploads(Bucket=bucket)
    assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == sorted(ids.items())
    assert listed["Uploads"][0]["Initiator"]["ID"] == KEY
    prefixed = s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")
    assert [u["Key"] for u in prefixed["Uploads"]] == ["a/1", "a/2"]
    grouped = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [u["Key"] for u in grouped["Uploads"]] == ["b"]
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["a/"]
    first = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2)
    assert first["IsTruncated"] and [u["Key"] for u in first["Uploads"]] == ["a/1", "a/2"]
    rest = s3.list_multipart_uploads(Bucket=bucket, KeyMarker=first["NextKeyMarker"],
                                     UploadIdMarker=first["NextUploadIdMarker"])
    assert [u["Key"] for u in rest["Uploads"]] == ["b"] and not rest["IsTruncated"]


def test_list_parts_pages_through_the_parts(s3, bucket):
    upload_id, _ = upload_parts(s3, bucket, "k", [b"1", b"2", b"3"])
    first = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id, MaxParts=2)
    assert [p["PartNumber"] for p in first["Parts"]] == [1, 2] and first["IsTruncated"]
    rest = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id,
                         PartNumberMarker=first["NextPartNumberMarker"])
    assert [p["PartNumber"] for p in rest["Parts"]] == [3] and not rest["IsTruncated"]


# -- refusals -----------------------------------------------------------------------


def test_a_part_but_the_last_under_5_mib_is_entity_too_small(s3, bucket):
    upload_id, listed = upload_parts(s3, bucket, "small", [b"a" * (PART - 1), b"b"])
    assert error_code(complete, s3, bucket, "small", upload_id, listed) == "EntityTooSmall"
    assert error_code(s3.head_object, Bucket=bucket, Key="small") == "404"
    s3.list_parts(Bucket=bucket, Key="small", UploadId=upload_id)  # still in progress


def test_complete_refuses_unknown_parts_wrong_etags_and_disorder(s3, bucket):
    upload_id, listed = upload_parts(s3, bucket, "k", [os.urandom(PART), os.urandom(PART)])
    assert error_code(complete, s3, bucket, "k", upload_id,
                      [*listed, {"PartNumber": 3, "ETag": listed[0]["ETag"]}]) == "InvalidPart"
    assert error_code(complete, s3, bucket, "k", upload_id,
                      [listed[0], {"PartNumber": 2, "ETag": '"' + "0" * 32 + '"'}]) \
        == "InvalidPart"
    assert error_code(complete, s3, bucket, "k", upload_id, listed[::-1]) == "InvalidPartOrder"
    assert error_code(complete, s3, bucket, "k", upload_id, [listed[0], listed[0]]) \
        == "InvalidPartOrder"
    complete(s3, bucket, "k", upload_id, listed)


@pytest.mark.parametrize("number", [0, 10_001])
def test_a_part_number_out_of_1_to_10000_is_invalid(server, s3, bucket, number):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    answer = requests.put(f"{server.url}/{bucket}/k?partNumber={number}&uploadId={upload_id}",
                          data=b"x", auth=AUTH)
    assert answer.status_code in (400, 403)  # Basic auth, then the number
    assert error_code(s3.upload_part, Bucket=bucket, Key="k", UploadId=upload_id,
                      PartNumber=number, Body=b"x") == "InvalidArgument"


def test_an_unknown_upload_or_another_keys_is_no_such_upload(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mine")["UploadId"]
    for key, uid in (("mine", "0" * 32), ("mine", "not-an-id"), ("other", upload_id)):
        assert error_code(s3.upload_part, Bucket=bucket, Key=key, UploadId=uid, PartNumber=1,
                          Body=b"x") == "NoSuchUpload"
        assert error_code(s3.abort_multipart_upload, Bucket=bucket, Key=key,
                          UploadId=uid) == "NoSuchUpload"


def test_metadata_leaving_no_room_for_the_etag_is_refused_at_create(s3, bucket):
    """The S3 ETag is stored as one more metadata name: a Create whose
    metadata fills the limit is refused before any part is sent."""
    metadata = {f"m{i}": "v" for i in range(64)}
    assert error_code(s3.create_multipart_upload, Bucket=bucket, Key="k", Metadata=metadata) \
        == "MetadataTooLarge"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

def test_create_in_a_missing_bucket_is_no_such_bucket(s3):
    assert error_code(s3.create_multipart_upload, Bucket=new_bucket_name(), Key="k") \
        == "NoSuchBucket"


def test_a_complete_body_that_is_not_a_part_list_is_malformed(server, s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    for body in (b"<Nope/>", b"<CompleteMultipartUpload/>", b"not xml",
                 b'<!DOCTYPE x [<!ENTITY a "b">]><CompleteMultipartUpload/>'):
        answer = requests.post(f"{server.url}/{bucket}/k?uploadId={upload_id}", data=body,
                               auth=AUTH)
        assert answer.status_code == 400 and b"<Code>MalformedXML</Code>" in answer.content


def test_a_complete_body_past_its_cap_is_refused_unread(server, s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    body = b"<CompleteMultipartUpload>" + b" " * (6 * MiB) + b"</CompleteMultipartUpload>"
    answer = requests.post(f"{server.url}/{bucket}/k?uploadId={upload_id}", data=body, auth=AUTH)
    assert answer.status_code == 400 and b"<Code>MalformedXML</Code>" in answer.content

def test_a_complete_body_naming_10000_parts_is_read_whole(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    listed = [{"PartNumber": n, "ETag": f'"{hashlib.md5(str(n).encode()).hexdigest()}"',
               "ChecksumCRC32": "AAAAAA=="} for n in range(1, 10_001)]
    assert error_code(complete, s3, bucket, "k", upload_id, listed) == "InvalidPart"


def test_access_is_decided_before_a_part_is_read(server, bucket, tmp_path):
    s3 = s3_client(server.url)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    answer = requests.put(f"{server.url}/{bucket}/k?partNumber=1&uploadId={upload_id}",
                          data=b"x" * 1000)
    assert answer.status_code == 403 and b"AccessDenied" in answer.content
    assert s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id).get("Parts", []) == []


def test_a_part_whose_body_fails_its_checks_is_not_stored(s3, bucket):
    """A wrong Content-MD5, or a wrong checksum: BadDigest, and the part
    stored before under that number stays."""
    upload_id, _ = upload_parts(s3, bucket, "k", [b"kept"])
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    assert error_code(s3.upload_part, Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1,
                      Body=b"replacement", ContentMD5=wrong) == "BadDigest"
    crc = base64.b64encode((12345).to_bytes(4, "big")).decode()
    assert error_code(s3.upload_part, Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2,
                      Body=b"second", ChecksumCRC32=crc) == "BadDigest"
    parts = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in parts] \
        == [(1, f'"{hashlib.md5(b"kept").hexdigest()}"')]


def test_complete_with_if_none_match_creates_only(s3, bucket):
    s3.put_object(Bucket=bucket, Key="taken", Body=b"first")
    upload_id, listed = upload_parts(s3, bucket, "taken", [b"second"])
    with pytest.raises(Exception) as caught:
        s3.complete_multipart_upload(Bucket=bucket, Key="taken", UploadId=upload_id,
                                     MultipartUpload={"Parts": listed}, IfNoneMatch="*")
    assert boto_code(caught.value) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="taken")["Body"].read() == b"first"
    complete(s3, bucket, "taken", upload_id, listed)  # the parts are still there
    assert s3.get_object(Bucket=bucket, Key="taken")["Body"].read() == b"second"


@pytest.mark.parametrize("method, target", [
    ("PUT", "{bucket}?uploads"), ("POST", "{bucket}?uploadId=x"), ("DELETE", "{bucket}?uploads"),
    ("GET", "{bucket}/k?uploads"), ("PUT", "{bucket}/k?uploads"), ("HEAD", "{bucket}/k?uploadId=x"),
])
def test_multipart_subresources_where_s3_has_no_operation_are_not_allowed(server, bucket,
                                                                          method, target):
    answer = requests.request(method, f"{server.url}/{target.format(bucket=bucket)}", auth=AUTH)
    assert answer.status_code == 405


def test_a_part_number_without_an_upload_reads_only(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    answer = requests.put(f"{server.url}/{bucket}/k?partNumber=1", data=b"y", auth=AUTH)
    assert answer.status_code == 501 and b"<Code>NotImplemented</Code>" in answer.content
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_every_multipart_step_needs_write_access_to_the_key(server, s3):
    s3.create_bucket(Bucket=SCOPED_BUCKET)
    s3.put_object(Bucket=SCOPED_BUCKET, Key="other/src", Body=b"not yours")
    theirs = s3.create_multipart_upload(Bucket=SCOPED_BUCKET, Key="other/k")["UploadId"]
    reader = s3_client(server.url, "reader", "reader-secret-0123456789")
    assert error_code(reader.create_multipart_upload, Bucket=SCOPED_BUCKET, Key="mine/k") \
        == "AccessDenied"
    scoped = s3_client(server.url, "scoped", "scoped-secret-0123456789")
    assert error_code(scoped.create_multipart_upload, Bucket=SCOPED_BUCKET, Key="other/k") \
        == "AccessDenied"
    for call, extra in ((scoped.upload_part, {"PartNumber": 1, "Body": b"x"}),
                        (scoped.list_parts, {}), (scoped.abort_multipart_upload, {})):
        assert error_code(call, Bucket=SCOPED_BUCKET, Key="other/k", UploadId=theirs,
                          **extra) == "AccessDenied"
    mine = scoped.create_multipart_upload(Bucket=SCOPED_BUCKET, Key="mine/k")["UploadId"]
    assert error_code(scoped.upload_part_copy, Bucket=SCOPED_BUCKET, Key="mine/k", UploadId=mine,
                      PartNumber=1, CopySource={"Bucket": SCOPED_BUCKET, "Key": "other/src"}) \
        == "AccessDenied"
    etag = scoped.upload_part(Bucket=SCOPED_BUCKET, Key="mine/k", UploadId=mine, PartNumber=1,
                              Body=b"mine")["ETag"]
    complete(scoped, SCOPED_BUCKET, "mine/k", mine, [{"PartNumber": 1, "ETag": etag}])
    assert s3.list_parts(Bucket=SCOPED_BUCKET, Key="other/k", UploadId=theirs).get("Parts", []) \
        == []


# -- races ----------------------------------------------------------------------------


def _race(*calls) -> list[object]:
    """Run ``calls`` at once; what each returned or raised."""
    outcomes: list[object] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        start.wait(timeout=10)
        try:
            outcomes[index] = calls[index]()
        except Exception as exc:  # the outcome under test
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _leftovers(server, bucket: str) -> list[Path]:
    return list((server.workdir / "data" / ".blobsvc" / "multipart" / bucket).glob("*/*"))


@pytest.mark.parametrize("rival", ["abort", "complete"])
def test_a_complete_racing_an_abort_or_a_complete_has_one_outcome(server, bucket, rival):
    parts = [os.urandom(PART), os.urandom(PART), b"tail"]
    s3 = s3_client(server.url)
    upload_id, listed = upload_parts(s3, bucket, "raced", parts)
    other = s3_client(server.url)

    def completing():
        return complete(s3, bucket, "raced", upload_id, listed)

    def rivalling():
        if rival == "abort":
            return other.abort_multipart_upload(Bucket=bucket, Key="raced", UploadId=upload_id)
        return complete(other, bucket, "raced", upload_id, listed)

    outcomes = _race(completing, rivalling)
    completed = [o for o in outcomes if isinstance(o, dict) and "ETag" in o and "Location" in o]
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert all(boto_code(exc) == "NoSuchUpload" for exc in refused), outcomes
    try:
        got = s3.get_object(Bucket=bucket, Key="raced")
    except Exception as exc:
        assert boto_code(exc) == "NoSuchKey" and not completed
    else:
        assert got["Body"].read() == b"".join(parts) and got["ETag"] == md5_of_md5s(parts)
        assert completed
    assert not _leftovers(server, bucket)


# -- reclamation ----------------------------------------------------------------------


def test_an_upload_left_past_its_expiry_is_reclaimed_with_its_parts(tmp_path):
    config = filesystem_config(tmp_path / "data")
    config["auth"] = {"users": {KEY: {"password": SECRET, "access": "write"}}}
    config["s3"] = {"multipart_expiry": 2}
    with running_server(tmp_path, config) as server:
        s3 = s3_client(server.url)
        bucket = new_bucket_name()
        s3.create_bucket(Bucket=bucket)
        old, _ = upload_parts(s3, bucket, "old", [b"a", b"b"])
        lazy, _ = upload_parts(s3, bucket, "lazy", [b"c"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and int(time.time()) <= int(lazy[:8], 16) + 2:
            time.sleep(0.1)
        uploads = server.workdir / "data" / ".blobsvc" / "multipart" / bucket
        assert error_code(s3.upload_part, Bucket=bucket, Key="lazy", UploadId=lazy,
                          PartNumber=2, Body=b"x") == "NoSuchUpload"
        assert {path.name for path in uploads.iterdir()} == {old}  # removed on the way
        young = s3.create_multipart_upload(Bucket=bucket, Key="young")["UploadId"]
        assert {path.name for path in uploads.iterdir()} == {young}  # the pass took old
        assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] \
            == [young]


# -- reading one part: GetObject and HeadObject with partNumber -------------------------


@pytest.fixture(scope="module", params=["memory", "filesystem", "swift"])
def part_server(request, tmp_path_factory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp(f"s3-parts-{request.param}")
    config = driver_config(request.param, workdir, request)
    config["auth"] = {"users": {KEY: {"password": SECRET, "access": "write"}}}
    with running_server(workdir, config) as server:
        yield server


@pytest.fixture
def part_s3(part_server):
    return s3_client(part_server.url)


def multipart_object(s3, key: str, parts: list[bytes]) -> str:
    """A new bucket holding ``key`` joined from ``parts``; the bucket's name."""
    bucket = new_bucket_name()
    s3.create_bucket(Bucket=bucket)
    upload_id, listed = upload_parts(s3, bucket, key, parts)
    complete(s3, bucket, key, upload_id, listed)
    return bucket


def assert_parts_read_back(s3, bucket: str, key: str, parts: list[bytes], etag: str) -> None:
    """Every part by GET and HEAD: its bytes, 206, where it lies, the count."""
    total = sum(len(part) for part in parts)
    start = 0
    for number, part in enumerate(parts, start=1):
        span = f"bytes {start}-{start + len(part) - 1}/{total}"
        got = s3.get_object(Bucket=bucket, Key=key, PartNumber=number)
        assert got["Body"].read() == part, number
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"] == span and got["ContentLength"] == len(part)
        assert got["PartsCount"] == len(parts) and got["ETag"] == etag
        head = s3.head_object(Bucket=bucket, Key=key, PartNumber=number)
        assert head["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert head["ContentRange"] == span and head["ContentLength"] == len(part)
        assert head["PartsCount"] == len(parts) and head["ETag"] == etag
        assert "Metadata" not in head or head["Metadata"] == {}
        start += len(part)
    assert error_code(s3.get_object, Bucket=bucket, Key=key,
                      PartNumber=len(parts) + 1) == "InvalidPartNumber"
    with pytest.raises(Exception) as caught:
        s3.head_object(Bucket=bucket, Key=key, PartNumber=len(parts) + 1)
    assert boto_status(caught.value) == 416


@pytest.mark.parametrize("sizes", [[PART, PART, 1234], [PART], [PART + 7, PART, 10],
                                   [PART, PART + 1, PART + 2]],
                         ids=["equal-then-short", "one", "unequal", "unequal-last-longest"])
def test_each_part_of_a_multipart_object_byte_for_byte(part_s3, sizes):
    parts = [os.urandom(size) for size in sizes]
    bucket = multipart_object(part_s3, "dir/parts.bin", parts)
    assert_parts_read_back(part_s3, bucket, "dir/parts.bin", parts, md5_of_md5s(parts))


def test_a_part_read_honours_if_match_on_the_s3_etag(part_s3):
    parts = [os.urandom(PART), b"tail"]
    bucket = multipart_object(part_s3, "k", parts)
    got = part_s3.get_object(Bucket=bucket, Key="k", PartNumber=2, IfMatch=md5_of_md5s(parts))
    assert got["Body"].read() == b"tail"
    assert error_code(part_s3.get_object, Bucket=bucket, Key="k", PartNumber=2,
                      IfMatch='"0123456789abcdef0123456789abcdef-2"') == "PreconditionFailed"


def test_a_plain_object_is_its_one_part(part_s3):
    bucket = new_bucket_name()
    part_s3.create_bucket(Bucket=bucket)
    part_s3.put_object(Bucket=bucket, Key="plain", Body=b"0123456789")
    got = part_s3.get_object(Bucket=bucket, Key="plain", PartNumber=1)
    assert got["Body"].read() == b"0123456789"
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == "bytes 0-9/10" and "PartsCount" not in got
    assert got["ETag"] == f'"{hashlib.md5(b"0123456789").hexdigest()}"'
    head = part_s3.head_object(Bucket=bucket, Key="plain", PartNumber=1)
    assert head["ContentLength"] == 10 and head["ContentRange"] == "bytes 0-9/10"
    assert error_code(part_s3.get_object, Bucket=bucket, Key="plain",
                      PartNumber=2) == "InvalidPartNumber"
    part_s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    empty = part_s3.get_object(Bucket=bucket, Key="empty", PartNumber=1)
    assert empty["Body"].read() == b"" and "ContentRange" not in empty
    assert empty["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.parametrize("query, headers, status, code", [
    ("partNumber=0", {}, 400, "InvalidArgument"),
    ("partNumber=10001", {}, 400, "InvalidArgument"),
    ("partNumber=x", {}, 400, "InvalidArgument"),
    ("partNumber=-1", {}, 400, "InvalidArgument"),
    ("partNumber=", {}, 400, "InvalidArgument"),
    ("partNumber=1", {"Range": "bytes=0-1"}, 400, "InvalidRequest"),
])
def test_a_part_number_s3_would_refuse_is_refused(part_server, part_s3, query, headers, status,
                                                  code):
    bucket = new_bucket_name()
    part_s3.create_bucket(Bucket=bucket)
    part_s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    answer = requests.get(f"{part_server.url}/{bucket}/k?{query}", headers=headers, auth=AUTH)
    assert answer.status_code == status and error_of(answer)["Code"] == code
    head = requests.head(f"{part_server.url}/{bucket}/k?{query}", headers=headers, auth=AUTH)
    assert head.status_code == status and head.content == b""


def test_a_missing_key_with_a_part_number_is_no_such_key(part_s3):
    bucket = new_bucket_name()
    part_s3.create_bucket(Bucket=bucket)
    assert error_code(part_s3.get_object, Bucket=bucket, Key="absent", PartNumber=1) == "NoSuchKey"


def test_boundaries_not_kept_for_the_object_read_are_never_guessed(part_server, part_s3):
    """A layout kept aside is believed only for its own key and ETag: a
    native copy elsewhere, or other bytes claiming a multipart ETag, get
    NotImplemented rather than another object's boundaries."""
    parts = [os.urandom(PART + 3), os.urandom(PART), b"end"]
    bucket = multipart_object(part_s3, "orig", parts)
    url = f"{part_server.url}/v1/objects/{bucket}"
    assert requests.post(f"{part_server.url}/v1/copy", auth=AUTH, json={
        "from": f"{bucket}/orig", "to": f"{bucket}/copied"}).status_code in (200, 201)
    answer = requests.get(f"{part_server.url}/{bucket}/copied?partNumber=1", auth=AUTH)
    assert answer.status_code == 501 and error_of(answer)["Code"] == "NotImplemented"
    forged = {"X-Object-Meta-S3-Multipart-Etag": f"{'ab' * 16}-3",
              "X-Object-Meta-S3-Multipart-Parts": "listed"}
    assert requests.put(f"{url}/orig", data=b"x" * 100, headers=forged,
                        auth=AUTH).status_code in (200, 201)
    answer = requests.get(f"{part_server.url}/{bucket}/orig?partNumber=1", auth=AUTH)
    assert answer.status_code == 501 and error_of(answer)["Code"] == "NotImplemented"
    assert requests.put(f"{url}/legacy", data=b"y" * 10, auth=AUTH,
                        headers={"X-Object-Meta-S3-Multipart-Etag": f"{'cd' * 16}-2"}
                        ).status_code in (200, 201)
    answer = requests.get(f"{part_server.url}/{bucket}/legacy?partNumber=1", auth=AUTH)
    assert answer.status_code == 501 and error_of(answer)["Code"] == "NotImplemented"


def test_a_later_complete_of_the_key_replaces_its_layout(part_server, part_s3):
    first = [os.urandom(PART + 1), os.urandom(PART), b"1"]
    bucket = multipart_object(part_s3, "k", first)
    assert_parts_read_back(part_s3, bucket, "k", first, md5_of_md5s(first))
    second = [os.urandom(PART), b"22"]
    upload_id, listed = upload_parts(part_s3, bucket, "k", second)
    complete(part_s3, bucket, "k", upload_id, listed)
    assert_parts_read_back(part_s3, bucket, "k", second, md5_of_md5s(second))
    records = part_server.workdir / "data" / ".blobsvc" / "multipart" / bucket / "completed"
    assert not records.exists() or list(records.iterdir()) == []
    part_s3.put_object(Bucket=bucket, Key="k", Body=b"plain now")
    got = part_s3.get_object(Bucket=bucket, Key="k", PartNumber=1)
    assert got["Body"].read() == b"plain now" and "PartsCount" not in got


def test_the_layout_is_not_user_metadata(part_server, part_s3):
    parts = [os.urandom(PART), b"tail"]
    bucket = multipart_object(part_s3, "k", parts)
    assert part_s3.head_object(Bucket=bucket, Key="k")["Metadata"] == {}
    answer = requests.get(f"{part_server.url}/{bucket}/k", auth=AUTH)
    assert not any(name.lower().startswith("x-amz-meta-") for name in answer.headers)


# -- on Swift ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def swift_server(tmp_path_factory, swift_stack) -> Iterator[tuple[ServerProcess, str]]:
    """Segments of 8 MiB: 5 MiB parts are plain objects, joined into an SLO
    by Swift's server-side copies."""
    config = swift_config(swift_stack, storage={"segment_size": 8 * MiB})
    config["auth"] = {"users": {KEY: {"password": SECRET, "access": "write"}}}
    with running_server(tmp_path_factory.mktemp("s3-multipart-swift"), config) as server:
        yield server, config["storage"]["container"]


def test_on_swift_complete_makes_an_slo_byte_for_byte_with_s3s_etag(swift_server, swift_stack):
    server, container = swift_server
    s3 = s3_client(server.url)
    bucket = new_bucket_name()
    s3.create_bucket(Bucket=bucket)
    parts = [os.urandom(PART), os.urandom(PART), b"tail"]
    upload_id, listed = upload_parts(s3, bucket, "big", parts, Metadata={"k": "v"})
    assert complete(s3, bucket, "big", upload_id, listed)["ETag"] == md5_of_md5s(parts)
    got = s3.get_object(Bucket=bucket, Key="big")
    assert got["Body"].read() == b"".join(parts) and got["ETag"] == md5_of_md5s(parts)
    assert got["Metadata"] == {"k": "v"}
    native = requests.get(f"{server.url}/v1/objects/{bucket}/big", auth=AUTH)
    assert native.content == b"".join(parts)
    # The join's own ETag on Swift is S3's too: listings agree with HEAD.
    assert native.headers["ETag"] == md5_of_md5s(parts)
    orphans, _ = swift_leftovers(swift_stack, container, [f"{bucket}/big"])
    assert orphans == []
    assert [(entry["Key"], entry["ETag"]) for entry in s3.list_objects_v2(Bucket=bucket)[
        "Contents"]] == [("big", md5_of_md5s(parts))]
    assert _swift_private(swift_stack, container, f".blobsvc/multipart/{bucket}/") == []
    with swift_head(swift_stack, container, f"{bucket}/big") as headers:
        assert headers.get("x-static-large-object", "").lower() == "true"


def test_on_swift_abort_removes_the_parts_and_the_upload(swift_server, swift_stack):
    server, container = swift_server
    s3 = s3_client(server.url)
    bucket = new_bucket_name()
    s3.create_bucket(Bucket=bucket)
    upload_id, listed = upload_parts(s3, bucket, "gone", [os.urandom(PART), b"x"])
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] \
        == [upload_id]
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload_id)
    assert error_code(complete, s3, bucket, "gone", upload_id, listed) == "NoSuchUpload"
    assert _swift_private(swift_stack, container, f".blobsvc/multipart/{bucket}/") == []
    assert requests.get(f"{server.url}/v1/objects/{bucket}/", auth=AUTH).status_code == 404


def test_on_swift_each_part_reads_back_byte_for_byte(swift_server):
    server, _ = swift_server
    s3 = s3_client(server.url)
    for sizes in ([PART, PART, 1234], [PART + 5, PART, 7]):
        parts = [os.urandom(size) for size in sizes]
        bucket = multipart_object(s3, "big", parts)
        assert_parts_read_back(s3, bucket, "big", parts, md5_of_md5s(parts))


def test_on_swift_an_expired_upload_is_reclaimed_with_its_parts(tmp_path, swift_stack):
    config = swift_config(swift_stack)
    config["auth"] = {"users": {KEY: {"password": SECRET, "access": "write"}}}
    config["s3"] = {"multipart_expiry": 2}
    container = config["storage"]["container"]
    with running_server(tmp_path, config) as server:
        s3 = s3_client(server.url)
        bucket = new_bucket_name()
        s3.create_bucket(Bucket=bucket)
        old, _ = upload_parts(s3, bucket, "old", [b"a", b"b"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and int(time.time()) <= int(old[:8], 16) + 2:
            time.sleep(0.1)
        young = s3.create_multipart_upload(Bucket=bucket, Key="young")["UploadId"]
        assert _swift_private(swift_stack, container, f".blobsvc/multipart/{bucket}/") \
            == [f".blobsvc/multipart/{bucket}/{young}/upload"]


def _swift_private(stack, container: str, prefix: str) -> list[str]:
    """The names under ``prefix`` in ``container``, read from Swift itself."""
    from swiftclient.client import Connection

    conn = Connection(authurl=stack.auth_url, user=stack.user, key=stack.key, auth_version="1")
    try:
        return [o["name"] for o in conn.get_container(container, prefix=prefix,
                                                      full_listing=True)[1]]
    finally:
        conn.close()


@contextlib.contextmanager
def swift_head(stack, container: str, name: str) -> Iterator[dict]:
    from swiftclient.client import Connection

    conn = Connection(authurl=stack.auth_url, user=stack.user, key=stack.key, auth_version="1")
    try:
        yield conn.head_object(container, name)
    finally:
        conn.close()


def test_a_copy_of_a_multipart_object_keeps_its_s3_etag(s3, bucket):
    parts = [os.urandom(PART), b"end"]
    upload_id, listed = upload_parts(s3, bucket, "orig", parts)
    complete(s3, bucket, "orig", upload_id, listed)
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "orig"})
    assert copied["CopyObjectResult"]["ETag"] == md5_of_md5s(parts)
    assert s3.head_object(Bucket=bucket, Key="copy")["ETag"] == md5_of_md5s(parts)
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"".join(parts)


def test_a_large_part_streams_with_flat_memory(tmp_path):
    """A 64 MiB part, signed and aws-chunked, then joined and read back:
    the server's peak RSS stays under 100 MiB, so no part is held whole."""
    big = b"".join(hashlib.sha256(str(i).encode()).digest() * (MiB // 32) for i in range(64))
    config = filesystem_config(tmp_path / "data", workers=1)
    config["auth"] = {"users": {KEY: {"password": SECRET, "access": "write"}}}
    with running_server(tmp_path, config) as server:
        s3 = s3_client(server.url)
        bucket = new_bucket_name()
        s3.create_bucket(Bucket=bucket)
        upload_id, listed = upload_parts(s3, bucket, "large", [big, b"tail"])
        assert complete(s3, bucket, "large", upload_id, listed)["ETag"] \
            == md5_of_md5s([big, b"tail"])
        back = hashlib.md5()
        for chunk in s3.get_object(Bucket=bucket, Key="large")["Body"].iter_chunks(MiB):
            back.update(chunk)
        assert back.hexdigest() == hashlib.md5(big + b"tail").hexdigest()
        peak = server.peak_rss_kib()
        assert peak < 100 * 1024, f"peak RSS {peak} KiB"

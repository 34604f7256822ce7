"""S3 multipart uploads on a live server (filesystem driver), as boto3
sends them with SigV4 and its default checksums: the low-level calls,
``upload_file``/``download_file`` engaging multipart, byte for byte and
with S3's ``md5-of-md5s-N`` ETag, the same object through the native API,
parts out of both APIs' listings, every error code, races between
Complete and Abort, and the reclamation of uploads left unfinished."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from api_client import ServerProcess
from live_server import MiB, filesystem_config, python_package, running_server
from s3_helpers import boto_code, new_bucket_name

KEY, SECRET = "uploader", "uploader-secret-0123456789"
AUTH = (KEY, SECRET)
PART = 5 * MiB
#: Seconds an unfinished upload lives on the test server.
EXPIRY = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("s3-multipart")
    config = filesystem_config(workdir / "data")
    config["auth"] = {"users": {KEY: {"password": SECRET, "access": "write"}}}
    config["s3"] = {"multipart_expiry": EXPIRY}
    with running_server(workdir, config) as server:
        yield server


def s3_client(url: str) -> Any:
    """boto3 signing as it does by default (aws-chunked, CRC checksums)."""
    boto3 = python_package("boto3")
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=KEY, aws_secret_access_key=SECRET,
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


def test_the_native_api_reads_the_same_bytes_and_shows_both_etags(s3, server, bucket):
    parts = [os.urandom(PART), b"tail"]
    upload_id, listed = upload_parts(s3, bucket, "k", parts)
    complete(s3, bucket, "k", upload_id, listed)
    native = requests.get(f"{server.url}/v1/objects/{bucket}/k", auth=AUTH)
    assert native.status_code == 200 and native.content == b"".join(parts)
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

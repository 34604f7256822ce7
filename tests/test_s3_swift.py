"""The S3 API on the real Swift fixture: buckets kept while empty, large
objects (SLOs) byte for byte, listings, copy and bulk delete, and the same
objects and ETags through the native API. Requests are signed as boto3
signs by default (aws-chunked uploads with trailing checksums included)."""

from __future__ import annotations

import hashlib
import os
from typing import Iterator

import pytest
import requests
from api_client import ServerProcess
from live_server import MiB, python_package, running_server, swift_config
from s3_helpers import boto_code, boto_status, error_of, new_bucket_name

KEY, SECRET = "swift-tester", "swift-tester-secret-0123"
#: Basic credentials of the same user, for the native API.
AUTH = (KEY, SECRET)


@pytest.fixture(scope="module")
def server(tmp_path_factory, swift_stack) -> Iterator[ServerProcess]:
    env = {"BLOBSVC_ACCESS_KEY": KEY, "BLOBSVC_SECRET_KEY": SECRET}
    with running_server(tmp_path_factory.mktemp("s3-swift"), swift_config(swift_stack),
                        env=env) as server:
        yield server


@pytest.fixture(scope="module")
def s3(server):
    boto3 = python_package("boto3")
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1, "mode": "standard"}))


@pytest.fixture
def bucket(s3):
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    return name


def test_an_empty_bucket_exists_until_deleted(s3, server):
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    listing = requests.get(f"{server.url}/v1/objects/", auth=AUTH).json()
    assert name not in [entry["name"] for entry in listing["entries"]]
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(Exception) as caught:
        s3.delete_bucket(Bucket=name)
    assert boto_code(caught.value) == "BucketNotEmpty"
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(Exception) as caught:
        s3.head_bucket(Bucket=name)
    assert boto_status(caught.value) == 404


@pytest.mark.parametrize("size", [0, 1000, int(2.5 * MiB)], ids=["empty", "small", "large-slo"])
def test_objects_byte_for_byte_through_both_apis(s3, server, bucket, size):
    data = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key="dir/obj", Body=data, Metadata={"k": "v"})
    got = s3.get_object(Bucket=bucket, Key="dir/obj")
    assert got["Body"].read() == data and got["ETag"] == put["ETag"]
    assert got["Metadata"] == {"k": "v"}
    native = requests.get(f"{server.url}/v1/objects/{bucket}/dir/obj", auth=AUTH)
    assert native.content == data and native.headers["ETag"] == put["ETag"]
    if size:
        ranged = s3.get_object(Bucket=bucket, Key="dir/obj", Range=f"bytes={size // 2}-")
        assert ranged["Body"].read() == data[size // 2:]
    # An SLO's too: the MD5 of the bytes, in a listing as in a HEAD.
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    [listed] = s3.list_objects_v2(Bucket=bucket, Prefix="dir/")["Contents"]
    assert listed["ETag"] == put["ETag"]


def test_native_writes_read_through_s3(s3, server, bucket):
    requests.put(f"{server.url}/v1/objects/{bucket}/n", data=b"native", auth=AUTH,
                 headers={"X-Object-Meta-From": "native"})
    got = s3.get_object(Bucket=bucket, Key="n")
    assert got["Body"].read() == b"native" and got["Metadata"] == {"from": "native"}


def test_listings_with_and_without_delimiter(s3, bucket):
    keys = ["a.txt", "a/b", "a/c/d", "b"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                        PaginationConfig={"PageSize": 1})
    assert [entry["Key"] for page in pages for entry in page["Contents"]] == keys
    page = s3.list_objects_v2(Bucket=bucket, Delimiter="/", Prefix="a/")
    assert [entry["Key"] for entry in page["Contents"]] == ["a/b"]
    assert [entry["Prefix"] for entry in page["CommonPrefixes"]] == ["a/c/"]


def test_copy_and_bulk_delete(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="src", Body=b"bytes", Metadata={"v": "1"})
    s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src",
                   MetadataDirective="REPLACE", Metadata={"v": "2"})
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert head["Metadata"] == {"v": "2"} and head["ETag"] == put["ETag"]
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "src"}, {"Key": "dst"},
                                                                  {"Key": "absent"}]})
    assert sorted(entry["Key"] for entry in answer["Deleted"]) == ["absent", "dst", "src"]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_an_object_and_a_prefix_never_share_a_name(s3, server, bucket):
    s3.put_object(Bucket=bucket, Key="p/child", Body=b"x")
    answer = requests.put(f"{server.url}/{bucket}/p", data=b"y", auth=AUTH)
    assert answer.status_code == 409 and error_of(answer)["Code"] == "ObjectPrefixConflict"

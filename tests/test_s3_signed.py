"""The S3 API with signed requests, as SDKs send them: boto3 signing with
SigV4 (aws-chunked uploads and checksums included) and presigned URLs,
against key pairs of the config's users, on a live server."""

from __future__ import annotations

import hashlib
import os
from typing import Any, Iterator

import pytest
import requests
from api_client import ServerProcess
from live_server import filesystem_config, python_package, running_server
from s3_helpers import boto_code, error_of, new_bucket_name

WRITER, WRITER_SECRET = "writer", "writer-secret-0123456789"
READER, READER_SECRET = "reader", "reader-secret-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("s3-signed")
    config = filesystem_config(workdir / "data")
    config["auth"] = {"users": {
        WRITER: {"password": WRITER_SECRET, "access": "write"},
        READER: {"password": READER_SECRET, "access": "read"},
    }}
    with running_server(workdir, config) as server:
        yield server


def client(server, key: str, secret: str, **options) -> Any:
    boto3 = python_package("boto3")
    from botocore.config import Config

    options = {"s3": {"addressing_style": "path"}, **options}
    return boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **options))


@pytest.fixture(scope="module")
def writer(server):
    return client(server, WRITER, WRITER_SECRET)


@pytest.fixture(scope="module")
def bucket(writer):
    name = new_bucket_name()
    writer.create_bucket(Bucket=name)
    return name


@pytest.mark.parametrize("options", [
    {}, {"request_checksum_calculation": "when_required"},
    {"signature_version": "s3v4", "s3": {"addressing_style": "path",
                                          "payload_signing_enabled": True}},
], ids=["sdk-defaults", "no-checksums", "signed-payload"])
@pytest.mark.parametrize("size", [0, 70_000, 3 * 1024 * 1024 + 5])
def test_signed_uploads_store_exactly_the_bytes(server, bucket, options, size):
    s3 = client(server, WRITER, WRITER_SECRET, **options)
    data = os.urandom(size)
    key = f"up-{size}-{len(options)}"
    put = s3.put_object(Bucket=bucket, Key=key, Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    native = requests.get(f"{server.url}/v1/objects/{bucket}/{key}",
                          auth=(WRITER, WRITER_SECRET))
    assert native.content == data
    assert "aws-chunked" not in native.headers.get("Content-Encoding", "")


def test_upload_fileobj_streams_a_file(server, bucket, writer, tmp_path):
    data = os.urandom(2 * 1024 * 1024 + 3)
    source = tmp_path / "file.bin"
    source.write_bytes(data)
    writer.upload_file(str(source), bucket, "file.bin")
    assert writer.get_object(Bucket=bucket, Key="file.bin")["Body"].read() == data


def test_a_wrong_secret_is_signature_does_not_match_and_stores_nothing(server, bucket):
    s3 = client(server, WRITER, "not-the-secret-at-all")
    with pytest.raises(Exception) as caught:
        s3.put_object(Bucket=bucket, Key="forged", Body=b"x")
    assert boto_code(caught.value) == "SignatureDoesNotMatch"
    with pytest.raises(Exception) as caught:
        client(server, "nobody", "whatever-secret").list_buckets()
    assert boto_code(caught.value) == "InvalidAccessKeyId"
    assert requests.get(f"{server.url}/v1/objects/{bucket}/forged",
                        auth=(WRITER, WRITER_SECRET)).status_code == 404


def test_a_read_key_pair_reads_but_may_not_write(server, bucket, writer):
    writer.put_object(Bucket=bucket, Key="r", Body=b"readable")
    reader = client(server, READER, READER_SECRET)
    assert reader.get_object(Bucket=bucket, Key="r")["Body"].read() == b"readable"
    with pytest.raises(Exception) as caught:
        reader.put_object(Bucket=bucket, Key="r", Body=b"changed")
    assert boto_code(caught.value) == "AccessDenied"
    answer = requests.get(f"{server.url}/{bucket}/r")
    assert answer.status_code == 403 and error_of(answer)["Code"] == "AccessDenied"


def test_presigned_urls_get_and_put(server, bucket, writer):
    url = writer.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre"},
                                        ExpiresIn=300)
    assert requests.put(url, data=b"presigned").status_code == 200
    url = writer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre"},
                                        ExpiresIn=300)
    assert requests.get(url).content == b"presigned"
    tampered = url.replace("/pre?", "/other?")
    assert requests.get(tampered).status_code == 403


def test_a_signed_tampered_chunked_body_stores_nothing(server, bucket):
    from live_server import raw_exchange

    s3 = client(server, WRITER, WRITER_SECRET)
    data = os.urandom(100_000)
    captured: dict = {}

    def capture(request, **kwargs):
        captured["headers"] = dict(request.headers)
        body = request.body
        captured["body"] = body.read() if hasattr(body, "read") else body
        raise RuntimeError("captured")

    s3.meta.events.register("before-send.s3.PutObject", capture)
    with pytest.raises(RuntimeError):
        s3.put_object(Bucket=bucket, Key="tampered", Body=data)
    raw = bytes(captured["body"])
    forged = raw.replace(data[:64], bytes(64), 1)
    assert forged != raw
    head = [f"PUT /{bucket}/tampered HTTP/1.1", "Connection: close"]
    for name, value in captured["headers"].items():
        value = value.decode() if isinstance(value, bytes) else value
        head.append(f"{name}: {value}")
    answer = raw_exchange("127.0.0.1", server.port,
                          ("\r\n".join(head) + "\r\n\r\n").encode() + forged)
    assert answer.status in (400, 403), answer.describe()
    assert requests.get(f"{server.url}/v1/objects/{bucket}/tampered",
                        auth=(WRITER, WRITER_SECRET)).status_code == 404


def test_a_key_pair_from_the_environment_is_all_a_container_needs(tmp_path):
    env = {"BLOBSVC_ACCESS_KEY": "container", "BLOBSVC_SECRET_KEY": "container-secret-0123456789"}
    with running_server(tmp_path, filesystem_config(tmp_path / "data"), env=env) as server:
        s3 = client(server, "container", env["BLOBSVC_SECRET_KEY"])
        name = new_bucket_name()
        s3.create_bucket(Bucket=name)
        s3.put_object(Bucket=name, Key="k", Body=b"from a container")
        assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"from a container"
        answer = requests.get(f"{server.url}/{name}/k")
        assert answer.status_code == 403 and error_of(answer)["Code"] == "AccessDenied"


def test_a_large_signed_upload_streams_with_flat_memory(tmp_path):
    """96 MiB through aws-chunked decoding and signature checks, and back:
    the server's peak RSS stays under 100 MiB, as for the native API."""
    size = 96 * 1024 * 1024
    source = tmp_path / "large.bin"
    digest = hashlib.md5()
    with open(source, "wb") as out:
        for index in range(size // (1024 * 1024)):
            block = hashlib.sha256(str(index).encode()).digest() * (1024 * 1024 // 32)
            digest.update(block)
            out.write(block)
    env = {"BLOBSVC_ACCESS_KEY": WRITER, "BLOBSVC_SECRET_KEY": WRITER_SECRET}
    with running_server(tmp_path, filesystem_config(tmp_path / "data", workers=1),
                        env=env) as server:
        s3 = client(server, WRITER, WRITER_SECRET)
        name = new_bucket_name()
        s3.create_bucket(Bucket=name)
        with open(source, "rb") as body:
            put = s3.put_object(Bucket=name, Key="large", Body=body)
        assert put["ETag"] == f'"{digest.hexdigest()}"'
        back = hashlib.md5()
        for chunk in s3.get_object(Bucket=name, Key="large")["Body"].iter_chunks(1024 * 1024):
            back.update(chunk)
        assert back.hexdigest() == digest.hexdigest()
        assert server.peak_rss_kib() < 100 * 1024

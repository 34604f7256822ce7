"""Helpers of the S3 API tests: boto3 clients and raw requests on a live server.

boto3 signs nothing here (``UNSIGNED``) until the service verifies SigV4,
and asks for checksums only where S3 requires them, so its requests carry
plain bodies (no aws-chunked framing).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import requests
from api_client import ServerProcess
from defusedxml import ElementTree
from live_server import python_package

S3_NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def s3_client(url: str) -> Any:
    """A boto3 S3 client on ``url``: path style, unsigned, one attempt."""
    boto3 = python_package("boto3")
    botocore = python_package("botocore")
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="unused", aws_secret_access_key="unused",
        config=Config(signature_version=botocore.UNSIGNED, s3={"addressing_style": "path"},
                      retries={"max_attempts": 1, "mode": "standard"},
                      request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"))


def new_bucket_name() -> str:
    return f"t-{uuid.uuid4().hex[:20]}"


def error_of(response: requests.Response) -> dict[str, str]:
    """An S3 error document's fields (Code, Message, Resource, RequestId)."""
    assert response.headers["Content-Type"] == "application/xml", response.text
    root = ElementTree.fromstring(response.content)
    assert root.tag == "Error", response.text
    return {child.tag: child.text or "" for child in root}


def boto_code(exc: Exception) -> str:
    return exc.response["Error"]["Code"]  # type: ignore[attr-defined]


def boto_status(exc: Exception) -> int:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"]  # type: ignore[attr-defined]


def filesystem_s3_server(workdir: Path, max_object_size: int = 4 * 1024 * 1024) -> ServerProcess:
    """``blobsvc serve`` on 127.0.0.1 (port 0), the filesystem driver, no auth."""
    return ServerProcess(workdir, {
        "server": {"host": "127.0.0.1", "port": 0, "max_object_size": max_object_size,
                   "chunk_size": 64 * 1024},
        "storage": {"driver": "filesystem", "root": str(workdir / "data"), "fsync": False},
        "log": {"access_log": False},
    }).start()

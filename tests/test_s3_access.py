"""Who may do what through the S3 API, on a service with ``auth``: the
native grants (anonymous level, users, tokens and their prefixes) decide,
always before a body is read, and a refusal is S3's 403 AccessDenied."""

from __future__ import annotations

import base64
from typing import Iterator

import pytest
import requests
from api_client import ServerProcess
from live_server import filesystem_config, running_server
from s3_helpers import error_of, new_bucket_name

PASSWORD = "correct horse battery staple"
TOKEN = "t" * 8 + "0123456789abcdef"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("s3-access")
    config = filesystem_config(workdir / "data")
    config["auth"] = {
        "anonymous": "read",
        "users": {"alice": {"password": PASSWORD, "access": "write"}},
        "tokens": [{"name": "builds", "token": TOKEN, "access": "write", "prefix": "builds/"}],
    }
    with running_server(workdir, config) as server:
        yield server


ALICE = {"Authorization": "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()}
BUILDS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def bucket(server):
    name = new_bucket_name()
    assert requests.put(f"{server.url}/{name}", headers=ALICE).status_code == 200
    assert requests.put(f"{server.url}/builds", headers=ALICE).status_code == 200
    return name


def test_anonymous_reads_but_may_not_write(server, bucket):
    assert requests.put(f"{server.url}/{bucket}/k", data=b"x", headers=ALICE).status_code == 200
    assert requests.get(f"{server.url}/{bucket}/k").content == b"x"
    answer = requests.put(f"{server.url}/{bucket}/k", data=b"y")
    assert answer.status_code == 403 and error_of(answer)["Code"] == "AccessDenied"
    assert "WWW-Authenticate" not in answer.headers
    assert requests.get(f"{server.url}/{bucket}/k").content == b"x"


def test_a_refused_write_reads_no_body(server, bucket):
    from live_server import raw_exchange, request_bytes

    # A declared gigabyte and no body at all: the answer comes without waiting for it.
    answer = raw_exchange("127.0.0.1", server.port, request_bytes(
        "PUT", f"/{bucket}/big", {"Content-Length": str(1 << 30)}), timeout=5)
    assert answer.status == 403


def test_a_prefix_grant_writes_only_below_its_prefix(server, bucket):
    assert requests.put(f"{server.url}/builds/1.tar", data=b"t", headers=BUILDS).status_code == 200
    answer = requests.put(f"{server.url}/{bucket}/x", data=b"t", headers=BUILDS)
    assert answer.status_code == 403 and error_of(answer)["Code"] == "AccessDenied"
    answer = requests.delete(f"{server.url}/{bucket}", headers=BUILDS)
    assert answer.status_code == 403


def test_bulk_delete_judges_each_key(server, bucket):
    requests.put(f"{server.url}/builds/a", data=b"a", headers=ALICE)
    body = b"<Delete><Object><Key>a</Key></Object></Delete>"
    answer = requests.post(f"{server.url}/builds?delete", data=body)
    assert answer.status_code == 403  # anonymous may write nowhere: refused before the body
    answer = requests.post(f"{server.url}/builds?delete", data=body, headers=BUILDS)
    assert answer.status_code == 200 and b"<Deleted><Key>a</Key></Deleted>" in answer.content


def test_a_signature_of_an_unknown_key_is_refused(server, bucket):
    import time

    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    answer = requests.get(f"{server.url}/{bucket}/k", headers={
        "X-Amz-Date": now, "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=AKID/{now[:8]}/us-east-1/s3/aws4_request, "
                         "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + "0" * 64})
    assert answer.status_code == 403 and error_of(answer)["Code"] == "InvalidAccessKeyId"


def test_response_overrides_need_a_credential(server, bucket):
    requests.put(f"{server.url}/{bucket}/o", data=b"x", headers=ALICE)
    answer = requests.get(f"{server.url}/{bucket}/o?response-content-type=text/plain")
    assert answer.status_code == 400 and error_of(answer)["Code"] == "InvalidRequest"
    answer = requests.get(f"{server.url}/{bucket}/o?response-content-type=text/plain",
                          headers=ALICE)
    assert answer.headers["Content-Type"] == "text/plain"


def test_a_credential_sees_what_anonymous_access_gives_too(server, bucket):
    names = [element.text for element in _names(requests.get(server.url + "/", headers=BUILDS))]
    assert "builds" in names and bucket in names


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory) -> Iterator[ServerProcess]:
    """No anonymous access at all."""
    workdir = tmp_path_factory.mktemp("s3-closed")
    config = filesystem_config(workdir / "data")
    config["auth"] = {
        "users": {"alice": {"password": PASSWORD, "access": "write"}},
        "tokens": [{"name": "builds", "token": TOKEN, "access": "read", "prefix": "builds/"}],
    }
    with running_server(workdir, config) as server:
        for name in ("builds", "other"):
            assert requests.put(f"{server.url}/{name}", headers=ALICE).status_code == 200
        yield server


def test_list_buckets_shows_what_the_client_may_read(closed_server):
    names = [element.text for element in _names(requests.get(closed_server.url + "/",
                                                             headers=BUILDS))]
    assert names == ["builds"]
    names = [element.text for element in _names(requests.get(closed_server.url + "/",
                                                             headers=ALICE))]
    assert names == ["builds", "other"]
    answer = requests.get(closed_server.url + "/")
    assert answer.status_code == 403 and error_of(answer)["Code"] == "AccessDenied"
    answer = requests.get(f"{closed_server.url}/other?list-type=2", headers=BUILDS)
    assert answer.status_code == 403 and error_of(answer)["Code"] == "AccessDenied"


def _names(answer):
    from defusedxml import ElementTree
    from s3_helpers import S3_NAMESPACE

    assert answer.status_code == 200, answer.text
    root = ElementTree.fromstring(answer.content)
    return root.iter(f"{S3_NAMESPACE}Name")

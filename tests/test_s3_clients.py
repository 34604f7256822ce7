"""The S3 command-line clients users point at blobsvc, unmodified: the AWS
CLI, rclone's S3 backend, s3cmd, ``curl --aws-sigv4`` and presigned URLs
fetched with curl, each signing with a key pair of the service.

Every tool runs with a config file of its own written here (never the
user's), a private HOME, a timeout, and nothing to talk to but the live
``blobsvc serve`` on 127.0.0.1. Every byte a tool stores is read back
through the native API, and every byte stored natively through the tool.
Multipart uploads are not implemented yet, so each config keeps the tool's
single-request upload above the sizes used here. The AWS CLI and rclone
also run on the real Swift fixture. Under CI a missing tool fails the tests
(``.ci/run`` and setup.py's ``test`` extra install them).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import pytest
import requests
from api_client import ServerProcess
from defusedxml import ElementTree
from live_server import filesystem_config, python_package, running_server, swift_config, tool

KEY, SECRET = "s3-clients", "s3-clients-secret-0123456789"
AUTH = (KEY, SECRET)
REGION = "us-east-1"

#: Relative path -> body: nested directories, an empty file, names with
#: spaces, non-ASCII, and characters URLs, signatures and shells must escape
#: (a literal ``%2F`` among them, which must stay three characters).
TREE = {
    "top.txt": b"top level\n",
    "empty": b"",
    ".hidden": b"a dot file",
    "a b/caf\u00e9 \u65e5\u672c \U0001f600.txt": "unicode \u2713\n".encode(),
    "a b/plus+eq=semi;comma,&amp.bin": os.urandom(3000),
    "a b/100% (1)~tilde pct%2Fslash.txt": b"percent, parentheses, tilde",
    "a b/q?mark h#ash st*ar co:lon.txt": b"query, fragment, glob, colon",
    "a b/[br]{cu} <lt>|pipe \"dq\" `bt` ^caret.txt": b"brackets, markup, quotes",
    "nested/deeper/still/last.bin": os.urandom(300 * 1024 + 7),
    "nested/deeper/$dollar@at!bang'quote.txt": b"more reserved characters",
}


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root``: relative path -> bytes."""
    return {path.relative_to(root).as_posix(): path.read_bytes()
            for path in root.rglob("*") if path.is_file()}


def write_tree(root: Path, tree: dict[str, bytes]) -> None:
    for name, body in tree.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)


def native_get(server: ServerProcess, bucket: str, key: str) -> requests.Response:
    return requests.get(f"{server.url}/v1/objects/{bucket}/{quote(key)}", auth=AUTH, timeout=10)


def native_put(server: ServerProcess, bucket: str, key: str, body: bytes) -> None:
    answer = requests.put(f"{server.url}/v1/objects/{bucket}/{quote(key)}", data=body,
                          auth=AUTH, timeout=10)
    assert answer.status_code == 201, answer.text


def assert_stored(server: ServerProcess, bucket: str, tree: dict[str, bytes],
                  prefix: str = "") -> None:
    """Each file of ``tree`` reads byte for byte through the native API."""
    for name, body in tree.items():
        answer = native_get(server, bucket, prefix + name)
        assert answer.status_code == 200, (name, answer.text)
        assert answer.content == body, name


def new_bucket() -> str:
    return f"c-{uuid.uuid4().hex[:16]}"


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """One client run, which must succeed (its stderr is in the failure)."""
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{args[:4]} failed ({done.returncode}): {done.stderr[-3000:]}"
    return done


def base_env(home: Path) -> dict[str, str]:
    """A private HOME, and no proxy: the tools talk only to 127.0.0.1."""
    return {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "NO_PROXY": "*", "no_proxy": "*"}


# -- servers -----------------------------------------------------------------


@pytest.fixture(scope="module")
def fs_server(tmp_path_factory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("s3-clients")
    env = {"BLOBSVC_ACCESS_KEY": KEY, "BLOBSVC_SECRET_KEY": SECRET}
    with running_server(workdir, filesystem_config(workdir / "data"), env=env) as server:
        yield server


@pytest.fixture(scope="module")
def swift_server(tmp_path_factory, swift_stack) -> Iterator[ServerProcess]:
    env = {"BLOBSVC_ACCESS_KEY": KEY, "BLOBSVC_SECRET_KEY": SECRET}
    with running_server(tmp_path_factory.mktemp("s3-clients-swift"), swift_config(swift_stack),
                        env=env) as server:
        yield server


@pytest.fixture(params=["filesystem", "swift"])
def server(request) -> ServerProcess:
    """Both drivers, for the subset that runs on Swift too."""
    return request.getfixturevalue("fs_server" if request.param == "filesystem"
                                   else "swift_server")


# -- the AWS CLI ---------------------------------------------------------------


class AwsCli:
    """The AWS CLI (v1) on a server, with its own config file."""

    def __init__(self, server: ServerProcess, home: Path) -> None:
        python_package("awscli")
        self.server, self.home = server, home
        config = home / "aws-config"
        # Path style; multipart from 8 MiB (the default) in parts of 5 MiB
        # (S3's smallest), so a test file of a few parts takes that path.
        config.write_text(f"[default]\nregion = {REGION}\ns3 =\n"
                          "    addressing_style = path\n    multipart_chunksize = 5MB\n")
        self.env = {**base_env(home), "AWS_CONFIG_FILE": str(config),
                    "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
                    "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
                    "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1"}

    def __call__(self, *args: str) -> str:
        return run([sys.executable, "-m", "awscli", "--endpoint-url", self.server.url, *args],
                   self.env, self.home).stdout


@pytest.fixture
def aws(fs_server, tmp_path) -> AwsCli:
    return AwsCli(fs_server, tmp_path)


def test_aws_s3_mb_cp_ls_sync_rm(aws, fs_server, tmp_path):
    bucket = new_bucket()
    write_tree(tmp_path / "up", TREE)
    aws("s3", "mb", f"s3://{bucket}")
    # CI scripts add the ACL out of habit (cross-account buckets need it).
    aws("s3", "cp", "--acl", "bucket-owner-full-control", str(tmp_path / "up" / "top.txt"),
        f"s3://{bucket}/single/top.txt")
    aws("s3", "sync", str(tmp_path / "up"), f"s3://{bucket}/tree")
    assert_stored(fs_server, bucket, TREE, "tree/")
    listed = aws("s3", "ls", "--recursive", f"s3://{bucket}/tree/")
    assert sorted(line.split(None, 3)[3] for line in listed.splitlines()) \
        == sorted(f"tree/{name}" for name in TREE)
    top = aws("s3", "ls", f"s3://{bucket}/")
    assert "PRE single/" in top and "PRE tree/" in top
    aws("s3", "sync", f"s3://{bucket}/tree", str(tmp_path / "down"))
    assert read_tree(tmp_path / "down") == TREE
    # Sizes and times as listed match what was sent and fetched: nothing moves again.
    assert aws("s3", "sync", "--no-progress", str(tmp_path / "up"), f"s3://{bucket}/tree") == ""
    assert aws("s3", "sync", "--no-progress", f"s3://{bucket}/tree", str(tmp_path / "down")) == ""
    aws("s3", "cp", f"s3://{bucket}/single/top.txt", str(tmp_path / "one.txt"))
    assert (tmp_path / "one.txt").read_bytes() == TREE["top.txt"]
    aws("s3", "rm", f"s3://{bucket}/single/top.txt")
    aws("s3", "rm", "--recursive", f"s3://{bucket}/")
    assert aws("s3", "ls", "--recursive", f"s3://{bucket}/") == ""
    aws("s3", "rb", f"s3://{bucket}")  # refused unless empty


def test_aws_s3api_object_calls(aws, fs_server, tmp_path):
    bucket = new_bucket()
    aws("s3api", "create-bucket", "--bucket", bucket)
    body = tmp_path / "body.bin"
    body.write_bytes(os.urandom(70_001))
    put = json.loads(aws("s3api", "put-object", "--bucket", bucket, "--key", "dir/a b.bin",
                         "--body", str(body), "--metadata", "origin=cli"))
    head = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", "dir/a b.bin"))
    assert head["ETag"] == put["ETag"] and head["ContentLength"] == 70_001
    assert head["Metadata"] == {"origin": "cli"}
    aws("s3api", "get-object", "--bucket", bucket, "--key", "dir/a b.bin", str(tmp_path / "got"))
    assert (tmp_path / "got").read_bytes() == body.read_bytes()
    aws("s3api", "copy-object", "--bucket", bucket, "--key", "dir/copy",
        "--copy-source", f"{bucket}/dir/a b.bin")
    assert native_get(fs_server, bucket, "dir/copy").content == body.read_bytes()
    listed = json.loads(aws("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "dir/"))
    assert [entry["Key"] for entry in listed["Contents"]] == ["dir/a b.bin", "dir/copy"]
    deleted = json.loads(aws("s3api", "delete-objects", "--bucket", bucket, "--delete",
                             json.dumps({"Objects": [{"Key": "dir/a b.bin"},
                                                     {"Key": "dir/copy"}]})))
    assert sorted(entry["Key"] for entry in deleted["Deleted"]) == ["dir/a b.bin", "dir/copy"]
    assert native_get(fs_server, bucket, "dir/copy").status_code == 404


def test_aws_cli_reads_what_the_native_api_wrote(aws, fs_server, tmp_path):
    bucket = new_bucket()
    aws("s3", "mb", f"s3://{bucket}")
    for name, body in TREE.items():
        native_put(fs_server, bucket, name, body)
    aws("s3", "sync", f"s3://{bucket}", str(tmp_path / "down"))
    assert read_tree(tmp_path / "down") == TREE


def test_aws_cli_cp_and_ls_on_swift(swift_server, tmp_path):
    """The filesystem's run is test_aws_s3_mb_cp_ls_sync_rm; each CLI start costs seconds."""
    server = swift_server
    aws = AwsCli(server, tmp_path)
    bucket = new_bucket()
    data = os.urandom(2 * 1024 * 1024 + 11)  # an SLO of three segments on Swift
    (tmp_path / "big.bin").write_bytes(data)
    aws("s3", "mb", f"s3://{bucket}")
    aws("s3", "cp", str(tmp_path / "big.bin"), f"s3://{bucket}/d/big.bin")
    assert native_get(server, bucket, "d/big.bin").content == data
    assert "big.bin" in aws("s3", "ls", f"s3://{bucket}/d/")
    aws("s3", "cp", f"s3://{bucket}/d/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data


# -- rclone --------------------------------------------------------------------


def rclone(server: ServerProcess, home: Path, *args: str) -> str:
    """rclone with a config file holding one S3 remote, ``blobs:``, on ``server``;
    its log (on stderr, ``-v`` names each file copied)."""
    config = home / "rclone.conf"
    # Multipart from 5 MiB in parts of 5 MiB, so a test file of a few parts
    # takes that path (rclone's defaults: 200 MiB).
    config.write_text(f"[blobs]\ntype = s3\nprovider = Other\naccess_key_id = {KEY}\n"
                      f"secret_access_key = {SECRET}\nendpoint = {server.url}\n"
                      f"region = {REGION}\nforce_path_style = true\nupload_cutoff = 5M\n"
                      "chunk_size = 5M\n")
    return run([tool("rclone"), "--config", str(config), "--retries", "1",
                "--low-level-retries", "1", "--contimeout", "5s", "--timeout", "20s", "-v",
                *args], base_env(home), home).stderr


def test_rclone_sync_up_and_back_and_check(server, tmp_path):
    bucket = new_bucket()
    write_tree(tmp_path / "up", TREE)
    rclone(server, tmp_path, "mkdir", f"blobs:{bucket}")
    rclone(server, tmp_path, "sync", str(tmp_path / "up"), f"blobs:{bucket}/tree")
    assert_stored(server, bucket, TREE, "tree/")
    rclone(server, tmp_path, "check", str(tmp_path / "up"), f"blobs:{bucket}/tree")
    rclone(server, tmp_path, "sync", f"blobs:{bucket}/tree", str(tmp_path / "down"))
    assert read_tree(tmp_path / "down") == TREE
    # Modification times and MD5s round-trip: a second sync copies nothing.
    assert "Copied" not in rclone(server, tmp_path, "sync", str(tmp_path / "up"),
                                  f"blobs:{bucket}/tree")
    assert "Copied" not in rclone(server, tmp_path, "sync", f"blobs:{bucket}/tree",
                                  str(tmp_path / "down"))
    (tmp_path / "up" / "top.txt").unlink()  # a sync deletes what the source lost
    rclone(server, tmp_path, "sync", str(tmp_path / "up"), f"blobs:{bucket}/tree")
    assert native_get(server, bucket, "tree/top.txt").status_code == 404
    rclone(server, tmp_path, "check", str(tmp_path / "up"), f"blobs:{bucket}/tree")


def test_rclone_reads_what_the_native_api_wrote(fs_server, tmp_path):
    bucket = new_bucket()
    rclone(fs_server, tmp_path, "mkdir", f"blobs:{bucket}")
    for name, body in TREE.items():
        native_put(fs_server, bucket, name, body)
    rclone(fs_server, tmp_path, "copy", f"blobs:{bucket}", str(tmp_path / "down"))
    assert read_tree(tmp_path / "down") == TREE


# -- s3cmd -----------------------------------------------------------------------


class S3cmd:
    """s3cmd with a generated ``.s3cfg``."""

    def __init__(self, server: ServerProcess, home: Path) -> None:
        self.home = home
        self.config = home / "s3cfg"
        host = f"127.0.0.1:{server.port}"
        # Multipart in parts of 5 MiB (s3cmd's default: 15), so a test file
        # of a few parts takes that path.
        self.config.write_text(
            f"[default]\naccess_key = {KEY}\nsecret_key = {SECRET}\nhost_base = {host}\n"
            f"host_bucket = {host}\nuse_https = False\nsignature_v2 = False\n"
            f"bucket_location = {REGION}\nmultipart_chunk_size_mb = 5\n")

    def __call__(self, *args: str) -> str:
        return run([tool("s3cmd"), "-c", str(self.config), "--no-progress", *args],
                   base_env(self.home), self.home).stdout


def test_s3cmd_mb_put_get_ls_sync_del(fs_server, tmp_path):
    s3cmd = S3cmd(fs_server, tmp_path)
    bucket = new_bucket()
    write_tree(tmp_path / "up", TREE)
    s3cmd("mb", f"s3://{bucket}")
    s3cmd("put", str(tmp_path / "up" / "top.txt"), f"s3://{bucket}/single/top.txt")
    assert native_get(fs_server, bucket, "single/top.txt").content == TREE["top.txt"]
    s3cmd("get", f"s3://{bucket}/single/top.txt", str(tmp_path / "one.txt"))
    assert (tmp_path / "one.txt").read_bytes() == TREE["top.txt"]
    s3cmd("sync", f"{tmp_path / 'up'}/", f"s3://{bucket}/tree/")
    assert_stored(fs_server, bucket, TREE, "tree/")
    listed = s3cmd("ls", "--recursive", f"s3://{bucket}/tree/")
    assert sorted(line.split("s3://", 1)[1] for line in listed.splitlines()) \
        == sorted(f"{bucket}/tree/{name}" for name in TREE)
    (tmp_path / "down").mkdir()
    s3cmd("sync", f"s3://{bucket}/tree/", f"{tmp_path / 'down'}/")
    assert read_tree(tmp_path / "down") == TREE
    # s3cmd compares sizes and MD5s (the ETags listed): nothing moves again.
    assert "upload:" not in s3cmd("sync", f"{tmp_path / 'up'}/", f"s3://{bucket}/tree/")
    assert "download:" not in s3cmd("sync", f"s3://{bucket}/tree/", f"{tmp_path / 'down'}/")
    s3cmd("del", "--recursive", "--force", f"s3://{bucket}/")
    assert s3cmd("ls", "--recursive", f"s3://{bucket}") == ""
    s3cmd("rb", f"s3://{bucket}")


def test_s3cmd_reads_what_the_native_api_wrote(fs_server, tmp_path):
    s3cmd = S3cmd(fs_server, tmp_path)
    bucket = new_bucket()
    s3cmd("mb", f"s3://{bucket}")
    for name, body in TREE.items():
        native_put(fs_server, bucket, name, body)
    (tmp_path / "down").mkdir()
    s3cmd("sync", f"s3://{bucket}/", f"{tmp_path / 'down'}/")
    assert read_tree(tmp_path / "down") == TREE


# -- large objects on Swift ---------------------------------------------------------

#: Three parts of 5 MiB and a tail: every tool uploads it in parts.
MULTIPART_SIZE = 3 * 5 * 1024 * 1024 + 12345


def assert_multipart_object(server: ServerProcess, bucket: str, key: str, data: bytes) -> None:
    """Stored whole, read the same through /v1, with S3's multipart ETag over S3."""
    assert native_get(server, bucket, key).content == data
    answer = requests.head(f"{server.url}/{bucket}/{quote(key)}", auth=AUTH, timeout=10)
    part_md5s = b"".join(hashlib.md5(data[start:start + 5 * 1024 * 1024]).digest()
                         for start in range(0, len(data), 5 * 1024 * 1024))
    assert answer.headers["ETag"] == f'"{hashlib.md5(part_md5s).hexdigest()}-4"'


def test_each_tool_uploads_a_large_file_in_parts_and_reads_it_back(server, tmp_path):
    # On Swift each part is over segment_size (1 MiB here), so an SLO: its
    # ETag is still its MD5, and the object's md5-of-md5s-N the client's.
    data = os.urandom(MULTIPART_SIZE)
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "large.bin").write_bytes(data)
    bucket = new_bucket()
    rclone(server, tmp_path, "mkdir", f"blobs:{bucket}")
    rclone(server, tmp_path, "copy", str(tmp_path / "up"), f"blobs:{bucket}/rclone")
    assert_multipart_object(server, bucket, "rclone/large.bin", data)
    rclone(server, tmp_path, "check", str(tmp_path / "up"), f"blobs:{bucket}/rclone")
    s3cmd = S3cmd(server, tmp_path)
    s3cmd("put", str(tmp_path / "up" / "large.bin"), f"s3://{bucket}/s3cmd/large.bin")
    assert_multipart_object(server, bucket, "s3cmd/large.bin", data)
    s3cmd("get", f"s3://{bucket}/s3cmd/large.bin", str(tmp_path / "s3cmd.bin"))
    assert (tmp_path / "s3cmd.bin").read_bytes() == data
    aws = AwsCli(server, tmp_path)
    aws("s3", "cp", str(tmp_path / "up" / "large.bin"), f"s3://{bucket}/aws/large.bin")
    assert_multipart_object(server, bucket, "aws/large.bin", data)
    aws("s3", "cp", f"s3://{bucket}/aws/large.bin", str(tmp_path / "aws.bin"))
    assert (tmp_path / "aws.bin").read_bytes() == data


# On Swift an object over ``segment_size`` (1 MiB in the tests) is an SLO,
# whose ETag Swift makes the MD5 of its segments' MD5s; S3 clients take any
# 32 hex digits for the MD5 of the bytes, and would call such an upload
# corrupted (rclone) or retry it until they give up (s3cmd).


def test_rclone_copies_an_object_over_the_segment_size_to_swift(swift_server, tmp_path):
    bucket = new_bucket()
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "large.bin").write_bytes(os.urandom(2 * 1024 * 1024 + 3))
    rclone(swift_server, tmp_path, "mkdir", f"blobs:{bucket}")
    rclone(swift_server, tmp_path, "copy", str(tmp_path / "up"), f"blobs:{bucket}")
    rclone(swift_server, tmp_path, "check", str(tmp_path / "up"), f"blobs:{bucket}")


def test_s3cmd_puts_an_object_over_the_segment_size_to_swift(swift_server, tmp_path):
    s3cmd = S3cmd(swift_server, tmp_path)
    bucket = new_bucket()
    data = os.urandom(2 * 1024 * 1024 + 3)
    (tmp_path / "large.bin").write_bytes(data)
    s3cmd("mb", f"s3://{bucket}")
    s3cmd("put", str(tmp_path / "large.bin"), f"s3://{bucket}/large.bin")
    assert native_get(swift_server, bucket, "large.bin").content == data


# -- curl ------------------------------------------------------------------------


def curl(*args: str) -> subprocess.CompletedProcess:
    """curl, silent; the status code is the last line of its output."""
    return subprocess.run([tool("curl"), "-sS", "--noproxy", "*", "--max-time", "20",
                           "-w", "\n%{http_code}", *args],
                          capture_output=True, timeout=30, stdin=subprocess.DEVNULL)


def status_and_body(done: subprocess.CompletedProcess) -> tuple[int, bytes]:
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition(b"\n")
    return int(status), body


def test_curl_aws_sigv4_put_and_get(fs_server, tmp_path):
    """S3 wants ``x-amz-content-sha256`` on every header-signed request; curl
    before 8.1 does not send it, so the recipe names it (a body's SHA-256 or
    ``UNSIGNED-PAYLOAD``), which curl then signs too."""
    bucket = new_bucket()
    sign = ["--aws-sigv4", f"aws:amz:{REGION}:s3", "--user", f"{KEY}:{SECRET}"]
    unsigned = [*sign, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
    assert status_and_body(curl(*unsigned, "-X", "PUT", f"{fs_server.url}/{bucket}"))[0] == 200
    data = os.urandom(100_003)
    (tmp_path / "up.bin").write_bytes(data)
    url = f"{fs_server.url}/{bucket}/dir/up%20load.bin"
    assert status_and_body(curl(*unsigned, "-T", str(tmp_path / "up.bin"), url))[0] == 200
    assert native_get(fs_server, bucket, "dir/up load.bin").content == data
    assert status_and_body(curl(*unsigned, url)) == (200, data)
    digest = hashlib.sha256(data[::-1]).hexdigest()
    (tmp_path / "rev.bin").write_bytes(data[::-1])
    hashed = [*sign, "-H", f"x-amz-content-sha256: {digest}"]
    assert status_and_body(curl(*hashed, "-T", str(tmp_path / "rev.bin"), url + "2"))[0] == 200
    assert native_get(fs_server, bucket, "dir/up load.bin2").content == data[::-1]
    assert status_and_body(curl(*hashed, "-T", str(tmp_path / "up.bin"), url + "3"))[0] == 400
    assert native_get(fs_server, bucket, "dir/up load.bin3").status_code == 404
    assert status_and_body(curl(url))[0] == 403


def test_presigned_urls_fetched_with_curl(fs_server):
    boto3 = python_package("boto3")
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=fs_server.url, region_name=REGION,
                      aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    bucket = new_bucket()
    s3.create_bucket(Bucket=bucket)
    data = os.urandom(5000)
    native_put(fs_server, bucket, "shared/report 1.bin", data)
    url = s3.generate_presigned_url("get_object", ExpiresIn=300,
                                    Params={"Bucket": bucket, "Key": "shared/report 1.bin"})
    assert status_and_body(curl(url)) == (200, data)
    signature = url.rsplit("X-Amz-Signature=", 1)[1]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    for tampered in [url.replace(signature, flipped), url.replace("report%201", "report%202"),
                     url.replace("X-Amz-Expires=300", "X-Amz-Expires=600")]:
        status, body = status_and_body(curl(tampered))
        assert status == 403, tampered
        assert ElementTree.fromstring(body).find("Code").text in ("SignatureDoesNotMatch",
                                                                  "AccessDenied")

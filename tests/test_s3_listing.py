"""ListObjectsV2, ListObjects, ListObjectVersions and DeleteObjects on a
live server (filesystem driver), through boto3 and raw HTTP; and delimiter
listings on every driver against a model of S3's rules."""

from __future__ import annotations

import base64
import hashlib

import hypothesis.strategies as st
import pytest
import requests
from conftest import driver_settings, swift_settings
from defusedxml import ElementTree
from hypothesis import HealthCheck, example, given, settings
from s3_helpers import (
    S3_NAMESPACE,
    boto_code,
    boto_status,
    error_of,
    new_bucket_name,
)

from blobsvc.s3.listing import list_page
from blobsvc.storage import create_driver

#: Keys whose S3 order (UTF-8 bytes) puts "a.txt" before "a/b".
KEYS = ["a.txt", "a/b", "a/c/d", "a/c/e", "b", "z y+%&<.txt", "\u00e9/\u00fc"]


@pytest.fixture
def server(s3_server):
    return s3_server


@pytest.fixture(scope="module")
def filled(s3):
    """A bucket holding KEYS, each key's bytes its own name."""
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    for key in KEYS:
        s3.put_object(Bucket=name, Key=key, Body=key.encode())
    return name


def s3_order(keys):
    return sorted(keys, key=lambda key: key.encode("utf-8"))


def all_pages(s3, operation, **arguments):
    """Keys and common prefixes of every page, in the order they came."""
    keys, prefixes = [], []
    for page in s3.get_paginator(operation).paginate(**arguments):
        keys += [entry["Key"] for entry in page.get("Contents", page.get("Versions", []))]
        prefixes += [entry["Prefix"] for entry in page.get("CommonPrefixes", [])]
    return keys, prefixes


def test_v2_lists_every_key_in_s3_order(s3, filled):
    page = s3.list_objects_v2(Bucket=filled)
    assert [entry["Key"] for entry in page["Contents"]] == s3_order(KEYS)
    assert page["KeyCount"] == len(KEYS) and page["IsTruncated"] is False
    entry = page["Contents"][0]
    assert entry["Size"] == len(entry["Key"].encode())
    assert entry["ETag"] == f'"{hashlib.md5(entry["Key"].encode()).hexdigest()}"'


@pytest.mark.parametrize("operation", ["list_objects_v2", "list_objects"])
@pytest.mark.parametrize("page_size", [1, 2, 3])
def test_pages_hold_every_key_once_in_order(s3, filled, operation, page_size):
    keys, _ = all_pages(s3, operation, Bucket=filled, PaginationConfig={"PageSize": page_size})
    assert keys == s3_order(KEYS)


def test_a_prefix_selects_keys(s3, filled):
    page = s3.list_objects_v2(Bucket=filled, Prefix="a/c")
    assert [entry["Key"] for entry in page["Contents"]] == ["a/c/d", "a/c/e"]
    assert "Contents" not in s3.list_objects_v2(Bucket=filled, Prefix="nothing")


def test_start_after(s3, filled):
    page = s3.list_objects_v2(Bucket=filled, StartAfter="a/c/d")
    assert [entry["Key"] for entry in page["Contents"]] == s3_order(KEYS)[3:]


def test_the_delimiter_groups_common_prefixes(s3, filled):
    page = s3.list_objects_v2(Bucket=filled, Delimiter="/")
    assert sorted(entry["Key"] for entry in page["Contents"]) == ["a.txt", "b", "z y+%&<.txt"]
    assert sorted(entry["Prefix"] for entry in page["CommonPrefixes"]) == ["a/", "\u00e9/"]
    page = s3.list_objects_v2(Bucket=filled, Delimiter="/", Prefix="a/")
    assert [entry["Key"] for entry in page["Contents"]] == ["a/b"]
    assert [entry["Prefix"] for entry in page["CommonPrefixes"]] == ["a/c/"]
    page = s3.list_objects_v2(Bucket=filled, Delimiter="/", Prefix="a/c")
    assert "Contents" not in page
    assert [entry["Prefix"] for entry in page["CommonPrefixes"]] == ["a/c/"]


@pytest.mark.parametrize("operation", ["list_objects_v2", "list_objects"])
def test_delimiter_pages_hold_every_entry_once(s3, filled, operation):
    keys, prefixes = all_pages(s3, operation, Bucket=filled, Delimiter="/",
                               PaginationConfig={"PageSize": 1})
    assert sorted(keys) == ["a.txt", "b", "z y+%&<.txt"]
    assert sorted(prefixes) == ["a/", "\u00e9/"]


def test_other_delimiters_are_not_implemented(s3, filled):
    with pytest.raises(Exception) as caught:
        s3.list_objects_v2(Bucket=filled, Delimiter="-")
    assert boto_code(caught.value) == "NotImplemented" and boto_status(caught.value) == 501


def test_url_encoding_of_keys(server, filled):
    answer = requests.get(f"{server.url}/{filled}?list-type=2&encoding-type=url&prefix=z")
    root = ElementTree.fromstring(answer.content)
    key = root.find(f"{S3_NAMESPACE}Contents/{S3_NAMESPACE}Key").text
    assert key == "z%20y%2B%25%26%3C.txt"
    assert root.find(f"{S3_NAMESPACE}EncodingType").text == "url"


def test_unencoded_keys_are_escaped_xml(server, filled):
    answer = requests.get(f"{server.url}/{filled}?list-type=2&prefix=z")
    root = ElementTree.fromstring(answer.content)
    assert root.find(f"{S3_NAMESPACE}Contents/{S3_NAMESPACE}Key").text == "z y+%&<.txt"


def test_max_keys_zero_and_a_bad_token(s3, server, filled):
    page = s3.list_objects_v2(Bucket=filled, MaxKeys=0)
    assert page["KeyCount"] == 0 and page["IsTruncated"] is False
    answer = requests.get(f"{server.url}/{filled}?list-type=2&continuation-token=%%%")
    assert answer.status_code == 400 and error_of(answer)["Code"] == "InvalidArgument"


def test_v1_marker(s3, filled):
    page = s3.list_objects(Bucket=filled, Marker="a/c/e", MaxKeys=2)
    assert [entry["Key"] for entry in page["Contents"]] == s3_order(KEYS)[4:6]
    assert page["IsTruncated"] is True


def test_object_versions_are_each_the_null_version(s3, filled):
    page = s3.list_object_versions(Bucket=filled)
    assert [entry["Key"] for entry in page["Versions"]] == s3_order(KEYS)
    assert {entry["VersionId"] for entry in page["Versions"]} == {"null"}
    assert all(entry["IsLatest"] for entry in page["Versions"])
    keys, _ = all_pages(s3, "list_object_versions", Bucket=filled,
                        PaginationConfig={"PageSize": 2})
    assert keys == s3_order(KEYS)


def test_an_empty_bucket_and_a_missing_one(s3, server):
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    assert "CommonPrefixes" not in s3.list_objects_v2(Bucket=name, Delimiter="/")
    answer = requests.get(f"{server.url}/{new_bucket_name()}?list-type=2")
    assert answer.status_code == 404 and error_of(answer)["Code"] == "NoSuchBucket"


# -- delimiter listings in S3's key order ----------------------------------------------

#: Keys whose names collide with directories of a name they continue: a
#: character below "/" after a directory's name sorts the object (or the
#: next directory) before the common prefix in S3, after it in native order.
COLLIDING = ["a/x", "a/y/z", "a/y.txt", "a/y-1/q", "a/y!", "a-b", "a-c/d", "a-c.txt",
             "a-c-e/f", "a.c", "a!", "a /z", "a  b", "a0", "logs.txt", "logs/1", "logs-2024/x",
             "logs 1", "b", "\u00e9/\u00fc", "\u00e9a", "\u00e9.txt", "\u65e5\u672c/\u8a9e",
             "\u65e5\u672c.txt", "x y/z w", "x y.q"]
#: Prefixes: whole directories, partial names, and nothing at all.
PREFIXES = ["", "a", "a-", "a-c", "a/", "a/y", "a/y/", "lo", "logs", "logs/", "\u00e9",
            "x y", "nothing", "b/"]
#: Markers that are no entry: partial names, keys inside a common prefix.
LOOSE_MARKERS = ["a", "a-", "a ", "a  ", "a-c", "a-c-", "a-c.", "a/x", "a/y", "a/y-", "a/y/zz",
                 "logs", "logs.", "logs/0", "logs/2", "\u00e9", "zzz", "!", "a0/x"]


def s3_entries(keys, prefix, after=None):
    """S3's rules, without a store: the keys starting with ``prefix``, each
    one cut after the first "/" past the prefix (a common prefix, once),
    in UTF-8 byte order, those above ``after``."""
    entries = set()
    for key in keys:
        if key.startswith(prefix):
            rest = key[len(prefix):]
            entries.add(prefix + rest[:rest.index("/") + 1] if "/" in rest else key)
    ordered = s3_order(entries)
    return [entry for entry in ordered if after is None or entry.encode() > after.encode()]


def page_entries(page):
    """A page's keys and common prefixes, each list checked to be in order."""
    keys = [key for key, _ in page.contents]
    assert keys == s3_order(keys) and page.prefixes == s3_order(page.prefixes)
    return s3_order(keys + page.prefixes)


def paged(driver, bucket, prefix, max_keys):
    """Every entry of a delimiter listing, page by page from each page's last key."""
    entries, after = [], None
    for _ in range(100):
        page = list_page(driver, bucket, prefix, "/", after, max_keys)
        got = page_entries(page)
        entries += got
        if not page.truncated:
            return entries
        assert len(got) == max_keys and page.last_key == got[-1]
        after = page.last_key
    raise AssertionError("the listing never ended")


@pytest.fixture(scope="module", params=["memory", "filesystem", "swift"])
def colliding(request, tmp_path_factory):
    """A driver whose bucket ``bkt`` holds COLLIDING, each key's bytes its name."""
    if request.param == "swift":
        settings = swift_settings(request.getfixturevalue("swift_stack"))
    else:
        settings = driver_settings(request.param, tmp_path_factory.mktemp("colliding"))
    driver = create_driver(request.param, settings)
    for key in COLLIDING:
        driver.put_object(f"bkt/{key}", key.encode())
    yield driver
    driver.close()


def test_the_model_orders_as_s3_does():
    assert s3_entries(["logs.txt", "logs/1", "a-b", "a/x"], "") == ["a-b", "a/", "logs.txt",
                                                                   "logs/"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_delimiter_pages_follow_s3_order_at_every_page_size(colliding, prefix):
    expected = s3_entries(COLLIDING, prefix)
    sizes = range(1, len(expected) + 2)
    if colliding.name == "swift":  # a real Swift answers each page: a sample of sizes
        sizes = sorted({1, 2, 3, 5, len(expected) + 1})
    for max_keys in sizes:
        assert paged(colliding, "bkt", prefix, max_keys) == expected, max_keys


@pytest.mark.parametrize("prefix", PREFIXES)
def test_delimiter_pages_after_any_marker_hold_the_entries_above_it(colliding, prefix):
    for after in s3_entries(COLLIDING, prefix) + LOOSE_MARKERS:
        page = list_page(colliding, "bkt", prefix, "/", after, 1000)
        assert page_entries(page) == s3_entries(COLLIDING, prefix, after), after
        assert page.truncated is False


#: Names from characters on both sides of "/", a few of them at a time.
_SEGMENT = st.text(alphabet="ab -.!\u00e9", min_size=1, max_size=3).filter(
    lambda name: name not in (".", ".."))
_KEY = st.lists(_SEGMENT, min_size=1, max_size=3).map("/".join)


def without_clashes(keys):
    """The keys in order, less any that would make an object and a directory
    of one name (the store refuses those)."""
    kept = []
    for key in keys:
        if not any(key == other or key.startswith(other + "/") or other.startswith(key + "/")
                   for other in kept):
            kept.append(key)
    return kept


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys=st.lists(_KEY, min_size=1, max_size=25), prefix=st.text(alphabet="ab -.!/", max_size=3),
       after=st.one_of(st.none(), _KEY), max_keys=st.integers(1, 6))
# Found in CI: a prefix with an empty segment named the bucket's top level.
@example(keys=["a"], prefix="/", after=None, max_keys=1)
@example(keys=["a/b", "a/c/d"], prefix="a//", after=None, max_keys=2)
def test_delimiter_listings_of_any_keys_match_the_model(keys, prefix, after, max_keys):
    keys = without_clashes(keys)
    driver = create_driver("memory", {})
    for key in keys:
        driver.put_object(f"bkt/{key}", b"")
    assert paged(driver, "bkt", prefix, max_keys) == s3_entries(keys, prefix)
    page = list_page(driver, "bkt", prefix, "/", after, 1000)
    assert page_entries(page) == s3_entries(keys, prefix, after)


@pytest.fixture(scope="module")
def colliding_bucket(s3):
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    for key in COLLIDING:
        s3.put_object(Bucket=name, Key=key, Body=key.encode())
    return name


@pytest.mark.parametrize("operation", ["list_objects_v2", "list_objects", "list_object_versions"])
@pytest.mark.parametrize("prefix", ["", "a", "a/", "logs"])
def test_boto3_paginates_delimiter_listings_in_s3_order(s3, colliding_bucket, operation, prefix):
    expected = s3_entries(COLLIDING, prefix)
    for page_size in range(1, len(expected) + 2):
        entries = []
        for page in s3.get_paginator(operation).paginate(
                Bucket=colliding_bucket, Delimiter="/", Prefix=prefix,
                PaginationConfig={"PageSize": page_size}):
            entries += s3_order(
                [entry["Key"] for entry in page.get("Contents", page.get("Versions", []))]
                + [entry["Prefix"] for entry in page.get("CommonPrefixes", [])])
        assert entries == expected, page_size


@pytest.mark.parametrize("start_after", ["a", "a ", "a-c", "a-c/", "a/x", "logs", "logs.txt"])
def test_start_after_with_the_delimiter_in_s3_order(s3, colliding_bucket, start_after):
    page = s3.list_objects_v2(Bucket=colliding_bucket, Delimiter="/", StartAfter=start_after,
                              MaxKeys=4)
    entries = s3_order([entry["Key"] for entry in page.get("Contents", [])]
                       + [entry["Prefix"] for entry in page.get("CommonPrefixes", [])])
    assert entries == s3_entries(COLLIDING, "", start_after)[:4]
    assert page["IsTruncated"] is True and page["StartAfter"] == start_after
    following = s3.list_objects_v2(Bucket=colliding_bucket, Delimiter="/",
                                   ContinuationToken=page["NextContinuationToken"])
    rest = s3_order([entry["Key"] for entry in following.get("Contents", [])]
                    + [entry["Prefix"] for entry in following.get("CommonPrefixes", [])])
    assert entries + rest == s3_entries(COLLIDING, "", start_after)


def test_a_v1_marker_names_the_last_entry_of_a_page(s3, colliding_bucket):
    page = s3.list_objects(Bucket=colliding_bucket, Delimiter="/", MaxKeys=3)
    assert [entry["Key"] for entry in page["Contents"]] == ["a  b", "a!"]
    assert [entry["Prefix"] for entry in page["CommonPrefixes"]] == ["a /"]
    assert page["NextMarker"] == "a!"
    page = s3.list_objects(Bucket=colliding_bucket, Delimiter="/", MaxKeys=3, Marker="a-b")
    assert [entry["Key"] for entry in page["Contents"]] == ["a-c.txt"]
    assert [entry["Prefix"] for entry in page["CommonPrefixes"]] == ["a-c-e/", "a-c/"]
    assert page["NextMarker"] == "a-c/" and page["IsTruncated"] is True


# -- DeleteObjects ---------------------------------------------------------------------


def delete_body(keys, quiet=False) -> bytes:
    objects = "".join(f"<Object><Key>{key}</Key></Object>" for key in keys)
    return f"<Delete><Quiet>{str(quiet).lower()}</Quiet>{objects}</Delete>".encode()


def with_md5(body: bytes) -> dict:
    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}


def test_delete_objects_deletes_and_reports_each_key(s3, server):
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    for key in ("x/1", "x/2", "y"):
        s3.put_object(Bucket=name, Key=key, Body=b"data")
    answer = s3.delete_objects(Bucket=name, Delete={"Objects": [
        {"Key": "x/1"}, {"Key": "y"}, {"Key": "absent"}, {"Key": "x"}]})
    assert sorted(entry["Key"] for entry in answer["Deleted"]) == ["absent", "x", "x/1", "y"]
    assert "Errors" not in answer
    assert [entry["Key"] for entry in s3.list_objects_v2(Bucket=name)["Contents"]] == ["x/2"]
    answer = s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "x/2"}], "Quiet": True})
    assert "Deleted" not in answer and "Errors" not in answer
    assert requests.get(f"{server.url}/v1/objects/{name}/x/2").status_code == 404


@pytest.mark.parametrize("body", [
    b"<Delete/>", b"<Other><Object><Key>k</Key></Object></Other>", b"<Delete><Object/></Delete>",
    b"<Delete><Quiet>maybe</Quiet><Object><Key>k</Key></Object></Delete>",
    b'<!DOCTYPE d [<!ENTITY e "k">]><Delete><Object><Key>&e;</Key></Object></Delete>',
    delete_body(f"k{index}" for index in range(1001)),
], ids=["no-object", "wrong-root", "no-key", "bad-quiet", "entity", "over-1000-keys"])
def test_malformed_delete_bodies_delete_nothing(s3, server, body):
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"kept")
    answer = requests.post(f"{server.url}/{name}?delete", data=body, headers=with_md5(body))
    assert answer.status_code == 400 and error_of(answer)["Code"] == "MalformedXML"
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"kept"


def test_a_delete_body_that_does_not_match_its_md5_deletes_nothing(s3, server):
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"kept")
    body = delete_body(["k"])
    answer = requests.post(f"{server.url}/{name}?delete", data=body,
                           headers=with_md5(body + b" "))
    assert answer.status_code == 400 and error_of(answer)["Code"] == "BadDigest"
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"kept"


def test_an_oversized_delete_body_is_refused_before_it_is_read(server, s3):
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    answer = requests.post(f"{server.url}/{name}?delete", data=b" " * (3 * 1024 * 1024))
    assert answer.status_code == 400 and error_of(answer)["Code"] == "MalformedXML"


def test_a_huge_declared_delete_body_is_refused_without_waiting_for_it(server, s3):
    from live_server import raw_exchange, request_bytes

    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    answer = raw_exchange("127.0.0.1", server.port, request_bytes(
        "POST", f"/{name}?delete", {"Content-Length": str(10 ** 12)}), timeout=5)
    assert answer.status == 400
    assert ElementTree.fromstring(answer.body).findtext("Code") == "MalformedXML"

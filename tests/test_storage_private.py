"""Private objects (the contract's ``put_private`` and the rest) on every
driver that stores them: kept out of every listing, and joined into a
public object by ``cat_private`` whole or not at all, the chunks consumed."""

from __future__ import annotations

import os

import pytest
from conftest import build_driver

from blobsvc.storage import ObjectMeta, Upload
from blobsvc.storage.errors import InvalidPath, MissingChunks

MiB = 1024 * 1024


@pytest.fixture(params=["memory", "filesystem", "swift"])
def driver(request, tmp_path):
    drv = build_driver(request, request.param, tmp_path)
    yield drv
    drv.close()


def test_private_objects_are_stored_read_and_listed_only_privately(driver):
    info = driver.put_private("multipart/b/u/00001", Upload(b"part one"))
    assert info.size == 8
    assert driver.read_private("multipart/b/u/00001") == b"part one"
    assert driver.private_info("multipart/b/u/00001").etag == info.etag
    assert [e.name for e in driver.list_private("multipart/b/u")] == ["00001"]
    assert [e.name for e in driver.list_private("multipart/b")] == ["u"]
    assert driver.list_objects("") == [] and driver.list_recursive("") == []
    assert driver.delete_private("multipart/b/u/00001")
    assert not driver.delete_private("multipart/b/u/00001")
    assert driver.read_private("multipart/b/u/00001") is None
    assert driver.private_info("multipart/b/u/00001") is None
    assert driver.list_private("multipart/b/u") == []


@pytest.mark.parametrize("name", ["records/x", "segments/x", "tmp/x", "multipart/../x", ""])
def test_private_names_stay_in_their_area(driver, name):
    with pytest.raises((ValueError, InvalidPath)):
        driver.put_private(name, Upload(b"x"))


def test_cat_private_joins_chunks_into_a_public_object_and_consumes_them(driver):
    parts = [os.urandom(MiB + 3), os.urandom(MiB), b"tail"]
    for number, data in enumerate(parts, start=1):
        driver.put_private(f"multipart/b/u/{number:05d}", Upload(data))
    info = driver.cat_private("b/key", [f"multipart/b/u/{n:05d}" for n in (1, 2, 3)],
                              meta=ObjectMeta(metadata={"k": "v"}))
    assert info.size == sum(map(len, parts))
    assert driver.get_object("b/key") == b"".join(parts)
    assert driver.stat_object("b/key").metadata == {"k": "v"}
    assert driver.list_private("multipart/b/u") == []
    assert [e.path for e in driver.list_recursive("")] == ["b/key"]


def test_cat_private_with_a_chunk_missing_changes_nothing(driver):
    driver.put_private("multipart/b/u/00001", Upload(b"one"))
    with pytest.raises(MissingChunks):
        driver.cat_private("b/key", ["multipart/b/u/00001", "multipart/b/u/00002"])
    assert driver.read_private("multipart/b/u/00001") == b"one"
    assert driver.list_recursive("") == []

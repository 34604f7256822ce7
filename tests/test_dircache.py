"""The directory-name cache must never serve a stale listing."""

import os
import time

from blobsvc.storage.filesystem import dircache
from blobsvc.storage.filesystem.dircache import DirectoryNames


def make_directory(tmp_path, count: int, age: float):
    directory = tmp_path / "d"
    directory.mkdir()
    for i in range(count):
        (directory / f"{i:05d}").touch()
    then = time.time() - age
    os.utime(directory, (then, then))
    return directory


def test_a_settled_large_directory_is_read_once(tmp_path, monkeypatch):
    directory = make_directory(tmp_path, dircache.MIN_ENTRIES, age=60)
    cache = DirectoryNames()
    first = cache.sorted_names(str(directory))
    calls = []
    monkeypatch.setattr(os, "listdir", lambda path: calls.append(path) or [])
    assert cache.sorted_names(str(directory)) is first
    assert calls == []


def test_an_added_name_shows_up_at_once(tmp_path):
    directory = make_directory(tmp_path, dircache.MIN_ENTRIES, age=60)
    cache = DirectoryNames()
    cache.sorted_names(str(directory))
    (directory / "zzz-new").touch()
    assert cache.sorted_names(str(directory))[-1] == "zzz-new"


def test_a_removed_name_goes_at_once(tmp_path):
    directory = make_directory(tmp_path, dircache.MIN_ENTRIES, age=60)
    cache = DirectoryNames()
    cache.sorted_names(str(directory))
    (directory / "00000").unlink()
    assert "00000" not in cache.sorted_names(str(directory))


def test_a_directory_changed_just_now_is_not_kept(tmp_path):
    directory = make_directory(tmp_path, dircache.MIN_ENTRIES, age=0)
    cache = DirectoryNames()
    before = os.stat(directory)
    cache.sorted_names(str(directory))
    # A change within the same clock tick leaves the mtime as it was; put
    # it back by hand to make that happen on purpose.
    (directory / "same-tick").touch()
    os.utime(directory, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert "same-tick" in cache.sorted_names(str(directory))


def test_small_directories_are_not_kept(tmp_path):
    directory = make_directory(tmp_path, 10, age=60)
    cache = DirectoryNames()
    cache.sorted_names(str(directory))
    assert cache._total == 0

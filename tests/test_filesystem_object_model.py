"""The filesystem driver's side of the object model: what only the disk can get wrong.

Metadata records in xattrs and their sidecars, the journal that keeps
sidecars from being orphaned, the expiry index and its reaper, server-side
copies, and the sorted recursive walk. The conformance suite checks the
contract through the public API; these tests also look at the disk.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import json
import os
import random
import stat
import threading
import time
import tracemalloc

import pytest

from blobsvc.storage import ObjectMeta, Upload
from blobsvc.storage.errors import (
    Conflict,
    InvalidPath,
    MissingChunks,
    NotFound,
    PreconditionFailed,
    StorageError,
    StorageFault,
)
from blobsvc.storage.filesystem import FilesystemDriver, FilesystemSettings, expiry, objectmeta
from blobsvc.storage.filesystem.expiry import ExpiryIndex
from blobsvc.storage.filesystem.files import CHUNK_SIZE
from blobsvc.storage.memory import MemoryDriver
from blobsvc.storage.settings import build_settings

META_XATTR = "user.blobsvc.meta"


@pytest.fixture
def root(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def fs(root):
    driver = FilesystemDriver.build(root=str(root), fsync=False)
    yield driver
    driver.close()


def build(root, **settings) -> FilesystemDriver:
    return FilesystemDriver.build(root=str(root), fsync=False, **settings)


def sidecars(root) -> list[str]:
    return sorted(os.listdir(root / ".blobsvc" / "meta"))


def journal(root) -> list[str]:
    return sorted(os.listdir(root / ".blobsvc" / "journal"))


def index_entries(root) -> list[str]:
    """Every expiry index entry, as ``bucket/name``."""
    top = root / ".blobsvc" / "expiring"
    return sorted(f"{bucket}/{name}" for bucket in os.listdir(top)
                  for name in os.listdir(top / bucket))


def record(root, path: str) -> dict:
    return json.loads(os.getxattr(root / path, META_XATTR).decode())


def disk_files(root) -> dict[str, bytes]:
    """Every file below the root outside the private area, by relative path."""
    found = {}
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if not (directory == str(root) and d == ".blobsvc")]
        for name in names:
            full = os.path.join(directory, name)
            with open(full, "rb") as handle:
                found[os.path.relpath(full, root)] = handle.read()
    return found


def big_metadata(seed: int = 0) -> dict[str, str]:
    """Exactly 8 KiB of user metadata (names plus UTF-8 values), non-ASCII included."""
    rng = random.Random(seed)
    metadata: dict[str, str] = {}
    budget = 8 * 1024
    alphabet = "abcxyzé日€ \"\\'{}:,"
    while budget > 0:
        name = f"k{len(metadata):03d}"
        value = ""
        room = min(budget - len(name), 160)  # about 50 names, within the 64 allowed
        while room > 0:
            char = rng.choice(alphabet)
            size = len(char.encode())
            if size > room:
                char, size = "z", 1
            value += char
            room -= size
        metadata[name] = value
        budget -= len(name) + len(value.encode())
    assert sum(len(k) + len(v.encode()) for k, v in metadata.items()) == 8 * 1024
    return metadata


SMALL = ObjectMeta(content_type="text/plain; charset=utf-8",
                   headers={"Content-Encoding": "gzip", "Content-Disposition": "attachment"},
                   metadata={"color": "blue", "owner": "Zoë"})


def put(fs, path: str, data: bytes = b"data", **meta) -> object:
    return fs.put_object(path, Upload(data, meta=ObjectMeta(**meta)))


def described(info) -> tuple:
    return (info.content_type, dict(info.metadata or {}), dict(info.headers), info.expires_at)


# -- metadata records ----------------------------------------------------------------


def test_metadata_survives_a_restart(root):
    expires_at = int(time.time()) + 3600
    meta = ObjectMeta(content_type=SMALL.content_type, headers=SMALL.headers,
                      metadata=SMALL.metadata, expires_at=expires_at)
    first = build(root)
    written = first.put_object("d/obj", Upload(b"payload", meta=meta))
    first.close()
    again = build(root)
    try:
        for info in (again.stat_object("d/obj"), again.open_object("d/obj")[0]):
            assert described(info) == (SMALL.content_type, SMALL.metadata, SMALL.headers, expires_at)
            assert info.etag == written.etag == hashlib.md5(b"payload").hexdigest()
        assert again.get_object("d/obj") == b"payload"
    finally:
        again.close()
    assert sidecars(root) == [], "small metadata lives in the xattr"


def test_small_metadata_is_one_xattr_set_before_the_rename(fs, root, monkeypatch):
    seen = []
    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):
        if str(dst) == str(root / "obj"):
            seen.append(json.loads(os.getxattr(src, META_XATTR)))
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    fs.put_object("obj", Upload(b"x", meta=SMALL))
    assert seen == [record(root, "obj")]
    assert record(root, "obj") == {"content_type": SMALL.content_type, "expires_at": None,
                                   "headers": dict(SMALL.headers), "metadata": dict(SMALL.metadata)}


def test_every_operation_returns_info_with_metadata(fs):
    info = put(fs, "a", b"abc")
    assert (info.metadata, info.headers, info.expires_at) == ({}, {}, None)
    assert described(fs.put_object("b", Upload(b"b", meta=SMALL))) == described_small()
    assert described(fs.stat_object("b")) == described_small()
    assert described(fs.open_object("b")[0]) == described_small()
    assert described(fs.move_object("b", "c")) == described_small()
    assert described(fs.copy_object("c", "d")) == described_small()
    assert described(fs.update_object("d", ObjectMeta(metadata={"x": "1"}))) == (
        SMALL.content_type, {"x": "1"}, {}, None)
    assert described(fs.cat_objects("e", ["a"], meta=SMALL)) == described_small()
    assert fs.stat_object("e").metadata == dict(SMALL.metadata)


def described_small() -> tuple:
    return (SMALL.content_type, dict(SMALL.metadata), dict(SMALL.headers), None)


def test_objects_written_before_the_record_keep_their_content_type(fs, root):
    path = root / "old"
    path.write_bytes(b"legacy")
    os.setxattr(path, "user.blobsvc.etag", hashlib.md5(b"legacy").hexdigest().encode())
    os.setxattr(path, "user.blobsvc.content_type", b"text/csv")
    info = fs.stat_object("old")
    assert described(info) == ("text/csv", {}, {}, None)
    assert [e.content_type for e in fs.list_recursive("")] == ["text/csv"]
    updated = fs.update_object("old", ObjectMeta(metadata={"a": "b"}))
    assert described(updated) == described(fs.stat_object("old")) == ("text/csv", {"a": "b"}, {}, None)


# -- sidecars ----------------------------------------------------------------------------


def test_8_kib_of_metadata_round_trips_byte_exact_through_a_sidecar(root):
    metadata = big_metadata()
    headers = {"Content-Disposition": "attachment; filename=\"" + "é" * 1000 + "\""}
    fs = build(root)
    fs.put_object("big", Upload(b"bytes", meta=ObjectMeta(metadata=metadata, headers=headers,
                                                          content_type="text/x-big")))
    fs.close()
    assert len(sidecars(root)) == 1
    reference = record(root, "big")
    assert reference == {"content_type": "text/x-big", "expires_at": None, "sidecar": sidecars(root)[0]}
    again = build(root)
    try:
        info = again.stat_object("big")
        assert info.metadata == metadata and info.headers == headers
        assert [(k, v.encode()) for k, v in info.metadata.items()] == [
            (k, v.encode()) for k, v in metadata.items()]
        assert info.content_type == "text/x-big"
        assert again.get_object("big") == b"bytes"
    finally:
        again.close()


def test_a_content_type_too_long_for_the_xattr_goes_to_the_sidecar_too(fs, root):
    content_type = "application/x-" + "t" * 4000
    metadata = big_metadata(1)
    fs.put_object("obj", Upload(b"1", meta=ObjectMeta(content_type=content_type, metadata=metadata)))
    assert "content_type" not in record(root, "obj")
    assert described(fs.stat_object("obj")) == (content_type, metadata, {}, None)
    assert [e.content_type for e in fs.list_objects("")] == [content_type]
    assert [e.content_type for e in fs.list_recursive("")] == [content_type]


def test_sidecars_go_with_their_object(fs, root):
    fs.put_object("a", Upload(b"1", meta=ObjectMeta(metadata=big_metadata(1))))
    first = sidecars(root)
    fs.put_object("a", Upload(b"2", meta=ObjectMeta(metadata=big_metadata(2))))  # overwrite
    second = sidecars(root)
    assert len(second) == 1 and second != first
    assert fs.stat_object("a").metadata == big_metadata(2)
    fs.put_object("a", b"3")  # overwritten without metadata
    assert sidecars(root) == []
    fs.put_object("a", Upload(b"4", meta=ObjectMeta(metadata=big_metadata(4))))
    fs.update_object("a", ObjectMeta(metadata={"small": "now"}))  # POST: back in the xattr
    assert sidecars(root) == []
    fs.update_object("a", ObjectMeta(metadata=big_metadata(5)))  # POST: into a sidecar
    assert len(sidecars(root)) == 1
    fs.delete_object("a")
    assert sidecars(root) == [] and journal(root) == []


def test_move_copy_and_cat_give_each_object_its_own_sidecar(fs, root):
    metadata = big_metadata(7)
    fs.put_object("src", Upload(b"abc", meta=ObjectMeta(metadata=metadata)))
    before = sidecars(root)
    fs.put_object("dst", Upload(b"old", meta=ObjectMeta(metadata=big_metadata(8))))
    fs.move_object("src", "dst")  # replaces an object with a sidecar of its own
    assert len(sidecars(root)) == 1 and sidecars(root) != before
    assert fs.stat_object("dst").metadata == metadata
    fs.copy_object("dst", "copy")
    assert len(sidecars(root)) == 2
    assert fs.stat_object("copy").metadata == metadata
    fs.delete_object("dst")
    assert fs.stat_object("copy").metadata == metadata  # its sidecar is its own
    fs.cat_objects("joined", ["copy"], meta=ObjectMeta(metadata=big_metadata(9)))
    assert len(sidecars(root)) == 1 and journal(root) == []
    assert fs.stat_object("joined").metadata == big_metadata(9)


def test_failed_writes_leave_no_sidecar(fs, root):
    fs.put_object("keep", Upload(b"1", meta=ObjectMeta(metadata=big_metadata(1))))
    kept = sidecars(root)

    def refuse(current):
        raise PreconditionFailed("no", "keep")

    with pytest.raises(PreconditionFailed):
        fs.put_object("keep", Upload(b"2", meta=ObjectMeta(metadata=big_metadata(2)),
                                     precondition=refuse))
    put(fs, "dir/x")
    with pytest.raises(Conflict):
        fs.put_object("dir", Upload(b"2", meta=ObjectMeta(metadata=big_metadata(2))))
    with pytest.raises(Conflict):
        fs.copy_object("keep", "dir")
    assert sidecars(root) == kept and journal(root) == []
    assert fs.stat_object("keep").metadata == big_metadata(1)


def test_a_reader_whose_sidecar_vanished_reads_again(fs, root, monkeypatch):
    """An update between a reader's open and its sidecar read: it opens again."""
    fs.put_object("obj", Upload(b"x", meta=ObjectMeta(metadata=big_metadata(1))))
    real_read = objectmeta.Sidecars.read
    raced = []

    def read_after_an_update(self, sidecar, where):
        if not raced:
            raced.append(sidecar)
            fs.update_object("obj", ObjectMeta(metadata=big_metadata(2)))
        return real_read(self, sidecar, where)

    monkeypatch.setattr(objectmeta.Sidecars, "read", read_after_an_update)
    assert fs.stat_object("obj").metadata == big_metadata(2)
    assert raced and raced[0] not in sidecars(root)


def test_a_sidecar_lost_for_good_still_serves_the_bytes(fs, root, caplog):
    fs.put_object("obj", Upload(b"x", meta=ObjectMeta(content_type="text/plain",
                                                      metadata=big_metadata(1))))
    os.unlink(root / ".blobsvc" / "meta" / sidecars(root)[0])
    info = fs.stat_object("obj")
    assert described(info) == ("text/plain", {}, {}, None)
    assert fs.get_object("obj") == b"x"
    assert "sidecar of obj is missing" in caplog.text


# -- what a crash leaves -------------------------------------------------------------------


def plant_journal(root, pid: int, paths: list[str], ids: list[str]) -> None:
    name = root / ".blobsvc" / "journal" / f"{pid}.{'0' * 32}.json"
    name.write_text(json.dumps({"paths": paths, "sidecars": ids}))


def plant_sidecar(root, sidecar: str) -> None:
    (root / ".blobsvc" / "meta" / sidecar).write_text(json.dumps(
        {"content_type": None, "expires_at": None, "headers": {}, "metadata": {"x": "y"}}))


DEAD_PID = 999_999_999


def test_a_crash_before_the_commit_orphans_no_sidecar(root):
    build(root).close()
    plant_sidecar(root, "a" * 32)  # written, then the process died before the rename
    plant_journal(root, DEAD_PID, ["obj"], ["a" * 32])
    build(root).close()
    assert sidecars(root) == [] and journal(root) == []


def test_a_crash_after_the_commit_drops_the_replaced_sidecar_only(root):
    fs = build(root)
    fs.put_object("obj", Upload(b"new", meta=ObjectMeta(metadata=big_metadata(1))))
    fs.close()
    live = sidecars(root)[0]
    plant_sidecar(root, "b" * 32)  # the replaced version's, not yet removed at the crash
    plant_journal(root, DEAD_PID, ["obj"], [live, "b" * 32])
    fs = build(root)
    try:
        assert sidecars(root) == [live] and journal(root) == []
        assert fs.stat_object("obj").metadata == big_metadata(1)
    finally:
        fs.close()


def test_journal_entries_of_live_processes_are_left_alone(root):
    build(root).close()
    plant_sidecar(root, "c" * 32)
    plant_journal(root, os.getppid(), ["obj"], ["c" * 32])  # a live sibling's write in flight
    build(root).close()
    assert sidecars(root) == ["c" * 32] and len(journal(root)) == 1


# -- volumes without user xattrs ---------------------------------------------------------------


@pytest.fixture
def no_xattrs(monkeypatch):
    def unsupported(*args, **kwargs):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", unsupported)


def test_without_xattrs_plain_writes_work_and_metadata_is_refused(fs, root, no_xattrs):
    fs.put_object("plain", Upload(b"plain", content_type="text/plain"))
    assert fs.get_object("plain") == b"plain"
    assert fs.stat_object("plain").etag == hashlib.md5(b"plain").hexdigest()
    for meta in (ObjectMeta(metadata={"a": "b"}), ObjectMeta(headers={"Cache-Control": "no-store"}),
                 ObjectMeta(expires_at=int(time.time()) + 60)):
        with pytest.raises(StorageFault, match="no user extended attributes") as caught:
            fs.put_object("meta", Upload(b"x", meta=meta))
        assert "user metadata, stored headers or an expiry" in caught.value.message
        with pytest.raises(StorageFault, match="no user extended attributes"):
            fs.copy_object("plain", "copy", meta=meta)
    with pytest.raises(StorageFault, match="no user extended attributes"):
        fs.update_object("plain", ObjectMeta(content_type="text/html"))
    assert disk_files(root) == {"plain": b"plain"}
    assert os.listdir(root / ".blobsvc" / "tmp") == []
    fs.copy_object("plain", "copy")  # a plain copy still works
    fs.move_object("copy", "moved")
    assert fs.get_object("moved") == b"plain"


# -- update (POST) ---------------------------------------------------------------------------


def test_update_replaces_metadata_without_touching_the_bytes(fs, root):
    written = fs.put_object("obj", Upload(b"bytes", meta=SMALL))
    inode, mtime = os.stat(root / "obj").st_ino, os.stat(root / "obj").st_mtime_ns
    info = fs.update_object("obj", ObjectMeta(metadata={"new": "one"}))
    assert described(info) == (SMALL.content_type, {"new": "one"}, {}, None)
    assert info.etag == written.etag
    assert described(fs.stat_object("obj")) == described(info)
    assert (os.stat(root / "obj").st_ino, os.stat(root / "obj").st_mtime_ns) == (inode, mtime)
    assert fs.get_object("obj") == b"bytes"
    fs.update_object("obj", ObjectMeta(content_type="image/png"))
    assert described(fs.stat_object("obj")) == ("image/png", {}, {}, None)


def test_update_of_a_missing_or_expired_object_is_not_found(fs):
    with pytest.raises(NotFound):
        fs.update_object("missing", ObjectMeta(metadata={"a": "b"}))
    put(fs, "gone", expires_at=int(time.time()) - 1)
    with pytest.raises(NotFound):
        fs.update_object("gone", ObjectMeta(metadata={"a": "b"}))
    put(fs, "dir/x")
    with pytest.raises(NotFound):
        fs.update_object("dir", ObjectMeta(metadata={"a": "b"}))


def test_readers_see_the_old_metadata_or_the_new_never_a_mix(fs):
    """One setxattr per update: content type and metadata change together."""
    versions = [ObjectMeta(content_type=f"text/v{i}", metadata={"v": str(i), "w": str(i)},
                           headers={"Cache-Control": f"max-age={i}"}) for i in range(2)]
    fs.put_object("obj", Upload(b"x", meta=versions[0]))
    stop = threading.Event()
    mixed = []

    def read() -> None:
        while not stop.is_set():
            info = fs.stat_object("obj")
            v = info.content_type[-1]
            if info.metadata != {"v": v, "w": v} or info.headers != {"Cache-Control": f"max-age={v}"}:
                mixed.append(described(info))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(300):
            fs.update_object("obj", versions[i % 2])
    finally:
        stop.set()
        reader.join()
    assert mixed == []


# -- copy ---------------------------------------------------------------------------------------


COPY_SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 1]


@pytest.mark.parametrize("size", COPY_SIZES)
def test_copy_is_byte_exact_through_copy_file_range(fs, monkeypatch, size):
    data = random.Random(size).randbytes(size)
    source = fs.put_object("src", data)
    calls = []
    real = os.copy_file_range

    def spy(*args):
        calls.append(args[2])
        return real(*args)

    monkeypatch.setattr(os, "copy_file_range", spy)
    copied = fs.copy_object("src", "dir/dst")
    assert fs.get_object("dir/dst") == data
    assert copied.etag == source.etag == hashlib.md5(data).hexdigest() == fs.stat_object("dir/dst").etag
    assert copied.size == size
    assert (calls != []) == (size > 0)


@pytest.mark.parametrize("code", [errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP])
def test_copy_falls_back_to_reading_and_writing(fs, monkeypatch, code):
    data = random.Random(code).randbytes(3 * CHUNK_SIZE + 1)
    fs.put_object("src", data)

    def no_kernel_copy(*args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "copy_file_range", no_kernel_copy)
    fs.copy_object("src", "dst")
    assert fs.get_object("dst") == data


def test_copy_never_holds_the_object_in_memory(fs, monkeypatch):
    data = os.urandom(16 * CHUNK_SIZE)
    fs.put_object("src", data)
    monkeypatch.setattr(os, "copy_file_range",
                        lambda *args: (_ for _ in ()).throw(OSError(errno.EXDEV, "cross-device")))
    tracemalloc.start()
    try:
        fs.copy_object("src", "dst")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * CHUNK_SIZE, peak
    assert fs.get_object("dst") == data


def test_copy_takes_the_sources_metadata_but_not_its_expiry(fs):
    expires_at = int(time.time()) + 3600
    fs.put_object("src", Upload(b"x", meta=ObjectMeta(content_type="text/plain", headers=SMALL.headers,
                                                      metadata=SMALL.metadata, expires_at=expires_at)))
    assert described(fs.copy_object("src", "dst")) == (
        "text/plain", dict(SMALL.metadata), dict(SMALL.headers), None)
    assert described(fs.stat_object("dst")) == ("text/plain", dict(SMALL.metadata), dict(SMALL.headers), None)
    given = ObjectMeta(metadata={"only": "this"})
    assert described(fs.copy_object("src", "other", meta=given)) == ("text/plain", {"only": "this"}, {}, None)
    assert described(fs.stat_object("other")) == ("text/plain", {"only": "this"}, {}, None)


def test_copy_onto_itself_rewrites_the_metadata(fs):
    fs.put_object("obj", Upload(b"same", meta=SMALL))
    fs.copy_object("obj", "obj", meta=ObjectMeta(metadata={"fresh": "yes"}))
    assert described(fs.stat_object("obj")) == (SMALL.content_type, {"fresh": "yes"}, {}, None)
    assert fs.get_object("obj") == b"same"


def test_copy_of_an_expired_missing_or_directory_source(fs, root):
    put(fs, "gone", expires_at=int(time.time()) - 1)
    with pytest.raises(NotFound):
        fs.copy_object("gone", "dst")
    with pytest.raises(NotFound):
        fs.copy_object("missing", "dst")
    put(fs, "dir/x")
    with pytest.raises(Conflict):
        fs.copy_object("dir", "dst")
    assert not (root / "dst").exists()
    assert os.listdir(root / ".blobsvc" / "tmp") == []


def test_copy_precondition_is_judged_under_the_destinations_lock(fs):
    put(fs, "src", b"new")
    put(fs, "dst", b"old")
    seen = []

    def refuse(current):
        seen.append(current.etag)
        raise PreconditionFailed("no", "dst")

    with pytest.raises(PreconditionFailed):
        fs.copy_object("src", "dst", precondition=refuse)
    assert seen == [hashlib.md5(b"old").hexdigest()]
    assert fs.get_object("dst") == b"old"
    put(fs, "below/x")
    with pytest.raises(Conflict):
        fs.copy_object("src", "below/x/y")


def test_cat_carries_its_meta_and_an_expired_chunk_is_missing(fs):
    put(fs, "c1", b"one")
    put(fs, "c2", b"two", expires_at=int(time.time()) - 1)
    with pytest.raises(MissingChunks) as caught:
        fs.cat_objects("out", ["c1", "c2"])
    assert caught.value.missing == ["c2"]
    info = fs.cat_objects("out", ["c1"], meta=SMALL)
    assert described(info) == described(fs.stat_object("out")) == described_small()


# -- expiry and the reaper -------------------------------------------------------------------


@contextlib.contextmanager
def clock_at(monkeypatch, when: float):
    """Every reading of the clock (the driver's and the base's) says ``when``."""
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda: when)
        yield


def test_move_keeps_the_expiry_and_an_expired_source_is_not_found(fs):
    expires_at = int(time.time()) + 3600
    put(fs, "a", expires_at=expires_at)
    assert fs.move_object("a", "b").expires_at == expires_at
    assert fs.stat_object("b").expires_at == expires_at
    put(fs, "gone", expires_at=int(time.time()) - 1)
    with pytest.raises(NotFound):
        fs.move_object("gone", "c")


def test_the_reaper_deletes_the_file_from_disk(fs, root, monkeypatch):
    now = int(time.time())
    put(fs, "d/e/soon", b"expiring", expires_at=now + 10)
    put(fs, "d/stays", b"forever")
    assert fs.reap_expired() == 0
    assert (root / "d/e/soon").exists()
    with clock_at(monkeypatch, now + 10):
        with pytest.raises(NotFound):
            fs.stat_object("d/e/soon")  # absent at once...
        assert (root / "d/e/soon").exists()  # ...its space back at the next pass
        assert fs.reap_expired() == 1
    assert disk_files(root) == {"d/stays": b"forever"}
    assert not (root / "d/e").exists(), "the emptied directory is pruned"
    assert index_entries(root) == []


def test_the_index_holds_only_what_is_still_to_expire(fs, root):
    """Rewriting an expiry hour after hour, deleting, moving: the index keeps
    one entry per object still to expire, and no empty bucket, so no client
    can make every pass (and every listing) list a growing index."""
    now = int(time.time())
    put(fs, "a", expires_at=now + 3600)
    for hour in range(2, 50):
        fs.update_object("a", ObjectMeta(expires_at=now + hour * 3600))
    put(fs, "b", expires_at=now + 3600)
    put(fs, "b", expires_at=now + 7 * 3600)  # an overwrite
    put(fs, "c", expires_at=now + 3600)
    fs.move_object("c", "moved")
    put(fs, "d", expires_at=now + 3600)
    fs.delete_object("d")
    put(fs, "e", expires_at=now + 3600)
    put(fs, "e", b"now forever")
    expected = {("a", now + 49 * 3600), ("b", now + 7 * 3600), ("moved", now + 3600)}
    entries = index_entries(root)
    top = root / ".blobsvc" / "expiring"
    filed = [ExpiryIndex.read(str(top / entry)) for entry in entries]
    assert {(path, expires_at) for expires_at, path in filed} == expected
    assert len(entries) == len(expected)
    buckets = sorted(os.listdir(root / ".blobsvc" / "expiring"))
    assert len(buckets) == len({expires_at - expires_at % 3600 for _, expires_at in expected})


def test_past_buckets_are_removed_once_empty(fs, root, monkeypatch):
    now = int(time.time())
    put(fs, "a", expires_at=now + 1)
    with clock_at(monkeypatch, now + 2 * expiry.BUCKET_SECONDS):
        assert fs.reap_expired() == 1
    assert os.listdir(root / ".blobsvc" / "expiring") == []


@pytest.mark.parametrize("change", ["overwrite", "update-later", "update-none", "delete", "move"])
def test_stale_index_entries_are_dropped_without_touching_the_object(fs, root, monkeypatch, change):
    now = int(time.time())
    put(fs, "obj", b"first", expires_at=now + 10)
    later = now + 1000
    if change == "overwrite":
        put(fs, "obj", b"second")
    elif change == "update-later":
        fs.update_object("obj", ObjectMeta(expires_at=later))
    elif change == "update-none":
        fs.update_object("obj", ObjectMeta(metadata={"kept": "yes"}))
    elif change == "delete":
        fs.delete_object("obj")
    elif change == "move":
        fs.move_object("obj", "moved")
        put(fs, "obj", b"a new object where the old one was")
    before = disk_files(root)
    with clock_at(monkeypatch, now + 10):
        reaped = fs.reap_expired()
    assert len(index_entries(root)) == (1 if change == "update-later" else 0)
    if change == "move":
        assert reaped == 1  # the moved object, at its new path: its entry was filed there
        assert disk_files(root) == {"obj": b"a new object where the old one was"}
    else:
        assert reaped == 0
        assert disk_files(root) == before
    if change == "update-later":
        with clock_at(monkeypatch, later):
            assert fs.reap_expired() == 1
        assert disk_files(root) == {}
    assert index_entries(root) == []


def test_the_reaper_never_looks_at_objects_that_never_expire(tmp_path, monkeypatch):
    """A pass costs the same os calls with 5 000 objects that never expire as with none."""
    counts = []
    for extra in (0, 5000):
        root = tmp_path / f"root-{extra}"
        fs = build(root, reap_interval=0)
        for i in range(extra):  # plain files: objects without any record
            directory = root / f"never/{i % 10}"
            directory.mkdir(parents=True, exist_ok=True)
            (directory / f"{i:05d}").write_bytes(b"n")
        for i in range(20):
            put(fs, f"plain/{i}", b"p")
        now = int(time.time())
        for i in range(3):
            put(fs, f"due/{i}", b"d", expires_at=now - 10)
        put(fs, "later", b"l", expires_at=now + 3 * expiry.BUCKET_SECONDS)
        with counting_os_calls(monkeypatch) as calls:
            assert fs.reap_expired() == 3
        counts.append(dict(calls))
        remaining = disk_files(root)
        assert len(remaining) == extra + 21 and not any(p.startswith("due/") for p in remaining)
        fs.close()
    assert counts[0] == counts[1], counts
    assert sum(counts[0].values()) < 200, counts[0]


@contextlib.contextmanager
def counting_os_calls(monkeypatch):
    calls: collections.Counter = collections.Counter()
    with monkeypatch.context() as patch:
        for name in ("listdir", "scandir", "open", "lstat", "stat", "fstat", "getxattr",
                     "unlink", "rename", "rmdir", "read", "pread"):
            real = getattr(os, name)

            def counted(*args, _real=real, _name=name, **kwargs):
                calls[_name] += 1
                return _real(*args, **kwargs)

            patch.setattr(os, name, counted)
        yield calls


def test_two_drivers_reaping_one_root_at_once(root):
    """Passes of two drivers race over the same entries while a writer
    overwrites some objects without expiry: each expired object goes once,
    no overwritten one goes at all."""
    first, second = build(root, reap_interval=0), build(root, reap_interval=0)
    now = int(time.time())
    count = 300
    for i in range(count):
        put(first, f"o/{i % 7}/{i}", b"expiring", expires_at=now - 1)
    overwritten = {f"o/{i % 7}/{i}" for i in range(0, count, 3)}
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def reap(driver) -> None:
        try:
            barrier.wait()
            results.append(driver.reap_expired())
        except BaseException as exc:
            errors.append(exc)

    def overwrite() -> None:
        barrier.wait()
        for path in sorted(overwritten):
            put(second, path, b"kept")

    threads = [threading.Thread(target=reap, args=(d,)) for d in (first, second)]
    threads.append(threading.Thread(target=overwrite))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert first.reap_expired() + second.reap_expired() == 0
    # An overwritten object may have been reaped just before its overwrite
    # landed (then written again): never twice, and no other one survives.
    assert count - len(overwritten) <= sum(results) <= count
    assert disk_files(root) == {path: b"kept" for path in overwritten}
    assert index_entries(root) == []
    first.close()
    second.close()


def test_the_reaper_thread_reclaims_space_on_its_own_and_stops_on_close(root):
    fs = build(root, reap_interval=0.05)
    assert not fs._reaper.running, "nothing can expire yet: no thread"
    put(fs, "a/b", b"x", expires_at=int(time.time()) - 1)
    assert fs._reaper.running
    deadline = time.monotonic() + 10
    while (root / "a").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not (root / "a").exists()
    thread = fs._reaper._thread
    fs.close()
    assert thread is not None and not thread.is_alive()


def test_the_reaper_starts_at_start_when_the_index_has_entries(root):
    fs = build(root, reap_interval=3600)
    put(fs, "a", expires_at=int(time.time()) + 100)
    fs.close()
    again = build(root, reap_interval=3600)
    try:
        assert again._reaper.running
    finally:
        again.close()
    off = build(root, reap_interval=0)
    try:
        assert not off._reaper.running
        put(off, "b", expires_at=int(time.time()) + 100)
        assert not off._reaper.running
    finally:
        off.close()


@pytest.mark.parametrize("value", [-1, float("inf"), float("nan"), "60", True])
def test_a_bad_reap_interval_is_refused_at_start(tmp_path, value):
    with pytest.raises(ValueError, match="reap_interval"):
        build_settings(FilesystemSettings, {"root": str(tmp_path), "reap_interval": value}, "filesystem")


# -- listings ------------------------------------------------------------------------------------


TRICKY = ["a-1", "a.txt", "a/b", "a/b-c", "a/b.c", "a/b0", "a/b_/d/e", "a/b-/c", "a0", "b", "é", "éa/x",
          "日本/語", "z z", "Z", "_", "~", ".hidden", ".blobsvcx", "a/.x", "0/1/2/3/4/5", "€/€"]


def populate(driver, names) -> None:
    for name in names:
        driver.put_object(name, name.encode())


def test_recursive_listing_is_sorted_by_full_path(fs):
    populate(fs, TRICKY)
    listed = fs.list_recursive("")
    assert [e.path for e in listed] == sorted(TRICKY)
    assert all(not e.isdir and e.metadata is None and e.headers == {} for e in listed)
    assert [e.name for e in listed] == [p.rsplit("/", 1)[-1] for p in sorted(TRICKY)]
    assert [e.path for e in fs.list_recursive("a")] == sorted(p for p in TRICKY if p.startswith("a/"))


def test_recursive_listing_pages_with_a_marker(fs):
    populate(fs, TRICKY)
    for limit in (1, 2, 3, 7):
        pages, marker = [], None
        for _ in range(len(TRICKY) + 1):
            page = fs.list_recursive("", marker=marker, limit=limit)
            if not page:
                break
            assert len(page) <= limit
            pages.extend(e.path for e in page)
            marker = page[-1].path
        assert pages == sorted(TRICKY), limit


@pytest.mark.parametrize("seed", range(4))
def test_recursive_and_prefix_listings_match_the_memory_driver(fs, seed):
    """Random trees of tricky names; every marker and prefix, against the reference."""
    rng = random.Random(seed)
    alphabet = ["a", "b", "-", ".", "0", "é", "~", "A"]
    names: set[str] = set()
    while len(names) < 60:
        path = "/".join("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3)))
                        for _ in range(rng.randint(1, 4)))
        segments = path.split("/")
        if any(s in (".", "..") for s in segments):
            continue
        prefixes = {"/".join(segments[:i]) for i in range(1, len(segments))}
        if prefixes & names or any(n.startswith(path + "/") for n in names):
            continue  # an object and a directory never share a name
        names.add(path)
    memory = MemoryDriver.build()
    populate(memory, sorted(names))
    populate(fs, sorted(names))
    directories = sorted({p.rsplit("/", 1)[0] for p in names if "/" in p})
    markers = [None, "", "a", "a/", "a-", "b", "\U0010ffff"] + rng.sample(sorted(names), 10)
    prefixes = [None, "a", "a/", "a/b", "é", "-", "zz"] + [p[: rng.randint(1, len(p))]
                                                           for p in rng.sample(sorted(names), 10)]
    for directory in [""] + rng.sample(directories, min(5, len(directories))):
        for marker in markers:
            for prefix in prefixes:
                for limit in (None, 1, 4):
                    want = memory.list_recursive(directory, marker, limit, prefix)
                    got = fs.list_recursive(directory, marker, limit, prefix)
                    assert [e.path for e in got] == [e.path for e in want], (directory, marker, prefix)
                want = memory.list_objects(directory, marker, None, prefix)
                got = fs.list_objects(directory, marker, None, prefix)
                assert [(e.path, e.isdir) for e in got] == [(e.path, e.isdir) for e in want]


def test_prefix_listings(fs):
    populate(fs, ["p/ab", "p/abc/x", "p/ac", "p/b", "q"])
    assert [e.name for e in fs.list_objects("p", prefix="ab")] == ["ab", "abc"]
    assert [e.isdir for e in fs.list_objects("p", prefix="ab")] == [False, True]
    assert [e.path for e in fs.list_recursive("p", prefix="ab")] == ["p/ab", "p/abc/x"]
    assert [e.path for e in fs.list_recursive("", prefix="p/abc/")] == ["p/abc/x"]
    assert [e.path for e in fs.list_recursive("", prefix="p/a", marker="p/ab")] == ["p/abc/x", "p/ac"]
    assert fs.list_recursive("p", prefix="z") == [] and fs.list_objects("p", prefix="z") == []


def test_recursive_listing_carries_expiry_and_leaves_out_expired_objects(fs):
    now = int(time.time())
    put(fs, "a", expires_at=now + 100)
    put(fs, "b", expires_at=now - 1)
    put(fs, "c")
    assert [(e.path, e.expires_at) for e in fs.list_recursive("")] == [("a", now + 100), ("c", None)]
    assert [e.path for e in fs.list_recursive("", limit=2)] == ["a", "c"]


def test_recursive_listing_skips_what_is_not_served(fs, root, tmp_path):
    populate(fs, ["d/keep", "d/sub/keep"])
    fs.put_object("big", Upload(b"x", meta=ObjectMeta(metadata=big_metadata(), expires_at=10**10)))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (root / "d" / "link").symlink_to(outside / "secret")
    (root / "d" / "dirlink").symlink_to(outside)
    os.mkfifo(root / "d" / "fifo")
    os.link(outside / "secret", root / "d" / "hard")
    (root / "d" / os.fsdecode(b"bad\xff")).write_bytes(b"not UTF-8")
    assert [e.path for e in fs.list_recursive("")] == ["big", "d/keep", "d/sub/keep"]
    assert [e.path for e in fs.list_recursive("", prefix=".blobsvc")] == []
    with pytest.raises(InvalidPath):
        fs.list_recursive("d/dirlink")


def test_recursive_listing_of_a_missing_directory_or_an_object_is_not_found(fs):
    put(fs, "obj")
    for path in ("missing", "obj", "ob"):
        with pytest.raises(NotFound):
            fs.list_recursive(path)


def test_paging_recursively_through_100000_objects_keeps_memory_flat(fs, root):
    """Made directly on disk as plain files (objects without records), in
    100 directories of two levels; each page is 1000 of them."""
    for top in range(10):
        for sub in range(10):
            directory = root / f"t{top}" / f"s{sub}"
            directory.mkdir(parents=True)
            for i in range(1000):
                os.close(os.open(directory / f"{i:04d}", os.O_CREAT | os.O_WRONLY, 0o600))
    expected = (f"t{top}/s{sub}/{i:04d}" for top in range(10) for sub in range(10) for i in range(1000))
    marker, seen, peaks = None, 0, []
    tracemalloc.start()
    try:
        while True:
            tracemalloc.reset_peak()
            page = fs.list_recursive("", marker=marker, limit=1000)
            peaks.append(tracemalloc.get_traced_memory()[1])
            if not page:
                break
            for entry in page:
                assert entry.path == next(expected)
            seen += len(page)
            marker = page[-1].path
            del page
    finally:
        tracemalloc.stop()
    assert seen == 100_000
    assert max(peaks) < 20 * 1024 * 1024, max(peaks)
    assert max(peaks[50:]) <= max(peaks[:5]) * 1.2, (peaks[:5], max(peaks[50:]))


def test_the_walk_descends_along_the_marker_only(fs, root, monkeypatch):
    """A page after a marker never opens the directories wholly before it."""
    for top in range(20):
        for i in range(5):
            put(fs, f"d{top:02d}/{i}")
    opened = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        if isinstance(path, (str, os.PathLike)) and os.path.isdir(path):
            opened.append(os.path.relpath(path, root))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    page = fs.list_recursive("", marker="d17/2", limit=3)
    assert [e.path for e in page] == ["d17/3", "d17/4", "d18/0"]
    assert opened == [".", "d17", "d18"]


def test_walk_names_come_from_scandir_without_a_stat_per_name(tmp_path, monkeypatch):
    from blobsvc.storage.filesystem.dircache import DirectoryNames

    directory = tmp_path / "d"
    directory.mkdir()
    for name in ("a-1", "a.txt", "a0"):
        (directory / name).touch()
    (directory / "a").mkdir()
    calls = []
    for name in ("stat", "lstat"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, _r=real, **k: calls.append(a) or _r(*a, **k))
    assert DirectoryNames().walk_names(str(directory)) == ["a-1", "a.txt", "a/", "a0"]
    assert calls == []


def test_settled_large_directories_are_walked_from_the_cache(tmp_path, monkeypatch):
    from blobsvc.storage.filesystem import dircache

    directory = tmp_path / "d"
    directory.mkdir()
    for i in range(dircache.MIN_ENTRIES):
        (directory / f"{i:05d}").touch()
    (directory / "sub").mkdir()
    then = time.time() - 60
    os.utime(directory, (then, then))
    cache = dircache.DirectoryNames()
    first = cache.walk_names(str(directory))
    monkeypatch.setattr(os, "scandir", lambda *args: pytest.fail("read again"))
    assert cache.walk_names(str(directory)) is first
    assert first[-1] == "sub/"
    monkeypatch.undo()
    (directory / "new").touch()
    assert "new" in cache.walk_names(str(directory))


def test_private_area_is_never_listed(fs, root):
    fs.put_object("x/big", Upload(b"x", meta=ObjectMeta(metadata=big_metadata(),
                                                        expires_at=int(time.time()) + 100)))
    put(fs, ".blobsvcx")
    assert sidecars(root) and index_entries(root)
    assert [e.path for e in fs.list_recursive("")] == [".blobsvcx", "x/big"]
    assert [e.path for e in fs.list_objects("")] == [".blobsvcx", "x"]
    assert stat.S_IMODE(os.stat(root / ".blobsvc" / "meta").st_mode) == 0o700


def _outcome(result) -> object:
    """What a driver call answered, as comparable across drivers (ctime aside)."""
    if isinstance(result, StorageError):
        return type(result).__name__
    if isinstance(result, list):
        return [_outcome(item) for item in result]
    if result is None or isinstance(result, int):
        return result
    return (result.path, result.size, result.etag, result.content_type,
            None if result.metadata is None else dict(result.metadata), dict(result.headers),
            result.expires_at)


def _apply(driver, operation: str, path: str, other: str, meta: ObjectMeta, data: bytes) -> object:
    if operation == "put":
        return driver.put_object(path, Upload(data, meta=meta))
    if operation == "update":
        return driver.update_object(path, meta)
    if operation in ("copy", "copy-meta"):
        return driver.copy_object(path, other, meta=meta if operation == "copy-meta" else None)
    if operation == "move":
        return driver.move_object(path, other)
    if operation == "cat":
        return driver.cat_objects(other, [path], meta=meta)
    if operation == "delete":
        return driver.delete_object(path)
    if operation == "stat":
        return driver.stat_object(path)
    if operation == "list":
        return driver.list_recursive("")
    # How many a pass reaps differs (the memory driver reaps as it goes);
    # what is left must not.
    driver.reap_expired()
    return driver.list_recursive("")


@pytest.mark.parametrize("seed", range(8))
def test_metadata_operations_answer_as_the_memory_driver_does(fs, seed):
    """Random sequences of writes with small and sidecar-sized metadata,
    expired and expiring objects: every answer equals the reference driver's."""
    rng = random.Random(seed)
    now = int(time.time())
    memory = MemoryDriver.build()
    names = ["a", "b", "c/d", "c/e"]

    def random_meta() -> ObjectMeta:
        big = rng.random() < 0.3
        return ObjectMeta(
            content_type=rng.choice([None, "text/plain", "x/" + "y" * rng.choice([5, 3000])]),
            headers=rng.choice([{}, {"Cache-Control": "no-cache"}]),
            metadata={f"k{i}": "v" * (150 if big else 3) for i in range(rng.randint(0, 50 if big else 3))},
            expires_at=rng.choice([None, None, now + 1000, now - 5]))

    for step in range(60):
        operation = rng.choice(["put", "update", "copy", "copy-meta", "move", "cat", "delete",
                                "stat", "list", "reap"])
        path, other, meta = rng.choice(names), rng.choice(names), random_meta()
        data = rng.randbytes(rng.randint(0, 10))
        answers = []
        for driver in (memory, fs):
            try:
                answers.append(_outcome(_apply(driver, operation, path, other, meta, data)))
            except StorageError as exc:
                answers.append(_outcome(exc))
        assert answers[0] == answers[1], (step, operation, path, other, meta)

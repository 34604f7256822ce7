"""What only the filesystem driver can get wrong: the disk, links, crashes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import subprocess
import threading
import tracemalloc

import pytest

from blobsvc.storage.errors import (
    BackendUnavailable,
    InsufficientStorage,
    InvalidPath,
    MissingChunks,
    NotFound,
    StoragePermissionDenied,
    TooLarge,
)
from blobsvc.storage.filesystem import FilesystemDriver, FilesystemSettings, writeback
from blobsvc.storage.settings import build_settings


@pytest.fixture
def root(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def fs(root):
    return FilesystemDriver.build(root=str(root), fsync=True)


def temp_files(root) -> list[str]:
    return os.listdir(root / ".blobsvc" / "tmp")


@pytest.fixture
def tiny_root(tmp_path):
    """A 2 MiB tmpfs, so a real ENOSPC happens (root only)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}); "
                    "the injected-ENOSPC test still covers the code path")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_full_disk_is_insufficient_storage_and_leaves_nothing(tiny_root):
    fs = FilesystemDriver.build(root=str(tiny_root), fsync=True)
    fs.put_object("keep", b"old version")
    with pytest.raises(InsufficientStorage):
        fs.put_object("keep", (b"x" * 65536 for _ in range(64)))  # 4 MiB > 2 MiB
    assert fs.get_object("keep") == b"old version"
    assert temp_files(tiny_root) == []
    fs.put_object("small", b"fits again")  # the space came back
    assert fs.get_object("small") == b"fits again"


def remount(mount_point, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount_point)], check=True,
                   capture_output=True)


def test_read_only_volume_is_backend_unavailable_and_keeps_every_object(tiny_root):
    fs = FilesystemDriver.build(root=str(tiny_root), fsync=True)
    fs.put_object("d/keep", b"old version")
    fs.put_object("chunk", b"chunk")
    fs.close()  # its lock files are open for writing, which a read-only remount refuses
    remount(tiny_root, "ro")
    try:
        for write in (lambda: fs.put_object("d/keep", b"new"), lambda: fs.delete_object("d/keep"),
                      lambda: fs.move_object("d/keep", "moved"),
                      lambda: fs.cat_objects("out", ["chunk"])):
            with pytest.raises(BackendUnavailable, match="read-only"):
                write()
        with pytest.raises(BackendUnavailable, match="read-only"):
            fs.check_ready()
        assert fs.get_object("d/keep") == b"old version"  # reads still work
    finally:
        remount(tiny_root, "rw")
    fs.check_ready()
    assert (fs.get_object("d/keep"), fs.get_object("chunk")) == (b"old version", b"chunk")


def test_full_disk_is_not_ready_until_space_comes_back(tiny_root):
    fs = FilesystemDriver.build(root=str(tiny_root), fsync=False)
    fs.check_ready()
    with open(tiny_root / "filler", "wb") as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()
    with pytest.raises(BackendUnavailable, match="full"):
        fs.check_ready()
    os.unlink(tiny_root / "filler")
    fs.check_ready()
    assert temp_files(tiny_root) == []


def test_injected_enospc_is_insufficient_storage(fs, root, monkeypatch):
    fs.put_object("keep", b"old")
    real_write = os.write

    def full_disk_write(fd, data):
        if len(data) > 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk_write)
    with pytest.raises(InsufficientStorage):
        fs.put_object("keep", b"a much longer new version")
    monkeypatch.undo()
    assert fs.get_object("keep") == b"old"
    assert temp_files(root) == []


def test_symlink_out_of_the_root_is_refused(fs, root, tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"outside")
    (root / "link").symlink_to(secret)
    (root / "dirlink").symlink_to(tmp_path)
    for path in ("link", "dirlink/secret"):
        with pytest.raises(InvalidPath):
            fs.get_object(path)
        with pytest.raises(InvalidPath):
            fs.put_object(path, b"overwrite")
        with pytest.raises(InvalidPath):
            fs.delete_object(path)
    with pytest.raises(InvalidPath):
        fs.list_objects("dirlink")
    assert secret.read_bytes() == b"outside"
    assert [e.name for e in fs.list_objects("")] == []  # links are not listed


def test_abandoned_temp_files_are_removed_at_start(root):
    FilesystemDriver.build(root=str(root))
    tmp = root / ".blobsvc" / "tmp"
    (tmp / "999999999.dead.tmp").write_bytes(b"partial upload of a killed process")
    (tmp / f"{os.getpid()}.mine.tmp").write_bytes(b"left by an earlier run with our pid")
    FilesystemDriver.build(root=str(root))
    assert os.listdir(tmp) == []


def test_etag_and_content_type_survive_a_restart(root):
    from blobsvc.storage import Upload

    FilesystemDriver.build(root=str(root)).put_object("a", Upload([b"abc"], content_type="text/plain"))
    info = FilesystemDriver.build(root=str(root)).stat_object("a")
    assert info.etag == hashlib.md5(b"abc").hexdigest()
    assert info.content_type == "text/plain"


def test_files_placed_by_hand_get_an_etag(fs, root):
    (root / "dir").mkdir()
    (root / "dir" / "manual.bin").write_bytes(b"placed by an operator")
    assert fs.stat_object("dir/manual.bin").etag == hashlib.md5(b"placed by an operator").hexdigest()


def test_private_area_is_not_listed(fs):
    fs.put_object("visible", b"1")
    assert [e.name for e in fs.list_objects("")] == ["visible"]


def test_a_directory_is_not_an_object(fs):
    fs.put_object("d/x", b"1")
    with pytest.raises(NotFound):
        fs.stat_object("d")
    with pytest.raises(NotFound):
        fs.get_object("d")


def test_listing_100000_entries_page_by_page_with_flat_memory(fs, root):
    directory = root / "big"
    directory.mkdir()
    for i in range(100_000):
        (directory / f"{i:06d}").touch()
    marker, seen, peaks = None, 0, []
    tracemalloc.start()
    try:
        while True:
            tracemalloc.reset_peak()
            page = fs.list_objects("big", marker=marker, limit=1000)
            peaks.append(tracemalloc.get_traced_memory()[1])
            if not page:
                break
            assert page[0].name == f"{seen:06d}"
            seen += len(page)
            marker = page[-1].name
    finally:
        tracemalloc.stop()
    assert seen == 100_000
    # Each page costs the directory's names once (a transient ~7 MB here),
    # never what was listed before: the peak does not grow page after page.
    assert max(peaks) < 16 * 1024 * 1024, max(peaks)
    assert max(peaks[50:]) <= max(peaks[:3]) * 1.1, (peaks[:3], max(peaks[50:]))


# -- cat and the size limit --------------------------------------------------------


def test_cat_over_the_limit_never_starts_a_temp_file(fs, monkeypatch):
    """The chunks' sizes decide before a single byte is copied."""
    fs.put_object("c", b"x" * 1000)

    def no_temp_file():
        raise AssertionError("a temp file was started for a cat over the limit")

    monkeypatch.setattr(fs, "_new_temp_file", no_temp_file)
    with pytest.raises(TooLarge):
        fs.cat_objects("out", ["c"] * 500, max_size=1000)


# -- special files, hard links and permissions planted in the root -----------------


def call_with_deadline(function, *args, seconds: float = 5.0):
    """Run ``function(*args)`` in a thread; fail (not hang) if it takes over ``seconds``."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = function(*args)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds}s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def plant_specials(root) -> dict[str, str]:
    """A FIFO and character devices (a zero source and a null sink), as names."""
    root.mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / "fifo")
    planted = {"fifo": "fifo"}
    try:
        os.mknod(root / "zero", 0o600 | stat.S_IFCHR, os.makedev(1, 5))
        os.mknod(root / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        planted.update(zero="zero", null="null")
    except PermissionError:
        pass  # not root: the FIFO still covers the non-regular file case
    return planted


READS = {
    "stat": lambda fs, path: fs.stat_object(path),
    "get": lambda fs, path: fs.get_object(path),
    "open-range": lambda fs, path: fs.open_object(path, 1, 10),
    "size": lambda fs, path: fs.get_object_size(path),
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_special_files_are_not_objects_and_never_block(root, read):
    planted = plant_specials(root)
    fs = FilesystemDriver.build(root=str(root), fsync=False)
    for name in planted:
        with pytest.raises(NotFound):
            call_with_deadline(read, fs, name)
    assert [entry.name for entry in fs.list_objects("")] == []


def test_special_files_cannot_be_chunks_moved_or_deleted(root):
    planted = plant_specials(root)
    fs = FilesystemDriver.build(root=str(root), fsync=False)
    for name in planted:
        with pytest.raises(MissingChunks):
            call_with_deadline(fs.cat_objects, "out", [name])
        with pytest.raises(NotFound):
            call_with_deadline(fs.move_object, name, "moved")
        with pytest.raises(NotFound):
            call_with_deadline(fs.delete_object, name)
        assert os.path.lexists(root / name)


def test_a_null_device_does_not_turn_off_etags(root):
    """Writing an ETag xattr on a device fails with EPERM, which once meant 'no xattrs'."""
    if "null" not in plant_specials(root):
        pytest.skip("mknod needs root")
    fs = FilesystemDriver.build(root=str(root), fsync=False)
    with pytest.raises(NotFound):
        fs.stat_object("null")
    fs.put_object("a", b"abc")
    assert os.getxattr(root / "a", "user.blobsvc.etag") == hashlib.md5(b"abc").hexdigest().encode()


@pytest.fixture
def hard_link(fs, root, tmp_path):
    """A hard link in the root to a file outside it (the store never makes one)."""
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"secret outside the root")
    os.link(outside, root / "hard")
    return outside


def test_hard_links_are_not_served(fs, root, hard_link):
    for read in READS.values():
        with pytest.raises(NotFound):
            read(fs, "hard")
    assert [entry.name for entry in fs.list_objects("")] == []
    with pytest.raises(MissingChunks):
        fs.cat_objects("out", ["hard"])
    with pytest.raises(NotFound):
        fs.move_object("hard", "moved")
    with pytest.raises(NotFound):
        fs.delete_object("hard")
    assert hard_link.read_bytes() == b"secret outside the root"
    assert os.listxattr(hard_link) == [], "an xattr was written through the link"


def test_an_object_with_a_second_link_stops_being_served(fs, root, tmp_path):
    fs.put_object("a", b"abc")
    os.link(root / "a", tmp_path / "second-name")
    with pytest.raises(NotFound):
        fs.get_object("a")


def test_overwriting_a_hard_link_leaves_the_outside_file_alone(fs, root, hard_link):
    fs.put_object("hard", b"new object")
    assert fs.get_object("hard") == b"new object"
    assert hard_link.read_bytes() == b"secret outside the root"


def denied_for(monkeypatch, target) -> None:
    """Make every open/listing of ``target`` fail as a read-protected file does."""
    target = str(target)
    real_open, real_listdir = os.open, os.listdir

    def open_denied(path, *args, **kwargs):
        if os.fspath(path) == target:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    def listdir_denied(path="."):
        if os.fspath(path) == target:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_listdir(path)

    monkeypatch.setattr(os, "open", open_denied)
    monkeypatch.setattr(os, "listdir", listdir_denied)


def test_an_unreadable_object_is_a_typed_error(fs, root, monkeypatch):
    fs.put_object("locked", b"abc")
    denied_for(monkeypatch, root / "locked")
    for read in READS.values():
        with pytest.raises(StoragePermissionDenied) as caught:
            read(fs, "locked")
        assert caught.value.code == "storage_permission_denied"
        assert str(root) not in caught.value.message, "the message shows a disk path"
    with pytest.raises(StoragePermissionDenied):
        fs.cat_objects("out", ["locked"])


def test_an_unreadable_directory_is_a_typed_error(fs, root, monkeypatch):
    fs.put_object("d/x", b"abc")
    denied_for(monkeypatch, root / "d")
    with pytest.raises(StoragePermissionDenied):
        fs.list_objects("d")


def test_a_permission_error_on_write_is_a_typed_error(fs, monkeypatch):
    def rename_denied(src, dst):
        raise PermissionError(errno.EPERM, "Operation not permitted", dst)

    monkeypatch.setattr(os, "rename", rename_denied)
    with pytest.raises(StoragePermissionDenied):
        fs.put_object("a", b"abc")
    monkeypatch.undo()
    assert os.listdir(fs.root) == [".blobsvc"]
    assert os.listdir(os.path.join(fs.root, ".blobsvc", "tmp")) == []


# -- file and directory modes -----------------------------------------------------


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@contextlib.contextmanager
def umask(value: int):
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


def test_objects_and_directories_are_private_by_default(fs, root):
    with umask(0o000):
        fs.put_object("a/b/put", b"1")
        fs.put_object("c1", b"2")
        fs.cat_objects("c/d/cat", ["c1"])
        fs.move_object("a/b/put", "m/n/moved")
    for path in ("c/d/cat", "m/n/moved"):
        assert mode(root / path) == 0o600, path
    for path in ("c", "c/d", "m", "m/n"):
        assert mode(root / path) == 0o700, path
    assert mode(root / ".blobsvc" / "tmp") == 0o700


@pytest.mark.parametrize("mask", [0o000, 0o077])
def test_configured_modes_apply_whatever_the_umask(tmp_path, mask):
    root = tmp_path / "group"
    with umask(mask):
        fs = FilesystemDriver.build(root=str(root), fsync=False, file_mode="0640", dir_mode=0o750)
        fs.put_object("x/y/obj", b"1")
        fs.cat_objects("x/z/cat", ["x/y/obj"])
    assert mode(root / "x/z/cat") == 0o640
    assert mode(root / "x") == mode(root / "x/z") == 0o750


@pytest.mark.parametrize("setting, value", [
    ("file_mode", 0o400),        # the service could not rewrite its own objects
    ("file_mode", 0o666),        # anyone on the machine could change objects
    ("file_mode", 0o4600),       # set-user-ID
    ("file_mode", 640),          # decimal 640 is 0o1200: an octal mode written without its 0
    ("file_mode", "rw-r-----"),
    ("file_mode", "0o1000000"),
    ("file_mode", -1),
    ("file_mode", True),
    ("dir_mode", 0o600),         # the service could not enter its own directories
    ("dir_mode", 0o777),
    ("dir_mode", "755x"),
])
def test_bad_modes_are_refused_at_start(tmp_path, setting, value):
    with pytest.raises(ValueError, match=setting):
        FilesystemDriver.build(root=str(tmp_path / "data"), **{setting: value})
    with pytest.raises(ValueError, match=setting):  # without touching the disk
        build_settings(FilesystemSettings, {"root": str(tmp_path / "data"), setting: value}, "filesystem")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("value, expected", [
    ("0640", 0o640), ("0o640", 0o640), ("640", 0o640), (0o640, 0o640), ("0600", 0o600),
])
def test_modes_are_read_as_octal(tmp_path, value, expected):
    assert FilesystemDriver.build(root=str(tmp_path / "data"), file_mode=value).file_mode == expected


# -- writeback started while an upload arrives (fsync on) ---------------------

def test_writeback_of_a_large_upload_is_started_in_steps_on_this_platform(tmp_path, monkeypatch):
    """With fsync on, the disk starts writing while the body still arrives:
    every byte's writeback is asked for once, in order, in steps."""
    calls = []
    real = writeback._sync_file_range
    assert real is not None, "sync_file_range is missing: uploads would fsync everything at the end"

    def recording(fd, offset, count, flags):
        calls.append((offset, count))
        return real(fd, offset, count, flags)

    monkeypatch.setattr(writeback, "_sync_file_range", recording)
    fs = FilesystemDriver.build(root=str(tmp_path / "root"), fsync=True)
    data = os.urandom(3 * writeback.STEP + 12345)
    fs.put_object("big", [data[i:i + 1_000_003] for i in range(0, len(data), 1_000_003)])
    assert fs.get_object("big") == data
    assert [offset for offset, _ in calls] == [sum(c for _, c in calls[:i]) for i in range(len(calls))]
    assert len(calls) >= 2 and all(count >= writeback.STEP for _, count in calls)
    covered = sum(count for _, count in calls)
    assert len(data) - covered < writeback.STEP  # the rest is the fsync's


def test_no_writeback_is_forced_with_fsync_off(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(writeback, "_sync_file_range", lambda *args: calls.append(args) or 0)
    fs = FilesystemDriver.build(root=str(tmp_path / "root"), fsync=False)
    fs.put_object("big", os.urandom(2 * writeback.STEP + 1))
    assert calls == []

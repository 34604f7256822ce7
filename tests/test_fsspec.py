"""The fsspec filesystem on a live service: every method byte for byte, the
chunked writer, the errors, and the readers it exists for (pandas, pyarrow).

Each test works under a fresh prefix of one shared server (tests/fsspec_live),
removed afterwards. The block size is 1 KiB, so a few KiB exercise chunked
writes and ranged reads.
"""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Iterator

import fsspec
import pytest
from fsspec_live import (
    BLOCK_SIZE,
    LiveService,
    all_paths,
    fresh_prefix,
    fsspec_service,
    remove_prefix,
)
from live_server import python_package

from blobsvc.client import errors
from blobsvc.client.fs import BlobsvcFileSystem
from blobsvc.client.fs_errors import os_error

__all__ = ["fsspec_service"]  # the session's server, used through the fixtures below

DATA = bytes(range(256)) * 20 + b"tail"  # five blocks and a bit


@pytest.fixture
def fs(fsspec_service: LiveService) -> Iterator[BlobsvcFileSystem]:
    filesystem = fsspec_service.filesystem()
    yield filesystem
    filesystem.client.close()


@pytest.fixture
def root(fs: BlobsvcFileSystem) -> Iterator[str]:
    prefix = fresh_prefix()
    yield prefix
    remove_prefix(fs, prefix)


class Calls:
    """Records the calls made to some of a client's methods, then makes them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, client: Any, *names: str) -> None:
        self.made: list[tuple[str, tuple, dict]] = []
        for name in names:
            monkeypatch.setattr(client, name, self._recording(name, getattr(client, name)))

    def _recording(self, name: str, method: Callable) -> Callable:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.made.append((name, args, kwargs))
            return method(*args, **kwargs)
        return record

    def named(self, name: str) -> list[tuple[tuple, dict]]:
        return [(args, kwargs) for called, args, kwargs in self.made if called == name]


# -- registration and options ---------------------------------------------------------


def test_the_entry_point_registers_the_blobsvc_protocol():
    assert fsspec.get_filesystem_class("blobsvc") is BlobsvcFileSystem


def test_fsspec_filesystem_builds_it_from_url_and_token(fsspec_service, root):
    fs = fsspec.filesystem("blobsvc", url=fsspec_service.url,
                           token=fsspec_service.write_token)
    fs.pipe_file(f"{root}/a.txt", b"made by name")
    assert isinstance(fs, BlobsvcFileSystem)
    assert fs.cat_file(f"{root}/a.txt") == b"made by name"


def test_endpoint_url_is_accepted_as_the_url(fsspec_service, root, fs):
    fs.pipe_file(f"{root}/a.txt", b"x")
    other = BlobsvcFileSystem(endpoint_url=fsspec_service.url,
                              token=fsspec_service.read_token, skip_instance_cache=True)
    assert other.cat_file(f"{root}/a.txt") == b"x"


def test_fsspec_open_writes_and_reads_a_blobsvc_url(fsspec_service, root, fs):
    options = {"url": fsspec_service.url, "token": fsspec_service.write_token}
    with fsspec.open(f"blobsvc://{root}/dir/open.bin", "wb", **options) as file:
        file.write(DATA)
    with fsspec.open(f"blobsvc://{root}/dir/open.bin", "rb", **options) as file:
        assert file.read() == DATA
    with fsspec.open(f"blobsvc://{root}/dir/text.txt", "w", encoding="utf-8", **options) as file:
        file.write("héllo\n")
    assert fs.cat_file(f"{root}/dir/text.txt") == "héllo\n".encode()


def test_the_url_and_token_come_from_the_environment(fsspec_service, root, fs, monkeypatch):
    monkeypatch.setenv("BLOBSVC_URL", fsspec_service.url)
    monkeypatch.setenv("BLOBSVC_TOKEN", fsspec_service.write_token)
    from_env = BlobsvcFileSystem(skip_instance_cache=True)
    from_env.pipe_file(f"{root}/env.txt", b"from the environment")
    assert fs.cat_file(f"{root}/env.txt") == b"from the environment"


def test_user_and_password_are_basic_credentials(fsspec_service, root, fs):
    basic = BlobsvcFileSystem(url=fsspec_service.url, user="alice",
                              password=fsspec_service.password, skip_instance_cache=True)
    basic.pipe_file(f"{root}/basic.txt", b"alice was here")
    assert fs.cat_file(f"{root}/basic.txt") == b"alice was here"


def test_no_url_anywhere_is_refused(monkeypatch):
    monkeypatch.delenv("BLOBSVC_URL", raising=False)
    with pytest.raises(ValueError, match="BLOBSVC_URL"):
        BlobsvcFileSystem(skip_instance_cache=True)


def test_the_filesystem_imports_none_of_the_server_libraries():
    """``blobsvc[fsspec]`` promises the client's footprint: urllib3 and fsspec."""
    probe = ("import sys, blobsvc.client.fs; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & "
             "{'cherrypy', 'cheroot', 'yaml', 'prometheus_client'}))")
    answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=60)
    assert answer.stdout.strip() == "[]"


def test_protocol_and_slashes_are_stripped():
    assert BlobsvcFileSystem._strip_protocol("blobsvc://a/b.csv") == "a/b.csv"
    assert BlobsvcFileSystem._strip_protocol("/a/b/") == "a/b"
    assert BlobsvcFileSystem._strip_protocol("blobsvc://") == ""


def test_a_pickled_filesystem_works_where_it_is_unpickled(root, fs):
    fs.pipe_file(f"{root}/p.bin", b"pickled")
    copy = pickle.loads(pickle.dumps(fs))
    assert copy.cat_file(f"{root}/p.bin") == b"pickled"


# -- listing ----------------------------------------------------------------------------


def make_tree(fs: BlobsvcFileSystem, root: str) -> None:
    fs.pipe({f"{root}/top.txt": b"top", f"{root}/d/one.bin": b"1" * 10,
             f"{root}/d/sub/two.bin": b"22", f"{root}/dx.bin": b"x"})


def test_ls_lists_one_level_with_details(root, fs):
    make_tree(fs, root)
    entries = {entry["name"]: entry for entry in fs.ls(root)}
    assert sorted(entries) == [f"{root}/d", f"{root}/dx.bin", f"{root}/top.txt"]
    assert entries[f"{root}/d"] == {"name": f"{root}/d", "size": 0, "type": "directory"}
    top = entries[f"{root}/top.txt"]
    assert (top["type"], top["size"], top["content_type"]) == ("file", 3, "text/plain")
    assert top["etag"] == hashlib.md5(b"top").hexdigest()
    assert fs.ls(f"blobsvc://{root}/d", detail=False) == [f"{root}/d/one.bin", f"{root}/d/sub"]


def test_ls_of_a_file_is_that_file(root, fs):
    make_tree(fs, root)
    [entry] = fs.ls(f"{root}/top.txt")
    assert (entry["name"], entry["size"], entry["type"]) == (f"{root}/top.txt", 3, "file")


def test_ls_and_info_of_nothing_raise_file_not_found(root, fs):
    with pytest.raises(FileNotFoundError):
        fs.ls(f"{root}/missing")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{root}/missing")
    assert not fs.exists(f"{root}/missing")


def test_info_tells_files_from_directories(root, fs):
    make_tree(fs, root)
    assert fs.info(f"{root}/d") == {"name": f"{root}/d", "size": 0, "type": "directory"}
    info = fs.info(f"{root}/d/one.bin")
    assert (info["type"], info["size"], info["expires_at"]) == ("file", 10, None)
    assert fs.isdir(f"{root}/d/sub") and not fs.isfile(f"{root}/d/sub")
    assert fs.isfile(f"{root}/d/sub/two.bin") and not fs.isdir(f"{root}/d/sub/two.bin")
    assert fs.info("")["type"] == "directory"


def test_find_lists_every_file_below_in_one_recursive_listing(root, fs, monkeypatch):
    make_tree(fs, root)
    calls = Calls(monkeypatch, fs.client, "list")
    assert fs.find(root) == [f"{root}/d/one.bin", f"{root}/d/sub/two.bin",
                             f"{root}/dx.bin", f"{root}/top.txt"]
    assert [kwargs.get("recursive") for _, kwargs in calls.named("list")] == [True]


def test_ls_and_find_follow_the_listing_pages(root, fs, monkeypatch):
    make_tree(fs, root)
    fs.pipe({f"{root}/d/p{number}": b"p" for number in range(5)})
    whole_find, whole_ls = fs.find(root), fs.ls(f"{root}/d", detail=False)
    pages = Calls(monkeypatch, fs.client, "list")
    small_pages = fs.client.list
    monkeypatch.setattr(fs.client, "list", lambda *args, **kwargs: small_pages(
        *args, **{**kwargs, "limit": 2}))
    assert fs.find(root) == whole_find and len(whole_find) == 9
    assert fs.ls(f"{root}/d", detail=False) == whole_ls and len(whole_ls) == 7
    assert len(pages.named("list")) == 5 + 4  # 9 files, 7 entries, two a page


def test_find_with_directories_and_details(root, fs):
    make_tree(fs, root)
    found = fs.find(root, withdirs=True, detail=True)
    assert sorted(found) == [root, f"{root}/d", f"{root}/d/one.bin", f"{root}/d/sub",
                             f"{root}/d/sub/two.bin", f"{root}/dx.bin", f"{root}/top.txt"]
    assert found[f"{root}/d/sub"]["type"] == "directory"
    assert found[f"{root}/d/sub/two.bin"]["size"] == 2


def test_find_with_maxdepth_stops_at_that_depth(root, fs):
    make_tree(fs, root)
    assert fs.find(root, maxdepth=1) == [f"{root}/dx.bin", f"{root}/top.txt"]
    assert fs.find(f"{root}/d", maxdepth=1, withdirs=True) == [
        f"{root}/d", f"{root}/d/one.bin", f"{root}/d/sub"]


def test_find_of_a_file_is_the_file_and_of_nothing_is_empty(root, fs):
    make_tree(fs, root)
    assert fs.find(f"{root}/top.txt") == [f"{root}/top.txt"]
    assert fs.find(f"{root}/missing") == []


def test_glob_matches_by_pattern(root, fs):
    make_tree(fs, root)
    assert fs.glob(f"{root}/d*") == [f"{root}/d", f"{root}/dx.bin"]
    assert fs.glob(f"{root}/**/*.bin") == [f"{root}/d/one.bin", f"{root}/d/sub/two.bin",
                                           f"{root}/dx.bin"]


def test_created_and_modified_are_the_commit_time(root, fs):
    before = time.time()
    fs.pipe_file(f"{root}/t.bin", b"t")
    modified = fs.modified(f"{root}/t.bin")
    assert before - 2 <= modified.timestamp() <= time.time() + 2
    assert modified.tzinfo is not None
    assert fs.created(f"{root}/t.bin") == modified


# -- reading ------------------------------------------------------------------------------


RANGES = [(None, None), (0, 1), (0, 10), (10, None), (100, 300), (-5, None), (5, -5),
          (-300, -100), (0, len(DATA)), (len(DATA) - 1, None), (len(DATA), None),
          (len(DATA) + 10, None), (1000, 10 ** 9), (30, 30), (40, 20), (None, 7),
          (None, -1)]


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_cat_file_slices_like_python(root, fs, start, end):
    fs.pipe_file(f"{root}/r.bin", DATA)
    assert fs.cat_file(f"{root}/r.bin", start, end) == DATA[start:end]


@pytest.mark.parametrize(("start", "end"), [(None, None), (0, 10), (5, None), (-3, None)])
def test_cat_file_of_an_empty_object_is_empty(root, fs, start, end):
    fs.pipe_file(f"{root}/empty", b"")
    assert fs.cat_file(f"{root}/empty", start, end) == b""


def test_cat_file_asks_for_a_range_not_the_whole_object(root, fs, monkeypatch):
    fs.pipe_file(f"{root}/r.bin", DATA)
    calls = Calls(monkeypatch, fs.client, "open")
    assert fs.cat_file(f"{root}/r.bin", 1000, 1010) == DATA[1000:1010]
    [(args, _)] = calls.named("open")
    assert args[1:] == (1000, 10)


def test_cat_file_of_nothing_raises_file_not_found(root, fs):
    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{root}/missing")
    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{root}/missing", 5, 5)


def test_an_open_file_reads_by_ranges_of_its_block_size(root, fs, monkeypatch):
    fs.pipe_file(f"{root}/r.bin", DATA)
    calls = Calls(monkeypatch, fs.client, "open")
    with fs.open(f"{root}/r.bin", "rb") as file:
        assert file.size == len(DATA)
        file.seek(3000)
        assert file.read(100) == DATA[3000:3100]
        file.seek(-10, os.SEEK_END)
        assert file.read() == DATA[-10:]
        file.seek(0)
        assert file.read() == DATA
    ranges = [args[1:] for args, _ in calls.named("open")]
    assert ranges[0][0] == 3000 and ranges[0][1] <= BLOCK_SIZE + 100
    assert all(offset >= 0 and length is not None for offset, length in ranges)


def test_an_open_file_reads_lines(root, fs):
    text = b"".join(b"line %d\n" % number for number in range(500))
    fs.pipe_file(f"{root}/lines.txt", text)
    with fs.open(f"{root}/lines.txt", "rb") as file:
        assert list(file) == text.splitlines(keepends=True)


def test_a_file_replaced_while_open_is_not_read_as_a_mix(root, fs):
    fs.pipe_file(f"{root}/r.bin", DATA)
    with fs.open(f"{root}/r.bin", "rb", cache_type="none") as file:
        assert file.read(10) == DATA[:10]
        fs.pipe_file(f"{root}/r.bin", DATA[::-1])
        with pytest.raises(OSError) as raised:
            file.read(10)
    assert raised.value.errno == errno.ESTALE


def test_head_tail_and_read_block(root, fs):
    fs.pipe_file(f"{root}/r.bin", DATA)
    assert fs.head(f"{root}/r.bin", 100) == DATA[:100]
    assert fs.tail(f"{root}/r.bin", 100) == DATA[-100:]
    assert fs.read_block(f"{root}/r.bin", 1000, 50) == DATA[1000:1050]


# -- writing ------------------------------------------------------------------------------


def test_a_small_write_is_one_put(root, fs, monkeypatch):
    calls = Calls(monkeypatch, fs.client, "put", "cat")
    with fs.open(f"{root}/small.bin", "wb") as file:
        file.write(DATA[:BLOCK_SIZE])
    assert [args[0] for args, _ in calls.named("put")] == [f"{root}/small.bin"]
    assert calls.named("cat") == []
    assert fs.cat_file(f"{root}/small.bin") == DATA[:BLOCK_SIZE]
    assert all_paths(fs, root) == [f"{root}/small.bin"]


def test_a_large_write_is_chunks_joined_by_cat_then_gone(root, fs, monkeypatch):
    calls = Calls(monkeypatch, fs.client, "put", "cat")
    target = f"{root}/d/large.bin"
    with fs.open(target, "wb") as file:
        for start in range(0, len(DATA), 700):
            file.write(DATA[start:start + 700])
        chunk = calls.named("put")[0][0][0]
        during = fs.client.stat(chunk)
        assert not fs.exists(target)  # nothing visible before close
        assert fs.find(root, withdirs=True) == []  # the upload is hidden
    [(args, kwargs)] = calls.named("cat")
    chunks = args[1]
    assert args[0] == target and len(chunks) == 6
    assert all(name.startswith(f"{root}/d/.large.bin.upload-") for name in chunks)
    assert [args[0] for args, _ in calls.named("put")] == chunks
    assert during.expires_at is not None
    assert time.time() + 23 * 3600 < during.expires_at <= time.time() + 24 * 3600 + 5
    assert fs.cat_file(target) == DATA
    assert fs.info(target)["expires_at"] is None  # the result does not expire
    assert fs.info(target)["size"] == len(DATA)
    assert all_paths(fs, root) == [target]  # the chunks went with the cat


def test_a_long_name_still_gets_a_valid_upload_directory(root, fs):
    target = f"{root}/{'n' * 250}"
    with fs.open(target, "wb") as file:
        file.write(DATA)
    assert fs.cat_file(target) == DATA
    assert all_paths(fs, root) == [target]


def test_a_token_limited_to_a_prefix_can_write_in_chunks_there(fsspec_service, fs):
    root = f"scoped/{fresh_prefix()}"
    scoped = fsspec_service.filesystem(token=fsspec_service.scoped_token)
    try:
        with scoped.open(f"{root}/large.bin", "wb") as file:
            file.write(DATA)
        assert scoped.cat_file(f"{root}/large.bin") == DATA
        assert all_paths(fs, root) == [f"{root}/large.bin"]
        with pytest.raises(PermissionError):
            scoped.pipe_file("elsewhere.bin", b"refused")
    finally:
        remove_prefix(fs, root)


def test_one_write_larger_than_a_block_is_cut_into_blocks(root, fs, monkeypatch):
    calls = Calls(monkeypatch, fs.client, "put")
    with fs.open(f"{root}/one.bin", "wb") as file:
        file.write(DATA)
    sizes = [len(args[1]) for args, _ in calls.named("put")]
    assert max(sizes) <= BLOCK_SIZE and sum(sizes) == len(DATA)
    assert fs.cat_file(f"{root}/one.bin") == DATA


def test_a_chunk_sent_again_after_a_lost_answer_is_accepted(root, fs):
    chunk = f"{root}/.c.upload-0123456789abcdef/000000"
    fs.upload_chunk(chunk, b"chunk bytes")
    fs.upload_chunk(chunk, b"chunk bytes")  # the retry finds its own first attempt
    with pytest.raises(FileExistsError):
        fs.upload_chunk(chunk, b"other bytes")  # a name some other writer holds
    assert fs.client.get(chunk) == b"chunk bytes"


def test_an_exception_inside_with_leaves_nothing(root, fs):
    with pytest.raises(RuntimeError):
        with fs.open(f"{root}/aborted.bin", "wb") as file:
            file.write(DATA)  # chunks already sent
            raise RuntimeError("the writer failed")
    assert not fs.exists(f"{root}/aborted.bin")
    assert all_paths(fs, root) == []  # the chunks are discarded too


def test_the_chunks_of_a_writer_that_died_expire(fsspec_service, root, fs):
    mortal = fsspec_service.filesystem(upload_expiry=1)
    file = mortal.open(f"{root}/orphan.bin", "wb")
    file.write(DATA)
    file.closed = True  # the process is gone: neither joined nor discarded
    assert len(all_paths(fs, root)) == 5
    deadline = time.monotonic() + 10
    while all_paths(fs, root) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert all_paths(fs, root) == []
    assert not fs.exists(f"{root}/orphan.bin")


def test_an_exception_inside_a_text_with_leaves_nothing(root, fs):
    with pytest.raises(RuntimeError):
        with fs.open(f"{root}/aborted.txt", "w", encoding="utf-8") as file:
            file.write("x" * len(DATA))
            raise RuntimeError("the writer failed")
    assert all_paths(fs, root) == []
    with fs.open(f"{root}/kept.txt", "w", encoding="utf-8", newline="\r\n") as file:
        file.write("é\n" * len(DATA))
    assert fs.cat_file(f"{root}/kept.txt") == "é\r\n".encode() * len(DATA)


def test_an_aborted_overwrite_keeps_the_previous_version(root, fs):
    fs.pipe_file(f"{root}/kept.bin", b"previous")
    with pytest.raises(RuntimeError):
        with fs.open(f"{root}/kept.bin", "wb") as file:
            file.write(DATA)
            raise RuntimeError("the writer failed")
    assert fs.cat_file(f"{root}/kept.bin") == b"previous"
    assert all_paths(fs, root) == [f"{root}/kept.bin"]


def test_an_empty_write_makes_an_empty_object(root, fs):
    fs.touch(f"{root}/empty")
    with fs.open(f"{root}/empty2", "wb"):
        pass
    assert fs.cat_file(f"{root}/empty") == b"" == fs.cat_file(f"{root}/empty2")
    assert fs.info(f"{root}/empty")["size"] == 0


def test_exclusive_open_refuses_an_existing_object(root, fs):
    fs.pipe_file(f"{root}/x.bin", b"first")
    with pytest.raises(FileExistsError):
        fs.open(f"{root}/x.bin", "xb")
    with fs.open(f"{root}/new.bin", "xb") as file:
        file.write(DATA)
    assert fs.cat_file(f"{root}/new.bin") == DATA


def test_exclusive_large_write_loses_to_an_object_made_meanwhile(root, fs):
    with pytest.raises(FileExistsError):
        with fs.open(f"{root}/race.bin", "xb") as file:
            file.write(DATA)
            fs.pipe_file(f"{root}/race.bin", b"the winner")
    assert fs.cat_file(f"{root}/race.bin") == b"the winner"
    assert all_paths(fs, root) == [f"{root}/race.bin"]


def test_pipe_file_create_mode_is_create_only(root, fs):
    fs.pipe_file(f"{root}/c.bin", b"one", mode="create")
    with pytest.raises(FileExistsError):
        fs.pipe_file(f"{root}/c.bin", b"two", mode="create")
    with pytest.raises(FileExistsError):
        fs.pipe_file(f"{root}/c.bin", DATA, mode="create")  # the chunked way
    assert fs.cat_file(f"{root}/c.bin") == b"one"
    assert all_paths(fs, root) == [f"{root}/c.bin"]


def test_pipe_file_larger_than_a_block_goes_in_chunks(root, fs, monkeypatch):
    calls = Calls(monkeypatch, fs.client, "cat")
    fs.pipe_file(f"{root}/p.bin", DATA)
    assert len(calls.named("cat")) == 1
    assert fs.cat_file(f"{root}/p.bin") == DATA


def test_append_joins_the_object_and_the_new_chunks_in_one_cat(root, fs, monkeypatch):
    fs.client.put(f"{root}/log.txt", b"first line\n", content_type="text/x-log")
    etag = fs.ukey(f"{root}/log.txt")
    calls = Calls(monkeypatch, fs.client, "copy", "cat", "put")
    with fs.open(f"{root}/log.txt", "ab") as file:
        file.write(DATA)
    [(args, kwargs)] = calls.named("cat")
    assert args[1][0] == f"{root}/log.txt"  # no copy: the object itself is the first chunk
    assert args[1][1:] == [args[0] for args, _ in calls.named("put")]
    assert kwargs["if_match"] == etag and calls.named("copy") == []
    assert fs.cat_file(f"{root}/log.txt") == b"first line\n" + DATA
    assert fs.info(f"{root}/log.txt")["content_type"] == "text/x-log"
    assert all_paths(fs, root) == [f"{root}/log.txt"]


def test_an_append_to_an_object_replaced_meanwhile_fails_and_leaves_it(root, fs):
    fs.pipe_file(f"{root}/log.txt", b"first line\n")
    with pytest.raises(OSError) as raised:
        with fs.open(f"{root}/log.txt", "ab") as file:
            file.write(DATA)
            fs.pipe_file(f"{root}/log.txt", b"replaced\n")
    assert raised.value.errno == errno.ESTALE
    assert fs.cat_file(f"{root}/log.txt") == b"replaced\n"
    assert all_paths(fs, root) == [f"{root}/log.txt"]


def test_appending_nothing_leaves_the_object_as_it_is(root, fs, monkeypatch):
    fs.pipe_file(f"{root}/log.txt", b"first line\n")
    calls = Calls(monkeypatch, fs.client, "cat", "put")
    with fs.open(f"{root}/log.txt", "ab"):
        pass
    assert calls.made == []
    assert fs.cat_file(f"{root}/log.txt") == b"first line\n"


def test_append_to_a_directory_is_refused(root, fs):
    fs.pipe_file(f"{root}/d/f", b"f")
    with pytest.raises(IsADirectoryError):
        fs.open(f"{root}/d", "ab")


def test_append_adds_to_the_existing_bytes(root, fs):
    fs.pipe_file(f"{root}/log.txt", b"first line\n")
    with fs.open(f"{root}/log.txt", "ab") as file:
        assert file.tell() == len(b"first line\n")
        file.write(DATA)
    with fs.open(f"{root}/new-log.txt", "ab") as file:
        file.write(b"fresh")
    assert fs.cat_file(f"{root}/log.txt") == b"first line\n" + DATA
    assert fs.cat_file(f"{root}/new-log.txt") == b"fresh"
    assert all_paths(fs, root) == [f"{root}/log.txt", f"{root}/new-log.txt"]


def test_a_transaction_commits_on_success_and_discards_on_failure(root, fs):
    with fs.transaction:
        with fs.open(f"{root}/t1.bin", "wb") as file:
            file.write(b"small")
        with fs.open(f"{root}/t2.bin", "wb") as file:
            file.write(DATA)
        assert not fs.exists(f"{root}/t1.bin") and not fs.exists(f"{root}/t2.bin")
    assert fs.cat_file(f"{root}/t1.bin") == b"small"
    assert fs.cat_file(f"{root}/t2.bin") == DATA
    with pytest.raises(RuntimeError):
        with fs.transaction:
            with fs.open(f"{root}/t3.bin", "wb") as file:
                file.write(DATA)
            raise RuntimeError("roll back")
    assert all_paths(fs, root) == [f"{root}/t1.bin", f"{root}/t2.bin"]


def test_get_file_is_one_streamed_get(root, fs, tmp_path, monkeypatch):
    fs.pipe_file(f"{root}/down.bin", DATA)
    calls = Calls(monkeypatch, fs.client, "open")
    fs.get_file(f"{root}/down.bin", str(tmp_path / "sub" / "down.bin"))
    assert [args[1:] for args, _ in calls.named("open")] == [()]
    assert (tmp_path / "sub" / "down.bin").read_bytes() == DATA


def test_get_file_of_nothing_leaves_no_local_file(root, fs, tmp_path):
    with pytest.raises(FileNotFoundError):
        fs.get_file(f"{root}/missing", str(tmp_path / "missing"))
    assert not (tmp_path / "missing").exists()


def test_opening_nothing_for_reading_raises_file_not_found(root, fs):
    with pytest.raises(FileNotFoundError):
        fs.open(f"{root}/missing", "rb")


def test_opening_a_directory_for_reading_is_refused(root, fs):
    fs.pipe_file(f"{root}/d/f", b"f")
    with pytest.raises(IsADirectoryError):
        fs.open(f"{root}/d", "rb")


def test_put_and_get_go_through_local_files(root, fs, tmp_path):
    local = tmp_path / "up.bin"
    local.write_bytes(DATA)
    fs.put(str(local), f"{root}/up.bin")
    fs.get(f"{root}/up.bin", str(tmp_path / "down.bin"))
    assert (tmp_path / "down.bin").read_bytes() == DATA


# -- directories ----------------------------------------------------------------------------


def test_mkdir_and_makedirs_store_nothing(root, fs):
    fs.mkdir(f"{root}/a/b")
    fs.makedirs(f"{root}/c/d")
    fs.makedirs(f"{root}/c/d", exist_ok=True)
    assert all_paths(fs, root) == []
    fs.pipe_file(f"{root}/c/d/f", b"f")
    with pytest.raises(FileExistsError):
        fs.makedirs(f"{root}/c/d")
    fs.makedirs(f"{root}/c/d", exist_ok=True)


def test_rmdir_refuses_a_directory_with_objects(root, fs):
    fs.pipe_file(f"{root}/d/f", b"f")
    with pytest.raises(OSError) as raised:
        fs.rmdir(f"{root}/d")
    assert raised.value.errno == errno.ENOTEMPTY
    fs.rmdir(f"{root}/empty")  # nothing there: nothing to do


# -- removing, moving, copying ----------------------------------------------------------------


def test_rm_removes_one_file_and_not_its_neighbours(root, fs):
    fs.pipe({f"{root}/a": b"a", f"{root}/ab": b"ab", f"{root}/a2/x": b"x"})
    fs.rm(f"{root}/a")
    assert fs.find(root) == [f"{root}/a2/x", f"{root}/ab"]


def test_rm_recursive_removes_a_tree_in_bulk(root, fs, monkeypatch):
    make_tree(fs, root)
    calls = Calls(monkeypatch, fs.client, "delete_many", "delete")
    fs.rm(f"{root}/d", recursive=True)
    assert len(calls.named("delete_many")) == 1 and calls.named("delete") == []
    assert fs.find(root) == [f"{root}/dx.bin", f"{root}/top.txt"]
    assert not fs.exists(f"{root}/d")


def test_rm_recursive_takes_an_object_deleted_after_its_listing_as_deleted(root, fs, monkeypatch):
    # Another client deletes one object between the listing and the delete
    # (or a lagging Swift listing still shows it): the tree goes all the same.
    make_tree(fs, root)
    listed = fs.expand_path(f"{root}/d", recursive=True)
    fs.client.delete(f"{root}/d/one.bin")
    monkeypatch.setattr(fs, "expand_path", lambda *args, **kwargs: listed)
    fs.rm(f"{root}/d", recursive=True)
    monkeypatch.undo()
    assert fs.find(root) == [f"{root}/dx.bin", f"{root}/top.txt"]


def test_rm_of_a_directory_without_recursive_is_refused(root, fs):
    make_tree(fs, root)
    with pytest.raises(IsADirectoryError):
        fs.rm(f"{root}/d")
    assert fs.cat_file(f"{root}/d/one.bin") == b"1" * 10


def test_rm_of_nothing_raises_file_not_found(root, fs):
    with pytest.raises(FileNotFoundError):
        fs.rm(f"{root}/missing")


def test_rm_file_and_a_list_of_paths(root, fs):
    make_tree(fs, root)
    fs.rm_file(f"{root}/top.txt")
    fs.rm([f"{root}/dx.bin", f"{root}/d/one.bin"])
    assert fs.find(root) == [f"{root}/d/sub/two.bin"]
    with pytest.raises(FileNotFoundError):
        fs.rm_file(f"{root}/top.txt")
    with pytest.raises(IsADirectoryError):
        fs.rm_file(f"{root}/d")


def test_mv_is_a_server_side_move(root, fs, monkeypatch):
    fs.pipe_file(f"{root}/src.bin", DATA)
    etag = fs.ukey(f"{root}/src.bin")
    calls = Calls(monkeypatch, fs.client, "move", "copy", "put", "open")
    fs.mv(f"{root}/src.bin", f"{root}/moved/dst.bin")
    assert [args for args, _ in calls.named("move")] == [(f"{root}/src.bin",
                                                          f"{root}/moved/dst.bin")]
    assert calls.named("copy") == calls.named("put") == calls.named("open") == []
    assert fs.cat_file(f"{root}/moved/dst.bin") == DATA
    assert fs.ukey(f"{root}/moved/dst.bin") == etag
    assert all_paths(fs, root) == [f"{root}/moved/dst.bin"]


def test_mv_recursive_moves_a_tree(root, fs, monkeypatch):
    make_tree(fs, root)
    calls = Calls(monkeypatch, fs.client, "copy")
    fs.mv(f"{root}/d", f"{root}/e", recursive=True)
    assert calls.named("copy") == []
    assert fs.find(root) == [f"{root}/dx.bin", f"{root}/e/one.bin", f"{root}/e/sub/two.bin",
                             f"{root}/top.txt"]
    assert fs.cat_file(f"{root}/e/sub/two.bin") == b"22"


def test_mv_into_an_existing_directory_keeps_the_name(root, fs):
    make_tree(fs, root)
    fs.mv(f"{root}/top.txt", f"{root}/d/")
    assert fs.cat_file(f"{root}/d/top.txt") == b"top"
    assert not fs.exists(f"{root}/top.txt")


def test_mv_of_a_glob_moves_every_match(root, fs):
    make_tree(fs, root)
    fs.mv(f"{root}/*.bin", f"{root}/bins/")
    assert fs.find(root) == [f"{root}/bins/dx.bin", f"{root}/d/one.bin",
                             f"{root}/d/sub/two.bin", f"{root}/top.txt"]


def test_mv_of_a_directory_without_recursive_is_refused(root, fs):
    make_tree(fs, root)
    with pytest.raises(IsADirectoryError):
        fs.mv(f"{root}/d", f"{root}/e")
    assert fs.find(f"{root}/d") == [f"{root}/d/one.bin", f"{root}/d/sub/two.bin"]


def test_mv_of_nothing_raises_file_not_found(root, fs):
    with pytest.raises(FileNotFoundError):
        fs.mv(f"{root}/missing", f"{root}/b")


def test_cp_file_is_a_server_side_copy(root, fs, monkeypatch):
    fs.pipe_file(f"{root}/src.bin", DATA)
    calls = Calls(monkeypatch, fs.client, "copy", "put", "open")
    fs.cp_file(f"{root}/src.bin", f"{root}/copy/dst.bin")
    assert [args for args, _ in calls.named("copy")] == [(f"{root}/src.bin",
                                                          f"{root}/copy/dst.bin")]
    assert calls.named("put") == calls.named("open") == []
    assert fs.cat_file(f"{root}/copy/dst.bin") == DATA == fs.cat_file(f"{root}/src.bin")


def test_cp_file_of_nothing_raises_file_not_found(root, fs):
    with pytest.raises(FileNotFoundError):
        fs.cp_file(f"{root}/missing", f"{root}/b")


# -- signing and versions ---------------------------------------------------------------------


def test_a_signed_url_is_fetched_without_credentials(root, fs):
    fs.pipe_file(f"{root}/signed file.bin", DATA)
    url = fs.sign(f"blobsvc://{root}/signed file.bin", expiration=60)
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.read() == DATA
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url.replace("signature=", "signature=0"), timeout=10)
    assert refused.value.code == 403


def test_a_signed_put_url_stores_without_credentials(root, fs):
    url = fs.sign(f"{root}/uploaded.bin", expiration=60, method="PUT")
    request = urllib.request.Request(url, data=DATA, method="PUT")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
    assert fs.cat_file(f"{root}/uploaded.bin") == DATA


def test_signing_without_the_key_is_refused(fsspec_service, root):
    keyless = BlobsvcFileSystem(url=fsspec_service.url, token=fsspec_service.write_token,
                                skip_instance_cache=True)
    with pytest.raises(ValueError, match="signing"):
        keyless.sign(f"{root}/x")


def test_ukey_is_the_etag_and_changes_on_overwrite(root, fs):
    fs.pipe_file(f"{root}/v.bin", b"version one")
    first = fs.ukey(f"{root}/v.bin")
    assert first == fs.info(f"{root}/v.bin")["etag"]
    fs.pipe_file(f"{root}/v.bin", b"version two")
    second = fs.ukey(f"{root}/v.bin")
    assert second != first
    fs.pipe_file(f"{root}/v.bin", b"version two")
    assert fs.ukey(f"{root}/v.bin") == second  # the same bytes, the same ETag


# -- errors -----------------------------------------------------------------------------------


def test_a_read_only_token_cannot_write(fsspec_service, root, fs):
    fs.pipe_file(f"{root}/r.bin", b"readable")
    reader = fsspec_service.filesystem(token=fsspec_service.read_token)
    assert reader.cat_file(f"{root}/r.bin") == b"readable"
    with pytest.raises(PermissionError):
        reader.pipe_file(f"{root}/w.bin", b"refused")
    with pytest.raises(PermissionError):
        reader.rm(f"{root}/r.bin")
    assert all_paths(fs, root) == [f"{root}/r.bin"]


def test_a_wrong_token_is_a_permission_error(fsspec_service, root):
    stranger = fsspec_service.filesystem(token="not-a-token-of-this-service")
    with pytest.raises(PermissionError):
        stranger.ls(root)


def test_an_invalid_path_is_einval(root, fs):
    with pytest.raises(OSError) as raised:
        fs.pipe_file(f"{root}/a\\b", b"x")
    assert raised.value.errno == errno.EINVAL
    assert not isinstance(raised.value, FileNotFoundError)


def test_a_file_where_a_directory_is_is_file_exists(root, fs):
    fs.pipe_file(f"{root}/f", b"a file")
    with pytest.raises(FileExistsError):
        fs.pipe_file(f"{root}/f/below", b"x")


def test_an_unreachable_service_is_a_connection_error():
    dead = BlobsvcFileSystem(url="http://127.0.0.1:9", retries=0, skip_instance_cache=True)
    with pytest.raises(ConnectionError):
        dead.cat_file("x")


@pytest.mark.parametrize(("error", "builtin", "number"), [
    (errors.NotFound("m", 404), FileNotFoundError, errno.ENOENT),
    (errors.PreconditionFailed("m", 412), FileExistsError, errno.EEXIST),
    (errors.Conflict("m", 409), FileExistsError, errno.EEXIST),
    (errors.Unauthorized("m", 401), PermissionError, errno.EACCES),
    (errors.Forbidden("m", 403), PermissionError, errno.EACCES),
    (errors.InvalidPath("m", 400), OSError, errno.EINVAL),
    (errors.TooLarge("m", 413), OSError, errno.EFBIG),
    (errors.InsufficientStorage("m", 507), OSError, errno.ENOSPC),
    (errors.TransportError("m"), ConnectionError, errno.ECONNABORTED),
    (errors.BackendUnavailable("m", 503), ConnectionError, errno.EAGAIN),
    (errors.ServerError("m", 500), OSError, errno.EIO),
    (errors.BadRequest("m", 400), OSError, errno.EIO),
])
def test_service_errors_map_to_builtin_exceptions(error, builtin, number):
    mapped = os_error(error, "a/b")
    assert type(mapped) is builtin
    assert (mapped.errno, mapped.filename) == (number, "a/b")
    assert error.code in mapped.strerror


# -- pandas and pyarrow -----------------------------------------------------------------------


@pytest.fixture
def pd():
    return python_package("pandas")


@pytest.fixture
def pa():
    python_package("pyarrow")
    import pyarrow
    import pyarrow.dataset
    import pyarrow.parquet

    return pyarrow


def frame(pd):
    return pd.DataFrame({"id": list(range(200)), "name": [f"row {n}" for n in range(200)],
                         "value": [n / 8 for n in range(200)]})


def test_pandas_writes_and_reads_csv_by_url(fsspec_service, root, fs, pd):
    options = {"url": fsspec_service.url, "token": fsspec_service.write_token,
               "block_size": BLOCK_SIZE}
    expected = frame(pd)
    expected.to_csv(f"blobsvc://{root}/table.csv", index=False, storage_options=options)
    assert fs.cat_file(f"{root}/table.csv") == expected.to_csv(index=False).encode()
    assert fs.size(f"{root}/table.csv") > BLOCK_SIZE  # written in chunks
    got = pd.read_csv(f"blobsvc://{root}/table.csv", storage_options=options)
    pd.testing.assert_frame_equal(got, expected)


def test_pandas_writes_and_reads_parquet_by_url(fsspec_service, root, fs, pd, pa):
    # endpoint_url, not url: fsspec.core.url_to_fs, which pandas' parquet
    # code calls with the storage options, has a parameter named url.
    options = {"endpoint_url": fsspec_service.url, "token": fsspec_service.write_token}
    expected = frame(pd)
    expected.to_parquet(f"blobsvc://{root}/table.parquet", storage_options=options)
    assert fs.cat_file(f"{root}/table.parquet", 0, 4) == b"PAR1"
    got = pd.read_parquet(f"blobsvc://{root}/table.parquet", storage_options=options)
    pd.testing.assert_frame_equal(got, expected)


def test_a_pyarrow_dataset_reads_a_directory_of_parquet_files(root, fs, pd, pa):
    rows = frame(pd)
    for part in range(3):
        table = pa.Table.from_pandas(rows[rows["id"] % 3 == part], preserve_index=False)
        pa.parquet.write_table(table, f"{root}/dataset/part-{part}.parquet", filesystem=fs)
    fs.pipe_file(f"{root}/dataset/_SUCCESS", b"")  # skipped by pyarrow's default rules
    dataset = pa.dataset.dataset(f"{root}/dataset", filesystem=fs, format="parquet")
    assert sorted(path.rsplit("/", 1)[1] for path in dataset.files) == [
        "part-0.parquet", "part-1.parquet", "part-2.parquet"]
    got = dataset.to_table().to_pandas().sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, rows)
    filtered = dataset.to_table(filter=pa.dataset.field("id") < 5).to_pydict()
    assert sorted(filtered["id"]) == [0, 1, 2, 3, 4]

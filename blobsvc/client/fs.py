"""blobsvc as an fsspec filesystem: ``blobsvc://dir/file.csv`` for pandas,
pyarrow, dask and everything else that opens files through fsspec.

Install with ``pip install 'blobsvc[fsspec]'``; fsspec finds the class by
its entry point, so ``fsspec.filesystem("blobsvc", url=...)`` and
``pandas.read_csv("blobsvc://...", storage_options={"url": ...})`` work
without importing this module. Without ``url`` (or ``endpoint_url``) the
service is ``$BLOBSVC_URL``; without credentials, ``$BLOBSVC_TOKEN`` is the
Bearer token if set.

Everything maps onto one service call where the service has one: ``mv`` is
its server-side move, ``cp_file`` its copy, ``rm`` its bulk delete,
``find`` one recursive listing, reads are ``Range`` requests, and a large
write is a series of chunk PUTs joined by its ``cat`` (see
:mod:`blobsvc.client.fs_file`). Directories are only prefixes, as in S3:
``mkdir`` stores nothing, and a directory exists while something lives
below it.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import mimetypes
import os
import re
from typing import IO, Any, Iterable, Iterator

from fsspec.callbacks import DEFAULT_CALLBACK, Callback
from fsspec.spec import AbstractFileSystem
from fsspec.utils import isfilelike

from blobsvc.client.api import Client
from blobsvc.client.download import Download
from blobsvc.client.errors import (
    BlobsvcError,
    Conflict,
    NotFound,
    PreconditionFailed,
    RangeNotSatisfiable,
)
from blobsvc.client.fs_errors import os_error, translated
from blobsvc.client.fs_file import BlobsvcFile, BlobsvcTextFile
from blobsvc.storage.contract import ObjectInfo

ENV_URL = "BLOBSVC_URL"
ENV_TOKEN = "BLOBSVC_TOKEN"
ENV_SIGNING_KEY = "BLOBSVC_SIGNING_KEY"
#: The bulk delete takes at most this many paths per request.
DELETE_BATCH = 1000
#: A hidden upload's directory: ``.{name}.upload-{hex}`` (see fs_file).
UPLOAD_DIR = re.compile(r"^\..*\.upload-[0-9a-f]{16}$")

Info = dict[str, Any]


class BlobsvcFileSystem(AbstractFileSystem):
    """The objects of one blobsvc as files; paths are object paths.

    ``block_size`` is both the read-ahead of an open file and the size of
    the chunks a large write is sent in; a write no larger than it is one
    PUT. ``upload_expiry`` (seconds) is how long the chunks of an
    unfinished write survive a client that died before joining them.
    Other keywords (``timeout``, ``retries``, ``verify``, ``ca_certs``...)
    go to :class:`~blobsvc.client.Client`.
    """

    protocol = "blobsvc"
    root_marker = ""
    #: Reads ahead and chunks writes by 5 MiB unless ``block_size`` says otherwise.
    blocksize = 5 * 1024 * 1024

    def __init__(self, url: str | None = None, *, endpoint_url: str | None = None,
                 token: str | None = None, user: str | None = None,
                 password: str | None = None, signing_key: str | None = None,
                 block_size: int | None = None, upload_expiry: int = 24 * 3600,
                 **storage_options: Any) -> None:
        cache_options = {name: storage_options.pop(name) for name in
                         ("use_listings_cache", "listings_expiry_time", "max_paths",
                          "skip_instance_cache") if name in storage_options}
        super().__init__(**cache_options)
        url = url or endpoint_url or os.environ.get(ENV_URL)
        if not url:
            raise ValueError(f"blobsvc needs the service's URL: url=... or ${ENV_URL}")
        if token is None and user is None:
            token = os.environ.get(ENV_TOKEN) or None
        if signing_key is None:
            signing_key = os.environ.get(ENV_SIGNING_KEY) or None
        if upload_expiry < 1:
            raise ValueError("upload_expiry must be at least 1 second")
        self.client = Client(url, token=token, user=user, password=password,
                             signing_key=signing_key, **storage_options)
        self.url = self.client.url
        if block_size is not None:
            self.blocksize = block_size
        self.upload_expiry = upload_expiry

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        """``blobsvc://a/b``, ``/a/b`` and ``a/b/`` all name the object path ``a/b``."""
        if isinstance(path, list):
            return [cls._strip_protocol(item) for item in path]
        return str(super()._strip_protocol(path)).lstrip("/")

    @property
    def fsid(self) -> str:
        return f"blobsvc-{self.url}"

    # -- what is there ------------------------------------------------------------

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Info] | list[str]:
        """One level of a directory; a file's own entry if ``path`` is a file."""
        path = self._strip_protocol(path)
        try:
            entries = [_entry(info) for info in self.client.iter_list(path)
                       if not UPLOAD_DIR.match(info.name)]
        except NotFound:
            entries = [self.info(path)]  # FileNotFoundError when it is no file either
        except BlobsvcError as error:
            raise os_error(error, path) from error
        return entries if detail else [entry["name"] for entry in entries]

    def info(self, path: str, **kwargs: Any) -> Info:
        """A file's info from a HEAD; else a directory if something is below it."""
        path = self._strip_protocol(path)
        if not path:
            return _directory("")
        with translated(path):
            try:
                return _entry(self.client.stat(path))
            except NotFound:
                pass
            try:
                self.client.list(path, limit=1)
            except NotFound:
                raise FileNotFoundError(errno.ENOENT, "no such object or directory",
                                        path) from None
        return _directory(path)

    def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False,
             detail: bool = False, **kwargs: Any) -> list[str] | dict[str, Info]:
        """Every file below ``path`` from one recursive listing (paginated);
        directories, when asked for, derived from the files' paths."""
        if maxdepth is not None:  # a depth limit: level by level, as fsspec does
            return super().find(path, maxdepth=maxdepth, withdirs=withdirs,
                                detail=detail, **kwargs)
        path = self._strip_protocol(path)
        found: dict[str, Info] = {}
        with translated(path):
            try:
                for info in self.client.iter_list(path, recursive=True):
                    if not _in_upload(info.path):
                        found[info.path] = _entry(info)
            except NotFound:
                pass
        if withdirs:
            for name in list(found):
                for directory in _parents(name, path):
                    found.setdefault(directory, _directory(directory))
            if found and path:
                found.setdefault(path, _directory(path))
        if not found and path:
            try:
                entry = self.info(path)
            except FileNotFoundError:
                entry = None
            if entry is not None and entry["type"] == "file":
                found[path] = entry
        names = sorted(found)
        return {name: found[name] for name in names} if detail else names

    def ukey(self, path: str) -> str:
        """The ETag: it changes whenever the bytes do, and only then."""
        entry = self.info(path)
        if entry["type"] != "file":
            return str(super().ukey(path))
        return str(entry["etag"])

    def created(self, path: str) -> datetime.datetime:
        """When this version was stored (the service keeps one time per object)."""
        return self.modified(path)

    def modified(self, path: str) -> datetime.datetime:
        entry = self.info(path)
        if entry.get("mtime") is None:
            raise IsADirectoryError(errno.EISDIR, "a directory has no time", path)
        return entry["mtime"]

    # -- directories: prefixes, nothing to store --------------------------------------

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Nothing to do: a directory appears with its first object."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Nothing to store; refused only where a file or a non-empty directory is."""
        if not exist_ok and self.exists(path):
            raise FileExistsError(errno.EEXIST, "exists", self._strip_protocol(path))

    def rmdir(self, path: str) -> None:
        """An empty directory does not exist; a non-empty one is refused."""
        path = self._strip_protocol(path)
        if self.isfile(path):
            raise NotADirectoryError(errno.ENOTDIR, "a file", path)
        if self.isdir(path) and path:
            raise OSError(errno.ENOTEMPTY, "directory not empty", path)

    # -- reading -----------------------------------------------------------------------

    def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                 **kwargs: Any) -> bytes:
        """The bytes ``[start:end]`` (Python slice rules) from one Range request."""
        return self.read_range(self._strip_protocol(path), start, end)

    def read_range(self, path: str, start: int | None, end: int | None,
                   if_match: str | None = None) -> bytes:
        """``[start:end]`` of ``path``; ``if_match``: only from that version."""
        with translated(path):
            if (start or 0) < 0 or (end or 0) < 0:  # counted from the end: needs the size
                size = self.client.stat(path).size or 0
                start, end = _from_start(start, size), _from_start(end, size)
            offset = start or 0
            if end is not None and end <= offset:
                self.client.stat(path)  # nothing to read, but it must exist
                return b""
            try:
                with self.client.open(path, offset, None if end is None else end - offset,
                                      if_match=if_match) as download:
                    return download.read()
            except RangeNotSatisfiable:  # starts at or past the end
                return b""
            except PreconditionFailed as error:  # not the version asked for any more
                raise OSError(errno.ESTALE, "the object changed while open for reading",
                              path) from error

    def get_file(self, rpath: str, lpath: Any = None, callback: Callback = DEFAULT_CALLBACK,
                 outfile: IO[bytes] | None = None, **kwargs: Any) -> None:
        """One streamed GET, not a Range request per block; a local file that
        could not be completed is removed."""
        rpath = self._strip_protocol(rpath)
        if outfile is None and isfilelike(lpath):
            outfile = lpath
        with translated(rpath):
            try:
                download = self.client.open(rpath)
            except NotFound:
                if outfile is None and self.isdir(rpath):
                    os.makedirs(lpath, exist_ok=True)
                    return
                raise
        with download:
            callback.set_size(download.info.size)
            if outfile is not None:
                _copy_out(download, outfile, callback, rpath)
                return
            os.makedirs(os.path.dirname(os.path.abspath(lpath)), exist_ok=True)
            try:
                with open(lpath, "wb") as file:
                    _copy_out(download, file, callback, rpath)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lpath)
                raise

    def open(self, path: str, mode: str = "rb", block_size: int | None = None,
             cache_options: dict[str, Any] | None = None, compression: str | None = None,
             **kwargs: Any) -> Any:
        """fsspec's ``open``; a text file opened for writing also abandons the
        write when an exception leaves its ``with`` (see BlobsvcTextFile)."""
        if "b" in mode or "r" in mode or compression is not None:
            return super().open(path, mode, block_size, cache_options, compression, **kwargs)
        text = {name: kwargs.pop(name) for name in ("encoding", "errors", "newline")
                if name in kwargs}
        binary = super().open(path, mode.replace("t", "") + "b", block_size, cache_options,
                              **kwargs)
        return BlobsvcTextFile(binary, **text)

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None,
              autocommit: bool = True, cache_options: dict[str, Any] | None = None,
              **kwargs: Any) -> BlobsvcFile:
        return BlobsvcFile(self, path, mode, block_size=block_size or self.blocksize,
                           autocommit=autocommit, cache_options=cache_options, **kwargs)

    # -- writing -----------------------------------------------------------------------

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite",
                  **kwargs: Any) -> None:
        """One PUT (create-only for ``mode="create"``); above the block size,
        through the chunked writer so no single request exceeds it."""
        path = self._strip_protocol(path)
        if len(value) > self.blocksize:
            with self.open(path, "xb" if mode == "create" else "wb", **kwargs) as file:
                file.write(value)
            return
        self.put_whole(path, value, create_only=mode == "create")

    def put_whole(self, path: str, data: bytes, create_only: bool = False) -> None:
        """One PUT; ``create_only``: ``If-None-Match: *``."""
        with translated(path):
            self.client.put(path, data, content_type=content_type_of(path),
                            if_none_match="*" if create_only else None)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Server-side copy (a move when ``mv`` asks); directories are implicit,
        so copying one is nothing."""
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        with translated(path1):
            try:
                if kwargs.get("server_move"):
                    self.client.move(path1, path2)
                else:
                    self.client.copy(path1, path2)
            except (NotFound, Conflict):  # the service's answers for a directory
                if not self.isdir(path1):
                    raise

    def mv(self, path1: Any, path2: Any, recursive: bool = False,
           maxdepth: int | None = None, **kwargs: Any) -> None:
        """Server-side moves, file by file, paired the way fsspec's ``copy``
        pairs sources and targets (globs, lists, into existing directories)."""
        if path1 == path2:
            return
        if not recursive and isinstance(path1, str) and not _is_glob(path1) \
                and self.isdir(path1):
            raise IsADirectoryError(errno.EISDIR, "a directory (recursive=True moves it)",
                                    self._strip_protocol(path1))
        self.copy(path1, path2, recursive=recursive, maxdepth=maxdepth, on_error="raise",
                  server_move=True, **kwargs)

    def rm_file(self, path: str) -> None:
        path = self._strip_protocol(path)
        with translated(path):
            try:
                self.client.delete(path)
            except Conflict as error:  # the service's answer for a non-empty directory
                raise IsADirectoryError(errno.EISDIR, "a directory", path) from error

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Bulk deletes of up to 1000 paths a request. Directories vanish with
        their last object; a non-empty one without ``recursive`` is refused.
        A recursive delete takes a name its listing showed but that is gone
        now (an emptied directory, an object deleted meanwhile, an entry a
        lagging Swift listing still shows) as deleted, as ``blobsvc rm -r``
        does."""
        paths = [name for name in self.expand_path(path, recursive=recursive,
                                                   maxdepth=maxdepth) if name]  # "" is the root
        for start in range(0, len(paths), DELETE_BATCH):
            batch = paths[start:start + DELETE_BATCH]
            with translated(batch[0]):
                result = self.client.delete_many(batch)
            for name in result.not_found:
                if not recursive:
                    raise FileNotFoundError(errno.ENOENT, "no such object", name)
            for failure in result.errors:
                name = failure["path"]
                if failure.get("code") == "conflict" and recursive and _has_below(name, paths):
                    continue  # a directory whose objects were in this same request
                if failure.get("code") == "conflict":
                    raise IsADirectoryError(errno.EISDIR, "a directory (recursive=True "
                                            "deletes it)", name)
                raise OSError(errno.EIO, f"{failure.get('code')}: {failure.get('message')}",
                              name)
        self.invalidate_cache()

    def sign(self, path: str, expiration: int = 100, **kwargs: Any) -> str:
        """A URL anyone may GET (``method="PUT"``: PUT) for ``expiration``
        seconds; needs the service's ``signing_key``."""
        return self.client.sign(self._strip_protocol(path), kwargs.get("method", "GET"),
                                expiration)

    def upload_chunk(self, path: str, data: bytes) -> None:
        """A part of a chunked write: expires on its own unless joined in time."""
        with translated(path):
            try:  # create-only: the client may then retry it where the answer was lost
                self.client.put(path, data, delete_after=self.upload_expiry, if_none_match="*")
            except PreconditionFailed:  # a lost answer's attempt stored it, or another did
                if self.client.stat(path).etag != hashlib.md5(data, usedforsecurity=False) \
                        .hexdigest():
                    raise

    def join_chunks(self, path: str, chunks: list[str], create_only: bool,
                    if_match: str | None = None,
                    content_type: str | None = None) -> ObjectInfo:
        """The service's ``cat``: the chunks become ``path`` at once, then
        vanish. ``if_match``: only onto that version of ``path``."""
        with translated(path):
            try:
                return self.client.cat(path, chunks,
                                       content_type=content_type or content_type_of(path),
                                       if_none_match="*" if create_only else None,
                                       if_match=if_match)
            except PreconditionFailed as error:
                if if_match is None:
                    raise  # create-only: FileExistsError
                raise OSError(errno.ESTALE, "the object changed while open for appending",
                              path) from error

    def discard_chunks(self, chunks: Iterable[str]) -> None:
        """Best effort: what is left expires anyway."""
        chunks = list(chunks)
        for start in range(0, len(chunks), DELETE_BATCH):
            try:
                self.client.delete_many(chunks[start:start + DELETE_BATCH])
            except BlobsvcError:
                return


def _copy_out(download: Download, file: IO[bytes], callback: Callback, path: str) -> None:
    with translated(path):
        for chunk in download:
            file.write(chunk)
            callback.relative_update(len(chunk))


def content_type_of(path: str) -> str | None:
    """The type a browser (or a signed URL's user) should see, from the name."""
    return mimetypes.guess_type(path)[0]


def _entry(info: ObjectInfo) -> Info:
    """fsspec's info dict for one listing entry or HEAD answer."""
    if info.isdir:
        return _directory(info.path)
    mtime = (datetime.datetime.fromtimestamp(info.ctime, tz=datetime.timezone.utc)
             if info.ctime is not None else None)
    return {"name": info.path, "size": info.size, "type": "file", "etag": info.etag,
            "mtime": mtime, "content_type": info.content_type,
            "metadata": dict(info.metadata or {}), "expires_at": info.expires_at}


def _directory(path: str) -> Info:
    return {"name": path.rstrip("/"), "size": 0, "type": "directory"}


def _parents(name: str, top: str) -> Iterator[str]:
    """The directories between ``top`` (excluded) and the file ``name``."""
    parts = name.split("/")[:-1]
    depth = len(top.split("/")) if top else 0
    for end in range(depth + 1, len(parts) + 1):
        yield "/".join(parts[:end])


def _from_start(index: int | None, size: int) -> int | None:
    """A slice index counted from the end as one from the start."""
    return index if index is None or index >= 0 else max(0, size + index)


def _is_glob(path: str) -> bool:
    """Whether fsspec would expand ``path`` as a pattern."""
    return any(character in path for character in "*?[")


def _has_below(directory: str, paths: list[str]) -> bool:
    return any(path.startswith(directory + "/") for path in paths)


def _in_upload(path: str) -> bool:
    """Whether ``path`` is a chunk of an unfinished write."""
    return any(UPLOAD_DIR.match(segment) for segment in path.split("/")[:-1])

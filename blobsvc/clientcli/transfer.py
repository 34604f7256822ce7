"""Bytes between local files (or stdin/stdout) and objects, streamed.

Nothing here holds a whole object: downloads are written chunk by chunk,
uploads read the file (or stdin) as urllib3 sends it.

A download to a file appears whole or not at all: it is written under a
temporary name and renamed once its size is the object's. A *resumable*
download (``get -c``) writes ``DEST.part`` and remembers the object's
ETag and size in ``DEST.part.json``; run again, it asks only for the
bytes after what ``DEST.part`` holds, and only of that very version
(``If-Match`` its ETag with the ``Range``). A changed object (another
ETag or size, or a 412 on the ranged GET) restarts the download from
byte 0: bytes of two versions are never joined.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from typing import IO, Any, BinaryIO, Iterator

from blobsvc.client import Client, NotFound, PreconditionFailed, TransportError
from blobsvc.client.api import CHUNK_SIZE
from blobsvc.clientcli.progress import Progress
from blobsvc.storage.contract import ObjectInfo

PART = ".part"
STATE = ".part.json"
#: A resumed download whose object changed during the ranged GET starts
#: over; a source changing that often is refused after this many tries.
RESTARTS = 3


# -- downloads -------------------------------------------------------------------


def head(client: Client, path: str) -> ObjectInfo:
    """The object's info; NotFound says which object, as a HEAD answer has
    no body to say it."""
    try:
        return client.stat(path)
    except NotFound as exc:
        raise NotFound(f"no object at {path}", exc.status, exc.code, exc.request_id) from None


def to_stream(client: Client, path: str, out: BinaryIO, progress: Progress) -> ObjectInfo:
    """Write the object to ``out`` (stdout), flushing as it comes."""
    with client.open(path) as download:
        progress.expect(download.info.size)
        for chunk in download:
            out.write(chunk)
            progress.update(len(chunk))
        out.flush()
        return download.info


def to_file(client: Client, path: str, dest: str, progress: Progress) -> ObjectInfo:
    """Download to ``dest`` atomically: a temporary file renamed when whole."""
    partial = f"{dest}.part-{os.getpid()}"
    try:
        with client.open(path) as download, open(partial, "wb") as file:
            progress.expect(download.info.size)
            for chunk in download:
                file.write(chunk)
                progress.update(len(chunk))
        _check_size(partial, download.info)
        os.replace(partial, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise
    return download.info


def resumable(client: Client, path: str, dest: str, progress: Progress) -> ObjectInfo:
    """Download to ``dest`` through ``DEST.part``, resuming what an earlier
    run left if the object is still the same version (see the module)."""
    part, state_file = dest + PART, dest + STATE
    for _ in range(RESTARTS):
        info = head(client, path)
        progress.expect(info.size)
        offset = _resume_offset(part, state_file, path, info)
        if offset == 0:
            _write_state(state_file, path, info)
            open(part, "wb").close()
        progress.update(offset)
        try:
            if offset < (info.size or 0) or info.size is None:
                _append(client, path, part, offset, info, progress)
        except PreconditionFailed:  # changed since the HEAD: start over
            progress.update(-os.path.getsize(part))
            os.unlink(state_file)
            continue
        if not _size_matches(part, info):  # never rename what is not the object
            received = os.path.getsize(part)
            os.unlink(part)
            os.unlink(state_file)
            raise _short(info, received)
        os.replace(part, dest)
        os.unlink(state_file)
        return info
    raise TransportError(f"{path} kept changing while being downloaded")


def _append(client: Client, path: str, part: str, offset: int, info: ObjectInfo,
            progress: Progress) -> None:
    """Append the object's bytes from ``offset`` to ``part``, of version ``info.etag`` only."""
    with client.open(path, offset, if_match=info.etag) as download, open(part, "r+b") as file:
        file.seek(offset)
        file.truncate()
        for chunk in download:
            file.write(chunk)
            progress.update(len(chunk))


def _resume_offset(part: str, state_file: str, path: str, info: ObjectInfo) -> int:
    """Bytes of ``part`` worth keeping: all of them if they are of this very
    version of this object, else none. The service's URL is not part of the
    check: the ETag names the bytes, wherever (a proxy, a mirror) they come from."""
    try:
        with open(state_file, encoding="utf-8") as file:
            state = json.load(file)
        size = os.path.getsize(part)
    except (OSError, ValueError):
        return 0
    same = (isinstance(state, dict) and info.etag is not None and state.get("path") == path
            and state.get("etag") == info.etag and state.get("size") == info.size)
    if not same or info.size is None or size > info.size:
        return 0
    return size


def _write_state(state_file: str, path: str, info: ObjectInfo) -> None:
    with open(state_file, "w", encoding="utf-8") as file:
        json.dump({"path": path, "etag": info.etag, "size": info.size}, file)
        file.write("\n")


def _size_matches(filename: str, info: ObjectInfo) -> bool:
    return info.size is None or os.path.getsize(filename) == info.size


def _check_size(filename: str, info: ObjectInfo) -> None:
    if not _size_matches(filename, info):
        raise _short(info, os.path.getsize(filename))


def _short(info: ObjectInfo, received: int) -> TransportError:
    return TransportError(f"{info.path}: received {received} bytes of {info.size}; nothing was kept")


# -- uploads ------------------------------------------------------------------------


class CountingReader(io.RawIOBase):
    """A local file as an upload body that moves a bar as urllib3 reads it.

    Seekable, so the client may send it again on a retry (the bar then
    goes back with it)."""

    def __init__(self, file: IO[bytes], progress: Progress) -> None:
        super().__init__()
        self._file = file
        self._progress = progress

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        chunk = self._file.read(-1 if size is None else size)
        self._progress.update(len(chunk))
        return chunk

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def seekable(self) -> bool:
        return self._file.seekable()

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        before = self._file.tell()
        after = self._file.seek(offset, whence)
        self._progress.update(after - before)
        return after


def from_file(client: Client, path: str, filename: str, progress: Progress,
              **options: Any) -> ObjectInfo:
    """Upload a local file, with its length, streamed."""
    with open(filename, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        return client.put(path, CountingReader(file, progress), size=size, **options)


def from_stream(client: Client, path: str, stream: BinaryIO, progress: Progress,
                **options: Any) -> ObjectInfo:
    """Upload a stream of unknown length (stdin) chunked, as it arrives."""
    return client.put(path, _chunks(stream, progress), **options)


def _chunks(stream: BinaryIO, progress: Progress) -> Iterator[bytes]:
    """Whole chunks: a pipe hands over a few KiB at a time, and as many
    tiny HTTP chunks would cost the service a turn each."""
    while True:
        chunk = stream.read(CHUNK_SIZE)
        if not chunk:
            return
        progress.update(len(chunk))
        yield chunk

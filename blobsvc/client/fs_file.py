"""An open blobsvc object for fsspec: reads by ``Range``, writes in chunks.

Reading fetches the blocks fsspec's cache asks for, each one ``Range``
request made with ``If-Match`` on the ETag seen at open (when the open
looked the object up): a file replaced while it is read raises instead of
mixing two versions.

Writing holds about one block in memory (plus what a single ``write``
hands over). A file that closes within its first block is one PUT. A
larger one is sent block by block as chunk objects under a hidden
directory beside the target, ``dir/.{name}.upload-{random}/`` (beside it,
so a grant limited to a prefix covers it; dot-prefixed, and left out of
``ls`` and ``find``), each chunk expiring after ``upload_expiry`` seconds;
on close the service's ``cat`` joins them into the target at once and
deletes them. Until then nothing is visible at the target; an exception
inside ``with fs.open(..., "wb")`` deletes the chunks instead, and the
chunks of a client that dies expire. Mode ``xb`` creates only
(``If-None-Match: *`` on the PUT or the cat); ``ab`` joins the object
itself and the new chunks, if the object is still the version it was at
open (``If-Match``).
"""

from __future__ import annotations

import errno
import io
import secrets
from types import TracebackType
from typing import TYPE_CHECKING, Any

from fsspec.spec import AbstractBufferedFile

if TYPE_CHECKING:
    from blobsvc.client.fs import BlobsvcFileSystem

#: Bytes of the target's name kept in its upload directory's name, so the
#: segment stays within the service's 255 bytes.
_NAME_IN_UPLOAD = 64


class BlobsvcFile(AbstractBufferedFile):
    """A file of :class:`~blobsvc.client.fs.BlobsvcFileSystem`."""

    fs: BlobsvcFileSystem
    buffer: io.BytesIO

    def __init__(self, fs: BlobsvcFileSystem, path: str, mode: str = "rb",
                 block_size: int | str = "default", autocommit: bool = True,
                 cache_type: str = "readahead", cache_options: dict[str, Any] | None = None,
                 size: int | None = None, **kwargs: Any) -> None:
        path = fs._strip_protocol(path)
        existing: dict[str, Any] | None = None
        if mode == "xb" and fs.exists(path):
            raise FileExistsError(errno.EEXIST, "exists", path)
        if mode == "ab":
            try:
                existing = fs.info(path)
            except FileNotFoundError:
                existing = None
            if existing is not None and existing["type"] == "directory":
                raise IsADirectoryError(errno.EISDIR, "a directory", path)
        super().__init__(fs, path, mode, block_size, autocommit, cache_type, cache_options,
                         size, **kwargs)
        if mode == "rb" and (self._details or {}).get("type") == "directory":
            raise IsADirectoryError(errno.EISDIR, "a directory", path)
        self._etag: str | None = (self._details or {}).get("etag")
        self._upload_dir: str | None = None
        self._chunks: list[str] = []
        #: An append's object as it was at open: its bytes come first in the cat.
        self._appended = existing
        if existing is not None:
            self.loc = int(existing["size"])

    # -- reading -----------------------------------------------------------------------

    def _fetch_range(self, start: int, end: int) -> bytes:
        return self.fs.read_range(self.path, start, end, if_match=self._etag)

    # -- writing -----------------------------------------------------------------------

    def _initiate_upload(self) -> None:
        """Nothing yet: a file that ends within one block is a single PUT."""

    def _upload_chunk(self, final: bool = False) -> bool:
        """Send whole blocks as chunks; the last (partial) block waits for
        more data or the close, so a file of one block is still one PUT."""
        data = self.buffer.getvalue()
        if not final:
            kept = (len(data) - 1) // self.blocksize * self.blocksize
            self._send_blocks(data[:kept])
            self.buffer = io.BytesIO()
            self.buffer.write(data[kept:])
            return False  # fsspec keeps our buffer, with the bytes not yet sent
        if self.autocommit and not self._chunks and len(data) <= self.blocksize:
            if self._appended is None:
                self.fs.put_whole(self.path, data, create_only=self.mode == "xb")
                return True
            if not data:
                return True  # nothing appended: the object stays as it is
        self._send_blocks(data)
        if not self._chunks:
            self._send_chunk(b"")  # an empty file still needs one chunk to join
        if self.autocommit:
            self.commit()
        return True

    def _send_blocks(self, data: bytes) -> None:
        for start in range(0, len(data), self.blocksize):
            self._send_chunk(data[start:start + self.blocksize])

    def _send_chunk(self, data: bytes) -> None:
        if self._upload_dir is None:
            self._upload_dir = self._new_upload_dir()
        chunk = f"{self._upload_dir}/{len(self._chunks):06d}"
        self.fs.upload_chunk(chunk, data)
        self._chunks.append(chunk)

    def _new_upload_dir(self) -> str:
        parent, _, name = self.path.rpartition("/")
        short = name.encode()[:_NAME_IN_UPLOAD].decode("utf-8", "ignore")
        hidden = f".{short}.upload-{secrets.token_hex(8)}"
        return f"{parent}/{hidden}" if parent else hidden

    def commit(self) -> None:
        """Join the chunks into the target, atomically (``cat``). An append
        names the target itself first, on condition that it is still the
        version it was at open (the service keeps a target that is a chunk)."""
        if not self._chunks:
            return
        try:
            if self._appended is None:
                self.fs.join_chunks(self.path, self._chunks, create_only=self.mode == "xb")
            else:
                self.fs.join_chunks(self.path, [self.path, *self._chunks], create_only=False,
                                    if_match=self._appended["etag"],
                                    content_type=self._appended.get("content_type"))
        except BaseException:
            self.discard()
            raise
        self._chunks = []

    def discard(self) -> None:
        """Delete the chunks sent so far: the target stays as it was."""
        chunks, self._chunks = self._chunks, []
        self.fs.discard_chunks(chunks)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """An exception inside ``with`` abandons the write: no object appears."""
        if kind is not None and self.mode != "rb" and not getattr(self, "_closed", True):
            self.buffer = io.BytesIO()
            self.discard()
            self.closed = True
            return
        self.close()


class BlobsvcTextFile(io.TextIOWrapper):
    """A text file for writing: an exception leaving its ``with`` abandons
    the write as in binary mode, where a plain TextIOWrapper would close
    (and so commit) the half-written file."""

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None or self.closed:
            self.close()
            return
        binary = self.detach()  # the text buffered so far goes down first
        if isinstance(binary, BlobsvcFile):
            binary.__exit__(kind, error, traceback)
        else:
            binary.close()

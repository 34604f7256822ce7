"""cat inside Swift where it pays: the plan, the pieces of the result, the size budget.

Why it is not a read-and-upload: chunks of 1 MiB or more become segments of
the result without their bytes passing through blobsvc (a large chunk lends
its segments, a plain one is copied by Swift), while runs of smaller ones
are read through blobsvc and joined into one segment, because Swift
throttles reading SLOs made of many segments under 1 MiB (its
``rate_limit_under_size``). A result made only of small chunks (at most
``segment_size`` in all) is a plain object, with a plain MD5 ETag; any
other has the composite ETag S3 gives an object joined from parts (see
:mod:`.objectmeta`), since its bytes are never all read. Sizes are
refused up front from the chunks' HEADs, and every byte is counted again as
the result is built, since a chunk may grow after its HEAD.

The result carries the metadata it is given, none of the chunks'; an
expired chunk is a missing one. Its segments expire with it: written and
copied ones from the start, lent ones by the widen-commit-narrow rule of
:mod:`.expiry`, when the lending chunk's expiry is not the result's.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterator, Union

from blobsvc.storage.contract import (
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectMeta,
    Precondition,
    check_total_size,
    too_large,
)
from blobsvc.storage.errors import MissingChunks, NotFound
from blobsvc.storage.metadata import is_expired
from blobsvc.storage.swift.claims import Claims
from blobsvc.storage.swift.client import ContainerClient
from blobsvc.storage.swift.expiry import Owned, SegmentExpiry
from blobsvc.storage.swift.headers import Headers, content_length, info_from_headers, is_large
from blobsvc.storage.swift.layout import ManifestEntry
from blobsvc.storage.swift.lending import Lending
from blobsvc.storage.swift.objectmeta import carried, composite_etag
from blobsvc.storage.swift.reads import Opened, guarded
from blobsvc.storage.swift.upload import Parts, Uploader

#: cat chunks smaller than this are joined through blobsvc rather than kept
#: as segments of their own (Swift's ``rate_limit_under_size``).
SMALL_CHUNK = 1024 * 1024

#: How cat reads a chunk: a streamed GET (see :class:`.reads.Reader`).
ReadChunk = Callable[[str, dict[str, str]], Union[Opened, None]]
#: How cat reads a large chunk's manifest, to lend its segments.
ReadManifest = Callable[[str, str], list[ManifestEntry]]


@dataclass(frozen=True)
class Chunk:
    """A cat chunk that becomes segments by itself: copied, or lent if ``large``."""

    name: str
    size: int
    large: bool


#: One piece of the result: a run of small chunks joined, or one big chunk.
Piece = Union[list[str], Chunk]


class SizeBudget:
    """The bytes a cat result may still take (None: no limit); TooLarge past them."""

    def __init__(self, max_size: int | None, path: str) -> None:
        self.max_size = max_size
        self.used = 0
        self.path = path

    def take(self, size: int) -> None:
        self.used += size
        if self.max_size is not None and self.used > self.max_size:
            raise too_large(self.max_size, self.path)

    def counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """``chunks`` passed through, each counted; the source is closed on the way out."""
        try:
            for chunk in chunks:
                self.take(len(chunk))
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()


@contextlib.contextmanager
def _vanished_as_missing(chunks: list[str]) -> Iterator[None]:
    """A chunk deleted after its HEAD (a copy or read of it finds nothing)
    is a missing chunk, as one found missing up front: MissingChunks, not
    NotFound, which would name the result as the thing not there."""
    try:
        yield
    except MissingChunks:
        raise
    except NotFound as exc:
        raise MissingChunks(list(dict.fromkeys(chunks))) from exc


def plan_cat(chunks: list[str], found: dict[str, Headers], small: int,
             segment_size: int) -> list[Piece]:
    """The result's pieces in order: runs of small chunks (lists) and big chunks.

    Empty chunks vanish; a run never grows past one segment.
    """
    pieces: list[Piece] = []
    run: list[str] = []
    run_size = 0
    for chunk in chunks:
        size, large = content_length(found[chunk]), is_large(found[chunk])
        if size == 0:
            continue
        if large or size >= small or run_size + size > segment_size:
            if run:
                pieces.append(run)
            run, run_size = [], 0
        if large or size >= small:
            pieces.append(Chunk(chunk, size, large))
        else:
            run.append(chunk)
            run_size += size
    if run:
        pieces.append(run)
    return pieces


class Concatenator:
    """Builds cat results; reads chunks through ``read`` and ``read_manifest``.

    Those are the driver's own reads, so a test can interpose on them.
    """

    def __init__(self, client: ContainerClient, uploads: Uploader, claims: Claims,
                 expiry: SegmentExpiry, read: ReadChunk, read_manifest: ReadManifest) -> None:
        self.client = client
        self.uploads = uploads
        self.claims = claims
        self.expiry = expiry
        self.read = read
        self.read_manifest = read_manifest
        self.small_chunk = SMALL_CHUNK
        #: Where lent segments went (see :mod:`.lending`).
        self.lending: Lending | None = None

    def cat(self, path: str, chunks: list[str], max_size: int | None,
            precondition: Precondition | None, meta: ObjectMeta) -> ObjectInfo:
        meta = dataclasses.replace(meta, content_type=meta.content_type or DEFAULT_CONTENT_TYPE)
        found = self._head_chunks(chunks)
        check_total_size((content_length(found[chunk]) for chunk in chunks), max_size, path)
        # Counted again as the result is built: a chunk may grow after its HEAD.
        budget = SizeBudget(max_size, path)
        with self.claims.claim(path), _vanished_as_missing(chunks):
            pieces = plan_cat(chunks, found, self.small_chunk, self.uploads.segment_size)
            parts = self.uploads.new_parts(path, meta)
            if not pieces or (len(pieces) == 1 and isinstance(pieces[0], list)):
                small = pieces[0] if pieces else []
                assert isinstance(small, list)
                info = self.uploads.put_plain(path, budget.counted(self._read_chunks(small, path)),
                                              meta, precondition)
            else:
                etag = composite_etag([info_from_headers(chunk, found[chunk]).etag or ""
                                       for chunk in chunks])
                info = self._cat_large(path, pieces, parts, meta, found, budget=budget,
                                       precondition=precondition, etag=etag)
        # Lent segments now belong to the result, unless it lost to a newer version.
        lent = [chunk for chunk in found if is_large(found[chunk])] if parts.superseded else []
        self.client.remove_sources(path, [chunk for chunk in found if chunk != path],
                                   with_segments=lent)
        return info

    def _cat_large(self, path: str, pieces: list[Piece], parts: Parts, meta: ObjectMeta,
                   found: dict[str, Headers], budget: SizeBudget,
                   precondition: Precondition | None, etag: str) -> ObjectInfo:
        """The result as an SLO: copied, lent or joined segments, then the
        manifest, carrying the composite ``etag`` of the chunks."""
        try:
            entries: list[ManifestEntry] = []
            copies: dict[str, ManifestEntry] = {}
            for piece in pieces:
                entries.extend(self._piece_entries(path, piece, parts, copies, budget))
            self._record_lending(path, pieces)
            lent = self._lent_expiring_otherwise(path, pieces, found, meta.expires_at)
            info = self.expiry.move(
                lent, meta.expires_at, path,
                lambda: self.uploads.commit_manifest(path, entries, parts, meta, precondition,
                                                     keep_old=path in found, etag=etag))
        except BaseException as exc:
            self.uploads.remove_parts(parts, exc)
            raise
        self.uploads.settle_parts(path, parts)
        return info

    def _piece_entries(self, path: str, piece: Piece, parts: Parts,
                       copies: dict[str, ManifestEntry], budget: SizeBudget) -> list[ManifestEntry]:
        """Manifest entries for one piece: a run of small chunks, or one big chunk.

        Every byte is counted against ``budget``: read-through bytes as they
        pass, lent segments by the sizes their current manifest lists, and
        copies by their HEAD size (the manifest PUT makes Swift check it).
        """
        if isinstance(piece, list):
            chunks = budget.counted(self._read_chunks(piece, path))
            return [self.uploads.write_segment(path, chunks, parts)]
        if piece.large:
            entries = self.read_manifest(piece.name, path)
            budget.take(sum(entry["size_bytes"] for entry in entries))
            return entries
        budget.take(piece.size)
        if piece.name not in copies:  # a repeated chunk is copied once
            name = parts.new_name()
            headers = {"X-Fresh-Metadata": "true", "Content-Type": DEFAULT_CONTENT_TYPE,
                       **parts.headers}
            stored = self.client.copy(piece.name, name, manifest_only=False, path=path,
                                      headers=headers)
            copies[piece.name] = self.client.entry(name, stored.etag, piece.size)
        return [copies[piece.name]]

    def _record_lending(self, path: str, pieces: list[Piece]) -> None:
        """Before the result lists them: the large chunks' segments go to ``path`` too."""
        if self.lending is None:
            return
        for name in dict.fromkeys(p.name for p in pieces if isinstance(p, Chunk) and p.large):
            self.lending.lend_segments_of(name, path)

    def _lent_expiring_otherwise(self, path: str, pieces: list[Piece], found: dict[str, Headers],
                                 expires_at: int | None) -> list[Owned]:
        """The segments large chunks lend to the result whose expiry is not
        the result's, with the expiry of the chunk they belong to now."""
        lent = []
        for name in dict.fromkeys(p.name for p in pieces if isinstance(p, Chunk) and p.large):
            expiry = carried(found[name]).expires_at
            if expiry != expires_at:
                lent.append((self.client.listed_names(name, path), expiry))
        return lent

    def _read_chunks(self, chunks: list[str], path: str) -> Iterator[bytes]:
        """The chunks' bytes one after the other (for the PUT that joins them)."""
        for chunk in chunks:
            opened = self.read(chunk, {})
            if opened is None:
                continue
            _, body, close = opened
            try:
                yield from guarded(body, path)
            finally:
                close()

    def _head_chunks(self, chunks: list[str]) -> dict[str, Headers]:
        """Every chunk's headers, or MissingChunks before anything changed."""
        found = {}
        for chunk in dict.fromkeys(chunks):
            headers = self.client.head(chunk)
            if headers is not None and not is_expired(info_from_headers(chunk, headers)):
                found[chunk] = headers
        missing = [chunk for chunk in chunks if chunk not in found]
        if missing:
            raise MissingChunks(missing)
        return found

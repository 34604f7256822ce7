"""The body of an S3 upload, checked as the request declares as it streams.

A hex ``x-amz-content-sha256`` is checked against the body; a STREAMING-*
body is decoded from aws-chunked framing (:mod:`blobsvc.s3.chunked`), its
chunk and trailer signatures checked (:mod:`blobsvc.s3.sigv4` keeps the
keys); Content-MD5 and ``x-amz-checksum-*`` are checked too. Errors carry
the code and status S3 answers with.

The body is read as the native API reads one: with ``readinto``, into the
upload's own rotating buffers, by one object per request (no stack of
generators, no bytes object per read), so an S3 PUT costs the server no
more per byte than a native one, beyond the digests the client asked for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

from blobsvc.auth import canonical_int
from blobsvc.s3 import checksums, chunked
from blobsvc.s3.sigv4 import (
    EMPTY_SHA256,
    HEX_SHA256,
    STREAMING_PAYLOADS,
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    UNSIGNED_PAYLOAD,
    S3AuthError,
    Signed,
    checked_payload,
    signature_mismatch,
)
from blobsvc.storage.upload import BodySource

#: Bytes read at a time when the body is iterated rather than read into buffers.
ITER_READ = 64 * 1024


class VerifiedBody:
    """The object's bytes, checked as they are read; refusals come as :class:`S3AuthError`.

    Read with :meth:`readinto`, the body goes straight into the caller's
    buffer (an upload's, which a driver writes from): the checks that need
    the whole body run before :meth:`readinto` reports its end, so a caller
    that commits only once it has seen that end never stores a refused body.
    Iterated, the last piece is held back until every check has passed.
    ``checksums`` then maps each ``x-amz-checksum-*`` algorithm the client
    sent (header or trailer) to its verified value.
    """

    def __init__(self, reader: BodySource, check: Callable[[], None], checksums: dict[str, str]) -> None:
        self._reader = reader
        self._check: Callable[[], None] | None = check
        #: Filled in when the body has been read and checked.
        self.checksums = checksums

    def readinto(self, buffer: memoryview, /) -> int:
        """Up to ``len(buffer)`` checked bytes; 0 only once the whole body passed its checks."""
        if self._check is None:
            return 0
        count = self._reader.readinto(buffer)
        if not count:
            self._check()
            self._check = None
        return count

    def __iter__(self) -> Iterator[bytes]:
        buffer = memoryview(bytearray(ITER_READ))
        previous = None
        while count := self.readinto(buffer):
            if previous is not None:
                yield previous
            previous = bytes(buffer[:count])
        if previous is not None:
            yield previous


class _Digests:
    """Every digest a body is checked against, fed once per piece."""

    def __init__(self) -> None:
        self.sha256: Any = None
        self.md5: Any = None
        self.md5_expected = b""
        self.checksums: dict[str, checksums.Checksum] = {}
        self.length = 0
        #: Those set up, once the first piece comes.
        self._active: list[Any] | None = None

    def update(self, piece: memoryview) -> None:
        self.length += len(piece)
        if self._active is None:
            self._active = [digest for digest in (self.sha256, self.md5, *self.checksums.values())
                            if digest is not None]
        for digest in self._active:
            digest.update(piece)


class _Pieces:
    """Pieces of bytes (a body held whole, a test's) read as a :class:`BodySource`."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = iter(pieces)
        self._piece = memoryview(b"")

    def readinto(self, buffer: memoryview, /) -> int:
        while not self._piece:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._piece = memoryview(piece)
        count = min(len(buffer), len(self._piece))
        buffer[:count] = self._piece[:count]
        self._piece = self._piece[count:]
        return count


def verify_payload(signed: Signed | None, body: BodySource | Iterable[bytes],
                   headers: Mapping[str, str], hash_md5: bool = True) -> VerifiedBody:
    """The object's bytes from the raw request body, checked as the request declares.

    A hex x-amz-content-sha256 is checked against the body; a STREAMING-*
    body is decoded from aws-chunked framing, every chunk signature and the
    trailer signature checked, and its length held to
    x-amz-decoded-content-length. Content-MD5 and x-amz-checksum-* (header
    or trailer) are checked too. Memory stays flat: bytes pass through.
    The headers are judged now, before a byte is read.

    Without ``hash_md5`` a Content-MD5 is only judged well-formed here: the
    caller checks it against the MD5 it computes anyway (an upload's, for
    its ETag), so no body is hashed with MD5 twice.
    """
    source = body if isinstance(body, BodySource) else _Pieces(body)
    lowered = {name.lower(): value for name, value in headers.items()}
    mode = signed.payload if signed is not None else checked_payload(
        lowered.get("x-amz-content-sha256", UNSIGNED_PAYLOAD))
    digests = _Digests()
    expected = _declared_checksums(lowered, digests, hash_md5)
    if HEX_SHA256.fullmatch(mode):
        digests.sha256 = hashlib.sha256()
    verified: dict[str, str] = {}
    reader: BodySource
    if mode in STREAMING_PAYLOADS:
        framing = _streaming_framing(signed, mode, lowered, expected, digests)
        reader = _Decoded(signed, framing, source, digests, expected)
    else:
        reader = _Counted(source, digests)

    def check() -> None:
        if digests.sha256 is not None and digests.sha256.hexdigest() != mode:
            raise S3AuthError("XAmzContentSHA256Mismatch", 400,
                              "The provided 'x-amz-content-sha256' header does not match what was computed.")
        _check_digests(digests, expected)
        verified.update(expected)

    return VerifiedBody(reader, check, verified)


class _Counted:
    """A plain body: its bytes counted and hashed as they are read."""

    def __init__(self, source: BodySource, digests: _Digests) -> None:
        self._source = source
        self._digests = digests

    def readinto(self, buffer: memoryview, /) -> int:
        count = self._source.readinto(buffer)
        if count:
            self._digests.update(buffer[:count])
        return count


def _declared_checksums(headers: Mapping[str, str], digests: _Digests,
                        hash_md5: bool = True) -> dict[str, str]:
    """The checksums sent as headers (algorithm -> value); digests set up for
    them and (if ``hash_md5``) Content-MD5, which is refused here when malformed."""
    expected: dict[str, str] = {}
    for name, value in headers.items():
        algorithm = checksums.algorithm_of(name)
        if algorithm is None:
            continue
        if not checksums.is_well_formed(algorithm, value.strip()):
            raise S3AuthError("InvalidRequest", 400, f"Value for {name} header is invalid.")
        expected[algorithm] = value.strip()
    if len(expected) > 1:
        raise S3AuthError("InvalidRequest", 400, "Expecting a single x-amz-checksum- header. "
                                                 "Multiple checksum Types are not allowed.")
    for algorithm in expected:
        digests.checksums[algorithm] = _new_checksum(algorithm)
    md5 = headers.get("content-md5")
    if md5 is not None:
        try:
            digests.md5_expected = base64.b64decode(md5.strip(), validate=True)
        except (binascii.Error, ValueError):
            digests.md5_expected = b""
        if len(digests.md5_expected) != 16:
            raise S3AuthError("InvalidDigest", 400, "The Content-MD5 you specified was not valid.")
        if hash_md5:
            digests.md5 = hashlib.md5(usedforsecurity=False)
    return expected


def _new_checksum(algorithm: str) -> checksums.Checksum:
    try:
        return checksums.new_checksum(algorithm)
    except ValueError:
        raise S3AuthError("InvalidRequest", 400, f"The {algorithm} checksum is not supported by this "
                                                 f"server (supported: {', '.join(checksums.AVAILABLE)}).")


def _check_digests(digests: _Digests, expected: Mapping[str, str]) -> None:
    if digests.md5 is not None and digests.md5.digest() != digests.md5_expected:
        raise S3AuthError("BadDigest", 400, "The Content-MD5 you specified did not match what we received.")
    for algorithm, value in expected.items():
        if digests.checksums[algorithm].b64digest() != value:
            raise S3AuthError("BadDigest", 400,
                              f"The {algorithm} you specified did not match the calculated checksum.")


@dataclass(frozen=True)
class _Framing:
    """What the headers of an aws-chunked upload announce."""

    mode: str
    #: x-amz-decoded-content-length: the object's size.
    length: int
    #: The algorithm of the checksum trailer, if one is announced.
    trailer: str | None

    @property
    def signed_chunks(self) -> bool:
        return self.mode != STREAMING_UNSIGNED_TRAILER


def _streaming_framing(signed: Signed | None, mode: str, headers: Mapping[str, str],
                       expected: dict[str, str], digests: _Digests) -> _Framing:
    declared = canonical_int(headers.get("x-amz-decoded-content-length", ""), max_digits=16)
    if declared is None:
        raise S3AuthError("MissingContentLength", 411,
                          "You must provide the x-amz-decoded-content-length HTTP header.")
    if mode != STREAMING_UNSIGNED_TRAILER and (signed is None or not signed.signing_key):
        raise S3AuthError("AccessDenied", 403, f"{mode} needs a signed request")
    return _Framing(mode, declared, _declared_trailer(headers, mode, expected, digests))


class _Decoded:
    """The object's bytes out of an aws-chunked body, read chunk by chunk into
    the caller's buffer, each chunk's signature checked at its end and the
    trailers at the body's. One object, one call per read: no generator
    stack between the socket and the buffer."""

    def __init__(self, signed: Signed | None, framing: _Framing, source: BodySource,
                 digests: _Digests, expected: dict[str, str]) -> None:
        self._signed = signed
        self._framing = framing
        self._reader = chunked.ChunkedReader(source)
        self._digests = digests
        self._expected = expected
        #: The last signature of the chain: the request's, then each chunk's.
        self._previous = signed.signature if signed is not None else ""
        self._header: chunked.ChunkHeader | None = None
        self._chunk_hash: Any = None
        self._ended = False

    def readinto(self, buffer: memoryview, /) -> int:
        try:
            return self._readinto(buffer)
        except chunked.FramingError as exc:
            if exc.incomplete:
                raise S3AuthError("IncompleteBody", 400, f"The aws-chunked body is incomplete: {exc}")
            raise S3AuthError("InvalidRequest", 400, f"The aws-chunked body is malformed: {exc}")

    def _readinto(self, buffer: memoryview) -> int:
        while not self._ended:
            if self._header is None:
                self._start_chunk()
                continue
            count = self._reader.readinto(buffer)
            if count:
                piece = buffer[:count]
                self._digests.update(piece)
                if self._chunk_hash is not None:
                    self._chunk_hash.update(piece)
                return count
            self._end_chunk(self._header)
        return 0

    def _start_chunk(self) -> None:
        header = self._reader.next_chunk()
        if self._digests.length + header.size > self._framing.length:
            raise S3AuthError("InvalidRequest", 400,
                              "The chunks hold more bytes than x-amz-decoded-content-length says.")
        self._header = header
        self._chunk_hash = hashlib.sha256() if self._framing.signed_chunks else None

    def _end_chunk(self, header: chunked.ChunkHeader) -> None:
        if self._chunk_hash is not None:
            assert self._signed is not None
            self._previous = _check_link(self._signed, "AWS4-HMAC-SHA256-PAYLOAD", self._previous,
                                         header.signature,
                                         f"{EMPTY_SHA256}\n{self._chunk_hash.hexdigest()}")
        self._header = None
        if header.size == 0:
            self._end_body()
            self._ended = True

    def _end_body(self) -> None:
        if self._digests.length != self._framing.length:
            raise S3AuthError("IncompleteBody", 400, "You did not provide the number of bytes specified "
                                                     "by the x-amz-decoded-content-length HTTP header.")
        trailer = self._framing.trailer
        _check_trailers(self._signed, self._framing.mode,
                        self._reader.trailers(expected=trailer is not None), trailer,
                        self._previous, self._expected)
        self._reader.finish()


def _declared_trailer(headers: Mapping[str, str], mode: str, expected: dict[str, str],
                      digests: _Digests) -> str | None:
    """The checksum trailer x-amz-trailer announces (its algorithm), if any."""
    names = [name.strip().lower() for name in headers.get("x-amz-trailer", "").split(",") if name.strip()]
    if not names:
        if mode != STREAMING_SIGNED:
            raise S3AuthError("InvalidRequest", 400, f"{mode} needs an x-amz-trailer header")
        return None
    if mode == STREAMING_SIGNED:
        raise S3AuthError("InvalidRequest", 400,
                          f"{mode} carries no trailers; use {STREAMING_SIGNED_TRAILER}")
    algorithm = checksums.algorithm_of(names[0])
    if len(names) != 1 or algorithm is None:
        raise S3AuthError("InvalidRequest", 400, "x-amz-trailer must name one x-amz-checksum-* header")
    if expected:
        raise S3AuthError("InvalidRequest", 400, "Expecting a single x-amz-checksum- header. "
                                                 "Multiple checksum Types are not allowed.")
    digests.checksums[algorithm] = _new_checksum(algorithm)
    return algorithm


def _check_trailers(signed: Signed | None, mode: str, trailers: list[tuple[str, str]],
                    algorithm: str | None, previous: str, expected: dict[str, str]) -> None:
    """The trailers must be the announced checksum (and, if signed, its signature)."""
    signature = [value for name, value in trailers if name == "x-amz-trailer-signature"]
    values = [(name, value) for name, value in trailers if name != "x-amz-trailer-signature"]
    if algorithm is None:
        if trailers:
            raise S3AuthError("InvalidRequest", 400, "The body has trailers x-amz-trailer did not announce.")
        return
    header = checksums.header_name(algorithm)
    if [name for name, _ in values] != [header]:
        raise S3AuthError("IncompleteBody", 400, f"The body has no {header} trailer.")
    value = values[0][1]
    if not checksums.is_well_formed(algorithm, value):
        raise S3AuthError("InvalidRequest", 400, f"Value for {header} trailing header is invalid.")
    if mode == STREAMING_SIGNED_TRAILER:
        assert signed is not None
        if len(signature) != 1:
            raise S3AuthError("SignatureDoesNotMatch", 403, "The trailer has no x-amz-trailer-signature.")
        canonical = f"{header}:{value}\n".encode()
        _check_link(signed, "AWS4-HMAC-SHA256-TRAILER", previous, signature[0],
                    hashlib.sha256(canonical).hexdigest())
    elif signature:
        raise S3AuthError("InvalidRequest", 400, f"{mode} has no trailer signature.")
    expected[algorithm] = value


def _check_link(signed: Signed, kind: str, previous: str, given: str | None, digest_lines: str) -> str:
    """Check one signature of a streaming body's chain; the next link chains on from it."""
    expected = signed.chain_signature(kind, previous, digest_lines)
    if given is None or not hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape")):
        raise signature_mismatch()
    return expected

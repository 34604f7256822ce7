"""aws-chunked bodies read into the caller's buffers, whatever the reads.

An S3 upload's body is read with ``readinto`` into the upload's own
buffers (as the native API's is), its aws-chunked framing decoded on the
way. The socket gives bytes in pieces of any size, so every piece of the
framing (a chunk header, the CRLF after a chunk's data, a trailer) may be
split between reads, and the caller's buffer may end anywhere in a chunk:
the bytes that come out must be the object's, byte for byte, and every
check must still hold.
"""

from __future__ import annotations

import hashlib
import io
import random

import pytest
from test_s3_sigv4 import (
    AWS_SECRET,
    DOC_CHUNKS,
    boto_wire,
    derived_key,
    doc_stream,
    signed_chunks,
)

from blobsvc.s3 import chunked
from blobsvc.s3.payload import VerifiedBody, verify_payload
from blobsvc.s3.sigv4 import S3AuthError, Signed
from blobsvc.storage.upload import Upload


class Trickle:
    """``data`` given ``steps`` bytes per read in turn (cycling), never more
    than the caller's buffer: a socket that splits the body anywhere."""

    def __init__(self, data: bytes, *steps: int) -> None:
        self.data = memoryview(data)
        self.steps = steps or (len(data) or 1,)
        self.reads = 0

    def readinto(self, buffer: memoryview, /) -> int:
        step = self.steps[self.reads % len(self.steps)]
        self.reads += 1
        count = min(len(buffer), step, len(self.data))
        buffer[:count] = self.data[:count]
        self.data = self.data[count:]
        return count


def read_all(source: VerifiedBody | chunked.ChunkedReader, size: int) -> bytes:
    """Everything ``source`` gives, read into one reused buffer of ``size`` bytes."""
    buffer = memoryview(bytearray(size))
    out = bytearray()
    while count := source.readinto(buffer):
        out += buffer[:count]
    return bytes(out)


def framed(chunks: list[bytes], trailers: list[bytes] | None = None) -> bytes:
    """An aws-chunked body with made-up signatures (the reader does not judge them)."""
    body = b"".join(b"%x;chunk-signature=%064x\r\n%s\r\n" % (len(data), index, data)
                    for index, data in enumerate(chunks))
    last = b"0;chunk-signature=%064x\r\n" % len(chunks)
    return body + last + b"".join(t + b"\r\n" for t in trailers or []) + b"\r\n"


CHUNKS = [random.Random(7).randbytes(size) for size in (1, 2, 255, 256, 257, 4096, 65536, 3)]
TRAILERS = [b"x-amz-checksum-crc32:AAAAAA==", b"x-amz-meta-note: two words "]


@pytest.mark.parametrize("steps", [(1,), (2,), (3,), (86,), (87,), (88,), (255,), (256,), (257,),
                                   (4097,), (1 << 20,), (1, 90, 7, 300, 2)])
@pytest.mark.parametrize("buffer_size", [1, 3, 4096, 1 << 20])
def test_the_reader_gives_every_chunk_byte_for_byte_whatever_the_reads(steps: tuple[int, ...],
                                                                        buffer_size: int) -> None:
    reader = chunked.ChunkedReader(Trickle(framed(CHUNKS, TRAILERS), *steps))
    for index, data in enumerate([*CHUNKS, b""]):
        header = reader.next_chunk()
        assert header.size == len(data) and header.signature == f"{index:064x}"
        assert read_all(reader, buffer_size) == data
    assert reader.trailers(expected=True) == [("x-amz-checksum-crc32", "AAAAAA=="),
                                              ("x-amz-meta-note", "two words")]
    reader.finish()


def test_a_line_is_limited_however_it_trickles_in() -> None:
    body = b"1" * (chunked.MAX_LINE + 10) + b";\r\n"
    reader = chunked.ChunkedReader(Trickle(body, 1))
    with pytest.raises(chunked.FramingError, match="longer than"):
        reader.next_chunk()
    assert len(reader._ahead) <= chunked.MAX_LINE + chunked.LINE_READ  # held, not the body


@pytest.mark.parametrize("tail, refused", [(b"", False), (b"\r\n\r\n", False), (b"\r\nx", True)])
def test_only_line_ends_may_follow_the_body(tail: bytes, refused: bool) -> None:
    reader = chunked.ChunkedReader(Trickle(framed([b"abc"]) + tail, 2))
    reader.next_chunk()
    assert read_all(reader, 2) == b"abc"
    assert reader.next_chunk().size == 0
    assert reader.trailers(expected=False) == []
    if refused:
        with pytest.raises(chunked.FramingError, match="after the end"):
            reader.finish()
    else:
        reader.finish()


def test_a_chunk_longer_than_its_size_is_malformed_before_its_signature_is_judged() -> None:
    reader = chunked.ChunkedReader(Trickle(b"2\r\nabc\r\n0\r\n\r\n", 1))
    reader.next_chunk()
    buffer = memoryview(bytearray(1))
    assert reader.readinto(buffer) == 1 and reader.readinto(buffer) == 1  # its two bytes
    with pytest.raises(chunked.FramingError, match="longer than its size"):
        reader.readinto(memoryview(bytearray(1)))


# --- through verify_payload, into an upload's buffers ------------------------------------------

@pytest.mark.parametrize("trailer", [False, True])
@pytest.mark.parametrize("steps", [(1,), (2,), (89,), (90,), (91,), (1000,), (65536 + 90,), (1 << 20,)])
@pytest.mark.parametrize("buffer_size", [1, 1000, 65536, 1 << 20])
def test_the_documented_signed_uploads_decode_into_buffers(trailer: bool, steps: tuple[int, ...],
                                                           buffer_size: int) -> None:
    signed, headers, body = doc_stream(trailer)
    decoded = verify_payload(signed, Trickle(body, *steps), headers)
    assert read_all(decoded, buffer_size) == b"a" * 66560
    assert decoded.checksums == ({"CRC32C": "sOO8/Q=="} if trailer else {})


def test_a_body_split_in_two_anywhere_decodes_the_same() -> None:
    """Every split point of the framing's first and last bytes, and around
    the first chunk's end: header, data, CRLF, next header."""
    signed, headers, body = doc_stream(trailer=True)
    end_of_first = body.index(b"\r\n400;")
    ends = range(len(body) - 200, len(body))
    for at in [*range(0, 100), *range(end_of_first - 3, end_of_first + 95), *ends]:
        decoded = verify_payload(signed, Trickle(body, at or 1, len(body)), headers)
        assert read_all(decoded, 65536) == b"a" * 66560, at


def random_chunked_upload(chunks: list[bytes]) -> tuple[Signed, dict[str, str]]:
    timestamp = "20260101T000000Z"
    headers = {"x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
               "x-amz-decoded-content-length": str(sum(map(len, chunks)))}
    signed = Signed(access_key="k", payload=headers["x-amz-content-sha256"], region="us-east-1",
                    timestamp=timestamp, scope=f"{timestamp[:8]}/us-east-1/s3/aws4_request",
                    signature="5" * 64, signing_key=derived_key(AWS_SECRET, timestamp[:8]))
    return signed, headers


def test_random_chunks_and_reads_give_the_object_byte_for_byte() -> None:
    rng = random.Random(11)
    for _ in range(40):
        chunks = [rng.randbytes(rng.choice([1, 2, 3, 100, 255, 256, 257, 5000, 70000]))
                  for _ in range(rng.randint(1, 6))]
        signed, headers = random_chunked_upload(chunks)
        body = b"".join(signed_chunks(signed.signing_key, signed.timestamp, signed.signature, chunks))
        steps = [rng.randint(1, 400) for _ in range(5)]
        decoded = verify_payload(signed, Trickle(body, *steps), headers)
        assert read_all(decoded, rng.choice([1, 7, 4096, 1 << 20])) == b"".join(chunks)


@pytest.mark.parametrize("steps", [(1,), (7,), (8192,), (1 << 20,)])
def test_boto3s_unsigned_trailer_upload_decodes_into_buffers(steps: tuple[int, ...]) -> None:
    data = bytes(range(256)) * 5000  # more than one of boto3's 1 MiB chunks
    wire = boto_wire(lambda c: c.put_object(Bucket="b", Key="k", Body=io.BytesIO(data),
                                            ChecksumAlgorithm="CRC32"), https=True)
    signed = wire.verify()
    decoded = verify_payload(signed, Trickle(wire.body, *steps), wire.headers)
    assert read_all(decoded, 1 << 20) == data
    assert list(decoded.checksums) == ["CRC32"]


def test_a_refused_body_never_reports_its_end() -> None:
    """The end of the body (readinto's 0) comes only once every check passed:
    an upload that commits at the end never stores a refused body."""
    signed, headers, body = doc_stream()
    at = body.rindex(b"a")
    decoded = verify_payload(signed, Trickle(body[:at] + b"b" + body[at + 1:], 333), headers)
    buffer = memoryview(bytearray(4096))
    with pytest.raises(S3AuthError) as caught:
        while decoded.readinto(buffer):
            pass
    assert caught.value.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("change", [False, True])
def test_an_upload_reads_a_chunked_body_into_its_buffers(change: bool) -> None:
    data = b"".join(DOC_CHUNKS)
    signed, headers, body = doc_stream(trailer=True)
    if change:
        body = body.replace(b"a" * 10, b"b" * 10, 1)
    upload = Upload(verify_payload(signed, Trickle(body, 500), headers), expected_size=len(data),
                    chunk_size=4096)
    assert isinstance(upload._source, VerifiedBody)  # read with readinto, not as pieces
    received = bytearray()
    if change:
        with pytest.raises(S3AuthError):
            for view in upload.views():
                received += view
        assert not upload.complete
        return
    for view in upload.views():
        received += view
    assert bytes(received) == data and upload.complete
    assert upload.md5_hex == hashlib.md5(data).hexdigest()


def test_a_plain_body_is_checked_before_its_end_is_reported() -> None:
    data = bytes(range(256)) * 100
    headers = {"x-amz-content-sha256": hashlib.sha256(data).hexdigest()}
    assert read_all(verify_payload(None, Trickle(data, 1000), headers), 3000) == data
    with pytest.raises(S3AuthError) as caught:
        read_all(verify_payload(None, Trickle(data[:-1] + b"!", 1000), headers), 3000)
    assert caught.value.code == "XAmzContentSHA256Mismatch"

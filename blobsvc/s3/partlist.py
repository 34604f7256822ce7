"""CompleteMultipartUpload's part list: read, judged against the parts
stored, and the ETag of the result.

The list names parts in ascending order (InvalidPartOrder), each one
stored with the ETag given (InvalidPart); every part but the last holds
at least :data:`MIN_PART_SIZE` bytes (EntityTooSmall). The result's ETag
is S3's: the MD5 of the parts' binary MD5s, then ``-`` and their number.
"""

from __future__ import annotations

import hashlib
import re
from xml.etree.ElementTree import Element

from blobsvc.s3 import xmldoc
from blobsvc.s3.errors import S3Error
from blobsvc.s3.uploads import MAX_PART_NUMBER
from blobsvc.storage import ObjectInfo

#: S3's smallest part, the last excepted.
MIN_PART_SIZE = 5 * 1024 * 1024
#: A Complete body naming 10 000 parts, each with an ETag and a checksum
#: or two, stays well under this.
MAX_COMPLETE_BODY = MAX_PART_NUMBER * 512

_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


def parse_part_list(root: Element) -> list[tuple[int, str]]:
    """``(number, etag)`` of each part the body names, in its order."""
    if xmldoc.local_name(root) != "CompleteMultipartUpload":
        raise S3Error("MalformedXML", "expected <CompleteMultipartUpload>")
    listed = xmldoc.children(root, "Part")
    if not listed or len(listed) > MAX_PART_NUMBER:
        raise S3Error("MalformedXML", f"name 1 to {MAX_PART_NUMBER} parts")
    parts = []
    for part in listed:
        number = (xmldoc.child_text(part, "PartNumber") or "").strip()
        etag = xmldoc.child_text(part, "ETag")
        if not number.isascii() or not number.isdigit() or len(number) > 5 or etag is None:
            raise S3Error("MalformedXML", "every <Part> has a <PartNumber> and an <ETag>")
        parts.append((int(number), bare_etag(etag)))
    return parts


def check_part_list(listed: list[tuple[int, str]], stored: dict[int, ObjectInfo]) -> None:
    """The list against the parts stored: order, ETags, then sizes."""
    numbers = [number for number, _ in listed]
    if any(later <= earlier for earlier, later in zip(numbers, numbers[1:], strict=False)):
        raise S3Error("InvalidPartOrder", "the parts are not listed in ascending order")
    for number, etag in listed:
        info = stored.get(number)
        if info is None or info.etag != etag:
            raise S3Error("InvalidPart", f"part {number} was not uploaded with ETag {etag!r}")
    for number, _ in listed[:-1]:
        size = stored[number].size or 0
        if size < MIN_PART_SIZE:
            raise S3Error("EntityTooSmall", f"part {number} holds {size} bytes; every part "
                                            f"but the last holds at least {MIN_PART_SIZE}")


def multipart_etag(etags: list[str]) -> str:
    """S3's ETag of an object made of parts with ``etags`` (MD5 hex each)."""
    digests = b"".join(bytes.fromhex(etag) if _MD5_HEX.match(etag)
                       else hashlib.md5(etag.encode()).digest() for etag in etags)
    return f"{hashlib.md5(digests).hexdigest()}-{len(etags)}"


def bare_etag(etag: str) -> str:
    """An ETag as a client quotes it (or not), without its quotes."""
    return etag.strip().strip('"').lower()

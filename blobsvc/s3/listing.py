"""One page of a bucket's keys, as the three S3 listings need it.

Without a delimiter a page is the native recursive listing of the bucket:
every key, in S3's order (UTF-8 byte order is code point order), after a
marker key. With delimiter ``/`` it is the native one-level listing of the
"directory" the prefix ends in: objects are keys, directories are common
prefixes, each exactly once over the pages, in S3's order (a common prefix
sorts as its key, ``a-b`` before ``a/``; see :mod:`blobsvc.s3.keyorder`).
After a marker come the keys and common prefixes above it. Other
delimiters are not implemented.

A key no native path can hold cannot exist, so a prefix or marker that
names one only narrows the page down; it is never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blobsvc.s3.errors import S3Error
from blobsvc.s3.keyorder import entries_after, sort_key
from blobsvc.storage import ObjectInfo, StorageDriver, paths
from blobsvc.storage.errors import InvalidPath, NotFound

#: S3's page size limit (and default).
MAX_KEYS = 1000


@dataclass
class Page:
    #: (key, info) of each object, in order.
    contents: list[tuple[str, ObjectInfo]] = field(default_factory=list)
    #: Common prefixes, each ending in the delimiter.
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    #: The key to continue after when truncated.
    last_key: str | None = None


def list_page(driver: StorageDriver, bucket: str, prefix: str, delimiter: str | None,
              after: str | None, max_keys: int) -> Page:
    """Up to ``max_keys`` keys and common prefixes after the key ``after``."""
    if delimiter not in (None, "/"):
        raise S3Error("NotImplemented", "the only delimiter implemented is '/'")
    if max_keys == 0:
        return Page()
    if delimiter is None:
        return _flat(driver, bucket, prefix, after, max_keys)
    return _grouped(driver, bucket, prefix, after, max_keys)


def _flat(driver: StorageDriver, bucket: str, prefix: str, after: str | None,
          max_keys: int) -> Page:
    marker = paths.join(bucket, after) if after else None
    try:
        entries = driver.list_recursive(bucket, marker=marker, limit=max_keys + 1,
                                        prefix=prefix or None)
    except (NotFound, InvalidPath):  # an empty bucket has no directory
        return Page()
    page = Page(truncated=len(entries) > max_keys)
    for entry in entries[:max_keys]:
        page.contents.append((entry.path[len(bucket) + 1:], entry))
    if page.truncated:
        page.last_key = page.contents[-1][0]
    return page


def _grouped(driver: StorageDriver, bucket: str, prefix: str, after: str | None,
             max_keys: int) -> Page:
    directory_key, slash, name_prefix = prefix.rpartition("/")
    if slash and "" in directory_key.split("/"):
        return Page()  # "/x", "a//x": no key has an empty segment
    base = f"{directory_key}/" if directory_key else ""
    marker, past_the_end = _relative_marker(after, base)
    if past_the_end:
        return Page()
    directory = paths.join(bucket, directory_key) if directory_key else bucket
    try:
        entries = entries_after(driver, directory, name_prefix, marker, max_keys + 1)
    except (NotFound, InvalidPath):
        return Page()
    page = Page(truncated=len(entries) > max_keys)
    last = None
    for entry in entries[:max_keys]:
        last = base + sort_key(entry)
        if entry.isdir:
            page.prefixes.append(last)
        else:
            page.contents.append((last, entry))
    if page.truncated:
        page.last_key = last
    return page


def _relative_marker(after: str | None, base: str) -> tuple[str | None, bool]:
    """The key ``after`` relative to the directory ``base``, and whether
    it lies past the whole directory."""
    if not after:
        return None, False
    if not after.startswith(base):
        return None, after > base
    return after[len(base):] or None, False

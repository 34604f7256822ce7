"""One page of a bucket's keys, as the three S3 listings need it.

Without a delimiter a page is the native recursive listing of the bucket:
every key, in S3's order (UTF-8 byte order is code point order), after a
marker key. With delimiter ``/`` it is the native one-level listing of the
"directory" the prefix ends in: objects are keys, directories are common
prefixes, each exactly once over the pages. Such a page follows the native
listing's order, in which a directory sorts by its name (S3 sorts it by
name and ``/``): ``a`` before ``a-b``, where S3 has ``a-b`` before ``a/``.
Other delimiters are not implemented.

A key no native path can hold cannot exist, so a prefix or marker that
names one only narrows the page down; it is never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blobsvc.s3.errors import S3Error
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
    directory_key, _, name_prefix = prefix.rpartition("/")
    base = f"{directory_key}/" if directory_key else ""
    marker, past_the_end = _name_marker(after, base)
    if past_the_end:
        return Page()
    directory = paths.join(bucket, directory_key) if directory_key else bucket
    try:
        entries = driver.list_objects(directory, marker=marker, limit=max_keys + 1,
                                      prefix=name_prefix or None)
    except (NotFound, InvalidPath):
        return Page()
    page = Page(truncated=len(entries) > max_keys)
    last = None
    for entry in entries[:max_keys]:
        if entry.isdir:
            last = f"{base}{entry.name}/"
            page.prefixes.append(last)
        else:
            last = base + entry.name
            page.contents.append((last, entry))
    if page.truncated:
        page.last_key = last
    return page


def _name_marker(after: str | None, base: str) -> tuple[str | None, bool]:
    """The one-level marker (a name) for the key ``after``, and whether
    ``after`` lies past the whole directory."""
    if not after:
        return None, False
    if not after.startswith(base):
        return None, after > base
    return after[len(base):].split("/", 1)[0] or None, False

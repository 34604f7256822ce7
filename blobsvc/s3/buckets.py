"""Buckets: which exist, and creating and removing them.

A bucket exists when it was created (a record the driver keeps under its
reserved prefix, out of the native API's sight, so an empty bucket is
kept on every driver alike) or when objects live below its name (a
top-level directory written through the native API is a bucket too, so
the same objects show through both APIs). It is deleted only when empty:
its record goes, and it no longer exists once no object is left below it.

A bucket deleted while a write into it is under way can come back as a
directory holding that object: buckets are not locked against writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from blobsvc.s3.errors import S3Error
from blobsvc.s3.names import bucket_name_problem
from blobsvc.storage import ObjectInfo, StorageDriver
from blobsvc.storage.errors import NotFound, PreconditionFailed

#: The kind of record a bucket is (see StorageDriver.put_record).
RECORD_KIND = "s3-buckets"


@dataclass(frozen=True)
class Bucket:
    name: str
    #: When it was created (or, for a bucket made of objects, its
    #: directory's time where the driver knows one).
    created: float | None


class Buckets:
    """The buckets of one store."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    def exists(self, name: str) -> bool:
        """The record first: one stat, where a listing costs more on Swift."""
        return self.driver.record_info(RECORD_KIND, name) is not None or self.has_objects(name)

    def require(self, name: str) -> None:
        """NoSuchBucket unless ``name`` exists."""
        if not self.exists(name):
            raise S3Error("NoSuchBucket", f"no bucket named {name}")

    def has_objects(self, name: str) -> bool:
        try:
            return bool(self.driver.list_objects(name, limit=1))
        except NotFound:  # no directory of that name (or an object)
            return False

    def all(self) -> list[Bucket]:
        """Every bucket, sorted by name: those created, and the top-level
        directories whose names are bucket names."""
        found = {info.name: Bucket(info.name, info.ctime)
                 for info in self.driver.list_records(RECORD_KIND)}
        for info in self.driver.list_objects(""):
            if info.isdir and info.name not in found and bucket_name_problem(info.name) is None:
                found[info.name] = Bucket(info.name, info.ctime)
        return [found[name] for name in sorted(found)]

    def create(self, name: str) -> None:
        """BucketAlreadyOwnedByYou when it exists (every client is the one
        owner here); ObjectPrefixConflict when an object has its name."""
        if self.exists(name):
            raise _already(name)
        try:
            self.driver.stat_object(name)
        except NotFound:
            pass
        else:
            raise S3Error("ObjectPrefixConflict", f"an object named {name} is at the top level")

        def create_only(current: ObjectInfo | None) -> None:
            if current is not None:
                raise PreconditionFailed("the bucket exists")

        try:
            self.driver.put_record(RECORD_KIND, name, precondition=create_only)
        except PreconditionFailed:
            raise _already(name) from None

    def delete(self, name: str) -> None:
        if self.has_objects(name):
            raise S3Error("BucketNotEmpty", f"bucket {name} holds objects")
        try:
            self.driver.delete_record(RECORD_KIND, name)
        except NotFound:
            raise S3Error("NoSuchBucket", f"no bucket named {name}") from None


def _already(name: str) -> S3Error:
    return S3Error("BucketAlreadyOwnedByYou", f"bucket {name} exists already")

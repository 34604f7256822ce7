"""DeleteObjects: many keys of one bucket in one request.

The body names the keys (at most 1000); it is read only once the client
may write somewhere (see :mod:`blobsvc.s3.routes`), and each key is then
judged alone, its access included, as the native bulk delete judges its
paths. As S3 answers: a key that was not there, or that no native path
can hold, is reported deleted; ``Quiet`` reports the errors only.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from blobsvc.auth import AuthDenied
from blobsvc.http import context
from blobsvc.s3 import xmldoc
from blobsvc.s3.access import S3Access
from blobsvc.s3.buckets import Buckets
from blobsvc.s3.errors import S3Error, s3_code_of
from blobsvc.s3.names import can_be_stored, object_path
from blobsvc.s3.xmldoc import MAX_XML_BODY, parse_xml
from blobsvc.storage import StorageDriver
from blobsvc.storage.errors import Conflict

#: Keys one request may name, as S3 has it.
MAX_KEYS = 1000


class DeleteObjects:
    def __init__(self, driver: StorageDriver, buckets: Buckets, access: S3Access) -> None:
        self.driver = driver
        self.buckets = buckets
        self.access = access

    def delete_objects(self, bucket: str, key: str) -> bytes:
        root = parse_xml(self.access.read_document(MAX_XML_BODY))
        quiet, keys = _parse(root)
        self.buckets.require(bucket)
        errors: list[tuple[str, str, str]] = []
        deleted: list[str] = []
        paths: dict[str, str] = {}
        for name in keys:
            try:
                self.access.require("write", f"{bucket}/{name}")
            except AuthDenied as exc:
                errors.append((name, "AccessDenied", exc.message))
                continue
            if can_be_stored(bucket, name):
                paths[object_path(bucket, name)] = name
            else:
                deleted.append(name)  # it cannot exist
        outcome = self.driver.delete_objects(list(paths))
        deleted += [paths[path] for path in outcome.deleted + outcome.not_found]
        for path, failure in outcome.errors:
            if isinstance(failure, Conflict):  # a "directory": no key of that name
                deleted.append(paths[path])
            else:
                errors.append((paths[path], s3_code_of(failure.code), failure.message))
        context.current().deleted_objects += len(outcome.deleted)
        result = xmldoc.document("DeleteResult")
        if not quiet:
            for name in deleted:
                xmldoc.add(xmldoc.add(result, "Deleted"), "Key", name)
        for name, code, message in errors:
            xmldoc.add_all(xmldoc.add(result, "Error"),
                           [("Key", name), ("Code", code), ("Message", message)])
        return xmldoc.send_xml(result)


def _parse(root: Element) -> tuple[bool, list[str]]:
    if xmldoc.local_name(root) != "Delete":
        raise S3Error("MalformedXML", "expected <Delete>")
    quiet = (xmldoc.child_text(root, "Quiet") or "false").strip().lower()
    if quiet not in ("true", "false"):
        raise S3Error("MalformedXML", "<Quiet> is true or false")
    objects = xmldoc.children(root, "Object")
    if not objects or len(objects) > MAX_KEYS:
        raise S3Error("MalformedXML", f"name 1 to {MAX_KEYS} objects")
    keys = []
    for entry in objects:
        name = xmldoc.child_text(entry, "Key")
        if not name:
            raise S3Error("MalformedXML", "every <Object> has a <Key>")
        version = xmldoc.child_text(entry, "VersionId")
        if version not in (None, "null"):
            raise S3Error("InvalidArgument", "an object's only version is null")
        keys.append(name)
    return quiet == "true", keys

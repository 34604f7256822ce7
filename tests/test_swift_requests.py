"""How many Swift requests each driver operation makes: the cost of a call, pinned.

Every HTTP request swiftclient sends is recorded (so retries, reads on
connections of their own and the side connection count too) and named in
a short form: ``HEAD a/b``, ``LIST a/b/`` (a listing of a prefix, ``after``
and ``before`` its markers; ``LEVEL`` when it is one level, with a
delimiter), ``PUT``, ``COPY dst<-src`` (a PUT with
``X-Copy-From``), ``GET``, ``DELETE``, ``POST``; a query string is kept
(``?multipart-manifest=put``), an upload id shows as ``*``. A PUT is
named when it starts: what is sent while its body streams (the
precondition's HEAD, right before the last chunk) comes after it. Each test
asserts the exact requests of one operation against the real Swift
(``swift_stack``), so a cost that grows fails here first.

The driver keeps the default grace period of 60 s: tombstones and watched
uploads are not due while a test runs, so the sweeper sends nothing.
"""

from __future__ import annotations

import random
import re
import threading
from typing import Any, Iterator
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from swiftclient.client import HTTPConnection

from blobsvc.storage.contract import ObjectMeta
from blobsvc.storage.swift import SwiftDriver

MIB = 1024 * 1024
LARGE = 2 * MIB + 100  # three segments of 1 MiB
GRACE = 60.0

#: An upload id in a private name.
_UPLOAD_ID = re.compile(r"/[0-9a-f]{32}(/|$)")


def pattern(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def _anonymous(name: str) -> str:
    """``name`` with its upload id as ``*``."""
    return _UPLOAD_ID.sub(r"/*\1", name)


class Recorder:
    """The requests swiftclient sends, in order, named as the module docstring says."""

    def __init__(self, container: str) -> None:
        self.container = container
        self.sent: list[str] = []
        self._lock = threading.Lock()

    def record(self, method: str, full_path: str, headers: dict[str, Any] | None) -> None:
        with self._lock:
            self.sent.append(self.name(method, full_path, headers or {}))

    def name(self, method: str, full_path: str, headers: dict[str, Any]) -> str:
        url = urlsplit(full_path)
        path = unquote(url.path)
        marker = f"/{self.container}"
        assert marker in path, full_path
        obj = path.split(marker, 1)[1].lstrip("/")
        query = dict(parse_qsl(url.query))
        if not obj:
            if method != "GET":
                return f"{method} container"
            kind = "LEVEL" if query.get("delimiter") else "LIST"
            bounds = "".join(f" {word} {query[key]}" for word, key in
                             (("after", "marker"), ("before", "end_marker")) if key in query)
            return f"{kind} {query.get('prefix', '')}{bounds}"
        obj = _anonymous(obj)
        source = {k.lower(): v for k, v in headers.items()}.get("x-copy-from")
        if method == "PUT" and source is not None:
            src = unquote(str(source)).split(marker + "/", 1)[1]
            method, obj = "COPY", f"{obj}<-{_anonymous(src)}"
        return f"{method} {obj}" + (f"?{url.query}" if url.query else "")

    def take(self) -> list[str]:
        """What was sent since the last call."""
        with self._lock:
            sent, self.sent = self.sent, []
        return sent


@pytest.fixture
def swift(make_swift_driver) -> SwiftDriver:
    return make_swift_driver(segment_grace_seconds=GRACE)


@pytest.fixture
def sent(swift, monkeypatch) -> Iterator[Recorder]:
    recorder = Recorder(swift.container)
    real = HTTPConnection.request

    def request(conn, method, full_path, data=None, headers=None, files=None):
        recorder.record(method, full_path, headers)
        return real(conn, method, full_path, data, headers, files)

    monkeypatch.setattr(HTTPConnection, "request", request)
    yield recorder


# -- PUT -------------------------------------------------------------------------


def test_a_small_put_of_a_new_object_at_the_top(swift, sent):
    swift.put_object("c.bin", b"data")
    # One HEAD right before the commit: nothing there, so the listing of the clash rules.
    assert sent.take() == ["PUT c.bin", "HEAD c.bin", "LIST c.bin/"]


def test_a_small_put_of_a_new_object_whose_parents_are_absent(swift, sent):
    swift.put_object("a/b/c.bin", b"data")
    # Each parent level: nothing below it, and no object named like it.
    assert sent.take() == ["PUT a/b/c.bin", "HEAD a/b/c.bin",
                           "LIST a/b/ after a/b/c.bin/", "LIST a/b/ before a/b/c.bin/",
                           "HEAD a/b", "LIST a/", "HEAD a"]


def test_a_small_put_of_a_new_object_whose_parents_are_present(swift, sent):
    swift.put_object("a/b/other", b"x")
    sent.take()
    swift.put_object("a/b/c.bin", b"data")
    # The first name after a/b/c.bin/ is no name below it, and is in a/b/,
    # so every parent is a directory.
    assert sent.take() == ["PUT a/b/c.bin", "HEAD a/b/c.bin", "LIST a/b/ after a/b/c.bin/"]


def test_a_small_put_of_a_new_object_whose_siblings_all_sort_before_it(swift, sent):
    swift.put_object("a/b/a.bin", b"x")
    sent.take()
    swift.put_object("a/b/c.bin", b"data")
    assert sent.take() == ["PUT a/b/c.bin", "HEAD a/b/c.bin", "LIST a/b/ after a/b/c.bin/",
                           "LIST a/b/ before a/b/c.bin/"]


def test_a_small_overwrite(swift, sent):
    swift.put_object("a/b/c.bin", b"old")
    sent.take()
    swift.put_object("a/b/c.bin", b"new")
    # An object there: by the rules its parents are directories and it is none.
    assert sent.take() == ["PUT a/b/c.bin", "HEAD a/b/c.bin"]


def test_a_small_overwrite_of_a_large_object(swift, sent):
    swift.put_object("d/big", pattern(LARGE))
    sent.take()
    swift.put_object("d/big", b"small now")
    # The replaced manifest goes to a tombstone, which owns its segments for
    # the grace period; a HEAD after the commit tells that the new version
    # won, and the tombstone is marked so.
    assert sent.take() == ["PUT d/big", "HEAD d/big",
                           "COPY .blobsvc/replaced/d/big/*<-d/big?multipart-manifest=get",
                           "HEAD d/big", "POST .blobsvc/replaced/d/big/*"]


def test_a_large_overwrite_of_a_large_object(swift, sent):
    swift.put_object("d/big", pattern(LARGE))
    sent.take()
    swift.put_object("d/big", pattern(LARGE + 1))
    # The upload's note (written, then marked committing with the tombstone
    # its commit settles, then ended) lets any instance collect what a write
    # that died left.
    assert sent.take() == ["PUT .blobsvc/pending/*",
                           "PUT .blobsvc/segments/d/big/*/00000000",
                           "PUT .blobsvc/segments/d/big/*/00000001",
                           "PUT .blobsvc/segments/d/big/*/00000002",
                           "HEAD d/big",
                           "COPY .blobsvc/replaced/d/big/*<-d/big?multipart-manifest=get",
                           "PUT .blobsvc/pending/*",
                           "PUT d/big?multipart-manifest=put", "HEAD d/big",
                           "POST .blobsvc/replaced/d/big/*", "DELETE .blobsvc/pending/*"]


# -- reads -----------------------------------------------------------------------


def test_a_get(swift, sent):
    swift.put_object("d/obj", b"data")
    sent.take()
    assert swift.get_object("d/obj") == b"data"
    assert sent.take() == ["GET d/obj"]


def test_a_stat(swift, sent):
    swift.put_object("d/obj", b"data")
    sent.take()
    assert swift.stat_object("d/obj").size == 4
    assert sent.take() == ["HEAD d/obj"]


def test_a_listing_of_one_level(swift, sent):
    for name in ("d/1", "d/2", "d/sub/3"):
        swift.put_object(name, b"x")
    sent.take()
    assert [e.name for e in swift.list_objects("d")] == ["1", "2", "sub"]
    assert sent.take() == ["LEVEL d/"]


# -- other writes ----------------------------------------------------------------


def test_a_delete(swift, sent):
    swift.put_object("d/obj", b"data")
    sent.take()
    swift.delete_object("d/obj")
    assert sent.take() == ["HEAD d/obj", "DELETE d/obj"]


def test_a_move_to_a_new_name(swift, sent):
    swift.put_object("d/src", b"data")
    sent.take()
    swift.move_object("d/src", "d/dst")
    assert sent.take() == ["HEAD d/src", "HEAD d/dst", "LIST d/ after d/dst/",
                           "COPY d/dst<-d/src", "DELETE d/src"]


def test_a_move_onto_an_object(swift, sent):
    swift.put_object("d/src", b"data")
    swift.put_object("d/dst", b"old")
    sent.take()
    swift.move_object("d/src", "d/dst")
    assert sent.take() == ["HEAD d/src", "HEAD d/dst", "COPY d/dst<-d/src", "DELETE d/src"]


def test_a_move_into_a_new_directory(swift, sent):
    swift.put_object("d/src", b"data")
    sent.take()
    swift.move_object("d/src", "e/dst")
    assert sent.take() == ["HEAD d/src", "HEAD e/dst", "LIST e/ after e/dst/",
                           "LIST e/ before e/dst/", "HEAD e", "COPY e/dst<-d/src", "DELETE d/src"]


def test_a_copy_to_a_new_name(swift, sent):
    swift.put_object("d/src", b"data")
    sent.take()
    swift.copy_object("d/src", "d/dst")
    assert sent.take() == ["HEAD d/src", "HEAD d/dst", "LIST d/ after d/dst/",
                           "COPY d/dst<-d/src"]


def test_a_cat_of_three_small_chunks(swift, sent):
    for name in ("d/1", "d/2", "d/3"):
        swift.put_object(name, name.encode())
    sent.take()
    swift.cat_objects("d/all", ["d/1", "d/2", "d/3"])
    # The chunks are read while the PUT of the result streams.
    assert sent.take() == ["HEAD d/1", "HEAD d/2", "HEAD d/3",
                           "PUT d/all", "GET d/1", "GET d/2", "GET d/3",
                           "HEAD d/all", "LIST d/ after d/all/", "LIST d/ before d/all/",
                           "DELETE d/1", "DELETE d/2", "DELETE d/3"]
    assert swift.get_object("d/all") == b"d/1d/2d/3"


def test_an_update_of_metadata(swift, sent):
    swift.put_object("d/obj", b"data")
    sent.take()
    swift.update_object("d/obj", ObjectMeta(metadata={"k": "v"}))
    # The second HEAD follows a version that replaced the object meanwhile.
    assert sent.take() == ["HEAD d/obj", "POST d/obj", "HEAD d/obj"]

"""Helpers both storage suites share: the conformance suite and the object
model's, each run on every driver through the same public driver API."""

from __future__ import annotations

import hashlib
import importlib
import random

import pytest

from blobsvc.http.preconditions import write_precondition
from blobsvc.storage.contract import ObjectInfo
from blobsvc.storage.errors import NotFound


def documented_deviation(request, driver, driver_name: str, reason: str, strict: bool = True) -> None:
    """Expect this test to fail on ``driver_name``, which documents why it departs.

    Strict by default: once that driver conforms, the test fails as XPASS
    and the call must go. ``strict=False`` for a departure that depends on
    timing (the test may pass or fail).
    """
    if driver_name in deviation_names(driver):
        request.applymarker(pytest.mark.xfail(strict=strict, reason=reason))


def deviation_names(driver) -> set[str]:
    """The names a driver's departures are filed under: its own, and for a
    RemoteDriver on a Swift-backed service also ``swift`` and ``remote-swift``."""
    backend = getattr(driver, "backend_name", None)
    return {driver.name} if backend is None else {driver.name, backend, f"{driver.name}-{backend}"}


#: Where RemoteDriver departs from the contract, as its module docstring says.
REMOTE_CHECK_BEFORE_BODY = (
    "RemoteDriver: HTTP sends a PUT's conditions before its body, so a precondition is "
    "judged before the body travels; a version committed meanwhile fails the PUT with "
    "PreconditionFailed instead of being judged")
REMOTE_OUTSIDE_COMMIT_LOCK = (
    "RemoteDriver: a Python precondition runs in the client, outside the service's commit "
    "lock, so it does not hold writers off; the write still happens only on the version it "
    "judged (If-Match)")
REMOTE_DASH_IS_UNDERSCORE = (
    "HTTP: metadata names differing only in '_' and '-' are refused together (proxies and "
    "WSGI servers fold one into the other), so one object cannot carry both through the API")

#: Through a service with several worker processes, as through several
#: instances: the README's Guarantees call the clash rule best effort there.
SWIFT_CLASH_ACROSS_PROCESSES = (
    "swift: writes in flight claim their names in one process only; in a service with "
    "several worker processes two racing writes of an object and a directory of one name "
    "can both pass the check (a HEAD and a listing) before either commits")


def driver_chunk_sizes() -> list[int]:
    """The chunk sizes drivers read, write and stream with (deduplicated)."""
    sizes = set()
    for module, attribute in [
        ("blobsvc.storage.memory", "STREAM_CHUNK_SIZE"),
        ("blobsvc.storage.filesystem", "CHUNK_SIZE"),
        ("blobsvc.storage.swift", "CHUNK_SIZE"),
    ]:
        try:
            sizes.add(getattr(importlib.import_module(module), attribute))
        except (ImportError, AttributeError):
            continue  # that driver (or its constant) does not exist (yet)
    return sorted(sizes)


def pattern(size: int, seed: object = 0) -> bytes:
    """``size`` deterministic pseudo-random bytes; other seeds give other bytes."""
    return random.Random(f"{seed}:{size}").randbytes(size)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def populate(driver, objects: dict[str, bytes]) -> None:
    for path, data in objects.items():
        driver.put_object(path, data)


def names(entries: list[ObjectInfo]) -> list[str]:
    return [entry.name for entry in entries]


def assert_absent(driver, path: str) -> None:
    with pytest.raises(NotFound):
        driver.stat_object(path)
    with pytest.raises(NotFound):
        driver.get_object(path)


def misbehaving_cases(expected: type[BaseException], call, cases: dict) -> dict[str, str]:
    """Run ``call(value)`` for every case; describe each one that did not raise ``expected``."""
    wrong = {}
    for name, value in cases.items():
        try:
            result = call(value)
        except expected:
            continue
        except Exception as exc:
            wrong[name] = f"raised {exc!r}"
        else:
            wrong[name] = f"returned {result!r}"
    return wrong


def create_only(current):
    """``If-None-Match: *``, as the HTTP layer passes it."""
    write_precondition({"If-None-Match": "*"}, "PUT")(current)


def if_match(etag: str):
    return write_precondition({"If-Match": f'"{etag}"'}, "PUT")

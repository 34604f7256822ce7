"""The checksums S3 clients send with an object (``x-amz-checksum-*``).

A value is the big-endian digest in standard base64, as S3 returns it.
CRC32C and CRC64NVME come from awscrt, the library AWS's own SDKs compute
them with, so a value we return is the one a client computed. CRC64NVME
needs awscrt 0.23.4 (Debian 12 ships 0.16.8): with an older one, or none,
an upload naming a missing algorithm is refused, never taken unchecked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import zlib
from typing import Callable, Protocol

#: Algorithm names as S3 spells them (x-amz-checksum-algorithm, x-amz-sdk-checksum-algorithm).
ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
HEADER_PREFIX = "x-amz-checksum-"
_SIZES = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}


def _crt_crc(name: str) -> Callable[[bytes, int], int] | None:
    """awscrt's ``name`` CRC (data, previous) -> value, if the installed awscrt has it."""
    try:
        module = importlib.import_module("awscrt.checksums")
    except ImportError:
        return None
    function: Callable[[bytes, int], int] | None = getattr(module, name, None)
    return function


_CRCS: dict[str, Callable[[bytes, int], int] | None] = {
    "CRC32": lambda data, value: zlib.crc32(data, value),
    "CRC32C": _crt_crc("crc32c"),
    "CRC64NVME": _crt_crc("crc64nvme"),
}
#: The algorithms this installation can compute.
AVAILABLE = tuple(name for name in ALGORITHMS if _CRCS.get(name, True) is not None)


class Checksum(Protocol):
    algorithm: str

    def update(self, data: bytes) -> None: ...

    def b64digest(self) -> str: ...


class _Crc:
    """A CRC kept as an integer, fed piece by piece."""

    def __init__(self, algorithm: str, step: Callable[[bytes, int], int], size: int) -> None:
        self.algorithm = algorithm
        self._step = step
        self._size = size
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = self._step(data, self._value)

    def b64digest(self) -> str:
        return _b64(self._value.to_bytes(self._size, "big"))


class _Hash:
    def __init__(self, algorithm: str, name: str) -> None:
        self.algorithm = algorithm
        self._hash = hashlib.new(name)

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def b64digest(self) -> str:
        return _b64(self._hash.digest())


def new_checksum(algorithm: str) -> Checksum:
    """A running checksum of ``algorithm`` (any case).

    ValueError for one S3 does not know, or this installation cannot compute.
    """
    name = algorithm.upper()
    if name not in AVAILABLE:
        raise ValueError(f"checksum algorithm {algorithm!r} is not available here "
                         f"(available: {', '.join(AVAILABLE)})")
    if name in ("SHA1", "SHA256"):
        return _Hash(name, name.lower())
    step = _CRCS[name]
    assert step is not None
    return _Crc(name, step, _SIZES[name])


def header_name(algorithm: str) -> str:
    """``CRC32`` -> ``x-amz-checksum-crc32``."""
    return HEADER_PREFIX + algorithm.lower()


def algorithm_of(header: str) -> str | None:
    """The algorithm an ``x-amz-checksum-*`` header names; None for any other header."""
    name = header.lower()
    if not name.startswith(HEADER_PREFIX):
        return None
    algorithm = name[len(HEADER_PREFIX):].upper()
    return algorithm if algorithm in ALGORITHMS else None


def digest_size(algorithm: str) -> int:
    return _SIZES[algorithm.upper()]


def is_well_formed(algorithm: str, value: str) -> bool:
    """Whether ``value`` is a base64 digest of the right size for ``algorithm``."""
    try:
        return len(base64.b64decode(value, validate=True)) == digest_size(algorithm)
    except (binascii.Error, ValueError):
        return False


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")

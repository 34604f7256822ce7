"""Secrets in the config: plain (compared in constant time) or hashed.

A hashed secret reads ``pbkdf2-sha256$ITERATIONS$SALT$HASH`` (salt and hash
in URL-safe base64), made by ``blobsvc hash-secret``. Checking one costs
a tenth of a second on purpose, so successful checks are remembered (by a
digest of the presented secret, never the secret itself) and a client
pays that cost once, not on every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from collections import OrderedDict

SCHEME = "pbkdf2-sha256"
DEFAULT_ITERATIONS = 200_000
_CACHE_SIZE = 1024


def hash_secret(secret: str, iterations: int = DEFAULT_ITERATIONS) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt, iterations)
    return "$".join([SCHEME, str(iterations), _b64(salt), _b64(digest)])


def is_hashed(value: str) -> bool:
    return value.startswith(SCHEME + "$")


def check_hash_format(value: str) -> None:
    """Raise ValueError when ``value`` is not a well-formed hashed secret."""
    parts = value.split("$")
    if len(parts) != 4 or parts[0] != SCHEME or not (parts[1].isascii() and parts[1].isdigit()):
        raise ValueError(f"a hashed secret reads {SCHEME}$ITERATIONS$SALT$HASH")
    _unb64(parts[2])
    _unb64(parts[3])


class SecretChecker:
    """Compares presented secrets with configured ones, plain or hashed."""

    def __init__(self) -> None:
        self._verified: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._lock = threading.Lock()

    def matches(self, presented: str, configured: str) -> bool:
        if not is_hashed(configured):
            return hmac.compare_digest(presented.encode("utf-8"), configured.encode("utf-8"))
        key = (configured, hashlib.sha256(presented.encode("utf-8")).digest())
        with self._lock:
            if key in self._verified:
                self._verified.move_to_end(key)
                return True
        if not _verify_hash(presented, configured):
            return False
        with self._lock:
            self._verified[key] = None
            if len(self._verified) > _CACHE_SIZE:
                self._verified.popitem(last=False)
        return True


def _verify_hash(presented: str, configured: str) -> bool:
    _, iterations, salt, expected = configured.split("$")
    digest = hashlib.pbkdf2_hmac("sha256", presented.encode("utf-8"), _unb64(salt), int(iterations))
    return hmac.compare_digest(digest, _unb64(expected))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

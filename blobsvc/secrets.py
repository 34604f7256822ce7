"""Secrets in the config: plain (compared in constant time) or hashed.

A hashed secret reads ``pbkdf2-sha256$ITERATIONS$SALT$HASH`` (salt and hash
in URL-safe base64), made by ``blobsvc hash-secret``. Checking one costs
tens of milliseconds on purpose, so what a wrong credential costs must not
depend on whom it names:

* a Basic attempt costs one derivation at the strength of the strongest
  configured password hash, whether the user exists, has a weaker hash or
  a plain password: timing does not tell which user names exist;
* an unknown Bearer token costs one derivation at most, however many
  tokens are hashed. Hashed tokens share one salt (``hash-secret --token``),
  so one derivation of the presented token finds its owner in a table.
  With a salt per token, only one derivation per token could tell that a
  token is unknown: every garbage request would cost that many.

Successful checks are remembered by an HMAC of the presented secret under
a random per-process key (never the secret itself), so a client pays the
derivation once, and lookups by that digest leak nothing through timing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, Iterable, TypeVar

SCHEME = "pbkdf2-sha256"
DEFAULT_ITERATIONS = 200_000
#: Fewer iterations make a stolen config cheap to brute-force: refused.
MIN_ITERATIONS = 100_000
#: The salt all hashed Bearer tokens share (see the module docstring). A
#: token is meant to be a long random string, which a salt of its own would
#: not make any harder to guess; passwords keep a random salt each.
TOKEN_SALT = b"blobsvc-bearer-1"
_CACHE_SIZE = 1024
_DUMMY_SALT = os.urandom(16)

T = TypeVar("T")


@dataclass(frozen=True)
class HashedSecret:
    iterations: int
    salt: bytes
    digest: bytes


def hash_secret(secret: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    salt = os.urandom(16) if salt is None else salt
    return "$".join([SCHEME, str(iterations), _b64(salt), _b64(derive(secret, salt, iterations))])


def hash_token(token: str, iterations: int = DEFAULT_ITERATIONS) -> str:
    """A Bearer token's hash: under the shared salt, so lookups cost one derivation."""
    return hash_secret(token, iterations, TOKEN_SALT)


def derive(secret: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", _utf8(secret), salt, iterations)


def is_hashed(value: str) -> bool:
    return value.startswith(SCHEME + "$")


def parse_hash(value: str) -> HashedSecret:
    """The parts of a hashed secret; ValueError when it is malformed."""
    parts = value.split("$")
    if len(parts) != 4 or parts[0] != SCHEME or not (parts[1].isascii() and parts[1].isdigit()):
        raise ValueError(f"a hashed secret reads {SCHEME}$ITERATIONS$SALT$HASH")
    iterations = int(parts[1])
    if iterations < 1:
        raise ValueError("a hashed secret needs at least one iteration")
    return HashedSecret(iterations, _unb64(parts[2]), _unb64(parts[3]))


class KeyedDigest:
    """HMAC-SHA256 under a random per-process key: a table key for secrets
    that is useless outside this process and safe to compare in any time."""

    def __init__(self) -> None:
        self._key = os.urandom(32)

    def __call__(self, text: str) -> bytes:
        return hmac.new(self._key, _utf8(text), hashlib.sha256).digest()


class PasswordChecker:
    """Checks Basic passwords at one constant cost per attempt (see the module docstring)."""

    def __init__(self, configured: Iterable[str]) -> None:
        self._hashes = {secret: parse_hash(secret) for secret in configured if is_hashed(secret)}
        #: Iterations every unremembered attempt costs, whatever it names.
        self._cost = max((h.iterations for h in self._hashes.values()), default=0)
        self._digest = KeyedDigest()
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def matches(self, presented: str, configured: str | None) -> bool:
        """Whether ``presented`` is the password ``configured`` (None: an unknown user)."""
        key = self._digest(f"{len(configured or '')}:{configured or ''}{presented}")
        if configured is None:
            _spend(self._cost)
            return False
        with self._lock:
            if key in self._verified:
                self._verified.move_to_end(key)
                return True
        if not self._verify(presented, configured):
            return False
        with self._lock:
            self._verified[key] = None
            if len(self._verified) > _CACHE_SIZE:
                self._verified.popitem(last=False)
        return True

    def _verify(self, presented: str, configured: str) -> bool:
        hashed = self._hashes.get(configured)
        if hashed is None:
            _spend(self._cost)
            return hmac.compare_digest(_utf8(presented), _utf8(configured))
        matched = hmac.compare_digest(derive(presented, hashed.salt, hashed.iterations), hashed.digest)
        _spend(self._cost - hashed.iterations)
        return matched


class TokenTable(Generic[T]):
    """Finds the owner of a Bearer token in at most one derivation.

    Plain tokens are looked up by their keyed digest. Hashed ones must
    share one salt and iteration count (ValueError otherwise): one
    derivation of the presented token is looked up among their hashes,
    and a token found that way is remembered by its keyed digest.
    """

    def __init__(self, entries: Iterable[tuple[str, T]]) -> None:
        self._digest = KeyedDigest()
        self._known: dict[bytes, T] = {}
        self._hashed: dict[bytes, T] = {}
        self._derivation: tuple[bytes, int] | None = None
        for secret, owner in entries:
            if is_hashed(secret):
                self._add_hashed(parse_hash(secret), owner)
            else:
                self._known.setdefault(self._digest(secret), owner)

    def _add_hashed(self, hashed: HashedSecret, owner: T) -> None:
        derivation = (hashed.salt, hashed.iterations)
        if self._derivation not in (None, derivation):
            raise ValueError("hashed tokens must share one salt and iteration count")
        self._derivation = derivation
        self._hashed.setdefault(hashed.digest, owner)

    def find(self, presented: str) -> T | None:
        digest = self._digest(presented)
        owner = self._known.get(digest)
        if owner is not None or self._derivation is None:
            return owner
        owner = self._hashed.get(derive(presented, *self._derivation))
        if owner is not None:
            self._known[digest] = owner  # at most one entry per hashed token
        return owner


def _spend(iterations: int) -> None:
    """Burn the time of a derivation whose result does not matter."""
    if iterations > 0:
        hashlib.pbkdf2_hmac("sha256", b"dummy", _DUMMY_SALT, iterations)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

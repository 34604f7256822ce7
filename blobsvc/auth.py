"""Who may do what: users (HTTP Basic), API tokens (Bearer), signed URLs.

Access levels are ``none`` < ``read`` < ``write``; a user or token may be
limited to a path prefix (``builds/``). Without an ``auth`` section the
service is open, which the config only allows on a loopback address.

The decision is made before storage is touched, so a refused request never
reveals whether an object exists: a request without (valid) credentials that
anonymous access does not cover gets ``401`` with a challenge, a known
client asking beyond its grant gets ``403``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Iterator, Mapping
from urllib.parse import quote

from blobsvc.secrets import MIN_ITERATIONS, PasswordChecker, TokenTable, is_hashed, parse_hash

LEVELS = {"none": 0, "read": 1, "write": 2}
ENV_TOKEN = "BLOBSVC_TOKEN"
#: An S3 key pair from the environment: one more write user (see environment_user).
ENV_ACCESS_KEY = "BLOBSVC_ACCESS_KEY"
ENV_SECRET_KEY = "BLOBSVC_SECRET_KEY"
#: Weakest secrets accepted: a token or key a guess could find is refused at start.
MIN_TOKEN_LENGTH = 16
MIN_SIGNING_KEY_BYTES = 32
#: Character-frequency estimate of a signing key's randomness, in bits: catches
#: keys of a few characters over and over, whatever their length.
MIN_SIGNING_KEY_BITS = 64
_MAKE_KEY = "e.g. the output of 'openssl rand -hex 32'"
#: Integers in signed URLs have one spelling: ASCII digits, no sign, no
#: leading zero, so one signature cannot be replayed under another URL.
_CANONICAL_INT = re.compile(r"0|[1-9][0-9]*")


class AuthDenied(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def code(self) -> str:
        """The error code a client sees (401: no or wrong credentials)."""
        return "unauthorized" if self.status == 401 else "forbidden"


@dataclass(frozen=True)
class Grant:
    """A user's or token's access: its level, limited to ``prefix``."""

    name: str
    secret: str
    access: str
    prefix: str = ""


@dataclass(frozen=True)
class AuthSettings:
    #: False when the config has no auth section: everyone may write.
    enabled: bool = False
    anonymous: str = "none"
    users: tuple[Grant, ...] = ()
    tokens: tuple[Grant, ...] = ()
    signing_key: str | None = None
    #: Serve /metrics without credentials (for scrapers on a private network).
    public_metrics: bool = False
    realm: str = "blobsvc"


@dataclass(frozen=True)
class Principal:
    """The client of one request, as far as access is concerned."""

    name: str
    access: str
    prefix: str = ""
    authenticated: bool = False
    #: Signed URLs grant one method on one path.
    only_path: str | None = None
    only_method: str | None = None

    def allows(self, access: str, path: str, method: str) -> bool:
        if LEVELS[self.access] < LEVELS[access]:
            return False
        if self.only_path is not None:
            return path == self.only_path and method in _methods_for(self.only_method)
        return path.startswith(self.prefix)


OPEN = Principal(name="anonymous", access="write")


def parse_settings(section: object, environ: Mapping[str, str]) -> AuthSettings:
    """AuthSettings from the config's ``auth`` section (None: absent).

    Raises ValueError naming the key. ``BLOBSVC_TOKEN`` in the environment
    adds a write token, and ``BLOBSVC_ACCESS_KEY`` with ``BLOBSVC_SECRET_KEY``
    a write user (an S3 key pair), so a container needs nothing else to be safe.
    """
    env_token = environ.get(ENV_TOKEN)
    env_user = environment_user(environ)
    if section is None and not env_token and env_user is None:
        return AuthSettings(enabled=False)
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ValueError("auth must be a mapping")
    known = {"anonymous", "users", "tokens", "signing_key", "public_metrics", "realm"}
    for key in section:
        if key not in known:
            raise ValueError(f"unknown key auth.{key}")
    anonymous = _level(section.get("anonymous", "none"), "auth.anonymous", allow_none=True)
    users = tuple(_with_environment_user(_user_grants(section.get("users") or {}), env_user))
    tokens = list(_token_grants(section.get("tokens") or []))
    wheres = [f"auth.tokens[{index}].token" for index in range(len(tokens))]
    if env_token:
        _check_secret(env_token, "token", ENV_TOKEN)
        tokens.append(Grant(name="env-token", secret=env_token, access="write"))
        wheres.append(ENV_TOKEN)
    _check_token_hashes(tokens, wheres)
    signing_key = section.get("signing_key")
    if signing_key is not None:
        _check_signing_key(signing_key)
    public_metrics = section.get("public_metrics", False)
    if not isinstance(public_metrics, bool):
        raise ValueError("auth.public_metrics must be true or false")
    realm = section.get("realm", "blobsvc")
    if not isinstance(realm, str) or '"' in realm:
        raise ValueError("auth.realm must be a string without quotes")
    return AuthSettings(enabled=True, anonymous=anonymous, users=users, tokens=tuple(tokens),
                        signing_key=signing_key, public_metrics=public_metrics, realm=realm)


def environment_user(environ: Mapping[str, str]) -> Grant | None:
    """The write user ``BLOBSVC_ACCESS_KEY``/``BLOBSVC_SECRET_KEY`` add, if set.

    The secret stays plain: an S3 signature is an HMAC keyed by it, so the
    service needs the secret itself. Both or neither: one alone is a mistake
    worth failing on at start.
    """
    access_key, secret = environ.get(ENV_ACCESS_KEY), environ.get(ENV_SECRET_KEY)
    if not access_key and not secret:
        return None
    if not access_key or not secret:
        missing = ENV_ACCESS_KEY if not access_key else ENV_SECRET_KEY
        raise ValueError(f"{missing} is not set: {ENV_ACCESS_KEY} and {ENV_SECRET_KEY} go together")
    if any(char in ":/," or char.isspace() for char in access_key):
        raise ValueError(f"{ENV_ACCESS_KEY} may not contain ':', '/', ',' or white space")
    if is_hashed(secret):
        raise ValueError(f"{ENV_SECRET_KEY} must be the secret itself: S3 signatures need it, not a hash")
    if len(secret) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{ENV_SECRET_KEY} is too short: a secret key needs at least "
                         f"{MIN_TOKEN_LENGTH} characters")
    return Grant(name=access_key, secret=secret, access="write")


def _with_environment_user(users: Iterator[Grant], env_user: Grant | None) -> Iterator[Grant]:
    """The configured users, and the environment's unless the config lists it already."""
    for grant in users:
        if env_user is not None and grant.name == env_user.name:
            if grant != env_user:
                raise ValueError(f"{ENV_ACCESS_KEY} names the user {grant.name!r} of auth.users; "
                                 "choose another access key id")
            env_user = None  # the same user, listed in the config too
        yield grant
    if env_user is not None:
        yield env_user


def _user_grants(users: object) -> Iterator[Grant]:
    if not isinstance(users, dict):
        raise ValueError("auth.users must map user names to {password, access, prefix}")
    for name, entry in users.items():
        where = f"auth.users.{name}"
        if not isinstance(name, str) or ":" in name or not name:
            raise ValueError(f"{where}: a user name is a non-empty string without ':'")
        yield _grant(name, entry, "password", where)


def _token_grants(tokens: object) -> Iterator[Grant]:
    if not isinstance(tokens, list):
        raise ValueError("auth.tokens must be a list of {name, token, access, prefix}")
    for index, entry in enumerate(tokens):
        where = f"auth.tokens[{index}]"
        name = entry.get("name", f"token-{index}") if isinstance(entry, dict) else None
        yield _grant(str(name), entry, "token", where)


def _grant(name: str, entry: object, secret_key: str, where: str) -> Grant:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a mapping")
    allowed = {secret_key, "access", "prefix", "name"}
    for key in entry:
        if key not in allowed:
            raise ValueError(f"unknown key {where}.{key}")
    secret = entry.get(secret_key)
    if not isinstance(secret, str) or not secret:
        raise ValueError(f"{where}.{secret_key} is required (a string; may be ${{VAR}} or a hash)")
    _check_secret(secret, secret_key, f"{where}.{secret_key}")
    access = _level(entry.get("access", "read"), f"{where}.access", allow_none=False)
    prefix = entry.get("prefix", "")
    if not isinstance(prefix, str) or prefix.startswith("/"):
        raise ValueError(f"{where}.prefix must be a path prefix such as 'builds/'")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return Grant(name=name, secret=secret, access=access, prefix=prefix)


def _check_secret(secret: str, kind: str, where: str) -> None:
    """Refuse a malformed or cheap hash, and a plain token short enough to guess."""
    if is_hashed(secret):
        try:
            hashed = parse_hash(secret)
        except (ValueError, binascii.Error) as exc:
            raise ValueError(f"{where}: {exc}") from None
        if hashed.iterations < MIN_ITERATIONS:
            command = "blobsvc hash-secret" + (" --token" if kind == "token" else "")
            raise ValueError(f"{where}: a hash of {hashed.iterations} iterations is cheap to brute-force; "
                             f"hash it again with '{command}' (at least {MIN_ITERATIONS})")
    elif kind == "token" and len(secret) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{where} is too short: a token needs at least {MIN_TOKEN_LENGTH} characters")


def _check_token_hashes(tokens: list[Grant], wheres: list[str]) -> None:
    """Hashed tokens must share one salt and iteration count, so that an unknown
    token costs one derivation, not one per hashed token (see blobsvc.secrets)."""
    first = None
    for grant, where in zip(tokens, wheres, strict=True):
        if not is_hashed(grant.secret):
            continue
        hashed = parse_hash(grant.secret)
        first = first or hashed
        if (hashed.salt, hashed.iterations) != (first.salt, first.iterations):
            raise ValueError(f"{where}: hashed tokens must share one salt and iteration count; "
                             "make every one with 'blobsvc hash-secret --token'")


def _check_signing_key(key: object) -> None:
    """Refuse a signing key that is short or far from random-looking."""
    if not isinstance(key, str) or len(key.encode("utf-8")) < MIN_SIGNING_KEY_BYTES:
        raise ValueError(f"auth.signing_key must be a string of at least {MIN_SIGNING_KEY_BYTES} bytes "
                         f"({_MAKE_KEY})")
    if _estimated_bits(key) < MIN_SIGNING_KEY_BITS or _is_repetition(key):
        raise ValueError("auth.signing_key does not look random (few distinct characters or a "
                         f"repeated pattern); use a random one ({_MAKE_KEY})")


def _estimated_bits(text: str) -> float:
    """Length times the entropy of the character frequencies: low when a few
    characters make up most of ``text``."""
    counts = Counter(text).values()
    return -sum(n * math.log2(n / len(text)) for n in counts)


def _is_repetition(text: str) -> bool:
    """Whether ``text`` is a shorter string repeated ("abcabc")."""
    return (text + text).find(text, 1) < len(text)


def canonical_int(value: object, max_digits: int = 12) -> int | None:
    """``value`` as an integer if it is one spelled canonically, else None."""
    if not isinstance(value, str) or len(value) > max_digits or not _CANONICAL_INT.fullmatch(value):
        return None
    return int(value)


def _level(value: object, where: str, allow_none: bool) -> str:
    levels = ("none", "read", "write") if allow_none else ("read", "write")
    if value not in levels:
        raise ValueError(f"{where} must be one of {', '.join(levels)}")
    return str(value)


class Authenticator:
    """Turns a request's credentials into a :class:`Principal`."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._users = {grant.name: grant for grant in settings.users}
        self._passwords = PasswordChecker(grant.secret for grant in settings.users)
        self._tokens = TokenTable((grant.secret, grant) for grant in settings.tokens)
        self.challenge = f'Basic realm="{settings.realm}", Bearer realm="{settings.realm}"'
        self._anonymous = Principal(name="anonymous", access=settings.anonymous)

    def identify(self, headers: Mapping[str, str], params: Mapping[str, object],
                 method: str, object_path: str | None) -> Principal:
        if not self.settings.enabled:
            return OPEN
        if "signature" in params or "expires" in params:
            return self._signed_url(params, method, object_path)
        header = headers.get("Authorization")
        if header is None:
            return self._anonymous
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            return self._basic(credentials.strip())
        if scheme == "bearer":
            return self._bearer(credentials.strip())
        raise AuthDenied(401, "unsupported Authorization scheme; use Basic or Bearer")

    def require(self, principal: Principal, access: str, path: str, method: str) -> None:
        """Raise AuthDenied unless ``principal`` may ``access`` ``path``.

        A credential never takes away what anonymous access already gives:
        a token limited to ``builds/`` still reads ``public/`` where anyone may.
        """
        if principal.allows(access, path, method) or self._anonymous.allows(access, path, method):
            return
        if not principal.authenticated and principal.only_path is None:
            raise AuthDenied(401, "credentials required")
        raise AuthDenied(403, f"{principal.name} may not {access} {path or 'the root'}")

    def _basic(self, credentials: str) -> Principal:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise AuthDenied(401, "malformed Basic credentials") from None
        name, sep, password = decoded.partition(":")
        grant = self._users.get(name) if sep else None
        # Checked whoever it names, at the same cost: timing tells no user names.
        if not self._passwords.matches(password, grant.secret if grant else None) or grant is None:
            raise AuthDenied(401, "wrong user name or password")
        return _principal(grant)

    def _bearer(self, token: str) -> Principal:
        grant = self._tokens.find(token)
        if grant is None:
            raise AuthDenied(401, "unknown token")
        return _principal(grant)

    def _signed_url(self, params: Mapping[str, object], method: str,
                    object_path: str | None) -> Principal:
        key = self.settings.signing_key
        signature, expires = params.get("signature"), params.get("expires")
        if key is None or object_path is None:
            raise AuthDenied(403, "signed URLs are not accepted here")
        expires_at = canonical_int(expires)
        if not (isinstance(signature, str) and signature.isascii()) or expires_at is None:
            raise AuthDenied(403, "a signed URL needs one 'expires' (an integer, no leading "
                                  "zeros) and one 'signature'")
        if expires_at < time.time():
            raise AuthDenied(403, "the signed URL has expired")
        for signed_method in _methods_signed_for(method):
            expected = sign(key, signed_method, object_path, expires_at)
            if hmac.compare_digest(expected, signature):
                return Principal(name="signed-url", access="write" if signed_method == "PUT" else "read",
                                 only_path=object_path, only_method=signed_method)
        raise AuthDenied(403, "the signature does not match this method and path")


def _principal(grant: Grant) -> Principal:
    return Principal(name=grant.name, access=grant.access, prefix=grant.prefix, authenticated=True)


def _methods_for(signed_method: str | None) -> tuple[str, ...]:
    return ("GET", "HEAD") if signed_method == "GET" else (signed_method or "",)


def _methods_signed_for(method: str) -> tuple[str, ...]:
    return ("GET",) if method in ("GET", "HEAD") else (method,)


def sign(key: str, method: str, object_path: str, expires: int) -> str:
    """The signature of a URL granting ``method`` on ``object_path``."""
    message = f"{method}\n{expires}\n{object_path}".encode()
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_query(key: str, method: str, object_path: str, expires: int) -> str:
    return f"expires={expires}&signature={quote(sign(key, method, object_path, expires))}"

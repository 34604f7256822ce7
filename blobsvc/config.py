"""Configuration: YAML file (or the embedded default), then the environment.

Loading order: the YAML document, ``${VAR}`` / ``${VAR:-default}``
substituted in its string values (as plain text, never parsed as YAML: a
``#`` or ``!!`` in a password is part of it), then ``BLOBSVC_<SECTION>_<KEY>``
environment variables (e.g. ``BLOBSVC_SERVER_PORT=9000``,
``BLOBSVC_STORAGE_ROOT=/data``) override single settings, so a container
needs no file at all. Everything is checked before the service starts: an
unknown key, a wrong type or a missing driver setting raises
:class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

import yaml

from blobsvc import auth
from blobsvc.storage import DRIVER_NAMES, load_driver_class
from blobsvc.storage.settings import SCALAR_TYPES, DriverSettings, build_settings, check_type, field_types


class ConfigError(Exception):
    """A configuration problem, worded for the one line start-up prints."""


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    #: Processes sharing the port (SO_REUSEPORT); null = one per CPU.
    workers: int | None = None
    #: Threads per worker process: concurrent requests each serves.
    threads: int = 16
    #: The pool grows up to this many threads while threads are held up on
    #: their connections (slow or stalled clients each hold one until
    #: socket_timeout, long transfers one until they end).
    max_threads: int = 128
    #: Seconds a connection may stay silent before the server drops it.
    socket_timeout: float = 30.0
    #: Seconds from the first byte of a request's head to its last: a client
    #: trickling headers is dropped after this, however slowly it sends.
    header_timeout: float = 10.0
    #: Connections kept open per worker; past it, the one waiting longest
    #: for its deadline is closed to make room.
    max_connections: int = 4096
    #: Connections the kernel queues before a worker accepts them; a burst
    #: beyond it has its SYNs dropped, and each client waits a second to retry.
    listen_backlog: int = 1024
    #: Serve HTML, SVG, XML and JavaScript objects inline, unsandboxed. Only
    #: for a store whose every writer is trusted with every reader's rights.
    inline_active_content: bool = False
    #: Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    shutdown_timeout: float = 10.0
    #: Largest object accepted, in bytes; null for no limit.
    max_object_size: int | None = None
    #: Bytes read from the client per read on uploads.
    chunk_size: int = 1024 * 1024
    #: Compute SHA-256 of every PUT body for its answer, not only of those
    #: sent with X-Checksum-Sha256 (it costs about as much CPU as MD5).
    always_sha256: bool = False
    #: The URL clients reach the service at (behind a proxy, or when host is
    #: a wildcard address): the base of what ``blobsvc sign`` prints.
    public_url: str | None = None

    @property
    def effective_workers(self) -> int:
        return self.workers or os.cpu_count() or 1


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"
    #: ``text`` for people, ``json`` (one object per line) for collectors.
    format: str = "text"
    access_log: bool = True


@dataclass(frozen=True)
class TlsSettings:
    #: PEM certificate chain and private key; both set serves HTTPS.
    cert: str = ""
    key: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert)


#: Request headers a page may send besides the CORS-safelisted ones; every
#: ``X-Object-Meta-*`` is allowed too.
DEFAULT_ALLOW_HEADERS = [
    "Authorization", "Content-Type", "Content-MD5", "X-Checksum-Sha256", "Range",
    "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range",
    "X-Delete-At", "X-Delete-After", "X-Request-Id", "Content-Encoding",
    "Content-Disposition", "Content-Language", "Cache-Control", "Expires",
]
#: Answer headers a page may read besides the safelisted ones; the object's
#: ``X-Object-Meta-*`` are added per answer.
DEFAULT_EXPOSE_HEADERS = [
    "ETag", "Content-Length", "Content-Range", "Accept-Ranges", "Last-Modified", "Location",
    "X-Request-Id", "X-Delete-At", "Content-Encoding", "Content-Disposition", "WWW-Authenticate",
]
DEFAULT_METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE"]

@dataclass(frozen=True)
class CorsSettings:
    """The ``cors`` section. Lists may also be given as comma-separated text
    (from the environment). No ``allow_origins``: CORS is off."""

    #: Origins (``https://app.example``) whose pages may call the API, or ``*``.
    allow_origins: list[str] | str = field(default_factory=list)
    allow_methods: list[str] | str = field(default_factory=lambda: list(DEFAULT_METHODS))
    allow_headers: list[str] | str = field(default_factory=lambda: list(DEFAULT_ALLOW_HEADERS))
    expose_headers: list[str] | str = field(default_factory=lambda: list(DEFAULT_EXPOSE_HEADERS))
    #: Seconds a browser may keep a preflight's answer.
    max_age: int = 600

    def validate(self) -> None:
        for name in ("allow_origins", "allow_methods", "allow_headers", "expose_headers"):
            for item in setting_items(getattr(self, name)):
                if not isinstance(item, str) or not item or any(c in item for c in " ,\r\n"):
                    raise ValueError(f"cors.{name}: {item!r} is not a single value")
        for origin in setting_items(self.allow_origins):
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"cors.allow_origins: {origin!r} is not an origin "
                                 "such as https://app.example (or *)")
            if origin.endswith("/"):
                raise ValueError(f"cors.allow_origins: {origin!r} has a path; an origin has none")
        if self.max_age < 0:
            raise ValueError("cors.max_age must not be negative")



@dataclass(frozen=True)
class S3Settings:
    """The ``s3`` section: the S3-compatible API, on the same port."""

    #: Serve the S3 API (path style: ``/{bucket}/{key}``).
    enabled: bool = True
    #: Virtual-hosted style too: a Host ``{bucket}.{domain}`` names the
    #: bucket, and the whole path is the key. None: path style only.
    domain: str | None = None
    #: The region GetBucketLocation names (and clients sign for).
    region: str = "us-east-1"
    #: Seconds a multipart upload may stay neither completed nor aborted;
    #: older ones are removed with their parts.
    multipart_expiry: int = 7 * 24 * 3600

    def validate(self) -> None:
        if self.multipart_expiry < 1:
            raise ValueError("s3.multipart_expiry: must be at least 1 second")
        if self.domain is not None and not _HOST_NAME.match(self.domain):
            raise ValueError(f"s3.domain: {self.domain!r} is not a host name such as s3.example.org")
        if not _REGION.match(self.region):
            raise ValueError(f"s3.region: {self.region!r} is not a region name such as us-east-1")


_HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_REGION = re.compile(r"^[a-z0-9-]{1,32}$")


def setting_items(value: list[str] | str) -> list[str]:
    """A list setting, given as a list or as comma-separated text."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return list(value)


#: What an empty (or absent) storage section means.
DEFAULT_DRIVER = "filesystem"
DEFAULT_ROOT = "./data"


@dataclass(frozen=True)
class StorageSettings:
    driver: str
    #: The driver's own settings, checked and validated (its ``settings_class``).
    settings: DriverSettings

    @property
    def params(self) -> dict[str, Any]:
        """The driver's settings as config keys, what ``create_driver`` takes."""
        return dataclasses.asdict(self.settings)


@dataclass(frozen=True)
class Config:
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=lambda: _build_storage(None))
    log: LogSettings = field(default_factory=LogSettings)
    auth: auth.AuthSettings = field(default_factory=auth.AuthSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    cors: CorsSettings = field(default_factory=CorsSettings)
    s3: S3Settings = field(default_factory=S3Settings)


LOG_LEVELS = ("debug", "info", "warning", "error")
SECTIONS = ("server", "storage", "log", "auth", "tls", "cors", "s3")
ENV_PREFIX = "BLOBSVC_"

_SUBSTITUTION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_NULLS = ("", "null", "~")


class FromEnvironment(str):
    """Text from the environment: a plain string until the setting it fills
    gives it a type (see :func:`_typed`)."""


def load(path: str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """The validated configuration from ``path`` (None: embedded default)."""
    environ = os.environ if environ is None else environ
    document: Any = {}
    if path is not None:
        try:
            with open(path, encoding="utf-8") as stream:
                document = yaml.safe_load(stream)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {_one_line(exc)}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError("config: the top level must be a mapping of sections")
    document = substitute(document, environ, "")
    apply_environment(document, environ)
    return build(document, environ)


def substitute(value: Any, environ: Mapping[str, str], where: str) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string value.

    The result is text, whatever it contains; the setting it fills types
    it, so ``port: ${PORT}`` is an integer and ``password: ${PW}`` keeps
    a ``#`` in it.
    """
    if isinstance(value, dict):
        return {key: substitute(item, environ, _join(where, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, environ, f"{where}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"config: {where} uses ${{{name}}}, which is not set in the environment")

    return FromEnvironment(_SUBSTITUTION.sub(replace, value))


def apply_environment(document: dict, environ: Mapping[str, str]) -> None:
    """Apply ``BLOBSVC_<SECTION>_<KEY>`` overrides onto ``document``."""
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section == "auth" and rest[len("auth_"):] not in ("anonymous", "signing_key", "public_metrics"):
            continue  # users and tokens are structured: from the file (or BLOBSVC_TOKEN)
        if section is None:
            continue  # not a settings override (e.g. a secret referenced as ${VAR})
        key = rest[len(section) + 1:]
        target = document.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"config: section {section} must be a mapping")
        target[key] = FromEnvironment(raw)


def build(document: dict, environ: Mapping[str, str] | None = None) -> Config:
    for key in document:
        if key not in SECTIONS:
            raise ConfigError(f"config: unknown section {key!r} (known: {', '.join(SECTIONS)})")
    server = _build_section(ServerSettings, document.get("server"), "server")
    log = _build_section(LogSettings, document.get("log"), "log")
    if log.level not in LOG_LEVELS:
        raise ConfigError(f"config: log.level must be one of {', '.join(LOG_LEVELS)}")
    if log.format not in ("text", "json"):
        raise ConfigError("config: log.format must be text or json")
    _check_server(server)
    try:
        auth_settings = auth.parse_settings(_typed_auth(document.get("auth")), environ or {})
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from None
    if not auth_settings.enabled and not is_loopback(server.host):
        raise ConfigError(
            f"config: refusing to serve {server.host} without authentication; set "
            f"{auth.ENV_TOKEN}, {auth.ENV_ACCESS_KEY} with {auth.ENV_SECRET_KEY}, or an auth "
            "section, or auth.anonymous: write to serve openly on purpose")
    tls = _build_section(TlsSettings, document.get("tls"), "tls")
    if bool(tls.cert) != bool(tls.key):
        raise ConfigError("config: tls.cert and tls.key go together")
    for name in ("cert", "key"):
        value = getattr(tls, name)
        if value and not os.path.isfile(value):
            raise ConfigError(f"config: tls.{name}: no such file {value}")
    cors = _build_section(CorsSettings, document.get("cors"), "cors")
    try:
        cors.validate()
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from None
    s3 = _build_section(S3Settings, document.get("s3"), "s3")
    try:
        s3.validate()
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from None
    storage = _build_storage(document.get("storage"))
    if storage.driver == "memory":
        if server.workers not in (None, 1):
            raise ConfigError("config: server.workers must be 1 with the memory driver "
                              "(each process would hold different objects)")
        server = dataclasses.replace(server, workers=1)
    return Config(server=server, storage=storage, log=log, auth=auth_settings, tls=tls,
                  cors=cors, s3=s3)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _check_server(server: ServerSettings) -> None:
    if not 0 <= server.port <= 65535:
        raise ConfigError("config: server.port must be between 0 and 65535")
    if server.max_threads < server.threads:
        raise ConfigError("config: server.max_threads must be at least server.threads")
    for name in ("threads", "chunk_size", "max_connections", "listen_backlog"):
        if getattr(server, name) < 1:
            raise ConfigError(f"config: server.{name} must be at least 1")
    for name in ("socket_timeout", "shutdown_timeout", "header_timeout"):
        if getattr(server, name) <= 0:
            raise ConfigError(f"config: server.{name} must be positive")
    if server.workers is not None and server.workers < 1:
        raise ConfigError("config: server.workers must be at least 1 (or null: one per CPU)")
    if server.max_object_size is not None and server.max_object_size < 0:
        raise ConfigError("config: server.max_object_size must not be negative")
    if server.public_url is not None:
        problem = public_url_problem(server.public_url)
        if problem:
            raise ConfigError(f"config: server.public_url {problem}")


def public_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the base of the service's links (None: it can).

    Paths are appended to it, so a query or fragment would swallow them.
    """
    if any(char.isspace() or not char.isprintable() for char in url):
        return f"must not contain spaces or control characters, not {url!r}"
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is no number
    except ValueError:
        return f"has an invalid port: {url!r}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http:// or https:// URL with a host, not {url!r}"
    if "?" in url or "#" in url:
        return f"must not have a query or fragment, not {url!r}"
    return None


def _build_storage(section: Any) -> StorageSettings:
    section = dict(_mapping(section, "storage"))
    driver = section.pop("driver", DEFAULT_DRIVER)
    if driver not in DRIVER_NAMES:
        raise ConfigError(f"config: storage.driver must be one of {', '.join(DRIVER_NAMES)}, not {driver!r}")
    if driver == "filesystem" and not section:
        section = {"root": DEFAULT_ROOT}
    try:
        settings_class = load_driver_class(driver).settings_class
    except ImportError as exc:
        raise ConfigError(f"config: storage.driver {driver} needs a missing library: {exc}") from None
    expected = field_types(settings_class)
    params = {key: _typed(value, expected[key])
              if isinstance(value, FromEnvironment) and key in expected else value
              for key, value in section.items()}
    try:  # types and ranges, so check-config catches them too
        settings = build_settings(settings_class, params, driver)
    except ValueError as exc:
        raise ConfigError(f"config: {_one_line(exc)}") from None
    return StorageSettings(driver=driver, settings=settings)


def _build_section(cls: type, section: Any, name: str) -> Any:
    section = _mapping(section, name)
    expected = field_types(cls)
    values = {}
    for key, value in section.items():
        if key not in expected:
            raise ConfigError(f"config: unknown key {name}.{key}")
        values[key] = _check_type(value, expected[key], f"{name}.{key}")
    return cls(**values)


def _typed_auth(section: Any) -> Any:
    """The auth section with its scalar settings from the environment typed
    as AuthSettings declares them (users and tokens stay text)."""
    if not isinstance(section, dict):
        return section
    scalars = {name: types for name, types in field_types(auth.AuthSettings).items()
               if set(types) <= SCALAR_TYPES}
    return {key: _check_type(value, scalars[key], f"auth.{key}")
            if isinstance(value, FromEnvironment) and key in scalars else value
            for key, value in section.items()}


def _check_type(value: Any, expected: tuple[type, ...], where: str) -> Any:
    if isinstance(value, FromEnvironment):
        value = _typed(value, expected)
    try:
        return check_type(value, expected, where)
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from None


def _mapping(section: Any, name: str) -> dict:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"config: section {name} must be a mapping")
    return section


def _typed(text: str, expected: tuple[type, ...]) -> Any:
    """Text from the environment as the type its setting declares, read
    literally; left as text when it is not one (the type check names the key)."""
    if type(None) in expected and text in _NULLS:
        return None
    if str in expected:
        return str(text)
    if bool in expected and text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    if int in expected and _INTEGER.fullmatch(text):
        return int(text)
    if float in expected and _FLOAT.fullmatch(text):
        return float(text)
    return str(text)


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())

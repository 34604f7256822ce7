"""Command line: ``blobsvc serve``, ``check-config``, ``hash-secret`` and ``sign``,
and the client commands of :mod:`blobsvc.clientcli` (``ls``, ``get``, ``put``...).

Every refusal is one line on stderr and exit status 2, never a traceback:
the person reading it is setting the service up, not debugging it.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import ssl
import sys
import tempfile
import time
from typing import Iterator
from urllib.parse import quote

from blobsvc import __version__, clientcli
from blobsvc.config import Config, ConfigError, load, public_url_problem
from blobsvc.storage import DRIVER_NAMES
from blobsvc.storage.errors import StorageError

EXIT_CONFIG_ERROR = 2
#: What a shell reports for a command stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130
#: The service reads at most 12 digits of a signed URL's ``expires``.
MAX_EXPIRES = 10**12 - 1

#: serve/check-config flag -> the variable it stands for: a flag is applied
#: exactly as that variable would be, only above it.
FLAG_VARIABLES = {
    "host": "BLOBSVC_SERVER_HOST",
    "port": "BLOBSVC_SERVER_PORT",
    "driver": "BLOBSVC_STORAGE_DRIVER",
    "root": "BLOBSVC_STORAGE_ROOT",
}

SERVE_EPILOG = """\
settings, highest precedence first: flag > BLOBSVC_* variable > file > default.

Any single setting can come from the environment as BLOBSVC_<SECTION>_<KEY>
(the key as in the file, upper case), so a container needs no file:

  BLOBSVC_SERVER_PORT=9000 blobsvc serve
  BLOBSVC_STORAGE_ROOT=/srv/blobs BLOBSVC_LOG_FORMAT=json blobsvc serve -c blobsvc.yaml

Users and tokens come from the file; BLOBSVC_TOKEN adds one write token,
which is enough to listen beyond the loopback address.
"""


SIGN_EPILOG = """\
the signing key: auth.signing_key of -c FILE; without -c, BLOBSVC_SIGNING_KEY,
else the embedded config with the BLOBSVC_* variables (BLOBSVC_AUTH_SIGNING_KEY).
the URL's start: --base-url (or --url), else that of a URL given as the path,
else with -c server.public_url or the listening address; without -c,
BLOBSVC_URL, else the same from the embedded config (http://127.0.0.1:8080).
"""


class CommandError(Exception):
    """A refusal, worded for the one line the command prints."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (CommandError, ConfigError) as exc:
        print(f"blobsvc: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except KeyboardInterrupt:
        print(file=sys.stderr)  # end the line the prompt or the typing left open
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    if args.command in clientcli.COMMANDS:
        return clientcli.run(args)
    if args.command == "hash-secret":
        return _hash_secret(args.token)
    config = load(args.config, _environment(args))
    if args.command == "check-config":
        return _check_config(config)
    if args.command == "sign":
        return _sign(config, args)
    return _serve(config)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blobsvc", description="HTTP blob storage service: "
                                     "the server, and a client of a running one")
    parser.add_argument("--version", action="version", version=f"blobsvc {__version__}")
    clientcli.add_client_options(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the service", epilog=SERVE_EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("-c", "--config", help="YAML config file (default: the embedded one, "
                       "filesystem under ./data on 127.0.0.1:8080)")
    _add_setting_flags(serve)
    check = commands.add_parser("check-config", help="validate the settings serve would run with, "
                                "print a summary and exit", epilog=SERVE_EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("-c", "--config", help="YAML config file (default: the embedded one, "
                       "with the BLOBSVC_* variables applied as serve would)")
    _add_setting_flags(check)
    hash_secret = commands.add_parser("hash-secret", help="read a password or token on stdin "
                                      "(asked twice on a terminal), print its hash for the config")
    hash_secret.add_argument("--token", action="store_true",
                             help="hash a Bearer token (all token hashes share one salt, so that "
                             "an unknown token costs one check, not one per token)")
    sign = commands.add_parser("sign", help="print a time-limited URL for one GET or PUT of a path",
                               epilog=SIGN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sign.add_argument("-c", "--config", help="YAML config file with auth.signing_key")
    sign.add_argument("--method", choices=("GET", "PUT"), default="GET",
                      help="what the URL allows (default: %(default)s)")
    sign.add_argument("--expires-in", "--expires", type=int, default=3600, metavar="SECONDS",
                      help="how long the URL stays valid (default: %(default)s)")
    sign.add_argument("--base-url", help="where clients reach the service, e.g. "
                      "https://blobs.example.com (default: server.public_url, else "
                      "http(s)://HOST:PORT from the config)")
    sign.add_argument("--url", default=argparse.SUPPRESS,
                      help="the same as --base-url, as the client commands spell it")
    sign.add_argument("path", help="object path, e.g. builds/app.tar.gz, or its URL")
    clientcli.add_commands(commands)
    return parser


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """The settings a first run most often changes, as flags above the file and environment."""
    parser.add_argument("--host", help="server.host: address to listen on")
    parser.add_argument("--port", type=int, help="server.port: TCP port (0: any free one)")
    parser.add_argument("--driver", choices=DRIVER_NAMES, help="storage.driver")
    parser.add_argument("--root", help="storage.root: where the filesystem driver keeps objects")


def _environment(args: argparse.Namespace) -> dict[str, str]:
    """The process environment with the flags given set as their BLOBSVC_*
    variables, so they override both the variables and the file, and are
    checked and reported like them."""
    environ = dict(os.environ)
    for flag, variable in FLAG_VARIABLES.items():
        value = getattr(args, flag, None)
        if value is not None:
            environ[variable] = str(value)
    return environ


@contextlib.contextmanager
def _shared_metrics_dir(workers: int) -> Iterator[None]:
    """Worker processes pool their metrics in files: set that up before
    prometheus-client is imported, and remove the files at exit."""
    if workers == 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="blobsvc-metrics-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        yield


# -- check-config and serve ------------------------------------------------------


def _check_config(config: Config) -> int:
    """Say in one line what serve would run, without touching storage."""
    from blobsvc.server import describe

    _check_root_setting(config)
    scheme = "https" if config.tls.enabled else "http"
    server = config.server
    print("config OK: would serve " + describe(config, scheme, server.host, server.port,
                                               server.effective_workers))
    return 0


def _serve(config: Config) -> int:
    _check_storage(config)
    _check_tls(config)
    with _shared_metrics_dir(config.server.effective_workers):
        from blobsvc.server import serve

        try:
            return serve(config)
        except OSError as exc:  # e.g. the port is taken: not the config's fault
            print(f"blobsvc: cannot start: {exc}", file=sys.stderr)
            return 1
        except (ValueError, StorageError) as exc:  # a driver refusing its settings
            raise CommandError(f"cannot start the {config.storage.driver} driver: {exc}") from None


def _check_root_setting(config: Config) -> None:
    """What can be said of storage.root from the text alone."""
    if config.storage.driver == "filesystem" and "\0" in config.storage.params["root"]:
        raise CommandError("storage.root must not contain a NUL character")


def _check_storage(config: Config) -> None:
    """Refuse a filesystem root this process cannot use, naming it, before
    any worker starts: the driver would fail on it with a bare OS error."""
    _check_root_setting(config)
    if config.storage.driver != "filesystem":
        return
    root = os.path.realpath(config.storage.params["root"])  # as the driver resolves it
    existing = root
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = "is not a directory" if existing == root else f"is below {existing}, which is not a directory"
        raise CommandError(f"storage.root {root} {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == root else f" (it would be created in {existing})"
        raise CommandError(f"storage.root {root} is not writable by this user{where}")


def _check_tls(config: Config) -> None:
    """Load the certificate and key as the server will, to name them when they fail."""
    tls = config.tls
    if not tls.enabled:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(tls.cert, tls.key, password=_no_passphrase)
    except _PassphraseNeeded:
        return  # the server asks for it, as before
    except ssl.SSLError as exc:
        raise CommandError(f"tls.cert {tls.cert} and tls.key {tls.key} are not a PEM certificate "
                           f"chain and its private key ({exc.reason or exc})") from None
    except OSError as exc:
        raise CommandError(f"tls: cannot read {exc.filename or tls.cert}: {exc.strerror}") from None


class _PassphraseNeeded(Exception):
    pass


def _no_passphrase() -> str:
    raise _PassphraseNeeded


# -- hash-secret -----------------------------------------------------------------


def _hash_secret(token: bool) -> int:
    """Hash a secret read from stdin (a prompt on a terminal), never argv."""
    from blobsvc.auth import MIN_TOKEN_LENGTH
    from blobsvc.secrets import hash_secret, hash_token

    secret = _prompt_twice() if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if not secret:
        raise CommandError("no secret given")
    if token and len(secret) < MIN_TOKEN_LENGTH:  # the config cannot see it once hashed
        raise CommandError(f"a token needs at least {MIN_TOKEN_LENGTH} characters")
    print(hash_token(secret) if token else hash_secret(secret))
    return 0


def _prompt_twice() -> str:
    """The secret typed twice without echo: a typo would otherwise be hashed
    unseen and only found when the credential is refused."""
    import getpass

    try:
        secret = getpass.getpass("secret: ")
        if secret and getpass.getpass("secret again: ") != secret:
            raise CommandError("the two entries differ; nothing was hashed")
    except EOFError:  # Ctrl-D
        print(file=sys.stderr)
        raise CommandError("no secret given (end of input)") from None
    return secret


# -- sign ----------------------------------------------------------------------------


def _sign(config: Config, args: argparse.Namespace) -> int:
    from blobsvc.auth import signed_query
    from blobsvc.clientcli.exits import UsageError
    from blobsvc.clientcli.target import Target, resolve
    from blobsvc.storage.errors import InvalidPath
    from blobsvc.storage.paths import validate_path

    key = config.auth.signing_key if args.config else \
        os.environ.get("BLOBSVC_SIGNING_KEY") or config.auth.signing_key
    if not key:
        raise CommandError("no signing key: the config has no auth.signing_key"
                           + ("" if args.config else " and BLOBSVC_SIGNING_KEY is not set"))
    try:
        target = resolve(args.path, args) if "://" in args.path else Target("", args.path)
        path = validate_path(target.path)
    except InvalidPath as exc:
        raise CommandError(exc.message) from None
    except UsageError as exc:
        raise CommandError(str(exc)) from None
    expires = _expiry(args.expires_in)
    base = _base_url(config, args.base_url or getattr(args, "url", None)
                     or (target.base if target.explicit else None)
                     or (None if args.config else os.environ.get("BLOBSVC_URL")))
    print(f"{base.rstrip('/')}/v1/objects/{quote(path)}?{signed_query(key, args.method, path, expires)}")
    return 0


def _expiry(expires_in: int) -> int:
    """The Unix time a URL valid for ``expires_in`` seconds expires: refused
    when the URL would be dead on arrival or beyond what the service reads."""
    if expires_in < 1:
        raise CommandError(f"--expires-in must be at least 1 second, not {expires_in}")
    expires = int(time.time()) + expires_in
    if expires > MAX_EXPIRES:
        raise CommandError(f"--expires-in {expires_in} is too far ahead: the service reads "
                           f"expiry times up to {MAX_EXPIRES}")
    return expires


def _base_url(config: Config, flag: str | None) -> str:
    """Where clients reach the service: --base-url, server.public_url, or the
    listening address when it is one a client can use."""
    if flag is not None:
        problem = public_url_problem(flag)
        if problem:
            raise CommandError(f"--base-url {problem}")
        return flag
    if config.server.public_url:
        return config.server.public_url
    host, port = config.server.host, config.server.port
    if _is_wildcard(host) or port == 0:
        setting = f"server.host {host!r} means every address" if _is_wildcard(host) else \
            "server.port 0 means a port chosen at start"
        raise CommandError(f"{setting}, which is no URL for clients: pass "
                           "--base-url https://HOST[:PORT] or set server.public_url")
    scheme = "https" if config.tls.enabled else "http"
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def _is_wildcard(host: str) -> bool:
    """0.0.0.0, :: and the empty host mean every address of the machine."""
    if not host:
        return True
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False

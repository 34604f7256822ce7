"""Command line: ``blobsvc serve`` and ``blobsvc check-config``."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from urllib.parse import quote

from blobsvc import __version__
from blobsvc.config import ConfigError, load

EXIT_CONFIG_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "hash-secret":
        return _hash_secret(args.token)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"blobsvc: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if args.command == "check-config":
        print(f"config OK: driver {config.storage.driver}, "
              f"listening on {config.server.host}:{config.server.port}")
        return 0
    if args.command == "sign":
        return _sign(config, args)
    with _shared_metrics_dir(config.server.effective_workers):
        from blobsvc.server import serve

        try:
            return serve(config)
        except OSError as exc:
            print(f"blobsvc: cannot start: {exc}", file=sys.stderr)
            return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blobsvc", description="HTTP blob storage service")
    parser.add_argument("--version", action="version", version=f"blobsvc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("-c", "--config", help="YAML config file (default: the embedded one, "
                       "filesystem under ./data on 127.0.0.1:8080)")
    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("-c", "--config", required=True, help="YAML config file")
    hash_secret = commands.add_parser("hash-secret", help="read a password or token on stdin, "
                                      "print its hash for the config")
    hash_secret.add_argument("--token", action="store_true",
                             help="hash a Bearer token (all token hashes share one salt, so that "
                             "an unknown token costs one check, not one per token)")
    sign = commands.add_parser("sign", help="print a time-limited URL for one GET or PUT of a path")
    sign.add_argument("-c", "--config", help="YAML config file with auth.signing_key")
    sign.add_argument("--method", choices=("GET", "PUT"), default="GET")
    sign.add_argument("--expires-in", type=int, default=3600, metavar="SECONDS")
    sign.add_argument("--base-url", help="default: http://HOST:PORT from the config")
    sign.add_argument("path", help="object path, e.g. builds/app.tar.gz")
    return parser


@contextlib.contextmanager
def _shared_metrics_dir(workers: int):
    """Worker processes pool their metrics in files: set that up before
    prometheus-client is imported, and remove the files at exit."""
    if workers == 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="blobsvc-metrics-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        yield


def _hash_secret(token: bool) -> int:
    """Hash a secret read from stdin (a prompt on a terminal), never argv."""
    from blobsvc.auth import MIN_TOKEN_LENGTH
    from blobsvc.secrets import hash_secret, hash_token

    if sys.stdin.isatty():
        import getpass

        secret = getpass.getpass("secret: ")
    else:
        secret = sys.stdin.readline().rstrip("\n")
    if not secret:
        print("blobsvc: no secret given", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if token and len(secret) < MIN_TOKEN_LENGTH:  # the config cannot see it once hashed
        print(f"blobsvc: a token needs at least {MIN_TOKEN_LENGTH} characters", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(hash_token(secret) if token else hash_secret(secret))
    return 0


def _sign(config, args) -> int:
    from blobsvc.auth import signed_query
    from blobsvc.storage.errors import InvalidPath
    from blobsvc.storage.paths import validate_path

    key = config.auth.signing_key
    if not key:
        print("blobsvc: the config has no auth.signing_key", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    try:
        path = validate_path(args.path)
    except InvalidPath as exc:
        print(f"blobsvc: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    base = args.base_url or f"http://{config.server.host}:{config.server.port}"
    expires = int(time.time()) + args.expires_in
    print(f"{base.rstrip('/')}/v1/objects/{quote(path)}?{signed_query(key, args.method, path, expires)}")
    return 0

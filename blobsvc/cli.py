"""Command line: ``blobsvc serve`` and ``blobsvc check-config``."""

from __future__ import annotations

import argparse
import sys

from blobsvc import __version__
from blobsvc.config import ConfigError, load

EXIT_CONFIG_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"blobsvc: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if args.command == "check-config":
        print(f"config OK: driver {config.storage.driver}, "
              f"listening on {config.server.host}:{config.server.port}")
        return 0
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
    return parser

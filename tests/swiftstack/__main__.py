"""Developer CLI: run the test Swift in the foreground.

    python -m tests.swiftstack up DIR

Prints the auth URL, user and key, then serves until Ctrl-C (or SIGTERM).
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from . import SwiftStack, SwiftUnavailable


def _parse(argv: list[str]) -> argparse.Namespace:
    """Command line: one verb, 'up', with the data directory."""
    parser = argparse.ArgumentParser(prog="python -m tests.swiftstack")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Swift in DIR, stop on Ctrl-C")
    up.add_argument("dir", help="data directory (created if missing)")
    up.add_argument("--timeout", type=float, default=60.0,
                    help="seconds to wait for readiness (default 60)")
    return parser.parse_args(argv)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """Treat SIGTERM like Ctrl-C so the servers get stopped."""
    raise KeyboardInterrupt


def up(data_dir: str, timeout: float) -> int:
    """Start, print connection details, wait for Ctrl-C, stop."""
    stack = SwiftStack(data_dir)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    started = time.monotonic()
    try:
        stack.start(timeout=timeout)
        print(f"Swift ready in {time.monotonic() - started:.2f}s",
              f"auth_url: {stack.auth_url}",
              f"user:     {stack.user}",
              f"key:      {stack.key}",
              f"logs:     {stack.data_dir / 'log'}",
              f"pids:     {stack.pids}",
              "Ctrl-C to stop.", sep="\n", flush=True)
        while True:
            time.sleep(3600)
    except SwiftUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping", flush=True)
        return 0
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    return up(args.dir, args.timeout)


if __name__ == "__main__":
    sys.exit(main())

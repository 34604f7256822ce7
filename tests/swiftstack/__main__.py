"""Developer CLI: run the test Swift in the foreground, to try blobsvc on.

    python3 -m tests.swiftstack up DIR [--proxy-port PORT]

Run it from the repository's root: it needs Python 3.10+ and memcached, and
nothing else installed. The first run installs Swift into the same cached
virtualenv the test fixture uses. It prints the settings for
config/swift.yaml, then serves until Ctrl-C (or SIGTERM), and stops every
server it started.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from . import (
    LOCAL_PROXY_PORT,
    SWIFT_VERSION,
    SwiftStack,
    SwiftUnavailable,
    ensure_installed,
    is_installed,
    venv_dir,
)


def parse(argv: list[str]) -> argparse.Namespace:
    """Command line: one verb, 'up', with the data directory."""
    parser = argparse.ArgumentParser(prog="python3 -m tests.swiftstack")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Swift in DIR, stop on Ctrl-C")
    up.add_argument("dir", help="data directory (created if missing; reused "
                                "with its objects next time)")
    up.add_argument("--proxy-port", type=int, default=LOCAL_PROXY_PORT,
                    metavar="PORT",
                    help=f"port of the auth URL (default {LOCAL_PROXY_PORT}, "
                         f"as a stock all-in-one Swift; 0: any free port)")
    up.add_argument("--timeout", type=float, default=60.0,
                    help="seconds to wait for readiness (default 60)")
    return parser.parse_args(argv)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """Treat SIGTERM like Ctrl-C so the servers get stopped.

    Installed for SIGINT too: a shell starts a background job (``&``) with
    SIGINT ignored, and Python would keep ignoring it.
    """
    raise KeyboardInterrupt


def _install() -> None:
    """Install Swift, saying so first: a first run is silent for a while."""
    if not is_installed():
        print(f"installing Swift {SWIFT_VERSION} into {venv_dir()} "
              f"(first run only; pip needs to reach PyPI)", flush=True)
    ensure_installed()


def _print_ready(stack: SwiftStack, seconds: float) -> None:
    """The settings for config/swift.yaml, ready to paste, and the PIDs."""
    pids = " ".join(f"{name}={pid}" for name, pid in stack.pids.items())
    print(f"Swift {SWIFT_VERSION} ready in {seconds:.2f}s: proxy on "
          f"127.0.0.1:{stack.proxy_port}; data and logs under {stack.data_dir}",
          "For blobsvc, in another shell at the repository's root:",
          f"    export SWIFT_AUTH_URL={stack.auth_url} SWIFT_USER={stack.user} "
          f"SWIFT_KEY={stack.key}",
          "    blobsvc serve -c config/swift.yaml",
          f"pids: {pids}",
          "Ctrl-C (or SIGTERM to this command) stops them all.",
          sep="\n", flush=True)


def _explain(exc: SwiftUnavailable, proxy_port: int) -> None:
    """The error, and the way out when the proxy's port is taken."""
    print(f"error: {exc}", file=sys.stderr)
    if f"127.0.0.1:{proxy_port} (for proxy)" in str(exc):
        print("hint: --proxy-port 0 picks a free port (then set SWIFT_AUTH_URL "
              "as printed)", file=sys.stderr)


def up(data_dir: str, timeout: float, proxy_port: int = LOCAL_PROXY_PORT) -> int:
    """Start, print connection details, wait for Ctrl-C, stop."""
    stack = SwiftStack(data_dir, proxy_port=proxy_port)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_interrupt)
    code = 0
    try:
        _install()
        started = time.monotonic()
        stack.start(timeout=timeout)
        _print_ready(stack, time.monotonic() - started)
        while True:
            time.sleep(3600)
    except SwiftUnavailable as exc:
        _explain(exc, proxy_port)
        code = 1
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        stack.stop()
    print("stopped", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse(sys.argv[1:] if argv is None else argv)
    return up(args.dir, args.timeout, args.proxy_port)


if __name__ == "__main__":
    sys.exit(main())

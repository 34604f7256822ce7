"""A real all-in-one OpenStack Swift on 127.0.0.1, for tests.

Swift itself lives in a cached virtualenv (``ensure_installed``) so the test
process needs nothing but the standard library; memcached comes from the OS
package (Debian's ``memcached``). ``SwiftStack`` runs five processes on free
loopback ports: memcached plus the account, container, object and proxy
servers, each with ``workers = 0`` so there is exactly one PID per server.

    stack = SwiftStack(tmp_path)
    stack.start()
    conn = swiftclient.client.Connection(authurl=stack.auth_url,
                                         user=stack.user, key=stack.key,
                                         auth_version="1", retries=0)
    ...
    stack.stop()

For copies, quorum and healing, ``tests/swiftstack/cluster.py`` runs three
nodes with three replicas and Swift's daemons on the same parts.

Tests should get a stack through ``start_stack_or_skip`` (or at least call
``require_swift_or_skip``) so that a machine without memcached skips loudly,
while CI (environment variable ``CI`` set) fails instead.

Metadata: the stack's ``[swift-constraints]`` are raised past Swift's
defaults so that everything blobsvc accepts (8 KiB of user metadata,
stored headers of 4 KiB) can be stored (:data:`CONSTRAINTS`). Swift keeps
an object's metadata in extended attributes of its file, and ext4 holds at
most one block of them per file; so when the data directory's filesystem
cannot hold :data:`XATTR_ROOM`, the device lives in shared memory (a tmpfs
holds user xattrs since Linux 6.6) and ``node`` links to it; such a device
goes with ``stack.discard()``, or once its data directory is gone.

Expiry: ``stack.run_expirer()`` runs Swift's object-expirer once (the
same Swift, a one-shot ``swift.obj.expirer`` with its internal client):
objects past their ``X-Delete-At`` are deleted when it returns, as a
cluster's expirer daemon would delete them within its interval.
"""
from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Mapping, Sequence, TypeVar

__all__ = [
    "ACCOUNT", "CONSTRAINTS", "HASH_PATH_PREFIX", "HASH_PATH_SUFFIX", "KEY",
    "LOCAL_PROXY_PORT", "PINNED_PACKAGES", "SERVERS", "SWIFT_VERSION",
    "USER", "XATTR_ROOM",
    "SwiftStack", "SwiftSkippedWarning", "SwiftUnavailable", "ci_mode",
    "ensure_installed", "free_ports", "is_installed", "memcached_path", "pid_alive",
    "port_is_free", "program_path", "require_swift_or_skip", "start_or_skip", "start_stack_or_skip",
    "venv_dir",
]

SWIFT_VERSION = "2.38.3"
PINNED_PACKAGES = (
    f"swift=={SWIFT_VERSION}",
    "eventlet==0.41.3",
    "greenlet==3.5.6",
    "PasteDeploy==3.1.0",
    "pyeclib==1.8.0",
    "lxml==6.1.3",
    "xattr==1.3.0",
    "cryptography==50.0.2",
    "requests==2.34.2",
)
USER = "test:tester"
KEY = "testing"
#: The account tempauth gives USER.
ACCOUNT = f"AUTH_{USER.partition(':')[0]}"
#: swift.conf's hash salts (test data only): with them a test can compute
#: where Swift keeps an object on disk.
HASH_PATH_PREFIX = "blobsvc-test-prefix"
HASH_PATH_SUFFIX = "blobsvc-test-suffix"
#: Where a stock all-in-one Swift serves its proxy; ``python -m tests.swiftstack
#: up`` uses it too, so config/swift.yaml's defaults reach either unchanged.
LOCAL_PROXY_PORT = 8080
SERVERS = ("memcached", "account", "container", "object", "proxy")
STORAGE_SERVERS = ("account", "container", "object")

INSTALL_TIMEOUT = 900.0   # venv + pip, cold, on a slow mirror
STOP_GRACE = 5.0          # SIGTERM -> SIGKILL
PROBE_TIMEOUT = 1.0       # one readiness request
PROBE_INTERVAL = 0.05
LOG_TAIL_BYTES = 3000
# Swift always adds a syslog handler; point it at the loopback discard port
# so nothing reaches a real syslog daemon (unanswered UDP is simply dropped).
SYSLOG_UDP_PORT = 9
LAUNCHER = Path(__file__).with_name("launcher.py")
_MARKER = ".blobsvc-installed"
#: Extended attributes one object file must be able to hold: the metadata
#: the raised constraints allow, pickled, with room to spare.
XATTR_ROOM = 64 * 1024
#: Where devices go when the data directory's filesystem holds too little.
SHARED_MEMORY = Path("/dev/shm")
_SHARED_PREFIX = "blobsvc-swift-"
#: A device in shared memory younger than this is never collected: its
#: stack may still be linking it.
_SHARED_MIN_AGE = 600.0


StackT = TypeVar("StackT", bound="SwiftStack")


class SwiftUnavailable(Exception):
    """Swift could not be installed or started; the message says why."""


class SwiftSkippedWarning(UserWarning):
    """Emitted next to a skip so the skip shows in pytest's warnings summary."""


# --------------------------------------------------------------------------
# installation


def venv_dir() -> Path:
    """Where the Swift virtualenv lives: outside any test's temp dir, reused.

    Base directory: $BLOBSVC_SWIFT_VENV, else $XDG_CACHE_HOME, else ~/.cache.
    """
    base = (os.environ.get("BLOBSVC_SWIFT_VENV")
            or os.environ.get("XDG_CACHE_HOME")
            or os.path.join(os.path.expanduser("~"), ".cache"))
    return Path(base) / "blobsvc-test-swift" / f"venv-{SWIFT_VERSION}"


def _venv_python(venv: Path) -> Path:
    """The interpreter inside a virtualenv."""
    return venv / "bin" / "python"


def _marker_text() -> str:
    """Marker content: a changed pin list forces a rebuild."""
    return "\n".join(PINNED_PACKAGES) + "\n"


def _is_installed(venv: Path) -> bool:
    """True if a previous install finished and its interpreter still exists.

    The symlinked interpreter dangles when the base Python was removed, so the
    existence check catches a venv that would no longer run.
    """
    try:
        marker = (venv / _MARKER).read_text()
    except OSError:
        return False
    return marker == _marker_text() and _venv_python(venv).exists()


def _child_env(**extra: str) -> dict[str, str]:
    """Environment for helper processes, without Python path overrides."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def _tail(path: Path, max_bytes: int = LOG_TAIL_BYTES) -> str:
    """Last part of a log file, for error messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            return f.read().decode("utf-8", "replace").rstrip()
    except OSError as exc:
        return f"(no log: {exc})"


def _run_logged(cmd: list[str], log_path: Path, timeout: float,
                what: str) -> None:
    """Run a command with output appended to a log; raise with its tail."""
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        try:
            rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=_child_env(),
                                timeout=timeout, close_fds=True).returncode
        except subprocess.TimeoutExpired:
            raise SwiftUnavailable(
                f"{what} timed out after {timeout:.0f}s; tail of {log_path}:"
                f"\n{_tail(log_path)}") from None
        except OSError as exc:
            raise SwiftUnavailable(f"{what} could not run: {exc}") from None
    if rc != 0:
        tail = _tail(log_path)
        hint = ""
        if "ensurepip" in tail:
            hint = " (install Debian's python3-venv)"
        raise SwiftUnavailable(f"{what} failed with exit {rc}{hint}; "
                               f"tail of {log_path}:\n{tail}")


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    """Exclusive flock so concurrent test processes install only once."""
    with open(path, "a") as f:  # opened non-inheritable: children never hold it
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SwiftUnavailable(
                        f"timed out after {timeout:.0f}s waiting for another "
                        f"process holding {path}") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _install(venv: Path) -> None:
    """Build the venv from scratch; the marker is written last."""
    log_path = venv.parent / f"{venv.name}-install.log"
    log_path.write_bytes(b"")
    shutil.rmtree(venv, ignore_errors=True)
    _run_logged([sys.executable, "-m", "venv", str(venv)], log_path,
                INSTALL_TIMEOUT, "creating the Swift virtualenv")
    _run_logged([str(_venv_python(venv)), "-m", "pip", "install",
                 "--disable-pip-version-check", "--no-input",
                 *PINNED_PACKAGES],
                log_path, INSTALL_TIMEOUT, "pip install of Swift")
    tmp = venv / f"{_MARKER}.tmp"
    tmp.write_text(_marker_text())
    os.replace(tmp, venv / _MARKER)


def is_installed() -> bool:
    """True when the pinned Swift virtualenv is ready: no install to wait for."""
    return _is_installed(venv_dir())


_installed_python: str | None = None


def ensure_installed() -> str:
    """Install the pinned Swift virtualenv if needed; return its python.

    Cached per process; a file lock serialises concurrent installers, and a
    venv without the marker (an interrupted install) is rebuilt.
    """
    global _installed_python
    if _installed_python is not None:
        return _installed_python
    venv = venv_dir()
    if not _is_installed(venv):
        try:
            venv.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SwiftUnavailable(f"cannot create {venv.parent}: {exc}") \
                from None
        with _file_lock(venv.parent / f"{venv.name}.lock", INSTALL_TIMEOUT):
            if not _is_installed(venv):
                _install(venv)
    _installed_python = str(_venv_python(venv))
    return _installed_python


def program_path(name: str, needed_for: str = "") -> str:
    """A program that Debian's package of the same name installs, or
    SwiftUnavailable saying how to get it (and, if given, what needs it)."""
    path = shutil.which(name)
    if path is None:
        raise SwiftUnavailable(
            f"{name} not found on PATH: install Debian's {name} "
            f"(apt-get install {name}){needed_for}")
    return path


def memcached_path() -> str:
    """The memcached binary, or SwiftUnavailable saying how to get it."""
    return program_path("memcached")


# --------------------------------------------------------------------------
# skip-or-fail policy for pytest


def ci_mode() -> bool:
    """True when the environment variable CI is set (to anything but a no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false",
                                                            "no")


def _skip_or_fail(reason: str) -> None:
    """Skip loudly on a developer machine; fail under CI."""
    import pytest

    message = f"Swift test backend unavailable: {reason}"
    if ci_mode():
        pytest.fail(f"{message}\n(CI is set, so this is a failure, not a "
                    f"skip)", pytrace=False)
    with warnings.catch_warnings():
        # shown in the summary, never turned into an error by -W error
        warnings.simplefilter("always", SwiftSkippedWarning)
        warnings.warn(message, SwiftSkippedWarning, stacklevel=3)
    pytest.skip(f"{message}\n(set CI=1 to turn this skip into a failure)")


def require_swift_or_skip() -> str:
    """Make sure Swift can run here, else skip (or fail under CI).

    Returns the Swift virtualenv's python.
    """
    try:
        memcached_path()
        return ensure_installed()
    except SwiftUnavailable as exc:
        _skip_or_fail(str(exc))
        raise  # not reached: skip/fail raise


def start_stack_or_skip(data_dir: str | os.PathLike[str],
                        timeout: float = 60.0) -> SwiftStack:
    """Start a SwiftStack in data_dir under the skip-or-fail policy."""
    return start_or_skip(SwiftStack(data_dir), timeout)


def start_or_skip(stack: StackT, timeout: float = 60.0) -> StackT:
    """Start any kind of stack under the skip-or-fail policy."""
    require_swift_or_skip()
    try:
        stack.start(timeout=timeout)
    except SwiftUnavailable as exc:
        _skip_or_fail(str(exc))
    return stack


# --------------------------------------------------------------------------
# ports and processes


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports, picked by the kernel (bind to port 0)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def port_is_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:port.

    Binds without SO_REUSEPORT: eventlet listens with it, so a probe that set
    it too would share the port with a running server instead of failing.
    SO_REUSEADDR only lets the probe ignore TIME_WAIT leftovers of a server
    just stopped on that port.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie (kill -0 succeeds on those)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    state = stat[stat.rfind(b")") + 2:][:1]
    return state not in (b"Z", b"X", b"")


def _xattr_room(directory: Path, size: int) -> bool:
    """Whether a file in ``directory`` holds ``size`` bytes of user xattrs,
    in Swift's pieces of 254 bytes."""
    probe = directory / ".xattr-room-probe"
    probe.write_bytes(b"")
    try:
        for index in range(0, size, 254):
            os.setxattr(probe, f"user.swiftstack.{index}", b"x" * 254)
        return True
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.E2BIG, errno.ERANGE, errno.ENOTSUP,
                         errno.EOPNOTSUPP):
            return False
        raise
    finally:
        probe.unlink()


def _collect_shared_devices() -> None:
    """Remove devices in shared memory whose data directory is gone (or
    no longer links to them): memory, not disk, so nobody else will."""
    try:
        candidates = list(SHARED_MEMORY.glob(f"{_SHARED_PREFIX}*"))
    except OSError:
        return
    for shared in candidates:
        try:
            if time.time() - shared.stat().st_mtime < _SHARED_MIN_AGE:
                continue
            owner = Path((shared / "owner").read_text()) / "node"
            if owner.is_symlink() and owner.resolve() == shared.resolve():
                continue
        except OSError:
            pass  # no owner file (an interrupted start) or no directory: collect
        shutil.rmtree(shared, ignore_errors=True)


def _device_root(data_dir: Path) -> Path:
    """``data_dir/node``, the devices' root: on the data directory's own
    filesystem when it holds :data:`XATTR_ROOM` of xattrs per file, else a
    link to a directory in shared memory (see the module docstring)."""
    node = data_dir / "node"
    if node.is_symlink():
        if (node / "d1").is_dir():
            return node
        node.unlink()  # shared memory was cleared (a reboot): start afresh
    (node / "d1").mkdir(parents=True, exist_ok=True)
    _check_xattrs(node / "d1")
    if (_xattr_room(node / "d1", XATTR_ROOM) or any((node / "d1").iterdir())
            or not SHARED_MEMORY.is_dir()):
        return node  # roomy enough, or holding data already, or nowhere else to go
    _collect_shared_devices()
    shared = Path(tempfile.mkdtemp(prefix=_SHARED_PREFIX, dir=SHARED_MEMORY))
    (shared / "owner").write_text(str(data_dir))
    (shared / "d1").mkdir()
    if not _xattr_room(shared / "d1", XATTR_ROOM):
        shutil.rmtree(shared, ignore_errors=True)
        return node
    shutil.rmtree(node)
    node.symlink_to(shared, target_is_directory=True)
    return node


def _check_xattrs(directory: Path) -> None:
    """Swift keeps object metadata in user.* xattrs; fail early without them."""
    probe = directory / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.swiftstack.probe", b"1")
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise SwiftUnavailable(
                f"{directory} does not support user xattrs (tmpfs before "
                f"Linux 6.6?): use a directory on a disk filesystem") from None
        raise
    finally:
        probe.unlink()


# --------------------------------------------------------------------------
# configuration text

#: swift.conf's [swift-constraints]: Swift's defaults, but for those bounding
#: an object's metadata, raised so that all blobsvc accepts can be stored:
#: 8 KiB of metadata in all or in one value, names of 128 bytes with every
#: ``_`` escaped (three bytes each), escapes in values, and header lines of
#: a full value (blobsvc's own operator guidance names the same ones).
CONSTRAINTS = {
    "max_file_size": 5368709122,
    "max_meta_name_length": 384,
    "max_meta_value_length": 8192,
    "max_meta_count": 8192,
    "max_meta_overall_size": 16384,
    "max_header_size": 16384,
    "max_object_name_length": 1024,
    "container_listing_limit": 10000,
    "account_listing_limit": 10000,
    "max_account_name_length": 256,
    "max_container_name_length": 256,
    "valid_api_versions": "v1,v1.0",
    "extra_header_count": 0,
}


def _swift_conf_text() -> str:
    """swift.conf: fixed hash salts (test data only), one policy, defaults."""
    constraints = "".join(f"{k} = {v}\n"
                          for k, v in CONSTRAINTS.items())
    return ("[swift-hash]\n"
            f"swift_hash_path_prefix = {HASH_PATH_PREFIX}\n"
            f"swift_hash_path_suffix = {HASH_PATH_SUFFIX}\n\n"
            "[storage-policy:0]\n"
            "name = Policy-0\n"
            "default = yes\n\n"
            "[swift-constraints]\n" + constraints)


def _expirer_conf_text(etc: Path, node: Path, run: Path, memcached_port: int,
                       user: str, interval: int = 300) -> str:
    """object-expirer.conf: the expirer, the internal client it deletes
    through (a proxy pipeline; in this legacy file name, one file holds
    both), and the container-updater that must run first: the expirer
    finds its queue's containers through the account's listing, which only
    the container-updater brings up to date. ``interval``: seconds between
    passes when they run as daemons (Swift's default)."""
    return ("[DEFAULT]\n"
            f"swift_dir = {etc}\n"
            f"user = {user}\n"
            "log_name = object-expirer\n"
            "log_udp_host = 127.0.0.1\n"
            f"log_udp_port = {SYSLOG_UDP_PORT}\n\n"
            "[object-expirer]\n"
            "concurrency = 1\n"
            f"interval = {interval}\n"
            f"recon_cache_path = {run}\n\n"
            "[container-updater]\n"
            f"devices = {node}\n"
            "mount_check = false\n"
            "concurrency = 1\n"
            f"interval = {interval}\n"
            f"recon_cache_path = {run}\n\n"
            "[pipeline:main]\n"
            "pipeline = catch_errors proxy-logging cache proxy-server\n\n"
            "[app:proxy-server]\n"
            "use = egg:swift#proxy\n\n"
            "[filter:cache]\n"
            "use = egg:swift#memcache\n"
            f"memcache_servers = 127.0.0.1:{memcached_port}\n\n"
            "[filter:catch_errors]\n"
            "use = egg:swift#catch_errors\n\n"
            "[filter:proxy-logging]\n"
            "use = egg:swift#proxy_logging\n")


def _default_section(name: str, port: int, etc: Path, user: str) -> str:
    """[DEFAULT] shared by the four servers."""
    return ("[DEFAULT]\n"
            "bind_ip = 127.0.0.1\n"
            f"bind_port = {port}\n"
            "workers = 0\n"
            f"user = {user}\n"
            f"swift_dir = {etc}\n"
            f"log_name = {name}-server\n"
            "log_udp_host = 127.0.0.1\n"
            f"log_udp_port = {SYSLOG_UDP_PORT}\n")


def _storage_conf_text(kind: str, port: int, etc: Path, node: Path,
                       user: str) -> str:
    """account/container/object server conf; mount_check off (no real mount)."""
    return (_default_section(kind, port, etc, user)
            + f"devices = {node}\n"
            "mount_check = false\n"
            "fallocate_reserve = 0\n\n"
            "[pipeline:main]\n"
            f"pipeline = healthcheck {kind}-server\n\n"
            f"[app:{kind}-server]\n"
            f"use = egg:swift#{kind}\n\n"
            "[filter:healthcheck]\n"
            "use = egg:swift#healthcheck\n")


_PROXY_PIPELINE = ("catch_errors gatekeeper healthcheck proxy-logging cache "
                   "listing_formats bulk tempauth copy slo dlo proxy-logging "
                   "proxy-server")
_PROXY_FILTERS = {
    "catch_errors": "catch_errors", "gatekeeper": "gatekeeper",
    "healthcheck": "healthcheck", "proxy-logging": "proxy_logging",
    "listing_formats": "listing_formats", "bulk": "bulk", "copy": "copy",
    "slo": "slo", "dlo": "dlo",
}


#: Seconds Swift's proxy keeps away from a backend (or memcached) that
#: failed ten times; Swift's default is 60. A test that brings a node back
#: waits this long before counting on it alone.
ERROR_SUPPRESSION_SECONDS = 1


def _proxy_conf_text(port: int, memcached_port: int, etc: Path,
                     user: str) -> str:
    """proxy conf with tempauth (tokens live in memcached).

    error_suppression_interval is short: tests that kill and restart
    servers want them usable again right away.
    """
    filters = "".join(f"\n[filter:{name}]\nuse = egg:swift#{egg}\n"
                      for name, egg in _PROXY_FILTERS.items())
    user_name, _, user_sub = USER.partition(":")
    return (_default_section("proxy", port, etc, user)
            + "\n[pipeline:main]\n"
            f"pipeline = {_PROXY_PIPELINE}\n\n"
            "[app:proxy-server]\n"
            "use = egg:swift#proxy\n"
            "account_autocreate = true\n"
            f"error_suppression_interval = {ERROR_SUPPRESSION_SECONDS}\n\n"
            "[filter:cache]\n"
            "use = egg:swift#memcache\n"
            f"memcache_servers = 127.0.0.1:{memcached_port}\n"
            "memcache_max_connections = 2\n"
            f"error_suppression_interval = {ERROR_SUPPRESSION_SECONDS}\n\n"
            "[filter:tempauth]\n"
            "use = egg:swift#tempauth\n"
            f"user_{user_name}_{user_sub} = {KEY} .admin\n"
            + filters)


# --------------------------------------------------------------------------
# readiness probes (urllib, ignoring any HTTP proxy from the environment)

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http(method: str, url: str, headers: Mapping[str, str] | None = None
          ) -> tuple[int | None, Mapping[str, str]]:
    """One request; (status, headers), or (None, {}) if nothing answered."""
    request = urllib.request.Request(url, method=method,
                                     headers=dict(headers or {}))
    try:
        with _OPENER.open(request, timeout=PROBE_TIMEOUT) as resp:
            resp.read()
            return resp.status, resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.headers
    except (OSError, http.client.HTTPException):
        return None, {}


def _healthcheck_ok(port: int) -> bool:
    """GET /healthcheck answers 200."""
    status, _ = _http("GET", f"http://127.0.0.1:{port}/healthcheck")
    return status == 200


def _memcached_ok(port: int) -> bool:
    """memcached answers its version command."""
    try:
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=PROBE_TIMEOUT) as sock:
            sock.sendall(b"version\r\n")
            return sock.recv(64).startswith(b"VERSION")
    except OSError:
        return False


def _account_ok(proxy_port: int) -> bool:
    """Auth gives a token (needs memcached) and HEAD account answers 2xx."""
    status, headers = _http(
        "GET", f"http://127.0.0.1:{proxy_port}/auth/v1.0",
        {"X-Auth-User": USER, "X-Auth-Key": KEY})
    url, token = headers.get("X-Storage-Url"), headers.get("X-Auth-Token")
    if status != 200 or not url or not token:
        return False
    status, _ = _http("HEAD", url, {"X-Auth-Token": token})
    return status is not None and 200 <= status < 300


# --------------------------------------------------------------------------
# the stack


class SwiftStack:
    """memcached + account/container/object/proxy servers under one data dir.

    Layout: etc/ (swift.conf, server confs, rings), node/d1/ (the one device),
    log/<name>.log, run/. Only processes this object started are ever
    signalled; they are its children, so a PID cannot be recycled under it.
    A subclass runs other processes by overriding ``servers`` (in start
    order), ``_configure``, ``_command`` and ``_is_ready``.
    """

    #: Every process, in start order (stopped in reverse).
    servers: tuple[str, ...] = SERVERS

    def __init__(self, data_dir: str | os.PathLike[str],
                 proxy_port: int | None = None) -> None:
        """``proxy_port`` pins the proxy (auth URL) to a port; None: any free one."""
        self.data_dir = Path(data_dir).resolve()  # servers chdir("/")
        self._fixed_proxy_port = proxy_port or None
        self._ports: dict[str, int] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._python: str | None = None
        self._atexit_registered = False

    # -- public properties -------------------------------------------------

    @property
    def user(self) -> str:
        """tempauth user (account 'test', user 'tester', admin)."""
        return USER

    @property
    def key(self) -> str:
        """tempauth key for user."""
        return KEY

    @property
    def proxy_port(self) -> int:
        """Port of the proxy server (fixed once start() picked it)."""
        return self._port("proxy")

    @property
    def auth_url(self) -> str:
        """Auth v1 URL for swiftclient (auth_version='1')."""
        return f"http://127.0.0.1:{self.proxy_port}/auth/v1.0"

    @property
    def ports(self) -> dict[str, int]:
        """Port of every server, by name."""
        return dict(self._ports)

    @property
    def pids(self) -> dict[str, int]:
        """PIDs of the servers that are currently running, by name."""
        return {name: proc.pid for name, proc in self._procs.items()
                if self._running(name)}

    def log_path(self, name: str) -> Path:
        """Log file of one server (stdout and stderr, appended per start)."""
        return self.data_dir / "log" / f"{name}.log"

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start whatever is not running and wait until Swift serves requests.

        The timeout covers configuration, ring building and readiness, not a
        first-time ensure_installed(). Call from the thread that will outlive
        the stack (normally the main thread): the servers are asked to die
        with it. On failure everything is stopped and SwiftUnavailable says
        why, with the relevant log's tail.
        """
        self._python = ensure_installed()
        memcached_path()
        deadline = time.monotonic() + timeout
        self._register_atexit()
        try:
            if not self._procs:
                self._configure(deadline)
            for name in self.servers:
                if not self._running(name):
                    self._launch(name)
            self._wait_ready(self.servers, deadline, timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every server this object started; safe to call repeatedly."""
        self._terminate(list(reversed(self.servers)))

    def discard(self) -> None:
        """Stop, and free the device if it lives in shared memory: memory,
        unlike the data directory, is nobody else's to clean up. The stack
        cannot start again on the same data afterwards."""
        self.stop()
        node = self.data_dir / "node"
        if node.is_symlink():
            shared = node.resolve()
            node.unlink()
            if shared.parent == SHARED_MEMORY and shared.name.startswith(_SHARED_PREFIX):
                shutil.rmtree(shared, ignore_errors=True)

    def stop_server(self, name: str) -> None:
        """Stop one server, e.g. to see what a client does while it is down."""
        self._check_name(name)
        self._terminate([name])

    def start_server(self, name: str, timeout: float = 30.0) -> None:
        """(Re)start one server on its old port and wait until it is ready."""
        self._check_name(name)
        if not self._ports or self._python is None:
            raise RuntimeError("start() the stack before start_server()")
        deadline = time.monotonic() + timeout
        try:
            if not self._running(name):
                self._launch(name)
            self._wait_ready([name], deadline, timeout)
        except BaseException:
            self._terminate([name])
            raise

    def start_servers(self, names: Sequence[str], timeout: float = 30.0) -> None:
        """(Re)start several servers at once, then wait until all are ready:
        what ``start_server`` one by one does, in the time of the slowest."""
        for name in names:
            self._check_name(name)
        if not self._ports or self._python is None:
            raise RuntimeError("start() the stack before start_servers()")
        deadline = time.monotonic() + timeout
        try:
            for name in names:
                if not self._running(name):
                    self._launch(name)
            self._wait_ready(list(names), deadline, timeout)
        except BaseException:
            self._terminate(list(names))
            raise

    def run_expirer(self, timeout: float = 60.0) -> None:
        """Run Swift's object-expirer once, in the foreground: when it
        returns, every object whose ``X-Delete-At`` has passed is deleted
        (SwiftUnavailable, with its log's tail, if it failed)."""
        if not self._ports or self._python is None:
            raise RuntimeError("start() the stack before run_expirer()")
        etc = self.data_dir / "etc"
        _run_logged([self._python, "-I", str(LAUNCHER), "expire", str(etc / "swift.conf"),
                     str(etc / "object-expirer.conf")],
                    self.log_path("object-expirer"), timeout, "Swift's object-expirer")

    def stop_proxy(self) -> None:
        """Stop the proxy: clients get connection refused."""
        self.stop_server("proxy")

    def start_proxy(self, timeout: float = 30.0) -> None:
        """Bring the proxy back on the same port."""
        self.start_server("proxy", timeout)

    def __enter__(self) -> SwiftStack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- configuration -----------------------------------------------------

    def _port(self, name: str) -> int:
        """Port of a server; only known once start() configured the stack."""
        try:
            return self._ports[name]
        except KeyError:
            raise RuntimeError("SwiftStack not started yet") from None

    def _check_name(self, name: str) -> None:
        """Reject unknown server names early."""
        if name not in self.servers:
            raise ValueError(f"unknown server {name!r}; one of {self.servers}")

    def _ports_file(self) -> Path:
        """Ports of the last configuration; the rings depend on them."""
        return self.data_dir / "etc" / "ports.json"

    def _pick_ports(self) -> dict[str, int]:
        """Reuse the last ports if all still free (stable URLs), else new.

        A pinned proxy port is not checked here: launching the proxy says
        clearly when something else holds it.
        """
        previous = dict(self._ports)
        if not previous:
            with contextlib.suppress(OSError, ValueError):
                previous = json.loads(self._ports_file().read_text())
        pinned = ({"proxy": self._fixed_proxy_port}
                  if self._fixed_proxy_port else {})
        others = [p for name, p in previous.items() if name not in pinned]
        if (set(previous) == set(SERVERS)
                and all(port_is_free(p) for p in others)
                and not set(others) & set(pinned.values())):
            return {**previous, **pinned}
        while True:  # the kernel may hand out the pinned port: pick again
            fresh = dict(zip(SERVERS, free_ports(len(SERVERS)), strict=True))
            if not set(fresh.values()) & set(pinned.values()):
                return {**fresh, **pinned}

    def _configure(self, deadline: float) -> None:
        """Create the directories, write all confs, build rings if needed."""
        etc, run = self.data_dir / "etc", self.data_dir / "run"
        for sub in (etc, self.data_dir / "log", run):
            sub.mkdir(parents=True, exist_ok=True)
        node = _device_root(self.data_dir)
        ports = self._pick_ports()
        user = pwd.getpwuid(os.getuid()).pw_name
        (etc / "swift.conf").write_text(_swift_conf_text())
        (etc / "object-expirer.conf").write_text(
            _expirer_conf_text(etc, node, run, ports["memcached"], user))
        for kind in STORAGE_SERVERS:
            (etc / f"{kind}-server.conf").write_text(
                _storage_conf_text(kind, ports[kind], etc, node, user))
        (etc / "proxy-server.conf").write_text(
            _proxy_conf_text(ports["proxy"], ports["memcached"], etc, user))
        self._build_rings_if_needed(etc, ports, deadline)
        self._ports = ports

    def _build_rings_if_needed(self, etc: Path, ports: dict[str, int],
                               deadline: float) -> None:
        """Rings name the storage ports; rebuild only when those changed."""
        old: dict[str, int] = {}
        with contextlib.suppress(OSError, ValueError):
            old = json.loads(self._ports_file().read_text())
        rings_exist = all((etc / f"{k}.ring.gz").exists()
                          for k in STORAGE_SERVERS)
        if not (rings_exist and all(old.get(k) == ports[k]
                                    for k in STORAGE_SERVERS)):
            assert self._python is not None
            cmd = [self._python, "-I", str(LAUNCHER), "rings", str(etc),
                   *(f"{k}={ports[k]}" for k in STORAGE_SERVERS)]
            remaining = max(1.0, deadline - time.monotonic())
            _run_logged(cmd, self.data_dir / "log" / "rings.log", remaining,
                        "building the Swift rings")
        self._ports_file().write_text(json.dumps(ports))

    # -- processes ---------------------------------------------------------

    def _command(self, name: str) -> list[str]:
        """argv for one server, always through the launcher."""
        assert self._python is not None
        launcher = [self._python, "-I", str(LAUNCHER)]
        if name == "memcached":
            cmd = [memcached_path(), "-l", "127.0.0.1",
                   "-p", str(self._ports[name]), "-U", "0"]
            if os.geteuid() == 0:  # memcached refuses root without -u
                cmd += ["-u", pwd.getpwuid(0).pw_name]
            # -P also puts DATA_DIR into memcached's argv, naming its owner.
            cmd += ["-P", str(self.data_dir / "run" / "memcached.pid")]
            return launcher + ["exec"] + cmd
        etc = self.data_dir / "etc"
        return launcher + ["serve", str(etc / "swift.conf"),
                           str(etc / f"{name}-server.conf"), name]

    def _launch(self, name: str) -> None:
        """Start one process with stdin from /dev/null and output to its log;
        a server's port must be free (a daemon has none).

        Without eventlet's green DNS (dnspython): every address here is an
        IP literal, and skipping that import saves a third of each Swift
        process's start-up CPU, which adds up over a cluster's processes.
        """
        port = self._ports.get(name)
        if port is not None and not port_is_free(port):
            raise SwiftUnavailable(
                f"127.0.0.1:{port} (for {name}) is already in use by "
                f"another process")
        where = f" on 127.0.0.1:{port}" if port is not None else ""
        log_path = self.log_path(name)
        with open(log_path, "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting "
                      f"{name}{where} ---\n".encode())
            log.flush()
            self._procs[name] = subprocess.Popen(
                self._command(name), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, close_fds=True, cwd=self.data_dir,
                env=_child_env(SWIFTSTACK_PARENT_PID=str(os.getpid()),
                               EVENTLET_NO_GREENDNS="yes"))

    def _running(self, name: str) -> bool:
        """True if the server's process is alive (poll() also reaps it)."""
        proc = self._procs.get(name)
        return (proc is not None and proc.poll() is None
                and pid_alive(proc.pid))

    def _is_ready(self, name: str) -> bool:
        """One readiness probe for one server."""
        port = self._ports[name]
        if name == "memcached":
            return _memcached_ok(port)
        if name == "proxy":
            return _healthcheck_ok(port) and _account_ok(port)
        return _healthcheck_ok(port)

    def _wait_ready(self, names: list[str] | tuple[str, ...],
                    deadline: float, timeout: float) -> None:
        """Poll until every named server is ready, or raise with its log.

        The probes of one round run side by side: a server that listens
        before its app is loaded holds a probe for its whole timeout, and
        probing a dozen of those one after the other would add up.
        """
        pending = list(names)
        with ThreadPoolExecutor(max_workers=len(pending) or 1) as pool:
            while pending:
                for name in pending:
                    if not self._running(name):
                        raise self._failure(name, "exited early with status "
                                                  f"{self._procs[name].returncode}")
                ready = list(pool.map(self._is_ready, pending))
                pending = [name for name, ok in zip(pending, ready, strict=True) if not ok]
                if pending and time.monotonic() > deadline:
                    raise self._failure(
                        pending[0], f"not ready after {timeout:g}s")
                if pending:
                    time.sleep(PROBE_INTERVAL)

    def _failure(self, name: str, reason: str) -> SwiftUnavailable:
        """Exception naming the server, with the tail of its log."""
        log_path = self.log_path(name)
        return SwiftUnavailable(f"Swift {name} server {reason}; tail of "
                                f"{log_path}:\n{_tail(log_path)}")

    def _terminate(self, names: list[str]) -> None:
        """SIGTERM the named servers, SIGKILL what is left after a grace."""
        procs = [self._procs.pop(n) for n in names if n in self._procs]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _register_atexit(self) -> None:
        """Stop the servers when the test process exits normally."""
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True

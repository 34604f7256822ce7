"""A replicated OpenStack Swift on 127.0.0.1: three nodes, three replicas.

What the all-in-one :class:`~tests.swiftstack.SwiftStack` cannot show:
copies, quorum and healing. Same install, launcher and process handling;
each ring has three replicas on three devices d1..d3, device dN served by
node N's own account, container and object server (zone N, its own ports),
so every partition has one copy on each node and no handoff: a write needs
two of the three object servers (the proxy's quorum).

The daemons that heal and expire run too, each its own process, passes one
second apart so tests can watch them work:

* per node, the object, container and account replicators (a replicator
  works on the devices of its node's ring entries, found by its port).
  Objects go over ssync (HTTP, no rsync); containers and accounts sync
  rows over HTTP, but copy a whole database with rsync when a node lacks
  it, so an rsync daemon (Debian's ``rsync``) serves the devices on a
  loopback port;
* once, the object and container updaters and the object-expirer: they
  walk every device under the shared device root.

    cluster = SwiftCluster(tmp_path)
    cluster.start()
    cluster.stop_server("object-1")     # node 1's object server is down
    ...
    cluster.start_server("object-1")    # back, on its old port
    cluster.stop()
"""
from __future__ import annotations

import hashlib
import os
import pwd
import socket
import struct
import time
from pathlib import Path
from urllib.parse import quote

from . import (
    ACCOUNT,
    HASH_PATH_PREFIX,
    HASH_PATH_SUFFIX,
    LAUNCHER,
    PROBE_TIMEOUT,
    STORAGE_SERVERS,
    SwiftStack,
    _account_ok,
    _device_root,
    _expirer_conf_text,
    _healthcheck_ok,
    _http,
    _memcached_ok,
    _proxy_conf_text,
    _run_logged,
    _storage_conf_text,
    _swift_conf_text,
    free_ports,
    program_path,
)
from .launcher import PART_POWER

__all__ = ["NODES", "SwiftCluster", "rsync_path"]

NODES = (1, 2, 3)
#: Seconds between two passes of every daemon (Swift's defaults: 30 to 300).
DAEMON_INTERVAL = 1
#: Daemons that walk every device, run once for the cluster.
DEVICE_WALKERS = ("object-updater", "container-updater", "object-expirer")
#: What each daemon logs once it has been built and begun its first pass:
#: a daemon is ready when this follows its "Starting <pid>" line.
READY_LINES = {
    "object-replicator": "Starting object replicator in daemon mode",
    "container-replicator": "Beginning replication run",
    "account-replicator": "Beginning replication run",
    "object-updater": "Begin object update sweep",
    "container-updater": "Begin container update sweep",
    "object-expirer": "Pass completed in",
}


def rsync_path() -> str:
    """The rsync binary, or SwiftUnavailable saying how to get it."""
    return program_path("rsync", "; Swift's database replicators copy with it")


def _node_server(kind: str, node: int) -> str:
    """Process name of one node's storage server, e.g. object-1."""
    return f"{kind}-{node}"


def _replicator(kind: str, node: int) -> str:
    """Process name of one node's replicator, e.g. object-replicator-1."""
    return f"{kind}-replicator-{node}"


def _replicator_section(kind: str, run: Path, rsync_port: int) -> str:
    """The [<kind>-replicator] section of a node's server conf."""
    text = (f"\n[{kind}-replicator]\n"
            f"interval = {DAEMON_INTERVAL}\n"
            "concurrency = 1\n"
            f"recon_cache_path = {run}\n")
    if kind == "object":
        return text + "sync_method = ssync\n"
    return text + f"rsync_module = rsync://127.0.0.1:{rsync_port}/{kind}\n"


def _rsyncd_conf_text(port: int, node: Path, run: Path, log: Path) -> str:
    """rsyncd.conf: one writable module per ring kind, all on the device
    root, as the database replicators address them; transfers run as the
    current user (as root, rsync would default to 'nobody')."""
    modules = "".join(f"\n[{kind}]\npath = {node}\nread only = false\n"
                      f"lock file = {run}/rsync-{kind}.lock\n"
                      for kind in STORAGE_SERVERS)
    return ("use chroot = no\n"
            f"uid = {os.getuid()}\n"
            f"gid = {os.getgid()}\n"
            "address = 127.0.0.1\n"
            f"port = {port}\n"
            f"pid file = {run}/rsyncd.pid\n"
            f"log file = {log}\n"
            "max connections = 16\n" + modules)


def _walkers_conf_text(etc: Path, node: Path, run: Path, memcached_port: int,
                       user: str) -> str:
    """One conf for the device walkers: the expirer's (with its container
    updater) plus the object updater's section. Its name must contain
    "expirer": Swift then reads the expirer's internal client from it."""
    return (_expirer_conf_text(etc, node, run, memcached_port, user,
                               interval=DAEMON_INTERVAL)
            + "\n[object-updater]\n"
            f"devices = {node}\n"
            "mount_check = false\n"
            "concurrency = 1\n"
            f"interval = {DAEMON_INTERVAL}\n"
            f"recon_cache_path = {run}\n")


def _rsync_ok(port: int) -> bool:
    """The rsync daemon greets with its protocol version."""
    try:
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=PROBE_TIMEOUT) as sock:
            return sock.recv(64).startswith(b"@RSYNCD:")
    except OSError:
        return False


def hash_path(*names: str) -> str:
    """Swift's name hash (hex) of an account, container or object given by
    its names, with the test salts."""
    path = f"{HASH_PATH_PREFIX}/{'/'.join(names)}{HASH_PATH_SUFFIX}"
    return hashlib.md5(path.encode()).hexdigest()


def partition(name_hash: str) -> int:
    """The ring partition of a name hash, as Ring.get_part computes it."""
    return struct.unpack_from(">I", bytes.fromhex(name_hash))[0] >> (32 - PART_POWER)


class SwiftCluster(SwiftStack):
    """memcached, rsync, three nodes' servers and replicators, the proxy and
    the device walkers under one data dir (see the module docstring).

    Processes are named after what they run, with the node's number where
    there is one per node: ``object-1``, ``object-replicator-1``,
    ``object-updater``, ``proxy``; ``stop_server``/``start_server`` and
    ``pids`` take and give those names.

    Layout: etc/ (swift.conf, rings, proxy and walker confs,
    <kind>-server/<N>.conf per node with its replicator's section),
    node/d1..d3 (the devices), log/<process>.log, run/.
    """

    servers = ("memcached", "rsync",
               *(_node_server(kind, n) for kind in STORAGE_SERVERS for n in NODES),
               "proxy",
               *(_replicator(kind, n) for kind in STORAGE_SERVERS for n in NODES),
               *DEVICE_WALKERS)

    # -- public helpers ----------------------------------------------------

    def device(self, node: int) -> Path:
        """Node ``node``'s device directory (dN)."""
        return self.data_dir / "node" / f"d{node}"

    def object_files(self, container: str, obj: str) -> dict[int, list[Path]]:
        """Each node's .data files of one object of the test account (policy
        0): what a test reads to see which nodes hold a copy."""
        return self._stored("objects", "*.data", container, obj)

    def container_dbs(self, container: str) -> dict[int, list[Path]]:
        """Each node's database files of one container of the test account."""
        return self._stored("containers", "*.db", container)

    def delete_on_node(self, node: int, container: str, obj: str) -> int | None:
        """DELETE one object of the test account on node ``node`` alone, as
        a delete still on its way to the others, or one that lost its quorum,
        leaves it: a tombstone there newer than the other nodes' copies. The
        object server's status (None if it did not answer)."""
        name_hash = hash_path(ACCOUNT, container, obj)
        url = (f"http://127.0.0.1:{self.ports[_node_server('object', node)]}/d{node}/"
               f"{partition(name_hash)}/{quote(f'{ACCOUNT}/{container}/{obj}')}")
        status, _ = _http("DELETE", url, {"X-Timestamp": f"{time.time():016.5f}"})
        return status

    def _stored(self, kind_dir: str, pattern: str, *names: str) -> dict[int, list[Path]]:
        """Files in the hash directory Swift keeps a name in, per node: the
        ring puts every partition on every device."""
        name_hash = hash_path(ACCOUNT, *names)
        files = {}
        for node in NODES:
            directory = (self.device(node) / kind_dir / str(partition(name_hash))
                         / name_hash[-3:] / name_hash)
            files[node] = sorted(directory.glob(pattern))
        return files

    # -- SwiftStack hooks --------------------------------------------------

    def _configure(self, deadline: float) -> None:
        """Directories, every conf, the rings; fresh ports each time."""
        rsync_path()
        etc, run, log = (self.data_dir / sub for sub in ("etc", "run", "log"))
        for sub in (etc, run, log):
            sub.mkdir(parents=True, exist_ok=True)
        node = _device_root(self.data_dir)
        for number in NODES:
            (node / f"d{number}").mkdir(exist_ok=True)
        listeners = [name for name in self.servers if "replicator" not in name
                     and name not in DEVICE_WALKERS]
        ports = dict(zip(listeners, free_ports(len(listeners)), strict=True))
        user = pwd.getpwuid(os.getuid()).pw_name
        (etc / "swift.conf").write_text(_swift_conf_text())
        (etc / "proxy-server.conf").write_text(
            _proxy_conf_text(ports["proxy"], ports["memcached"], etc, user))
        (etc / "object-expirer.conf").write_text(
            _walkers_conf_text(etc, node, run, ports["memcached"], user))
        (etc / "rsyncd.conf").write_text(
            _rsyncd_conf_text(ports["rsync"], node, run, self.log_path("rsync")))
        for kind in STORAGE_SERVERS:
            (etc / f"{kind}-server").mkdir(exist_ok=True)
            for number in NODES:
                port = ports[_node_server(kind, number)]
                (etc / f"{kind}-server" / f"{number}.conf").write_text(
                    _storage_conf_text(kind, port, etc, node, user)
                    + _replicator_section(kind, run, ports["rsync"]))
        assert self._python is not None
        rings = [f"{kind}=" + ",".join(str(ports[_node_server(kind, n)]) for n in NODES)
                 for kind in STORAGE_SERVERS]
        _run_logged([self._python, "-I", str(LAUNCHER), "rings", str(etc), *rings],
                    log / "rings.log", max(1.0, deadline - time.monotonic()),
                    "building the Swift rings")
        self._ports = ports

    def _command(self, name: str) -> list[str]:
        """argv of one process, always through the launcher."""
        assert self._python is not None
        launcher = [self._python, "-I", str(LAUNCHER)]
        etc = self.data_dir / "etc"
        swift_conf = str(etc / "swift.conf")
        if name in ("memcached", "proxy"):
            return super()._command(name)
        if name == "rsync":
            return launcher + ["exec", rsync_path(), "--daemon", "--no-detach",
                               f"--config={etc / 'rsyncd.conf'}"]
        if name in DEVICE_WALKERS:
            return launcher + ["daemon", swift_conf, str(etc / "object-expirer.conf"), name]
        kind, _, number = name.rpartition("-")
        if kind.endswith("-replicator"):
            server = kind.removesuffix("-replicator")
            return launcher + ["daemon", swift_conf,
                               str(etc / f"{server}-server" / f"{number}.conf"), kind]
        return launcher + ["serve", swift_conf,
                           str(etc / f"{kind}-server" / f"{number}.conf"), kind]

    def _is_ready(self, name: str) -> bool:
        """Servers answer their probe; a daemon has begun its first pass."""
        port = self._ports.get(name)
        if port is None:
            text = self._log_text(name)
            started = text.find(f"Starting {self._procs[name].pid}\n")
            section = name if name in DEVICE_WALKERS else name.rpartition("-")[0]
            return started >= 0 and READY_LINES[section] in text[started:]
        if name == "memcached":
            return _memcached_ok(port)
        if name == "rsync":
            return _rsync_ok(port)
        if name == "proxy":
            return _healthcheck_ok(port) and _account_ok(port)
        return _healthcheck_ok(port)

    def _log_text(self, name: str) -> str:
        """A process's whole log (daemon logs stay small in a test)."""
        try:
            return self.log_path(name).read_text(errors="replace")
        except OSError:
            return ""

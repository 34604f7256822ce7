"""Runs inside the Swift virtualenv (python -I launcher.py MODE ...).

Modes:
  serve SWIFT_CONF SERVER_CONF NAME   run one Swift WSGI server in this process
  exec PROGRAM [ARG...]               exec a program (memcached) with the same
                                      parent-death guard as the servers
  rings ETC_DIR account=PORT[,PORT...] container=... object=...
                                      build the three rings: one device
                                      (and one replica) per port, each
                                      device in its own zone
  daemon SWIFT_CONF CONF SECTION      run one Swift daemon (a replicator,
                                      updater or the expirer) in this
                                      process, its settings from SECTION
  expire SWIFT_CONF EXPIRER_CONF      run Swift's container-updater, then its
                                      object-expirer, once each

Kept free of anything but the standard library and Swift itself: the test
process never imports it.
"""
from __future__ import annotations

import ctypes
import importlib
import os
import signal
import sys

PART_POWER = 8
MIN_PART_HOURS = 1
#: The daemons ``daemon`` runs: section name -> (module, class), as the
#: stock swift-<section> scripts pass them to run_daemon.
DAEMONS = {
    "object-replicator": ("swift.obj.replicator", "ObjectReplicator"),
    "container-replicator": ("swift.container.replicator", "ContainerReplicator"),
    "account-replicator": ("swift.account.replicator", "AccountReplicator"),
    "object-updater": ("swift.obj.updater", "ObjectUpdater"),
    "container-updater": ("swift.container.updater", "ContainerUpdater"),
    "object-expirer": ("swift.obj.expirer", "ObjectExpirer"),
}
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the test process dies.

    A test run killed with SIGKILL (a CI timeout, say) never runs its atexit
    stop; without this the servers would outlive it and keep their ports.
    """
    expected_parent = int(os.environ.get("SWIFTSTACK_PARENT_PID", "0"))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if expected_parent and os.getppid() != expected_parent:
        sys.exit("launcher: parent exited before the server started")


def serve(swift_conf: str, server_conf: str, name: str) -> int:
    """Run one server the way the stock swift-<name>-server script does.

    swift.conf is read from a module global at import time, so it has to be
    re-pointed before swift.common.wsgi (and with it the storage policies and
    constraints) is imported.
    """
    from swift.common import utils

    utils.SWIFT_CONF_FILE = swift_conf
    from swift.common.wsgi import run_wsgi

    return run_wsgi(server_conf, f"{name}-server", verbose=True)


def daemon(swift_conf: str, conf: str, section: str) -> int:
    """Run one daemon forever, the way its stock swift-<section> script
    does; swift.conf is re-pointed first, as for the servers."""
    from swift.common import utils

    utils.SWIFT_CONF_FILE = swift_conf
    from swift.common.daemon import run_daemon

    module, name = DAEMONS[section]
    klass = getattr(importlib.import_module(module), name)
    run_daemon(klass, conf, section_name=section, once=False, verbose=True)
    return 0


def expire(swift_conf: str, expirer_conf: str) -> int:
    """One pass of Swift's object-expirer: delete what is past its X-Delete-At.

    What ``swift-container-updater --once`` then ``swift-object-expirer
    --once`` do, without their daemon set-up: the expirer finds its queue's
    containers through the account's listing, which the container-updater
    brings up to date (a cluster runs both all the time). swift.conf is
    re-pointed first, as for the servers.
    """
    from swift.common import utils

    utils.SWIFT_CONF_FILE = swift_conf
    from swift.common.utils import readconf
    from swift.container.updater import ContainerUpdater
    from swift.obj.expirer import ObjectExpirer

    ContainerUpdater(readconf(expirer_conf, "container-updater")).run_once()
    ObjectExpirer(readconf(expirer_conf, "object-expirer")).run_once()
    return 0


def build_rings(etc_dir: str, ports: dict[str, list[int]]) -> None:
    """Build account/container/object rings, in one go: device dN on the
    N-th port, in zone N, and as many replicas as devices, so that every
    device holds one copy of every partition.

    One process with RingBuilder instead of nine swift-ring-builder calls.
    """
    from swift.common.ring import RingBuilder

    for kind, kind_ports in ports.items():
        builder = RingBuilder(PART_POWER, len(kind_ports), MIN_PART_HOURS)
        for number, port in enumerate(kind_ports, start=1):
            builder.add_dev({"region": 1, "zone": number, "ip": "127.0.0.1",
                             "port": port, "device": f"d{number}",
                             "weight": 1.0})
        builder.rebalance()
        builder.save(os.path.join(etc_dir, f"{kind}.builder"))
        ring_tmp = os.path.join(etc_dir, f"{kind}.ring.gz.tmp")
        builder.get_ring().save(ring_tmp)
        os.replace(ring_tmp, os.path.join(etc_dir, f"{kind}.ring.gz"))


def _parse_ports(args: list[str]) -> dict[str, list[int]]:
    """Turn ['account=1234,1235', ...] into {'account': [1234, 1235], ...}."""
    ports = {}
    for arg in args:
        kind, _, port_list = arg.partition("=")
        ports[kind] = [int(port) for port in port_list.split(",")]
    return ports


def main(argv: list[str]) -> int:
    """Dispatch on the mode word."""
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    mode, args = argv[1], argv[2:]
    if mode == "serve" and len(args) == 3:
        die_with_parent()
        return serve(*args)
    if mode == "exec" and args:
        die_with_parent()
        os.execvp(args[0], args)
    if mode == "daemon" and len(args) == 3 and args[2] in DAEMONS:
        die_with_parent()
        return daemon(*args)
    if mode == "expire" and len(args) == 2:
        return expire(*args)
    if mode == "rings" and len(args) >= 2:
        build_rings(args[0], _parse_ports(args[1:]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

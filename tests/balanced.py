"""Several ``blobsvc serve`` instances on one Swift container behind HAProxy:
the deployment the README promises works because, on Swift, blobsvc keeps
no state of its own.

Each instance is a :class:`live_server.GroupServer` (its own process group,
its workers, its own port and work directory, its access log on) with the
same Swift settings and container; the balancer is
:class:`load_balancer.Balancer`. Everything is started and stopped by PID.

    with balanced_deployment(tmp_path, swift_config(cluster, workers=2)) as dep:
        requests.put(dep.url + "/v1/objects/x", data=b"...")
        dep.requests_per_instance("PUT")
"""

from __future__ import annotations

import contextlib
import copy
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from live_server import GroupServer, tool
from load_balancer import Backend, Balancer

#: Instances behind the balancer unless a test asks for another number.
DEFAULT_INSTANCES = 3


def instance_name(index: int) -> str:
    """The name an instance has in the balancer's config and logs."""
    return f"blobsvc-{index + 1}"


@dataclass
class Deployment:
    """Running instances and the balancer in front of them."""

    instances: list[GroupServer]
    balancer: Balancer
    container: str

    @property
    def url(self) -> str:
        return self.balancer.url

    def names(self) -> list[str]:
        return [instance_name(index) for index in range(len(self.instances))]

    def requests_per_instance(self, method: str, prefix: str = "/v1/objects/") -> dict[str, int]:
        """How many ``method`` requests under ``prefix`` each instance logged
        having answered (its access log, on its stderr)."""
        line = re.compile(rf" {re.escape(method)} {re.escape(prefix)}\S* \d{{3}} in=")
        return {name: len(line.findall(server.stderr()))
                for name, server in zip(self.names(), self.instances, strict=True)}

    def instance_logs(self, pattern: str) -> dict[str, list[str]]:
        """Lines matching ``pattern`` (a regex) in each instance's log."""
        found = re.compile(pattern)
        return {name: [line for line in server.stderr().splitlines() if found.search(line)]
                for name, server in zip(self.names(), self.instances, strict=True)}


def instance_config(base: dict, container: str) -> dict:
    """``base`` (a swift_config) on ``container``, access log on: each
    instance's log then tells which requests reached it."""
    config = copy.deepcopy(base)
    config["storage"]["container"] = container
    config["log"]["access_log"] = True
    return config


@contextlib.contextmanager
def balanced_deployment(workdir: Path, base_config: dict, instances: int = DEFAULT_INSTANCES,
                        check_path: str = "/readyz") -> Iterator[Deployment]:
    """``instances`` blobsvc processes sharing one container (the one in
    ``base_config``, or a new one), HAProxy in front; all stopped after."""
    haproxy = tool("haproxy")
    container = base_config["storage"].get("container") or f"balanced-{uuid.uuid4().hex}"
    config = instance_config(base_config, container)
    servers = [GroupServer(workdir / instance_name(index), config) for index in range(instances)]
    balancer: Balancer | None = None
    try:
        for server in servers:  # all at once, then wait: the start-ups overlap
            server.start(wait=False)
        for server in servers:
            server.wait_ready(timeout=30)
        backends = []
        for index, server in enumerate(servers):
            assert server.port is not None  # read from its log once it listened
            backends.append(Backend(instance_name(index), server.host, server.port))
        balancer = Balancer(workdir / "haproxy", backends, haproxy, check_path).start()
        yield Deployment(servers, balancer, container)
    finally:
        if balancer is not None:
            balancer.stop()
        for server in servers:
            server.stop(timeout=30)

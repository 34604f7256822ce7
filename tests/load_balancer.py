"""A real HTTP load balancer (Debian's HAProxy) on 127.0.0.1, for tests
that run several blobsvc instances behind one address, as users deploy
them when the backend keeps all state (Swift).

The balancer runs in the foreground (``-db``) as a child of the test, so
the PID we hold is HAProxy's own and ``stop()`` signals only it. Its
config goes to a directory of the caller's; its stderr, where it writes
its request log (one line per request, naming the backend server that
answered) and its warnings, goes to ``haproxy.log`` there: the evidence
when a test wants to know where a request went.

What the config asks of HAProxy, and why:

* round robin over the instances, each request balanced on its own (no
  stickiness): any instance must serve any request;
* health checks of ``GET /readyz`` twice a second, down after two
  failures: an instance that is gone (its port refuses) leaves the
  rotation within a second; one that cannot reach its backend within the
  check timeout, in a few seconds;
* ``retry-on conn-failure`` with ``option redispatch``: a request that
  could not even connect to an instance (it was never sent, so a retry is
  safe whatever the method) goes to another one. Nothing that reached an
  instance is retried by the balancer;
* a stats listener (CSV) on a port of its own: the ready check reads each
  server's state from it.
"""

from __future__ import annotations

import csv
import io
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

try:
    from tests.swiftstack import free_ports
except ImportError:  # tests/ is not a package and the repo root not on path
    from swiftstack import free_ports  # type: ignore[no-redef]

#: Seconds between two health checks of one server, and how many failed
#: checks take it out of the rotation (one good one brings it back).
CHECK_INTERVAL = 0.5
CHECK_FALL = 2
#: How long one health check may take. Not the interval (HAProxy's default):
#: under load on a small machine /readyz takes over a second, and a check
#: that timed out on every instance at once left none in the rotation. A
#: dead instance refuses the connection, which fails a check at once.
CHECK_TIMEOUT = 5.0
#: How long the balancer waits for a connection to an instance before it
#: counts a connection failure (and retries elsewhere).
CONNECT_TIMEOUT = 1.0
#: Attempts after the first for a request whose connection failed.
RETRIES = 3
#: What the balancer waits for a client or a server in mid-request: longer
#: than any test's upload, shorter than a hung test.
IDLE_TIMEOUT = 120.0


@dataclass(frozen=True)
class Backend:
    """One instance the balancer sends requests to."""

    name: str
    host: str
    port: int


def haproxy_config_text(port: int, stats_port: int, backends: list[Backend],
                        check_path: str = "/readyz") -> str:
    """The whole haproxy.cfg (see the module docstring for each choice)."""
    servers = "".join(
        f"    server {b.name} {b.host}:{b.port} check inter {int(CHECK_INTERVAL * 1000)}ms "
        f"fall {CHECK_FALL} rise 1\n" for b in backends)
    return (
        "global\n"
        "    nbthread 2\n"
        "    maxconn 512\n"
        "    log stderr format raw local0 info\n"
        "defaults\n"
        "    mode http\n"
        "    log global\n"
        "    option httplog\n"
        f"    timeout connect {int(CONNECT_TIMEOUT * 1000)}ms\n"
        f"    timeout check {int(CHECK_TIMEOUT * 1000)}ms\n"
        f"    timeout client {int(IDLE_TIMEOUT)}s\n"
        f"    timeout server {int(IDLE_TIMEOUT)}s\n"
        "    timeout http-request 30s\n"
        "    timeout queue 10s\n"
        f"    retries {RETRIES}\n"
        "    retry-on conn-failure\n"
        "    option redispatch 1\n"
        "frontend blobsvc\n"
        f"    bind 127.0.0.1:{port}\n"
        "    default_backend instances\n"
        "backend instances\n"
        "    balance roundrobin\n"
        "    option httpchk\n"
        f"    http-check send meth GET uri {check_path}\n"
        "    http-check expect status 200\n"
        + servers +
        "listen stats\n"
        f"    bind 127.0.0.1:{stats_port}\n"
        "    stats enable\n"
        "    stats uri /stats\n"
    )


class Balancer:
    """HAProxy in front of ``backends``, on a free loopback port."""

    def __init__(self, workdir: Path, backends: list[Backend], executable: str,
                 check_path: str = "/readyz") -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.backends = backends
        self.executable = executable
        self.check_path = check_path
        self.config_path = self.workdir / "haproxy.cfg"
        self.log_path = self.workdir / "haproxy.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.stats_port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> Balancer:
        """Write the config (fresh ports), check it, start HAProxy, wait until
        every backend is UP and a request goes through."""
        self.port, self.stats_port = free_ports(2)
        self.config_path.write_text(haproxy_config_text(
            self.port, self.stats_port, self.backends, self.check_path))
        checked = subprocess.run([self.executable, "-c", "-f", str(self.config_path)],
                                 capture_output=True, text=True, timeout=30)
        if checked.returncode != 0:
            raise RuntimeError(f"haproxy refused its config:\n{checked.stdout}{checked.stderr}")
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen([self.executable, "-db", "-f", str(self.config_path)],
                                         cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err)
        try:
            self.wait_until(lambda states: all(s == "UP" for s in states.values()), timeout,
                            "every instance UP")
            self._wait_through(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_through(self, timeout: float) -> None:
        """A request through the balancer answers (the frontend listens)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"nothing answers through the balancer after {timeout}s: "
                           f"{self.stderr()}")

    def server_states(self) -> dict[str, str]:
        """Each backend server's state as HAProxy sees it (UP, DOWN, ...)."""
        res = requests.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5)
        res.raise_for_status()
        rows = csv.DictReader(io.StringIO(res.text.lstrip("# ")))
        names = {b.name for b in self.backends}
        return {row["svname"]: row["status"].split()[0] for row in rows
                if row["pxname"] == "instances" and row["svname"] in names}

    def wait_until(self, check: Callable[[dict[str, str]], bool], timeout: float,
                   what: str) -> float:
        """Poll the server states until ``check(states)`` holds; the seconds it took."""
        started = time.monotonic()
        states: dict[str, str] = {}
        while time.monotonic() - started < timeout:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.proc.returncode}: {self.stderr()}")
            try:
                states = self.server_states()
            except requests.RequestException:
                states = {}
            if states and check(states):
                return time.monotonic() - started
            time.sleep(0.05)
        raise RuntimeError(f"balancer: {what} not after {timeout:g}s; states {states}")

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def stderr(self) -> str:
        """The end of HAProxy's output, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM to HAProxy's PID (it exits at once), SIGKILL if it lingers."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

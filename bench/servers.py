"""Starting and stopping the servers under test: blobsvc, nginx, the bare
CherryPy store, and the test fixture's Swift.

Each server gets its own generated config, data root and logs inside the
run's temporary directory, a free port on 127.0.0.1, and its own session
(so a Ctrl-C in the terminal reaches only the harness, which then stops
them in order). Each is stopped by PID, with the workers it forked.
"""

from __future__ import annotations

import grp
import importlib
import importlib.util
import json
import os
import pwd
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import ModuleType

from bench.system import BenchError, kill_recorded, process_tree, record, stop_tree

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
SWIFT_START_TIMEOUT = 60.0

#: The repository's root: where ``bench`` and ``tests`` are importable from.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    """A port nothing listens on now; the server binds it a moment later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A server process with a data root, a base URL and a log file."""

    kind = "server"

    def __init__(self, name: str, workdir: str) -> None:
        self.name = name
        self.workdir = os.path.join(workdir, name)
        self.root = os.path.join(self.workdir, "root")
        self.log_path = os.path.join(self.workdir, "server.log")
        self.process: subprocess.Popen | None = None
        self._new_port()
        os.makedirs(self.root)

    def _new_port(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def url(self, key: str) -> str:
        """The URL of the object stored under ``key`` (``a/b.bin``)."""
        return self.base_url + self.url_path(key)

    def url_path(self, key: str) -> str:
        raise NotImplementedError

    def disk_path(self, key: str) -> str:
        """Where the object ``key`` lives on disk."""
        return os.path.join(self.root, key)

    def _launch(self, cmd: list[str], env: dict | None = None) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            cwd=self.workdir, env=env, start_new_session=True)

    def _wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.process.returncode} at start; "
                                 f"its log says:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # it answers: ready
            except OSError:
                time.sleep(0.1)
        raise BenchError(f"{self.name} did not answer within {START_TIMEOUT:.0f}s; "
                         f"its log says:\n{self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_path, errors="replace") as stream:
                return "".join(stream.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            stop_tree(self.process, STOP_TIMEOUT)

    def restart(self) -> None:
        """A fresh process (on a fresh port), same data root."""
        self.stop()
        self._new_port()
        self.start()


class Blobsvc(Server):
    """``python -m blobsvc serve -c <generated yaml>`` on the filesystem driver."""

    kind = "blobsvc"

    def __init__(self, name: str, workdir: str, fsync: bool, workers: int | None = None,
                 extra_env: dict | None = None) -> None:
        super().__init__(name, workdir)
        self.fsync = fsync
        self.workers = workers
        self.extra_env = extra_env or {}

    def url_path(self, key: str) -> str:
        return f"/v1/objects/{key}"

    def storage_lines(self) -> list[str]:
        return ["storage:", "  driver: filesystem", f"  root: {self.root}",
                f"  fsync: {'true' if self.fsync else 'false'}"]

    def auth_lines(self) -> list[str]:
        """No auth section: the shipped default on loopback."""
        return []

    def start(self) -> None:
        config = os.path.join(self.workdir, "blobsvc.yaml")
        # Only what the benchmark needs differs from the embedded defaults,
        # so the numbers describe blobsvc as shipped.
        lines = ["server:", "  host: 127.0.0.1", f"  port: {self.port}"]
        if self.workers is not None:
            lines.append(f"  workers: {self.workers}")
        lines += self.storage_lines() + self.auth_lines()
        with open(config, "w") as stream:
            stream.write("\n".join(lines) + "\n")
        # BLOBSVC_* variables of the caller would override the generated file.
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLOBSVC_")}
        env.update(self.extra_env)  # e.g. MALLOC_ARENA_MAX=2, for experiments
        self._launch([sys.executable, "-m", "blobsvc", "serve", "-c", config], env=env)
        self._wait_ready("/healthz")


class BlobsvcAuth(Blobsvc):
    """blobsvc with one write user whose plain password is also its S3 secret
    key (W9): native requests (Basic) and S3 ones (SigV4) both pay for
    authentication, so their ratio is the cost of S3 alone."""

    kind = "blobsvc-auth"
    user = "bench"

    def __init__(self, name: str, workdir: str, workers: int | None = None,
                 extra_env: dict | None = None) -> None:
        super().__init__(name, workdir, fsync=True, workers=workers, extra_env=extra_env)
        self.password = secrets.token_hex(16)  # 32 characters, new every run
        #: curl reads ``--user`` from here (``-K``): the secret stays out of ``ps``.
        self.curl_config = os.path.join(self.workdir, "curl-user.conf")

    def auth_lines(self) -> list[str]:
        # JSON strings are YAML strings.
        return ["auth:", "  users:",
                f"    {self.user}: {{password: {json.dumps(self.password)}, access: write}}"]

    def start(self) -> None:
        descriptor = os.open(self.curl_config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(f'user = "{self.user}:{self.password}"\n')
        super().start()


class Nginx(Server):
    """Debian's nginx with a generated config: static files plus WebDAV PUT/DELETE."""

    kind = "nginx"

    def __init__(self, name: str, workdir: str, workers: int | None = None) -> None:
        super().__init__(name, workdir)
        self.workers = workers
        self.temp = os.path.join(self.workdir, "temp")  # same filesystem as root
        os.makedirs(self.temp)

    def url_path(self, key: str) -> str:
        return f"/{key}"

    def config_text(self) -> str:
        w = self.workdir
        user = ""
        if os.geteuid() == 0:
            # As root, nginx would run its workers as "nobody", which could not
            # write to our directories; run them as the same user as blobsvc.
            user = (f"user {pwd.getpwuid(os.geteuid()).pw_name} "
                    f"{grp.getgrgid(os.getegid()).gr_name};")
        return f"""# Generated by the blobsvc benchmark; lives only for one run.
{user}
daemon off;
master_process on;
worker_processes {self.workers or 'auto'};
pid {w}/nginx.pid;
error_log {w}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {w}/access.log;
    default_type application/octet-stream;
    sendfile on;
    # cheroot keeps a connection for any number of requests; so does this.
    keepalive_requests 1000000;
    client_body_temp_path {self.temp}/body;
    proxy_temp_path {self.temp}/proxy;
    fastcgi_temp_path {self.temp}/fastcgi;
    uwsgi_temp_path {self.temp}/uwsgi;
    scgi_temp_path {self.temp}/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.root};
        location / {{
            dav_methods PUT DELETE;
            create_full_put_path on;
            client_max_body_size 0;
            autoindex on;
            autoindex_format json;
        }}
    }}
}}
"""

    def start(self) -> None:
        config = os.path.join(self.workdir, "nginx.conf")
        with open(config, "w") as stream:
            stream.write(self.config_text())
        self._launch(["nginx", "-c", config, "-p", self.workdir + "/"])
        self._wait_ready("/")

    def log_tail(self, lines: int = 15) -> str:
        own = super().log_tail(lines)
        try:
            with open(os.path.join(self.workdir, "error.log"), errors="replace") as stream:
                return own + "".join(stream.readlines()[-lines:])
        except OSError:
            return own


class BlobsvcSwift(Blobsvc):
    """blobsvc on the swift driver, against the run's own Swift; the rest as
    shipped (segment size, timeouts, retries)."""

    kind = "blobsvc-swift"

    def __init__(self, name: str, workdir: str, swift: SwiftFixture, container: str,
                 workers: int | None = None, extra_env: dict | None = None) -> None:
        super().__init__(name, workdir, fsync=True, workers=workers, extra_env=extra_env)
        self.swift = swift
        self.container = container

    def storage_lines(self) -> list[str]:
        # JSON strings are YAML strings: "test:tester" stays one value.
        settings = {"auth_url": self.swift.auth_url, "auth_version": "1", "user": self.swift.user,
                    "key": self.swift.key, "container": self.container}
        return ["storage:", "  driver: swift"] + [f"  {k}: {json.dumps(v)}" for k, v in settings.items()]

    def disk_path(self, key: str) -> str:
        raise BenchError("objects of the swift driver are not files")


class Bare(Server):
    """The bare CherryPy file store (bench/bare.py): W2's ceiling, blobsvc's
    process model without blobsvc's code."""

    kind = "bare"

    def __init__(self, name: str, workdir: str, workers: int | None = None) -> None:
        super().__init__(name, workdir)
        self.workers = workers or os.cpu_count() or 1

    def url_path(self, key: str) -> str:
        return f"/{key}"

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
        self._launch([sys.executable, "-m", "bench.bare", "--root", self.root,
                      "--port", str(self.port), "--workers", str(self.workers)], env=env)
        self._wait_ready("/")
        wait_for_workers(self, self.workers)


def wait_for_workers(server: Server, workers: int) -> None:
    """Until the forked workers exist: one that binds late would get none of
    the connections a client opens at once."""
    deadline = time.monotonic() + START_TIMEOUT
    while len(process_tree(server.pid)) < workers + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # from fork to listen


def swiftstack_module() -> ModuleType:
    """tests/swiftstack, imported from the repository (not an installed package)."""
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    try:
        return importlib.import_module("tests.swiftstack")
    except ImportError as exc:
        raise BenchError(f"cannot import the Swift test fixture tests/swiftstack ({exc}); "
                         f"run the benchmark from a checkout of the repository") from None


def swift_problems(module: ModuleType) -> list[str]:
    """What keeps the fixture's Swift from running here, each with the fix.
    The benchmark installs nothing, so a missing Swift is an error to fix."""
    problems = []
    try:
        module.memcached_path()
    except module.SwiftUnavailable as exc:
        problems.append(str(exc))
    if not module.is_installed():
        problems.append(f"the test Swift is not installed in {module.venv_dir()}: "
                        f"`python3 -m tests.swiftstack up DIR` installs it once (pip reaches PyPI), "
                        f"so do the Swift tests")
    if importlib.util.find_spec("swiftclient") is None:
        problems.append("python-swiftclient is missing for blobsvc's swift driver and the direct "
                        "client: pip install 'blobsvc[swift]'")
    return problems


class SwiftFixture:
    """The test fixture's all-in-one Swift (memcached, account, container,
    object and proxy servers, one process each) under the run's directory.

    Owned by the run like a server: stopped by its own ``stop`` (SIGTERM,
    then SIGKILL), and then whatever of its recorded PIDs (with start
    times) is still there gets SIGKILL, whichever way the run ends.
    """

    kind = "swift"

    def __init__(self, name: str, workdir: str) -> None:
        self.name = name
        self.data_dir = os.path.join(workdir, name)
        self.stack = None
        self.recorded: list[tuple[int, int | None]] = []

    def start(self) -> None:
        module = swiftstack_module()
        problems = swift_problems(module)
        if problems:
            raise BenchError("Swift cannot run here: " + "; ".join(problems))
        self.stack = module.SwiftStack(self.data_dir)
        try:
            self.stack.start(timeout=SWIFT_START_TIMEOUT)
        except module.SwiftUnavailable as exc:
            raise BenchError(f"the test Swift did not start: {exc}") from None
        self.recorded = record(list(self.stack.pids.values()))

    @property
    def auth_url(self) -> str:
        return self.stack.auth_url

    @property
    def user(self) -> str:
        return self.stack.user

    @property
    def key(self) -> str:
        return self.stack.key

    @property
    def pid(self) -> int:
        """The proxy: the process every request goes through."""
        return self.stack.pids["proxy"]

    def alive(self) -> bool:
        return bool(self.recorded) and len(self.stack.pids) == len(self.recorded)

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
        kill_recorded(self.recorded)
        self.recorded = []

    def log_tail(self, lines: int = 15) -> str:
        if self.stack is None:
            return "(not started)"
        try:
            with open(self.stack.log_path("proxy"), errors="replace") as stream:
                return "".join(stream.readlines()[-lines:])
        except OSError:
            return "(no log)"

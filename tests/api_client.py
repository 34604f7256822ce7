"""Test helpers: one tiny HTTP client interface, two transports, and a
``blobsvc serve`` subprocess.

Both clients implement ``request(method, path, body=None, headers=None)``
and return a :class:`Response` ``(status, headers, body)``:

* ``path`` is the request target exactly as it goes on the wire
  (already percent-encoded where needed, query string included);
* ``body`` is ``bytes`` (sent with a Content-Length), an iterable of
  ``bytes`` (sent ``Transfer-Encoding: chunked``), or ``None`` (no body and
  *no* Content-Length header, so a PUT without one can be tested);
* ``headers`` is a plain dict.

:class:`WebTestClient` runs the WSGI app in-process through WebTest (note
that webob percent-decodes PATH_INFO itself); :class:`SocketClient` talks
to a real server, through ``requests`` when the path is plain and through
``http.client`` when it must reach the server byte for byte (``..``,
``//``, percent-escapes, no Content-Length), since ``requests``/urllib3
normalise dot segments.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping
from urllib.parse import quote

import requests
import webtest
import yaml
from requests.structures import CaseInsensitiveDict


@dataclass
class Response:
    status: int
    headers: CaseInsensitiveDict
    body: bytes

    def json(self):
        return json.loads(self.body)


def object_url(path: str) -> str:
    """The URL of ``path`` as given: already percent-encoded where needed."""
    return f"/v1/objects/{path}"


# -- in-process --------------------------------------------------------------


class WebTestClient:
    transport = "webtest"

    def __init__(self, wsgi_app) -> None:
        self.app = webtest.TestApp(wsgi_app)

    def request(self, method: str, path: str, body=None,
                headers: Mapping[str, str] | None = None) -> Response:
        headers = dict(headers or {})
        req = webtest.TestRequest.blank(path, method=method)
        for name, value in headers.items():
            req.headers[name] = value
        if isinstance(body, (bytes, bytearray)):
            req.body = bytes(body)
        elif body is not None:  # an iterable: what a chunked body looks like after decoding
            req.environ["wsgi.input"] = io.BytesIO(b"".join(body))
            req.environ.pop("CONTENT_LENGTH", None)
            req.environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        else:
            req.environ.setdefault("wsgi.input", io.BytesIO(b""))
        res = self.app.do_request(req, status=None, expect_errors=True)
        return Response(res.status_int, CaseInsensitiveDict(res.headerlist), res.body)

    def close(self) -> None:
        pass


# -- over a socket -----------------------------------------------------------

#: Paths requests/urllib3 might rewrite: escapes, dot segments, empty segments.
_NEEDS_RAW = re.compile(r"%|//|(^|/)\.\.?(/|$|\?)")


class SocketClient:
    transport = "socket"

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.base = f"http://{host}:{port}"
        self.session = requests.Session()

    def request(self, method: str, path: str, body=None,
                headers: Mapping[str, str] | None = None, timeout: float = 30) -> Response:
        headers = dict(headers or {})
        no_length = body is None and method in ("PUT", "POST", "PATCH")
        if no_length or _NEEDS_RAW.search(path):
            return self._raw(method, path, body, headers, timeout)
        res = self.session.request(method, self.base + path, data=body, headers=headers,
                                   timeout=timeout, allow_redirects=False)
        return Response(res.status_code, CaseInsensitiveDict(res.headers), res.content)

    def _raw(self, method, path, body, headers, timeout) -> Response:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            chunked = body is not None and not isinstance(body, (bytes, bytearray))
            if isinstance(body, (bytes, bytearray)) and "Content-Length" not in headers:
                headers["Content-Length"] = str(len(body))
            if chunked:
                headers["Transfer-Encoding"] = "chunked"
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            if chunked:
                for piece in body:
                    if piece:
                        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                conn.send(b"0\r\n\r\n")
            elif body:
                conn.send(bytes(body))
            res = conn.getresponse()
            data = res.read()
            return Response(res.status, CaseInsensitiveDict(res.getheaders()), data)
        finally:
            conn.close()

    def close(self) -> None:
        self.session.close()


def wipe(client) -> None:
    """Delete every object through the API, leaving an empty root."""
    for _ in range(20):  # a few passes at most: listings are complete each time
        entries = _walk(client, "")
        if not entries:
            return
        for path in entries:
            client.request("DELETE", object_url(quote(path)))
    raise AssertionError("could not empty the store")


def _walk(client, directory: str) -> list[str]:
    res = client.request("GET", object_url(quote(directory)) + "?limit=10000")
    if res.status != 200:
        return []
    found = []
    for entry in res.json()["entries"]:
        if entry["isdir"]:
            found += _walk(client, entry["path"] + "/")
        else:
            found.append(entry["path"])
    return found


# -- calls and checks the API suites share ------------------------------------


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def put(client, path: str, data: bytes = b"data", headers=None) -> Response:
    return client.request("PUT", object_url(path), data, headers)


def put_ok(client, path: str, data: bytes = b"data", headers=None) -> dict:
    res = put(client, path, data, headers)
    assert res.status == 201, res.body
    return res.json()


def get(client, path: str, headers=None) -> Response:
    return client.request("GET", object_url(path), None, headers)


def listing(client, directory: str = "", query: str = "") -> Response:
    return client.request("GET", object_url(directory) + query)


def post_json(client, path: str, document) -> Response:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return client.request("POST", path, body, {"Content-Type": "application/json"})


def assert_json_error(res: Response, status: int, code: str | None = None,
                      head: bool = False) -> dict | None:
    """The one error shape: JSON, never HTML or a traceback."""
    assert res.status == status, (res.status, res.body)
    assert res.headers["Content-Type"].startswith("application/json")
    if head:
        assert res.body == b""
        return None
    text = res.body.decode("utf-8")
    assert "<html" not in text.lower() and "Traceback" not in text
    error = json.loads(text)["error"]
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    else:
        assert isinstance(error["code"], str) and error["code"]
    return error


def entry_names(res: Response) -> list[str]:
    assert res.status == 200, res.body
    return [entry["name"] for entry in res.json()["entries"]]


def assert_absent(client, path: str) -> None:
    assert_json_error(get(client, path), 404, "not_found")


# -- a real server process ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environ(extra: Mapping[str, str] | None = None) -> dict:
    """The test's environment minus any BLOBSVC_* override, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOBSVC_")}
    env.update(extra or {})
    return env


_LISTENING = re.compile(r"serving \S+ driver on http://([^:\s]+):(\d+)")


class ServerProcess:
    """``python -m blobsvc serve -c CONFIG`` in a work directory.

    ``config`` is written as YAML (a string is written verbatim). With port
    0 the kernel picks a free port, read back from the start-up log line.
    """

    def __init__(self, workdir: Path, config: dict | str,
                 env: Mapping[str, str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "blobsvc.yaml"
        text = config if isinstance(config, str) else yaml.safe_dump(config)
        self.config_path.write_text(text)
        self.stderr_path = self.workdir / "stderr.log"
        self.stdout_path = self.workdir / "stdout.log"
        self.env = clean_environ(env)
        self.proc: subprocess.Popen | None = None
        self.host = "127.0.0.1"
        self.port: int | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, wait: bool = True, timeout: float = 15.0) -> ServerProcess:
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "blobsvc", "serve", "-c", str(self.config_path)],
                cwd=self.workdir, env=self.env, stdout=out, stderr=err,
                stdin=subprocess.DEVNULL,
            )
        if wait:
            self.wait_ready(timeout)
        return self

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.stderr()}")
            if self.port is None:
                match = _LISTENING.search(self.stderr())
                if match:
                    self.host, self.port = match.group(1), int(match.group(2))
            if self.port is not None:
                try:
                    if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.stderr()}")

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; only ever this PID."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        return self.proc.returncode

    def peak_rss_kib(self) -> int:
        """The largest ``VmHWM`` (peak RSS, KiB) of the server process and of
        any worker process it forked."""
        return max(_vm_hwm_kib(pid) for pid in [self.pid, *_descendants(self.pid)])

    def client(self) -> SocketClient:
        return SocketClient(self.host, self.port)


def _vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def proc_stats() -> dict[int, list[str]]:
    """pid -> the fields of /proc/PID/stat after the command name
    (state, parent pid, process group, ...) for every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                table[int(name)] = stat.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return table


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from the parent PIDs in /proc/*/stat."""
    parents: dict[int, list[int]] = {}
    for child, fields in proc_stats().items():
        parents.setdefault(int(fields[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def wait_for(predicate, timeout: float, interval: float = 0.05):
    """Poll ``predicate`` until it is truthy or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def run_cli(args: Iterable[str], cwd: Path, env: Mapping[str, str] | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blobsvc", *args], cwd=cwd,
                          env=clean_environ(env), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)

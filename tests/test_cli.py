"""The command line as a new user meets it: ``python -m blobsvc ...`` in real
subprocesses, ``hash-secret`` on a real pseudo-terminal.

Servers listen on 127.0.0.1 (port 0 unless the test needs a known port)
and are stopped by their PID whatever the test did.
"""

from __future__ import annotations

import ctypes
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from api_client import ServerProcess, clean_environ, free_port, run_cli

from blobsvc.secrets import derive, hash_token, parse_hash

SIGNING_KEY = "cli-test-signing-key-0123456789abcdef"
TOKEN = "cli-test-token-0123456789"
USERS = {"reader": {"password": "reader-pw", "access": "read"},
         "writer": {"password": "writer-pw", "access": "write"}}


def write_config(directory: Path, document: dict | str, name: str = "blobsvc.yaml") -> str:
    path = directory / name
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return str(path)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return result.stderr.strip().splitlines()


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, nothing on stdout, one line on stderr holding every fragment, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def startup_line(server: ServerProcess) -> str:
    lines = [line for line in server.stderr().splitlines() if "serving" in line and "driver on" in line]
    assert len(lines) == 1, server.stderr()
    return lines[0]


class FlagServer(ServerProcess):
    """``blobsvc serve -c CONFIG`` plus extra command-line arguments."""

    def __init__(self, workdir: Path, config: dict | str, args: list[str],
                 env: dict | None = None) -> None:
        super().__init__(workdir, config, env)
        self.args = args

    def start(self, wait: bool = True, timeout: float = 15.0) -> FlagServer:
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "blobsvc", "serve", "-c", str(self.config_path), *self.args],
                cwd=self.workdir, env=self.env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        if wait:
            self.wait_ready(timeout)
        return self


@pytest.fixture
def servers():
    """Collects ServerProcess objects and stops each by its PID at the end."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def run_serve(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 20,
              **popen) -> subprocess.CompletedProcess:
    """``blobsvc serve`` that must exit by itself; killed (by its PID) if it does not."""
    proc = subprocess.Popen([sys.executable, "-m", "blobsvc", "serve", *args], cwd=cwd,
                            env=clean_environ(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, **popen)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        raise AssertionError(f"serve did not exit:\n{stderr}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


# -- the start-up line ------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_startup_line_names_the_absolute_root_and_that_auth_is_off(tmp_path, servers, workers):
    config = {"server": {"host": "127.0.0.1", "port": 0, "workers": workers},
              "storage": {"driver": "filesystem", "root": "./blobs", "fsync": False}}
    server = ServerProcess(tmp_path, config)
    servers.append(server)
    line = startup_line(server.start())
    assert f"serving filesystem driver on http://127.0.0.1:{server.port}" in line
    assert str((tmp_path / "blobs").resolve()) in line
    assert "auth off" in line


def test_startup_line_says_memory_and_lists_the_kinds_of_auth(tmp_path, servers):
    config = {"server": {"host": "127.0.0.1", "port": 0},
              "storage": {"driver": "memory"},
              "auth": {"anonymous": "read", "users": USERS, "signing_key": SIGNING_KEY,
                       "tokens": [{"name": "ci", "token": TOKEN, "access": "write"}]}}
    server = ServerProcess(tmp_path, config)
    servers.append(server)
    line = startup_line(server.start())
    assert "in memory" in line
    for kind in ("auth on", "2 users", "1 token", "signed URLs", "anonymous read"):
        assert kind in line, line


def test_startup_line_names_the_swift_container_and_auth_host(tmp_path, servers):
    pytest.importorskip("swiftclient")
    config = {"server": {"host": "127.0.0.1", "port": 0, "workers": 1},
              "storage": {"driver": "swift", "auth_url": "http://127.0.0.1:9/auth/v1.0",
                          "user": "test:tester", "key": "testing", "container": "cli-blobs",
                          "retries": 0, "timeout": 1}}
    server = ServerProcess(tmp_path, config)
    servers.append(server)
    line = startup_line(server.start())
    assert "Swift container cli-blobs at 127.0.0.1:9" in line, line


# -- serve flags and check-config ------------------------------------------------


def test_serve_help_lists_the_flags_and_explains_the_environment(tmp_path):
    result = run_cli(["serve", "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    for text in ("--host", "--port", "--root", "--driver", "BLOBSVC_<SECTION>_<KEY>",
                 "BLOBSVC_SERVER_PORT=", "BLOBSVC_STORAGE_ROOT="):
        assert text in result.stdout, text
    assert "flag > BLOBSVC_* variable > file > default" in " ".join(result.stdout.split())


def test_serve_flags_override_the_environment_and_the_file(tmp_path, servers):
    port = free_port()
    config = {"server": {"host": "127.0.0.1", "port": free_port(), "workers": 1},
              "storage": {"driver": "filesystem", "root": "./file-data", "fsync": False}}
    env = {"BLOBSVC_SERVER_PORT": str(free_port()), "BLOBSVC_STORAGE_ROOT": "./env-data"}
    server = FlagServer(tmp_path, config, ["--port", str(port), "--root", "./flag-data"], env)
    servers.append(server)
    server.start()
    assert server.port == port
    assert requests.put(server.url + "/v1/objects/o", data=b"flag", timeout=10).status_code == 201
    assert (tmp_path / "flag-data" / "o").read_bytes() == b"flag"
    assert not (tmp_path / "env-data").exists() and not (tmp_path / "file-data").exists()


def test_serve_driver_flag_serves_from_memory(tmp_path, servers):
    server = FlagServer(tmp_path, {"server": {"port": 0}}, ["--driver", "memory", "--host", "127.0.0.1"])
    servers.append(server)
    assert "in memory" in startup_line(server.start())
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("file_port, env_port, flag_port, expected", [
    (None, None, None, "8080"),
    ("1111", None, None, "1111"),
    ("1111", "2222", None, "2222"),
    ("1111", "2222", "3333", "3333"),
    (None, None, "3333", "3333"),
], ids=["default", "file", "variable-beats-file", "flag-beats-variable", "flag-without-file"])
def test_settings_precedence_is_flag_variable_file_default(tmp_path, file_port, env_port, flag_port,
                                                            expected):
    args = ["check-config"]
    if file_port:
        args += ["-c", write_config(tmp_path, {"server": {"port": int(file_port)}})]
    if flag_port:
        args += ["--port", flag_port]
    result = run_cli(args, tmp_path, {"BLOBSVC_SERVER_PORT": env_port} if env_port else None)
    assert result.returncode == 0, result.stderr
    assert f"127.0.0.1:{expected}" in result.stdout


def test_check_config_without_a_file_checks_the_environment_and_summarises(tmp_path):
    env = {"BLOBSVC_STORAGE_ROOT": "./env-blobs", "BLOBSVC_SERVER_PORT": "9555",
           "BLOBSVC_SERVER_WORKERS": "3"}
    result = run_cli(["check-config"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    for text in ("filesystem driver on http://127.0.0.1:9555", "3 workers",
                 str((tmp_path / "env-blobs").resolve()), "auth off"):
        assert text in lines[0], lines[0]
    assert not (tmp_path / "env-blobs").exists()


def test_check_config_without_a_file_reports_a_bad_variable_in_one_line(tmp_path):
    result = run_cli(["check-config"], tmp_path, {"BLOBSVC_SERVER_PORT": "eighty"})
    assert_one_line_error(result, "server.port")


def test_check_config_summary_names_the_kinds_of_auth(tmp_path):
    config = {"server": {"host": "0.0.0.0"}, "storage": {"driver": "memory"},
              "auth": {"signing_key": SIGNING_KEY}}
    result = run_cli(["check-config", "-c", write_config(tmp_path, config)], tmp_path,
                     {"BLOBSVC_TOKEN": TOKEN})
    assert result.returncode == 0, result.stderr
    assert "in memory" in result.stdout
    for kind in ("auth on", "1 token", "signed URLs", "anonymous none"):
        assert kind in result.stdout, result.stdout


FILESYSTEM = {"driver": "filesystem", "root": "./data"}
#: A valid Swift section (Swift need not be up: check-config never reaches it).
SWIFT = {"driver": "swift", "auth_url": "http://127.0.0.1:1/auth/v1.0", "user": "u", "key": "k"}

#: (id "<driver>-<what>", config document, BLOBSVC_* variables, the key the
#: one-line error names). Every setting of a driver listed here needs a case.
DRIVER_SETTINGS_OUT_OF_RANGE = [
    ("memory-any-key", {"storage": {"driver": "memory", "root": "./data"}}, {}, "storage.root"),
    ("memory-several-workers", {"server": {"workers": 2}, "storage": {"driver": "memory"}}, {},
     "server.workers"),
    ("filesystem-no-root", {"storage": {"driver": "filesystem", "fsync": False}}, {}, "storage.root"),
    ("filesystem-root-with-nul", {"storage": {**FILESYSTEM, "root": "a\0b"}}, {}, "storage.root"),
    ("filesystem-fsync-not-bool", {"storage": {**FILESYSTEM, "fsync": 1}}, {}, "storage.fsync"),
    ("filesystem-fsync-variable", {"storage": FILESYSTEM}, {"BLOBSVC_STORAGE_FSYNC": "maybe"},
     "storage.fsync"),
    ("filesystem-file-mode-unusable", {"storage": {**FILESYSTEM, "file_mode": 0o400}}, {},
     "storage.file_mode"),
    ("filesystem-reap-interval-negative", {"storage": {**FILESYSTEM, "reap_interval": -1}}, {},
     "storage.reap_interval"),
    ("filesystem-reap-interval-text", {"storage": {**FILESYSTEM, "reap_interval": "often"}}, {},
     "storage.reap_interval"),
    ("filesystem-file-mode-world-writable", {"storage": {**FILESYSTEM, "file_mode": "0666"}}, {},
     "storage.file_mode"),
    ("filesystem-file-mode-setuid", {"storage": {**FILESYSTEM, "file_mode": 0o4600}}, {},
     "storage.file_mode"),
    ("filesystem-file-mode-decimal", {"storage": {**FILESYSTEM, "file_mode": 640}}, {},
     "storage.file_mode"),
    ("filesystem-file-mode-symbolic", {"storage": {**FILESYSTEM, "file_mode": "rw-r-----"}}, {},
     "storage.file_mode"),
    ("filesystem-file-mode-negative", {"storage": {**FILESYSTEM, "file_mode": -1}}, {},
     "storage.file_mode"),
    ("filesystem-file-mode-bool", {"storage": {**FILESYSTEM, "file_mode": True}}, {},
     "storage.file_mode"),
    ("filesystem-file-mode-variable", {"storage": FILESYSTEM}, {"BLOBSVC_STORAGE_FILE_MODE": "0666"},
     "storage.file_mode"),
    ("filesystem-dir-mode-unusable", {"storage": {**FILESYSTEM, "dir_mode": 0o600}}, {},
     "storage.dir_mode"),
    ("filesystem-dir-mode-world-writable", {"storage": {**FILESYSTEM, "dir_mode": 0o777}}, {},
     "storage.dir_mode"),
    ("filesystem-dir-mode-not-octal", {"storage": {**FILESYSTEM, "dir_mode": "755x"}}, {},
     "storage.dir_mode"),
    ("filesystem-unknown-key", {"storage": {**FILESYSTEM, "bogus": 1}}, {}, "storage.bogus"),
    *[(f"swift-{what}", {"storage": {**SWIFT, **storage}}, env, key) for what, storage, env, key in [
        ("auth-url-null", {"auth_url": None}, {}, "storage.auth_url"),
        ("auth-url-not-text", {"auth_url": 8080}, {}, "storage.auth_url"),
        ("user-null", {"user": None}, {}, "storage.user"),
        ("key-null", {"key": None}, {}, "storage.key"),
        ("auth-version-unknown", {"auth_version": "4"}, {}, "storage.auth_version"),
        ("auth-version-variable", {}, {"BLOBSVC_STORAGE_AUTH_VERSION": "v3"}, "storage.auth_version"),
        ("project-name-not-text", {"project_name": 5}, {}, "storage.project_name"),
        ("project-domain-name-not-text", {"project_domain_name": ["d"]}, {},
         "storage.project_domain_name"),
        ("user-domain-name-not-text", {"user_domain_name": 1.5}, {}, "storage.user_domain_name"),
        ("region-name-not-text", {"region_name": True}, {}, "storage.region_name"),
        ("container-empty", {"container": ""}, {}, "storage.container"),
        ("container-with-slash", {"container": "a/b"}, {}, "storage.container"),
        ("timeout-zero", {"timeout": 0}, {}, "storage.timeout"),
        ("timeout-nan", {"timeout": float("nan")}, {}, "storage.timeout"),
        ("timeout-variable", {}, {"BLOBSVC_STORAGE_TIMEOUT": "-1"}, "storage.timeout"),
        ("retries-negative", {"retries": -1}, {}, "storage.retries"),
        ("retries-fractional", {"retries": 1.5}, {}, "storage.retries"),
        ("starting-backoff-negative", {"starting_backoff": -0.1}, {}, "storage.starting_backoff"),
        ("max-backoff-negative", {"max_backoff": -0.5}, {}, "storage.max_backoff"),
        ("segment-size-zero", {"segment_size": 0}, {}, "storage.segment_size"),
        ("segment-grace-negative", {"segment_grace_seconds": -1}, {}, "storage.segment_grace_seconds"),
        ("abandoned-after-under-a-second", {"abandoned_after_seconds": 0.5}, {},
         "storage.abandoned_after_seconds"),
        ("collect-interval-negative", {"collect_interval_seconds": -1}, {},
         "storage.collect_interval_seconds"),
        ("unknown-key", {"bogus": 1}, {}, "storage.bogus"),
    ]],
]


@pytest.mark.parametrize("document, env, fragment", [case[1:] for case in DRIVER_SETTINGS_OUT_OF_RANGE],
                         ids=[case[0] for case in DRIVER_SETTINGS_OUT_OF_RANGE])
def test_check_config_refuses_an_out_of_range_driver_setting_in_one_line(tmp_path, document, env,
                                                                         fragment):
    """Checked from the settings alone: nothing is created where the objects would live."""
    if document["storage"]["driver"] == "swift":
        pytest.importorskip("swiftclient")
    result = run_cli(["check-config", "-c", write_config(tmp_path, document)], tmp_path, env)
    assert_one_line_error(result, fragment)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["blobsvc.yaml"]


def test_every_setting_of_a_driver_has_an_out_of_range_case():
    from blobsvc.storage import load_driver_class
    from blobsvc.storage.settings import field_types

    cases: dict[str, set[str]] = {}
    for _id, document, _env, fragment in DRIVER_SETTINGS_OUT_OF_RANGE:
        cases.setdefault(document["storage"]["driver"], set()).add(fragment)
    for driver, fragments in cases.items():
        settings = field_types(load_driver_class(driver).settings_class)
        uncovered = [key for key in settings if f"storage.{key}" not in fragments]
        assert not uncovered, f"{driver}: no case for {uncovered}"


# -- sign ---------------------------------------------------------------------------


def sign_config(tmp_path: Path, host: str = "127.0.0.1", **server) -> str:
    return write_config(tmp_path, {"server": {"host": host, "port": 8080, **server},
                                   "storage": {"driver": "memory"},
                                   "auth": {"signing_key": SIGNING_KEY}})


@pytest.mark.parametrize("seconds", ["0", "-1", "-3600"])
def test_sign_refuses_a_lifetime_that_is_not_positive(tmp_path, seconds):
    result = run_cli(["sign", "-c", sign_config(tmp_path), f"--expires-in={seconds}", "a/b"], tmp_path)
    assert_one_line_error(result, "--expires-in")


def test_sign_refuses_an_expiry_the_service_could_not_read(tmp_path):
    result = run_cli(["sign", "-c", sign_config(tmp_path), "--expires-in", str(10**13), "a/b"], tmp_path)
    assert_one_line_error(result, "--expires-in")


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_sign_on_a_wildcard_host_asks_for_a_public_url(tmp_path, host):
    result = run_cli(["sign", "-c", sign_config(tmp_path, host), "a/b"], tmp_path)
    assert_one_line_error(result, "--base-url", "server.public_url")


def test_sign_uses_server_public_url(tmp_path):
    config = sign_config(tmp_path, "0.0.0.0", public_url="https://blobs.example.com/store/")
    result = run_cli(["sign", "-c", config, "a/b c"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("https://blobs.example.com/store/v1/objects/a/b%20c?expires=")


def test_sign_base_url_flag_beats_public_url(tmp_path):
    config = sign_config(tmp_path, public_url="https://blobs.example.com")
    result = run_cli(["sign", "-c", config, "--base-url", "http://10.1.2.3:8080", "a/b"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("http://10.1.2.3:8080/v1/objects/a/b?expires=")


def test_public_url_from_the_environment_is_used(tmp_path):
    result = run_cli(["sign", "-c", sign_config(tmp_path, "0.0.0.0"), "a/b"], tmp_path,
                     {"BLOBSVC_SERVER_PUBLIC_URL": "https://env.example.com"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("https://env.example.com/v1/objects/a/b?")


@pytest.mark.parametrize("url", ["ftp://blobs.example.com", "blobs.example.com", "https://",
                                 "https://blobs.example.com/?a=1", "https://blobs.example.com/#top",
                                 "https://blobs.example.com:http/"])
def test_public_url_must_be_an_http_url_without_query_or_fragment(tmp_path, url):
    result = run_cli(["check-config", "-c", sign_config(tmp_path, public_url=url)], tmp_path)
    assert_one_line_error(result, "server.public_url")


def test_sign_base_url_flag_is_checked_like_public_url(tmp_path):
    result = run_cli(["sign", "-c", sign_config(tmp_path), "--base-url", "ftp://x", "a/b"], tmp_path)
    assert_one_line_error(result, "--base-url")


@pytest.mark.parametrize("host, base", [("127.0.0.1", "http://127.0.0.1:8080"),
                                        ("::1", "http://[::1]:8080")])
def test_sign_without_public_url_uses_a_specific_host(tmp_path, host, base):
    result = run_cli(["sign", "-c", sign_config(tmp_path, host), "a/b"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{base}/v1/objects/a/b?expires=")


def test_sign_prints_https_when_the_service_serves_tls(tmp_path):
    (tmp_path / "cert.pem").write_text("not checked by sign")
    (tmp_path / "key.pem").write_text("not checked by sign")
    config = write_config(tmp_path, {"server": {"port": 8443}, "storage": {"driver": "memory"},
                                     "auth": {"signing_key": SIGNING_KEY},
                                     "tls": {"cert": "cert.pem", "key": "key.pem"}})
    result = run_cli(["sign", "-c", config, "a/b"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("https://127.0.0.1:8443/v1/objects/a/b?")


def test_sign_help_shows_the_default_expiry(tmp_path):
    result = run_cli(["sign", "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3600" in result.stdout


# -- hash-secret on a terminal ------------------------------------------------------


def on_terminal(args: list[str], steps: list[tuple[bytes, bytes]], cwd: Path,
                timeout: float = 30) -> tuple[int, str]:
    """Run blobsvc with a new pseudo-terminal as its controlling terminal.

    ``steps`` are (text to wait for, keys to type) pairs: typing before a
    prompt would be flushed away when the prompt turns echo off.
    """
    env = clean_environ()
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once, nothing else
        try:
            os.chdir(cwd)
            os.execve(sys.executable, [sys.executable, "-m", "blobsvc", *args], env)
        finally:
            os._exit(127)
    deadline = time.monotonic() + timeout
    output = bytearray()
    try:
        for expected, keys in steps:
            if not _read_until(fd, output, expected, deadline):
                raise AssertionError(f"never saw {expected!r}; the terminal showed:\n"
                                     f"{output.decode(errors='replace')}")
            os.write(fd, keys)
        _read_until(fd, output, None, deadline)
        return _exit_code(pid, deadline), output.decode(errors="replace")
    finally:
        _reap(pid)
        os.close(fd)


def _read_until(fd: int, output: bytearray, expected: bytes | None, deadline: float) -> bool:
    """Read the terminal into ``output`` until ``expected`` shows (None: until it closes)."""
    while expected is None or expected not in output:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            chunk = b""
        if not chunk:
            return expected is None
        output += chunk
    return True


def _exit_code(pid: int, deadline: float) -> int:
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    raise AssertionError("hash-secret did not exit")


def _reap(pid: int) -> None:
    """Kill the child if it is still there (by its PID), and collect it."""
    try:
        if os.waitpid(pid, os.WNOHANG) == (0, 0):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def messages(output: str) -> list[str]:
    return [line for line in output.splitlines() if "blobsvc:" in line]


def test_hash_secret_on_a_terminal_asks_twice_and_prints_a_working_hash(tmp_path):
    code, output = on_terminal(["hash-secret"], [(b"secret: ", b"terminal-pw\n"),
                                                 (b"again: ", b"terminal-pw\n")], tmp_path)
    assert code == 0, output
    assert "terminal-pw" not in output  # not echoed
    hashed = next(line for line in output.splitlines() if line.startswith("pbkdf2-sha256$"))
    parsed = parse_hash(hashed)
    assert derive("terminal-pw", parsed.salt, parsed.iterations) == parsed.digest


def test_hash_secret_on_a_terminal_refuses_two_different_entries(tmp_path):
    code, output = on_terminal(["hash-secret"], [(b"secret: ", b"first-pw\n"),
                                                 (b"again: ", b"second-pw\n")], tmp_path)
    assert code == 2, output
    assert "pbkdf2-sha256$" not in output and "Traceback" not in output
    assert len(messages(output)) == 1, output


def test_hash_secret_ctrl_c_exits_130_without_a_traceback(tmp_path):
    code, output = on_terminal(["hash-secret"], [(b"secret: ", b"\x03")], tmp_path)
    assert code == 130, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output


def test_hash_secret_ctrl_d_exits_2_with_one_line(tmp_path):
    code, output = on_terminal(["hash-secret"], [(b"secret: ", b"\x04")], tmp_path)
    assert code == 2, output
    assert "Traceback" not in output and "EOFError" not in output
    assert len(messages(output)) == 1, output


def test_hash_secret_token_on_a_terminal_prints_the_token_hash(tmp_path):
    code, output = on_terminal(["hash-secret", "--token"], [(b"secret: ", TOKEN.encode() + b"\n"),
                                                            (b"again: ", TOKEN.encode() + b"\n")],
                               tmp_path)
    assert code == 0, output
    assert hash_token(TOKEN) in output


def test_hash_secret_token_from_a_pipe_still_works(tmp_path):
    result = subprocess.run([sys.executable, "-m", "blobsvc", "hash-secret", "--token"],
                            input=TOKEN + "\n", capture_output=True, text=True, timeout=60,
                            cwd=tmp_path, env=clean_environ())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == hash_token(TOKEN)


# -- serve refuses bad settings in one line --------------------------------------

SWIFT = {"driver": "swift", "auth_url": "http://127.0.0.1:9/auth/v1.0", "user": "test:tester",
         "key": "testing", "retries": 1, "timeout": 1}

BAD_SETTINGS = [
    # (id, config document, extra serve arguments, fragment the error names)
    ("root-is-a-file", {"storage": {"driver": "filesystem", "root": "./a-file"}}, [], "storage.root"),
    ("root-below-a-file", {"storage": {"driver": "filesystem", "root": "./a-file/data"}}, [],
     "storage.root"),
    ("root-is-a-file-with-workers", {"server": {"workers": 2},
                                     "storage": {"driver": "filesystem", "root": "./a-file"}}, [],
     "storage.root"),
    ("root-flag-is-a-file", {}, ["--root", "./a-file"], "storage.root"),
    ("root-with-nul", {"storage": {"driver": "filesystem", "root": "a\0b"}}, [], "storage.root"),
    ("swift-timeout-zero", {"storage": {**SWIFT, "timeout": 0}}, [], "storage.timeout"),
    ("swift-negative-backoff", {"storage": {**SWIFT, "starting_backoff": -1}}, [],
     "storage.starting_backoff"),
    ("tls-not-pem", {"tls": {"cert": "a-file", "key": "a-file"}}, [], "tls"),
    ("port-flag-out-of-range", {}, ["--port", "70000"], "server.port"),
    ("unknown-key", {"server": {"bogus": 1}}, [], "server.bogus"),
]


@pytest.mark.parametrize("document, args, fragment", [case[1:] for case in BAD_SETTINGS],
                         ids=[case[0] for case in BAD_SETTINGS])
def test_serve_with_a_bad_setting_exits_2_with_one_line(tmp_path, document, args, fragment):
    if document.get("storage", {}).get("driver") == "swift":
        pytest.importorskip("swiftclient")
    (tmp_path / "a-file").write_text("a file, not a directory")
    document = {**document, "server": {"host": "127.0.0.1", "port": 0, "workers": 1,
                                       **document.get("server", {})}}
    result = run_serve(["-c", write_config(tmp_path, document), *args], tmp_path)
    assert_one_line_error(result, fragment)


@pytest.fixture
def unwritable_root(tmp_path):
    """(work directory, extra Popen arguments): a ``locked`` directory this
    serve may not write in. Root writes anywhere, so as root the server runs
    without the capabilities that let it ignore file modes."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    popen = {}
    if os.geteuid() == 0:
        popen = {"preexec_fn": _drop_file_mode_override}
        try:
            subprocess.run(["true"], check=True, **popen)
        except (subprocess.SubprocessError, OSError):
            pytest.skip("running as root and cannot drop CAP_DAC_OVERRIDE")
    yield tmp_path, popen
    locked.chmod(0o755)


def _drop_file_mode_override() -> None:
    """In the child before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
    from the bounding set, so root's new program obeys file modes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


_PR_CAPBSET_DROP = 24  # from linux/prctl.h


@pytest.mark.parametrize("root", ["./locked", "./locked/data"], ids=["existing", "to-create"])
def test_serve_with_a_root_it_may_not_write_exits_2_with_one_line(unwritable_root, root):
    workdir, popen = unwritable_root
    config = write_config(workdir, {"server": {"host": "127.0.0.1", "port": 0, "workers": 1},
                                    "storage": {"driver": "filesystem", "root": root}})
    result = run_serve(["-c", config], workdir, **popen)
    line = assert_one_line_error(result, "storage.root")
    assert "writ" in line, line

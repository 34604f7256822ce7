"""Security of credentials, config secrets, the access log and signed URLs.

Everything that a client can observe is checked over a real socket against
a live ``blobsvc serve`` (tests/live_server.py), requests written byte for
byte; config rules are checked through ``blobsvc check-config`` and
``blobsvc serve`` as an operator would meet them.

* Authentication cost: a wrong credential costs the same whoever it names
  (no user enumeration by timing), and an unknown Bearer token costs one
  key derivation however many hashed tokens are configured.
* ``${VAR}`` values are plain strings (never YAML), typed by the setting
  they fill; weak secrets are refused at start.
* The access log escapes every field, in text and JSON.
* Signed URLs accept only the canonical spelling of their integers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, quote

import pytest
import yaml
from api_client import clean_environ, run_cli
from live_server import GroupServer, filesystem_config, raw_exchange, request_bytes

import blobsvc.config
import blobsvc.logs
from blobsvc.auth import signed_query
from blobsvc.secrets import hash_secret

ITERATIONS = 200_000  # what `blobsvc hash-secret` uses: a check costs tens of milliseconds
SIGNING_KEY = "Qm9vdHN0cmFwLXNpZ25pbmcta2V5LWZvci10ZXN0cw"
USER, PASSWORD = "alice", "alice-password-0123"
TOKENS = [f"hashed-token-{n}-{uuid.uuid4().hex}" for n in range(3)]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def pbkdf2_hash(secret: str, salt: bytes, iterations: int = ITERATIONS) -> str:
    """A ``pbkdf2-sha256$…`` hash with a chosen salt (hash-secret picks its own)."""
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    return "$".join(["pbkdf2-sha256", str(iterations), b64(salt), b64(digest)])


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def start(base: Path, auth: dict | None = None, log: dict | None = None,
          env: dict | None = None, config_text: str | None = None) -> GroupServer:
    config = filesystem_config(base / "data", workers=1)
    if auth is not None:
        config["auth"] = auth
    if log is not None:
        config["log"] = log
    server = GroupServer(base / "server", config_text or config, env)
    server.start()
    return server


# -- authentication cost -----------------------------------------------------

SHARED_SALT = os.urandom(16)


@pytest.fixture(scope="module")
def timing_server(tmp_path_factory):
    """One worker; a user with a hashed password and three hashed tokens."""
    server = start(tmp_path_factory.mktemp("timing"), auth={
        "anonymous": "none",
        "users": {USER: {"password": hash_secret(PASSWORD, ITERATIONS), "access": "write"}},
        "tokens": [{"name": f"hashed-{n}", "token": pbkdf2_hash(token, SHARED_SALT), "access": "read"}
                   for n, token in enumerate(TOKENS)],
    })
    yield server
    server.stop()


def timed_status(port: int, headers: dict) -> tuple[float, int]:
    started = time.perf_counter()
    res = raw_exchange("127.0.0.1", port, request_bytes("GET", "/v1/objects/t/x", headers))
    return time.perf_counter() - started, res.status


def median_costs(port: int, *kinds, tries: int = 9) -> list[float]:
    """Median seconds of each kind of request (a function making fresh headers),
    measured interleaved so that load on the machine hits all kinds alike."""
    samples: list[list[float]] = [[] for _ in kinds]
    for kind in kinds:  # warm-up: first requests pay for imports and threads
        timed_status(port, kind())
    for _ in range(tries):
        for sample, kind in zip(samples, kinds, strict=True):
            seconds, status = timed_status(port, kind())
            assert status == 401
            sample.append(seconds)
    return [statistics.median(sample) for sample in samples]


def test_every_hashed_token_authenticates(timing_server):
    for token in TOKENS:
        seconds, status = timed_status(timing_server.port, bearer(token))
        assert status == 404, token  # authenticated; the object does not exist


def test_unknown_token_costs_one_check_not_one_per_hashed_token(timing_server):
    unknown, wrong_password = median_costs(
        timing_server.port,
        lambda: bearer(f"unknown-{uuid.uuid4().hex}"),
        lambda: basic(USER, f"wrong-{uuid.uuid4().hex}"))
    # One key derivation each: about 1. One per configured hashed token: about 3.
    assert unknown / wrong_password < 2.0, (unknown, wrong_password)


def test_unknown_user_costs_as_much_as_a_wrong_password(timing_server):
    unknown_user, wrong_password = median_costs(
        timing_server.port,
        lambda: basic(f"nobody-{uuid.uuid4().hex[:8]}", f"wrong-{uuid.uuid4().hex}"),
        lambda: basic(USER, f"wrong-{uuid.uuid4().hex}"))
    assert 0.5 < unknown_user / wrong_password < 2.0, (unknown_user, wrong_password)


def test_cli_token_hashes_share_one_salt_and_authenticate(tmp_path):
    tokens = [f"cli-token-{uuid.uuid4().hex}" for _ in range(2)]
    hashes = []
    for token in tokens:
        result = subprocess.run([sys.executable, "-m", "blobsvc", "hash-secret", "--token"],
                                input=token + "\n", capture_output=True, text=True, timeout=60,
                                cwd=tmp_path, env=clean_environ())
        assert result.returncode == 0, result.stderr
        hashes.append(result.stdout.strip())
    assert len({h.split("$")[2] for h in hashes}) == 1, hashes
    short = subprocess.run([sys.executable, "-m", "blobsvc", "hash-secret", "--token"],
                           input="fifteen-chars-x\n", capture_output=True, text=True, timeout=60,
                           cwd=tmp_path, env=clean_environ())
    assert (short.returncode, short.stdout) == (2, ""), short  # a hash hides its length from the config
    server = start(tmp_path, auth={"tokens": [{"name": f"t{n}", "token": h, "access": "read"}
                                              for n, h in enumerate(hashes)]})
    try:
        for token in tokens:
            assert timed_status(server.port, bearer(token))[1] == 404
        assert timed_status(server.port, bearer(tokens[0][:-1]))[1] == 401
    finally:
        server.stop()


# -- config: ${VAR} is a plain string; weak secrets are refused -----------------

def check_config(tmp_path: Path, document: dict | str, env: dict | None = None):
    path = tmp_path / "check.yaml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return run_cli(["check-config", "-c", str(path)], tmp_path, env)


def test_password_from_the_environment_keeps_everything_after_a_hash_sign(tmp_path):
    text = ("server: {host: 127.0.0.1, port: 0}\n"
            f"storage: {{driver: filesystem, root: '{tmp_path / 'data'}', fsync: false}}\n"
            "log: {access_log: false}\n"
            "auth:\n  users:\n    alice:\n      password: ${ALICE_PASSWORD}\n      access: read\n")
    server = start(tmp_path, config_text=text, env={"ALICE_PASSWORD": "correct-horse #battery"})
    try:
        whole = timed_status(server.port, basic("alice", "correct-horse #battery"))[1]
        cut = timed_status(server.port, basic("alice", "correct-horse"))[1]
    finally:
        server.stop()
    assert (whole, cut) == (404, 401)


@pytest.mark.parametrize("value", [
    "correct-horse #battery", "!!str x", "123", "null", "true", "[a, b]", "{a: 1}", "'quoted'",
    "&anchor x", "*alias", "- item", "0x10", "~",
])
def test_variable_values_are_never_parsed_as_yaml(tmp_path, value):
    path = tmp_path / "c.yaml"
    path.write_text("auth:\n  users:\n    alice:\n      password: ${PW}\n"
                    "    bob:\n      password: pre-${PW}\n")
    users = {u.name: u.secret for u in blobsvc.config.load(str(path), {"PW": value}).auth.users}
    assert users == {"alice": value, "bob": "pre-" + value}


def test_signing_key_from_a_variable_or_override_is_not_cut_at_a_hash_sign(tmp_path):
    key = "k3y-material-0123456789 #and-the-rest-of-it"
    path = tmp_path / "c.yaml"
    path.write_text("auth:\n  signing_key: ${KEY}\n")
    assert blobsvc.config.load(str(path), {"KEY": key}).auth.signing_key == key
    override = blobsvc.config.load(str(path), {"KEY": "x", "BLOBSVC_AUTH_SIGNING_KEY": key})
    assert override.auth.signing_key == key


def test_whole_value_variables_take_the_type_of_their_setting(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  port: ${PORT}\n  socket_timeout: ${TIMEOUT}\n"
                    "  max_object_size: ${MAX}\n  workers: ${WORKERS:-null}\n"
                    "storage:\n  driver: filesystem\n  root: ${ROOT}\n  fsync: ${FSYNC}\n"
                    "log:\n  access_log: ${ACCESS:-false}\n"
                    "auth:\n  public_metrics: ${PUBLIC}\n  anonymous: ${ANON:-read}\n")
    config = blobsvc.config.load(str(path), {"PORT": "9001", "TIMEOUT": "2.5", "MAX": "10",
                                             "ROOT": "123", "FSYNC": "false", "PUBLIC": "true"})
    assert (config.server.port, config.server.socket_timeout) == (9001, 2.5)
    assert (config.server.max_object_size, config.server.workers) == (10, None)
    assert (config.storage.params["root"], config.storage.params["fsync"]) == ("123", False)
    assert (config.log.access_log, config.auth.public_metrics, config.auth.anonymous) \
        == (False, True, "read")


@pytest.mark.parametrize("key, value", [("PORT", "80 #comment"), ("PORT", "0x50"), ("PORT", "8_0"),
                                        ("FSYNC", "maybe"), ("PORT", "[80]")])
def test_a_variable_that_is_not_of_its_settings_type_is_refused(tmp_path, key, value):
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  port: ${PORT:-80}\nstorage:\n  driver: filesystem\n"
                    "  root: ./data\n  fsync: ${FSYNC:-true}\n")
    with pytest.raises(blobsvc.config.ConfigError) as error:
        blobsvc.config.load(str(path), {key: value})
    assert ("server.port" if key == "PORT" else "storage.fsync") in str(error.value)


STRONG_KEY = "Zk9x2LqR7vTb3WnY8sHd4JmP6cQe1UaG"  # 32 characters, random-looking
STRONG_TOKEN = "tOk3n-Ab9Zx2Qw7R"  # 16 characters


def salted(seed: str) -> bytes:
    return hashlib.sha256(seed.encode()).digest()[:16]


WEAK = [
    ("short-signing-key", {"signing_key": STRONG_KEY[:31]}, {}, "auth.signing_key"),
    ("two-letter-signing-key", {"signing_key": "abbabaabbaababbaabbbaaabababbbaaab"}, {},
     "auth.signing_key"),
    ("periodic-signing-key", {"signing_key": "0123456789abcdef" * 2}, {}, "auth.signing_key"),
    ("one-letter-signing-key", {"signing_key": "x" * 64}, {}, "auth.signing_key"),
    ("short-token", {"tokens": [{"token": STRONG_TOKEN[:15]}]}, {}, "auth.tokens[0].token"),
    ("short-env-token", {}, {"BLOBSVC_TOKEN": STRONG_TOKEN[:15]}, "BLOBSVC_TOKEN"),
    ("cheap-password-hash", {"users": {"alice": {"password": hash_secret("pw", 99_999)}}}, {},
     "auth.users.alice.password"),
    ("cheap-token-hash", {"tokens": [{"token": pbkdf2_hash("x", salted("a"), 1000)}]}, {},
     "auth.tokens[0].token"),
    ("token-hashes-with-own-salts", {"tokens": [{"token": pbkdf2_hash("x", salted("a"), 100_000)},
                                                {"token": pbkdf2_hash("y", salted("b"), 100_000)}]},
     {}, "auth.tokens[1].token"),
]


@pytest.mark.parametrize("describe, auth, env, key", WEAK, ids=[w[0] for w in WEAK])
@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_weak_secrets_are_refused_at_start_naming_the_key(tmp_path, describe, auth, env, key, command):
    path = tmp_path / "weak.yaml"
    document = {"server": {"host": "127.0.0.1", "port": 0},
                "storage": {"driver": "memory"}, "auth": auth}
    path.write_text(yaml.safe_dump(document))
    result = run_cli([command, "-c", str(path)], tmp_path, env, timeout=15)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and key in lines[0], result.stderr
    secrets = [v for v in env.values()] + [auth.get("signing_key", "")]
    assert not any(secret and secret in result.stderr for secret in secrets)


def test_strong_secrets_are_accepted(tmp_path):
    document = {"storage": {"driver": "memory"}, "auth": {
        "signing_key": STRONG_KEY,
        "users": {"alice": {"password": hash_secret("pw", 100_000)}, "bob": {"password": "short"}},
        "tokens": [{"token": STRONG_TOKEN}, {"token": pbkdf2_hash("x", salted("a"), 100_000)},
                   {"token": pbkdf2_hash("y", salted("a"), 100_000)}]}}
    result = check_config(tmp_path, document, {"BLOBSVC_TOKEN": STRONG_TOKEN[::-1]})
    assert result.returncode == 0, result.stderr



# -- the access log ----------------------------------------------------------

@pytest.fixture(scope="module", params=["text", "json"])
def logging_server(request, tmp_path_factory):
    server = start(tmp_path_factory.mktemp(f"log-{request.param}"),
                   log={"level": "info", "access_log": True, "format": request.param})
    server.log_format = request.param
    yield server
    server.stop()


LINE_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")


def read_log(server: GroupServer, marker: str, offset: int) -> str:
    """The server's log from byte ``offset`` as written (no newline translation),
    once ``marker`` is in it."""
    def read() -> str:
        return server.stderr_path.read_bytes()[offset:].decode("utf-8", errors="replace")

    deadline = time.monotonic() + 5
    while marker not in read() and time.monotonic() < deadline:
        time.sleep(0.05)
    return read()


def check_text_log(log: str, marker: str) -> None:
    # A reader may split on any line break Unicode knows (CR, NEL, U+2028...).
    forged = [line for line in log.splitlines() if line and not LINE_START.match(line)]
    assert forged == [], forged
    ours = [line for line in log.split("\n") if marker in line]
    assert len(ours) == 1, log[-2000:]
    assert ours[0].isprintable(), ours[0]
    fields = ours[0].split(": ", 1)[1].split(" ")
    assert len(fields) == 9, fields  # remote method path status in= out= ms id= user=
    assert "\\" not in fields[2], fields[2]


def check_json_log(log: str, marker: str) -> None:
    records = [json.loads(line) for line in log.split("\n") if line]
    ours = [record for record in records if marker in json.dumps(record)]
    assert len(ours) == 1, log[-2000:]
    for name, value in ours[0].items():
        assert not isinstance(value, str) or value.isprintable(), (name, value)
    assert " " not in ours[0]["path"] and "\\" not in ours[0]["path"], ours[0]["path"]


HOSTILE = [
    ("cr-in-method", "GET\rFORGED-{M}", "/v1/objects/{m}"),
    ("nel-in-method", "GET\x85FORGED-{M}", "/v1/objects/{m}"),
    ("tab-in-method", "GET\tFORGED-{M}", "/v1/objects/{m}"),
    ("nel-and-ls-in-path", "GET", "/v1/objects/{m}%C2%85FORGED%E2%80%A8FORGED"),
    ("crlf-in-path", "GET", "/v1/objects/{m}%0D%0A2030-01-01%2000:00:00,000%20INFO%20blobsvc.access:%20F"),
    ("fake-escape-in-path", "GET", "/v1/objects/{m}%5Cx0aFORGED%20user=admin"),
    ("bidi-in-path", "GET", "/v1/objects/{m}%E2%80%AEdeggol"),
]


@pytest.mark.parametrize("describe, method, target", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_access_log_escapes_every_field(logging_server, describe, method, target):
    marker = uuid.uuid4().hex
    method, target = method.format(M=marker.upper()), target.format(m=marker)
    data = (method.encode("latin-1") + b" " + target.encode("latin-1")
            + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    offset = logging_server.stderr_path.stat().st_size
    res = raw_exchange("127.0.0.1", logging_server.port, data)
    assert res.status >= 400, res.describe()
    log = read_log(logging_server, marker, offset)
    if logging_server.log_format == "json":
        check_json_log(log, marker)
    else:
        check_text_log(log, marker)


@pytest.fixture
def service_formatter(request):
    """The formatter ``blobsvc.logs.configure`` installs, the logging set-up restored after."""
    loggers = [logging.getLogger(name) for name in ("", "cherrypy.error", "cherrypy.access")]
    saved = [(logger.handlers[:], logger.level) for logger in loggers]
    blobsvc.logs.configure("info", request.param)
    yield logging.getLogger().handlers[0].formatter
    for logger, (handlers, level) in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers
        logger.setLevel(level)


@pytest.mark.parametrize("service_formatter", ["text", "json"], indirect=True)
def test_every_log_record_stays_on_one_line(service_formatter):
    """Not only the access log: other records quote client input too (a method, a path)."""
    formatter = service_formatter
    log_format = "json" if isinstance(formatter, blobsvc.logs.JsonFormatter) else "text"
    record = logging.LogRecord("blobsvc.http.app", logging.WARNING, __file__, 1, "%s %s: refused",
                               ("GET\rFORGED", "/a\nb\x85c\u2028d\u202ee"), None)
    line = formatter.format(record)
    assert line.isprintable() and len(line.splitlines()) == 1, line
    message = line if log_format == "text" else json.loads(line)["message"]
    assert "GET\\x0dFORGED /a\\x0ab\\x85c\\u2028d\\u202ee: refused" in message


# -- signed URLs ---------------------------------------------------------------

@pytest.fixture(scope="module")
def signing_server(tmp_path_factory):
    server = start(tmp_path_factory.mktemp("signed"), auth={
        "anonymous": "none", "signing_key": SIGNING_KEY,
        "tokens": [{"name": "writer", "token": STRONG_TOKEN, "access": "write"}]})
    res = raw_exchange("127.0.0.1", server.port,
                       request_bytes("PUT", "/v1/objects/s/obj", bearer(STRONG_TOKEN), b"signed"))
    assert res.status == 201, res.describe()
    yield server
    server.stop()


def signed_parts() -> tuple[str, str]:
    query = signed_query(SIGNING_KEY, "GET", "s/obj", int(time.time()) + 600)
    parsed = parse_qs(query)
    return parsed["expires"][0], parsed["signature"][0]


@pytest.mark.parametrize("spelling", [
    "0{e}", "00{e}", "+{e}", "{e}.0", "{e}_", "{a}_{b}", "%2B{e}", "%20{e}", "0x{x}",
    "{fw}",
])
def test_signed_url_expiry_must_be_spelled_canonically(signing_server, spelling):
    expires, signature = signed_parts()
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in expires)
    spelled = spelling.format(e=expires, a=expires[:3], b=expires[3:], x=f"{int(expires):x}",
                              fw=quote(fullwidth))
    target = f"/v1/objects/s/obj?expires={spelled}&signature={signature}"
    canonical = f"/v1/objects/s/obj?expires={expires}&signature={signature}"
    port = signing_server.port
    assert raw_exchange("127.0.0.1", port, request_bytes("GET", canonical)).status == 200
    res = raw_exchange("127.0.0.1", port, request_bytes("GET", target))
    assert res.status == 403, res.describe()


def test_signed_url_signature_is_one_spelling(signing_server):
    expires, signature = signed_parts()
    target = f"/v1/objects/s/obj?expires={expires}&signature={signature.upper()}"
    res = raw_exchange("127.0.0.1", signing_server.port, request_bytes("GET", target))
    assert res.status == 403, res.describe()

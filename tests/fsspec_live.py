"""One live ``blobsvc serve`` for the fsspec tests, shared by their modules.

The filesystem driver on 127.0.0.1 (a free port), with auth on so that
signed URLs and refused credentials can be tested: a write token, a read
token, a user with a password and a signing key. Each test gets a :class:`BlobsvcFileSystem` on a
fresh prefix, removed afterwards, with a small block size so that chunked
writes and ranged reads happen at test sizes.

The server fixture is imported by several modules; pytest then holds one
definition per module, so the server itself is started once and counted,
and stopped by whichever user finishes last.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Iterator

import pytest
from api_client import ServerProcess

#: Small enough that a few KiB go through chunk PUTs and cat.
BLOCK_SIZE = 1024


@dataclass
class LiveService:
    server: ServerProcess
    write_token: str
    read_token: str
    signing_key: str
    #: alice's password (HTTP Basic, write access)
    password: str
    #: write access below ``scoped/`` only
    scoped_token: str

    @property
    def url(self) -> str:
        return self.server.url

    def filesystem(self, **options):
        """A new (uncached) filesystem on the service, with write access by default."""
        from blobsvc.client.fs import BlobsvcFileSystem

        options.setdefault("token", self.write_token)
        options.setdefault("block_size", BLOCK_SIZE)
        return BlobsvcFileSystem(url=self.url, signing_key=self.signing_key,
                                 skip_instance_cache=True, **options)


_shared: dict[str, LiveService] = {}
_users = [0]


@pytest.fixture(scope="session")
def fsspec_service(tmp_path_factory) -> Iterator[LiveService]:
    if "service" not in _shared:
        workdir = tmp_path_factory.mktemp("fsspec")
        service = LiveService(None, secrets.token_hex(16), secrets.token_hex(16),  # type: ignore[arg-type]
                              secrets.token_hex(32), secrets.token_hex(16),
                              secrets.token_hex(16))
        service.server = ServerProcess(workdir, {
            "server": {"host": "127.0.0.1", "port": 0},
            "storage": {"driver": "filesystem", "root": str(workdir / "data"), "fsync": False},
            "log": {"access_log": False},
            "auth": {
                "anonymous": "none",
                "users": {"alice": {"password": service.password, "access": "write"}},
                "tokens": [{"name": "writer", "token": service.write_token, "access": "write"},
                           {"name": "reader", "token": service.read_token, "access": "read"},
                           {"name": "scoped", "token": service.scoped_token, "access": "write",
                            "prefix": "scoped/"}],
                "signing_key": service.signing_key,
            },
        }).start()
        _shared["service"] = service
    _users[0] += 1
    yield _shared["service"]
    _users[0] -= 1
    if _users[0] == 0:
        _shared.pop("service").server.stop()


def fresh_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def all_paths(fs, prefix: str) -> list[str]:
    """Every object below ``prefix`` as the service lists it, hidden ones included."""
    from blobsvc.client.errors import NotFound

    try:
        return [entry.path for entry in fs.client.iter_list(prefix, recursive=True)]
    except NotFound:
        return []


def remove_prefix(fs, prefix: str) -> None:
    """Delete everything below ``prefix``, hidden upload chunks included."""
    paths = all_paths(fs, prefix)
    for start in range(0, len(paths), 1000):
        fs.client.delete_many(paths[start:start + 1000])

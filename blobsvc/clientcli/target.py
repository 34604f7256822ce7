"""What a command-line target names, and the client that reaches it.

A target is an object path (``docs/a.txt``, against ``--url`` or
``BLOBSVC_URL``) or a whole object URL
(``http://host:8080/v1/objects/docs/a.txt``, percent-encoded as a browser
shows it), so a URL copied from a listing or a log works as it is.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from blobsvc.client import Client, InvalidPath
from blobsvc.clientcli.exits import UsageError
from blobsvc.storage.errors import InvalidPath as StorageInvalidPath
from blobsvc.storage.paths import validate_path

DEFAULT_URL = "http://127.0.0.1:8080"
OBJECTS = "/v1/objects/"


@dataclass(frozen=True)
class Target:
    """A service (its base URL) and a path on it ("" is the root)."""

    base: str
    path: str
    #: The user typed a URL, whose service overrides ``--url``.
    explicit: bool = False

    @property
    def is_dir_hint(self) -> bool:
        """A trailing ``/`` means "into this directory"."""
        return self.path.endswith("/") or self.path == ""

    @property
    def clean(self) -> str:
        """The path without its directory slashes, checked by the service's
        rules here: urllib3 would resolve ``a/../b`` to ``b`` before sending."""
        path = self.path.strip("/")
        return checked(path) if path else path


def checked(path: str, source: str | None = None) -> str:
    """``path`` if the service would take it; else InvalidPath, naming the
    local ``source`` it was made from, if any."""
    try:
        return validate_path(path)
    except StorageInvalidPath as exc:
        where = f"{source}: " if source else ""
        raise InvalidPath(f"{where}{exc.message}", code="invalid_path") from None


def service_url(args: argparse.Namespace) -> str:
    """``--url``, else ``BLOBSVC_URL``, else the service's default address."""
    url = getattr(args, "url", None) or os.environ.get("BLOBSVC_URL") or DEFAULT_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise UsageError(f"--url must be http(s)://HOST[:PORT] without query or fragment, not {url!r}")
    return url.rstrip("/")


def resolve(text: str, args: argparse.Namespace) -> Target:
    """The object a path or object URL names."""
    if text.startswith(("http://", "https://")):
        parts = urlsplit(text)
        if parts.query or parts.fragment:
            raise UsageError(f"an object URL takes no query or fragment: {text!r}")
        url_path = parts.path + "/" if parts.path.endswith(OBJECTS.rstrip("/")) else parts.path
        where = url_path.find(OBJECTS)
        if where < 0:
            raise UsageError(f"not an object URL (no {OBJECTS} in it): {text!r}")
        base_path, path = url_path[:where], unquote(url_path[where + len(OBJECTS):])
        return Target(f"{parts.scheme}://{parts.netloc}{base_path}".rstrip("/"), path, True)
    return Target(service_url(args), text.lstrip("/"))


def same_service(targets: list[Target]) -> str:
    """The one service the targets of a command are on: that of the URLs
    among them (paths go along with it), else ``--url``'s."""
    bases = {target.base for target in targets if target.explicit}
    if len(bases) > 1:
        raise UsageError("the targets of one command must be on one service: " + ", ".join(sorted(bases)))
    return bases.pop() if bases else targets[0].base


def credentials(args: argparse.Namespace) -> dict[str, Any]:
    """Token or user and password: flags first, then the environment.

    A password is never a flag (it would show in ``ps`` and the shell's
    history): it comes from ``BLOBSVC_PASSWORD`` or, on a terminal, a prompt.
    """
    token, user = getattr(args, "token", None), getattr(args, "user", None)
    if token and user:
        raise UsageError("give --token or --user, not both")
    if not token and not user:
        token = os.environ.get("BLOBSVC_TOKEN") or None
        user = None if token else os.environ.get("BLOBSVC_USER") or None
    if token:
        return {"token": token}
    if not user:
        return {}
    password = os.environ.get("BLOBSVC_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise UsageError(f"--user {user} needs BLOBSVC_PASSWORD (no terminal to ask on)")
        password = getpass.getpass(f"password for {user}: ")
    return {"user": user, "password": password}


#: Bytes per read of a download: small enough that a bar moves and that a
#: download stopped by Ctrl-C has written nearly all it received.
READ_SIZE = 128 * 1024


def client(base: str, args: argparse.Namespace) -> Client:
    """A client for ``base`` with the command line's credentials."""
    try:
        return Client(base, chunk_size=READ_SIZE, **credentials(args))
    except ValueError as exc:
        raise UsageError(str(exc)) from None

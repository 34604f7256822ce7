"""Swift connections: one per thread, one per open object stream, one auth for all.

Why: swiftclient's ``Connection`` is not thread-safe, so each thread has its
own; it reads a body through its latest response, so an object stream needs
a connection that nothing else uses until the stream is closed; and each new
connection authenticating anew would cost a round trip, so it starts with
the token another one already holds.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from swiftclient.client import Connection

from blobsvc.storage.swift.settings import SwiftSettings

#: Connections kept for the next object streams once theirs are closed.
MAX_IDLE_READERS = 16


def connection_args(settings: SwiftSettings) -> dict[str, Any]:
    """swiftclient's ``Connection`` arguments for ``settings``."""
    return {
        "authurl": settings.auth_url, "user": settings.user, "key": settings.key,
        "auth_version": str(settings.auth_version),
        "os_options": _keystone_options(settings),
        "timeout": float(settings.timeout), "retries": settings.retries,
        "starting_backoff": float(settings.starting_backoff),
        "max_backoff": float(settings.max_backoff),
    }


def _keystone_options(settings: SwiftSettings) -> dict[str, str]:
    options = {"project_name": settings.project_name,
               "project_domain_name": settings.project_domain_name,
               "user_domain_name": settings.user_domain_name,
               "region_name": settings.region_name}
    return {key: value for key, value in options.items() if value is not None}


class ConnectionPool:
    """Every connection of one driver: per thread and role, and readers of streams."""

    def __init__(self, args: dict[str, Any]) -> None:
        self._args = args
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._idle_readers: list[Connection] = []

    def conn(self, role: str = "main") -> Connection:
        """This thread's connection for ``role``.

        ``side`` serves the requests made while ``main`` streams a PUT body.
        """
        conn = getattr(self._local, role, None)
        if conn is None:
            conn = self._new_connection()
            setattr(self._local, role, conn)
        return conn

    def take_reader(self) -> Connection:
        """A connection of its own for one object stream.

        swiftclient reads a body through its connection's latest response,
        so any other request on that connection would hijack the stream.
        """
        with self._lock:
            if self._idle_readers:
                return self._idle_readers.pop()
        return self._new_connection()

    def give_back_reader(self, conn: Connection) -> None:
        with self._lock:
            if len(self._idle_readers) < MAX_IDLE_READERS:
                self._idle_readers.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every connection this pool made."""
        with self._lock:
            connections = list(self._connections)
            self._idle_readers.clear()
        for conn in connections:
            conn.close()

    def _new_connection(self) -> Connection:
        conn = Connection(**self._args, **self._known_auth())
        with self._lock:
            self._connections.add(conn)
        return conn

    def _known_auth(self) -> dict[str, str]:
        """A token another connection already holds: one auth, not one per thread."""
        with self._lock:
            for other in self._connections:
                if other.url and other.token:
                    return {"preauthurl": other.url, "preauthtoken": other.token}
        return {}

"""The Swift driver's settings, declared once: keys, types, defaults and ranges.

Why a dataclass of its own: the config loader checks a file's keys and
types against these fields, and ``check-config`` runs
:meth:`SwiftSettings.validate` without reaching Swift, so a value that
swiftclient would take and then misbehave with is refused before start-up,
in one line naming the key. The driver reads nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blobsvc.storage.settings import DriverSettings

MIB = 1024 * 1024
GIB = 1024 * MIB

#: Just under Swift's default 5 GiB object limit, leaving room for a
#: cluster whose ``max_file_size`` is set a little lower.
DEFAULT_SEGMENT_SIZE = 5 * GIB - 64 * MIB

#: Seconds the segments of a replaced or deleted large object outlive it,
#: so that readers still streaming it finish.
DEFAULT_SEGMENT_GRACE = 60.0

#: Seconds after which a write's note that nobody renewed, or a tombstone
#: (beyond the grace period), is taken as left by a process that died.
DEFAULT_ABANDONED_AFTER = 3600.0

#: Seconds between two collections of what dead processes left.
DEFAULT_COLLECT_INTERVAL = 300.0

#: The auth versions swiftclient knows (its ``AUTH_VERSIONS_V1`` to ``_V3``),
#: as a config writes them; any other fails only at the first request.
AUTH_VERSIONS = ("1", "1.0", "2", "2.0", "3", "3.0")


@dataclass(frozen=True)
class SwiftSettings(DriverSettings):
    """``storage.*`` for ``driver: swift``; see README's "Running on Swift"."""

    auth_url: str
    user: str
    key: str = field(repr=False)  # a secret: never in a repr or a traceback
    auth_version: str | int = "1"
    project_name: str | None = None
    project_domain_name: str | None = None
    user_domain_name: str | None = None
    region_name: str | None = None
    container: str = "blobsvc"
    timeout: float = 10.0
    retries: int = 2
    starting_backoff: float = 0.25
    max_backoff: float = 1.0
    segment_size: int = DEFAULT_SEGMENT_SIZE
    segment_grace_seconds: float = DEFAULT_SEGMENT_GRACE
    abandoned_after_seconds: float = DEFAULT_ABANDONED_AFTER
    #: 0: this instance collects nothing (others sharing the container do).
    collect_interval_seconds: float = DEFAULT_COLLECT_INTERVAL

    def validate(self) -> None:
        """Refuse values swiftclient would accept and then misbehave with.

        Written as ``not value >= 0`` so that a NaN is refused too.
        """
        if not self.segment_grace_seconds >= 0:
            raise ValueError("storage.segment_grace_seconds must not be negative")
        if not self.abandoned_after_seconds >= 1:
            raise ValueError("storage.abandoned_after_seconds must be at least 1")
        if not self.collect_interval_seconds >= 0:
            raise ValueError("storage.collect_interval_seconds must not be negative")
        if not self.container or "/" in self.container:
            raise ValueError("storage.container must be a non-empty name without '/'")
        if not self.timeout > 0:
            raise ValueError("storage.timeout must be positive")
        if self.retries < 0:
            raise ValueError("storage.retries must not be negative")
        if self.segment_size < 1:
            raise ValueError("storage.segment_size must be at least 1")
        for name in ("starting_backoff", "max_backoff"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"storage.{name} must not be negative")
        if str(self.auth_version) not in AUTH_VERSIONS:
            raise ValueError(f'storage.auth_version must be "1", "2" or "3", not {self.auth_version!r}')

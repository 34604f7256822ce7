"""Storage drivers, chosen by name from the config's ``storage.driver``.

A new backend is one module (or package) with a :class:`StorageDriver`
subclass and its settings dataclass (``settings_class``), plus one line in
``_DRIVERS``; ``StorageDriver.build(**params)`` checks and builds it.
"""

from __future__ import annotations

import importlib
from typing import Mapping

from blobsvc.storage.contract import (
    DeleteOutcome,
    FileRegion,
    ObjectInfo,
    ObjectMeta,
    ObjectStream,
    StorageDriver,
    Upload,
)

__all__ = [
    "DRIVER_NAMES",
    "DeleteOutcome",
    "FileRegion",
    "ObjectInfo",
    "ObjectMeta",
    "ObjectStream",
    "StorageDriver",
    "Upload",
    "create_driver",
    "load_driver_class",
]

# name -> "module:Class"; imported lazily so an optional backend's library
# (python-swiftclient) is needed only by those who choose that backend.
_DRIVERS = {
    "filesystem": "blobsvc.storage.filesystem:FilesystemDriver",
    "memory": "blobsvc.storage.memory:MemoryDriver",
    "swift": "blobsvc.storage.swift:SwiftDriver",
}

DRIVER_NAMES = tuple(_DRIVERS)


def load_driver_class(name: str) -> type[StorageDriver]:
    module_name, class_name = _DRIVERS[name].split(":")
    driver_class: type[StorageDriver] = getattr(importlib.import_module(module_name), class_name)
    return driver_class


def create_driver(name: str, params: Mapping[str, object]) -> StorageDriver:
    """Build the driver ``name`` from its config keys (checked again: ValueError)."""
    return load_driver_class(name).build(**params)

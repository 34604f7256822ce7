"""Storage drivers, chosen by name from the config's ``storage.driver``.

A new backend is one module with a :class:`StorageDriver` subclass whose
``from_config(params)`` builds it, plus one line in ``_DRIVERS``.
"""

from __future__ import annotations

import importlib

from blobsvc.storage.base import ObjectInfo, ObjectStream, StorageDriver, Upload

__all__ = [
    "DRIVER_NAMES",
    "ObjectInfo",
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
    return getattr(importlib.import_module(module_name), class_name)


def create_driver(name: str, params: dict) -> StorageDriver:
    """Build the driver ``name`` from its (already validated) settings."""
    return load_driver_class(name).from_config(params)

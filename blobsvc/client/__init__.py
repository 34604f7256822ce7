"""Clients of a running blobsvc: :class:`Client` for its whole native API,
and :class:`RemoteDriver`, the storage-driver contract over HTTP.

Install with ``pip install 'blobsvc[client]'``. Nothing here imports the
server's own libraries (CherryPy, PyYAML, prometheus-client).
"""

from __future__ import annotations

from blobsvc.client.api import Client
from blobsvc.client.download import Download
from blobsvc.client.errors import (
    BackendUnavailable,
    BadRequest,
    BlobsvcError,
    ChecksumMismatch,
    Conflict,
    Forbidden,
    IncompleteBody,
    InsufficientStorage,
    InvalidMetadata,
    InvalidPath,
    MetadataTooLarge,
    NotFound,
    PreconditionFailed,
    RangeNotSatisfiable,
    ServerError,
    StorageFault,
    TooLarge,
    TransportError,
    Unauthorized,
)
from blobsvc.client.objects import DeleteResult, Listing
from blobsvc.storage.contract import ObjectInfo

__all__ = [
    "BackendUnavailable", "BadRequest", "BlobsvcError", "ChecksumMismatch", "Client",
    "Conflict", "DeleteResult", "Download", "Forbidden", "IncompleteBody",
    "InsufficientStorage", "InvalidMetadata", "InvalidPath", "Listing", "MetadataTooLarge",
    "NotFound", "ObjectInfo", "PreconditionFailed", "RangeNotSatisfiable", "RemoteDriver",
    "ServerError", "StorageFault", "TooLarge", "TransportError", "Unauthorized",
]


def __getattr__(name: str) -> object:
    if name == "RemoteDriver":  # the driver base is loaded only by those who use it
        from blobsvc.client.remote import RemoteDriver

        return RemoteDriver
    raise AttributeError(name)

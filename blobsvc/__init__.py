"""blobsvc: a standalone HTTP blob-storage service."""

__version__ = "0.1.0"

"""The filesystem driver: objects as plain files under one root directory.

One module per job, in the order a write meets them: ``settings`` (what the
operator may set), ``driver`` (the operations), ``tempfiles`` (where a write
starts), ``locks`` (check and commit as one step across processes),
``tree`` (parent directories made and pruned), ``files`` (what is an
object, its bytes and attributes), ``objectmeta`` (the metadata record,
sidecars and their journal), ``expiry`` (the expiry index and the reaper
thread), ``errors`` (OSError to typed error), ``dircache`` (sorted names of
large directories), ``walk`` (the sorted recursive walk), ``readiness``
(/readyz).

The private area ``ROOT/.blobsvc`` holds ``tmp`` (writes in progress),
``locks``, ``meta`` (sidecars), ``journal`` (sidecars an operation may
orphan, settled when it ends or at the next start) and ``expiring`` (the
expiry index). Nothing in it is ever an object or listed.
"""

from blobsvc.storage.filesystem.driver import FilesystemDriver
from blobsvc.storage.filesystem.files import CHUNK_SIZE
from blobsvc.storage.filesystem.settings import FilesystemSettings, parse_mode

__all__ = ["CHUNK_SIZE", "FilesystemDriver", "FilesystemSettings", "parse_mode"]

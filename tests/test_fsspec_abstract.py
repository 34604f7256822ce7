"""fsspec's own conformance suite (``fsspec.tests.abstract``) on a live service.

Derived as fsspec's backends derive it: fixtures naming the filesystem and
a root path, and one class per test family. Every test works under a
fresh prefix, removed afterwards, so tests see none of each other's files.
Directories are prefixes here, as on S3: ``supports_empty_directories`` is
false, which the suite knows how to expect.
"""

from __future__ import annotations

import posixpath
from typing import Iterator

import fsspec.tests.abstract as abstract
import pytest
from fsspec_live import LiveService, fresh_prefix, fsspec_service, remove_prefix

__all__ = ["fsspec_service"]  # the session's server, used through the fixtures below


class BlobsvcFixtures(abstract.AbstractFixtures):
    @pytest.fixture
    def fs(self, fsspec_service: LiveService):
        filesystem = fsspec_service.filesystem()
        yield filesystem
        filesystem.client.close()

    @pytest.fixture
    def fs_path(self, fs) -> Iterator[str]:
        prefix = fresh_prefix()
        yield prefix
        remove_prefix(fs, prefix)

    @pytest.fixture
    def fs_join(self):
        return posixpath.join

    @pytest.fixture
    def supports_empty_directories(self) -> bool:
        return False


class TestBlobsvcCopy(abstract.AbstractCopyTests, BlobsvcFixtures):
    pass


class TestBlobsvcGet(abstract.AbstractGetTests, BlobsvcFixtures):
    pass


class TestBlobsvcPut(abstract.AbstractPutTests, BlobsvcFixtures):
    pass


class TestBlobsvcPipe(abstract.AbstractPipeTests, BlobsvcFixtures):
    pass


class TestBlobsvcOpen(abstract.AbstractOpenTests, BlobsvcFixtures):
    pass

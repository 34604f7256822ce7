"""Shared fixtures: every driver, built the way the service builds it."""

from __future__ import annotations

import pytest

from blobsvc.storage import create_driver

#: Drivers the conformance and API suites run against. The Swift backend
#: joins through its own fixture (see tests/swiftstack).
LOCAL_DRIVERS = ["memory", "filesystem"]


def driver_settings(name: str, tmp_path) -> dict:
    if name == "filesystem":
        return {"root": str(tmp_path / "data"), "fsync": False}
    return {}


@pytest.fixture(params=LOCAL_DRIVERS)
def driver_name(request) -> str:
    return request.param


@pytest.fixture
def driver(driver_name, tmp_path):
    drv = create_driver(driver_name, driver_settings(driver_name, tmp_path))
    yield drv
    drv.close()

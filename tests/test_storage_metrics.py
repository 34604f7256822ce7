"""What the driver base adds to every driver: timing, error counts, and
normalised errors (a driver bug becomes a StorageFault naming driver and path).

Every test takes the ``driver`` fixture (memory, filesystem and a real
Swift) and a fresh :class:`Metrics` set the way the app sets it.
"""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from blobsvc.metrics import Metrics
from blobsvc.storage.contract import ObjectStream
from blobsvc.storage.errors import (
    MissingChunks,
    NotFound,
    PreconditionFailed,
    StorageFault,
)

ACTIONS = ("list", "stat", "put", "open", "delete", "move", "cat", "check_ready", "read")


@pytest.fixture
def metrics(driver) -> Metrics:
    metrics = Metrics()
    driver.metrics = metrics
    return metrics


def calls(metrics: Metrics, driver) -> dict[str, int]:
    """Observations of the operation histogram, by action (zeros left out)."""
    counts = {action: metrics.registry.get_sample_value(
        "blobsvc_storage_operation_seconds_count", {"driver": driver.name, "action": action})
        for action in ACTIONS}
    return {action: int(count) for action, count in counts.items() if count}


def errors(metrics: Metrics, driver) -> dict[tuple[str, str], int]:
    """``blobsvc_storage_errors_total`` by (action, code), zeros left out."""
    counted = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "blobsvc_storage_errors_total" and sample.value:
                assert sample.labels["driver"] == driver.name
                counted[sample.labels["action"], sample.labels["code"]] = int(sample.value)
    return counted


def test_every_call_is_timed_by_driver_and_action(driver, metrics):
    driver.put_object("d/a", b"abc")
    driver.put_object("d/b", b"def")
    assert driver.stat_object("d/a").size == 3
    assert driver.get_object_size("d/a") == 3
    assert [info.name for info in driver.list_objects("d")] == ["a", "b"]
    assert driver.get_object("d/a") == b"abc"
    size, stream = driver.stream_object("d/b")
    with stream:
        assert b"".join(stream) == b"def"
    driver.move_object("d/b", "d/c")
    driver.cat_objects("joined", ["d/a", "d/c"])
    driver.delete_object("joined")
    driver.check_ready()
    assert calls(metrics, driver) == {"put": 2, "stat": 2, "list": 1, "open": 2, "move": 1,
                                      "cat": 1, "delete": 1, "check_ready": 1}
    assert errors(metrics, driver) == {}


def test_errors_are_counted_by_action_and_code(driver, metrics):
    driver.put_object("obj", b"x")
    with pytest.raises(NotFound):
        driver.stat_object("missing")
    with pytest.raises(NotFound):
        driver.get_object("missing")
    with pytest.raises(NotFound):
        driver.delete_object("missing")
    with pytest.raises(MissingChunks):
        driver.cat_objects("out", ["obj", "gone"])

    def refuse(current):
        raise PreconditionFailed("refused", "obj")

    with pytest.raises(PreconditionFailed):
        driver.move_object("obj", "other", precondition=refuse)
    assert errors(metrics, driver) == {("stat", "not_found"): 1, ("open", "not_found"): 1,
                                       ("delete", "not_found"): 1, ("cat", "not_found"): 1,
                                       ("move", "precondition_failed"): 1}
    # Failed calls are timed too.
    assert calls(metrics, driver) == {"put": 1, "stat": 1, "open": 1, "delete": 1, "cat": 1,
                                      "move": 1}


def test_metrics_are_in_the_exposition(driver, metrics):
    with pytest.raises(NotFound):
        driver.stat_object("missing")
    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for family in text_string_to_metric_families(metrics.exposition()[0].decode())
               for sample in family.samples}
    stat = (("action", "stat"), ("driver", driver.name))
    assert samples["blobsvc_storage_operation_seconds_count", stat] == 1
    assert samples["blobsvc_storage_errors_total", (stat[0], ("code", "not_found"), stat[1])] == 1


class DriverBug(Exception):
    pass


class ClientGone(Exception):
    """Not an OSError: the filesystem driver types those itself."""


def test_a_driver_bug_is_a_storage_fault_naming_driver_and_path(driver, metrics, monkeypatch, caplog):
    def broken_stat(path):
        raise DriverBug("a bug in the driver")

    monkeypatch.setattr(driver, "_stat", broken_stat)
    with caplog.at_level(logging.ERROR), pytest.raises(StorageFault) as caught:
        driver.stat_object("d/obj")
    fault = caught.value
    assert (fault.code, fault.driver, fault.path) == ("storage_error", driver.name, "d/obj")
    assert driver.name in fault.message and "d/obj" in fault.message
    assert "a bug in the driver" not in fault.message, "the client sees the message"
    assert isinstance(fault.__cause__, DriverBug)
    logged = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(logged) == 1, [record.getMessage() for record in logged]
    assert logged[0].exc_info is not None and logged[0].exc_info[1] is fault.__cause__
    assert driver.name in logged[0].getMessage() and "d/obj" in logged[0].getMessage()
    assert errors(metrics, driver) == {("stat", "storage_error"): 1}


def test_a_driver_bug_while_streaming_is_a_storage_fault(driver, metrics, monkeypatch, caplog):
    driver.put_object("obj", b"x" * 10)
    closed = []

    def failing_chunks():
        yield b"first"
        raise DriverBug("lost the file")

    def broken_open(path, offset, length):
        return driver.stat_object(path), ObjectStream(failing_chunks(), lambda: closed.append(True))

    monkeypatch.setattr(driver, "_open", broken_open)
    info, stream = driver.open_object("obj")
    with caplog.at_level(logging.ERROR), stream, pytest.raises(StorageFault) as caught:
        for _ in stream:
            pass
    assert (caught.value.driver, caught.value.path) == (driver.name, "obj")
    assert closed == [True], "the driver's stream was not released"
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    assert errors(metrics, driver) == {("read", "storage_error"): 1}


def test_what_the_callers_own_code_raises_passes_through_unchanged(driver, metrics, caplog):
    """A body or a precondition that fails is the caller's failure, not a driver bug."""
    driver.put_object("obj", b"x")
    gone = ClientGone("client gone")

    def body():
        yield b"partial"
        raise gone

    def buggy(current):
        raise KeyError("in the caller's precondition")

    with caplog.at_level(logging.ERROR):
        with pytest.raises(ClientGone) as caught:
            driver.put_object("new", body())
        assert caught.value is gone
        with pytest.raises(KeyError):
            driver.move_object("obj", "moved", precondition=buggy)
        with pytest.raises(KeyError):
            driver.delete_object("obj", precondition=buggy)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert errors(metrics, driver) == {}
    assert driver.get_object("obj") == b"x"


def test_without_metrics_nothing_is_recorded_and_errors_are_normalised_alike(driver, monkeypatch):
    driver.metrics = None
    with pytest.raises(NotFound):
        driver.stat_object("missing")
    monkeypatch.setattr(driver, "_list", lambda *args: 1 / 0)
    with pytest.raises(StorageFault):
        driver.list_objects("")

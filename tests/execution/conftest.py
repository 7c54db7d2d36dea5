"""Fixtures of the execution tests: a plugin executor registered for one test; no forkserver left;
a real Dask cluster for the dask executor's tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from runtime.execution import executors, step_runner
from runtime.execution.executors import ExecutorDefinition, register_executor
from runtime.execution.processes import stop_forkserver
from runtime.execution.step_runner import register_step_runner, step_runner_names
from tests.execution.dask_cluster import DaskCluster, start_cluster
from tests.execution.recording_runner import RecordingRunner, check_label

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="package", autouse=True)
def forkserver() -> Iterator[None]:
    """Worker-process tests start this process's forkserver; stop it after the package."""
    yield
    stop_forkserver()


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RecordingRunner]]:
    """Register the 'recording' runner and executor for one test, as a plugin module would."""
    step_runner_names()  # the built-in runners are registered before the test's
    # Placeholders, so that monkeypatch removes both names again after the test.
    monkeypatch.setitem(step_runner._RUNNERS, "recording", RecordingRunner)
    monkeypatch.setitem(executors._EXECUTORS, "recording", executors._EXECUTORS["in_process"])
    register_step_runner("recording", RecordingRunner)
    register_executor(
        ExecutorDefinition(
            name="recording", runner_for=lambda op: "recording", check_options=check_label
        )
    )
    RecordingRunner.made = []
    yield RecordingRunner.made


@pytest.fixture(scope="package")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    """A `dask scheduler` and two `dask worker` processes on 127.0.0.1, for the package's tests."""
    cluster = start_cluster(tmp_path_factory.mktemp("dask-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def dask_address(dask_cluster: DaskCluster) -> str:
    """The cluster's scheduler address, once both workers are up (a test may have killed one)."""
    dask_cluster.wait_for_workers()
    return dask_cluster.address

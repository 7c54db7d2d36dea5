"""Fixtures of the execution tests: a plugin executor registered for one test; no forkserver left."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from runtime.execution import executors, step_runner
from runtime.execution.executors import ExecutorDefinition, register_executor
from runtime.execution.processes import stop_forkserver
from runtime.execution.step_runner import register_step_runner, step_runner_names
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

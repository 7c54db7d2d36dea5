"""RunResult: how a run went, step by step.

The engine returns one when it finishes a run; the host folds one from a
run's stored events (`fold_events`). Both speak the statuses of
runtime.protocol.run_status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runtime.protocol.messages import (
    RunFailurePayload,
    StepFailurePayload,
    StepSkippedPayload,
)
from runtime.protocol.run_status import END_EVENT_STATUS, RunStatus, StepStatus

if TYPE_CHECKING:
    from collections.abc import Iterable

    from runtime.protocol.messages import ErrorInfo, RunEvent


# Slotted: the engine makes one per step of every run.
@dataclass(slots=True)
class StepOutcome:
    """One step of a run: its final status, its timings and, if it failed, why."""

    step_key: str
    status: StepStatus = StepStatus.IN_PROGRESS
    start_time: float | None = None
    end_time: float | None = None
    attempts: int = 0
    error: ErrorInfo | None = None
    skip_reason: str | None = None

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time


@dataclass
class RunResult:
    """The outcome of a run; a finished one has status SUCCESS, FAILURE or CANCELED."""

    run_id: str
    status: RunStatus
    steps: dict[str, StepOutcome] = field(default_factory=dict)
    start_time: float | None = None
    end_time: float | None = None
    failure_message: str | None = None
    failure_error: ErrorInfo | None = None
    event_count: int = 0

    @property
    def success(self) -> bool:
        return self.status == RunStatus.SUCCESS

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    @property
    def failed_steps(self) -> list[str]:
        return [key for key, step in self.steps.items() if step.status == StepStatus.FAILURE]


def fold_events(run_id: str, events: Iterable[RunEvent], *, status: str) -> RunResult:
    """Build a RunResult from a run's events in sequence order; `status` is the stored one.

    Raises ValueError for a status that is not a RunStatus.
    """
    result = RunResult(run_id=run_id, status=RunStatus(status))
    steps = result.steps
    for event in events:
        result.event_count += 1
        kind = event.event_type
        key = event.step_key
        if kind == "RUN_STARTING" and result.start_time is None:
            result.start_time = event.timestamp
        elif kind in END_EVENT_STATUS:
            result.end_time = event.timestamp
            payload = event.payload
            if isinstance(payload, RunFailurePayload):
                result.failure_message = payload.message
                result.failure_error = payload.error
        if key is None:
            continue
        step = steps.get(key)
        if step is None:
            step = steps[key] = StepOutcome(step_key=key)
        if kind == "STEP_START":
            step.attempts += 1
            if step.start_time is None:
                step.start_time = event.timestamp
        elif kind == "STEP_RESTARTED":
            # A retry is an attempt too (the engine counts it so).
            step.attempts += 1
        elif kind == "STEP_SUCCESS":
            step.status, step.end_time, step.error = StepStatus.SUCCESS, event.timestamp, None
        elif kind == "STEP_FAILURE":
            step.status, step.end_time = StepStatus.FAILURE, event.timestamp
            if isinstance(event.payload, StepFailurePayload):
                step.error = event.payload.error
        elif kind == "STEP_SKIPPED":
            step.status, step.end_time = StepStatus.SKIPPED, event.timestamp
            if isinstance(event.payload, StepSkippedPayload):
                step.skip_reason = event.payload.reason
    if result.status == RunStatus.CANCELED:
        for step in steps.values():
            if step.status == StepStatus.IN_PROGRESS:
                step.status = StepStatus.CANCELED
    return result

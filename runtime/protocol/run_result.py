"""RunResult: how a run went, folded from its stored events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runtime.protocol.messages import (
    RunFailurePayload,
    StepFailurePayload,
    StepSkippedPayload,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from runtime.protocol.messages import ErrorInfo, RunEvent


@dataclass
class StepOutcome:
    """One step of a run: its final status, its timings and, if it failed, why."""

    step_key: str
    # "SUCCESS" | "FAILURE" | "SKIPPED" | "IN_PROGRESS" | "CANCELED"
    status: str = "IN_PROGRESS"
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
    """The outcome of a finished run. `status` is "SUCCESS", "FAILURE" or "CANCELED"."""

    run_id: str
    status: str
    steps: dict[str, StepOutcome] = field(default_factory=dict)
    start_time: float | None = None
    end_time: float | None = None
    failure_message: str | None = None
    failure_error: ErrorInfo | None = None
    event_count: int = 0

    @property
    def success(self) -> bool:
        return self.status == "SUCCESS"

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    @property
    def failed_steps(self) -> list[str]:
        return [key for key, step in self.steps.items() if step.status == "FAILURE"]


_END_STATUS = {"RUN_SUCCESS": "SUCCESS", "RUN_FAILURE": "FAILURE", "RUN_CANCELED": "CANCELED"}


def fold_events(run_id: str, events: Iterable[RunEvent], *, status: str) -> RunResult:
    """Build a RunResult from a run's events in sequence order; `status` is the stored one."""
    result = RunResult(run_id=run_id, status=status)
    steps = result.steps
    for event in events:
        result.event_count += 1
        kind = event.event_type
        key = event.step_key
        if kind == "RUN_STARTING" and result.start_time is None:
            result.start_time = event.timestamp
        elif kind in _END_STATUS:
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
        elif kind == "STEP_SUCCESS":
            step.status, step.end_time, step.error = "SUCCESS", event.timestamp, None
        elif kind == "STEP_FAILURE":
            step.status, step.end_time = "FAILURE", event.timestamp
            if isinstance(event.payload, StepFailurePayload):
                step.error = event.payload.error
        elif kind == "STEP_SKIPPED":
            step.status, step.end_time = "SKIPPED", event.timestamp
            if isinstance(event.payload, StepSkippedPayload):
                step.skip_reason = event.payload.reason
    if status == "CANCELED":
        for step in steps.values():
            if step.status == "IN_PROGRESS":
                step.status = "CANCELED"
    return result

"""What the instance stores about a run: its status, its record, filters over runs, stored events.

Records are frozen msgspec Structs so they can cross threads and processes as
they are; storages build them, callers never mutate them.
"""

from __future__ import annotations

from typing import Any

import msgspec

from runtime.errors import RuntimeFrameworkError
from runtime.protocol.messages import RunEvent
from runtime.protocol.run_status import FINISHED_STATUSES, IN_FLIGHT_STATUSES, RunStatus

__all__ = [
    "FINISHED_STATUSES",
    "IN_FLIGHT_STATUSES",
    "RunFilter",
    "RunHost",
    "RunRecord",
    "RunStatus",
    "RunStatusTransitionError",
    "StoredEvent",
    "check_transition",
]


# Every status change a run may make. A run that is canceling may still end in
# SUCCESS or FAILURE when it finished before the cancellation reached it.
ALLOWED_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.NOT_STARTED: frozenset(
        {RunStatus.STARTING, RunStatus.FAILURE, RunStatus.CANCELING, RunStatus.CANCELED}
    ),
    RunStatus.STARTING: frozenset(
        {RunStatus.STARTED, RunStatus.FAILURE, RunStatus.CANCELING, RunStatus.CANCELED}
    ),
    RunStatus.STARTED: frozenset({RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELING}),
    RunStatus.CANCELING: frozenset({RunStatus.CANCELED, RunStatus.FAILURE, RunStatus.SUCCESS}),
    RunStatus.SUCCESS: frozenset(),
    RunStatus.FAILURE: frozenset(),
    RunStatus.CANCELED: frozenset(),
}


class RunStatusTransitionError(RuntimeFrameworkError):
    """A run was asked to move to a status it may not reach from the one it is in."""

    def __init__(
        self, message: str, *, run_id: str, current: RunStatus, requested: RunStatus
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.current = current
        self.requested = requested


def check_transition(
    run_id: str,
    current: RunStatus,
    requested: RunStatus,
    expected_from: frozenset[RunStatus] | set[RunStatus] | None = None,
) -> None:
    """Raise RunStatusTransitionError unless `current -> requested` is allowed (and, when
    `expected_from` is given, `current` is one of those statuses)."""
    if expected_from is not None and current not in expected_from:
        expected = ", ".join(sorted(expected_from))
        raise RunStatusTransitionError(
            f"Run {run_id} is {current}, not one of {expected}, so it cannot move to {requested}.",
            run_id=run_id,
            current=current,
            requested=requested,
        )
    if requested not in ALLOWED_TRANSITIONS[current]:
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[current])) or "nothing (it is finished)"
        raise RunStatusTransitionError(
            f"Run {run_id} cannot move from {current} to {requested}; from {current} it may move to {allowed}.",
            run_id=run_id,
            current=current,
            requested=requested,
        )


class RunHost(msgspec.Struct, frozen=True, kw_only=True):
    """The host process responsible for a run: the one that created it, then the one that starts it.

    `boot_id` and `process_start` make the identity robust to pid reuse: a pid
    alive today is the same process only if the machine has not rebooted and
    the process started at the same clock tick.
    """

    hostname: str
    pid: int
    boot_id: str | None = None
    # Process start time in clock ticks since boot (/proc/<pid>/stat field 22).
    process_start: int | None = None


class RunRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One run as stored: what it runs, where, with what, and how it went. Times are Unix seconds."""

    run_id: str
    job_name: str
    location_name: str | None = None
    status: RunStatus = RunStatus.NOT_STARTED
    run_config: dict[str, Any] = {}
    tags: dict[str, str] = {}
    step_selection: list[str] | None = None
    parent_run_id: str | None = None
    root_run_id: str | None = None
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    updated_at: float
    failure_reason: str | None = None
    host: RunHost | None = None

    @property
    def is_finished(self) -> bool:
        """True once the run reached SUCCESS, FAILURE or CANCELED."""
        return self.status.is_finished


class RunFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which runs to list. Every field that is set must match; every tag must match."""

    run_ids: list[str] | None = None
    job_name: str | None = None
    location_name: str | None = None
    statuses: list[RunStatus] | None = None
    tags: dict[str, str] = {}
    # Bounds on created_at: created_after < created_at < created_before.
    created_after: float | None = None
    created_before: float | None = None


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event with its storage id: a cursor that grows across every run of the instance."""

    storage_id: int
    event: RunEvent

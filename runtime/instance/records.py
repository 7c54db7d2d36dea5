"""What the instance stores about a run: its status, its record, filters over runs,
stored events, cancel requests.

Records are frozen msgspec Structs so they can cross threads and processes as
they are; storages build them, callers never mutate them. The records of what
the daemon keeps (leases, schedule and sensor state, ticks, heartbeats) live in
`runtime.instance.daemon_records`.
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
    "CancelRequest",
    "RunChanges",
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

    def describe(self) -> str:
        """`hostname (pid N)`, for messages and for who asked for something."""
        return f"{self.hostname} (pid {self.pid})"


class RunRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One run as stored: what it runs, where, with what, and how it went. Times are Unix seconds.

    `queued_at` is set on runs created for the run queue: such a run waits in
    NOT_STARTED until `Instance.dequeue_runs` gives it a slot.
    """

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
    queued_at: float | None = None

    @property
    def is_finished(self) -> bool:
        """True once the run reached SUCCESS, FAILURE or CANCELED."""
        return self.status.is_finished

    @property
    def is_queued(self) -> bool:
        """True while the run waits in the run queue (NOT_STARTED, created queued)."""
        return self.status is RunStatus.NOT_STARTED and self.queued_at is not None


class RunChanges(msgspec.Struct, frozen=True, kw_only=True):
    """What `RunStorage.update_run` changes on a run: every field that is not None."""

    status: RunStatus | None = None
    updated_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    failure_reason: str | None = None
    host: RunHost | None = None


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
    # True: only runs created queued (queued_at set); False: only runs created without the queue.
    queued: bool | None = None


class CancelRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Someone asked for a run to stop: the host driving it acts on it, wherever it runs."""

    run_id: str
    requested_at: float
    # Who asked, for messages: a host description or a user name.
    requested_by: str


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event with its storage id: a cursor that grows across every run of the instance."""

    storage_id: int
    event: RunEvent

"""How a run and its steps stand: the one vocabulary of statuses, shared by the
engine, the code server, the host and storage."""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    """Where a run is in its life: NOT_STARTED -> STARTING -> STARTED -> SUCCESS | FAILURE,
    and CANCELING -> CANCELED."""

    NOT_STARTED = "NOT_STARTED"
    STARTING = "STARTING"
    STARTED = "STARTED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"

    @property
    def is_finished(self) -> bool:
        """True for the statuses a run never leaves: SUCCESS, FAILURE and CANCELED."""
        return self in FINISHED_STATUSES

    @property
    def is_in_flight(self) -> bool:
        """True while a host process is responsible for the run (STARTING, STARTED, CANCELING)."""
        return self in IN_FLIGHT_STATUSES


FINISHED_STATUSES: frozenset[RunStatus] = frozenset(
    {RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED}
)
IN_FLIGHT_STATUSES: frozenset[RunStatus] = frozenset(
    {RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING}
)

# The event that ends a run, for each way a run can end.
END_EVENT_STATUS: dict[str, RunStatus] = {
    "RUN_SUCCESS": RunStatus.SUCCESS,
    "RUN_FAILURE": RunStatus.FAILURE,
    "RUN_CANCELED": RunStatus.CANCELED,
}


class StepStatus(enum.StrEnum):
    """How a step of a run stands: IN_PROGRESS until it ends in one of the others."""

    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    SKIPPED = "SKIPPED"
    CANCELED = "CANCELED"

"""Run status transitions: the rules, applied over a storage's compare-and-set `update_run`.

A transition reads the run, checks the move is allowed (`check_transition`),
works out what it stamps, and writes it only if the run is still in the status
it read; if another process moved the run meanwhile it reads again and
re-decides. Statuses only move forward (NOT_STARTED -> STARTING -> STARTED ->
CANCELING -> finished), so that loop ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.errors import RunNotFoundError
from runtime.instance.records import (
    FINISHED_STATUSES,
    RunChanges,
    RunStatus,
    check_transition,
)

if TYPE_CHECKING:
    from collections.abc import Collection

    from runtime.instance.records import RunHost, RunRecord
    from runtime.instance.storage.base import RunStorage


def transition_changes(
    record: RunRecord,
    status: RunStatus,
    *,
    now: float,
    host: RunHost,
    failure_reason: str | None = None,
) -> RunChanges:
    """What moving `record` to `status` at `now` writes.

    `started_at` on STARTED, `ended_at` on a finished status; `host` is recorded
    on STARTING (the process that will drive the run), and on STARTED when the
    run has no host yet, so a later instance can tell whether the run's host died.
    """
    stamps_host = status is RunStatus.STARTING or (
        status is RunStatus.STARTED and record.host is None
    )
    return RunChanges(
        status=status,
        updated_at=now,
        started_at=now if status is RunStatus.STARTED else None,
        ended_at=now if status in FINISHED_STATUSES else None,
        failure_reason=failure_reason,
        host=host if stamps_host else None,
    )


async def transition(
    storage: RunStorage,
    run_id: str,
    status: RunStatus,
    *,
    now: float,
    host: RunHost,
    expected_from: Collection[RunStatus] | None = None,
    failure_reason: str | None = None,
) -> RunRecord:
    """Move a run to `status` and return the stored record; see Instance.update_run_status."""
    expected = None if expected_from is None else frozenset(expected_from)
    while True:
        record = await storage.get_run(run_id)
        if record is None:
            raise RunNotFoundError(f"No run with id {run_id} in {storage.describe()}.")
        if record.status is status and (expected is None or status in expected):
            return record  # asked twice (CANCELING -> CANCELING): nothing to change
        check_transition(run_id, record.status, status, expected)
        changes = transition_changes(
            record, status, now=now, host=host, failure_reason=failure_reason
        )
        updated = await storage.update_run(run_id, changes, expected_statuses={record.status})
        if updated is not None:
            return updated
        # Another process moved the run since we read it: decide again from where it is.

"""Runs whose host died: find them, fail them with the reason, and end their event streams.

A run NOT_STARTED (with a recorded creator), STARTING, STARTED or CANCELING
whose recorded host process has exited can never finish. It is marked
FAILURE with a reason naming the pid, and an ENGINE_EVENT and a RUN_FAILURE
are appended through a RunLog that continues the run's stored sequence, so
whoever follows its events sees it end. The status change is a
compare-and-set: of two instances sweeping at once, one fails the run and
appends the events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from runtime.instance.host import dead_host_reason, host_is_alive
from runtime.instance.records import IN_FLIGHT_STATUSES, RunChanges, RunFilter, RunStatus
from runtime.protocol.messages import EnginePayload, RunFailurePayload
from runtime.protocol.run_log import ListSink, RunLog

if TYPE_CHECKING:
    from collections.abc import Sequence

    from runtime.instance.records import RunRecord
    from runtime.instance.storage.base import RunStorage


def orphan_reason(run: RunRecord) -> str | None:
    """Why a run can never finish because the process responsible for it exited, or None.

    Blocking (it reads /proc): call it off the event loop.
    """
    if run.status is not RunStatus.NOT_STARTED:
        return dead_host_reason(run)
    if run.host is None or host_is_alive(run.host) is not False:
        return None
    return (
        f"The process (pid {run.host.pid}) that created this run exited before the run "
        f"started; it was still {run.status} when the instance found it, and nothing "
        "else will start it."
    )


async def orphan_reasons(runs: Sequence[RunRecord]) -> list[str | None]:
    """`orphan_reason` of each run, computed in a worker thread."""
    if not runs:
        return []
    return await anyio.to_thread.run_sync(lambda: [orphan_reason(run) for run in runs])


async def fail_run(storage: RunStorage, run: RunRecord, reason: str, *, now: float) -> bool:
    """Fail a run that is still in `run.status`, then append ENGINE_EVENT and RUN_FAILURE.

    Returns False (and changes nothing) when the run moved on since `run` was read.
    """
    changes = RunChanges(
        status=RunStatus.FAILURE, updated_at=now, ended_at=now, failure_reason=reason
    )
    if await storage.update_run(run.run_id, changes, expected_statuses={run.status}) is None:
        return False
    metadata: dict[str, Any] = {"previous_status": str(run.status)}
    if run.host is not None:
        metadata["host_pid"] = run.host.pid
    sink = ListSink()
    log = RunLog(run.run_id, sink, next_sequence=await storage.last_sequence(run.run_id) + 1)
    log.emit(
        "ENGINE_EVENT", payload=EnginePayload(message=reason, metadata=metadata), timestamp=now
    )
    log.emit("RUN_FAILURE", payload=RunFailurePayload(message=reason), timestamp=now)
    await storage.store_events(sink.events)
    return True


async def fail_orphaned_runs(storage: RunStorage, *, now: float) -> list[str]:
    """Fail every run whose host died (see the module); return their ids, oldest first."""
    statuses = [RunStatus.NOT_STARTED, *sorted(IN_FLIGHT_STATUSES)]
    runs = [
        run
        for run in reversed(await storage.get_runs(RunFilter(statuses=statuses)))
        # A queued run is only someone's once its creator recorded itself as its
        # host; older records without one are left alone.
        if run.host is not None
    ]
    failed: list[str] = []
    for run, reason in zip(runs, await orphan_reasons(runs), strict=True):
        if reason is not None and await fail_run(storage, run, reason, now=now):
            failed.append(run.run_id)
    return failed

"""The run-monitoring loop: runs that can never finish are failed, runs that run too long
are cancelled.

Every `monitor_interval`:
- runs whose host process died (in flight, or queued by a dead creator) are
  failed with the reason naming the pid (`Instance.fail_orphaned_runs`), so a
  killed host or run worker never leaves a run STARTED forever;
- a run STARTING for longer than `start_timeout` (its host never got it going,
  or its host is on another machine and silent) gets a cancel request, so a
  host that is alive after all lets it go, and is failed saying so;
- a run that carries `runtime/max_runtime_seconds` (or Dagster's
  `dagster/max_runtime`) and has been in flight longer than that since it
  started gets a cancel request (`Instance.request_cancel`) whose
  `requested_by` says why; its host stops it and it ends CANCELED.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import anyio

from runtime.daemon import tags as T
from runtime.daemon.loop import run_loop
from runtime.instance.records import RunFilter, RunStatus

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from runtime.daemon.context import DaemonContext
    from runtime.instance.records import RunRecord

__all__ = ["RunMonitorLoop", "max_runtime"]

logger = logging.getLogger("runtime.daemon")

LOOP_NAME = "run_monitoring"


def max_runtime(run: RunRecord) -> tuple[float, str] | None:
    """(seconds, tag) of the run's max runtime tag, or None. Raises ValueError for a value
    that is not a positive number of seconds."""
    for tag in (T.MAX_RUNTIME_TAG, T.DAGSTER_MAX_RUNTIME_TAG):
        value = run.tags.get(tag)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(
                f"Run {run.run_id} has tag {tag}={value!r}, which is not a positive number "
                "of seconds; the daemon does not limit its runtime."
            )
        return seconds, tag
    return None


class RunMonitorLoop:
    """Fails runs of dead hosts and runs stuck STARTING; cancels runs past their max runtime."""

    def __init__(self, ctx: DaemonContext) -> None:
        self._ctx = ctx
        # Runs this daemon asked to cancel for their runtime, and runs whose tag it reported.
        self._cancelled: set[str] = set()
        self._reported: set[str] = set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await run_loop(
            self._ctx,
            LOOP_NAME,
            self._iterate,
            retry_after=self._ctx.options.monitor_interval,
            task_status=task_status,
        )

    async def _iterate(self) -> float:
        ctx = self._ctx
        for run_id in await ctx.instance.fail_orphaned_runs():
            logger.warning("run %s failed: the process that ran it died", run_id)
        now = ctx.clock.now()
        in_flight = await ctx.instance.storage.get_runs(
            RunFilter(statuses=[RunStatus.STARTING, RunStatus.STARTED])
        )
        for run in in_flight:
            if run.status is RunStatus.STARTING:
                await self._check_start(run, now)
            else:
                await self._check_runtime(run, now)
        alive = {run.run_id for run in in_flight}
        self._cancelled &= alive
        self._reported &= alive
        return now + ctx.options.monitor_interval

    async def _check_start(self, run: RunRecord, now: float) -> None:
        timeout = self._ctx.options.start_timeout
        waited = now - run.updated_at
        if waited <= timeout:
            return
        host = run.host.describe() if run.host is not None else "no recorded host"
        reason = (
            f"The run was STARTING for {waited:.1f} s, longer than the daemon's start timeout "
            f"of {timeout:g} s; its host ({host}) never started it."
        )
        # First, so a host that is alive after all lets the run go instead of starting it
        # late (a finished run takes no cancel request).
        await self._ctx.instance.request_cancel(run.run_id, requested_by=_daemon(reason))
        if await self._ctx.instance.fail_run(run, reason):
            logger.warning("run %s failed: %s", run.run_id, reason)

    async def _check_runtime(self, run: RunRecord, now: float) -> None:
        if run.run_id in self._cancelled:
            return
        try:
            limit = max_runtime(run)
        except ValueError as exc:
            if run.run_id not in self._reported:
                self._reported.add(run.run_id)
                logger.warning("%s", exc)
            return
        if limit is None:
            return
        seconds, tag = limit
        started = run.started_at if run.started_at is not None else run.updated_at
        if now - started <= seconds:
            return
        reason = f"the run exceeded its max runtime of {seconds:g} s (tag {tag})"
        self._cancelled.add(run.run_id)
        await self._ctx.instance.request_cancel(run.run_id, requested_by=_daemon(reason))
        logger.warning("run %s: %s; cancelling it", run.run_id, reason)


def _daemon(reason: str) -> str:
    from runtime.instance.host import current_host

    return f"the runtime daemon on {current_host().describe()}: {reason}"

"""The run-queue loop: offer the instance's shared queue a pass every `queue_interval`.

`Instance.dequeue_runs` moves queued runs that fit under `max_concurrent_runs`
and the tag limits to STARTING, counting every host of the instance; each
dequeued run is then driven by the host that created it. It also fails a
queued run whose host died (and the runs in flight of dead hosts, which would
hold their slots forever), so nothing waits for a host that is gone. Hosts
make passes of their own while their runs wait; the daemon's keeps the queue
moving when no live host is looking.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from runtime.daemon.loop import run_loop

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from runtime.daemon.context import DaemonContext

__all__ = ["RunQueueLoop"]

logger = logging.getLogger("runtime.daemon")

LOOP_NAME = "run_queue"


class RunQueueLoop:
    """Dequeues runs of every host under the instance's run coordinator limits."""

    def __init__(self, ctx: DaemonContext) -> None:
        self._ctx = ctx

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await run_loop(
            self._ctx,
            LOOP_NAME,
            self._iterate,
            retry_after=self._ctx.options.queue_interval,
            task_status=task_status,
        )

    async def _iterate(self) -> float:
        ctx = self._ctx
        for run in await ctx.instance.dequeue_runs():
            host = run.host.describe() if run.host is not None else "its host"
            logger.info("dequeued run %s of job %s for %s", run.run_id, run.job_name, host)
        return ctx.clock.now() + ctx.options.queue_interval

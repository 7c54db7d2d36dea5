"""RunQueue: this host's queued runs wait here for the turn the instance's shared queue gives them.

With the queued run coordinator a run is stored queued (NOT_STARTED) and its
driver waits. The decision of which queued runs start lives in the instance
(`Instance.dequeue_runs`: `max_concurrent_runs` and tag limits counted over
every process sharing the instance, under a lease), so limits hold across
hosts. While any run of this host waits, one task here asks the instance to
dequeue, at once when something here changed (a run queued or finished) and
otherwise every `poll_interval`, and wakes each waiting driver whose run left
NOT_STARTED, whoever moved it: this host, another one, or a daemon.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from runtime.instance.records import RunFilter, RunStatus

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from runtime.instance.instance import Instance
    from runtime.instance.records import RunRecord

logger = logging.getLogger("runtime.runs")

# How often waiting runs look at the shared queue when nothing here changes:
# a slot freed by another host is noticed within this.
POLL_INTERVAL = 0.2


class _Waiter:
    __slots__ = ("done", "record")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.record: RunRecord | None = None


class RunQueue:
    """Waits for queued runs' turns; one dequeue task runs while any run waits."""

    def __init__(
        self, instance: Instance, task_group: TaskGroup, *, poll_interval: float = POLL_INTERVAL
    ) -> None:
        self._instance = instance
        self._task_group = task_group
        self._poll_interval = poll_interval
        self._waiting: dict[str, _Waiter] = {}
        self._poked = anyio.Event()
        self._running = False

    async def wait_turn(self, run_id: str) -> RunRecord:
        """Return the run's record once it left NOT_STARTED (STARTING when it was dequeued).

        Cancelling the caller stops waiting; the run stays queued for its owner to end.
        """
        waiter = self._waiting.setdefault(run_id, _Waiter())
        self.poke()
        if not self._running:
            self._running = True
            self._task_group.start_soon(self._dequeue_while_waiting, name="run queue")
        try:
            await waiter.done.wait()
        finally:
            self._waiting.pop(run_id, None)
        assert waiter.record is not None
        return waiter.record

    def poke(self) -> None:
        """Something changed here (a run queued or ended): look at the queue now."""
        self._poked.set()

    async def _dequeue_while_waiting(self) -> None:
        try:
            while self._waiting:
                self._poked = anyio.Event()
                try:
                    await self._instance.dequeue_runs()
                    await self._wake_started()
                except Exception:
                    # A storage hiccup: the next pass tries again; waiting runs stay queued.
                    logger.exception("the run queue could not be read; retrying")
                with anyio.move_on_after(self._poll_interval):
                    await self._poked.wait()
        finally:
            self._running = False

    async def _wake_started(self) -> None:
        ids = list(self._waiting)
        if not ids:
            return
        records = await self._instance.storage.get_runs(RunFilter(run_ids=ids))
        for record in records:
            if record.status is RunStatus.NOT_STARTED:
                continue
            waiter = self._waiting.get(record.run_id)
            if waiter is not None and not waiter.done.is_set():
                waiter.record = record
                waiter.done.set()

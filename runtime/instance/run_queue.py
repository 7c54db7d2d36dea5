"""The run queue: which queued runs start next, under limits that bind every host of the instance.

A pass holds the lease "run_queue", so one process at a time decides; it reads
the queued runs (NOT_STARTED, created queued) in creation order and the runs
in flight, and moves each queued run that fits under `max_concurrent_runs` and
every tag limit it falls under to STARTING, stamped with its creating host,
which drives it from there. A run held back by a tag limit does not hold back
the runs behind it that fall under other limits. A queued run whose creating
host died is failed instead, and so is a run in flight on a host that died,
which would otherwise hold its slot forever; a queued run with a cancel
request is left to its host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from runtime.instance.orphans import fail_run, orphan_reasons
from runtime.instance.records import IN_FLIGHT_STATUSES, RunChanges, RunFilter, RunStatus

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from runtime.instance.config import QueuedRunCoordinatorConfig, TagConcurrencyLimit
    from runtime.instance.records import RunRecord
    from runtime.instance.storage.base import RunStorage

RUN_QUEUE_LEASE = "run_queue"
# Long enough for one pass, short enough that a host dying mid-pass stalls the
# queue only briefly.
RUN_QUEUE_LEASE_TTL = 10.0


def _falls_under(limit: TagConcurrencyLimit, tags: Mapping[str, str]) -> bool:
    # With a value: runs with that tag value; without one: runs with that tag key.
    return limit.key in tags and (limit.value is None or tags[limit.key] == limit.value)


class RunSlots:
    """How many runs are in flight, in total and under each tag limit; which more fit.

    `config` None means no limits (the immediate coordinator).
    """

    def __init__(
        self, config: QueuedRunCoordinatorConfig | None, in_flight: Iterable[RunRecord]
    ) -> None:
        self._max = None if config is None else config.max_concurrent_runs
        self._limits = [] if config is None else list(config.tag_concurrency_limits)
        self._total = 0
        self._used = [0] * len(self._limits)
        for run in in_flight:
            self.take(run.tags)

    def fits(self, tags: Mapping[str, str]) -> bool:
        """True if one more run with these tags stays under every limit (a limit of 0 blocks)."""
        if self._max is not None and self._total >= self._max:
            return False
        return all(
            used < limit.limit
            for limit, used in zip(self._limits, self._used, strict=True)
            if _falls_under(limit, tags)
        )

    def take(self, tags: Mapping[str, str]) -> None:
        """Count one more run with these tags in flight."""
        self._total += 1
        for index, limit in enumerate(self._limits):
            if _falls_under(limit, tags):
                self._used[index] += 1


async def dequeue(
    storage: RunStorage,
    config: QueuedRunCoordinatorConfig | None,
    *,
    holder: str,
    now: float,
) -> list[RunRecord]:
    """One pass over the queue (see the module); the runs it moved to STARTING, in order.

    Returns [] at once when another process holds the queue's lease.
    """
    if not await storage.acquire_lease(RUN_QUEUE_LEASE, holder, RUN_QUEUE_LEASE_TTL, now):
        return []
    try:
        return await _dequeue(storage, config, now=now)
    finally:
        with anyio.CancelScope(shield=True):
            await storage.release_lease(RUN_QUEUE_LEASE, holder)


async def _dequeue(
    storage: RunStorage, config: QueuedRunCoordinatorConfig | None, *, now: float
) -> list[RunRecord]:
    newest_first = await storage.get_runs(RunFilter(statuses=[RunStatus.NOT_STARTED], queued=True))
    if not newest_first:
        return []
    queued = newest_first[::-1]
    in_flight = await storage.get_runs(RunFilter(statuses=sorted(IN_FLIGHT_STATUSES)))
    # A run in flight on a host that died would hold its slot forever: fail it, free the slot.
    alive: list[RunRecord] = []
    for run, dead_reason in zip(in_flight, await orphan_reasons(in_flight), strict=True):
        if dead_reason is None or not await fail_run(storage, run, dead_reason, now=now):
            alive.append(run)
    slots = RunSlots(config, alive)
    cancel_requested = {
        request.run_id
        for request in await storage.get_cancel_requests([run.run_id for run in queued])
    }
    dequeued: list[RunRecord] = []
    for run, dead_reason in zip(queued, await orphan_reasons(queued), strict=True):
        if dead_reason is not None:
            await fail_run(storage, run, dead_reason, now=now)
            continue
        if run.run_id in cancel_requested or not slots.fits(run.tags):
            continue
        changes = RunChanges(status=RunStatus.STARTING, updated_at=now, host=run.host)
        started = await storage.update_run(
            run.run_id, changes, expected_statuses={RunStatus.NOT_STARTED}
        )
        if started is None:
            continue  # canceled or failed meanwhile
        slots.take(run.tags)
        dequeued.append(started)
    return dequeued

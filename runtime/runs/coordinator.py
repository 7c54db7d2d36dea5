"""Run coordinators: when a launched run may start.

`immediate` starts every run at once. `queued` holds runs in NOT_STARTED until
they fit under `max_concurrent_runs` and every tag concurrency limit they fall
under, in launch order per limit. Limits are taken in one fixed order (tag
limits as configured, then the total), so two waiting runs can never hold each
other's slots, and a run held back by a tag limit holds no slot of the total.
The limits hold among the runs of one workspace (one host process).
"""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from runtime.instance.config import QueuedRunCoordinatorConfig, RunCoordinatorConfig


class _Blocked:
    """A limit of 0: runs under it wait until cancelled."""

    async def __aenter__(self) -> None:
        await anyio.sleep_forever()

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class RunCoordinator:
    """Hands out run slots according to the instance's run_coordinator config."""

    def __init__(self, config: RunCoordinatorConfig) -> None:
        self._queued: QueuedRunCoordinatorConfig | None = config.queued
        self._total: anyio.CapacityLimiter | None = None
        self._tag_limiters: list[tuple[str, str | None, anyio.CapacityLimiter | _Blocked]] = []
        if self._queued is not None:
            self._total = anyio.CapacityLimiter(self._queued.max_concurrent_runs)
            for limit in self._queued.tag_concurrency_limits:
                limiter = anyio.CapacityLimiter(limit.limit) if limit.limit > 0 else _Blocked()
                self._tag_limiters.append((limit.key, limit.value, limiter))

    @property
    def kind(self) -> str:
        return "immediate" if self._queued is None else "queued"

    @asynccontextmanager
    async def slot(self, tags: Mapping[str, str]) -> AsyncIterator[None]:
        """Wait until a run with these tags may start; hold its slot for the block."""
        if self._total is None:
            yield
            return
        async with AsyncExitStack() as stack:
            # Tag limits first: a run held back by its tags must not sit on
            # one of the max_concurrent_runs slots that other runs could use.
            for key, value, limiter in self._tag_limiters:
                if key in tags and (value is None or tags[key] == value):
                    await stack.enter_async_context(limiter)
            await stack.enter_async_context(self._total)
            yield

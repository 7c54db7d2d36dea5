"""The shape every daemon loop shares: iterate, survive errors, sleep until the next due
moment on the daemon's clock (or until something finished and wants a look)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import TaskStatus

    from runtime.daemon.context import DaemonContext

__all__ = ["Waker", "run_loop"]

logger = logging.getLogger("runtime.daemon")


class Waker:
    """Lets a task cut a loop's sleep short (a tick finished: its next one may be due sooner)."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def wake(self) -> None:
        self._event.set()

    async def sleep_until(self, ctx: DaemonContext, deadline: float) -> None:
        """Sleep on the daemon's clock until `deadline`, or until `wake()`."""
        event = self._event
        if not event.is_set():
            async with anyio.create_task_group() as group:

                async def clock() -> None:
                    await ctx.clock.sleep_until(deadline)
                    group.cancel_scope.cancel()

                async def woken() -> None:
                    await event.wait()
                    group.cancel_scope.cancel()

                group.start_soon(clock)
                group.start_soon(woken)
        self._event = anyio.Event()


async def run_loop(
    ctx: DaemonContext,
    name: str,
    iterate: Callable[[], Awaitable[float]],
    *,
    waker: Waker | None = None,
    retry_after: float,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Call `iterate()` (which returns when it next wants to run, on the clock) forever.

    An exception in one iteration is logged and kept for the heartbeat; the
    loop tries again `retry_after` seconds later (storage hiccups, a location
    mid-reload). Only cancellation ends it.
    """
    health = ctx.loop_health(name)
    waker = waker or Waker()
    task_status.started()
    while True:
        try:
            wake_at = await iterate()
        except Exception as exc:
            logger.exception("the %s loop failed; retrying in %g s", name, retry_after)
            health.failed(f"{type(exc).__name__}: {exc}")
            wake_at = ctx.clock.now() + retry_after
        health.iterated()
        await waker.sleep_until(ctx, wake_at)

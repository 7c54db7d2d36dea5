"""Daemon: schedules, sensors, the run queue and run monitoring over one Workspace.

    async with Workspace.from_yaml("workspace.yaml") as ws, Daemon(ws):
        await anyio.sleep_forever()        # or serve something else in this loop

Entering opens the workspace's instance, takes the instance's daemon lease
(refusing with DaemonAlreadyRunningError while another daemon's heartbeat is
fresh) and starts the loops in a task group of its own; leaving stops them,
stores how interrupted ticks ended, and gives the lease up. Runs the daemon
launches belong to the workspace, which drives them and ends them when it
closes. No signal handlers, no threads of its own, no global state: a
service runs it in its own event loop.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from runtime.daemon.clock import SystemClock
from runtime.daemon.context import DaemonContext
from runtime.daemon.lease import DaemonLease
from runtime.daemon.options import DaemonOptions
from runtime.errors import RuntimeFrameworkError

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from types import TracebackType
    from typing import Self

    from anyio.abc import TaskGroup

    from runtime.daemon.clock import Clock
    from runtime.host.workspace import Workspace

__all__ = ["Daemon"]

logger = logging.getLogger("runtime.daemon")


class Daemon:
    """Ticks the workspace's schedules and sensors, moves the run queue, watches runs.

    `options` picks the loops and their intervals and timeouts (DaemonOptions);
    `clock` is where the loops read the time (default: the system's; tests
    pass a ManualClock). Entering raises DaemonAlreadyRunningError when another
    daemon runs on the instance, and what opening the instance raises. If
    another daemon takes the lease over while this one runs (it stalled past
    `heartbeat_timeout`), the loops stop and DaemonLeaseLostError leaves the
    `async with` block. A Daemon is entered once.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        options: DaemonOptions | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.workspace = workspace
        self.options = options or DaemonOptions()
        self.clock: Clock = clock or SystemClock()
        self._ctx: DaemonContext | None = None
        self._lease: DaemonLease | None = None
        self._tg: TaskGroup | None = None
        self._entered = False
        self._closed = False

    @property
    def loops(self) -> list[str]:
        """The loops this daemon runs (once entered), by name."""
        return list(self._ctx.health) if self._ctx is not None else []

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeFrameworkError("A Daemon can be entered only once; build a new one.")
        self._entered = True
        instance = await self.workspace.open_instance()
        ctx = DaemonContext(
            workspace=self.workspace, instance=instance, clock=self.clock, options=self.options
        )
        self._ctx = ctx
        lease = DaemonLease(ctx)
        await lease.acquire()
        self._lease = lease
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            for name, loop in self._loops(ctx, tg):
                ctx.loop_health(name)
                await tg.start(loop, name=f"daemon {name} loop")
            await tg.start(lease.keep, name="daemon lease")
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        logger.info(
            "daemon running on the instance at %s: %s", instance.home, ", ".join(ctx.health)
        )
        return self

    def _loops(
        self, ctx: DaemonContext, tg: TaskGroup
    ) -> list[tuple[str, Callable[..., Coroutine[Any, Any, None]]]]:
        from runtime.daemon.monitoring import RunMonitorLoop
        from runtime.daemon.run_queue import RunQueueLoop
        from runtime.daemon.schedules import ScheduleLoop
        from runtime.daemon.sensors import SensorLoop

        loops: list[tuple[str, Callable[..., Coroutine[Any, Any, None]]]] = []
        if self.options.schedules:
            loops.append(("schedules", ScheduleLoop(ctx, tg).run))
        if self.options.sensors:
            loops.append(("sensors", SensorLoop(ctx, tg).run))
        if self.options.run_queue:
            loops.append(("run_queue", RunQueueLoop(ctx).run))
        if self.options.run_monitoring:
            loops.append(("run_monitoring", RunMonitorLoop(ctx).run))
        return loops

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._closed:
            return
        self._closed = True
        tg, self._tg = self._tg, None
        try:
            if tg is not None:
                # Ticks in flight store how they ended; then every loop is gone.
                tg.cancel_scope.cancel()
                tg.cancel_scope.shield = True
                try:
                    await tg.__aexit__(None, None, None)
                except BaseExceptionGroup as group:
                    # One loop's error (the lease lost) is the daemon's, not a group's.
                    if len(group.exceptions) == 1:
                        raise group.exceptions[0] from None
                    raise
        finally:
            if self._lease is not None:
                with anyio.CancelScope(shield=True):
                    try:
                        await self._lease.release()
                    except Exception:
                        logger.exception("could not release the daemon lease")

    async def aclose(self) -> None:
        """Stop every loop and give the lease up; call from the task that entered. Safe twice."""
        await self.__aexit__(None, None, None)

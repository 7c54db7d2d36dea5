"""The sensor loop: every running sensor is evaluated every `minimum_interval_seconds`.

Each tick gets the cursor and the time of the previous tick from the stored
state and leaves its new cursor there, so a restarted daemon continues where
the last one stopped; run keys are claimed in the instance (runtime.daemon.ticks),
so one never launches twice. A sensor that raises, returns something invalid
or outlives the tick timeout records a FAILURE tick with the reason, keeps its
cursor, and is evaluated again an interval later. Slow sensors do not hold up
the others: each tick runs in its own task.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import anyio
import msgspec

from runtime.daemon import tags as T
from runtime.daemon.instigators import effective_status, list_instigators, update_state
from runtime.daemon.loop import Waker, run_loop
from runtime.daemon.ticks import STOPPED_MID_TICK, TickPlan, run_tick
from runtime.instance.daemon_records import InstigatorKind, InstigatorStatus, TickStatus
from runtime.protocol.messages import EvaluateSensorRequest

if TYPE_CHECKING:
    from anyio.abc import TaskGroup, TaskStatus

    from runtime.daemon.context import DaemonContext
    from runtime.daemon.instigators import Instigator
    from runtime.instance.daemon_records import InstigatorState
    from runtime.protocol.client import CodeLocationClient
    from runtime.protocol.messages import TickResult

__all__ = ["SensorLoop"]

logger = logging.getLogger("runtime.daemon")

LOOP_NAME = "sensors"


class SensorLoop:
    """Ticks running sensors when their interval has passed; ticks run in `task_group`."""

    def __init__(self, ctx: DaemonContext, task_group: TaskGroup) -> None:
        self._ctx = ctx
        self._task_group = task_group
        self._in_progress: set[str] = set()
        # When each sensor last ticked here, in case its state could not be stored:
        # a storage hiccup must not turn into a sensor evaluated in a tight loop.
        self._ticked_at: dict[str, float] = {}
        self._waker = Waker()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await run_loop(
            self._ctx,
            LOOP_NAME,
            self._iterate,
            waker=self._waker,
            retry_after=self._ctx.options.poll_interval,
            task_status=task_status,
        )

    async def _iterate(self) -> float:
        ctx = self._ctx
        now = ctx.clock.now()
        wake_at = now + ctx.options.poll_interval
        sensors = list_instigators(ctx.workspace.locations, InstigatorKind.SENSOR)
        if not sensors:
            return wake_at
        # Ticks in flight now, taken before the states are read: a tick that ends
        # meanwhile stored its state before it left this set, so it is either
        # still counted as busy here or its new state is in what is read.
        busy = set(self._in_progress)
        states = {
            state.instigator_id: state
            for state in await ctx.instance.get_instigator_states(kind=InstigatorKind.SENSOR)
        }
        for sensor in sensors:
            state = states.get(sensor.id)
            if sensor.id in busy or sensor.id in self._in_progress:
                continue
            if effective_status(sensor, state) is InstigatorStatus.STOPPED:
                continue
            assert sensor.sensor is not None
            interval = float(sensor.sensor.minimum_interval_seconds)
            last = state.last_tick_at if state is not None else None
            ticked = max(last or -math.inf, self._ticked_at.get(sensor.id, -math.inf))
            if now < ticked + interval:
                wake_at = min(wake_at, ticked + interval)
                continue
            self._in_progress.add(sensor.id)
            self._task_group.start_soon(
                self._tick,
                sensor,
                now,
                state.cursor if state is not None else None,
                last,
                name=f"tick of {sensor.label}",
            )
        return wake_at

    async def _tick(
        self, sensor: Instigator, tick_time: float, cursor: str | None, last: float | None
    ) -> None:
        ctx = self._ctx
        try:
            await self._close_abandoned_tick(sensor)
            name = sensor.name

            async def evaluate(client: CodeLocationClient, seconds: float) -> TickResult:
                request = EvaluateSensorRequest(
                    sensor_name=name, cursor=cursor, last_tick_time=last
                )
                return await client.evaluate_sensor(request, timeout=seconds)

            plan = TickPlan(
                instigator=sensor,
                tick_time=tick_time,
                evaluate=evaluate,
                tags={T.SENSOR_NAME_TAG: name},
            )
            _, result = await run_tick(ctx, plan)

            def change(state: InstigatorState) -> InstigatorState:
                new_cursor = state.cursor
                if result is not None and result.error is None:
                    if state.cursor == cursor:
                        new_cursor = result.cursor
                    else:
                        logger.info(
                            "the cursor of %s was set while it ticked; keeping the one set",
                            sensor.label,
                        )
                return msgspec.structs.replace(state, cursor=new_cursor, last_tick_at=tick_time)

            with anyio.CancelScope(shield=True):
                await update_state(ctx.instance, sensor, change, now=tick_time)
        except Exception as exc:
            logger.exception("the tick of %s failed", sensor.label)
            ctx.loop_health(LOOP_NAME).failed(f"{sensor.label}: {type(exc).__name__}: {exc}")
        finally:
            self._ticked_at[sensor.id] = tick_time
            self._in_progress.discard(sensor.id)
            self._waker.wake()

    async def _close_abandoned_tick(self, sensor: Instigator) -> None:
        """A tick a killed daemon left STARTED ends as FAILURE saying so."""
        left = await self._ctx.instance.get_ticks(sensor.id, limit=1, statuses=[TickStatus.STARTED])
        for tick in left:
            await self._ctx.instance.update_tick(
                msgspec.structs.replace(tick, status=TickStatus.FAILURE, error=STOPPED_MID_TICK)
            )

"""The schedule loop: one tick per cron time of every running schedule.

Each iteration reads the workspace's schedules and their stored states. A
running schedule fires for the cron times after it started running (its
`running_since`) and after its last tick; after downtime it does not fire a
burst of missed ticks, only the latest, and the tick says how many it skipped.
Cron times are worked out on the host (runtime.daemon.cron, DST-correct in the
schedule's execution timezone); the tick itself is evaluated in the code
location. A tick interrupted by a stopping daemon is stored as such and
resumed (same tick, same claimed run keys) by the next daemon; any other
finished tick for a cron time is never evaluated again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import msgspec

from runtime.daemon import tags as T
from runtime.daemon.cron import CronSchedule
from runtime.daemon.instigators import (
    RUNNING_SINCE,
    effective_status,
    list_instigators,
    update_state,
    with_data,
)
from runtime.daemon.loop import Waker, run_loop
from runtime.daemon.ticks import STOPPED_MID_TICK, TickPlan, run_tick
from runtime.errors import ConfigError
from runtime.instance.daemon_records import InstigatorKind, InstigatorStatus, TickStatus
from runtime.protocol.messages import EvaluateScheduleRequest

if TYPE_CHECKING:
    from anyio.abc import TaskGroup, TaskStatus

    from runtime.daemon.context import DaemonContext
    from runtime.daemon.instigators import Instigator
    from runtime.instance.daemon_records import InstigatorState, TickRecord
    from runtime.protocol.client import CodeLocationClient
    from runtime.protocol.messages import TickResult

__all__ = ["ScheduleLoop"]

logger = logging.getLogger("runtime.daemon")

LOOP_NAME = "schedules"
# Missed cron times counted for the note of a catch-up tick.
_COUNT_MISSED = 1000


class ScheduleLoop:
    """Ticks running schedules at their cron times; ticks run in `task_group`."""

    def __init__(self, ctx: DaemonContext, task_group: TaskGroup) -> None:
        self._ctx = ctx
        self._task_group = task_group
        self._in_progress: set[str] = set()
        self._waker = Waker()
        self._crons: dict[tuple[str, str], CronSchedule | None] = {}

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
        schedules = list_instigators(ctx.workspace.locations, InstigatorKind.SCHEDULE)
        if not schedules:
            return wake_at
        # Ticks in flight now, taken before the states are read: a tick that ends
        # meanwhile stored its state before it left this set, so it is either
        # still counted as busy here or its new state is in what is read.
        busy = set(self._in_progress)
        states = {
            state.instigator_id: state
            for state in await ctx.instance.get_instigator_states(kind=InstigatorKind.SCHEDULE)
        }
        running: list[tuple[Instigator, CronSchedule, float]] = []
        for schedule in schedules:
            state = states.get(schedule.id)
            if effective_status(schedule, state) is InstigatorStatus.STOPPED:
                if state is not None and RUNNING_SINCE in state.data:
                    # A later start fires only for cron times after it.
                    await update_state(
                        ctx.instance,
                        schedule,
                        lambda s: with_data(s, **{RUNNING_SINCE: None}),
                        now=now,
                    )
                continue
            if schedule.id in busy or schedule.id in self._in_progress:
                continue
            cron = self._cron(schedule)
            if cron is None:
                continue
            since = state.data.get(RUNNING_SINCE) if state is not None else None
            if not isinstance(since, int | float):
                state = await update_state(
                    ctx.instance,
                    schedule,
                    lambda s: with_data(s, **{RUNNING_SINCE: now}),
                    now=now,
                )
                since = now
            assert state is not None
            running.append((schedule, cron, max(float(since), state.last_tick_at or float(since))))
        # Cron arithmetic is pure CPU (milliseconds near a DST change, more to count
        # what a long downtime missed): off the event loop.
        plans = await anyio.to_thread.run_sync(
            lambda: [_plan(cron, after, now) for _, cron, after in running]
        )
        for (schedule, cron, _), (due, missed, upcoming) in zip(running, plans, strict=True):
            if due is not None:
                self._start_tick(schedule, cron, due, missed)
            elif upcoming is not None:
                wake_at = min(wake_at, upcoming)
        return wake_at

    def _cron(self, schedule: Instigator) -> CronSchedule | None:
        assert schedule.schedule is not None
        key = (schedule.schedule.cron_schedule, schedule.schedule.execution_timezone)
        if key not in self._crons:
            try:
                self._crons[key] = CronSchedule(*key)
            except ConfigError as exc:
                # The code server accepted it, this host cannot (e.g. no tzdata for the zone).
                logger.error("%s cannot be scheduled here: %s", schedule.label, exc)
                self._ctx.loop_health(LOOP_NAME).failed(f"{schedule.label}: {exc}")
                self._crons[key] = None
        return self._crons[key]

    def _start_tick(
        self, schedule: Instigator, cron: CronSchedule, tick_time: float, missed: list[float]
    ) -> None:
        notes: list[str] = []
        if missed:
            many = len(missed) > _COUNT_MISSED
            count = f"more than {_COUNT_MISSED}" if many else str(len(missed))
            notes.append(
                f"Missed {count} earlier cron time(s) from {cron.describe(missed[0])} on, while "
                f"no daemon ran this schedule; only the latest, {cron.describe(tick_time)}, "
                "was evaluated."
            )
        self._in_progress.add(schedule.id)
        self._task_group.start_soon(
            self._tick, schedule, cron, tick_time, notes, name=f"tick of {schedule.label}"
        )

    async def _tick(
        self, schedule: Instigator, cron: CronSchedule, tick_time: float, notes: list[str]
    ) -> None:
        ctx = self._ctx
        try:
            previous = await ctx.instance.get_ticks(schedule.id, limit=1)
            resume: TickRecord | None = None
            if previous and previous[0].tick_time == tick_time:
                if not _interrupted(previous[0]):
                    await self._ticked(schedule, tick_time)  # done before; the state lagged
                    return
                resume = previous[0]
            scheduled = cron.describe(tick_time)
            name = schedule.name

            async def evaluate(client: CodeLocationClient, seconds: float) -> TickResult:
                request = EvaluateScheduleRequest(schedule_name=name, scheduled_time=tick_time)
                return await client.evaluate_schedule(request, timeout=seconds)

            plan = TickPlan(
                instigator=schedule,
                tick_time=tick_time,
                evaluate=evaluate,
                tags={T.SCHEDULE_NAME_TAG: name, T.SCHEDULED_TIME_TAG: scheduled},
                run_key_prefix=f"{scheduled}/",
                claim_unkeyed=True,
                notes=notes,
                resume=resume,
            )
            await run_tick(ctx, plan)
            with anyio.CancelScope(shield=True):
                await self._ticked(schedule, tick_time)
        except Exception as exc:
            logger.exception("the tick of %s at %s failed", schedule.label, tick_time)
            ctx.loop_health(LOOP_NAME).failed(f"{schedule.label}: {type(exc).__name__}: {exc}")
        finally:
            self._in_progress.discard(schedule.id)
            self._waker.wake()

    async def _ticked(self, schedule: Instigator, tick_time: float) -> InstigatorState:
        def change(state: InstigatorState) -> InstigatorState:
            last = max(state.last_tick_at or tick_time, tick_time)
            return msgspec.structs.replace(state, last_tick_at=last)

        return await update_state(self._ctx.instance, schedule, change, now=self._ctx.clock.now())


def _plan(
    cron: CronSchedule, after: float, now: float
) -> tuple[float | None, list[float], float | None]:
    """(the cron time due now, the earlier ones missed since `after`, the next one).

    Due is the latest cron time in (after, now], if any; then the next is None.
    """
    latest = cron.latest_at_or_before(now)
    if latest is not None and latest > after:
        counted = cron.times_between(after, latest, limit=_COUNT_MISSED + 1)
        missed = [t for t in counted if t < latest]
        return latest, missed, None
    return None, [], cron.next_after(max(after, now))


def _interrupted(tick: TickRecord) -> bool:
    """True for a tick a daemon left unfinished: still STARTED, or stopped mid-tick."""
    return tick.status is TickStatus.STARTED or (
        tick.status is TickStatus.FAILURE and tick.error == STOPPED_MID_TICK
    )

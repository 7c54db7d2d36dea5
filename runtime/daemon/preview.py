"""Evaluate a schedule or sensor once, as its next tick would, without launching anything
or storing a tick (`runtime schedule preview`, `runtime sensor preview`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from runtime.daemon.cron import CronSchedule
from runtime.errors import CodeLocationError
from runtime.instance.daemon_records import InstigatorKind
from runtime.protocol.messages import EvaluateScheduleRequest, EvaluateSensorRequest

if TYPE_CHECKING:
    from runtime.daemon.instigators import Instigator
    from runtime.host.workspace import Workspace
    from runtime.instance.daemon_records import InstigatorState
    from runtime.protocol.messages import TickResult

__all__ = ["next_tick_time", "preview"]

_UNSET = object()


def next_tick_time(schedule: Instigator, after: float) -> float | None:
    """The schedule's first cron time after `after` (None: it never fires again).

    Raises ConfigError when this host cannot read its cron expression or timezone.
    """
    assert schedule.schedule is not None
    cron = CronSchedule(schedule.schedule.cron_schedule, schedule.schedule.execution_timezone)
    return cron.next_after(after)


async def preview(
    workspace: Workspace,
    instigator: Instigator,
    state: InstigatorState | None,
    *,
    now: float,
    cursor: str | None | object = _UNSET,
    tick_timeout: float = 60.0,
) -> tuple[float, TickResult]:
    """(tick time, result) of evaluating `instigator` once in its location.

    A schedule is evaluated at its next cron time after `now`; a sensor with
    its stored cursor (or `cursor`) and last tick time. Raises
    CodeLocationError when the location cannot evaluate it, TimeoutError past
    `tick_timeout` seconds.
    """
    location = workspace.location(instigator.location)
    with anyio.fail_after(tick_timeout + 1):
        async with location.lease() as server:
            if instigator.kind is InstigatorKind.SCHEDULE:
                tick_time = next_tick_time(instigator, now)
                if tick_time is None:
                    raise CodeLocationError(f"{instigator.label.capitalize()} never fires again.")
                request = EvaluateScheduleRequest(
                    schedule_name=instigator.name, scheduled_time=tick_time
                )
                return tick_time, await server.client.evaluate_schedule(
                    request, timeout=tick_timeout
                )
            stored = state.cursor if state is not None else None
            given = stored if cursor is _UNSET else cursor
            assert given is None or isinstance(given, str)
            sensor_request = EvaluateSensorRequest(
                sensor_name=instigator.name,
                cursor=given,
                last_tick_time=state.last_tick_at if state is not None else None,
            )
            return now, await server.client.evaluate_sensor(sensor_request, timeout=tick_timeout)

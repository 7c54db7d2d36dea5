"""Schedules ticked by a Daemon: one tick per cron time, no burst after downtime, DST edges.

Time is a ManualClock except in the real-time test, whose SystemClock is
shifted so that a minute boundary is a second or two away.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import anyio
import pytest

from runtime.daemon.clock import ManualClock, SystemClock
from runtime.daemon.tags import SCHEDULE_NAME_TAG, SCHEDULED_TIME_TAG
from runtime.instance.daemon_records import TickStatus
from tests.daemon.daemon_helpers import (
    finished_runs,
    start,
    wait_for_ticks,
    wait_until,
    workspace_and_daemon,
)
from tests.daemon.locations import HANGS_ONCE, SCHEDULES, write_location

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.workspace.options import SupervisorOptions

pytestmark = pytest.mark.anyio

UTC = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")


def at(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    *,
    tz: ZoneInfo = UTC,
    fold: int = 0,
) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz, fold=fold).timestamp()


async def test_a_per_minute_schedule_ticks_once_per_minute_and_once_after_downtime(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    location = write_location(tmp_path, SCHEDULES)
    clock = ManualClock(at(2026, 5, 1, 12, 0, 30))
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        schedule = await start(ws, "schedule", "every_minute", clock.now())
        instance = await ws.open_instance()
        clock.set(at(2026, 5, 1, 12, 0, 59))
        await anyio.sleep(0.3)
        assert await instance.get_ticks(schedule.id) == []  # 12:00 was before it started
        clock.set(at(2026, 5, 1, 12, 1))
        (first,) = await wait_for_ticks(instance, schedule.id, 1)
        clock.set(at(2026, 5, 1, 12, 2, 10))
        second = (await wait_for_ticks(instance, schedule.id, 2))[-1]
        assert (first.tick_time, second.tick_time) == (at(2026, 5, 1, 12, 1), at(2026, 5, 1, 12, 2))
        assert first.status is second.status is TickStatus.SUCCESS and first.notes == []
        runs = await finished_runs(instance, first.run_ids + second.run_ids)
        assert sorted(r.tags[SCHEDULED_TIME_TAG] for r in runs) == [
            "2026-05-01T12:01:00+00:00",
            "2026-05-01T12:02:00+00:00",
        ]
        assert {r.tags[SCHEDULE_NAME_TAG] for r in runs} == {"every_minute"}

    # Down from 12:02:10 to 12:07:30: 12:03 ... 12:06 are missed, 12:07 is evaluated.
    clock = ManualClock(at(2026, 5, 1, 12, 7, 30))
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        instance = await ws.open_instance()
        ticks = await wait_for_ticks(instance, schedule.id, 3)
        assert len(ticks) == 3
        caught_up = ticks[-1]
        assert caught_up.tick_time == at(2026, 5, 1, 12, 7)
        assert caught_up.status is TickStatus.SUCCESS and len(caught_up.run_ids) == 1
        assert caught_up.notes == [
            "Missed 4 earlier cron time(s) from 2026-05-01T12:03:00+00:00 on, while no daemon "
            "ran this schedule; only the latest, 2026-05-01T12:07:00+00:00, was evaluated."
        ]
        await anyio.sleep(0.3)
        assert len(await instance.get_ticks(schedule.id)) == 3  # no second tick for 12:07


async def test_a_schedule_ticks_in_real_time(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    location = write_location(tmp_path, SCHEDULES)
    real = time.time()
    # The system clock, shifted so the next minute boundary is 1.5 s of real time away.
    clock = SystemClock(offset=(math.floor(real / 60) + 1) * 60 - 1.5 - real)
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        schedule = await start(ws, "schedule", "every_minute", clock.now())
        instance = await ws.open_instance()
        (tick,) = await wait_for_ticks(instance, schedule.id, 1, limit=20)
        assert tick.status is TickStatus.SUCCESS
        assert tick.tick_time % 60 == 0
        (run,) = await finished_runs(instance, tick.run_ids)
        assert run.status == "SUCCESS"


async def test_spring_forward_a_2_30_schedule_runs_at_3_00_then_at_2_30_again(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    location = write_location(tmp_path, SCHEDULES)
    clock = ManualClock(at(2024, 3, 10, 1, 0, tz=NEW_YORK))
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        schedule = await start(ws, "schedule", "nightly_new_york", clock.now())
        instance = await ws.open_instance()
        clock.set(at(2024, 3, 10, 1, 59, 59, tz=NEW_YORK))
        await anyio.sleep(0.3)
        assert await instance.get_ticks(schedule.id) == []
        clock.advance(1)  # 1:59:59 EST + 1 s is 3:00:00 EDT
        (first,) = await wait_for_ticks(instance, schedule.id, 1)
        assert first.tick_time == at(2024, 3, 10, 3, 0, tz=NEW_YORK) == at(2024, 3, 10, 7, 0)
        clock.set(at(2024, 3, 11, 2, 30, tz=NEW_YORK))
        second = (await wait_for_ticks(instance, schedule.id, 2))[-1]
        assert second.tick_time == at(2024, 3, 11, 2, 30, tz=NEW_YORK)
        runs = {r.run_id: r for r in await finished_runs(instance, first.run_ids + second.run_ids)}
        first_run, second_run = runs[first.run_ids[0]], runs[second.run_ids[0]]
        # What the schedule function saw, and the tag the daemon set, in New York time.
        assert first_run.tags["local"] == "2024-03-10T03:00:00-04:00"
        assert first_run.tags[SCHEDULED_TIME_TAG] == "2024-03-10T03:00:00-04:00"
        assert second_run.tags[SCHEDULED_TIME_TAG] == "2024-03-11T02:30:00-04:00"


async def test_fall_back_hourly_ticks_in_both_repeated_hours_and_1_30_ticks_once(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    location = write_location(tmp_path, SCHEDULES)
    clock = ManualClock(at(2024, 11, 3, 0, 10, tz=NEW_YORK))
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        hourly = await start(ws, "schedule", "hourly_new_york", clock.now())
        daily = await start(ws, "schedule", "one_thirty_new_york", clock.now())
        instance = await ws.open_instance()

        async def step(moment: float, schedule_id: str, count: int) -> list[float]:
            clock.set(moment)
            return [t.tick_time for t in await wait_for_ticks(instance, schedule_id, count)]

        # 2024-11-03: 1:00-2:00 happens twice, first in EDT (UTC-4), then in EST (UTC-5).
        await step(at(2024, 11, 3, 1, 0, tz=NEW_YORK, fold=0), hourly.id, 1)
        await step(at(2024, 11, 3, 1, 30, tz=NEW_YORK, fold=0), daily.id, 1)
        await step(at(2024, 11, 3, 1, 0, tz=NEW_YORK, fold=1), hourly.id, 2)
        clock.set(at(2024, 11, 3, 1, 30, tz=NEW_YORK, fold=1))  # the second 1:30
        hourly_times = await step(at(2024, 11, 3, 2, 0, tz=NEW_YORK), hourly.id, 3)
        assert hourly_times == [at(2024, 11, 3, 5, 0), at(2024, 11, 3, 6, 0), at(2024, 11, 3, 7, 0)]
        assert [t.tick_time for t in await instance.get_ticks(daily.id)] == [
            at(2024, 11, 3, 5, 30)  # 1:30 EDT only
        ]
        daily_times = await step(at(2024, 11, 4, 1, 30, tz=NEW_YORK), daily.id, 2)
        assert daily_times[-1] == at(2024, 11, 4, 6, 30)  # 1:30 EST the next day


async def test_a_tick_cut_short_by_a_stop_is_resumed_by_the_next_daemon(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    location = write_location(tmp_path, HANGS_ONCE)
    clock = ManualClock(at(2026, 5, 1, 12, 0, 30))
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        schedule = await start(ws, "schedule", "hangs_once", clock.now())
        instance = await ws.open_instance()
        clock.set(at(2026, 5, 1, 12, 1))
        await wait_until(lambda: instance.get_ticks(schedule.id))
        await wait_until(lambda: anyio.Path(tmp_path / "evaluated-once").exists())
    # Stopped mid-evaluation: the tick says so, and no cron time was taken as done.
    clock = ManualClock(at(2026, 5, 1, 12, 1, 30))
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        instance = await ws.open_instance()

        async def resumed() -> bool:
            ticks = await instance.get_ticks(schedule.id)
            return len(ticks) == 1 and ticks[0].status is TickStatus.SUCCESS

        await wait_until(resumed)
        (tick,) = await instance.get_ticks(schedule.id)
        assert tick.tick_time == at(2026, 5, 1, 12, 1) and len(tick.run_ids) == 1
        (run,) = await finished_runs(instance, tick.run_ids)
        assert run.tags[SCHEDULED_TIME_TAG] == "2026-05-01T12:01:00+00:00"

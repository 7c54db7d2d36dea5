"""Sensors ticked by a Daemon over real code servers and a real SQLite instance.

Time is a ManualClock: a sensor's 30-second interval is one `advance(30)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import msgspec
import pytest

from runtime.daemon.clock import ManualClock
from runtime.daemon.instigators import find_instigator, set_cursor, set_status
from runtime.daemon.tags import RUN_KEY_TAG, SENSOR_NAME_TAG, TICK_ID_TAG
from runtime.instance.daemon_records import InstigatorStatus, TickStatus
from runtime.instance.instance import Instance
from tests.daemon.daemon_helpers import (
    FAST,
    finished_runs,
    start,
    wait_for_ticks,
    workspace_and_daemon,
)
from tests.daemon.locations import SENSORS, write_location

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.workspace.options import SupervisorOptions

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000.0


async def test_a_sensor_requests_three_runs_then_skips(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    clock = ManualClock(T0)
    location = write_location(tmp_path, SENSORS)
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        sensor = await start(ws, "sensor", "three_then_skip", T0)
        instance = await ws.open_instance()
        clock.advance(1)  # the daemon looks again; the sensor has never ticked: it is due
        (first,) = await wait_for_ticks(instance, sensor.id, 1)
        assert first.status is TickStatus.SUCCESS, first
        assert len(first.run_ids) == 3 and first.cursor == "done"
        runs = await finished_runs(instance, first.run_ids)
        assert {r.status for r in runs} == {"SUCCESS"}
        assert sorted(r.tags[RUN_KEY_TAG] for r in runs) == ["a", "b", "c"]
        assert {r.tags["key"] for r in runs} == {"a", "b", "c"}  # the request's own tags
        assert {r.tags[SENSOR_NAME_TAG] for r in runs} == {"three_then_skip"}
        assert {r.tags[TICK_ID_TAG] for r in runs} == {first.tick_id}

        clock.advance(10)  # not due yet: nothing happens
        await anyio.sleep(0.3)
        assert len(await instance.get_ticks(sensor.id)) == 1
        clock.advance(20)
        _, second = await wait_for_ticks(instance, sensor.id, 2)
        assert second.status is TickStatus.SKIPPED
        assert second.skip_reason == "nothing new" and second.run_ids == []
        assert second.tick_time == first.tick_time + 30
        assert await ws.count_runs(tags={SENSOR_NAME_TAG: "three_then_skip"}) == 3


async def test_a_run_key_launches_one_run_however_often_it_is_requested(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    clock = ManualClock(T0)
    location = write_location(tmp_path, SENSORS)
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        sensor = await start(ws, "sensor", "same_key", T0)
        instance = await ws.open_instance()
        clock.advance(1)
        for count in (2, 3):
            await wait_for_ticks(instance, sensor.id, count - 1)
            clock.advance(30)
        ticks = await wait_for_ticks(instance, sensor.id, 3)
        assert [t.status for t in ticks] == [
            TickStatus.SUCCESS,
            TickStatus.SKIPPED,
            TickStatus.SKIPPED,
        ]
        assert "only-once" in (ticks[1].skip_reason or "")
        assert "used before" in ticks[2].notes[0]
        runs = await ws.list_runs(tags={RUN_KEY_TAG: "only-once"})
        assert [r.run_id for r in runs] == ticks[0].run_ids


async def test_cursor_and_run_keys_survive_a_daemon_restart(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    location = write_location(tmp_path, SENSORS)
    clock = ManualClock(T0)
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        sensor = await start(ws, "sensor", "counter", T0)
        clock.advance(1)
        (first,) = await wait_for_ticks(await ws.open_instance(), sensor.id, 1)
    assert first.status is TickStatus.SUCCESS and first.cursor == "1"

    # A new workspace, a new daemon, a new process's view of the same instance.
    clock = ManualClock(T0 + 40)
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        instance = await ws.open_instance()
        # Tick 2 continues from cursor "1" and asks for batch-1 again: not launched.
        _, second = await wait_for_ticks(instance, sensor.id, 2)
        assert second.status is TickStatus.SKIPPED and second.cursor == "2"
        assert "batch-1" in (second.skip_reason or "")
        clock.advance(30)
        third = (await wait_for_ticks(instance, sensor.id, 3))[-1]
        assert third.status is TickStatus.SUCCESS and third.cursor == "3"
        runs = await finished_runs(instance, first.run_ids + third.run_ids)
        assert sorted(r.tags[RUN_KEY_TAG] for r in runs) == ["batch-1", "batch-2"]
        assert {r.tags["tick"] for r in runs} == {"1", "3"}
        state = await instance.get_instigator_state(sensor.id)
        assert state is not None and state.cursor == "3"


async def test_a_sensor_that_raises_records_the_error_and_keeps_ticking(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    clock = ManualClock(T0)
    location = write_location(tmp_path, SENSORS)
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        sensor = await start(ws, "sensor", "raises", T0)
        instance = await ws.open_instance()
        await set_cursor(instance, sensor, "kept", now=T0)
        clock.advance(1)
        await wait_for_ticks(instance, sensor.id, 1)
        clock.advance(30)
        ticks = await wait_for_ticks(instance, sensor.id, 2)
        for tick in ticks:
            assert tick.status is TickStatus.FAILURE
            assert tick.error is not None
            assert tick.error.startswith("ValueError: the upstream API said no")
            assert "raise ValueError" in tick.error  # the user's traceback
            assert tick.run_ids == []
        state = await instance.get_instigator_state(sensor.id)
        assert state is not None and state.cursor == "kept"
        assert await ws.count_runs() == 0


async def test_a_sensor_that_times_out_records_a_failed_tick_and_keeps_ticking(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    from dataclasses import replace

    clock = ManualClock(T0)
    location = write_location(tmp_path, SENSORS)
    options = replace(FAST, tick_timeout=0.5)
    async with workspace_and_daemon(
        location, home, clock=clock, options=options, supervisor=fast_options
    ) as (ws, _):
        sensor = await start(ws, "sensor", "too_slow", T0)
        instance = await ws.open_instance()
        clock.advance(1)
        await wait_for_ticks(instance, sensor.id, 1)
        clock.advance(30)
        ticks = await wait_for_ticks(instance, sensor.id, 2)
        for tick in ticks:
            assert tick.status is TickStatus.FAILURE
            assert "did not finish its evaluation within 0.5 s" in (tick.error or "")


async def test_start_and_stop_override_default_status(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    clock = ManualClock(T0)
    location = write_location(tmp_path, SENSORS)
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        instance = await ws.open_instance()
        on = find_instigator(ws.locations, "sensor", "on_by_default")
        off = find_instigator(ws.locations, "sensor", "three_then_skip")
        (tick,) = await wait_for_ticks(instance, on.id, 1)  # running by default: ticks at once
        assert tick.status is TickStatus.SKIPPED
        assert await instance.get_ticks(off.id) == []  # stopped by default

        # Stopped the way the web API does it: the stored state with another status.
        stored = await instance.get_instigator_state(on.id)
        assert stored is not None and stored.status is InstigatorStatus.RUNNING
        await instance.set_instigator_state(
            msgspec.structs.replace(stored, status=InstigatorStatus.STOPPED)
        )
        clock.advance(60)
        await anyio.sleep(0.3)
        assert len(await instance.get_ticks(on.id)) == 1
        await set_status(instance, on, InstigatorStatus.RUNNING, now=clock.now())
        clock.advance(1)
        assert len(await wait_for_ticks(instance, on.id, 2)) == 2


async def test_a_tick_in_flight_when_the_daemon_stops_is_stored_as_such(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    clock = ManualClock(T0)
    location = write_location(tmp_path, SENSORS)
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        sensor = await start(ws, "sensor", "too_slow", T0)
        instance = await ws.open_instance()
        clock.advance(1)
        with anyio.fail_after(30):
            while not await instance.get_ticks(sensor.id):
                await anyio.sleep(0.05)
    async with Instance.from_home(home) as instance:
        (tick,) = await instance.get_ticks(sensor.id)
        assert tick.status is TickStatus.FAILURE
        assert tick.error == "The daemon stopped before this tick finished."

"""Schedules and sensors evaluated in the code server; the control plane stays prompt meanwhile."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.errors import CodeLocationError
from runtime.protocol.messages import EvaluateScheduleRequest, EvaluateSensorRequest
from tests.helpers_server import start_code_server
from tests.server.server_helpers import HELLO

if TYPE_CHECKING:
    from pathlib import Path

DEFINITIONS = """
import asyncio
import time

from runtime import Definitions, RunRequest, job, op, schedule, sensor

@op
def step() -> int:
    return 1

@job
def work():
    step()

@schedule(cron_schedule="* * * * *", job=work)
def busy_schedule(context):
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # holds its thread, not the server's loop
        pass
    return RunRequest(run_key="busy")

@sensor(job=work)
def busy_sensor(context):
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        pass
    return RunRequest(run_key="busy")

@sensor(job=work)
async def async_sensor(context):
    await asyncio.sleep(0.01)
    context.update_cursor("next")
    return RunRequest(run_key=f"after-{context.cursor}")

@sensor(job=work)
def failing_sensor(context):
    raise RuntimeError("the bucket is gone")

defs = Definitions(
    jobs=[work],
    schedules=[busy_schedule],
    sensors=[busy_sensor, async_sensor, failing_sensor],
)
"""


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["schedule", "sensor"])
async def test_ping_answers_while_a_sync_tick_busy_loops(location: Path, kind: str) -> None:
    async with start_code_server("-f", str(location), "--port", "0") as server:
        async with server.client() as client, anyio.create_task_group() as tg:
            results = []

            async def evaluate() -> None:
                if kind == "schedule":
                    request = EvaluateScheduleRequest(
                        schedule_name="busy_schedule", scheduled_time=time.time()
                    )
                    results.append(await client.evaluate_schedule(request, timeout=20))
                else:
                    sensor_request = EvaluateSensorRequest(sensor_name="busy_sensor")
                    results.append(await client.evaluate_sensor(sensor_request, timeout=20))

            tg.start_soon(evaluate)
            await anyio.sleep(0.3)  # the tick is now busy in its thread
            for _ in range(5):
                await client.ping()
                await client.heartbeat()
                await anyio.sleep(0.1)
            # Every ping was answered while the 2 s busy loop still ran: the
            # tick does not hold the server's loop (no latency bound, which
            # a loaded machine would break).
            assert not results, "the tick should still be running"
    (result,) = results
    assert result.error is None
    assert [r.run_key for r in result.run_requests] == ["busy"]


@pytest.mark.anyio
async def test_async_sensor_runs_and_returns_its_cursor(location: Path) -> None:
    async with start_code_server("-f", str(location), "--port", "0") as server:
        async with server.client() as client:
            result = await client.evaluate_sensor(
                EvaluateSensorRequest(sensor_name="async_sensor", cursor="first")
            )
    assert result.error is None
    assert result.cursor == "next"
    assert [r.run_key for r in result.run_requests] == ["after-next"]
    assert result.run_requests[0].job_name == "work"


@pytest.mark.anyio
async def test_a_failing_sensor_is_data_not_an_exception(location: Path) -> None:
    async with start_code_server("-f", str(location), "--port", "0") as server:
        async with server.client() as client:
            result = await client.evaluate_sensor(
                EvaluateSensorRequest(sensor_name="failing_sensor", cursor="c1")
            )
            # The server is still fine.
            await client.ping()
    assert result.error is not None
    assert result.error.type == "RuntimeError"
    assert result.error.message == "the bucket is gone"
    assert "failing_sensor" in result.error.traceback
    assert result.run_requests == []


@pytest.mark.anyio
async def test_unknown_schedule_or_sensor_is_an_error_listing_what_exists(
    location: Path,
) -> None:
    async with start_code_server("-f", str(location), "--port", "0") as server:
        async with server.client() as client:
            with pytest.raises(CodeLocationError) as schedule_error:
                await client.evaluate_schedule(
                    EvaluateScheduleRequest(schedule_name="nightly", scheduled_time=0.0)
                )
            with pytest.raises(CodeLocationError) as sensor_error:
                await client.evaluate_sensor(EvaluateSensorRequest(sensor_name="nope"))
    assert "NOT_FOUND" in str(schedule_error.value)
    assert "busy_schedule" in str(schedule_error.value)
    assert "async_sensor" in str(sensor_error.value)


@pytest.mark.anyio
async def test_hello_world_schedule_and_sensor_ticks() -> None:
    async with start_code_server("-f", HELLO, "--port", "0") as server:
        async with server.client() as client:
            tick = await client.evaluate_schedule(
                EvaluateScheduleRequest(schedule_name="hourly_etl", scheduled_time=3600.0)
            )
            cursors = []
            cursor = None
            requested = []
            for _ in range(3):
                result = await client.evaluate_sensor(
                    EvaluateSensorRequest(sensor_name="every_third_tick", cursor=cursor)
                )
                cursor = result.cursor
                cursors.append(cursor)
                requested += [r.run_key for r in result.run_requests]
    assert tick.error is None
    assert tick.run_requests[0].job_name == "etl"
    assert tick.run_requests[0].tags["trigger"] == "hourly"
    assert cursors == ["1", "2", "3"]
    assert requested == ["tick-3"]


@pytest.mark.anyio
async def test_sigterm_exits_promptly_while_a_sync_tick_is_busy(location: Path) -> None:
    async with start_code_server("-f", str(location), "--port", "0") as server:
        async with server.client() as client, anyio.create_task_group() as tg:

            async def evaluate() -> None:
                with pytest.raises(CodeLocationError):
                    await client.evaluate_sensor(EvaluateSensorRequest(sensor_name="busy_sensor"))

            tg.start_soon(evaluate)
            await anyio.sleep(0.3)
            started = time.monotonic()
            server.process.terminate()
            assert await server.wait(limit=5) == 0
            # The busy loop had 1.7 s left; the server did not wait for it.
            assert time.monotonic() - started < 1.0
    assert "Traceback" not in server.stderr

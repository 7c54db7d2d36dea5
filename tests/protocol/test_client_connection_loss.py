"""A connection lost mid-call leaves the caller's task as it was: no stray cancellation."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.errors import CodeLocationError
from runtime.protocol.messages import EvaluateSensorRequest
from tests.helpers_server import start_code_server

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

SLOW_SENSOR = textwrap.dedent(
    """
    import time
    from runtime import Definitions, job, op, sensor

    @op
    def noop() -> None:
        pass

    @job
    def target() -> None:
        noop()

    @sensor(job=target)
    def slow(context):
        open(context.cursor or "/dev/null", "w").close()
        time.sleep(60)

    defs = Definitions(jobs=[target], sensors=[slow])
    """
)


async def test_a_call_cut_off_by_a_dead_server_raises_and_leaves_no_cancellation(
    tmp_path: Path,
) -> None:
    code = tmp_path / "slow_sensor.py"
    code.write_text(SLOW_SENSOR)
    started = tmp_path / "sensor_started"
    async with start_code_server("-f", str(code), "-s", str(tmp_path / "s.sock")) as server:
        async with server.client() as client:

            async def kill_once_evaluating() -> None:
                with anyio.fail_after(20):
                    while not started.exists():
                        await anyio.sleep(0.02)
                os.kill(server.pid, signal.SIGKILL)

            async with anyio.create_task_group() as tg:
                tg.start_soon(kill_once_evaluating)
                with pytest.raises(CodeLocationError, match="s.sock"):
                    await client.evaluate_sensor(
                        EvaluateSensorRequest(sensor_name="slow", cursor=str(started))
                    )
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    # The caller's own scopes still work as they should.
    with anyio.move_on_after(0.05) as scope:
        await anyio.sleep(1)
    assert scope.cancelled_caught
    await anyio.sleep(0.01)

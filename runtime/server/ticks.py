"""Schedule and sensor ticks in the code server: evaluate off the loop, answer with a TickResult.

The definitions decide a tick and return plain data (a TickEvaluation); this
module runs that evaluation where the server can afford it and turns it into
the wire's TickResult. Async tick functions run on the server's loop; sync
ones in a daemon thread, so a tick that never returns cannot keep the server
from exiting. A failing tick is data (TickResult.error), never a failed RPC.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from runtime.protocol import messages as m
from runtime.protocol.error_info import error_info
from runtime.server.threads import run_sync_in_daemon_thread

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from runtime.definitions.repository import RepositoryDefinition
    from runtime.definitions.tick import TickEvaluation


def tick_result(evaluation: TickEvaluation) -> m.TickResult:
    """The wire form of a tick's evaluation."""
    return m.TickResult(
        run_requests=[
            m.RunRequestData(
                run_key=request.run_key,
                job_name=request.job_name,
                run_config=dict(request.run_config),
                tags=dict(request.tags),
            )
            for request in evaluation.run_requests
        ],
        skip_reason=evaluation.skip_reason,
        cursor=evaluation.cursor,
        error=None if evaluation.error is None else error_info(evaluation.error),
    )


async def evaluate_schedule(
    repository: RepositoryDefinition, request: m.EvaluateScheduleRequest
) -> m.TickResult:
    """One tick of a schedule of `repository`.

    Raises UnknownDefinitionError when the repository has no such schedule; a
    lazy schedule that fails to build is an error in the result.
    """
    from runtime.errors import UnknownDefinitionError

    try:
        schedule = repository.get_schedule(request.schedule_name)
    except UnknownDefinitionError:
        raise
    except Exception as exc:  # a lazy schedule that failed to build: user code, so data
        return m.TickResult(error=error_info(exc))
    scheduled_time = request.scheduled_time
    return await _evaluate(
        schedule.fn,
        lambda: schedule.evaluate(scheduled_time),
        lambda: schedule.aevaluate(scheduled_time),
        cursor=None,
        name=f"runtime-schedule-{request.schedule_name}",
    )


async def evaluate_sensor(
    repository: RepositoryDefinition, request: m.EvaluateSensorRequest
) -> m.TickResult:
    """One tick of a sensor of `repository`; the result carries the sensor's new cursor.

    Raises UnknownDefinitionError when the repository has no such sensor; a
    lazy sensor that fails to build is an error in the result, with the cursor
    it was given.
    """
    from runtime.errors import UnknownDefinitionError

    try:
        sensor = repository.get_sensor(request.sensor_name)
    except UnknownDefinitionError:
        raise
    except Exception as exc:
        return m.TickResult(error=error_info(exc), cursor=request.cursor)
    cursor, last_tick_time = request.cursor, request.last_tick_time
    return await _evaluate(
        sensor.fn,
        lambda: sensor.evaluate(cursor, last_tick_time),
        lambda: sensor.aevaluate(cursor, last_tick_time),
        cursor=cursor,
        name=f"runtime-sensor-{request.sensor_name}",
    )


async def _evaluate(
    fn: Callable[..., object] | None,
    evaluate: Callable[[], TickEvaluation],
    aevaluate: Callable[[], Awaitable[TickEvaluation]],
    *,
    cursor: str | None,
    name: str,
) -> m.TickResult:
    """One tick: an async user function on the loop, anything else in a daemon thread."""
    try:
        if fn is not None and (inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)):
            evaluation = await aevaluate()
        else:
            evaluation = await run_sync_in_daemon_thread(evaluate, name=name)
    except Exception as exc:
        # The evaluation itself catches user errors; this is a bug of ours, still reported as data.
        return m.TickResult(error=error_info(exc), cursor=cursor)
    return tick_result(evaluation)

"""Sensors: a function polled every so often that decides whether to request runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.definitions.introspect import check_name, docstring
from runtime.definitions.schedule import (
    DefaultStatus,
    JobTarget,
    check_default_status,
    resolve_job_target,
)
from runtime.errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import Callable

    from runtime.definitions.tick import TickEvaluation, TickTarget

SENSOR_NAME_TAG = "runtime/sensor_name"


class SensorEvaluationContext:
    """What a sensor function is told about its tick, and where it leaves its new cursor."""

    def __init__(self, sensor_name: str, cursor: str | None, last_tick_time: float | None) -> None:
        self.sensor_name = sensor_name
        # The cursor the previous tick left, None on the first tick.
        self.cursor = cursor
        # Unix time of the previous tick, None on the first tick.
        self.last_tick_time = last_tick_time

    def update_cursor(self, cursor: str | None) -> None:
        """Store a new cursor; the next tick receives it as `context.cursor`."""
        if cursor is not None and not isinstance(cursor, str):
            raise TypeError(
                f"sensor {self.sensor_name!r}: a cursor is a string or None, got {cursor!r}."
            )
        self.cursor = cursor


class SensorDefinition:
    """A function evaluated at most every `minimum_interval_seconds` that may request runs.

    Raises DefinitionError for an invalid name, interval, status or job target.
    """

    def __init__(
        self,
        *,
        name: str,
        fn: Callable[[SensorEvaluationContext], object],
        job: JobTarget | str | None = None,
        job_name: str | None = None,
        minimum_interval_seconds: int = 30,
        description: str | None = None,
        default_status: DefaultStatus | str = "stopped",
    ) -> None:
        self.name = check_name(name, kind="sensor")
        if not callable(fn):
            raise DefinitionError(f"sensor {name!r} needs a function, got {fn!r}.")
        self.fn = fn
        self.job, self.job_name = resolve_job_target(job, job_name, kind="sensor", name=name)
        if (
            isinstance(minimum_interval_seconds, bool)
            or not isinstance(minimum_interval_seconds, int)
            or minimum_interval_seconds < 1
        ):
            raise DefinitionError(
                f"sensor {name!r} has minimum_interval_seconds={minimum_interval_seconds!r}; "
                "it must be a whole number of seconds, at least 1."
            )
        self.minimum_interval_seconds = minimum_interval_seconds
        self.description = description
        self.default_status = check_default_status(default_status, kind="sensor", name=name)

    def __call__(self, context: SensorEvaluationContext) -> object:
        """Call the sensor function directly (for unit tests)."""
        return self.fn(context)

    def __repr__(self) -> str:
        return f"<sensor {self.name!r} -> {self.job_name!r}>"

    def evaluate(self, cursor: str | None, last_tick_time: float | None) -> TickEvaluation:
        """Run one tick without an event loop; the result carries the (maybe updated) cursor.

        User exceptions and invalid return values become TickEvaluation.error.
        Raises RuntimeError for an async function called from a running loop.
        """
        from runtime.definitions import tick

        context, target = self._tick(cursor, last_tick_time)
        return tick.evaluate_sync(self.fn, context, target, lambda: context.cursor)

    async def aevaluate(self, cursor: str | None, last_tick_time: float | None) -> TickEvaluation:
        """Like evaluate, from an event loop: async functions run on it, sync ones in a thread."""
        from runtime.definitions import tick

        context, target = self._tick(cursor, last_tick_time)
        return await tick.evaluate_async(self.fn, context, target, lambda: context.cursor)

    def _tick(
        self, cursor: str | None, last_tick_time: float | None
    ) -> tuple[SensorEvaluationContext, TickTarget]:
        from runtime.definitions import tick

        target = tick.TickTarget(
            kind="sensor",
            name=self.name,
            job_name=self.job_name,
            tags={SENSOR_NAME_TAG: self.name},
            allow_run_config_dict=False,
        )
        return SensorEvaluationContext(self.name, cursor, last_tick_time), target


def sensor(
    job: JobTarget | str | None = None,
    *,
    job_name: str | None = None,
    name: str | None = None,
    minimum_interval_seconds: int = 30,
    description: str | None = None,
    default_status: DefaultStatus | str = "stopped",
) -> Callable[[Callable[[SensorEvaluationContext], object]], SensorDefinition]:
    """Define a sensor from `fn(context)`; `context.cursor` and `context.last_tick_time` describe
    the previous tick and `context.update_cursor()` sets the next cursor.

    The function may return or yield RunRequest(s), return a SkipReason, or
    None. Without job=/job_name= every RunRequest must name its job. Raises
    DefinitionError for an invalid name, interval or job target.
    """

    def decorate(fn: Callable[[SensorEvaluationContext], object]) -> SensorDefinition:
        return SensorDefinition(
            name=name or str(getattr(fn, "__name__", "")),
            fn=fn,
            job=job,
            job_name=job_name,
            minimum_interval_seconds=minimum_interval_seconds,
            description=description if description is not None else docstring(fn),
            default_status=default_status,
        )

    return decorate

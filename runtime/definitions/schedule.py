"""Schedules: run a job on a cron schedule, optionally deciding each tick in a function."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from runtime.definitions.asset_job import AssetJob
from runtime.definitions.graph import JobDefinition
from runtime.definitions.introspect import check_name, check_tags, docstring, short_repr
from runtime.errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from zoneinfo import ZoneInfo

    from runtime.definitions.tick import TickEvaluation, TickTarget

JobTarget = JobDefinition | AssetJob
DefaultStatus = Literal["running", "stopped"]

SCHEDULE_NAME_TAG = "runtime/schedule_name"
SCHEDULED_TIME_TAG = "runtime/scheduled_time"


class ScheduleEvaluationContext:
    """What a schedule function is told about the tick it decides."""

    def __init__(self, schedule_name: str, scheduled_time: float, timezone: ZoneInfo) -> None:
        self.schedule_name = schedule_name
        # Unix timestamp of the tick.
        self.scheduled_time = scheduled_time
        # The same instant, in the schedule's execution timezone.
        self.scheduled_execution_time = datetime.fromtimestamp(scheduled_time, tz=timezone)


def resolve_job_target(
    job: JobTarget | str | None, job_name: str | None, *, kind: str, name: str
) -> tuple[JobTarget | None, str | None]:
    """(job object or None, job name or None) from the `job=` / `job_name=` pair."""
    if job is not None and job_name is not None:
        raise DefinitionError(f"{kind} {name!r} gets both job= and job_name=; pass one.")
    if isinstance(job, str):
        return None, check_name(job, kind=f"{kind} {name!r} job")
    if isinstance(job, (JobDefinition, AssetJob)):
        return job, job.name
    if job is not None:
        raise DefinitionError(
            f"{kind} {name!r} targets {short_repr(job)}; pass a job (from @job or define_asset_job) "
            "or job_name=."
        )
    if job_name is not None:
        return None, check_name(job_name, kind=f"{kind} {name!r} job")
    return None, None


def check_default_status(status: str, *, kind: str, name: str) -> DefaultStatus:
    """Normalise "running"/"stopped" (any case), else raise DefinitionError."""
    value = str(status).lower()
    if value == "running":
        return "running"
    if value == "stopped":
        return "stopped"
    raise DefinitionError(
        f"{kind} {name!r} has default_status={status!r}; use 'running' or 'stopped'."
    )


class ScheduleDefinition:
    """A job to run on a cron schedule, with a function deciding each tick or fixed run config.

    Raises DefinitionError for an invalid cron expression, timezone, status or job target.
    """

    def __init__(
        self,
        *,
        name: str,
        cron_schedule: str,
        job: JobTarget | str | None = None,
        job_name: str | None = None,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        execution_timezone: str = "UTC",
        description: str | None = None,
        default_status: DefaultStatus | str = "stopped",
        fn: Callable[[ScheduleEvaluationContext], object] | None = None,
    ) -> None:
        self.name = check_name(name, kind="schedule")
        self.job, target_name = resolve_job_target(job, job_name, kind="schedule", name=name)
        if target_name is None:
            raise DefinitionError(f"schedule {name!r} needs job= or job_name=.")
        self.job_name: str = target_name
        self.cron_schedule = _check_cron(cron_schedule, name)
        self.execution_timezone = execution_timezone
        self.timezone = _check_timezone(execution_timezone, name)
        if fn is not None and run_config is not None:
            raise DefinitionError(
                f"schedule {name!r} has both a function and run_config; "
                "return the run config from the function instead."
            )
        self.run_config = dict(run_config or {})
        self.tags = check_tags(tags, kind="schedule", name=name)
        self.description = description
        self.default_status = check_default_status(default_status, kind="schedule", name=name)
        self.fn = fn

    def __call__(self, context: ScheduleEvaluationContext) -> object:
        """Call the schedule function directly (for unit tests)."""
        if self.fn is None:
            raise TypeError(f"schedule {self.name!r} has no function to call.")
        return self.fn(context)

    def __repr__(self) -> str:
        return f"<schedule {self.name!r} {self.cron_schedule!r} -> {self.job_name!r}>"

    def next_tick_after(self, timestamp: float) -> float:
        """The first tick strictly after `timestamp` (Unix seconds), in the execution timezone."""
        from croniter import croniter

        start = datetime.fromtimestamp(timestamp, tz=self.timezone)
        return float(croniter(self.cron_schedule, start).get_next(float))

    def evaluate(self, scheduled_time: float) -> TickEvaluation:
        """Decide the tick at `scheduled_time` (Unix seconds) without an event loop.

        User exceptions and invalid return values become TickEvaluation.error.
        Raises RuntimeError for an async function called from a running loop.
        """
        from runtime.definitions import tick

        if self.fn is None:
            return self._fixed(scheduled_time)
        context, target = self._tick(scheduled_time)
        return tick.evaluate_sync(self.fn, context, target, lambda: None)

    async def aevaluate(self, scheduled_time: float) -> TickEvaluation:
        """Like evaluate, from an event loop: async functions run on it, sync ones in a thread."""
        from runtime.definitions import tick

        if self.fn is None:
            return self._fixed(scheduled_time)
        context, target = self._tick(scheduled_time)
        return await tick.evaluate_async(self.fn, context, target, lambda: None)

    def _fixed(self, scheduled_time: float) -> TickEvaluation:
        from runtime.definitions.run_request import RunRequest
        from runtime.definitions.tick import TickEvaluation

        _, target = self._tick(scheduled_time)
        request = target.run_request(RunRequest(run_config=self.run_config))
        return TickEvaluation(run_requests=[request])

    def _tick(self, scheduled_time: float) -> tuple[ScheduleEvaluationContext, TickTarget]:
        from runtime.definitions import tick

        context = ScheduleEvaluationContext(self.name, scheduled_time, self.timezone)
        tags = {
            **self.tags,
            SCHEDULE_NAME_TAG: self.name,
            SCHEDULED_TIME_TAG: context.scheduled_execution_time.isoformat(),
        }
        target = tick.TickTarget(
            kind="schedule",
            name=self.name,
            job_name=self.job_name,
            tags=tags,
            allow_run_config_dict=True,
        )
        return context, target


def _check_cron(expression: object, schedule_name: str) -> str:
    from croniter import croniter

    if not isinstance(expression, str) or not croniter.is_valid(expression):
        raise DefinitionError(
            f"schedule {schedule_name!r} has an invalid cron expression {expression!r}; "
            "expected five fields like '*/15 * * * *' or an alias like '@daily'."
        )
    return expression


def _check_timezone(timezone: str, schedule_name: str) -> ZoneInfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise DefinitionError(
            f"schedule {schedule_name!r} has an unknown execution_timezone {timezone!r}."
        ) from exc


def schedule(
    cron_schedule: str,
    *,
    job: JobTarget | str | None = None,
    job_name: str | None = None,
    name: str | None = None,
    execution_timezone: str = "UTC",
    description: str | None = None,
    default_status: DefaultStatus | str = "stopped",
    tags: Mapping[str, str] | None = None,
) -> Callable[[Callable[[ScheduleEvaluationContext], object]], ScheduleDefinition]:
    """Define a schedule from `fn(context)`, which decides each tick.

    The function may return or yield RunRequest(s), return a SkipReason, None
    (skip), or a run config dict (one run). Raises DefinitionError for an
    invalid cron expression (naming the schedule and the expression), timezone
    or job target.
    """

    def decorate(fn: Callable[[ScheduleEvaluationContext], object]) -> ScheduleDefinition:
        return ScheduleDefinition(
            name=name or str(getattr(fn, "__name__", "")),
            cron_schedule=cron_schedule,
            job=job,
            job_name=job_name,
            tags=tags,
            execution_timezone=execution_timezone,
            description=description if description is not None else docstring(fn),
            default_status=default_status,
            fn=fn,
        )

    return decorate

"""Schedules and sensors: definition checks and tick evaluation, including user errors."""

from __future__ import annotations

import threading
import traceback
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from runtime import (
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    job,
    op,
    schedule,
    sensor,
)
from runtime.definitions.schedule import (
    SCHEDULE_NAME_TAG,
    SCHEDULED_TIME_TAG,
    ScheduleEvaluationContext,
)
from runtime.definitions.sensor import SENSOR_NAME_TAG
from runtime.errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


@op
def work() -> int:
    return 1


@job
def nightly_job() -> None:
    work()


# 2024-03-01 12:00:00 UTC
NOON = datetime(2024, 3, 1, 12, tzinfo=UTC).timestamp()


def test_schedule_without_function_requests_its_run_config() -> None:
    plain = ScheduleDefinition(
        name="plain",
        cron_schedule="0 0 * * *",
        job=nightly_job,
        run_config={"ops": {"work": {}}},
        tags={"team": "a"},
    )
    result = plain.evaluate(NOON)
    assert result.error is None
    [request] = result.run_requests
    assert request.job_name == "nightly_job"
    assert request.run_config == {"ops": {"work": {}}}
    assert request.tags == {
        "team": "a",
        SCHEDULE_NAME_TAG: "plain",
        SCHEDULED_TIME_TAG: "2024-03-01T12:00:00+00:00",
    }


def test_decorated_schedule_sees_time_in_its_timezone() -> None:
    seen: list[ScheduleEvaluationContext] = []

    @schedule(
        cron_schedule="0 * * * *",
        job_name="nightly_job",
        execution_timezone="Europe/Paris",
        default_status="RUNNING",
    )
    def hourly(context: ScheduleEvaluationContext) -> dict[str, Any]:
        """Every hour."""
        seen.append(context)
        return {"ops": {"work": {"config": {"hour": context.scheduled_execution_time.hour}}}}

    assert hourly.name == "hourly"
    assert hourly.description == "Every hour."
    assert hourly.default_status == "running"
    result = hourly.evaluate(NOON)
    assert result.error is None
    assert result.run_requests[0].run_config == {"ops": {"work": {"config": {"hour": 13}}}}
    assert seen[0].schedule_name == "hourly"
    assert seen[0].scheduled_time == NOON


def test_schedule_next_tick() -> None:
    every_15 = ScheduleDefinition(name="q", cron_schedule="*/15 * * * *", job=nightly_job)
    assert every_15.next_tick_after(NOON) == NOON + 15 * 60
    assert every_15.next_tick_after(NOON + 1) == NOON + 15 * 60


@pytest.mark.parametrize(
    ("returned", "runs", "skip"),
    [
        (None, 0, "schedule 's' returned None."),
        (SkipReason("holiday"), 0, "holiday"),
        (RunRequest(run_key="k", tags={"x": "y"}), 1, None),
        ([RunRequest(run_key="a"), RunRequest(run_key="b", job_name="other")], 2, None),
    ],
)
def test_schedule_return_values(returned: object, runs: int, skip: str | None) -> None:
    s = schedule("@daily", job=nightly_job, name="s")(lambda context: returned)
    result = s.evaluate(NOON)
    assert result.error is None
    assert len(result.run_requests) == runs
    assert result.skip_reason == skip
    if runs == 2:
        assert [r.job_name for r in result.run_requests] == ["nightly_job", "other"]
        assert [r.run_key for r in result.run_requests] == ["a", "b"]


def test_schedule_generator_and_user_error() -> None:
    @schedule("@hourly", job=nightly_job)
    def generated(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
        yield RunRequest(run_key="one")
        raise ValueError("feed is down")

    result = generated.evaluate(NOON)
    assert result.run_requests == []
    assert result.error is not None
    # The user's own exception, with its traceback, is the tick's error.
    assert isinstance(result.error, ValueError)
    assert str(result.error) == "feed is down"
    trace = "".join(traceback.format_exception(result.error))
    assert "generated" in trace and "feed is down" in trace


def test_schedule_invalid_return_value_is_an_error() -> None:
    odd = schedule("@daily", job=nightly_job, name="odd")(lambda context: 42)
    result = odd.evaluate(NOON)
    assert result.error is not None
    assert "schedule 'odd' produced 42" in str(result.error)
    mixed = schedule("@daily", job=nightly_job, name="mixed")(
        lambda context: [RunRequest(), SkipReason("no")]
    )
    error = mixed.evaluate(NOON).error
    assert error is not None and "both RunRequests and a SkipReason" in str(error)


@pytest.mark.anyio
async def test_async_schedule_on_the_loop_and_sync_in_a_thread() -> None:
    threads: list[str] = []

    @schedule("@daily", job=nightly_job)
    async def async_one(context: ScheduleEvaluationContext) -> RunRequest:
        threads.append(threading.current_thread().name)
        return RunRequest(run_key="async")

    @schedule("@daily", job=nightly_job)
    def sync_one(context: ScheduleEvaluationContext) -> RunRequest:
        threads.append(threading.current_thread().name)
        return RunRequest(run_key="sync")

    assert (await async_one.aevaluate(NOON)).run_requests[0].run_key == "async"
    assert (await sync_one.aevaluate(NOON)).run_requests[0].run_key == "sync"
    assert threads[0] == threading.current_thread().name
    assert threads[1] != threading.current_thread().name
    with pytest.raises(RuntimeError, match="await aevaluate"):
        async_one.evaluate(NOON)


def test_async_schedule_evaluated_without_a_loop() -> None:
    @schedule("@daily", job=nightly_job)
    async def async_two(context: ScheduleEvaluationContext) -> RunRequest:
        return RunRequest(run_key="fresh loop")

    assert async_two.evaluate(NOON).run_requests[0].run_key == "fresh loop"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"cron_schedule": "61 * * * *"},
            "schedule 'bad' has an invalid cron expression '61 \\* \\* \\* \\*'",
        ),
        ({"cron_schedule": "whenever"}, "invalid cron expression 'whenever'"),
        ({"execution_timezone": "Mars/Olympus"}, "unknown execution_timezone 'Mars/Olympus'"),
        ({"default_status": "maybe"}, "default_status='maybe'"),
        ({"job_name": "x"}, "both job= and job_name="),
        ({"job": None}, "needs job= or job_name="),
        ({"job": 3}, "targets 3"),
        ({"run_config": {}, "fn": lambda c: None}, "both a function and run_config"),
    ],
)
def test_bad_schedules(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"name": "bad", "cron_schedule": "@daily", "job": nightly_job}
    arguments.update(kwargs)
    with pytest.raises(DefinitionError, match=message):
        ScheduleDefinition(**arguments)


def test_sensor_cursor_and_run_requests() -> None:
    @sensor(job=nightly_job, minimum_interval_seconds=5)
    def new_files(context: SensorEvaluationContext) -> Iterator[RunRequest]:
        """Watches a folder."""
        start = int(context.cursor or 0)
        for n in range(start, start + 2):
            yield RunRequest(run_key=f"file-{n}", run_config={"n": n})
        context.update_cursor(str(start + 2))

    assert new_files.minimum_interval_seconds == 5
    assert new_files.description == "Watches a folder."
    first = new_files.evaluate(None, None)
    assert first.error is None
    assert [r.run_key for r in first.run_requests] == ["file-0", "file-1"]
    assert first.run_requests[0].job_name == "nightly_job"
    assert first.run_requests[0].tags == {SENSOR_NAME_TAG: "new_files"}
    assert first.cursor == "2"
    second = new_files.evaluate(first.cursor, NOON)
    assert [r.run_key for r in second.run_requests] == ["file-2", "file-3"]
    assert second.cursor == "4"


def test_sensor_sees_last_tick_time_and_skips() -> None:
    seen: list[float | None] = []

    @sensor(job=define_asset_job("assets_job"))
    def quiet(context: SensorEvaluationContext) -> SkipReason:
        seen.append(context.last_tick_time)
        return SkipReason("nothing new")

    assert quiet.job_name == "assets_job"
    result = quiet.evaluate("c", NOON)
    assert result.skip_reason == "nothing new"
    assert result.cursor == "c"
    assert seen == [NOON]
    none = sensor(job=nightly_job, name="none")(lambda context: None).evaluate(None, None)
    assert none.run_requests == [] and none.skip_reason is None and none.error is None


def test_sensor_errors_become_data() -> None:
    @sensor(job=nightly_job)
    def broken(context: SensorEvaluationContext) -> None:
        context.update_cursor("moved")
        raise KeyError("missing")

    result = broken.evaluate("old", None)
    assert result.error is not None
    assert isinstance(result.error, KeyError)
    # The cursor the function set before failing is still reported.
    assert result.cursor == "moved"
    dict_result = sensor(job=nightly_job, name="d")(lambda context: {"ops": {}}).evaluate(
        None, None
    )
    assert dict_result.error is not None and "returned a dict" in str(dict_result.error)


def test_sensor_without_job_needs_job_name_on_requests() -> None:
    @sensor()
    def anywhere(context: SensorEvaluationContext) -> list[RunRequest]:
        return [RunRequest(job_name="nightly_job")]

    assert anywhere.evaluate(None, None).run_requests[0].job_name == "nightly_job"
    nameless = sensor(name="nameless")(lambda context: RunRequest())
    error = nameless.evaluate(None, None).error
    assert error is not None and "requested a run without job_name" in str(error)


@pytest.mark.anyio
async def test_async_sensor_and_async_generator() -> None:
    @sensor(job=nightly_job)
    async def streaming(context: SensorEvaluationContext) -> AsyncIterator[RunRequest]:
        for key in ("a", "b"):
            yield RunRequest(run_key=key)
        context.update_cursor("b")

    result = await streaming.aevaluate(None, None)
    assert [r.run_key for r in result.run_requests] == ["a", "b"]
    assert result.cursor == "b"

    @sensor(job=nightly_job)
    async def failing(context: SensorEvaluationContext) -> None:
        raise RuntimeError("async boom")

    error = (await failing.aevaluate(None, None)).error
    assert isinstance(error, RuntimeError) and str(error) == "async boom"


def test_bad_sensors() -> None:
    with pytest.raises(DefinitionError, match="minimum_interval_seconds=0"):
        sensor(job=nightly_job, name="s", minimum_interval_seconds=0)(lambda context: None)
    with pytest.raises(DefinitionError, match="sensor name 'a b' is invalid"):
        sensor(job=nightly_job, name="a b")(lambda context: None)
    context = SensorEvaluationContext("s", None, None)
    with pytest.raises(TypeError, match="a cursor is a string"):
        context.update_cursor(5)  # type: ignore[arg-type]

"""tick_result: a schedule's or sensor's evaluation (plain definition data) as the wire's TickResult."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from runtime import RunRequest, job, op, schedule, sensor
from runtime.server.ticks import tick_result

if TYPE_CHECKING:
    from runtime.definitions.schedule import ScheduleEvaluationContext
    from runtime.definitions.sensor import SensorEvaluationContext

NOON = datetime(2024, 3, 1, 12, tzinfo=UTC).timestamp()


@op
def work() -> int:
    return 1


@job
def nightly() -> None:
    work()


def test_run_requests_cross_with_their_job_and_tags() -> None:
    @schedule("@hourly", job=nightly, tags={"team": "data"})
    def hourly(context: ScheduleEvaluationContext) -> list[RunRequest]:
        return [RunRequest(run_key="a", run_config={"ops": {}}, tags={"extra": "1"})]

    result = tick_result(hourly.evaluate(NOON))
    assert result.error is None and result.skip_reason is None
    [request] = result.run_requests
    assert (request.run_key, request.job_name, request.run_config) == ("a", "nightly", {"ops": {}})
    assert request.tags["team"] == "data" and request.tags["extra"] == "1"


def test_a_user_error_becomes_error_info_with_the_cursor() -> None:
    @sensor(job=nightly)
    def broken(context: SensorEvaluationContext) -> None:
        context.update_cursor("moved")
        raise KeyError("missing")

    result = tick_result(broken.evaluate("old", None))
    assert result.run_requests == []
    assert result.cursor == "moved"
    assert result.error is not None
    assert result.error.type == "KeyError"
    assert result.error.message == "'missing'"
    assert "broken" in result.error.traceback


def test_a_skip_keeps_its_reason() -> None:
    quiet = sensor(job=nightly, name="quiet")(lambda context: None)
    skipped = schedule("@daily", job=nightly, name="skips")(lambda context: None)
    assert tick_result(quiet.evaluate("c", None)).cursor == "c"
    assert tick_result(skipped.evaluate(NOON)).skip_reason == "schedule 'skips' returned None."

"""Cron times in a timezone: one per cron time, and the DST edges users meet."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from runtime.daemon.cron import CronSchedule
from runtime.errors import ConfigError

NEW_YORK = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")


def at(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    *,
    tz: ZoneInfo = NEW_YORK,
    fold: int = 0,
) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz, fold=fold).timestamp()


def following(cron: CronSchedule, start: float, count: int) -> list[str]:
    """The next `count` cron times after `start`, as ISO times in the schedule's zone."""
    times: list[str] = []
    current = start
    for _ in range(count):
        upcoming = cron.next_after(current)
        assert upcoming is not None
        times.append(cron.describe(upcoming))
        current = upcoming
    return times


def test_a_per_minute_cron_in_utc() -> None:
    cron = CronSchedule("* * * * *")
    start = at(2024, 5, 1, 12, 0, 30, tz=UTC)
    assert following(cron, start, 3) == [
        "2024-05-01T12:01:00+00:00",
        "2024-05-01T12:02:00+00:00",
        "2024-05-01T12:03:00+00:00",
    ]
    assert cron.next_after(at(2024, 5, 1, 12, 1, tz=UTC)) == at(2024, 5, 1, 12, 2, tz=UTC)
    assert cron.latest_at_or_before(at(2024, 5, 1, 12, 1, tz=UTC)) == at(2024, 5, 1, 12, 1, tz=UTC)
    assert cron.latest_at_or_before(start) == at(2024, 5, 1, 12, 0, tz=UTC)
    between = cron.times_between(start, at(2024, 5, 1, 12, 5, tz=UTC), limit=10)
    assert between == [at(2024, 5, 1, 12, minute, tz=UTC) for minute in range(1, 6)]
    assert len(cron.times_between(start, at(2024, 5, 1, 13, 0, tz=UTC), limit=10)) == 10


def test_spring_forward_a_daily_time_in_the_skipped_hour_runs_at_the_change() -> None:
    cron = CronSchedule("30 2 * * *", "America/New_York")
    # 2024-03-10: clocks jump from 2:00 EST to 3:00 EDT; 2:30 does not exist.
    assert following(cron, at(2024, 3, 9, 12, 0), 3) == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:30:00-04:00",
        "2024-03-12T02:30:00-04:00",
    ]
    assert cron.latest_at_or_before(at(2024, 3, 10, 3, 5)) == at(2024, 3, 10, 3, 0)
    assert cron.latest_at_or_before(at(2024, 3, 10, 2, 59, tz=UTC)) == at(2024, 3, 9, 2, 30)


def test_spring_forward_an_hourly_schedule_skips_the_missing_hour_once() -> None:
    cron = CronSchedule("0 * * * *", "America/New_York")
    assert following(cron, at(2024, 3, 10, 0, 30), 4) == [
        "2024-03-10T01:00:00-05:00",
        "2024-03-10T03:00:00-04:00",  # 2:00 does not exist and 3:00 is fired once
        "2024-03-10T04:00:00-04:00",
        "2024-03-10T05:00:00-04:00",
    ]
    # Every 30 minutes: 2:00 and 2:30 both fall in the gap and collapse onto 3:00.
    half_hourly = CronSchedule("*/30 * * * *", "America/New_York")
    assert following(half_hourly, at(2024, 3, 10, 1, 10), 4) == [
        "2024-03-10T01:30:00-05:00",
        "2024-03-10T03:00:00-04:00",
        "2024-03-10T03:30:00-04:00",
        "2024-03-10T04:00:00-04:00",
    ]


def test_fall_back_a_daily_time_in_the_repeated_hour_runs_once_at_the_first() -> None:
    cron = CronSchedule("30 1 * * *", "America/New_York")
    # 2024-11-03: clocks go from 2:00 EDT back to 1:00 EST; 1:30 happens twice.
    assert following(cron, at(2024, 11, 2, 12, 0), 3) == [
        "2024-11-03T01:30:00-04:00",
        "2024-11-04T01:30:00-05:00",
        "2024-11-05T01:30:00-05:00",
    ]
    second_one_thirty = at(2024, 11, 3, 1, 30, fold=1)
    assert cron.latest_at_or_before(second_one_thirty) == at(2024, 11, 3, 1, 30, fold=0)
    assert cron.next_after(at(2024, 11, 3, 1, 30, fold=0)) == at(2024, 11, 4, 1, 30)


def test_fall_back_an_hourly_schedule_runs_in_both_repeated_hours() -> None:
    cron = CronSchedule("0 * * * *", "America/New_York")
    assert following(cron, at(2024, 11, 3, 0, 30), 4) == [
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:00:00-05:00",
        "2024-11-03T02:00:00-05:00",
        "2024-11-03T03:00:00-05:00",
    ]
    # Strictly one hour apart in real time across the change.
    first, second = at(2024, 11, 3, 1, 0, fold=0), at(2024, 11, 3, 1, 0, fold=1)
    assert second - first == 3600
    assert cron.latest_at_or_before(second + 60) == second
    assert cron.latest_at_or_before(second - 60) == first
    quarter = CronSchedule("*/30 * * * *", "America/New_York")
    assert following(quarter, at(2024, 11, 3, 0, 45), 5) == [
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T01:00:00-05:00",
        "2024-11-03T01:30:00-05:00",
        "2024-11-03T02:00:00-05:00",
    ]


def test_a_cron_that_never_fires_has_no_times() -> None:
    cron = CronSchedule("0 0 30 2 *")
    assert cron.next_after(at(2024, 1, 1, tz=UTC)) is None
    assert cron.latest_at_or_before(at(2024, 1, 1, tz=UTC)) is None
    assert cron.times_between(0, at(2024, 1, 1, tz=UTC), limit=5) == []


@pytest.mark.parametrize(
    ("expression", "timezone", "message"),
    [
        ("every minute", "UTC", "Invalid cron expression 'every minute'"),
        ("* * * * *", "Mars/Olympus_Mons", "Unknown timezone 'Mars/Olympus_Mons'"),
    ],
)
def test_bad_cron_or_timezone_is_a_sentence(expression: str, timezone: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CronSchedule(expression, timezone)

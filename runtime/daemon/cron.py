"""Cron times in a timezone, correct across daylight-saving changes.

croniter steps through wall-clock times; the instants they name are worked
out here, with the rules Dagster users know:

- a wall time that does not exist (the hour skipped when clocks spring
  forward) fires at the first instant that does, the moment of the change
  (a daily 2:30 in America/New_York runs at 3:00 that day);
- a wall time that happens twice (the hour repeated when clocks fall back)
  fires once, at its first occurrence, unless the expression runs every hour
  (its hour field is `*`): then both occurrences fire, an hour apart, as an
  hourly schedule should;
- two wall times naming one instant fire once.

Times are Unix seconds (floats) throughout.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runtime.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["CronSchedule"]


def _naive(timestamp: float) -> datetime:
    """The naive UTC datetime of a timestamp (a wall time read at offset 0)."""
    return datetime.fromtimestamp(timestamp, tz=UTC).replace(tzinfo=None)


def _as_utc(wall: datetime) -> float:
    """The timestamp of a naive wall time read at offset 0."""
    return wall.replace(tzinfo=UTC).timestamp()


# A DST change moves wall time by at most a few hours: farther than this from
# one, wall times and instants move together.
_SLACK = timedelta(hours=4)


class CronSchedule:
    """A cron expression evaluated in one IANA timezone.

    Raises ConfigError for an invalid expression or an unknown timezone.
    """

    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        from croniter import croniter

        if not isinstance(expression, str) or not croniter.is_valid(expression):
            raise ConfigError(
                f"Invalid cron expression {expression!r}; expected five fields like "
                "'*/15 * * * *' or an alias like '@daily'."
            )
        try:
            self.timezone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"Unknown timezone {timezone!r} (cron {expression!r}).") from exc
        self.expression = expression
        self.timezone_name = timezone
        fields, _ = croniter.expand(expression)
        # An expression that fires every hour keeps both copies of a repeated hour.
        self._every_hour = len(fields) > 1 and fields[1] == ["*"]
        self._walker: Any = None
        # The walker is stateful; callers may be threads (the schedule loop's).
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r}, {self.timezone_name!r})"

    # --- queries ------------------------------------------------------------

    def next_after(self, timestamp: float) -> float | None:
        """The first cron time strictly after `timestamp`; None if it never fires again."""
        with self._lock:
            return self._next_after(timestamp)

    def _next_after(self, timestamp: float) -> float | None:
        from croniter import CroniterBadDateError

        try:
            if self._no_change_near(timestamp):
                # Wall time and instants move together here: the first wall time
                # after now is the answer (resolved, it may land on a change far off).
                wall = next(self._walls(self._wall(timestamp), forward=True))
                later = [instant for instant in self._instants(wall) if instant > timestamp]
                if later:
                    return min(later)
            return self._search(timestamp, forward=True)
        except CroniterBadDateError:
            return None

    def latest_at_or_before(self, timestamp: float) -> float | None:
        """The last cron time at or before `timestamp`; None if there is none (an
        expression like `0 0 30 2 *` never fires)."""
        with self._lock:
            return self._latest_at_or_before(timestamp)

    def _latest_at_or_before(self, timestamp: float) -> float | None:
        from croniter import CroniterBadDateError

        try:
            if self._no_change_near(timestamp):
                # croniter goes strictly before its start; a second later includes now.
                start = self._wall(timestamp) + timedelta(seconds=1)
                wall = next(self._walls(start, forward=False))
                earlier = [instant for instant in self._instants(wall) if instant <= timestamp]
                if earlier:
                    return max(earlier)
            return self._search(timestamp, forward=False)
        except CroniterBadDateError:
            return None

    def _search(self, timestamp: float, *, forward: bool) -> float | None:
        """next_after / latest_at_or_before near a DST change.

        A wall time W read with UTC offset o is the instant W - o. The offsets in
        force around `timestamp` bound every reading (a skipped wall time resolves
        to the change, between its two readings), so the walk starts at the
        wall time the most extreme offset gives and stops once no later (earlier)
        wall time can beat the best instant found.
        """
        offsets = [
            self._offset(timestamp + shift)
            for shift in (-_SLACK.total_seconds(), 0.0, _SLACK.total_seconds())
        ]
        low, high = min(offsets), max(offsets)
        best: float | None = None
        if forward:
            # instant > timestamp needs W > timestamp + o >= timestamp + low.
            for wall in self._walls(_naive(timestamp + low), forward=True):
                if best is not None and _as_utc(wall) - high > best:
                    return best
                for instant in self._instants(wall):
                    if instant > timestamp and (best is None or instant < best):
                        best = instant
        else:
            # instant <= timestamp needs W <= timestamp + o <= timestamp + high.
            start = _naive(timestamp + high) + timedelta(seconds=1)
            for wall in self._walls(start, forward=False):
                if best is not None and _as_utc(wall) - low < best:
                    return best
                for instant in self._instants(wall):
                    if instant <= timestamp and (best is None or instant > best):
                        best = instant
        return best  # pragma: no cover (the walk is endless or raises)

    def _offset(self, timestamp: float) -> float:
        offset = datetime.fromtimestamp(timestamp, tz=self.timezone).utcoffset()
        return offset.total_seconds() if offset is not None else 0.0

    def _no_change_near(self, timestamp: float) -> bool:
        """True when the UTC offset is the same `_SLACK` either side of `timestamp`."""
        span = _SLACK.total_seconds()
        before = datetime.fromtimestamp(timestamp - span, tz=self.timezone).utcoffset()
        after = datetime.fromtimestamp(timestamp + span, tz=self.timezone).utcoffset()
        return before == after

    def times_between(self, after: float, until: float, *, limit: int) -> list[float]:
        """Cron times in (after, until], oldest first, at most `limit` of them."""
        found: list[float] = []
        current = after
        while len(found) < limit:
            following = self.next_after(current)
            if following is None or following > until:
                break
            found.append(following)
            current = following
        return found

    def describe(self, timestamp: float) -> str:
        """`timestamp` as an ISO time in this schedule's timezone."""
        return datetime.fromtimestamp(timestamp, tz=self.timezone).isoformat()

    # --- wall times -> instants ---------------------------------------------

    def _wall(self, timestamp: float) -> datetime:
        """The naive wall-clock time at `timestamp` in this timezone."""
        return datetime.fromtimestamp(timestamp, tz=self.timezone).replace(tzinfo=None)

    def _walls(self, start: datetime, *, forward: bool) -> Iterator[datetime]:
        """Cron wall times after (or before) `start`; one walk at a time (under the lock)."""
        from croniter import croniter

        # Naive datetimes: croniter does calendar arithmetic only, no DST guesses.
        # Parsing the expression costs more than stepping: one walker, moved around.
        if self._walker is None:
            self._walker = croniter(self.expression, start)
        walk = self._walker
        walk.set_current(start, force=True)
        while True:
            yield walk.get_next(datetime) if forward else walk.get_prev(datetime)

    def _instants(self, wall: datetime) -> list[float]:
        """The instants at which the wall time `wall` fires (see the module)."""
        first = wall.replace(tzinfo=self.timezone, fold=0).timestamp()
        second = wall.replace(tzinfo=self.timezone, fold=1).timestamp()
        if first == second:
            return [first]
        if self._wall(first) == wall:
            # It happens twice: fold=0 is the earlier occurrence.
            early, late = sorted((first, second))
            return [early, late] if self._every_hour else [early]
        # It does not exist: fold=0 reads it with the offset before the change,
        # fold=1 with the one after; the change lies between the two readings.
        return [self._transition(min(first, second), max(first, second))]

    def _transition(self, low: float, high: float) -> float:
        """The first whole second in (low, high] whose UTC offset is the one at `high`."""
        target = datetime.fromtimestamp(high, tz=self.timezone).utcoffset()
        lo, hi = math.floor(low), math.ceil(high)
        while hi - lo > 1:
            middle = (lo + hi) // 2
            if datetime.fromtimestamp(middle, tz=self.timezone).utcoffset() == target:
                hi = middle
            else:
                lo = middle
        return float(hi)

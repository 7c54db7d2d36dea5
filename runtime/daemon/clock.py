"""Clocks the daemon's loops read the time from and sleep on.

Every loop takes one, so tests can move time by hand instead of waiting for
a minute to pass: `ManualClock` moves only when told, `SystemClock` is the
real time (optionally shifted, to put a cron boundary close by).
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio
import anyio.lowlevel

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """The time, as Unix seconds, and a way to wait for a moment."""

    def now(self) -> float:
        """The current time (Unix seconds)."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once `now()` has reached `deadline` (at once if it has)."""
        ...


class SystemClock:
    """The system's time, `offset` seconds ahead of it (default 0)."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    async def sleep_until(self, deadline: float) -> None:
        remaining = deadline - self.now()
        if remaining > 0:
            await anyio.sleep(remaining)
        else:
            await anyio.lowlevel.checkpoint()


class ManualClock:
    """A clock that stands still until `advance` or `set` moves it; sleepers wake then.

    For tests of schedules and sensors: a per-minute cron is a call, not a minute.
    Raises ValueError when asked to move backwards.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        # Made by the first sleeper: an Event needs a running event loop.
        self._moved: anyio.Event | None = None

    def now(self) -> float:
        return self._now

    def set(self, timestamp: float) -> None:
        """Move to `timestamp` (not earlier than now) and wake whoever sleeps until then."""
        if timestamp < self._now:
            raise ValueError(f"A ManualClock does not go back: {timestamp} is before {self._now}.")
        self._now = timestamp
        moved, self._moved = self._moved, None
        if moved is not None:
            moved.set()

    def advance(self, seconds: float) -> None:
        """Move `seconds` ahead (see `set`)."""
        self.set(self._now + seconds)

    async def sleep_until(self, deadline: float) -> None:
        await anyio.lowlevel.checkpoint()
        while self._now < deadline:
            if self._moved is None:
                self._moved = anyio.Event()
            await self._moved.wait()

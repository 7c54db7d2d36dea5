"""The heartbeat watchdog: a server started with --heartbeat exits when its host goes quiet."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable


class HeartbeatWatchdog:
    """Calls `on_expired` once no `beat()` came for `timeout` seconds (monotonic clock).

    The clock starts when the watchdog is created.
    """

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"The heartbeat timeout must be positive, not {timeout}.")
        self.timeout = timeout
        self._last_beat = time.monotonic()

    def beat(self) -> None:
        """Record a heartbeat now."""
        self._last_beat = time.monotonic()

    @property
    def seconds_since_beat(self) -> float:
        return time.monotonic() - self._last_beat

    async def run(self, on_expired: Callable[[], None]) -> None:
        """Sleep until the deadline, re-arming on each beat; call on_expired and return once it passes."""
        while True:
            remaining = self._last_beat + self.timeout - time.monotonic()
            if remaining <= 0:
                on_expired()
                return
            await anyio.sleep(remaining)

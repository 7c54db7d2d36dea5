"""DaemonOptions: which loops run and how often, and the timeouts they apply."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = ["DaemonOptions"]


@dataclass(frozen=True, kw_only=True)
class DaemonOptions:
    """Tuning of a Daemon. Intervals and timeouts are seconds.

    Raises ValueError for an interval or timeout that is not a positive number.
    """

    schedules: bool = True
    sensors: bool = True
    run_queue: bool = True
    run_monitoring: bool = True
    # How often the schedule and sensor loops re-read start/stop state and the
    # workspace's definitions when no tick is due sooner.
    poll_interval: float = 1.0
    # One schedule or sensor evaluation in its code server; past it the tick fails.
    tick_timeout: float = 60.0
    # How often the run queue is offered to the instance (Instance.dequeue_runs).
    queue_interval: float = 1.0
    # How often runs are checked: dead hosts, STARTING too long, max runtime.
    monitor_interval: float = 2.0
    # A run STARTING for longer than this is failed (Dagster's start_timeout_seconds).
    start_timeout: float = 180.0
    # The daemon renews its lease and stores heartbeats this often...
    heartbeat_interval: float = 5.0
    # ...and another daemon may take over once they are this stale.
    heartbeat_timeout: float = 30.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool):
                continue
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"DaemonOptions.{field.name} must be a positive number of seconds, "
                    f"got {value!r}."
                )
        if self.heartbeat_timeout <= self.heartbeat_interval:
            raise ValueError(
                f"DaemonOptions.heartbeat_timeout ({self.heartbeat_timeout} s) must be longer "
                f"than heartbeat_interval ({self.heartbeat_interval} s), or the lease lapses "
                "between renewals."
            )

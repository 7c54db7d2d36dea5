"""The daemon: schedules, sensors, the run queue and run monitoring over a Workspace.

from runtime import Daemon, Workspace

async with Workspace.from_yaml("workspace.yaml") as ws, Daemon(ws):
    await anyio.sleep_forever()
"""

from __future__ import annotations

from runtime.daemon.clock import Clock, ManualClock, SystemClock
from runtime.daemon.cron import CronSchedule
from runtime.daemon.daemon import Daemon
from runtime.daemon.errors import DaemonAlreadyRunningError, DaemonError, DaemonLeaseLostError
from runtime.daemon.options import DaemonOptions

__all__ = (
    "Clock",
    "CronSchedule",
    "Daemon",
    "DaemonAlreadyRunningError",
    "DaemonError",
    "DaemonLeaseLostError",
    "DaemonOptions",
    "ManualClock",
    "SystemClock",
)

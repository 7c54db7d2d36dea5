"""The tags the daemon puts on the runs it launches, and the ones it reads.

Dagster's `dagster/...` tags, under a `runtime/` prefix; Dagster's own
`dagster/max_runtime` is honoured too.
"""

from __future__ import annotations

__all__ = [
    "DAGSTER_MAX_RUNTIME_TAG",
    "MAX_RUNTIME_TAG",
    "RUN_KEY_TAG",
    "SCHEDULED_TIME_TAG",
    "SCHEDULE_NAME_TAG",
    "SENSOR_NAME_TAG",
    "TICK_ID_TAG",
]

SCHEDULE_NAME_TAG = "runtime/schedule_name"
# The tick's cron time, as an ISO time in the schedule's execution timezone.
SCHEDULED_TIME_TAG = "runtime/scheduled_time"
SENSOR_NAME_TAG = "runtime/sensor_name"
RUN_KEY_TAG = "runtime/run_key"
TICK_ID_TAG = "runtime/tick_id"
# Seconds a run may stay in flight after it started before the daemon cancels it.
MAX_RUNTIME_TAG = "runtime/max_runtime_seconds"
DAGSTER_MAX_RUNTIME_TAG = "dagster/max_runtime"

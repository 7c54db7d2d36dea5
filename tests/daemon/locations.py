"""Code locations the daemon tests load, as source text written into each test's folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

# Jobs every location below shares.
JOBS = """
import asyncio
import time
from runtime import Definitions, RunRequest, SkipReason, job, op, schedule, sensor

@op
def noop() -> int:
    return 1

@job
def work():
    noop()

@op
async def long_nap() -> None:
    await asyncio.sleep(120)

@job
def sleeper():
    long_nap()
"""

SENSORS = (
    JOBS
    + """
@sensor(job=work, minimum_interval_seconds=30)
def three_then_skip(context):
    if context.cursor == "done":
        return SkipReason("nothing new")
    context.update_cursor("done")
    return [RunRequest(run_key=key, tags={"key": key}) for key in ("a", "b", "c")]

@sensor(job=work, minimum_interval_seconds=30)
def same_key(context):
    return RunRequest(run_key="only-once")

@sensor(job=work, minimum_interval_seconds=30)
def counter(context):
    # Ticks 1 and 2 ask for batch-1, ticks 3 and 4 for batch-2, ...
    n = int(context.cursor or 0) + 1
    context.update_cursor(str(n))
    return RunRequest(run_key=f"batch-{(n + 1) // 2}", tags={"tick": str(n)})

@sensor(job=work, minimum_interval_seconds=30)
def raises(context):
    raise ValueError("the upstream API said no")

@sensor(job=work, minimum_interval_seconds=30)
def too_slow(context):
    time.sleep(20)

@sensor(job=work, minimum_interval_seconds=30, default_status="running")
def on_by_default(context):
    return SkipReason("nothing to do")

defs = Definitions(
    jobs=[work, sleeper],
    sensors=[three_then_skip, same_key, counter, raises, too_slow, on_by_default],
)
"""
)

SCHEDULES = (
    JOBS
    + """
@schedule("* * * * *", job=work)
def every_minute(context):
    return {}

@schedule("30 2 * * *", job=work, execution_timezone="America/New_York")
def nightly_new_york(context):
    return RunRequest(tags={"local": context.scheduled_execution_time.isoformat()})

@schedule("0 * * * *", job=work, execution_timezone="America/New_York")
def hourly_new_york(context):
    return {}

@schedule("30 1 * * *", job=work, execution_timezone="America/New_York")
def one_thirty_new_york(context):
    return {}

@schedule("0 * * * *", job=work, default_status="running")
def hourly_by_default(context):
    return {}

defs = Definitions(
    jobs=[work, sleeper],
    schedules=[every_minute, nightly_new_york, hourly_new_york, one_thirty_new_york, hourly_by_default],
)
"""
)

RUNS = (
    JOBS
    + """
@op
async def nap() -> None:
    await asyncio.sleep(0.5)

@job
def napper():
    nap()

@sensor(job=napper, minimum_interval_seconds=30)
def three_naps(context):
    if context.cursor == "done":
        return SkipReason("done")
    context.update_cursor("done")
    return [RunRequest(run_key=str(i)) for i in range(3)]

defs = Definitions(jobs=[work, sleeper, napper], sensors=[three_naps])
"""
)


def write_location(folder: Path, source: str, name: str = "pipeline.py") -> Path:
    """Write `source` as a code location file in `folder` and return its path."""
    path = folder / name
    path.write_text(source)
    return path


# A schedule whose first evaluation hangs (until the daemon gives up on it), later ones return.
HANGS_ONCE = (
    JOBS
    + """
from pathlib import Path

MARKER = Path(__file__).with_name("evaluated-once")

@schedule("* * * * *", job=work)
def hangs_once(context):
    if not MARKER.exists():
        MARKER.write_text("")
        time.sleep(20)
    return {}

defs = Definitions(jobs=[work], schedules=[hangs_once])
"""
)

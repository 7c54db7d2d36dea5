"""Hello world: a whole code location in one file.

Serve it:   RUNTIME_CODE_SERVER_TOKEN=<secret> runtime api grpc --python-file examples/hello_world/definitions.py --port 4000
Or see it:  python examples/demo.py
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from runtime import (
    Definitions,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    asset,
    job,
    op,
    schedule,
    sensor,
)

if TYPE_CHECKING:
    from runtime.definitions.schedule import ScheduleEvaluationContext


@asset
async def raw_orders() -> list[dict[str, object]]:
    """Orders as an upstream system would hand them over (async: it waits on I/O)."""
    await asyncio.sleep(0.01)
    return [
        {"id": 1, "customer": "ada", "amount": 12.5},
        {"id": 2, "customer": "grace", "amount": 30.0},
        {"id": 3, "customer": "ada", "amount": 7.25},
    ]


@asset
def order_count(raw_orders: list[dict[str, object]]) -> int:
    """A parameter named after an asset makes it a dependency."""
    return len(raw_orders)


@asset(group_name="reporting")
def revenue_by_customer(raw_orders: list[dict[str, object]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for order in raw_orders:
        customer = str(order["customer"])
        totals[customer] = totals.get(customer, 0.0) + float(str(order["amount"]))
    return totals


@op
def extract() -> list[int]:
    return [1, 2, 3]


@op
def double(numbers: list[int]) -> list[int]:
    return [n * 2 for n in numbers]


@op
def total(numbers: list[int]) -> int:
    return sum(numbers)


@job
def etl() -> None:
    """extract -> double -> total: composition wires the graph."""
    total(double(extract()))


@schedule(cron_schedule="0 * * * *", job=etl)
def hourly_etl(context: ScheduleEvaluationContext) -> RunRequest:
    return RunRequest(tags={"trigger": "hourly"})


@sensor(job=etl, minimum_interval_seconds=60)
def every_third_tick(context: SensorEvaluationContext) -> RunRequest | SkipReason:
    """Requests a run on every third tick; the cursor counts the ticks."""
    ticks = int(context.cursor or "0") + 1
    context.update_cursor(str(ticks))
    if ticks % 3:
        return SkipReason(f"tick {ticks}: waiting for tick {ticks + 3 - ticks % 3}")
    return RunRequest(run_key=f"tick-{ticks}")


defs = Definitions(
    assets=[raw_orders, order_count, revenue_by_customer],
    jobs=[etl],
    schedules=[hourly_etl],
    sensors=[every_third_tick],
)

"""Ingestion: raw records from upstream systems."""

from __future__ import annotations

import asyncio

from runtime import RetryPolicy, asset


@asset(group_name="ingest", retry_policy=RetryPolicy(max_retries=3, delay=0.5))
async def raw_orders() -> list[dict[str, object]]:
    """Orders, fetched asynchronously (a flaky API: retried)."""
    await asyncio.sleep(0.01)
    return [
        {"order_id": 1, "customer_id": 10, "amount": 40.0, "day": "2024-05-01"},
        {"order_id": 2, "customer_id": 11, "amount": 15.5, "day": "2024-05-01"},
        {"order_id": 3, "customer_id": 10, "amount": 22.0, "day": "2024-05-02"},
    ]


@asset(group_name="ingest")
def raw_customers() -> list[dict[str, object]]:
    return [{"customer_id": 10, "name": "Ada"}, {"customer_id": 11, "name": "Grace"}]

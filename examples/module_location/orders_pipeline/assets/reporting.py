"""Reporting: aggregates built from the ingested assets."""

from __future__ import annotations

from runtime import asset


@asset(group_name="reporting")
def daily_revenue(raw_orders: list[dict[str, object]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for order in raw_orders:
        day = str(order["day"])
        totals[day] = totals.get(day, 0.0) + float(str(order["amount"]))
    return totals


@asset(group_name="reporting", description="Customers by total spend, highest first.")
def top_customers(
    raw_orders: list[dict[str, object]], raw_customers: list[dict[str, object]]
) -> list[str]:
    names = {c["customer_id"]: str(c["name"]) for c in raw_customers}
    spend: dict[str, float] = {}
    for order in raw_orders:
        name = names[order["customer_id"]]
        spend[name] = spend.get(name, 0.0) + float(str(order["amount"]))
    return sorted(spend, key=lambda name: spend[name], reverse=True)

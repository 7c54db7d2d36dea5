"""Builders shared by the instance tests: run records and events with sensible defaults."""

from __future__ import annotations

import time
from typing import Any

from runtime.instance.records import RunRecord, RunStatus
from runtime.protocol.messages import EventType, LogPayload, RunEvent


def make_run(
    run_id: str,
    *,
    job_name: str = "etl",
    location_name: str | None = "team_one",
    status: RunStatus = RunStatus.NOT_STARTED,
    tags: dict[str, str] | None = None,
    created_at: float | None = None,
    **extra: Any,
) -> RunRecord:
    now = time.time() if created_at is None else created_at
    return RunRecord(
        run_id=run_id,
        job_name=job_name,
        location_name=location_name,
        status=status,
        tags=tags or {},
        created_at=now,
        updated_at=now,
        **extra,
    )


def make_event(
    run_id: str,
    sequence: int,
    event_type: EventType = "LOG",
    *,
    step_key: str | None = "step",
) -> RunEvent:
    return RunEvent(
        run_id=run_id,
        sequence=sequence,
        timestamp=time.time(),
        event_type=event_type,
        step_key=step_key,
        payload=LogPayload(message=f"event {sequence} of {run_id}"),
    )

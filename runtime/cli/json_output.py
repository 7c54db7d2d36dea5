"""`--json` output: the records commands print, as plain JSON objects (times as epoch seconds)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from runtime.instance.records import RunRecord
    from runtime.protocol.run_result import RunResult
    from runtime.workspace.location import CodeLocation


def print_json(value: Any) -> None:
    """Write `value` as one JSON document on stdout, newline-terminated."""
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


def run_row(record: RunRecord) -> dict[str, Any]:
    """What `run list --json` prints of one run."""
    return {
        "run_id": record.run_id,
        "job": record.job_name,
        "location": record.location_name,
        "status": str(record.status),
        "tags": record.tags,
        "created": record.created_at,
        "start": record.started_at,
        "end": record.ended_at,
        "parent_run_id": record.parent_run_id,
        "root_run_id": record.root_run_id,
        "failure_reason": record.failure_reason,
    }


def run_details(record: RunRecord, result: RunResult) -> dict[str, Any]:
    """What `run show --json` prints: the run row, its config and selection, and its steps."""
    return {
        **run_row(record),
        "run_config": record.run_config,
        "step_selection": record.step_selection,
        "event_count": result.event_count,
        "steps": [
            {
                "step_key": step.step_key,
                "status": str(step.status),
                "start": step.start_time,
                "end": step.end_time,
                "attempts": step.attempts,
                "error": msgspec.to_builtins(step.error) if step.error is not None else None,
                "skip_reason": step.skip_reason,
            }
            for step in result.steps.values()
        ],
    }


def location_row(location: CodeLocation) -> dict[str, Any]:
    """What `workspace list --json` prints of one location."""
    snapshot = location.snapshot
    error = location.error
    return {
        "name": location.name,
        "status": location.status,
        "server_id": location.server_id,
        "pid": location.pid,
        "load_seconds": location.load_seconds,
        "jobs": [job.name for job in snapshot.jobs] if snapshot is not None else [],
        "assets": [asset.key for asset in snapshot.assets] if snapshot is not None else [],
        "schedules": [s.name for s in snapshot.schedules] if snapshot is not None else [],
        "sensors": [s.name for s in snapshot.sensors] if snapshot is not None else [],
        "error": None
        if error is None
        else {
            "type": error.type,
            "message": error.message,
            "traceback": error.traceback,
            "hints": list(error.hints),
        },
    }


def job_rows(location: CodeLocation) -> list[dict[str, Any]]:
    """What `job list --json` prints of one location's jobs."""
    if location.snapshot is None:
        return []
    return [
        {
            "location": location.name,
            "job": job.name,
            "steps": [step.key for step in job.steps],
            "description": job.description,
            "tags": job.tags,
            "is_asset_job": job.is_asset_job,
        }
        for job in location.snapshot.jobs
    ]

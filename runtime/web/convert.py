"""From the runtime's objects (locations, snapshots, run records, events) to API bodies."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from runtime.protocol import messages as m
from runtime.web.models import (
    EdgeBody,
    EventBody,
    JobBody,
    LocationBody,
    LocationErrorBody,
    RunBody,
    RunDetailBody,
    StepBody,
    StepInputBody,
    StepOutcomeBody,
)

if TYPE_CHECKING:
    from runtime.instance.records import RunRecord
    from runtime.protocol.messages import RunEvent
    from runtime.protocol.run_result import RunResult
    from runtime.workspace.location import CodeLocation


def location_body(location: CodeLocation) -> LocationBody:
    snapshot = location.snapshot
    error = location.error
    return LocationBody(
        name=location.name,
        status=location.status,
        error=None
        if error is None
        else LocationErrorBody(
            type=error.type,
            message=error.message,
            traceback=error.traceback,
            hints=list(error.hints),
            time=error.time,
        ),
        server_id=location.server_id,
        pid=location.pid,
        jobs=[job.name for job in snapshot.jobs] if snapshot is not None else [],
        assets=[asset.key for asset in snapshot.assets] if snapshot is not None else [],
        schedules=[s.name for s in snapshot.schedules] if snapshot is not None else [],
        sensors=[s.name for s in snapshot.sensors] if snapshot is not None else [],
        load_time=location.load_seconds,
        kind=location.spec.kind,
        updated_at=location.history[-1][1],
    )


def job_body(location: str, job: m.JobSnapshot) -> JobBody:
    steps: list[StepBody] = []
    edges: list[EdgeBody] = []
    for step in job.steps:
        upstream: list[str] = []
        for given in step.inputs:
            if given.upstream_step is not None:
                upstream.append(given.upstream_step)
                edges.append(
                    EdgeBody(source=given.upstream_step, target=step.key, input=given.name)
                )
        for before in step.after:
            upstream.append(before)
            edges.append(EdgeBody(source=before, target=step.key))
        steps.append(
            StepBody(
                key=step.key,
                kind=step.kind,
                is_async=step.is_async,
                pool=step.pool,
                description=step.description,
                tags=step.tags,
                inputs=[
                    StepInputBody(
                        name=given.name,
                        upstream_step=given.upstream_step,
                        upstream_output=given.upstream_output if given.upstream_step else None,
                        upstream_asset=given.upstream_asset,
                    )
                    for given in step.inputs
                ],
                upstream=list(dict.fromkeys(upstream)),
                config_schema=step.config_schema,
            )
        )
    return JobBody(
        name=job.name,
        location=location,
        description=job.description,
        tags=job.tags,
        is_asset_job=job.is_asset_job,
        steps=steps,
        edges=edges,
    )


def run_body(record: RunRecord) -> RunBody:
    return RunBody(
        run_id=record.run_id,
        job=record.job_name,
        location=record.location_name,
        status=str(record.status),
        tags=record.tags,
        created_at=record.created_at,
        started_at=record.started_at,
        ended_at=record.ended_at,
        updated_at=record.updated_at,
        parent_run_id=record.parent_run_id,
        root_run_id=record.root_run_id,
        failure_reason=record.failure_reason,
    )


def run_detail_body(record: RunRecord, result: RunResult) -> RunDetailBody:
    row = run_body(record)
    return RunDetailBody(
        **msgspec.structs.asdict(row),
        run_config=record.run_config,
        step_selection=record.step_selection,
        event_count=result.event_count,
        steps=[
            StepOutcomeBody(
                step_key=step.step_key,
                status=str(step.status),
                start_time=step.start_time,
                end_time=step.end_time,
                attempts=step.attempts,
                error=msgspec.to_builtins(step.error) if step.error is not None else None,
                skip_reason=step.skip_reason,
            )
            for step in result.steps.values()
        ],
    )


def event_body(event: RunEvent) -> EventBody:
    message, level = describe_payload(event)
    return EventBody(
        run_id=event.run_id,
        sequence=event.sequence,
        event_type=event.event_type,
        step_key=event.step_key,
        timestamp=event.timestamp,
        message=message,
        level=level,
        payload=msgspec.to_builtins(event.payload),
    )


_PLAIN_MESSAGES = {
    "RUN_STARTING": "Starting the run.",
    "RUN_START": "The run started.",
    "STEP_START": "Step started.",
    "RUN_SUCCESS": "The run succeeded.",
    "RUN_CANCELING": "Canceling the run.",
    "RUN_CANCELED": "The run was canceled.",
    "STEP_RESTARTED": "Step restarted.",
}


def describe_payload(event: RunEvent) -> tuple[str, str]:
    """A line a person reads for this event, and its level (DEBUG, INFO, WARNING, ERROR)."""
    payload = event.payload
    if isinstance(payload, m.LogPayload):
        return payload.message, payload.level
    if isinstance(payload, m.StepFailurePayload):
        return f"{payload.error.type}: {payload.error.message}", "ERROR"
    if isinstance(payload, m.StepSuccessPayload):
        return f"Step succeeded in {payload.duration_seconds * 1000:.1f} ms.", "INFO"
    if isinstance(payload, m.StepOutputPayload):
        return f"Output {payload.output_name} = {payload.value_repr}", "DEBUG"
    if isinstance(payload, m.StepSkippedPayload):
        return payload.reason, "WARNING"
    if isinstance(payload, m.StepRetryPayload):
        cause = f" after {payload.error.type}: {payload.error.message}" if payload.error else ""
        return (
            f"Retry {payload.retry_number} in {payload.delay_seconds:.2f} s{cause}",
            "WARNING",
        )
    if isinstance(payload, m.AssetMaterializationPayload):
        return f"Materialized {payload.asset_key}.", "INFO"
    if isinstance(payload, m.RunFailurePayload):
        return payload.message, "ERROR"
    if isinstance(payload, m.EnginePayload):
        return payload.message, "ERROR" if payload.error is not None else "INFO"
    return _PLAIN_MESSAGES.get(event.event_type, event.event_type), "INFO"

"""build_snapshot: what a repository defines, as the payload the host receives.

A location may hold 10,000 assets, so the per-op part of a step (retry
policy, config schema, tags...) is converted once per op and copied for each
step that runs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from runtime.definitions.config import config_json_schema
from runtime.gc_pause import gc_paused
from runtime.protocol.messages import (
    AssetSnapshot,
    JobSnapshot,
    RetryPolicySnapshot,
    ScheduleSnapshot,
    SensorSnapshot,
    Snapshot,
    StepInputSnapshot,
    StepSnapshot,
)

if TYPE_CHECKING:
    from runtime.definitions.graph import JobDefinition, OpDefinition, StepNode
    from runtime.definitions.repository import RepositoryDefinition
    from runtime.protocol.messages import LoadTimings


def build_snapshot(
    repo: RepositoryDefinition, *, location_name: str, server_id: str, timings: LoadTimings
) -> Snapshot:
    """Snapshot every job (building lazy ones), asset, schedule and sensor of `repo`.

    Raises what building a lazy definition raises (DefinitionError).
    """
    # Tens of thousands of small objects are made here and none form cycles;
    # the cyclic collector would only rescan them again and again.
    with gc_paused():
        return _build(repo, location_name=location_name, server_id=server_id, timings=timings)


def _build(
    repo: RepositoryDefinition, *, location_name: str, server_id: str, timings: LoadTimings
) -> Snapshot:
    jobs = repo.get_all_jobs()
    job_names_by_asset: dict[str, list[str]] = {}
    op_templates: dict[int, StepSnapshot] = {}
    job_snapshots = [_job(job, op_templates, job_names_by_asset) for job in jobs]
    assets = [
        AssetSnapshot(
            key=asset.key,
            deps=list(asset.deps),
            group_name=asset.op.group_name,
            description=asset.op.description,
            tags=dict(asset.op.tags),
            is_async=asset.op.is_async,
            job_names=job_names_by_asset.get(asset.key, []),
        )
        for asset in repo.assets
    ]
    schedules = [
        ScheduleSnapshot(
            name=schedule.name,
            cron_schedule=schedule.cron_schedule,
            job_name=schedule.job_name,
            execution_timezone=schedule.execution_timezone,
            description=schedule.description,
            default_status=schedule.default_status,
        )
        for schedule in repo.get_all_schedules()
    ]
    sensors = [
        SensorSnapshot(
            name=sensor.name,
            job_name=sensor.job_name,
            minimum_interval_seconds=sensor.minimum_interval_seconds,
            description=sensor.description,
            default_status=sensor.default_status,
        )
        for sensor in repo.get_all_sensors()
    ]
    return Snapshot(
        location_name=location_name,
        server_id=server_id,
        jobs=job_snapshots,
        assets=assets,
        schedules=schedules,
        sensors=sensors,
        timings=timings,
    )


def _job(
    job: JobDefinition,
    op_templates: dict[int, StepSnapshot],
    job_names_by_asset: dict[str, list[str]],
) -> JobSnapshot:
    steps: list[StepSnapshot] = []
    replace = msgspec.structs.replace
    for node in job.steps.values():
        op = node.op
        template = op_templates.get(id(op))
        if template is None:
            template = op_templates[id(op)] = _op_template(op)
        if op.asset_key is not None:
            job_names_by_asset.setdefault(op.asset_key, []).append(job.name)
        if node.inputs or node.external_inputs or node.after:
            steps.append(
                replace(template, key=node.key, inputs=_inputs(node), after=list(node.after))
            )
        else:
            steps.append(replace(template, key=node.key))
    return JobSnapshot(
        name=job.name,
        description=job.description,
        tags=dict(job.tags),
        steps=steps,
        is_asset_job=job.is_asset_job,
    )


def _inputs(node: StepNode) -> list[StepInputSnapshot]:
    inputs = [
        StepInputSnapshot(
            name=name, upstream_step=source.upstream_step, upstream_output=source.upstream_output
        )
        for name, source in node.inputs.items()
    ]
    # Inputs read from the IO manager: no upstream step in this job.
    inputs.extend(
        StepInputSnapshot(name=name, upstream_asset=asset_key)
        for name, asset_key in node.external_inputs.items()
    )
    return inputs


def _op_template(op: OpDefinition) -> StepSnapshot:
    # Everything about a step that depends on its op only; each step copies it
    # and sets its key and edges.
    policy = op.retry_policy
    return StepSnapshot(
        key=op.name,
        kind="asset" if op.asset_key is not None else "op",
        is_async=op.is_async,
        pool=op.pool,
        description=op.description,
        tags=dict(op.tags),
        config_schema=config_json_schema(op.config_type) if op.config_type else None,
        retry_policy=(
            RetryPolicySnapshot(
                max_retries=policy.max_retries,
                delay=policy.delay,
                backoff=str(policy.backoff),  # type: ignore[arg-type]
                jitter=str(policy.jitter),  # type: ignore[arg-type]
            )
            if policy is not None
            else None
        ),
    )

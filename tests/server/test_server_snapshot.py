"""build_snapshot (the code server): jobs with steps and edges, assets with deps and jobs, schedules, sensors."""

from __future__ import annotations

from typing import Any

import msgspec

from runtime import (
    Definitions,
    RetryPolicy,
    ScheduleDefinition,
    asset,
    define_asset_job,
    job,
    op,
    repository,
    sensor,
)
from runtime.definitions.graph import ASSET_JOB_NAME
from runtime.protocol.messages import LoadTimings, ModuleImportTime, Snapshot, decoder, encode
from runtime.server.snapshot import build_snapshot


class LimitConfig(msgspec.Struct):
    limit: int = 10


@asset(group_name="raw", tags={"tier": "bronze"}, description="Raw rows.")
async def rows() -> list[int]:
    return [1]


@asset(deps=["rows"], retry_policy=RetryPolicy(max_retries=2, delay=1.0, backoff="exponential"))
def checked() -> None:
    return None


@asset(pool="db")
def totals(rows: list[int], config: LimitConfig) -> int:
    return sum(rows[: config.limit])


@op
def emit() -> int:
    return 1


@op
def consume(value: int) -> None:
    return None


@job(description="ops only", tags={"owner": "me"})
def pipeline() -> None:
    value = emit()
    consume(value)
    consume(value)


only_totals = define_asset_job("only_totals", [totals])
TIMINGS = LoadTimings(
    import_seconds=0.5,
    total_seconds=0.6,
    slowest_modules=[ModuleImportTime(module="heavy", seconds=0.4)],
)


def _snapshot() -> Snapshot:
    defs = Definitions(
        assets=[rows, checked, totals],
        jobs=[pipeline, only_totals],
        schedules=[
            ScheduleDefinition(
                name="daily",
                cron_schedule="0 3 * * *",
                job=pipeline,
                execution_timezone="Europe/Berlin",
                description="at three",
                default_status="running",
            )
        ],
        sensors=[
            sensor(job=only_totals, name="watch", minimum_interval_seconds=60)(lambda c: None)
        ],
    )
    return build_snapshot(
        defs.get_repository(), location_name="team", server_id="srv-1", timings=TIMINGS
    )


def test_snapshot_header_and_round_trip() -> None:
    snapshot = _snapshot()
    assert snapshot.location_name == "team"
    assert snapshot.server_id == "srv-1"
    assert snapshot.timings == TIMINGS
    assert snapshot.error is None
    assert decoder(Snapshot).decode(encode(snapshot)) == snapshot


def test_op_job_steps_and_edges() -> None:
    jobs = {j.name: j for j in _snapshot().jobs}
    assert list(jobs) == ["pipeline", "only_totals", ASSET_JOB_NAME]
    pipe = jobs["pipeline"]
    assert pipe.description == "ops only"
    assert pipe.tags == {"owner": "me"}
    assert pipe.is_asset_job is False
    assert [s.key for s in pipe.steps] == ["emit", "consume", "consume_2"]
    consume_2 = pipe.steps[2]
    assert consume_2.kind == "op"
    assert [(i.name, i.upstream_step, i.upstream_output) for i in consume_2.inputs] == [
        ("value", "emit", "result")
    ]


def test_asset_job_steps() -> None:
    jobs = {j.name: j for j in _snapshot().jobs}
    all_assets = jobs[ASSET_JOB_NAME]
    assert all_assets.is_asset_job
    steps = {s.key: s for s in all_assets.steps}
    assert list(steps) == ["rows", "checked", "totals"]
    assert steps["rows"].kind == "asset"
    assert steps["rows"].is_async is True
    assert steps["rows"].tags == {"tier": "bronze"}
    assert steps["rows"].description == "Raw rows."
    assert steps["checked"].after == ["rows"]
    assert steps["checked"].inputs == []
    assert steps["checked"].retry_policy is not None
    assert steps["checked"].retry_policy.max_retries == 2
    assert steps["checked"].retry_policy.backoff == "exponential"
    assert steps["totals"].pool == "db"
    assert steps["totals"].inputs[0].upstream_step == "rows"
    schema: dict[str, Any] | None = steps["totals"].config_schema
    assert schema is not None and "LimitConfig" in schema["$defs"]

    [partial_step] = jobs["only_totals"].steps
    assert partial_step.key == "totals"
    [external] = partial_step.inputs
    assert external.name == "rows"
    assert external.upstream_step is None
    assert external.upstream_asset == "rows"


def test_assets_schedules_sensors() -> None:
    snapshot = _snapshot()
    assets = {a.key: a for a in snapshot.assets}
    assert assets["rows"].group_name == "raw"
    assert assets["rows"].is_async is True
    assert assets["rows"].job_names == [ASSET_JOB_NAME]
    assert assets["checked"].deps == ["rows"]
    assert assets["totals"].deps == ["rows"]
    assert assets["totals"].job_names == ["only_totals", ASSET_JOB_NAME]

    [daily] = snapshot.schedules
    assert daily.name == "daily"
    assert daily.cron_schedule == "0 3 * * *"
    assert daily.job_name == "pipeline"
    assert daily.execution_timezone == "Europe/Berlin"
    assert daily.description == "at three"
    assert daily.default_status == "running"

    [watch] = snapshot.sensors
    assert watch.name == "watch"
    assert watch.job_name == "only_totals"
    assert watch.minimum_interval_seconds == 60
    assert watch.default_status == "stopped"


def test_lazy_repository_is_built_for_the_snapshot() -> None:
    built: list[str] = []

    def build() -> Any:
        built.append("pipeline")
        return pipeline

    @repository
    def lazy() -> dict[str, Any]:
        return {"jobs": {"pipeline": build}}

    snapshot = build_snapshot(lazy, location_name="l", server_id="s", timings=LoadTimings())
    assert built == ["pipeline"]
    assert [j.name for j in snapshot.jobs] == ["pipeline"]


def test_ten_thousand_assets() -> None:
    namespace: dict[str, Any] = {}
    # A forest of chains: every tenth asset starts a new chain.
    exec(
        "\n".join(f"def a{i}({f'a{i - 1}' if i % 10 else ''}): return 1" for i in range(10_000)),
        namespace,
    )
    assets = [asset(namespace[f"a{i}"]) for i in range(10_000)]
    defs = Definitions(assets=assets)
    snapshot = build_snapshot(
        defs.get_repository(), location_name="big", server_id="s", timings=LoadTimings()
    )
    assert len(snapshot.assets) == 10_000
    [asset_job] = snapshot.jobs
    assert len(asset_job.steps) == 10_000
    assert snapshot.assets[9_999].deps == ["a9998"]
    assert len(encode(snapshot)) > 100_000

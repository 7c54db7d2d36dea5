"""Scenario `launch`: a warm workspace, a 1-step job, `launch_run` to RUN_SUCCESS stored.

p50 and p99 over sequential runs, then many runs launched at once (total
time). `run.wait()` returns once the run's final event is stored. Dagster's
side launches through its code server with the default run launcher
(benchmarks/peers/dagster_launch.py), fewer times: each of its runs takes seconds.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import anyio

from benchmarks import generate
from benchmarks.harness import Figure
from benchmarks.peer import PeerError, run_peer
from benchmarks.report import Row
from benchmarks.storage import TITLES, fresh_storages

if TYPE_CHECKING:
    from pathlib import Path

    from benchmarks.settings import Settings
    from runtime import Instance

TARGET_P50_MS = 10.0
WARMUP_RUNS = 10


class NotAvailable(Exception):
    """The project does not offer what this scenario needs yet."""


def job_file(settings: Settings, flavor: generate.Flavor) -> Path:
    path = settings.workdir / "launch" / f"one_step_{flavor}.py"
    if not path.exists():
        generate.write_ops_job(path, n=1, shape="chain", flavor=flavor)
    return path


async def _launch_and_wait(ws: Any, location: str) -> float:
    start = time.perf_counter()
    run = await ws.launch_run(job=generate.OPS_JOB, location=location)
    result = await run.wait()
    seconds = time.perf_counter() - start
    if result.status != "SUCCESS":
        raise RuntimeError(f"Run {run.run_id} of {generate.OPS_JOB} ended {result.status}.")
    return seconds


async def measure_ours(settings: Settings, sequential: int, concurrent: int) -> dict[str, Figure]:
    from runtime import Instance, Workspace

    if not hasattr(Workspace, "launch_run"):
        raise NotAvailable("Workspace.launch_run is not there yet")
    from runtime.instance.config import InstanceConfig, StorageConfig

    file = job_file(settings, "runtime")
    with fresh_storages(settings, "launch") as fresh:
        kind, options = fresh()
        config = InstanceConfig(storage=StorageConfig(kind=kind, options=options))
        return await _measure_in(Instance.ephemeral(config), file, sequential, concurrent)


async def _measure_in(
    instance: Instance, file: Path, sequential: int, concurrent: int
) -> dict[str, Figure]:
    from runtime import Workspace

    async with (
        instance,
        Workspace.from_targets(python_files=[str(file)], instance=instance) as ws,
    ):
        location = file.stem
        status = ws.locations[location].status
        if status != "loaded":
            raise RuntimeError(f"Location {location} is {status}: {ws.locations[location].error}")
        for _ in range(WARMUP_RUNS):
            await _launch_and_wait(ws, location)
        latencies = [await _launch_and_wait(ws, location) for _ in range(sequential)]

        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(concurrent):
                tg.start_soon(_launch_and_wait, ws, location)
        burst = time.perf_counter() - start
    return {"latency": Figure.of(latencies), "burst": Figure.of([burst])}


def measure_peer(settings: Settings, sequential: int, concurrent: int) -> dict[str, Figure]:
    assert settings.peer_python is not None
    result = run_peer(
        settings.peer_python,
        "dagster_launch.py",
        [
            "--file",
            str(job_file(settings, "dagster")),
            "--sequential",
            str(sequential),
            "--concurrent",
            str(concurrent),
        ],
        timeout=3600,
    )
    return {"latency": Figure.of(result["latency"]), "burst": Figure.of([result["burst"]])}


def run(settings: Settings) -> list[Row]:
    sequential, concurrent = (50, 20) if settings.quick else (200, 100)
    # Dagster starts a process per run (about 1.5 s, 150 MiB each): fewer, smaller bursts.
    peer_sequential, peer_concurrent = (2, 2) if settings.quick else (10, 10)
    # The SQLite rows keep their names (and history); other storages say theirs.
    on = "" if settings.storage == "sqlite" else f", {TITLES[settings.storage]}"
    p50 = Row("launch", f"1 step, {sequential} sequential{on}", "p50", "ms", target=TARGET_P50_MS)
    p99 = Row("launch", f"1 step, {sequential} sequential{on}", "p99", "ms")
    burst = Row("launch", f"1 step, {concurrent} at once{on}", "total", "ms")
    peer_count = f" (dagster {peer_concurrent})" if settings.peer_python is not None else ""
    per_run = Row("launch", f"1 step, {concurrent} at once{on}{peer_count}", "total / runs", "ms")
    notes: list[str] = []
    try:
        ours = anyio.run(measure_ours, settings, sequential, concurrent)
        latency = ours["latency"].scaled(1000)
        p50.ours = latency
        p99.ours = Figure.of([latency.percentile(99)])
        burst.ours = ours["burst"].scaled(1000)
        per_run.ours = ours["burst"].scaled(1000 / concurrent)
    except (NotAvailable, ImportError) as exc:
        notes.append(f"not available yet ({exc})")
    except (RuntimeError, TimeoutError) as exc:
        notes.append(f"ours failed: {str(exc).splitlines()[0]}")
        print(f"launch: ours failed:\n{exc}", file=sys.stderr)
    if settings.peer_python is not None:
        try:
            peer = measure_peer(settings, peer_sequential, peer_concurrent)
            latency = peer["latency"].scaled(1000)
            p50.peer = latency
            p99.peer = Figure.of([latency.percentile(99)])
            per_run.peer = peer["burst"].scaled(1000 / peer_concurrent)
            notes.append(f"dagster: {peer_sequential} sequential, {peer_concurrent} at once")
        except PeerError as exc:
            notes.append("dagster failed")
            print(f"launch: dagster failed:\n{exc}", file=sys.stderr)
    rows = [p50, p99, burst, per_run]
    for row in rows:
        row.note = "; ".join(notes)
    return rows

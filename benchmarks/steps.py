"""Scenario `steps`: one run of N trivial steps, every event stored; wall time and per-step overhead.

Ours: the execution engine (`execute_plan`) in this process, its events
drained from the thread-safe `EventBuffer` (as the code server does) into an
`EventWriter` over a fresh SQLite storage; the clock stops once every event is
stored. Dagster: `execute_in_process` with a SQLite-backed instance, and its
multiprocess executor (benchmarks/peers/dagster_steps.py).
"""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import anyio

from benchmarks import generate
from benchmarks.harness import Figure, acollect
from benchmarks.peer import PeerError, run_peer
from benchmarks.report import Row

if TYPE_CHECKING:
    from pathlib import Path

    from benchmarks.settings import Settings
    from runtime.definitions.graph import JobDefinition

FULL_SIZES = (100, 1_000, 10_000)
QUICK_SIZES = (100, 1_000)
MODES = ("sync", "async")
TARGET_MS_PER_STEP = 0.25  # for 1,000 async steps
# Dagster takes 10-30 ms a step: its side runs at these sizes only.
PEER_IN_PROCESS = {100: generate.SHAPES, 1_000: ("layered",)}
QUICK_PEER_IN_PROCESS = {100: ("layered",)}
# Dagster's multiprocess executor starts a process per step (about 1 s each).
MULTIPROCESS_STEPS = 10
# The same jobs through the whole path: workspace, code server, stored events.
LAUNCHED_SIZES = (1_000, 10_000)
QUICK_LAUNCHED_SIZES = (1_000,)


def job_file(
    settings: Settings, n: int, shape: generate.Shape, mode: str, flavor: generate.Flavor
) -> Path:
    """The generated ops job, written once per invocation."""
    path = settings.workdir / "steps" / f"ops_{flavor}_{n}_{shape}_{mode}.py"
    if not path.exists():
        generate.write_ops_job(path, n=n, shape=shape, flavor=flavor, is_async=mode == "async")
    return path


def load_job(file: Path) -> JobDefinition:
    """Import the generated module under its own name and return its job.

    Its folder goes on sys.path, as the code server's loader does, so that
    process workers can import the step functions by module name.
    """
    if str(file.parent) not in sys.path:
        sys.path.insert(0, str(file.parent))
    spec = importlib.util.spec_from_file_location(file.stem, file)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"Cannot import the generated job file {file}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[file.stem] = module
    spec.loader.exec_module(module)
    job: JobDefinition = getattr(module, generate.OPS_JOB)
    return job


async def run_once(
    job: JobDefinition,
    folder: Path,
    index: int,
    *,
    steps: int,
    executor: str = "in_process",
    executor_config: dict[str, Any] | None = None,
    shared_outputs: bool = False,
) -> dict[str, float]:
    """Run the job once with every event stored; seconds from planning to the last event stored.

    With `shared_outputs`, outputs go through an FsspecIOManager under `folder`
    (as a launched dask run's do) instead of staying in memory.
    """
    from runtime.execution.events import EventBuffer
    from runtime.execution.plan import ExecutionPlan
    from runtime.execution.scheduler import execute_plan
    from runtime.instance.records import RunRecord
    from runtime.instance.storage.event_writer import EventWriter
    from runtime.instance.storage.sqlite import SqliteRunStorage

    run_id = uuid.uuid4().hex
    async with SqliteRunStorage(folder / f"db{index}") as storage:
        now = time.time()
        await storage.add_run(
            RunRecord(run_id=run_id, job_name=job.name, created_at=now, updated_at=now)
        )
        outcome: Any = None
        start = time.perf_counter()
        async with EventWriter(storage) as writer:
            buffer = EventBuffer()

            async def drain() -> None:
                async for batch in buffer.batches():
                    writer.append_many(batch)

            async with anyio.create_task_group() as tg:
                tg.start_soon(drain)
                plan = ExecutionPlan.build(job)
                outcome = await execute_plan(
                    plan,
                    run_id=run_id,
                    sink=buffer,
                    executor=executor,
                    executor_config=executor_config,
                    io_manager=_shared_outputs(folder, run_id) if shared_outputs else None,
                )
                buffer.close()
            await writer.flush(run_id)
        seconds = time.perf_counter() - start
        stored = await storage.get_events(run_id)
    successes = sum(1 for event in stored if event.event_type == "STEP_SUCCESS")
    if outcome.status != "SUCCESS" or successes != steps or stored[-1].event_type != "RUN_SUCCESS":
        raise RuntimeError(
            f"Run {run_id} of {job.name} ended {outcome.status} with {successes} of {steps} "
            f"steps stored as succeeded (last event {stored[-1].event_type})."
        )
    return {"seconds": seconds, "events": float(len(stored))}


def _shared_outputs(folder: Path, run_id: str) -> Any:
    from runtime.execution.fsspec_io import FsspecIOManager

    return FsspecIOManager(folder / "outputs", run_id)


async def measure_ours(
    settings: Settings,
    file: Path,
    n: int,
    executor: str = "in_process",
    executor_config: dict[str, Any] | None = None,
    shared_outputs: bool = False,
) -> dict[str, Figure]:
    job = load_job(file)
    folder = settings.workdir / "steps" / f"db_{file.stem}_{executor}"
    counter = iter(range(1_000_000))
    repeats = min(settings.repeats, 3) if n >= 10_000 else settings.repeats

    async def once() -> dict[str, float]:
        return await run_once(
            job,
            folder,
            next(counter),
            steps=n,
            executor=executor,
            executor_config=executor_config,
            shared_outputs=shared_outputs,
        )

    return await acollect(once, repeats=repeats, warmup=settings.warmup)


async def measure_ours_launched(settings: Settings, file: Path, n: int) -> dict[str, Figure]:
    """The whole path: `launch_run` on a warm workspace until `wait()` (every event stored)."""
    from runtime import Instance, Workspace

    async with (
        Instance.ephemeral() as instance,
        Workspace.from_targets(python_files=[str(file)], instance=instance) as ws,
    ):
        location = ws.locations[file.stem]
        if location.status != "loaded":
            raise RuntimeError(f"Location {file.stem} is {location.status}: {location.error}")

        async def once() -> dict[str, float]:
            start = time.perf_counter()
            run = await ws.launch_run(job=generate.OPS_JOB, location=file.stem)
            result = await run.wait()
            seconds = time.perf_counter() - start
            succeeded = sum(1 for step in result.steps.values() if step.status == "SUCCESS")
            if result.status != "SUCCESS" or succeeded != n:
                raise RuntimeError(
                    f"Run {run.run_id} of {file.name} ended {result.status} with {succeeded} of {n} steps."
                )
            return {"seconds": seconds, "events": float(result.event_count)}

        repeats = min(settings.repeats, 3) if n >= 10_000 else settings.repeats
        return await acollect(once, repeats=repeats, warmup=settings.warmup)


def _launched_row(settings: Settings, n: int, shape: generate.Shape, mode: str) -> Row:
    label = f"{n} {shape} {mode} (launch_run)"
    target = TARGET_MS_PER_STEP if (n == 1_000 and mode == "async") else None
    row = Row("steps", label, "per step", "ms", target=target)
    file = job_file(settings, n, shape, mode, "runtime")
    try:
        ours = anyio.run(measure_ours_launched, settings, file, n)
        row.ours = ours["seconds"].scaled(1000 / n)
        row.note = (
            f"wall {ours['seconds'].median * 1000:.0f} ms, {ours['events'].median:.0f} events, "
            "through the code server"
        )
    except ImportError as exc:
        row.note = f"not available yet ({exc})"
    except (RuntimeError, TimeoutError) as exc:
        row.note = f"ours failed: {str(exc).splitlines()[0]}"
        print(f"steps: ours failed for {label}:\n{exc}", file=sys.stderr)
    return row


def measure_peer(settings: Settings, file: Path, n: int, executor: str) -> Figure:
    assert settings.peer_python is not None
    repeats = 1 if n >= 1_000 or executor == "multiprocess" else settings.peer_repeats
    result = run_peer(
        settings.peer_python,
        "dagster_steps.py",
        ["--file", str(file), "--steps", str(n), "--executor", executor, "--repeats", str(repeats)],
        timeout=3600,
    )
    return Figure.of(result["seconds"])


def _row(settings: Settings, n: int, shape: generate.Shape, mode: str, executor: str) -> Row:
    label = f"{n} {shape} {mode}" + ("" if executor == "in_process" else f" ({executor})")
    target = (
        TARGET_MS_PER_STEP
        if (n == 1_000 and mode == "async" and executor == "in_process")
        else None
    )
    row = Row("steps", label, "per step", "ms", target=target)
    notes: list[str] = []
    try:
        ours = anyio.run(
            measure_ours,
            settings,
            job_file(settings, n, shape, mode, "runtime"),
            n,
            executor,
        )
        row.ours = ours["seconds"].scaled(1000 / n)
        notes.append(
            f"wall {ours['seconds'].median * 1000:.0f} ms, {ours['events'].median:.0f} events"
        )
    except ImportError as exc:
        notes.append(f"not available yet ({exc})")
    except (RuntimeError, TimeoutError) as exc:
        notes.append(f"ours failed: {str(exc).splitlines()[0]}")
        print(f"steps: ours failed for {label}:\n{exc}", file=sys.stderr)
    peer_sizes = QUICK_PEER_IN_PROCESS if settings.quick else PEER_IN_PROCESS
    wants_peer = (
        executor == "multiprocess" or shape in peer_sizes.get(n, ())
    ) and settings.peer_python is not None
    if wants_peer:
        try:
            peer = measure_peer(
                settings, job_file(settings, n, shape, mode, "dagster"), n, executor
            )
            row.peer = peer.scaled(1000 / n)
            notes.append(f"dagster wall {peer.median * 1000:.0f} ms")
        except PeerError as exc:
            notes.append("dagster failed")
            print(f"steps: dagster failed for {label}:\n{exc}", file=sys.stderr)
    row.note = "; ".join(notes)
    return row


def run(settings: Settings) -> list[Row]:
    if settings.executor == "dask":
        from benchmarks import dask_steps

        return dask_steps.run(settings)
    rows: list[Row] = []
    shapes = ("layered",) if settings.quick else generate.SHAPES
    for n in settings.pick(FULL_SIZES, QUICK_SIZES):
        for shape in shapes:
            for mode in MODES:
                rows.append(_row(settings, n, shape, mode, "in_process"))
    if not settings.quick:
        rows.append(_row(settings, MULTIPROCESS_STEPS, "layered", "sync", "multiprocess"))
    for n in settings.pick(LAUNCHED_SIZES, QUICK_LAUNCHED_SIZES):
        for mode in MODES:
            rows.append(_launched_row(settings, n, "layered", mode))
    return rows

"""Scenario `loop`: how long the host's event loop stalls while it drives runs.

The host is a guest in the embedding service's loop, so what matters to that
service is the loop's lag: a probe task sleeps 5 ms over and over, and each
wake-up later than asked is one sample of lag. Two cases, each on a warm
workspace with an ephemeral instance:

- 500 runs of a 1-step job launched at once (`launch_run` then `wait()` each),
  with the time until the last one is stored beside the lag;
- one run of a 10,000-step job (independent async ops) as it streams, from
  `launch_run` to `wait()`.

The figures are the p99 and the maximum lag of each repetition, as a median
over repetitions, and the longest pause of Python's cyclic garbage collector
in the same window: a full collection stops the loop too, however the host
behaves, and it is often what the maximum is made of.
"""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from benchmarks import generate
from benchmarks.harness import Figure
from benchmarks.report import Row

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from benchmarks.settings import Settings

PROBE_SECONDS = 0.005
TARGET_P99_MS = 50.0
TARGET_MAX_MS = 100.0


class LagProbe:
    """Sleeps PROBE_SECONDS in a loop and records how late each wake-up was."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._recording = False
        self.gc_pauses: list[float] = []
        self._gc_started = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._recording:
            self.gc_pauses.append(time.perf_counter() - self._gc_started)

    async def run(self) -> None:
        while True:
            asked = time.perf_counter()
            await anyio.sleep(PROBE_SECONDS)
            if self._recording:
                self.samples.append(max(0.0, time.perf_counter() - asked - PROBE_SECONDS))

    async def measure(self, work: Callable[[], Awaitable[object]]) -> Sample:
        """Run `work` with the probe recording; return its lag, time and longest GC pause."""
        self.samples = []
        self.gc_pauses = []
        self._recording = True
        gc.callbacks.append(self._on_gc)
        started = time.perf_counter()
        try:
            await work()
            took = time.perf_counter() - started
            # One last sample covers the tail of the work.
            await anyio.sleep(PROBE_SECONDS * 2)
        finally:
            self._recording = False
            gc.callbacks.remove(self._on_gc)
        if not self.samples:
            raise RuntimeError("The lag probe recorded nothing: the loop never let it run.")
        figure = Figure.of(self.samples)
        return Sample(
            p99=figure.percentile(99),
            worst=figure.maximum,
            took=took,
            gc_pause=max(self.gc_pauses, default=0.0),
        )


@dataclass(frozen=True)
class Sample:
    """One repetition, in seconds."""

    p99: float
    worst: float
    took: float
    gc_pause: float


def _file(settings: Settings, name: str, n: int, shape: generate.Shape) -> Path:
    path = settings.workdir / "loop" / f"{name}.py"
    if not path.exists():
        generate.write_ops_job(path, n=n, shape=shape, flavor="runtime", is_async=True)
    return path


async def _run_to_success(ws: Any, location: str) -> None:
    run = await ws.launch_run(job=generate.OPS_JOB, location=location)
    result = await run.wait()
    if result.status != "SUCCESS":
        raise RuntimeError(f"Run {run.run_id} ended {result.status}: {result.failure_message}")


async def measure(
    settings: Settings, burst: int, steps: int, repeats: int
) -> dict[str, list[Sample]]:
    from runtime import Instance, Workspace

    one = _file(settings, "one_step", 1, "chain")
    many = _file(settings, f"steps_{steps}", steps, "independent")
    found: dict[str, list[Sample]] = {"burst": [], "big": []}
    probe = LagProbe()
    async with (
        Instance.ephemeral() as instance,
        Workspace.from_targets(python_files=[str(one), str(many)], instance=instance) as ws,
        anyio.create_task_group() as tg,
    ):
        for location in (one.stem, many.stem):
            if ws.locations[location].status != "loaded":
                raise RuntimeError(f"Location {location}: {ws.locations[location].error}")
        tg.start_soon(probe.run)

        async def burst_of_runs() -> None:
            async with anyio.create_task_group() as runs:
                for _ in range(burst):
                    runs.start_soon(_run_to_success, ws, one.stem)

        async def big_run() -> None:
            await _run_to_success(ws, many.stem)

        # Warm-up: the first runs open the instance and pay one-time imports.
        await burst_of_runs()
        await big_run()
        for _ in range(repeats):
            found["burst"].append(await probe.measure(burst_of_runs))
            found["big"].append(await probe.measure(big_run))
        tg.cancel_scope.cancel()
    return found


def run(settings: Settings) -> list[Row]:
    burst, steps = (100, 2_000) if settings.quick else (500, 10_000)
    cases = {"burst": f"{burst} runs launched at once", "big": f"one run of {steps:,} steps"}
    rows: list[Row] = []
    try:
        found = anyio.run(measure, settings, burst, steps, settings.repeats)
    except (RuntimeError, TimeoutError) as exc:
        print(f"loop: ours failed:\n{exc}", file=sys.stderr)
        return [
            Row("loop", case, "lag p99", "ms", target=TARGET_P99_MS, note=f"failed: {exc}")
            for case in cases.values()
        ]
    for key, case in cases.items():
        p99 = Figure.of(sample.p99 * 1000 for sample in found[key])
        worst = Figure.of(sample.worst * 1000 for sample in found[key])
        note = f"{PROBE_SECONDS * 1000:g} ms probe in the host loop"
        rows.append(Row("loop", case, "lag p99", "ms", ours=p99, target=TARGET_P99_MS, note=note))
        rows.append(Row("loop", case, "lag max", "ms", ours=worst, target=TARGET_MAX_MS, note=note))
        pause = Figure.of(sample.gc_pause * 1000 for sample in found[key])
        rows.append(Row("loop", case, "longest GC pause", "ms", ours=pause, note="gc.callbacks"))
        took = Figure.of(sample.took * 1000 for sample in found[key])
        rows.append(
            Row("loop", case, "total", "ms", ours=took, note="until the last run is stored")
        )
    return rows

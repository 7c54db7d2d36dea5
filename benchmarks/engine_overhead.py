"""Per-step overhead of the execution engine, in process: `python -m benchmarks.engine_overhead`.

Trivial steps (async and sync) in a chain and side by side, with every event
built and collected; the figure is wall time of execute_plan divided by the
number of steps. A quick engine measurement, not the benchmark suite's
end-to-end launch scenario.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from typing import Any

import anyio

from runtime.definitions.graph import JobDefinition, OpDefinition, StepInput, StepNode
from runtime.execution.io_manager import (
    FilesystemIOManager,
    InMemoryIOManager,
    IOManager,
    WriteBehindIOManager,
)
from runtime.execution.plan import ExecutionPlan
from runtime.execution.scheduler import execute_plan
from runtime.protocol.run_log import ListSink


async def _async_root() -> int:
    return 1


async def _async_next(x: int) -> int:
    return x + 1


def _sync_root() -> int:
    return 1


def _sync_next(x: int) -> int:
    return x + 1


def build_job(count: int, *, is_async: bool, chain: bool) -> JobDefinition:
    root = OpDefinition(name="root", fn=_async_root if is_async else _sync_root, is_async=is_async)
    follow = OpDefinition(
        name="next",
        fn=_async_next if is_async else _sync_next,
        is_async=is_async,
        input_names=("x",),
    )
    steps: dict[str, StepNode] = {}
    for i in range(count):
        key = f"s{i}"
        if chain and i > 0:
            steps[key] = StepNode(key=key, op=follow, inputs={"x": StepInput("x", f"s{i - 1}")})
        else:
            steps[key] = StepNode(key=key, op=root)
    return JobDefinition(name="bench", steps=steps)


async def measure(
    count: int, *, is_async: bool, chain: bool, max_concurrent: int, storage: str | None
) -> dict[str, Any]:
    job = build_job(count, is_async=is_async, chain=chain)
    plan = ExecutionPlan.build(job)
    sink = ListSink()
    io: IOManager = InMemoryIOManager()
    if storage is not None:
        # What a code server uses: memory, plus pickles written in the background.
        io = WriteBehindIOManager(FilesystemIOManager(storage, f"bench-{time.monotonic_ns()}"))
    gc.collect()
    started = time.perf_counter()
    outcome = await execute_plan(
        plan, run_id="bench", sink=sink, max_concurrent=max_concurrent, io_manager=io
    )
    elapsed = time.perf_counter() - started
    assert outcome.status == "SUCCESS", outcome.failed_steps[:5]
    return {
        "steps": count,
        "kind": "async" if is_async else "sync",
        "shape": "chain" if chain else "independent",
        "events": len(sink.events),
        "seconds": elapsed,
        "ms_per_step": elapsed * 1000 / count,
    }


async def main(counts: list[int], max_concurrent: int, with_files: bool) -> None:
    print(f"{'steps':>6} {'kind':>5} {'shape':>11} {'events':>7} {'seconds':>8} {'ms/step':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        storage = tmp if with_files else None
        for count in counts:
            for is_async in (True, False):
                for chain in (True, False):
                    row = await measure(
                        count,
                        is_async=is_async,
                        chain=chain,
                        max_concurrent=max_concurrent,
                        storage=storage,
                    )
                    print(
                        f"{row['steps']:>6} {row['kind']:>5} {row['shape']:>11} "
                        f"{row['events']:>7} {row['seconds']:>8.3f} {row['ms_per_step']:>8.4f}"
                    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--max-concurrent", type=int, default=0)
    parser.add_argument(
        "--files", action="store_true", help="persist outputs as a code server does (write-behind)"
    )
    args = parser.parse_args()
    anyio.run(main, args.steps, args.max_concurrent, args.files)

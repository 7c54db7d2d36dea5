"""Dagster's step overhead: one run of a generated N-op job, every event stored in SQLite.

Run under the peer interpreter:
    python dagster_steps.py --file gen_ops.py --steps 100 --executor in_process --repeats 3
`in_process` is `job.execute_in_process(instance=...)`; `multiprocess` is
`execute_job(...)` with Dagster's default multiprocess executor (a process per
step). Both use a `DagsterInstance.local_temp()`, whose event log is SQLite, as
ours is. Prints one JSON line: {"seconds": [...]}.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _peer_common import emit
from dagster import execute_job, job, op  # type: ignore[import-not-found,unused-ignore]
from dagster._core.definitions.reconstruct import (  # type: ignore[import-not-found,unused-ignore]
    ReconstructableJob,
)
from dagster._core.instance import DagsterInstance  # type: ignore[import-not-found,unused-ignore]

JOB_NAME = "bench_job"


def load_job(file: Path) -> Any:
    """The job from the generated file, imported once."""
    if file in _JOBS:
        return _JOBS[file]
    sys.path.insert(0, str(file.parent))
    spec = importlib.util.spec_from_file_location(file.stem, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[file.stem] = module
    spec.loader.exec_module(module)
    _JOBS[file] = getattr(module, JOB_NAME)
    return _JOBS[file]


_JOBS: dict[Path, Any] = {}


def _one() -> int:
    return 1


def _warm_body() -> None:
    WARM_OP()


# Built without decorator syntax: dagster's decorators are untyped for mypy.
WARM_OP: Any = op(name="warm_op")(_one)
WARM_JOB: Any = job(name="warm_job")(_warm_body)


def warm_up(tmp: Path) -> None:
    """One tiny run first, so Dagster's lazy imports are not charged to the first measured run."""
    folder = tmp / "warm"
    folder.mkdir()
    with DagsterInstance.local_temp(tempdir=str(folder)) as instance:
        if not WARM_JOB.execute_in_process(instance=instance).success:
            raise RuntimeError("Dagster's warm-up run did not succeed.")


def run_once(file: Path, executor: str, steps: int, tmp: Path, index: int) -> float:
    folder = tmp / f"instance{index}"
    folder.mkdir()
    bench_job = load_job(file) if executor == "in_process" else None
    with DagsterInstance.local_temp(tempdir=str(folder)) as instance:
        start = time.perf_counter()
        if bench_job is not None:
            result = bench_job.execute_in_process(instance=instance)
        else:
            result = execute_job(
                ReconstructableJob.for_file(str(file), JOB_NAME), instance=instance
            )
        seconds = time.perf_counter() - start
        if not result.success:
            raise RuntimeError(f"Dagster's run of {file} did not succeed.")
        done = [e for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
        if len(done) != steps:
            raise RuntimeError(f"Dagster's run of {file} finished {len(done)} of {steps} steps.")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--executor", choices=("in_process", "multiprocess"), default="in_process")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=0, help="measured runs to discard")
    args = parser.parse_args()
    samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-dgsteps-") as tmp:
        warm_up(Path(tmp))
        for i in range(args.warmup + args.repeats):
            seconds = run_once(args.file.resolve(), args.executor, args.steps, Path(tmp), i)
            if i >= args.warmup:
                samples.append(seconds)
    emit({"seconds": samples})


if __name__ == "__main__":
    main()

"""Dagster's dask_executor (dagster-dask): one run of a generated N-op job on a Dask LocalCluster.

Run under the peer interpreter:
    python dagster_dask_steps.py --file gen_ops.py --steps 100 --workers 2 --repeats 1
The LocalCluster (single-threaded worker processes) is started once, before
the clock, and each run reaches it as an `existing` cluster, as ours does; the
job is the generated one with `dask_executor` as its executor, reconstructed
from a small wrapper file (the workers import it). Events go to a
`DagsterInstance.local_temp()` (SQLite). Prints one JSON line: {"seconds": [...]}.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _peer_common import emit
from dagster import execute_job  # type: ignore[import-not-found,unused-ignore]
from dagster._core.definitions.reconstruct import (  # type: ignore[import-not-found,unused-ignore]
    ReconstructableJob,
)
from dagster._core.instance import DagsterInstance  # type: ignore[import-not-found,unused-ignore]
from distributed import LocalCluster  # type: ignore[import-not-found,unused-ignore]

JOB_NAME = "bench_job_dask"

WRAPPER = """
import sys
sys.path.insert(0, {folder!r})
from {module} import bench_job
from dagster_dask import dask_executor

bench_job_dask = bench_job.with_executor_def(dask_executor)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    file = args.file.resolve()
    samples: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-dgdask-") as tmp,
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        ) as cluster,
    ):
        wrapper = Path(tmp) / f"{file.stem}_dask.py"
        wrapper.write_text(WRAPPER.format(folder=str(file.parent), module=file.stem))
        run_config = {
            "execution": {
                "config": {"cluster": {"existing": {"address": cluster.scheduler_address}}}
            }
        }
        for i in range(args.repeats):
            folder = Path(tmp) / f"instance{i}"
            folder.mkdir()
            with DagsterInstance.local_temp(tempdir=str(folder)) as instance:
                start = time.perf_counter()
                result = execute_job(
                    ReconstructableJob.for_file(str(wrapper), JOB_NAME),
                    instance=instance,
                    run_config=run_config,
                )
                seconds = time.perf_counter() - start
                if not result.success:
                    raise RuntimeError(f"Dagster's dask run of {file} did not succeed.")
                done = [e for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
                if len(done) != args.steps:
                    raise RuntimeError(
                        f"Dagster's dask run of {file} finished {len(done)} of {args.steps} steps."
                    )
            samples.append(seconds)
    emit({"seconds": samples})


if __name__ == "__main__":
    main()

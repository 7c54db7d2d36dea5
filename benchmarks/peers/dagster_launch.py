"""Dagster's launch: a 1-step job launched through its code server until the run is SUCCESS in storage.

Run under the peer interpreter:
    python dagster_launch.py --file one_step_dagster.py --sequential 10 --concurrent 10
The workspace (one `dagster api grpc` per location) is loaded before the clock
starts. Each run is created from the remote job and launched with the
instance's default run launcher, which asks the code server to start it (a
`dagster api execute_run` process per run); success is polled from storage.
Prints one JSON line: {"latency": [...], "burst": seconds}.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from _peer_common import emit
from dagster._cli.job import _create_run  # type: ignore[import-not-found,unused-ignore]
from dagster._core.instance import DagsterInstance  # type: ignore[import-not-found,unused-ignore]
from dagster._core.storage.dagster_run import (  # type: ignore[import-not-found,unused-ignore]
    DagsterRunStatus,
)
from dagster._core.workspace.context import (  # type: ignore[import-not-found,unused-ignore]
    WorkspaceProcessContext,
)
from dagster._core.workspace.load_target import (  # type: ignore[import-not-found,unused-ignore]
    WorkspaceFileTarget,
)

JOB_NAME = "bench_job"
POLL_SECONDS = 0.005
RUN_TIMEOUT = 300.0


def create_run(instance: Any, context: Any, location_name: str) -> str:
    request = context.create_request_context()
    location = request.get_code_location(location_name)
    repository = next(iter(location.get_repositories().values()))
    remote_job = repository.get_full_job(JOB_NAME)
    run = _create_run(
        instance=instance,
        code_location=location,
        remote_repo=repository,
        remote_job=remote_job,
        run_config={},
        tags=None,
        op_selection=None,
        run_id=None,
    )
    instance.launch_run(run.run_id, request)
    return str(run.run_id)


def wait_all(instance: Any, run_ids: list[str]) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    pending = set(run_ids)
    while pending:
        for run_id in list(pending):
            status = instance.get_run_by_id(run_id).status
            if status == DagsterRunStatus.SUCCESS:
                pending.discard(run_id)
            elif status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
                raise RuntimeError(f"Dagster run {run_id} ended {status}.")
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Dagster runs {sorted(pending)} did not finish in {RUN_TIMEOUT} s."
                )
            time.sleep(POLL_SECONDS)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--sequential", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=10)
    args = parser.parse_args()
    file = args.file.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-dglaunch-") as tmp:
        workspace = Path(tmp) / "workspace.yaml"
        workspace.write_text(
            f"load_from:\n  - python_file:\n      relative_path: {file}\n      location_name: bench\n"
        )
        home = Path(tmp) / "home"
        home.mkdir()
        with (
            DagsterInstance.local_temp(tempdir=str(home)) as instance,
            WorkspaceProcessContext(
                instance, WorkspaceFileTarget(paths=[str(workspace)])
            ) as context,
        ):
            wait_all(instance, [create_run(instance, context, "bench")])  # warm-up
            latency = []
            for _ in range(args.sequential):
                start = time.perf_counter()
                wait_all(instance, [create_run(instance, context, "bench")])
                latency.append(time.perf_counter() - start)
            start = time.perf_counter()
            wait_all(
                instance, [create_run(instance, context, "bench") for _ in range(args.concurrent)]
            )
            burst = time.perf_counter() - start
    emit({"latency": latency, "burst": burst})


if __name__ == "__main__":
    main()

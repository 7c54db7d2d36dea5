"""The dask executor against a real cluster: `dask scheduler` and `dask worker` processes, and LocalClusters."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from runtime.definitions.retry import RetryPolicy
from runtime.execution.cancel import CancelToken
from runtime.execution.fsspec_io import FsspecIOManager
from runtime.execution.plan import ExecutionPlan
from runtime.execution.scheduler import execute_plan
from runtime.protocol.messages import (
    EnginePayload,
    LogPayload,
    RunFailurePayload,
    StepFailurePayload,
    StepRetryPayload,
    StepSkippedPayload,
)
from runtime.protocol.run_log import ListSink
from tests.execution import dask_ops
from tests.execution.graph_builders import check_events, make_job, make_op, step

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.definitions.graph import JobDefinition
    from runtime.protocol.messages import RunEvent
    from runtime.protocol.run_result import RunResult
    from tests.execution.dask_cluster import DaskCluster

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]


async def run_on_dask(
    job: JobDefinition,
    options: dict[str, Any],
    folder: Path,
    *,
    sink: ListSink | None = None,
    cancel: CancelToken | None = None,
    run_id: str = "run-1",
    io: FsspecIOManager | None = None,
    reused_steps: tuple[str, ...] = (),
) -> tuple[RunResult, list[RunEvent], FsspecIOManager]:
    """Execute `job` with the dask executor, outputs under `folder/outputs`, control files in `folder`."""
    sink = sink if sink is not None else ListSink()
    io = io if io is not None else FsspecIOManager(folder / "outputs", run_id)
    with anyio.fail_after(150):
        result = await execute_plan(
            ExecutionPlan.build(job, reused_steps=reused_steps),
            run_id=run_id,
            sink=sink,
            io_manager=io,
            executor="dask",
            executor_config=options,
            resources={"dir": str(folder)},
            cancel=cancel,
        )
    return result, sink.events, io


def payloads(events: list[RunEvent], event_type: str, step_key: str | None = None) -> list[Any]:
    return [
        e.payload
        for e in events
        if e.event_type == event_type and (step_key is None or e.step_key == step_key)
    ]


FAN_OUT = make_job(
    "fan_out",
    step("seed", dask_ops.seed),
    step("a", dask_ops.report, x="seed"),
    step("b", dask_ops.report, x="seed"),
    step("c", dask_ops.report, x="seed"),
    step("d", dask_ops.async_report, x="seed"),
    step("total", dask_ops.total, a="a", b="b", c="c", d="d"),
)


async def test_fan_out_runs_on_the_workers_in_parallel_and_fans_in(
    dask_cluster: DaskCluster, dask_address: str, tmp_path: Path
) -> None:
    result, events, io = await run_on_dask(FAN_OUT, {"scheduler_address": dask_address}, tmp_path)
    assert result.status == "SUCCESS", events
    check_events(ExecutionPlan.build(FAN_OUT), events)
    workers = dask_cluster.worker_pids()
    pids = {io.load(key, "result")["pid"] for key in "abcd"}
    # Every step ran in a worker process, and the barrier let two run at once.
    assert pids <= workers and os.getpid() not in pids
    assert len({io.load(key, "result")["pid"] for key in "abc"}) == 2
    assert io.load("total", "result") == 3 * 11 + 12
    started = payloads(events, "ENGINE_EVENT")[0]
    assert isinstance(started, EnginePayload)
    assert started.message == (
        f"Steps run on the Dask cluster at {dask_address}: 2 workers, 2 threads."
    )
    logs = [(e.step_key, p.message) for e in events if isinstance(p := e.payload, LogPayload)]
    assert ("d", "async step on the worker's loop") in logs
    for key in "abc":
        assert (key, f"{key} runs in {io.load(key, 'result')['pid']}") in logs
    [output] = payloads(events, "STEP_OUTPUT", "total")
    assert (output.value_repr, output.type_name) == ("45", "int")


async def test_a_failing_step_carries_its_traceback_and_skips_downstream(
    dask_address: str, tmp_path: Path
) -> None:
    job = make_job(
        "failing",
        step("seed", dask_ops.seed),
        step("fails", dask_ops.fails, x="seed"),
        step("after", dask_ops.after, x="fails"),
    )
    result, events, _ = await run_on_dask(job, {"scheduler_address": dask_address}, tmp_path)
    assert result.status == "FAILURE"
    [failure] = payloads(events, "STEP_FAILURE")
    assert isinstance(failure, StepFailurePayload)
    assert (failure.error.type, failure.error.message) == ("ValueError", "cannot handle 10")
    assert 'dask_ops.py", line' in failure.error.traceback and "in fails" in failure.error.traceback
    [skipped] = payloads(events, "STEP_SKIPPED", "after")
    assert isinstance(skipped, StepSkippedPayload)
    assert skipped.reason == "upstream step 'fails' failed"
    [end] = payloads(events, "RUN_FAILURE")
    assert isinstance(end, RunFailurePayload) and end.failed_steps == ["fails"]


async def test_retries_follow_the_retry_policy_and_retry_requested(
    dask_address: str, tmp_path: Path
) -> None:
    job = make_job(
        "retrying", step("flaky", make_op(dask_ops.flaky, retry_policy=RetryPolicy(max_retries=2)))
    )
    result, events, io = await run_on_dask(job, {"scheduler_address": dask_address}, tmp_path)
    assert result.status == "SUCCESS", events
    assert io.load("flaky", "result") == 2
    assert result.steps["flaky"].attempts == 3
    retries = payloads(events, "STEP_UP_FOR_RETRY")
    assert [r.retry_number for r in retries] == [1, 2]
    assert isinstance(retries[0], StepRetryPayload) and retries[0].error is not None
    assert retries[0].error.message == "the first attempt fails"
    logs = [p.message for p in payloads(events, "LOG", "flaky")]
    assert logs == ["attempt 0", "attempt 1", "attempt 2"]


async def test_cancel_mid_step_cancels_the_task_and_the_run_ends_canceled(
    dask_address: str, tmp_path: Path
) -> None:
    job = make_job(
        "cancel",
        step("waits", dask_ops.waits_for_cancel),
        step("after", dask_ops.after, x="waits"),
    )
    token = CancelToken()
    sink = ListSink()
    outcome: list[RunResult] = []

    async def run() -> None:
        outcome.append(
            (
                await run_on_dask(
                    job, {"scheduler_address": dask_address}, tmp_path, sink=sink, cancel=token
                )
            )[0]
        )

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        with anyio.fail_after(60):
            while not (tmp_path / "started").exists():
                await anyio.sleep(0.02)
        token.cancel()
    assert outcome[0].status == "CANCELED"
    events = sink.events
    assert events[-1].event_type == "RUN_CANCELED"
    [report] = [
        p
        for p in payloads(events, "ENGINE_EVENT")
        if isinstance(p, EnginePayload) and p.message.startswith("Canceled the Dask tasks")
    ]
    assert report.metadata["steps"] == ["waits"]
    assert [p.reason for p in payloads(events, "STEP_SKIPPED")] == ["upstream step 'waits' failed"]
    [stopped] = payloads(events, "STEP_FAILURE", "waits")
    assert stopped.error.message == "Step 'waits' was stopped because run 'run-1' was canceled."
    # The function on the worker saw the cancellation through context.is_cancelled.
    with anyio.fail_after(30):
        while not (tmp_path / "saw_cancel").exists():
            await anyio.sleep(0.02)
    assert (tmp_path / "saw_cancel").read_text() == (tmp_path / "started").read_text()


async def test_a_worker_killed_mid_step_fails_the_attempt_naming_it_and_the_step_retries(
    dask_cluster: DaskCluster, dask_address: str, tmp_path: Path
) -> None:
    job = make_job(
        "killed",
        step(
            "dies",
            make_op(dask_ops.dies_on_first_attempt, retry_policy=RetryPolicy(max_retries=1)),
        ),
    )
    result, events, io = await run_on_dask(job, {"scheduler_address": dask_address}, tmp_path)
    assert result.status == "SUCCESS", events
    killed = int((tmp_path / "killed").read_text())
    [retry] = payloads(events, "STEP_UP_FOR_RETRY", "dies")
    assert retry.error.type == "runtime.execution.dask.WorkerDiedError"
    assert f"(pid {killed}) running step 'dies' died" in retry.error.message
    assert retry.error.message.startswith("The Dask worker tcp://127.0.0.1:")
    assert io.load("dies", "result") != killed


async def test_a_worker_killed_mid_step_without_retries_fails_the_step(
    dask_address: str, tmp_path: Path
) -> None:
    job = make_job(
        "killed", step("dies", dask_ops.always_dies), step("after", dask_ops.after, x="dies")
    )
    result, events, _ = await run_on_dask(job, {"scheduler_address": dask_address}, tmp_path)
    assert result.status == "FAILURE"
    killed = (tmp_path / "killed").read_text()
    [failure] = payloads(events, "STEP_FAILURE", "dies")
    assert f"(pid {killed}) running step 'dies' died" in failure.error.message
    assert "Dask gave up on the task after 1 worker died running it." in failure.error.message
    assert [p.reason for p in payloads(events, "STEP_SKIPPED")] == ["upstream step 'dies' failed"]


async def test_logs_and_prints_stream_back_while_the_step_runs(
    dask_address: str, tmp_path: Path
) -> None:
    job = make_job("logs", step("talks", dask_ops.logs_then_waits))
    sink = ListSink()
    outcome: list[RunResult] = []

    async def run() -> None:
        outcome.append(
            (await run_on_dask(job, {"scheduler_address": dask_address}, tmp_path, sink=sink))[0]
        )

    def seen(message: str) -> bool:
        return any(
            isinstance(e.payload, LogPayload) and e.payload.message == message for e in sink.events
        )

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        with anyio.fail_after(60):
            while not (seen("halfway there") and seen("printed on the worker")):
                await anyio.sleep(0.02)
        # The step is still running: it waits for this file.
        assert not outcome and not any(e.event_type == "STEP_SUCCESS" for e in sink.events)
        (tmp_path / "seen").write_text("yes")
    assert outcome[0].status == "SUCCESS"
    logs = [(p.source, p.message) for p in payloads(sink.events, "LOG", "talks")]
    assert logs == [
        ("logger", "halfway there"),
        ("stdout", "printed on the worker"),
        ("logger", "done"),
    ]


async def test_an_unreachable_scheduler_fails_the_run_at_start_naming_the_address(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(60):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        await listener.aclose()  # nothing listens there now
    address = f"tcp://127.0.0.1:{port}"
    job = make_job("nowhere", step("seed", dask_ops.seed))
    result, events, _ = await run_on_dask(
        job, {"scheduler_address": address, "connect_timeout": 1}, tmp_path
    )
    assert result.status == "FAILURE"
    [only] = events
    assert only.event_type == "RUN_FAILURE"
    assert isinstance(only.payload, RunFailurePayload)
    message = only.payload.message
    assert message.startswith(
        f"Run 'run-1' could not start: Cannot reach the Dask scheduler at {address} within 1 s ("
    )
    assert "\n" not in message and only.payload.error is not None
    assert only.payload.error.traceback == ""


async def test_a_local_cluster_is_started_for_the_run_and_closed_after_it(tmp_path: Path) -> None:
    before = set(_descendants())
    options = {"n_workers": 2, "threads_per_worker": 1, "processes": True}
    result, events, io = await run_on_dask(FAN_OUT, options, tmp_path)
    assert result.status == "SUCCESS", events
    pids = {io.load(key, "result")["pid"] for key in "abcd"}
    assert os.getpid() not in pids and len(pids) == 2
    started = payloads(events, "ENGINE_EVENT")[0]
    assert started.message.startswith("Steps run on a LocalCluster started for the run at tcp://")
    assert started.metadata["workers"] == 2
    # The workers are gone with the run (helpers such as the resource tracker may stay).
    assert not pids & set(_descendants()) - before


async def test_outputs_go_through_any_fsspec_url(tmp_path: Path) -> None:
    job = make_job(
        "memory",
        step("seed", dask_ops.seed),
        step("fails", dask_ops.fails_unless_fixed, x="seed"),
        step("after", dask_ops.after, x="fails"),
    )
    # Workers in this process share its memory filesystem; inline outputs off.
    options = {"n_workers": 1, "processes": False, "inline_bytes": 0}
    url = f"memory://runtime-tests/{tmp_path.name}"
    first, _, _ = await run_on_dask(
        job, options, tmp_path, io=FsspecIOManager(url, "parent"), run_id="parent"
    )
    assert first.status == "FAILURE"
    (tmp_path / "fixed").write_text("yes")
    # Re-execution from failure: the seed's output is read from the parent run.
    child = FsspecIOManager(url, "child", parent_run_id="parent")
    second, events, _ = await run_on_dask(
        job, options, tmp_path, io=child, run_id="child", reused_steps=("seed",)
    )
    assert second.status == "SUCCESS", events
    assert child.load("fails", "result") == 30
    assert child.fs.exists(child.output_path("seed", "result"))  # copied for a later re-execution


async def test_a_run_without_a_reachable_io_manager_keeps_the_workers_outputs_itself(
    tmp_path: Path,
) -> None:
    from runtime.execution.in_process import execute_job_in_process

    job = make_job(
        "in_memory", step("seed", dask_ops.seed), step("fails", dask_ops.fails, x="seed")
    )
    result = await anyio.to_thread.run_sync(
        lambda: execute_job_in_process(
            job,
            run_config={"execution": {"config": {"dask": {"n_workers": 1, "processes": False}}}},
            raise_on_error=False,
        )
    )
    assert result.status == "FAILURE"
    assert result.output_for("seed") == 10
    assert result.steps["fails"].error is not None
    assert result.steps["fails"].error.message == "cannot handle 10"


async def test_an_output_that_cannot_be_pickled_fails_its_step(tmp_path: Path) -> None:
    job = make_job("pickle", step("bad", dask_ops.unpicklable))
    result, events, _ = await run_on_dask(job, {"n_workers": 1, "processes": False}, tmp_path)
    assert result.status == "FAILURE"
    [failure] = payloads(events, "STEP_FAILURE")
    assert failure.error.message.startswith(
        "Step 'bad' returned a function that cannot be pickled ("
    )


def _descendants() -> list[int]:
    from tests.conftest import _descendants as descendants

    return descendants(os.getpid())

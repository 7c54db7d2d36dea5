"""The multiprocess executor: sync steps in forkserver workers, values by pickle, cancellation kills."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.execution.cancel import CancelToken
from runtime.execution.io_manager import InMemoryIOManager
from runtime.execution.plan import ExecutionPlan
from runtime.execution.scheduler import execute_plan
from runtime.protocol.messages import EnginePayload, LogPayload, StepFailurePayload
from runtime.protocol.run_log import ListSink
from tests.execution.execution_mp_ops import (
    chatty,
    decorated,
    fails,
    here,
    in_worker,
    logs_then_waits,
    seed,
    sleeps_forever,
    unpack,
)
from tests.execution.graph_builders import check_events, make_job, make_op, run_job, step

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.protocol.messages import RunEvent
    from runtime.protocol.run_result import RunResult

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def test_sync_steps_run_in_worker_processes_and_values_move_between_them() -> None:
    job = make_job(
        "mp",
        step("seed", seed),
        step("in_worker", in_worker, x="seed"),
        step("unpack", unpack, pair="in_worker"),
        step("decorated", decorated.op, x="unpack"),
    )
    io = InMemoryIOManager()
    outcome, _ = await run_job(job, io_manager=io, executor="multiprocess")
    assert outcome.status == "SUCCESS"
    worker_pid, value = io.load("in_worker", "result")
    assert worker_pid != os.getpid() and value == 21
    assert io.load("decorated", "result") == 4200


async def test_failure_in_a_worker_is_reported_with_its_traceback() -> None:
    job = make_job("mp", step("seed", seed), step("fails", fails, x="seed"))
    outcome, events = await run_job(job, executor="multiprocess")
    assert outcome.status == "FAILURE"
    failure = next(e.payload for e in events if e.event_type == "STEP_FAILURE")
    assert isinstance(failure, StepFailurePayload)
    assert failure.error.type == "ValueError"
    assert failure.error.message == "cannot handle 20"
    assert "in fails" in failure.error.traceback


async def test_logs_prints_metadata_and_retries_come_back_from_the_worker() -> None:
    job = make_job("mp", step("chatty", chatty))
    io = InMemoryIOManager()
    outcome, events = await run_job(job, io_manager=io, executor="multiprocess")
    assert outcome.status == "SUCCESS"
    assert io.load("chatty", "result") == 1
    messages = [
        (e.payload.source, e.payload.message)
        for e in events
        if e.event_type == "LOG" and isinstance(e.payload, LogPayload)
    ]
    assert messages == [
        ("stdout", "printed in the worker"),
        ("logger", "logged in the worker"),
        ("logger", "context log in the worker, attempt 0"),
        ("stdout", "printed in the worker"),
        ("logger", "logged in the worker"),
        ("logger", "context log in the worker, attempt 1"),
    ]
    assert [e.event_type for e in events if e.step_key == "chatty"][-3:] == [
        "STEP_OUTPUT",
        "ENGINE_EVENT",
        "STEP_SUCCESS",
    ]
    metadata = next(e.payload for e in events if e.event_type == "ENGINE_EVENT")
    assert isinstance(metadata, EnginePayload)
    assert metadata.metadata["pid"] != os.getpid()


async def test_cancel_terminates_worker_processes(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    job = make_job(
        "mp",
        step("sleeps", sleeps_forever),
        step("after", make_op(unpack, name="after"), pair="sleeps"),
    )
    plan = ExecutionPlan.build(job)
    sink = ListSink()
    token = CancelToken()
    outcomes: list[RunResult] = []

    async def run() -> None:
        outcomes.append(
            await execute_plan(
                plan,
                run_id="r",
                sink=sink,
                cancel=token,
                executor="multiprocess",
                resources={"pid_file": str(pid_file)},
            )
        )

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            # The pid is only known inside the worker, which writes it to a file.
            while not pid_file.exists() or not pid_file.read_text():
                await anyio.sleep(0.01)
            worker_pid = int(pid_file.read_text())
            canceled_at = time.monotonic()
            token.cancel()
    assert time.monotonic() - canceled_at < 5
    check_events(plan, sink.events)
    assert outcomes[0].status == "CANCELED"
    assert outcomes[0].steps["sleeps"].status == "FAILURE"
    assert outcomes[0].steps["after"].status == "SKIPPED"
    engine = next(e.payload for e in sink.events if e.event_type == "ENGINE_EVENT")
    assert isinstance(engine, EnginePayload)
    assert "Terminated the worker processes" in engine.message
    assert worker_pid in engine.metadata["pids"]
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)


async def test_a_step_function_defined_in_a_local_scope_cannot_go_to_a_worker() -> None:
    def local(x: int) -> int:
        return x

    job = make_job("mp", step("seed", seed), step("local", local, x="seed"))
    outcome, _ = await run_job(job, executor="multiprocess")
    error = outcome.steps["local"].error
    assert error is not None and "not importable from its module's top level" in error.message


async def test_cpu_bound_ops_go_to_processes_with_the_in_process_executor() -> None:
    job = make_job(
        "mixed",
        step("seed", seed),
        step("crunch", make_op(in_worker, name="crunch", cpu_bound=True), x="seed"),
        step("here", here, x="seed"),
    )
    io = InMemoryIOManager()
    outcome, events = await run_job(job, io_manager=io, executor="in_process")
    assert outcome.status == "SUCCESS"
    worker_pid, value = io.load("crunch", "result")
    assert value == 21
    assert worker_pid != os.getpid()
    assert io.load("here", "result") == os.getpid()


async def test_logs_from_a_process_step_arrive_while_it_runs(tmp_path: Path) -> None:
    release = tmp_path / "release"

    class ReleasingSink(ListSink):
        """Lets the step finish only once its first log line has reached this process."""

        def put(self, event: RunEvent) -> None:
            super().put(event)
            payload = event.payload
            if isinstance(payload, LogPayload) and "before waiting" in payload.message:
                release.write_text("seen")

    job = make_job("live", step("logs_then_waits", logs_then_waits))
    plan = ExecutionPlan.build(job)
    sink = ReleasingSink()
    outcome = await execute_plan(
        plan,
        run_id="live-logs",
        sink=sink,
        executor="multiprocess",
        resources={"release_file": str(release)},
    )
    assert outcome.status == "SUCCESS", sink.events
    kinds = [(e.event_type, e.step_key) for e in sink.events]
    log_at = kinds.index(("LOG", "logs_then_waits"))
    assert log_at < kinds.index(("STEP_SUCCESS", "logs_then_waits"))

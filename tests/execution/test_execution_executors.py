"""Executors and step runners are registries: a new executor is a runner plus one registration,
and the scheduler gives it the same limits, pools, retries, cancellation, log capture and events."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from runtime import Definitions, job, op
from runtime.definitions.retry import RetryPolicy
from runtime.execution import executors
from runtime.execution.cancel import CancelToken
from runtime.execution.executors import ExecutorDefinition, executor_names, resolve_executor
from runtime.execution.job_run import JobRunRequest, execute_run
from runtime.execution.plan import ExecutionPlan
from runtime.execution.scheduler import execute_plan
from runtime.execution.step_runner import step_runner_names
from runtime.protocol.messages import EnginePayload, LogPayload
from runtime.protocol.run_log import ListSink
from runtime.protocol.run_status import RunStatus, StepStatus
from tests.execution.graph_builders import check_events, make_job, make_op, run_job, step

if TYPE_CHECKING:
    from runtime.definitions.graph import OpDefinition
    from tests.execution.recording_runner import RecordingRunner

pytestmark = pytest.mark.anyio


def one() -> int:
    return 1


def test_the_built_in_executors_pick_runners_by_op() -> None:
    async def fetch() -> int:
        return 1

    def crunch() -> int:
        return 1

    ops: dict[str, OpDefinition] = {
        "async": make_op(fetch),
        "sync": make_op(one),
        "cpu": make_op(crunch, cpu_bound=True),
    }
    in_process = resolve_executor("in_process", {}, run_id="r")
    multiprocess = resolve_executor("multiprocess", {}, run_id="r")
    assert {k: in_process.runner_for(op) for k, op in ops.items()} == {
        "async": "loop",
        "sync": "thread",
        "cpu": "process",
    }
    assert {k: multiprocess.runner_for(op) for k, op in ops.items()} == {
        "async": "loop",
        "sync": "process",
        "cpu": "process",
    }
    assert {"in_process", "multiprocess", "dask"} <= set(executor_names())
    assert {"loop", "thread", "process", "dask"} <= set(step_runner_names())


def test_unknown_executors_and_refused_options_name_the_run() -> None:
    with pytest.raises(ValueError) as unknown:
        resolve_executor("multiproces", {}, run_id="r1")
    assert str(unknown.value) == (
        "Unknown executor 'multiproces' for run 'r1'; the registered executors are: "
        "dask, in_process, multiprocess. Did you mean 'multiprocess'?"
    )
    with pytest.raises(ValueError) as refused:
        resolve_executor("multiprocess", {"workers": 4}, run_id="r2")
    assert str(refused.value) == (
        "Executor 'multiprocess' of run 'r2': it takes no options, got 'workers'."
    )


async def test_a_registered_executor_gets_limits_pools_retries_and_logs(
    recording: list[RecordingRunner],
) -> None:
    flaky_calls: list[int] = []

    def flaky() -> int:
        flaky_calls.append(1)
        if len(flaky_calls) == 1:
            raise ConnectionError("first try fails")
        print("second try works")  # noqa: T201
        return 2

    def pooled_a() -> int:
        return 3

    def pooled_b() -> int:
        return 4

    def total(flaky: int, a: int, b: int) -> int:
        return flaky + a + b

    job = make_job(
        "plugin",
        step("flaky", make_op(flaky, retry_policy=RetryPolicy(max_retries=1))),
        step("a", make_op(pooled_a, pool="db")),
        step("b", make_op(pooled_b, pool="db")),
        step("total", total, flaky="flaky", a="a", b="b"),
    )
    result, events = await run_job(
        job,
        executor="recording",
        executor_config={"label": "x"},
        max_concurrent=2,
        pool_limits={"db": 1},
    )
    assert result.status == RunStatus.SUCCESS
    assert result.steps["total"].status == StepStatus.SUCCESS
    assert result.steps["total"].error is None
    assert result.steps["flaky"].attempts == 2
    [runner] = recording
    assert runner.setup.options == {"label": "x"}
    assert runner.setup.max_concurrent == 2
    assert sorted(op.name for op in runner.setup.ops) == ["flaky", "pooled_a", "pooled_b", "total"]
    assert sorted(runner.called) == [("a", 0), ("b", 0), ("flaky", 0), ("flaky", 1), ("total", 0)]
    assert runner.most_active <= 2
    assert runner.closed
    types = [e.event_type for e in events if e.step_key == "flaky"]
    assert "STEP_UP_FOR_RETRY" in types and "STEP_RESTARTED" in types
    logs = [e.payload for e in events if e.event_type == "LOG" and e.step_key == "flaky"]
    assert any(isinstance(p, LogPayload) and p.message == "second try works" for p in logs)
    # The pool limit held: 'a' ended before 'b' started, or the other way round.
    order = [(e.event_type, e.step_key) for e in events if e.step_key in ("a", "b")]
    starts = [i for i, (kind, _) in enumerate(order) if kind == "STEP_START"]
    ends = [i for i, (kind, _) in enumerate(order) if kind in ("STEP_SUCCESS", "STEP_FAILURE")]
    assert starts[1] > ends[0]


async def test_a_registered_executor_is_stopped_on_cancel(
    recording: list[RecordingRunner],
) -> None:
    started = anyio.Event()

    async def waits() -> int:
        started.set()
        await anyio.sleep(30)
        return 1

    job = make_job("slow", step("waits", waits), step("after", one, x="waits"))
    plan = ExecutionPlan.build(job)
    sink = ListSink()
    token = CancelToken()
    outcomes = []

    async def run() -> None:
        outcomes.append(
            await execute_plan(plan, run_id="r", sink=sink, cancel=token, executor="recording")
        )

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await started.wait()
            token.cancel()
    check_events(plan, sink.events)
    assert outcomes[0].status == RunStatus.CANCELED
    assert recording[0].stopped == ["waits"]
    engine = [e.payload for e in sink.events if e.event_type == "ENGINE_EVENT"]
    assert any(
        isinstance(p, EnginePayload) and p.message == "recording runner stopped waits"
        for p in engine
    )
    assert outcomes[0].steps["after"].status == StepStatus.SKIPPED


async def test_bad_options_for_a_registered_executor_raise_before_any_event(
    recording: list[RecordingRunner],
) -> None:
    job = make_job("j", step("a", one))
    sink = ListSink()
    with pytest.raises(ValueError, match=r"Executor 'recording' of run 'r': unknown options zz"):
        await execute_plan(
            ExecutionPlan.build(job),
            run_id="r",
            sink=sink,
            executor="recording",
            executor_config={"zz": 1},
        )
    assert sink.events == []
    assert recording == []


async def test_an_executor_choosing_an_unregistered_runner_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        executors._EXECUTORS,
        "nowhere",
        ExecutorDefinition(name="nowhere", runner_for=lambda op: "gpu"),
    )

    @op
    def value() -> int:
        return 1

    @job
    def single() -> None:
        value()

    sink = ListSink()
    with pytest.raises(ValueError, match=r"chose step runners 'gpu', which are not registered"):
        await execute_plan(ExecutionPlan.build(single), run_id="r", sink=sink, executor="nowhere")
    assert sink.events == []
    repository = Definitions(jobs=[single]).get_repository()
    request = JobRunRequest(run_id="r", job_name="single", executor="nowhere")
    result = await execute_run(repository, request, sink)
    [event] = sink.events
    assert event.event_type == "RUN_FAILURE" and result.status == RunStatus.FAILURE
    assert result.failure_message is not None
    assert "Executor 'nowhere' of run 'r' chose step runners 'gpu'" in result.failure_message

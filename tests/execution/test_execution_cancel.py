"""Cancellation at several moments: before the start, mid async step, mid thread step, mid retry wait."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest

from runtime.definitions.retry import RetryRequested
from runtime.execution.cancel import CancelToken
from runtime.execution.plan import ExecutionPlan
from runtime.execution.scheduler import execute_plan
from runtime.protocol.messages import EnginePayload, StepFailurePayload, StepSkippedPayload
from runtime.protocol.run_log import ListSink
from tests.execution.graph_builders import check_events, make_job, make_op, step

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from runtime.definitions.graph import JobDefinition
    from runtime.execution.context import StepContext
    from runtime.protocol.messages import RunEvent
    from runtime.protocol.run_result import RunResult

pytestmark = pytest.mark.anyio


async def run_and_cancel(
    job: JobDefinition, when: Callable[[], Awaitable[None]], **options: Any
) -> tuple[RunResult, list[RunEvent], float]:
    """Run job; once `when()` returns, cancel it. Returns outcome, events, seconds from cancel to end."""
    plan = ExecutionPlan.build(job)
    sink = ListSink()
    token = CancelToken()
    result: list[RunResult] = []
    canceled_at: list[float] = []

    async def run() -> None:
        result.append(await execute_plan(plan, run_id="r", sink=sink, cancel=token, **options))

    async def cancel() -> None:
        await when()
        canceled_at.append(time.monotonic())
        token.cancel()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            tg.start_soon(cancel)
    check_events(plan, sink.events)
    return result[0], sink.events, time.monotonic() - canceled_at[0]


def run_types(events: list[RunEvent]) -> list[str]:
    return [e.event_type for e in events if e.step_key is None]


async def never() -> None:
    await anyio.sleep_forever()


async def test_cancel_before_start_runs_nothing() -> None:
    called = False

    async def step_fn() -> None:
        nonlocal called
        called = True

    job = make_job("j", step("a", step_fn), step("b", step_fn, after=("a",)))
    token = CancelToken()
    token.cancel()
    sink = ListSink()
    plan = ExecutionPlan.build(job)
    outcome = await execute_plan(plan, run_id="r", sink=sink, cancel=token)
    check_events(plan, sink.events)
    assert outcome.status == "CANCELED"
    assert not called
    assert [e.event_type for e in sink.events] == [
        "RUN_START",
        "RUN_CANCELING",
        "STEP_SKIPPED",
        "STEP_SKIPPED",
        "RUN_CANCELED",
    ]
    reason = sink.events[2].payload
    assert isinstance(reason, StepSkippedPayload) and "canceled" in reason.reason


async def test_cancel_mid_async_step_stops_it_at_once() -> None:
    started = anyio.Event()
    reached_end = False

    async def long_step() -> None:
        nonlocal reached_end
        started.set()
        await anyio.sleep(30)
        reached_end = True

    async def quick() -> int:
        return 1

    job = make_job(
        "j",
        step("quick", quick),
        step("long", long_step),
        step("after_long", make_op(quick, name="after_long"), after=("long",)),
    )
    outcome, events, latency = await run_and_cancel(job, started.wait)
    assert outcome.status == "CANCELED"
    assert latency < 1
    assert not reached_end
    assert {k: r.status for k, r in outcome.steps.items()} == {
        "quick": "SUCCESS",
        "long": "FAILURE",
        "after_long": "SKIPPED",
    }
    failure = next(e.payload for e in events if e.event_type == "STEP_FAILURE")
    assert isinstance(failure, StepFailurePayload)
    assert failure.error.type.endswith("StepCanceledError")
    assert run_types(events) == ["RUN_START", "RUN_CANCELING", "RUN_CANCELED"]


async def test_cancel_mid_thread_step_sets_the_flag_and_waits_for_it() -> None:
    started = threading.Event()
    seen_cancel: list[bool] = []

    def polite(context: StepContext) -> str:
        started.set()
        deadline = time.monotonic() + 10
        while not context.is_cancelled and time.monotonic() < deadline:
            time.sleep(0.005)
        seen_cancel.append(context.is_cancelled)
        return "stopped early"

    def strict(context: StepContext) -> None:
        started.wait(5)
        while True:
            context.raise_if_cancelled()
            time.sleep(0.005)

    async def async_long() -> None:
        await anyio.sleep(30)

    job = make_job(
        "j",
        step("polite", polite),
        step("strict", strict),
        step("async_long", async_long),
        step("downstream", make_op(async_long, name="downstream"), after=("polite",)),
    )

    async def wait_started() -> None:
        await anyio.to_thread.run_sync(started.wait)

    outcome, events, latency = await run_and_cancel(job, wait_started)
    assert outcome.status == "CANCELED"
    assert latency < 2
    assert seen_cancel == [True]
    statuses = {k: r.status for k, r in outcome.steps.items()}
    # The thread step returned normally: its result stands, but nothing starts after it.
    assert statuses == {
        "polite": "SUCCESS",
        "strict": "FAILURE",
        "async_long": "FAILURE",
        "downstream": "SKIPPED",
    }
    strict_error = outcome.steps["strict"].error
    assert strict_error is not None and "is being canceled" in strict_error.message
    engine = [e for e in events if e.event_type == "ENGINE_EVENT"]
    assert len(engine) == 1
    assert isinstance(engine[0].payload, EnginePayload)
    assert "polite, strict run in threads" in engine[0].payload.message
    assert engine[0].payload.metadata == {"steps": ["polite", "strict"]}
    assert run_types(events) == ["RUN_START", "RUN_CANCELING", "ENGINE_EVENT", "RUN_CANCELED"]
    canceling = next(i for i, e in enumerate(events) if e.event_type == "RUN_CANCELING")
    assert events.index(engine[0]) > canceling


async def test_cancel_during_a_retry_wait_fails_the_step() -> None:
    first_attempt_done = anyio.Event()

    async def retry_later() -> None:
        first_attempt_done.set()
        raise RetryRequested(max_retries=3, seconds_to_wait=30)

    job = make_job(
        "j", step("r", retry_later), step("next", make_op(never, name="next"), after=("r",))
    )
    outcome, events, latency = await run_and_cancel(job, first_attempt_done.wait)
    assert outcome.status == "CANCELED"
    assert latency < 1
    assert [e.event_type for e in events if e.step_key == "r"] == [
        "STEP_START",
        "STEP_UP_FOR_RETRY",
        "STEP_FAILURE",
    ]
    assert outcome.steps["next"].status == "SKIPPED"


async def test_steps_that_become_ready_after_cancel_do_not_start() -> None:
    blocker_started = threading.Event()
    gate = threading.Event()
    started_after: list[str] = []

    def blocker() -> None:
        blocker_started.set()
        gate.wait(5)

    async def later() -> None:
        started_after.append("later")

    job = make_job("j", step("blocker", blocker), step("later", later, after=("blocker",)))
    plan = ExecutionPlan.build(job)
    sink = ListSink()
    token = CancelToken()
    outcomes: list[RunResult] = []

    async def run() -> None:
        outcomes.append(await execute_plan(plan, run_id="r", sink=sink, cancel=token))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await anyio.to_thread.run_sync(blocker_started.wait)
            token.cancel()
            await anyio.sleep(0.01)
            # The thread step succeeds only now, after the cancel.
            gate.set()
    check_events(plan, sink.events)
    assert outcomes[0].status == "CANCELED"
    assert started_after == []
    assert outcomes[0].steps["blocker"].status == "SUCCESS"
    assert outcomes[0].steps["later"].status == "SKIPPED"


async def test_cancelling_the_caller_abandons_threads_and_still_ends_the_run() -> None:
    release = threading.Event()
    thread_started = threading.Event()

    def stuck() -> None:
        thread_started.set()
        release.wait(10)

    job = make_job(
        "j", step("stuck", stuck), step("never", never), step("after", never, after=("stuck",))
    )
    plan = ExecutionPlan.build(job)
    sink = ListSink()
    try:
        with anyio.fail_after(5):
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(
                        lambda: execute_plan(plan, run_id="r", sink=sink, first_sequence=2)
                    )
                    await anyio.to_thread.run_sync(thread_started.wait)
                    scope.cancel()
    finally:
        release.set()
    assert scope.cancelled_caught
    assert sink.events[0].sequence == 2
    assert sink.events[-1].event_type == "RUN_CANCELED"
    ends = {
        e.step_key: e.event_type
        for e in sink.events
        if e.event_type.startswith("STEP_") and e.event_type != "STEP_START"
    }
    assert ends == {"stuck": "STEP_FAILURE", "never": "STEP_FAILURE", "after": "STEP_SKIPPED"}

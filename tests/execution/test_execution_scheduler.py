"""The step scheduler: graph shapes, true overlap, limits, failures and retries."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from runtime.definitions.retry import RetryPolicy, RetryRequested
from runtime.execution.io_manager import InMemoryIOManager
from runtime.protocol.messages import (
    RunFailurePayload,
    StepFailurePayload,
    StepRetryPayload,
    StepSkippedPayload,
)
from tests.execution.graph_builders import make_job, make_op, run_job, step

if TYPE_CHECKING:
    from runtime.execution.context import StepContext

pytestmark = pytest.mark.anyio


def types_of(events: list[Any], key: str | None) -> list[str]:
    return [e.event_type for e in events if e.step_key == key]


def position(events: list[Any], event_type: str, key: str) -> int:
    return next(i for i, e in enumerate(events) if e.event_type == event_type and e.step_key == key)


async def one() -> int:
    return 1


def plus_one(x: int) -> int:
    return x + 1


async def aplus_one(x: int) -> int:
    return x + 1


def total(**values: int) -> int:
    return sum(values.values())


# --- shapes -----------------------------------------------------------------


async def test_chain_passes_values_and_runs_in_order() -> None:
    steps = [step("s0", one)]
    for i in range(1, 6):
        fn = plus_one if i % 2 else aplus_one
        steps.append(step(f"s{i}", fn, x=f"s{i - 1}"))
    io = InMemoryIOManager()
    outcome, events = await run_job(make_job("chain", *steps), io_manager=io)
    assert outcome.status == "SUCCESS"
    assert io.load("s5", "result") == 6
    starts = [e.step_key for e in events if e.event_type == "STEP_START"]
    assert starts == [f"s{i}" for i in range(6)]
    for i in range(1, 6):
        assert position(events, "STEP_SUCCESS", f"s{i - 1}") < position(
            events, "STEP_START", f"s{i}"
        )


async def test_fan_out_and_fan_in() -> None:
    def gather(a: int, b: int, c: int) -> list[int]:
        return [a, b, c]

    job = make_job(
        "fan",
        step("root", one),
        step("a", plus_one, x="root"),
        step("b", aplus_one, x="root"),
        step("c", plus_one, x="root"),
        step("join", make_op(gather, name="join"), a="a", b="b", c="c"),
    )
    io = InMemoryIOManager()
    outcome, events = await run_job(job, io_manager=io)
    assert outcome.status == "SUCCESS"
    assert io.load("join", "result") == [2, 2, 2]
    for key in ("a", "b", "c"):
        assert position(events, "STEP_SUCCESS", "root") < position(events, "STEP_START", key)
        assert position(events, "STEP_SUCCESS", key) < position(events, "STEP_START", "join")


async def test_diamond_and_ordering_only_dependency() -> None:
    order: list[str] = []

    async def record(name: str) -> None:
        order.append(name)

    async def first() -> None:
        await anyio.sleep(0.02)
        await record("first")

    async def second() -> None:
        await record("second")

    def add(x: int, y: int) -> int:
        return x + y

    job = make_job(
        "diamond",
        step("first", first),
        step("a", one),
        step("b", plus_one, x="a"),
        step("c", aplus_one, x="a"),
        step("d", make_op(add, name="d"), x="b", y="c"),
        step("second", second, after=("first",)),
    )
    io = InMemoryIOManager()
    outcome, _ = await run_job(job, io_manager=io)
    assert outcome.status == "SUCCESS"
    assert io.load("d", "result") == 4
    assert order == ["first", "second"]


# --- overlap ----------------------------------------------------------------


async def test_async_steps_truly_overlap() -> None:
    spans: dict[str, tuple[float, float]] = {}
    both_started = anyio.Event()
    started: set[str] = set()

    async def work(context: StepContext) -> None:
        begin = time.perf_counter()
        started.add(context.step_key)
        if len(started) == 2:
            both_started.set()
        # Cannot finish unless the other step started while this one runs.
        with anyio.fail_after(5):
            await both_started.wait()
        spans[context.step_key] = (begin, time.perf_counter())

    job = make_job("overlap", step("x", work), step("y", work))
    outcome, _ = await run_job(job)
    assert outcome.status == "SUCCESS"
    (x_start, x_end), (y_start, y_end) = spans["x"], spans["y"]
    assert y_start < x_end and x_start < y_end


async def test_sync_steps_run_in_threads_and_overlap_with_each_other_and_async_steps() -> None:
    barrier = threading.Barrier(3, timeout=5)
    spans: dict[str, tuple[float, float, int]] = {}

    def blocking(context: StepContext) -> None:
        begin = time.perf_counter()
        barrier.wait()  # all three must be in flight together
        spans[context.step_key] = (begin, time.perf_counter(), threading.get_ident())

    async def waiting(context: StepContext) -> None:
        begin = time.perf_counter()
        await anyio.to_thread.run_sync(barrier.wait)
        spans[context.step_key] = (begin, time.perf_counter(), threading.get_ident())

    job = make_job("mixed", step("t1", blocking), step("t2", blocking), step("a1", waiting))
    outcome, _ = await run_job(job)
    assert outcome.status == "SUCCESS"
    main_thread = threading.get_ident()
    assert spans["t1"][2] != spans["t2"][2]
    assert spans["t1"][2] != main_thread
    assert spans["t2"][2] != main_thread
    assert spans["a1"][2] == threading.get_ident()
    latest_start = max(s[0] for s in spans.values())
    earliest_end = min(s[1] for s in spans.values())
    assert latest_start < earliest_end


# --- limits -----------------------------------------------------------------


class Gauge:
    """Counts steps in flight (from any thread) and remembers the most at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.by_pool: dict[str, int] = {}
        self.most_by_pool: dict[str, int] = {}

    def enter(self, pool: str) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.by_pool[pool] = self.by_pool.get(pool, 0) + 1
            self.most_by_pool[pool] = max(self.most_by_pool.get(pool, 0), self.by_pool[pool])

    def leave(self, pool: str) -> None:
        with self.lock:
            self.now -= 1
            self.by_pool[pool] -= 1


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_max_concurrent_is_reached_and_never_exceeded(kind: str) -> None:
    gauge = Gauge()

    async def async_work() -> None:
        gauge.enter("-")
        await anyio.sleep(0.005)
        gauge.leave("-")

    def sync_work() -> None:
        gauge.enter("-")
        time.sleep(0.005)
        gauge.leave("-")

    fn = async_work if kind == "async" else sync_work
    job = make_job("limited", *(step(f"s{i}", make_op(fn, name=f"s{i}")) for i in range(24)))
    outcome, _ = await run_job(job, max_concurrent=3)
    assert outcome.status == "SUCCESS"
    assert gauge.most == 3


async def test_pool_limits_hold_while_other_steps_run_freely() -> None:
    gauge = Gauge()

    def make(pool: str | None, name: str) -> Any:
        async def work() -> None:
            gauge.enter(pool or "-")
            await anyio.sleep(0.01)
            gauge.leave(pool or "-")

        return make_op(work, name=name, pool=pool)

    steps = [step(f"db{i}", make("db", f"db{i}")) for i in range(8)]
    steps += [step(f"api{i}", make("api", f"api{i}")) for i in range(6)]
    steps += [step(f"free{i}", make(None, f"free{i}")) for i in range(6)]
    outcome, _ = await run_job(make_job("pools", *steps), pool_limits={"db": 2, "api": 1})
    assert outcome.status == "SUCCESS"
    assert gauge.most_by_pool["db"] == 2
    assert gauge.most_by_pool["api"] == 1
    assert gauge.most_by_pool["-"] == 6
    assert gauge.most > 3


async def test_bad_limits_are_rejected() -> None:
    job = make_job("j", step("a", one))
    with pytest.raises(ValueError, match="max_concurrent must be >= 0"):
        await run_job(job, max_concurrent=-1)
    with pytest.raises(ValueError, match="pool 'db' must be >= 1"):
        await run_job(job, pool_limits={"db": 0})
    with pytest.raises(
        ValueError,
        match=r"Unknown executor 'gpu' for run 'run-1'; the registered executors are: "
        r"dask, in_process, multiprocess\.",
    ):
        await run_job(job, executor="gpu")


# --- failures ---------------------------------------------------------------


def explode(x: int) -> int:
    raise KeyError(f"no row {x}")


async def test_failure_is_reported_and_skips_every_downstream_step() -> None:
    def add(x: int, y: int) -> int:
        return x + y

    job = make_job(
        "broken",
        step("a", one),
        step("b", explode, x="a"),
        step("c", aplus_one, x="a"),
        step("d", make_op(add, name="d"), x="b", y="c"),
        step("e", plus_one, x="d"),
        step("f", plus_one, x="c"),
    )
    outcome, events = await run_job(job)
    assert outcome.status == "FAILURE"
    assert {k: r.status for k, r in outcome.steps.items()} == {
        "a": "SUCCESS",
        "b": "FAILURE",
        "c": "SUCCESS",
        "d": "SKIPPED",
        "e": "SKIPPED",
        "f": "SUCCESS",
    }
    failure = next(e for e in events if e.event_type == "STEP_FAILURE")
    assert isinstance(failure.payload, StepFailurePayload)
    assert failure.payload.error.type == "KeyError"
    assert "no row 1" in failure.payload.error.message
    assert "explode" in failure.payload.error.traceback
    skipped = [e for e in events if e.event_type == "STEP_SKIPPED"]
    assert [e.step_key for e in skipped] == ["d", "e"]
    assert all(
        isinstance(e.payload, StepSkippedPayload) and "'b' failed" in e.payload.reason
        for e in skipped
    )
    end = events[-1]
    assert end.event_type == "RUN_FAILURE"
    assert isinstance(end.payload, RunFailurePayload)
    assert end.payload.failed_steps == ["b"]


async def test_missing_stored_input_fails_the_step_with_a_clear_message() -> None:
    job = make_job("j", step("a", one), step("b", plus_one, x="a"))
    outcome, events = await run_job(job, step_selection=["b"])
    assert outcome.status == "FAILURE"
    error = outcome.steps["b"].error
    assert error is not None
    assert "No output 'result' of step 'a'" in error.message


# --- retries ----------------------------------------------------------------


async def test_retry_policy_retries_with_backoff_then_succeeds() -> None:
    attempts: list[int] = []

    def flaky(context: StepContext) -> str:
        attempts.append(context.retry_number)
        if context.retry_number < 2:
            raise ConnectionError(f"attempt {context.retry_number} failed")
        return "ok"

    policy = RetryPolicy(max_retries=3, delay=0.01, backoff="exponential")
    job = make_job(
        "retry",
        step("flaky", make_op(flaky, retry_policy=policy)),
        step("length", make_op(length, name="length"), s="flaky"),
    )
    outcome, events = await run_job(job)
    assert outcome.status == "SUCCESS"
    assert attempts == [0, 1, 2]
    assert outcome.steps["flaky"].attempts == 3
    assert types_of(events, "flaky") == [
        "STEP_START",
        "STEP_UP_FOR_RETRY",
        "STEP_RESTARTED",
        "STEP_UP_FOR_RETRY",
        "STEP_RESTARTED",
        "STEP_OUTPUT",
        "STEP_SUCCESS",
    ]
    retries = [e.payload for e in events if e.event_type == "STEP_UP_FOR_RETRY"]
    assert all(isinstance(p, StepRetryPayload) for p in retries)
    assert [(p.retry_number, p.delay_seconds) for p in retries] == [(1, 0.01), (2, 0.02)]  # type: ignore[union-attr]
    assert retries[0].error is not None and retries[0].error.type == "ConnectionError"  # type: ignore[union-attr]
    assert outcome.steps["length"].status == "SUCCESS"


def length(s: str) -> int:
    return len(s)


async def test_retries_exhausted_fail_the_step() -> None:
    calls = 0

    async def always_fails() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("still down")

    job = make_job("j", step("s", make_op(always_fails, retry_policy=RetryPolicy(max_retries=2))))
    outcome, events = await run_job(job)
    assert outcome.status == "FAILURE"
    assert calls == 3
    failure = events[-2]
    assert failure.event_type == "STEP_FAILURE"
    assert isinstance(failure.payload, StepFailurePayload)
    assert failure.payload.retry_number == 2


async def test_retry_requested_waits_and_retries_without_a_policy() -> None:
    times: list[float] = []

    def needs_another_go(context: StepContext) -> int:
        times.append(time.monotonic())
        if context.retry_number == 0:
            raise RetryRequested(max_retries=1, seconds_to_wait=0.05)
        return context.retry_number

    job = make_job("j", step("s", needs_another_go))
    io = InMemoryIOManager()
    outcome, events = await run_job(job, io_manager=io)
    assert outcome.status == "SUCCESS"
    assert io.load("s", "result") == 1
    assert times[1] - times[0] >= 0.05
    retry = next(e.payload for e in events if e.event_type == "STEP_UP_FOR_RETRY")
    assert isinstance(retry, StepRetryPayload) and retry.delay_seconds == 0.05


async def test_retry_requested_beyond_its_max_fails() -> None:
    async def insists() -> None:
        raise RetryRequested(max_retries=1)

    outcome, events = await run_job(make_job("j", step("s", insists)))
    assert outcome.status == "FAILURE"
    assert types_of(events, "s") == [
        "STEP_START",
        "STEP_UP_FOR_RETRY",
        "STEP_RESTARTED",
        "STEP_FAILURE",
    ]


async def test_a_retrying_step_frees_its_slot_while_it_waits() -> None:
    ran_while_waiting: list[str] = []
    waiting = False

    async def slow_retry(context: StepContext) -> None:
        nonlocal waiting
        if context.retry_number == 0:
            waiting = True
            raise RetryRequested(max_retries=1, seconds_to_wait=0.1)
        waiting = False

    async def other() -> None:
        if waiting:
            ran_while_waiting.append("other")

    job = make_job("j", step("r", slow_retry), step("o", other))
    outcome, _ = await run_job(job, max_concurrent=1)
    assert outcome.status == "SUCCESS"
    assert ran_while_waiting == ["other"]

"""The step scheduler: run a plan's steps as soon as their upstreams succeed, under limits.

One task group holds every step of a run. The scheduler's state (counts of
unfinished upstreams, ready queues, slots in use) lives on the event loop and
is only touched there, so it needs no locks: a step's task updates it when it
ends and starts whatever became ready. Async steps run on the loop, sync steps
in threads (or in forkserver processes with the multiprocess executor).
"""

from __future__ import annotations

import math
import reprlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread

from runtime.definitions.retry import RetryRequested
from runtime.execution import capture
from runtime.execution.context import StepCanceledError, StepContext, StepLogger
from runtime.execution.events import jsonable
from runtime.execution.io_manager import InMemoryIOManager
from runtime.protocol.error_info import error_info
from runtime.protocol.messages import (
    AssetMaterializationPayload,
    EnginePayload,
    ErrorInfo,
    RunFailurePayload,
    StepFailurePayload,
    StepOutputPayload,
    StepRetryPayload,
    StepSkippedPayload,
    StepSuccessPayload,
)
from runtime.protocol.run_log import RunLog

if TYPE_CHECKING:
    from collections.abc import Mapping

    import msgspec
    from anyio.abc import TaskGroup, TaskStatus

    from runtime.definitions.graph import OpDefinition
    from runtime.execution.io_manager import IOManager
    from runtime.execution.plan import ExecutionPlan, PlannedStep
    from runtime.execution.processes import StepProcessPool
    from runtime.protocol.run_log import EventSink

ExecutorKind = Literal["in_process", "multiprocess"]
RunStatus = Literal["SUCCESS", "FAILURE", "CANCELED"]
StepStatus = Literal["SUCCESS", "FAILURE", "SKIPPED"]

# Sync steps share this many threads when max_concurrent does not say.
DEFAULT_THREAD_LIMIT = 64

_short_repr = reprlib.Repr()
_short_repr.maxstring = 120
_short_repr.maxother = 120


class CancelToken:
    """Asks a run to stop. `cancel()` is called on the run's event loop; `cancelled` is safe anywhere."""

    def __init__(self) -> None:
        self._cancelled = False
        self._event: anyio.Event | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """Request cancellation; the run ends CANCELED. Calling it again does nothing."""
        self._cancelled = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        """Return once cancellation was requested."""
        if self._cancelled:
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()


@dataclass(slots=True)
class StepResult:
    """How one planned step ended."""

    step_key: str
    status: StepStatus
    # Wall-clock times of the first start and the end; None if it never started.
    start_time: float | None = None
    end_time: float | None = None
    attempts: int = 0
    error: ErrorInfo | None = None
    # The exception the step raised, when it ran in this process (in-process results re-raise it).
    exception: BaseException | None = field(default=None, repr=False)


@dataclass(slots=True)
class RunOutcome:
    """How a run ended, step by step."""

    run_id: str
    status: RunStatus
    steps: dict[str, StepResult] = field(default_factory=dict)

    @property
    def failed_steps(self) -> list[str]:
        return [key for key, step in self.steps.items() if step.status == "FAILURE"]


async def execute_plan(
    plan: ExecutionPlan,
    *,
    run_id: str,
    sink: EventSink,
    step_configs: Mapping[str, msgspec.Struct] | None = None,
    resources: Mapping[str, Any] | None = None,
    io_manager: IOManager | None = None,
    max_concurrent: int = 0,
    pool_limits: Mapping[str, int] | None = None,
    executor: ExecutorKind = "in_process",
    cancel: CancelToken | None = None,
    first_sequence: int = 1,
) -> RunOutcome:
    """Run every step of `plan`, emitting RUN_START ... RUN_SUCCESS|RUN_FAILURE|RUN_CANCELED to `sink`.

    Each step starts as soon as its upstreams succeeded, with at most
    `max_concurrent` steps running at once (0: no limit) and at most
    `pool_limits[pool]` steps of a pool. A step's failure is data (a
    STEP_FAILURE event, its downstream STEP_SKIPPED); only bad arguments
    raise (ValueError). Sequence numbers start at `first_sequence`.

    Cancelling through `cancel` stops async steps, kills process steps and
    waits for thread steps (they see `context.is_cancelled`); the run ends
    RUN_CANCELED. Cancelling the caller instead abandons thread steps, emits
    RUN_CANCELED and propagates the cancellation.
    """
    check_executor_options(
        run_id, executor=executor, max_concurrent=max_concurrent, pool_limits=pool_limits
    )
    run = _Run(
        plan,
        emitter=RunLog(run_id, sink, next_sequence=first_sequence),
        step_configs=step_configs or {},
        resources=resources or {},
        io_manager=io_manager if io_manager is not None else InMemoryIOManager(),
        max_concurrent=max_concurrent,
        pool_limits=pool_limits or {},
        use_processes=executor == "multiprocess",
        cancel=cancel if cancel is not None else CancelToken(),
    )
    return await run.execute()


def check_executor_options(
    run_id: str,
    *,
    executor: str,
    max_concurrent: int,
    pool_limits: Mapping[str, int] | None,
) -> None:
    """Raise ValueError, naming the run and the option, unless execute_plan accepts these options.

    execute_plan checks them itself before RUN_START; callers that must turn
    a refusal into a RUN_FAILURE (the code server) check them first.
    """
    if executor not in ("in_process", "multiprocess"):
        raise ValueError(
            f"Unknown executor {executor!r} for run {run_id!r}; use 'in_process' or 'multiprocess'."
        )
    if max_concurrent < 0:
        raise ValueError(
            f"max_concurrent must be >= 0 (0: no limit), got {max_concurrent} for run {run_id!r}."
        )
    for pool, limit in (pool_limits or {}).items():
        if limit < 1:
            raise ValueError(
                f"The limit of pool {pool!r} must be >= 1, got {limit} for run {run_id!r}."
            )


def unlimited_pools_message(plan: ExecutionPlan, pool_limits: Mapping[str, int]) -> str | None:
    """A sentence naming the pools the plan's steps use that have no limit, or None if every pool has one."""
    pools = sorted(
        {
            step.node.op.pool
            for step in plan.steps.values()
            if step.node.op.pool is not None and step.node.op.pool not in pool_limits
        }
    )
    if not pools:
        return None
    names = ", ".join(repr(pool) for pool in pools)
    settings = ", ".join(f"executor.pools.{pool}" for pool in pools)
    noun = "pool" if len(pools) == 1 else "pools"
    return (
        f"Steps of {noun} {names} run without a limit: set {settings} in instance.yaml "
        "(or pass pool_limits when executing in process)."
    )


class _Run:
    """The state of one executing plan. Every method runs on the event loop unless it says otherwise."""

    def __init__(
        self,
        plan: ExecutionPlan,
        *,
        emitter: RunLog,
        step_configs: Mapping[str, msgspec.Struct],
        resources: Mapping[str, Any],
        io_manager: IOManager,
        max_concurrent: int,
        pool_limits: Mapping[str, int],
        use_processes: bool,
        cancel: CancelToken,
    ) -> None:
        self.plan = plan
        self.emitter = emitter
        self.emit = emitter.emit
        self.run_id = emitter.run_id
        self.step_configs = step_configs
        self.resources = resources
        self.io = io_manager
        # Blocking IO managers (files) are called from worker threads.
        self.io_blocks = io_manager.blocking
        self.max_concurrent = max_concurrent or math.inf
        self.pool_limits = pool_limits
        self.use_processes = use_processes
        self.cancel = cancel
        self.canceling = False

        self.unfinished_upstream = {key: len(step.upstream) for key, step in plan.steps.items()}
        self.results: dict[str, StepResult] = {}
        self.attempts: dict[str, int] = {}
        self.start_times: dict[str, float] = {}
        # Ready steps by pool (None: no pool), first come first served within a pool.
        self.ready: dict[str | None, deque[str]] = {None: deque()}
        self.running = 0
        self.pool_running: dict[str, int] = {}
        # Steps running right now and where: "async", "thread" or "process".
        self.in_flight: dict[str, str] = {}
        self.thread_limiter = anyio.CapacityLimiter(
            max_concurrent if max_concurrent > 0 else DEFAULT_THREAD_LIMIT
        )
        self.process_pool: StepProcessPool | None = None
        # Thread steps live in their own task group: cancelling the run cancels
        # async and process steps, while threads (which cannot be interrupted)
        # are waited for. Only a cancellation from outside abandons them.
        self.thread_group: TaskGroup | None = None
        self.async_group: TaskGroup | None = None
        self.retry_waits = 0
        self.all_done = anyio.Event()

    # --- the run ----------------------------------------------------------

    async def execute(self) -> RunOutcome:
        capture.install()
        self.emit("RUN_START")
        unlimited = unlimited_pools_message(self.plan, self.pool_limits)
        if unlimited is not None:
            # A pool without a limit constrains nothing: likely a missing setting.
            self.emit("ENGINE_EVENT", None, EnginePayload(message=unlimited))
        try:
            async with anyio.create_task_group() as outer:
                outer.start_soon(self._watch_cancel)
                try:
                    await self._run_steps()
                finally:
                    outer.cancel_scope.cancel()
        except BaseException as exc:
            # An engine failure (not a step's): still end the run with one final event.
            with anyio.CancelScope(shield=True):
                if self.process_pool is not None:
                    self.process_pool.terminate()
                    await self.process_pool.aclose()
                await self._flush_outputs()
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                self._skip_unfinished("the run's executor was cancelled")
                self.emit("RUN_CANCELED")
            else:
                info = error_info(exc)
                self.emit(
                    "ENGINE_EVENT", None, EnginePayload(message="The executor failed.", error=info)
                )
                self._skip_unfinished("the executor failed")
                self.emit(
                    "RUN_FAILURE",
                    None,
                    RunFailurePayload(
                        message=f"The executor of run {self.run_id!r} failed: {exc}", error=info
                    ),
                )
            raise
        if self.process_pool is not None:
            await self.process_pool.aclose()
        await self._flush_outputs()
        return self._finish_run()

    async def _flush_outputs(self) -> None:
        """Outputs must be durable before the run's final event."""
        try:
            failures = await anyio.to_thread.run_sync(self.io.flush)
        except Exception as exc:
            failures = [f"The IO manager failed to flush: {type(exc).__name__}: {exc}"]
        for failure in failures:
            self.emit("ENGINE_EVENT", None, EnginePayload(message=failure))

    async def _run_steps(self) -> None:
        if self.cancel.cancelled:
            self._begin_canceling()
            return
        if any(self._in_worker_process(s.node.op) for s in self.plan.steps.values()):
            self._open_process_pool()
        async with anyio.create_task_group() as threads:
            self.thread_group = threads
            await threads.start(self._host_async_steps)
            for key, count in self.unfinished_upstream.items():
                if count == 0:
                    self._enqueue(key)
            self._dispatch()
            self._check_done()
            await self.all_done.wait()

    async def _host_async_steps(self, *, task_status: TaskStatus[None]) -> None:
        async with anyio.create_task_group() as group:
            self.async_group = group
            task_status.started()
            await self.all_done.wait()

    def _in_worker_process(self, op: OpDefinition) -> bool:
        # Sync steps go to worker processes with the multiprocess executor, and
        # with any executor when the op says it is CPU-bound (@op(cpu_bound=True)).
        return not op.is_async and (self.use_processes or op.cpu_bound)

    def _check_done(self) -> None:
        # Nothing runs, nothing waits for a retry, and the last dispatch started nothing.
        if self.running == 0 and self.retry_waits == 0:
            self.all_done.set()

    def _open_process_pool(self) -> None:
        from runtime.execution.processes import StepProcessPool, default_worker_count

        sync_ops = [
            s.node.op for s in self.plan.steps.values() if self._in_worker_process(s.node.op)
        ]
        limit = 0 if math.isinf(self.max_concurrent) else int(self.max_concurrent)
        workers = min(default_worker_count(limit), len(sync_ops))
        modules = {op.fn.__module__ for op in sync_ops}
        self.process_pool = StepProcessPool(max_workers=workers, preload=modules)

    async def _watch_cancel(self) -> None:
        await self.cancel.wait()
        if not self.all_done.is_set():
            self._begin_canceling()

    def _begin_canceling(self) -> None:
        if self.canceling:
            return
        self.canceling = True
        self.emit("RUN_CANCELING")
        threads = sorted(key for key, where in self.in_flight.items() if where == "thread")
        processes = sorted(key for key, where in self.in_flight.items() if where == "process")
        if processes and self.process_pool is not None:
            pids = self.process_pool.terminate()
            self.emit(
                "ENGINE_EVENT",
                None,
                EnginePayload(
                    message=f"Terminated the worker processes (pids {', '.join(map(str, pids))}) of steps {', '.join(processes)}.",
                    metadata={"steps": processes, "pids": pids},
                ),
            )
        if threads:
            self.emit(
                "ENGINE_EVENT",
                None,
                EnginePayload(
                    message=(
                        f"Steps {', '.join(threads)} run in threads and cannot be interrupted; "
                        "they see context.is_cancelled and the run waits for them to return."
                    ),
                    metadata={"steps": threads},
                ),
            )
        if self.async_group is not None:
            self.async_group.cancel_scope.cancel()

    def _finish_run(self) -> RunOutcome:
        if self.canceling:
            self._skip_unfinished("the run was canceled")
            self.emit("RUN_CANCELED")
            status: RunStatus = "CANCELED"
        else:
            failed = [key for key, r in self.results.items() if r.status == "FAILURE"]
            if failed:
                self.emit(
                    "RUN_FAILURE",
                    None,
                    RunFailurePayload(
                        message=f"Steps failed: {', '.join(failed)}.", failed_steps=failed
                    ),
                )
                status = "FAILURE"
            else:
                self.emit("RUN_SUCCESS")
                status = "SUCCESS"
        ordered = {key: self.results[key] for key in self.plan.steps}
        return RunOutcome(run_id=self.run_id, status=status, steps=ordered)

    def _skip_unfinished(self, reason: str) -> None:
        for key in self.plan.steps:
            if key not in self.results:
                self._skip(key, reason)

    # --- scheduling -------------------------------------------------------

    def _enqueue(self, key: str, *, first: bool = False) -> None:
        pool = self.plan.steps[key].node.op.pool
        if pool is not None and pool not in self.pool_limits:
            pool = None  # a pool without a limit does not constrain anything
        queue = self.ready.get(pool)
        if queue is None:
            queue = self.ready[pool] = deque()
            if pool is not None:
                self.pool_running.setdefault(pool, 0)
        if first:
            queue.appendleft(key)
        else:
            queue.append(key)

    def _dispatch(self) -> None:
        """Start ready steps while slots are free."""
        if self.canceling or self.async_group is None or self.thread_group is None:
            return
        on_loop = self.async_group.start_soon
        in_thread = self.thread_group.start_soon
        steps = self.plan.steps
        for pool, queue in self.ready.items():
            limit = self.pool_limits[pool] if pool is not None else 0
            while queue and self.running < self.max_concurrent:
                if pool is not None:
                    if self.pool_running[pool] >= limit:
                        break
                    self.pool_running[pool] += 1
                self.running += 1
                key = queue.popleft()
                op = steps[key].node.op
                # Process steps are awaited on the loop like async ones.
                awaited_on_loop = op.is_async or self._in_worker_process(op)
                (on_loop if awaited_on_loop else in_thread)(self._run_step, key)

    def _release(self, step: PlannedStep) -> None:
        self.running -= 1
        pool = step.node.op.pool
        if pool is not None and pool in self.pool_limits:
            self.pool_running[pool] -= 1

    def _succeeded(self, step: PlannedStep) -> None:
        for down in step.downstream:
            remaining = self.unfinished_upstream[down] - 1
            self.unfinished_upstream[down] = remaining
            if remaining == 0 and down not in self.results:
                self._enqueue(down)

    def _skip_downstream(self, failed: PlannedStep) -> None:
        doomed: set[str] = set()
        frontier = list(failed.downstream)
        while frontier:
            key = frontier.pop()
            if key in doomed or key in self.results:
                continue
            doomed.add(key)
            frontier.extend(self.plan.steps[key].downstream)
        # Topological order, so a step's skip comes after its upstream's.
        for key in self.plan.steps:
            if key in doomed:
                self._skip(key, f"upstream step {failed.key!r} failed")

    def _skip(self, key: str, reason: str) -> None:
        self.results[key] = StepResult(step_key=key, status="SKIPPED")
        self.emit("STEP_SKIPPED", key, StepSkippedPayload(reason=reason))

    # --- one step ---------------------------------------------------------

    async def _run_step(self, key: str) -> None:
        step = self.plan.steps[key]
        if self.canceling:
            # Started by the last dispatch before cancellation; never ran.
            self._release(step)
            self._check_done()
            return
        op = step.node.op
        attempt = self.attempts.get(key, 0)
        if attempt == 0:
            self.emit("STEP_START", key)
            self.start_times[key] = time.time()
        else:
            self.emit(
                "STEP_RESTARTED", key, StepRetryPayload(retry_number=attempt, delay_seconds=0.0)
            )
        step_capture = capture.StepCapture(self.emitter, key)
        capture.current_step.set(step_capture)
        context = self._context(step, step_capture, attempt) if op.wants_context else None
        started = time.perf_counter()
        try:
            if op.is_async:
                self.in_flight[key] = "async"
                value = await self._call_async(step, context)
            elif self.process_pool is not None and self._in_worker_process(op):
                self.in_flight[key] = "process"
                value, context = await self._call_in_process(step, step_capture, attempt)
            else:
                self.in_flight[key] = "thread"
                value = await anyio.to_thread.run_sync(
                    self._call_sync,
                    step,
                    context,
                    limiter=self.thread_limiter,
                    # Reached only when the run is cancelled from outside
                    # (server shutdown): the thread is left to finish alone.
                    abandon_on_cancel=True,
                )
        except anyio.get_cancelled_exc_class():
            step_capture.flush()
            self._fail(step, _canceled_error(key, self.run_id), attempt)
            raise
        except RetryRequested as exc:
            step_capture.flush()
            self._failed_attempt(step, exc, attempt, exc.max_retries, exc.seconds_to_wait)
        except Exception as exc:
            step_capture.flush()
            policy = op.retry_policy
            if policy is not None and attempt < policy.max_retries:
                self._failed_attempt(
                    step, exc, attempt, policy.max_retries, policy.delay_for(attempt + 1)
                )
            else:
                self._fail(step, _error_of(exc), attempt, exc)
        else:
            step_capture.flush()
            self._record_success(step, value, context, time.perf_counter() - started, attempt)
        finally:
            self.in_flight.pop(key, None)
            self._release(step)
            self._dispatch()
            self._check_done()

    def _context(
        self, step: PlannedStep, step_capture: capture.StepCapture, attempt: int
    ) -> StepContext:
        op = step.node.op
        key = step.key
        return StepContext(
            run_id=self.run_id,
            step_key=key,
            op_name=op.name,
            log=StepLogger(op.name, step_capture.log),
            asset_key=op.asset_key,
            run_config=self.step_configs.get(key),
            resources=self.resources,
            retry_number=attempt,
            cancelled=lambda: self.cancel.cancelled,
            engine_event=lambda message, metadata: self.emitter.emit(
                "ENGINE_EVENT", key, EnginePayload(message=message, metadata=jsonable(metadata))
            ),
        )

    def _arguments(self, step: PlannedStep, context: StepContext | None) -> dict[str, Any]:
        """The keyword arguments of a step's function. May block (file IO) with a blocking IO manager."""
        io = self.io
        kwargs = {name: io.load(up, out) for name, (up, out) in step.inputs.items()}
        for stored in step.stored_inputs:
            if stored.asset_key is not None:
                kwargs[stored.input_name] = io.load_asset(stored.asset_key)
            else:
                assert stored.upstream_step is not None
                kwargs[stored.input_name] = io.load(stored.upstream_step, stored.upstream_output)
        op = step.node.op
        if context is not None:
            kwargs["context"] = context
        if op.config_type is not None:
            kwargs["config"] = self.step_configs.get(step.key)
        return kwargs

    async def _call_async(self, step: PlannedStep, context: StepContext | None) -> Any:
        if self.io_blocks or step.stored_inputs:
            kwargs = await anyio.to_thread.run_sync(self._arguments, step, context)
            value = await step.node.op.fn(**kwargs)
            await anyio.to_thread.run_sync(self._store, step, value)
        else:
            value = await step.node.op.fn(**self._arguments(step, context))
            self._store(step, value)
        return value

    def _call_sync(self, step: PlannedStep, context: StepContext | None) -> Any:
        """In a worker thread: load inputs, call the function, store its output."""
        value = step.node.op.fn(**self._arguments(step, context))
        self._store(step, value)
        return value

    async def _call_in_process(
        self, step: PlannedStep, step_capture: capture.StepCapture, attempt: int
    ) -> tuple[Any, StepContext | None]:
        from runtime.execution.process_worker import FunctionRef, ProcessStepCall

        assert self.process_pool is not None
        op = step.node.op
        kwargs = await anyio.to_thread.run_sync(self._arguments, step, None)
        kwargs.pop("context", None)
        call = ProcessStepCall(
            function=FunctionRef.of(op.fn, step.key),
            kwargs=kwargs,
            run_id=self.run_id,
            step_key=step.key,
            op_name=op.name,
            wants_context=op.wants_context,
            asset_key=op.asset_key,
            run_config=self.step_configs.get(step.key),
            resources=dict(self.resources),
            retry_number=attempt,
        )
        outcome = await self.process_pool.run(
            call, lambda event_type, payload: self.emit(event_type, step.key, payload)
        )
        if outcome.retry_requested is not None:
            max_retries, wait = outcome.retry_requested
            raise RetryRequested(max_retries=max_retries, seconds_to_wait=wait)
        if outcome.error is not None:
            raise _RemoteStepError(outcome.error)
        await anyio.to_thread.run_sync(self._store, step, outcome.value)
        # Only the metadata matters on this side; the worker had its own context.
        context = None
        if outcome.output_metadata:
            context = self._context(step, step_capture, attempt)
            context.add_output_metadata(outcome.output_metadata)
        return outcome.value, context

    def _store(self, step: PlannedStep, value: Any) -> None:
        self.io.store(step.key, "result", value, asset_key=step.node.op.asset_key)

    # --- step outcomes ----------------------------------------------------

    def _record_success(
        self,
        step: PlannedStep,
        value: Any,
        context: StepContext | None,
        duration: float,
        attempt: int,
    ) -> None:
        key = step.key
        emit = self.emit
        emit(
            "STEP_OUTPUT",
            key,
            StepOutputPayload(
                value_repr=_short_repr.repr(value), type_name=type(value).__qualname__
            ),
        )
        metadata = (
            jsonable(context.output_metadata)
            if context is not None and context.output_metadata
            else {}
        )
        asset_key = step.node.op.asset_key
        if asset_key is not None:
            emit(
                "ASSET_MATERIALIZATION",
                key,
                AssetMaterializationPayload(asset_key=asset_key, metadata=metadata),
            )
        elif metadata:
            emit("ENGINE_EVENT", key, EnginePayload(message="Output metadata", metadata=metadata))
        emit("STEP_SUCCESS", key, StepSuccessPayload(duration_seconds=duration))
        self.results[key] = StepResult(
            step_key=key,
            status="SUCCESS",
            start_time=self.start_times.get(key),
            end_time=time.time(),
            attempts=attempt + 1,
        )
        self._succeeded(step)

    def _failed_attempt(
        self, step: PlannedStep, exc: BaseException, attempt: int, max_retries: int, delay: float
    ) -> None:
        info = _error_of(exc)
        if attempt >= max_retries or self.canceling:
            self._fail(step, info, attempt, exc)
            return
        self.attempts[step.key] = attempt + 1
        self.emit(
            "STEP_UP_FOR_RETRY",
            step.key,
            StepRetryPayload(error=info, retry_number=attempt + 1, delay_seconds=delay),
        )
        assert self.async_group is not None
        self.retry_waits += 1
        self.async_group.start_soon(self._retry_after, step, delay)

    async def _retry_after(self, step: PlannedStep, delay: float) -> None:
        try:
            await anyio.sleep(delay)
            # Ahead of steps that never ran: it has been waiting already.
            self._enqueue(step.key, first=True)
            self._dispatch()
        except anyio.get_cancelled_exc_class():
            self._fail(step, _canceled_error(step.key, self.run_id), self.attempts[step.key])
            raise
        finally:
            self.retry_waits -= 1
            self._check_done()

    def _fail(
        self,
        step: PlannedStep,
        error: ErrorInfo,
        attempt: int,
        exception: BaseException | None = None,
    ) -> None:
        key = step.key
        self.emit("STEP_FAILURE", key, StepFailurePayload(error=error, retry_number=attempt))
        self.results[key] = StepResult(
            step_key=key,
            status="FAILURE",
            start_time=self.start_times.get(key),
            end_time=time.time(),
            attempts=attempt + 1,
            error=error,
            exception=None if isinstance(exception, _RemoteStepError) else exception,
        )
        self._skip_downstream(step)


class _RemoteStepError(Exception):
    """A step failed in a worker process; carries the ErrorInfo captured there."""

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.error = error


def _error_of(exc: BaseException) -> ErrorInfo:
    return exc.error if isinstance(exc, _RemoteStepError) else error_info(exc)


def _canceled_error(step_key: str, run_id: str) -> ErrorInfo:
    return error_info(
        StepCanceledError(f"Step {step_key!r} was stopped because run {run_id!r} was canceled.")
    )

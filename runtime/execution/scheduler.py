"""The step scheduler: run a plan's steps as soon as their upstreams succeed, under limits.

One task group holds every step of a run. The scheduler's state (counts of
unfinished upstreams, ready queues, slots in use) lives on the event loop and
is only touched there, so it needs no locks: a step's task updates it when it
ends and starts whatever became ready. Where a step's function is called is
up to the StepRunner the run's executor picked for it (runtime.execution.
executors): the loop, a thread, a worker process. Limits, pools, retries,
cancellation, log capture and events are the scheduler's, the same for all.
"""

from __future__ import annotations

import math
import reprlib
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import msgspec

from runtime.definitions.retry import RetryRequested
from runtime.execution import capture
from runtime.execution.cancel import CancelToken
from runtime.execution.context import StepCanceledError, StepContext, StepLogger
from runtime.execution.events import jsonable
from runtime.execution.executors import DEFAULT_EXECUTOR, check_runner_names, resolve_executor
from runtime.execution.io_manager import InMemoryIOManager
from runtime.execution.step_runner import (
    RemoteStepError,
    RunnerSetup,
    RunnerUnavailableError,
    RunScope,
    StartableRunner,
    StepCall,
    step_runner_factory,
)
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
from runtime.protocol.run_result import RunResult, StepOutcome
from runtime.protocol.run_status import RunStatus, StepStatus

if TYPE_CHECKING:
    from collections.abc import Mapping

    from anyio.abc import TaskGroup, TaskStatus

    from runtime.definitions.graph import OpDefinition
    from runtime.execution.executors import ExecutorDefinition
    from runtime.execution.io_manager import IOManager
    from runtime.execution.plan import ExecutionPlan, PlannedStep
    from runtime.execution.step_runner import StepRunner
    from runtime.protocol.run_log import EventSink

__all__ = ["CancelToken", "check_executor_options", "execute_plan", "unlimited_pools_message"]

# Enum members are slow to look up on their class; these run once per step.
_SUCCESS = StepStatus.SUCCESS
_FAILURE = StepStatus.FAILURE
_SKIPPED = StepStatus.SKIPPED

_short_repr = reprlib.Repr()
_short_repr.maxstring = 120
_short_repr.maxother = 120
# Values whose repr reprlib would not shorten when it is this short.
_PLAIN_TYPES = frozenset({int, float, bool, str, type(None)})
_PLAIN_REPR_LIMIT = 40


def _value_repr(value: Any) -> str:
    """The short repr a STEP_OUTPUT shows; most outputs are small plain values that skip reprlib."""
    if type(value) in _PLAIN_TYPES:
        text = repr(value)
        if len(text) <= _PLAIN_REPR_LIMIT:
            return text
    return _short_repr.repr(value)


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
    executor: str = DEFAULT_EXECUTOR,
    executor_config: Mapping[str, Any] | None = None,
    cancel: CancelToken | None = None,
    first_sequence: int = 1,
    step_exceptions: dict[str, BaseException] | None = None,
) -> RunResult:
    """Run every step of `plan`, emitting RUN_START ... RUN_SUCCESS|RUN_FAILURE|RUN_CANCELED to `sink`.

    Each step starts as soon as its upstreams succeeded, with at most
    `max_concurrent` steps running at once (0: no limit) and at most
    `pool_limits[pool]` steps of a pool, called by the StepRunner that
    `executor` (a registered name, with `executor_config` as its options)
    picks for it. A step's failure is data (a STEP_FAILURE event, its
    downstream STEP_SKIPPED); only bad arguments raise (ValueError), before
    any event. Sequence numbers start at `first_sequence`. When given,
    `step_exceptions` receives the exception each failed step raised in
    this process (in-process runs re-raise it).

    Cancelling through `cancel` stops async steps, kills process steps and
    waits for thread steps (they see `context.is_cancelled`); the run ends
    RUN_CANCELED. Cancelling the caller instead abandons thread steps, emits
    RUN_CANCELED and propagates the cancellation.
    """
    definition = check_executor_options(
        run_id,
        executor=executor,
        executor_config=executor_config,
        max_concurrent=max_concurrent,
        pool_limits=pool_limits,
    )
    run = _Run(
        plan,
        emitter=RunLog(run_id, sink, next_sequence=first_sequence),
        step_configs=step_configs or {},
        resources=resources or {},
        io_manager=io_manager if io_manager is not None else InMemoryIOManager(),
        max_concurrent=max_concurrent,
        pool_limits=pool_limits or {},
        executor=definition,
        executor_config=executor_config or {},
        cancel=cancel if cancel is not None else CancelToken(),
        step_exceptions=step_exceptions,
    )
    return await run.execute()


def check_executor_options(
    run_id: str,
    *,
    executor: str,
    executor_config: Mapping[str, Any] | None = None,
    max_concurrent: int,
    pool_limits: Mapping[str, int] | None,
    plan: ExecutionPlan | None = None,
) -> ExecutorDefinition:
    """The registered executor, once it and the limits accepted these options.

    Raises ValueError naming the run and the option: an unknown executor
    (listing the registered ones), options it refuses, a negative
    max_concurrent, a pool limit below 1, and, given the plan, a step runner
    the executor picks for one of its steps that is not registered.
    execute_plan checks them itself before RUN_START; callers that must turn
    a refusal into a RUN_FAILURE check them first.
    """
    definition = resolve_executor(executor, executor_config or {}, run_id=run_id)
    if plan is not None:
        runner_for = definition.runner_for
        chosen = {runner_for(step.node.op) for step in plan.steps.values()}
        check_runner_names(definition, chosen, run_id=run_id)
    if max_concurrent < 0:
        raise ValueError(
            f"max_concurrent must be >= 0 (0: no limit), got {max_concurrent} for run {run_id!r}."
        )
    for pool, limit in (pool_limits or {}).items():
        if limit < 1:
            raise ValueError(
                f"The limit of pool {pool!r} must be >= 1, got {limit} for run {run_id!r}."
            )
    return definition


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
        executor: ExecutorDefinition,
        executor_config: Mapping[str, Any],
        cancel: CancelToken,
        step_exceptions: dict[str, BaseException] | None,
    ) -> None:
        self.plan = plan
        self.emitter = emitter
        self.emit = emitter.emit
        self.run_id = emitter.run_id
        self.first_sequence = emitter.next_sequence
        self.step_configs = step_configs
        self.resources = resources
        self.io = io_manager
        self.max_concurrent = max_concurrent or math.inf
        self.pool_limits = pool_limits
        self.executor_config = executor_config
        self.cancel = cancel
        self.canceling = False
        self.step_exceptions = step_exceptions
        self.scope = RunScope(self.run_id, io_manager, emitter, resources, step_configs)

        # The runner name of each step, chosen once; the runners themselves
        # are made when the run starts (a process pool is not free).
        self.runner_names, self.ops_by_runner = _choose_runners(plan, executor)
        check_runner_names(executor, set(self.ops_by_runner), run_id=self.run_id)
        self.runner_of: dict[str, StepRunner] = {}
        self.runners: list[StepRunner] = []

        self.unfinished_upstream = {key: len(step.upstream) for key, step in plan.steps.items()}
        self.results: dict[str, StepOutcome] = {}
        self.attempts: dict[str, int] = {}
        self.start_times: dict[str, float] = {}
        # Ready steps by pool (None: no pool), first come first served within a pool.
        self.ready: dict[str | None, deque[str]] = {None: deque()}
        self.running = 0
        self.pool_running: dict[str, int] = {}
        # Steps running right now and the runner calling each.
        self.in_flight: dict[str, StepRunner] = {}
        # Steps whose runner cannot be interrupted live in their own task
        # group: cancelling the run cancels the others, while these (threads)
        # are waited for. Only a cancellation from outside abandons them.
        self.uninterruptible_group: TaskGroup | None = None
        self.interruptible_group: TaskGroup | None = None
        self.retry_waits = 0
        self.all_done = anyio.Event()
        self.started_at: float | None = None

    # --- the run ----------------------------------------------------------

    async def execute(self) -> RunResult:
        capture.install()
        started = await self._start_runners()
        if isinstance(started, RunResult):
            return started
        self.started_at = self.emit("RUN_START").timestamp
        for report in started:
            self.emit("ENGINE_EVENT", None, report)
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
                self._stop_runners()
                await self._close_runners()
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
        await self._close_runners()
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

    async def _start_runners(self) -> list[EnginePayload] | RunResult:
        """Make the runners and start those that reach out first (a cluster), before RUN_START.

        Returns what the started runners report, or, when one cannot start,
        the FAILURE result of a run refused with that one sentence.
        """
        self._open_runners()
        reports: list[EnginePayload] = []
        try:
            for runner in self.runners:
                if isinstance(runner, StartableRunner):
                    report = await runner.start()
                    if report is not None:
                        reports.append(report)
        except BaseException as exc:
            await self._close_runners()
            if not isinstance(exc, RunnerUnavailableError):
                raise
            message = f"Run {self.run_id!r} could not start: {exc}"
            # The sentence says it all; the frames that raised it are the runtime's.
            info = msgspec.structs.replace(error_info(exc), traceback="")
            event = self.emit("RUN_FAILURE", None, RunFailurePayload(message=message, error=info))
            return RunResult(
                run_id=self.run_id,
                status=RunStatus.FAILURE,
                start_time=event.timestamp,
                end_time=event.timestamp,
                failure_message=message,
                failure_error=info,
                event_count=1,
            )
        return reports

    async def _run_steps(self) -> None:
        if self.cancel.cancelled:
            self._begin_canceling()
            return
        async with anyio.create_task_group() as waited_for:
            self.uninterruptible_group = waited_for
            await waited_for.start(self._host_interruptible_steps)
            for key, count in self.unfinished_upstream.items():
                if count == 0:
                    self._enqueue(key)
            self._dispatch()
            self._check_done()
            await self.all_done.wait()

    async def _host_interruptible_steps(self, *, task_status: TaskStatus[None]) -> None:
        async with anyio.create_task_group() as group:
            self.interruptible_group = group
            task_status.started()
            await self.all_done.wait()

    def _open_runners(self) -> None:
        """One runner per runner name the steps use, made for the ops it will call."""
        limit = 0 if math.isinf(self.max_concurrent) else int(self.max_concurrent)
        made: dict[str, StepRunner] = {}
        for name, ops in self.ops_by_runner.items():
            setup = RunnerSetup(
                run_id=self.run_id,
                max_concurrent=limit,
                ops=tuple(ops),
                options=self.executor_config,
            )
            made[name] = runner = step_runner_factory(name)(setup)
            self.runners.append(runner)
        self.runner_of = {key: made[name] for key, name in self.runner_names.items()}

    def _stop_runners(self) -> list[EnginePayload]:
        """Stop every call in flight that can be stopped; the runners' reports, in runner order."""
        keys_by_runner: dict[int, list[str]] = {}
        for key in sorted(self.in_flight):
            keys_by_runner.setdefault(id(self.in_flight[key]), []).append(key)
        reports = []
        for runner in self.runners:
            keys = keys_by_runner.get(id(runner))
            if keys:
                report = runner.stop(keys)
                if report is not None:
                    reports.append(report)
        return reports

    async def _close_runners(self) -> None:
        runners, self.runners = self.runners, []
        with anyio.CancelScope(shield=True):
            for runner in runners:
                await runner.aclose()

    def _check_done(self) -> None:
        # Nothing runs, nothing waits for a retry, and the last dispatch started nothing.
        if self.running == 0 and self.retry_waits == 0:
            self.all_done.set()

    async def _watch_cancel(self) -> None:
        await self.cancel.wait()
        if not self.all_done.is_set():
            self._begin_canceling()

    def _begin_canceling(self) -> None:
        if self.canceling:
            return
        self.canceling = True
        self.emit("RUN_CANCELING")
        if self.cancel.reason:
            self.emit(
                "ENGINE_EVENT",
                None,
                EnginePayload(message=self.cancel.reason, metadata={"cancel_reason": True}),
            )
        for report in self._stop_runners():
            self.emit("ENGINE_EVENT", None, report)
        if self.interruptible_group is not None:
            self.interruptible_group.cancel_scope.cancel()

    def _finish_run(self) -> RunResult:
        if self.canceling:
            self._skip_unfinished("the run was canceled")
            end = self.emit("RUN_CANCELED")
            status = RunStatus.CANCELED
            message = None
        else:
            failed = [key for key, r in self.results.items() if r.status == _FAILURE]
            if failed:
                message = f"Steps failed: {', '.join(failed)}."
                end = self.emit(
                    "RUN_FAILURE",
                    None,
                    RunFailurePayload(message=message, failed_steps=failed),
                )
                status = RunStatus.FAILURE
            else:
                end = self.emit("RUN_SUCCESS")
                status = RunStatus.SUCCESS
                message = None
        return RunResult(
            run_id=self.run_id,
            status=status,
            steps={key: self.results[key] for key in self.plan.steps},
            start_time=self.started_at,
            end_time=end.timestamp,
            failure_message=message,
            event_count=self.emitter.next_sequence - self.first_sequence,
        )

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
        if self.canceling or self.interruptible_group is None or self.uninterruptible_group is None:
            return
        interruptible = self.interruptible_group.start_soon
        waited_for = self.uninterruptible_group.start_soon
        runner_of = self.runner_of
        for pool, queue in self.ready.items():
            limit = self.pool_limits[pool] if pool is not None else 0
            while queue and self.running < self.max_concurrent:
                if pool is not None:
                    if self.pool_running[pool] >= limit:
                        break
                    self.pool_running[pool] += 1
                self.running += 1
                key = queue.popleft()
                (interruptible if runner_of[key].interruptible else waited_for)(self._run_step, key)

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
        event = self.emit("STEP_SKIPPED", key, StepSkippedPayload(reason=reason))
        self.results[key] = StepOutcome(
            step_key=key, status=_SKIPPED, end_time=event.timestamp, skip_reason=reason
        )

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
            # The outcome's times are its events' (as when folded from storage).
            self.start_times[key] = self.emit("STEP_START", key).timestamp
        else:
            self.emit(
                "STEP_RESTARTED", key, StepRetryPayload(retry_number=attempt, delay_seconds=0.0)
            )
        step_capture = capture.StepCapture(self.emitter, key)
        capture.current_step.set(step_capture)
        runner = self.runner_of[key]
        context = self._context(step, step_capture, attempt) if op.wants_context else None
        call = StepCall(self.scope, step, attempt, context)
        started = time.perf_counter()
        self.in_flight[key] = runner
        try:
            value = await runner.call(call)
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
            self._record_success(step, value, call, time.perf_counter() - started, attempt)
        finally:
            self.in_flight.pop(key, None)
            self._release(step)
            self._dispatch()
            self._check_done()

    def _context(
        self, step: PlannedStep, step_capture: capture.StepCapture, attempt: int
    ) -> StepContext:
        op = step.node.op
        key = step.node.key
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

    # --- step outcomes ----------------------------------------------------

    def _record_success(
        self,
        step: PlannedStep,
        value: Any,
        call: StepCall,
        duration: float,
        attempt: int,
    ) -> None:
        key = step.node.key
        emit = self.emit
        summary = call.output_summary
        emit(
            "STEP_OUTPUT",
            key,
            StepOutputPayload(value_repr=_value_repr(value), type_name=type(value).__qualname__)
            if summary is None
            else StepOutputPayload(value_repr=summary[0], type_name=summary[1]),
        )
        context = call.context
        metadata = (
            jsonable(context.output_metadata)
            if context is not None and context.output_metadata
            else {}
        )
        if call.output_metadata:
            metadata = {**metadata, **jsonable(call.output_metadata)}
        asset_key = step.node.op.asset_key
        if asset_key is not None:
            emit(
                "ASSET_MATERIALIZATION",
                key,
                AssetMaterializationPayload(asset_key=asset_key, metadata=metadata),
            )
        elif metadata:
            emit("ENGINE_EVENT", key, EnginePayload(message="Output metadata", metadata=metadata))
        end = emit("STEP_SUCCESS", key, StepSuccessPayload(duration_seconds=duration))
        self.results[key] = StepOutcome(
            step_key=key,
            status=_SUCCESS,
            start_time=self.start_times.get(key),
            end_time=end.timestamp,
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
        assert self.interruptible_group is not None
        self.retry_waits += 1
        self.interruptible_group.start_soon(self._retry_after, step, delay)

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
        end = self.emit("STEP_FAILURE", key, StepFailurePayload(error=error, retry_number=attempt))
        self.results[key] = StepOutcome(
            step_key=key,
            status=_FAILURE,
            start_time=self.start_times.get(key),
            end_time=end.timestamp,
            attempts=attempt + 1,
            error=error,
        )
        if (
            self.step_exceptions is not None
            and exception is not None
            and not isinstance(exception, RemoteStepError)
        ):
            self.step_exceptions[key] = exception
        self._skip_downstream(step)


def _choose_runners(
    plan: ExecutionPlan, executor: ExecutorDefinition
) -> tuple[dict[str, str], dict[str, list[OpDefinition]]]:
    """The runner name of each step, and the ops (one per step) each runner name will call.

    The executor is asked once per op: an op often serves many steps.
    """
    runner_for = executor.runner_for
    by_op: dict[int, tuple[str, list[OpDefinition]]] = {}
    ops_by_runner: dict[str, list[OpDefinition]] = {}
    names = {}
    for key, step in plan.steps.items():
        op = step.node.op
        chosen = by_op.get(id(op))
        if chosen is None:
            name = runner_for(op)
            chosen = by_op[id(op)] = (name, ops_by_runner.setdefault(name, []))
        chosen[1].append(op)
        names[key] = chosen[0]
    return names, ops_by_runner


def _error_of(exc: BaseException) -> ErrorInfo:
    return exc.error if isinstance(exc, RemoteStepError) else error_info(exc)


def _canceled_error(step_key: str, run_id: str) -> ErrorInfo:
    return error_info(
        StepCanceledError(f"Step {step_key!r} was stopped because run {run_id!r} was canceled.")
    )

"""Run a job or a set of assets in this process, for users' own tests: no subprocess, no storage."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from runtime.definitions.graph import ASSET_JOB_NAME
from runtime.errors import ExecutionError
from runtime.execution.executors import DEFAULT_EXECUTOR, executor_from_run_config
from runtime.execution.io_manager import InMemoryIOManager
from runtime.execution.job_run import plan_job
from runtime.execution.scheduler import execute_plan
from runtime.protocol.run_log import ListSink
from runtime.protocol.run_result import RunResult
from runtime.protocol.run_status import StepStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from runtime.definitions.graph import JobDefinition
    from runtime.execution.io_manager import IOManager
    from runtime.protocol.messages import RunEvent
    from runtime.protocol.run_result import StepOutcome


@dataclass(eq=False)
class ExecuteInProcessResult(RunResult):
    """What an in-process run did: a RunResult (status, steps) plus every event and the outputs.

    `step_exceptions` holds the exception each failed step raised, which
    `raise_on_error` re-raises.
    """

    job_name: str = ""
    all_events: list[RunEvent] = field(default_factory=list)
    io_manager: IOManager = field(default_factory=InMemoryIOManager)
    step_exceptions: dict[str, BaseException] = field(default_factory=dict, repr=False)

    @property
    def step_results(self) -> dict[str, StepOutcome]:
        """Each planned step's outcome, in plan order (the same as `steps`)."""
        return self.steps

    def output_for(self, step_key: str, output_name: str = "result") -> Any:
        """The value a step returned; raises ExecutionError if the step did not succeed in this run."""
        result = self.steps.get(step_key)
        if result is None:
            raise ExecutionError(
                f"Job {self.job_name!r} ran no step {step_key!r} in run {self.run_id!r}; "
                f"its steps were: {', '.join(self.steps)}."
            )
        if result.status != StepStatus.SUCCESS:
            raise ExecutionError(
                f"Step {step_key!r} of job {self.job_name!r} has no output: it ended {result.status}."
            )
        return self.io_manager.load(step_key, output_name)

    def asset_value(self, asset_key: str) -> Any:
        """The value an asset step materialized in this run (asset keys are step keys)."""
        return self.output_for(asset_key)

    def events_for(self, step_key: str) -> list[RunEvent]:
        """The events of one step, in order."""
        return [event for event in self.all_events if event.step_key == step_key]


def execute_job_in_process(
    job: JobDefinition,
    run_config: Mapping[str, Any] | None = None,
    resources: Mapping[str, Any] | None = None,
    raise_on_error: bool = True,
    *,
    step_selection: Iterable[str] | None = None,
    io_manager: IOManager | None = None,
    executor: str = DEFAULT_EXECUTOR,
    executor_config: Mapping[str, Any] | None = None,
    max_concurrent: int = 0,
    pool_limits: Mapping[str, int] | None = None,
    run_id: str | None = None,
) -> ExecuteInProcessResult:
    """Run `job` here and now and return its result.

    Raises RunConfigError for run config the job's steps do not accept,
    StepSelectionError for an unknown step, and, with raise_on_error, the
    exception of the first step that failed (or ExecutionError when only its
    description is known), ValueError for an unknown executor (a registered
    name; `executor_config` are its options), bad options, `max_concurrent`
    or pool limit. At most `max_concurrent` steps run at once (0: no limit)
    and at most `pool_limits[pool]` steps of an `@op(pool=...)`; a pool
    without a limit is unlimited and the run says so in an ENGINE_EVENT.
    Outputs stay in memory unless `io_manager` says otherwise. Called from
    inside a running event loop, the run happens on a fresh loop in a helper
    thread (blocking the caller until it ends).
    """
    plan, step_configs = plan_job(job, run_config or {}, step_selection=step_selection)
    executor, executor_config = executor_from_run_config(
        run_config or {}, executor, executor_config or {}, job_name=job.name
    )
    io = io_manager if io_manager is not None else InMemoryIOManager()
    sink = ListSink()
    the_run_id = run_id or str(uuid.uuid4())
    exceptions: dict[str, BaseException] = {}

    async def run() -> RunResult:
        return await execute_plan(
            plan,
            run_id=the_run_id,
            sink=sink,
            step_configs=step_configs,
            resources=resources,
            io_manager=io,
            max_concurrent=max_concurrent,
            pool_limits=pool_limits,
            executor=executor,
            executor_config=executor_config,
            step_exceptions=exceptions,
        )

    outcome: RunResult = _run_to_completion(run)
    result = ExecuteInProcessResult(
        **{f.name: getattr(outcome, f.name) for f in dataclasses.fields(RunResult)},
        job_name=job.name,
        all_events=sink.events,
        io_manager=io,
        step_exceptions=exceptions,
    )
    if raise_on_error and not result.success:
        _raise_first_failure(result)
    return result


def materialize(
    assets: Iterable[object],
    *,
    run_config: Mapping[str, Any] | None = None,
    resources: Mapping[str, Any] | None = None,
    selection: Iterable[str] | None = None,
    raise_on_error: bool = True,
    io_manager: IOManager | None = None,
    max_concurrent: int = 0,
    pool_limits: Mapping[str, int] | None = None,
) -> ExecuteInProcessResult:
    """Materialize `assets` (or the `selection` of their keys) here and now.

    Upstream assets outside the selection are loaded from the IO manager (an
    InMemoryIOManager with seeded `assets` values, for instance). Raises
    DefinitionError for an invalid set of assets or an unknown selected key,
    and what execute_job_in_process raises; `max_concurrent` and `pool_limits`
    limit steps as there.
    """
    from runtime.definitions.asset_graph import AssetGraph

    graph = AssetGraph(assets, where="materialize()")
    job = graph.build_job(ASSET_JOB_NAME, None if selection is None else list(selection))
    return execute_job_in_process(
        job,
        run_config=run_config,
        resources=resources,
        raise_on_error=raise_on_error,
        io_manager=io_manager,
        max_concurrent=max_concurrent,
        pool_limits=pool_limits,
    )


def _run_to_completion(run: Callable[[], Any]) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(run)
    # anyio.run cannot nest in a running loop: give the run a loop of its own.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = anyio.run(run)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="runtime-execute-in-process")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _raise_first_failure(result: ExecuteInProcessResult) -> None:
    for key, step in result.steps.items():
        if step.status != StepStatus.FAILURE:
            continue
        exception = result.step_exceptions.get(key)
        if exception is not None:
            raise exception
        error = step.error
        message = f"{error.type}: {error.message}" if error is not None else "unknown error"
        raise ExecutionError(f"Step {key!r} of job {result.job_name!r} failed: {message}")
    raise ExecutionError(f"Run {result.run_id!r} of job {result.job_name!r} ended {result.status}.")

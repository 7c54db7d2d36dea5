"""A run of a repository's job, from request to final event: validate, prepare, execute.

This is what the code server asks of the engine. Everything that can refuse a
run (an unknown job, run config or step selection, executor options, a
first_sequence below 1, reused steps with no stored outputs to read) is
checked while preparing, before RUN_START, so a refusal is one RUN_FAILURE
numbered by a RunLog, never a stream without a final event.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from runtime.definitions.config import resolve_run_config
from runtime.errors import ExecutionError, RunConfigError, StepSelectionError, UnknownJobError
from runtime.execution.executors import (
    DEFAULT_EXECUTOR,
    RunOutputs,
    executor_from_run_config,
    resolve_executor,
)
from runtime.execution.io_manager import (
    FilesystemIOManager,
    InMemoryIOManager,
    WriteBehindIOManager,
)
from runtime.execution.plan import ExecutionPlan
from runtime.execution.scheduler import check_executor_options, execute_plan
from runtime.protocol.error_info import error_info
from runtime.protocol.messages import RunFailurePayload
from runtime.protocol.run_log import RunLog
from runtime.protocol.run_result import RunResult
from runtime.protocol.run_status import RunStatus

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    import msgspec

    from runtime.definitions.graph import JobDefinition
    from runtime.definitions.repository import RepositoryDefinition
    from runtime.execution.cancel import CancelToken
    from runtime.execution.io_manager import IOManager
    from runtime.protocol.run_log import EventSink

ProblemKind = Literal["unknown_job", "run_config", "step_selection", "executor", "definition"]


@dataclass(frozen=True, slots=True)
class JobRunRequest:
    """One run of a repository's job, as the engine takes it."""

    run_id: str
    job_name: str
    run_config: Mapping[str, Any] = field(default_factory=dict)
    # Step keys to run; None runs the whole job.
    step_selection: list[str] | None = None
    # Re-execution: steps whose outputs are read from `parent_run_id`'s stored outputs.
    reused_steps: list[str] = field(default_factory=list)
    parent_run_id: str | None = None
    # Where outputs are kept for re-execution; None keeps them in memory only.
    storage_dir: str | None = None
    executor: str = DEFAULT_EXECUTOR
    executor_config: Mapping[str, Any] = field(default_factory=dict)
    max_concurrent: int = 0
    pool_limits: Mapping[str, int] = field(default_factory=dict)
    # The sequence number of the run's first event here (the host stored those before).
    first_sequence: int = 1


@dataclass(frozen=True, slots=True)
class RunProblem:
    """Why a run could not start: what kind of problem, and the exception that says so."""

    kind: ProblemKind
    error: BaseException


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """A run that may start: its plan, step configs, IO manager and checked executor options.

    `request.executor` and `request.executor_config` are the ones the run
    uses (its run config's `execution` choice, if any).
    """

    request: JobRunRequest
    job: JobDefinition
    plan: ExecutionPlan
    step_configs: Mapping[str, msgspec.Struct]
    io_manager: IOManager


def plan_job(
    job: JobDefinition,
    run_config: Mapping[str, Any],
    *,
    step_selection: Iterable[str] | None = None,
    reused_steps: Iterable[str] = (),
) -> tuple[ExecutionPlan, Mapping[str, msgspec.Struct]]:
    """The plan of a run of `job` and each step's validated config.

    Raises RunConfigError for run config the steps do not accept and
    StepSelectionError for unknown steps.
    """
    step_configs = resolve_run_config(job, run_config)
    plan = ExecutionPlan.build(job, step_selection=step_selection, reused_steps=reused_steps)
    return plan, step_configs


def validate_run(
    repository: RepositoryDefinition,
    job_name: str,
    run_config: Mapping[str, Any],
    step_selection: list[str] | None = None,
    *,
    executor: str | None = None,
    executor_config: Mapping[str, Any] | None = None,
    max_concurrent: int = 0,
    pool_limits: Mapping[str, int] | None = None,
) -> RunProblem | None:
    """Check job, run config, step selection and (when `executor` is given) the executor
    options without running anything; None when the run may start."""
    try:
        plan, _ = plan_job(repository.get_job(job_name), run_config, step_selection=step_selection)
    except UnknownJobError as exc:
        return RunProblem("unknown_job", exc)
    except RunConfigError as exc:
        return RunProblem("run_config", exc)
    except StepSelectionError as exc:
        return RunProblem("step_selection", exc)
    except Exception as exc:  # a lazy job that failed to build: user code
        return RunProblem("definition", exc)
    if executor is not None:
        try:
            chosen, options = executor_from_run_config(
                run_config, executor, executor_config or {}, job_name=job_name
            )
        except RunConfigError as exc:
            return RunProblem("run_config", exc)
        try:
            check_executor_options(
                f"<new run of {job_name}>",
                executor=chosen,
                executor_config=options,
                max_concurrent=max_concurrent,
                pool_limits=pool_limits,
                plan=plan,
            )
        except ValueError as exc:
            if "execution" in run_config:
                # The run config chose the executor or its options: its mistake.
                return RunProblem(
                    "run_config",
                    RunConfigError(f"Run config for job {job_name!r}: `$.execution`: {exc}"),
                )
            return RunProblem("executor", exc)
    return None


def prepare_run(repository: RepositoryDefinition, request: JobRunRequest) -> PreparedRun:
    """Everything a run needs before RUN_START, checked.

    Raises UnknownJobError, RunConfigError, StepSelectionError, ValueError
    (executor, its options, limits), ExecutionError (first_sequence, reused
    steps without storage), or what building a lazy job raises.
    """
    job = repository.get_job(request.job_name)
    plan, step_configs = plan_job(
        job,
        request.run_config,
        step_selection=request.step_selection,
        reused_steps=request.reused_steps,
    )
    executor, executor_config = executor_from_run_config(
        request.run_config, request.executor, request.executor_config, job_name=request.job_name
    )
    request = dataclasses.replace(request, executor=executor, executor_config=executor_config)
    check_executor_options(
        request.run_id,
        executor=request.executor,
        executor_config=request.executor_config,
        max_concurrent=request.max_concurrent,
        pool_limits=request.pool_limits,
        plan=plan,
    )
    if request.first_sequence < 1:
        raise ExecutionError(
            f"first_sequence must be >= 1, got {request.first_sequence} for run {request.run_id!r}."
        )
    return PreparedRun(
        request=request,
        job=job,
        plan=plan,
        step_configs=step_configs,
        io_manager=run_io_manager(request),
    )


def run_io_manager(request: JobRunRequest) -> IOManager:
    """The IO manager the run's executor makes (the dask executor's reach its workers); else
    memory for a run without storage, and memory plus files for re-execution otherwise.

    Raises ExecutionError when the run reuses steps' outputs it has no way to read,
    ValueError for executor storage that cannot be opened.
    """
    definition = resolve_executor(request.executor, request.executor_config, run_id=request.run_id)
    if definition.io_manager_for is not None:
        if request.reused_steps and request.parent_run_id is None:
            raise ExecutionError(
                f"Run {request.run_id!r} reuses the outputs of steps "
                f"{', '.join(request.reused_steps)} but names no parent_run_id to read them from."
            )
        io = definition.io_manager_for(
            RunOutputs(
                run_id=request.run_id,
                storage_dir=request.storage_dir,
                parent_run_id=request.parent_run_id,
                options=request.executor_config,
            )
        )
        if request.reused_steps and isinstance(io, InMemoryIOManager):
            raise ExecutionError(
                f"Run {request.run_id!r} reuses the outputs of steps "
                f"{', '.join(request.reused_steps)} but has no storage to read them from."
            )
        return io
    if request.reused_steps and (request.storage_dir is None or request.parent_run_id is None):
        missing = "storage_dir" if request.storage_dir is None else "parent_run_id"
        raise ExecutionError(
            f"Run {request.run_id!r} reuses the outputs of steps "
            f"{', '.join(request.reused_steps)} but names no {missing} to read them from."
        )
    if request.storage_dir is None:
        return InMemoryIOManager()
    files = FilesystemIOManager(
        request.storage_dir, request.run_id, parent_run_id=request.parent_run_id
    )
    return WriteBehindIOManager(files)


async def execute_run(
    repository: RepositoryDefinition,
    request: JobRunRequest,
    sink: EventSink,
    *,
    cancel: CancelToken | None = None,
) -> RunResult:
    """Prepare and execute a run, its events into `sink`, and return how it went.

    A run that cannot start emits one RUN_FAILURE saying why and returns a
    FAILURE result. An engine failure after RUN_START ends the run with
    RUN_FAILURE (or RUN_CANCELED) and raises.
    """
    try:
        prepared = prepare_run(repository, request)
    except Exception as exc:
        return refuse_run(request, sink, exc)
    chosen = prepared.request
    return await execute_plan(
        prepared.plan,
        run_id=request.run_id,
        sink=sink,
        step_configs=prepared.step_configs,
        resources=repository.resources,
        io_manager=prepared.io_manager,
        max_concurrent=request.max_concurrent,
        pool_limits=request.pool_limits,
        executor=chosen.executor,
        executor_config=chosen.executor_config,
        cancel=cancel,
        first_sequence=request.first_sequence,
    )


def refuse_run(request: JobRunRequest, sink: EventSink, exc: BaseException) -> RunResult:
    """End a run that cannot start with one RUN_FAILURE saying why; return its FAILURE result."""
    # A first_sequence below 1 is itself a reason to refuse; the refusal still numbers its event.
    log = RunLog(request.run_id, sink, next_sequence=max(request.first_sequence, 1))
    message = f"Run {request.run_id!r} of job {request.job_name!r} could not start: {exc}"
    info = error_info(exc)
    event = log.emit("RUN_FAILURE", None, RunFailurePayload(message=message, error=info))
    return RunResult(
        run_id=request.run_id,
        status=RunStatus.FAILURE,
        start_time=event.timestamp,
        end_time=event.timestamp,
        failure_message=message,
        failure_error=info,
        event_count=1,
    )

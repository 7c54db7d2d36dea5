"""RunManager: executes runs inside the code server and streams their events back.

Each run executes in the manager's task group, not in the RPC handler that
streams it: the handler only drains the run's event buffer, so a client that
goes away cancels the run instead of leaving half a task group behind. The
manager is an async context manager; leaving it cancels the runs still in
flight (the server waited for them first, up to its shutdown grace).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from runtime.errors import ExecutionError, RunConfigError, StepSelectionError, UnknownJobError
from runtime.protocol import messages as m

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from types import TracebackType

    import msgspec
    from anyio.abc import TaskGroup

    from runtime.definitions.graph import JobDefinition
    from runtime.definitions.repository import RepositoryDefinition
    from runtime.execution.events import EventBuffer
    from runtime.execution.executor import CancelToken
    from runtime.execution.io_manager import IOManager
    from runtime.execution.plan import ExecutionPlan

logger = logging.getLogger("runtime.server.runs")


@dataclass(eq=False)
class _ActiveRun:
    run_id: str
    token: CancelToken
    done: anyio.Event = field(default_factory=anyio.Event)


@dataclass(frozen=True, slots=True)
class _Prepared:
    job: JobDefinition
    plan: ExecutionPlan
    step_configs: dict[str, msgspec.Struct]


class RunManager:
    """Executes runs of one code location's repository; an async context manager.

    `execute` streams a run's events in batches, `cancel` asks a run to stop,
    `validate` checks a run could start. `runs_in_flight` counts runs that
    have not ended yet. Enter and leave it in the same task.
    """

    def __init__(self) -> None:
        self._runs: dict[str, _ActiveRun] = {}
        self._task_group: TaskGroup | None = None
        self._closed = False

    @property
    def runs_in_flight(self) -> int:
        return len(self._runs)

    async def __aenter__(self) -> RunManager:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel the runs still in flight and wait until each has ended. Safe to call twice."""
        if self._closed or self._task_group is None:
            self._closed = True
            return
        self._closed = True
        group, self._task_group = self._task_group, None
        group.cancel_scope.cancel()
        # Waits for every run to end (each emits RUN_CANCELED), cancelled or not.
        await group.__aexit__(None, None, None)

    # --- validate -----------------------------------------------------------

    async def validate(
        self, request: m.ValidateRunRequest, repository: RepositoryDefinition
    ) -> m.ValidateRunReply:
        """Check job, run config and step selection without running anything; problems are data."""
        from runtime.protocol.error_info import error_info

        try:
            self._prepare(repository, request.job_name, request.run_config, request.step_selection)
        except UnknownJobError as exc:
            return m.ValidateRunReply(error=error_info(exc), problem="unknown_job")
        except RunConfigError as exc:
            return m.ValidateRunReply(error=error_info(exc), problem="run_config")
        except StepSelectionError as exc:
            return m.ValidateRunReply(error=error_info(exc), problem="step_selection")
        except Exception as exc:  # a lazy job that failed to build: user code
            return m.ValidateRunReply(error=error_info(exc), problem="definition")
        return m.ValidateRunReply()

    # --- execute ------------------------------------------------------------

    async def execute(
        self, request: m.ExecuteRunRequest, repository: RepositoryDefinition
    ) -> AsyncIterator[m.EventBatch]:
        """Execute a run here and yield its events, in order, in batches, until its final event.

        A run that cannot start (unknown job, bad run config or step selection,
        bad executor options, reused steps with no stored outputs to read)
        yields one RUN_FAILURE saying why. If the consumer stops early, the run
        is canceled. Raises ExecutionError when a run with the same id is
        already executing, or when the manager is closed.
        """
        from runtime.execution.events import EventBuffer
        from runtime.execution.executor import CancelToken

        if self._task_group is None:
            raise ExecutionError(
                f"Run {request.run_id!r} cannot start: this code server is shutting down."
            )
        if request.run_id in self._runs:
            raise ExecutionError(
                f"Run {request.run_id!r} is already executing in this code server."
            )
        buffer = EventBuffer()
        active = _ActiveRun(request.run_id, CancelToken())
        self._runs[request.run_id] = active
        self._task_group.start_soon(self._run, request, repository, buffer, active)
        try:
            async for events in buffer.batches():
                yield m.EventBatch(events=events)
        finally:
            if not active.done.is_set():
                # Nobody listens any more: stop the work rather than run it blind.
                active.token.cancel()

    async def cancel(self, run_id: str) -> m.CancelRunReply:
        """Ask a run executing here to stop; found=False when it is not (or no longer) running."""
        active = self._runs.get(run_id)
        if active is None:
            return m.CancelRunReply(run_id=run_id, found=False)
        active.token.cancel()
        return m.CancelRunReply(run_id=run_id, found=True)

    async def _run(
        self,
        request: m.ExecuteRunRequest,
        repository: RepositoryDefinition,
        buffer: EventBuffer,
        active: _ActiveRun,
    ) -> None:
        from runtime.execution.executor import check_executor_options, execute_plan

        try:
            # Everything that can refuse the run happens before RUN_START, so a
            # refusal is one RUN_FAILURE with the real reason, never a stream
            # that ends without a final event.
            try:
                prepared = self._prepare(
                    repository,
                    request.job_name,
                    request.run_config,
                    request.step_selection,
                    request.reused_steps,
                )
                check_executor_options(
                    request.run_id,
                    executor=request.executor,
                    max_concurrent=request.max_concurrent,
                    pool_limits=request.pool_limits,
                )
                if request.first_sequence < 1:
                    raise ExecutionError(
                        f"first_sequence must be >= 1, got {request.first_sequence} "
                        f"for run {request.run_id!r}."
                    )
                io_manager = _io_manager(request)
            except Exception as exc:
                self._refuse(request, buffer, exc)
                return
            await execute_plan(
                prepared.plan,
                run_id=request.run_id,
                sink=buffer,
                step_configs=prepared.step_configs,
                resources=repository.resources,
                io_manager=io_manager,
                max_concurrent=request.max_concurrent,
                pool_limits=request.pool_limits,
                executor=request.executor,
                cancel=active.token,
                first_sequence=request.first_sequence,
            )
        except anyio.get_cancelled_exc_class():
            raise
        except Exception:
            # execute_plan already emitted the run's final event for an engine failure.
            logger.exception(
                "Run %s of job %r failed in the engine.", request.run_id, request.job_name
            )
        finally:
            active.done.set()
            self._runs.pop(request.run_id, None)
            buffer.close()

    def _prepare(
        self,
        repository: RepositoryDefinition,
        job_name: str,
        run_config: dict[str, object],
        step_selection: list[str] | None,
        reused_steps: list[str] | None = None,
    ) -> _Prepared:
        from runtime.definitions.config import resolve_run_config
        from runtime.execution.plan import ExecutionPlan

        job = repository.get_job(job_name)
        step_configs = resolve_run_config(job, run_config)
        plan = ExecutionPlan.build(
            job, step_selection=step_selection, reused_steps=reused_steps or ()
        )
        return _Prepared(job, plan, dict(step_configs))

    def _refuse(self, request: m.ExecuteRunRequest, buffer: EventBuffer, exc: Exception) -> None:
        """A run that cannot start ends with one RUN_FAILURE saying why."""
        from runtime.protocol.error_info import error_info
        from runtime.protocol.run_log import RunLog

        # A first_sequence below 1 is itself a reason to refuse; the refusal still numbers its event.
        log = RunLog(request.run_id, buffer, next_sequence=max(request.first_sequence, 1))
        log.emit(
            "RUN_FAILURE",
            None,
            m.RunFailurePayload(
                message=f"Run {request.run_id!r} of job {request.job_name!r} could not start: {exc}",
                error=error_info(exc),
            ),
        )


def _io_manager(request: m.ExecuteRunRequest) -> IOManager:
    """Memory for a run without storage; otherwise memory plus files for re-execution.

    Raises ExecutionError when the run reuses steps' outputs it has no way to read.
    """
    from runtime.execution.io_manager import (
        FilesystemIOManager,
        InMemoryIOManager,
        WriteBehindIOManager,
    )

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

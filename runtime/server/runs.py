"""CodeServerRuns: the runs executing in this code server, streamed back as event batches.

The engine (runtime.execution.job_run) validates, prepares and executes a
run; this module maps the wire's requests to it and streams what it emits.
Each run executes in this object's task group, not in the RPC handler that
streams it: the handler only drains the run's event buffer, so a client that
goes away cancels the run instead of leaving half a task group behind.
Leaving the `async with` cancels the runs still in flight (the server waited
for them first, up to its shutdown grace).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from runtime.errors import ExecutionError
from runtime.protocol import messages as m

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from types import TracebackType

    from anyio.abc import TaskGroup

    from runtime.definitions.repository import RepositoryDefinition
    from runtime.execution.cancel import CancelToken
    from runtime.execution.events import EventBuffer
    from runtime.execution.job_run import JobRunRequest

logger = logging.getLogger("runtime.server.runs")


@dataclass(eq=False)
class _ActiveRun:
    run_id: str
    token: CancelToken
    done: anyio.Event = field(default_factory=anyio.Event)


def job_run_request(request: m.ExecuteRunRequest) -> JobRunRequest:
    """The engine's form of a wire ExecuteRunRequest."""
    from runtime.execution.job_run import JobRunRequest

    return JobRunRequest(
        run_id=request.run_id,
        job_name=request.job_name,
        run_config=request.run_config,
        step_selection=request.step_selection,
        reused_steps=request.reused_steps,
        parent_run_id=request.parent_run_id,
        storage_dir=request.storage_dir,
        executor=request.executor,
        executor_config=request.executor_config,
        max_concurrent=request.max_concurrent,
        pool_limits=request.pool_limits,
        first_sequence=request.first_sequence,
    )


class CodeServerRuns:
    """Executes runs of one code location's repository; an async context manager.

    `execute` streams a run's events in batches, `cancel` asks a run to stop,
    `validate` checks a run could start. `runs_in_flight` counts runs that
    have not ended yet. Enter and leave it in the same task.
    """

    def __init__(self) -> None:
        self._runs: dict[str, _ActiveRun] = {}
        self._task_group: TaskGroup | None = None
        self._closed = False
        # Set when the server is shutting down: why, for the runs it then refuses.
        self._stopping: str | None = None

    @property
    def runs_in_flight(self) -> int:
        return len(self._runs)

    async def __aenter__(self) -> CodeServerRuns:
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

    async def validate(
        self, request: m.ValidateRunRequest, repository: RepositoryDefinition
    ) -> m.ValidateRunReply:
        """Check job, run config and step selection without running anything; problems are data."""
        from runtime.execution.job_run import validate_run
        from runtime.protocol.error_info import error_info

        problem = validate_run(
            repository,
            request.job_name,
            request.run_config,
            request.step_selection,
            executor=request.executor,
            executor_config=request.executor_config,
            max_concurrent=request.max_concurrent,
            pool_limits=request.pool_limits,
        )
        if problem is None:
            return m.ValidateRunReply()
        return m.ValidateRunReply(error=error_info(problem.error), problem=problem.kind)

    async def execute(
        self, request: m.ExecuteRunRequest, repository: RepositoryDefinition
    ) -> AsyncIterator[m.EventBatch]:
        """Execute a run here and yield its events, in order, in batches, until its final event.

        A run that cannot start yields one RUN_FAILURE saying why. If the
        consumer stops early, the run is canceled. Raises ExecutionError when
        a run with the same id is already executing, or when this is closed.
        """
        from runtime.execution.cancel import CancelToken
        from runtime.execution.events import EventBuffer

        if self._task_group is None:
            raise ExecutionError(
                f"Run {request.run_id!r} cannot start: this code server is shutting down."
            )
        if self._stopping is not None:
            yield _refusal(
                request, f"this code server is shutting down ({self._stopping}); launch it again"
            )
            return
        if request.run_id in self._runs:
            raise ExecutionError(
                f"Run {request.run_id!r} is already executing in this code server."
            )
        buffer = EventBuffer()
        active = _ActiveRun(request.run_id, CancelToken())
        self._runs[request.run_id] = active
        self._task_group.start_soon(self._run, job_run_request(request), repository, buffer, active)
        try:
            async for events in buffer.batches():
                yield m.EventBatch(events=events)
        finally:
            if not active.done.is_set():
                # Nobody listens any more: stop the work rather than run it blind.
                active.token.cancel()

    def stop_accepting(self, reason: str) -> None:
        """Refuse new runs from now on (each ends with one RUN_FAILURE naming `reason`)."""
        self._stopping = reason

    def cancel_all(self, reason: str) -> None:
        """Ask every run executing here to stop; each reports `reason` in an engine event."""
        for active in list(self._runs.values()):
            active.token.cancel(reason)

    async def cancel(self, run_id: str) -> m.CancelRunReply:
        """Ask a run executing here to stop; found=False when it is not (or no longer) running."""
        active = self._runs.get(run_id)
        if active is None:
            return m.CancelRunReply(run_id=run_id, found=False)
        active.token.cancel()
        return m.CancelRunReply(run_id=run_id, found=True)

    async def _run(
        self,
        request: JobRunRequest,
        repository: RepositoryDefinition,
        buffer: EventBuffer,
        active: _ActiveRun,
    ) -> None:
        from runtime.execution.job_run import execute_run

        try:
            await execute_run(repository, request, buffer, cancel=active.token)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception:
            # The engine already emitted the run's final event for its own failure.
            logger.exception(
                "Run %s of job %r failed in the engine.", request.run_id, request.job_name
            )
        finally:
            active.done.set()
            self._runs.pop(request.run_id, None)
            buffer.close()


def _refusal(request: m.ExecuteRunRequest, why: str) -> m.EventBatch:
    """The one RUN_FAILURE of a run this server will not start."""
    from runtime.protocol.run_log import ListSink, RunLog

    sink = ListSink()
    message = f"Run {request.run_id!r} of job {request.job_name!r} could not start: {why}."
    RunLog(request.run_id, sink, next_sequence=max(request.first_sequence, 1)).emit(
        "RUN_FAILURE", None, m.RunFailurePayload(message=message)
    )
    return m.EventBatch(events=sink.events)

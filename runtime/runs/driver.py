"""RunDriver: the host-side task that carries one run from STARTING to its end.

It sends the run to a code server, stores every streamed event through the
instance's batching writer, moves the run's status as the events say, and
only after the last event is durable marks the run finished. When the code
server dies mid-run it records why (exit code or signal) and fails the run.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import anyio
import msgspec

from runtime.protocol.error_info import error_info
from runtime.protocol.messages import EnginePayload, ErrorInfo, RunFailurePayload
from runtime.protocol.run_log import NO_PAYLOAD, RunLog
from runtime.protocol.run_status import END_EVENT_STATUS, RunStatus

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Collection
    from contextlib import AbstractAsyncContextManager

    from runtime.instance.instance import Instance
    from runtime.instance.records import RunRecord
    from runtime.protocol.messages import AnyPayload, EventType, ExecuteRunRequest, RunEvent
    from runtime.runs.launcher import ServerConnection
    from runtime.runs.queue import RunQueue

logger = logging.getLogger("runtime.runs")


# How long to wait for a dead server's exit status before describing it without one.
_EXIT_STATUS_WAIT = 2.0


class RunDriver:
    """Drives one run; `finished` is set once its final status and every event are stored."""

    def __init__(
        self,
        instance: Instance,
        record: RunRecord,
        request: ExecuteRunRequest,
        connect: Callable[[], AbstractAsyncContextManager[ServerConnection]],
        queue: RunQueue | None = None,
    ) -> None:
        self._instance = instance
        self._record = record
        self._request = request
        self._connect = connect
        self.run_id = record.run_id
        self.status = record.status
        self.finished = anyio.Event()
        # The host numbers the run's first events; the code server continues the log.
        self._log = RunLog(record.run_id, instance.event_writer, next_sequence=1)
        self._cancel_requested = anyio.Event()
        self._streaming = anyio.Event()
        self._connection: ServerConnection | None = None
        self._queue = queue
        # Set while the run waits for its turn in the run queue.
        self._queue_scope: anyio.CancelScope | None = None

    # --- public -------------------------------------------------------------

    @property
    def record(self) -> RunRecord:
        """The run's record as this driver last stored it."""
        return self._record

    async def cancel(self) -> None:
        """Request cancellation; the run's own events report how it ends."""
        if self.finished.is_set() or self._cancel_requested.is_set():
            return
        self._cancel_requested.set()
        if self._queue_scope is not None:
            self._queue_scope.cancel()
            return
        if self.status in (RunStatus.STARTING, RunStatus.STARTED):
            await self._set_status(RunStatus.CANCELING)

    async def run(self) -> None:
        """The task body: never raises for the run's own failures; they become events."""
        try:
            if self._queue is None:
                await self._run()
            else:
                await self._run_when_dequeued(self._queue)
        except anyio.get_cancelled_exc_class() as exc:
            with anyio.CancelScope(shield=True):
                await self._fail_unfinished(exc)
            raise
        except Exception as exc:
            # A bug or a storage failure: record it on the run, and keep it
            # from tearing down the other runs of the workspace.
            logger.exception("driving run %s failed", self.run_id)
            with anyio.CancelScope(shield=True):
                await self._fail_unfinished(exc)
        finally:
            self.finished.set()

    # --- the run ------------------------------------------------------------

    async def _run_when_dequeued(self, queue: RunQueue) -> None:
        with anyio.CancelScope() as waiting:
            self._queue_scope = waiting
            if self._cancel_requested.is_set():
                # Cancelled between launch and this task's first step.
                waiting.cancel()
            record = await queue.wait_turn(self.run_id)
        self._queue_scope = None
        if waiting.cancelled_caught:
            if await self._end_canceled_while_queued():
                return
        else:
            self._record, self.status = record, record.status
            if record.status.is_finished:
                return  # ended while queued (its creator was thought dead): nothing to drive
        await self._run()

    async def _end_canceled_while_queued(self) -> bool:
        """End a run cancelled before its turn came; False if the queue started it meanwhile."""
        from runtime.instance.records import RunStatusTransitionError

        try:
            # Out of the queue first, so no process dequeues it while it ends.
            await self._set_status(RunStatus.CANCELING, expected_from={RunStatus.NOT_STARTED})
        except RunStatusTransitionError:
            # It was dequeued at the same moment: it ends CANCELED before it starts.
            record = await self._instance.storage.get_run(self.run_id)
            if record is not None:
                self._record, self.status = record, record.status
            return record is not None and record.status.is_finished
        self._emit("RUN_CANCELED")
        await self._instance.event_writer.flush(self.run_id)
        await self._set_status(RunStatus.CANCELED)
        return True

    async def _run(self) -> None:
        self._emit("RUN_STARTING")
        await self._set_status(RunStatus.STARTING)
        if self._cancel_requested.is_set():
            await self._end_canceled_before_start()
            return
        ended: str | None = None
        failure: str | None = None
        async with AsyncExitStack() as stack:
            try:
                connection = await stack.enter_async_context(self._connect())
            except Exception as exc:  # no server for this run: a run worker that failed to load
                error = error_info(exc)
                await self._end_failed(f"The run could not start: {exc}", error)
                return
            self._connection = connection
            outcome: list[str | None] = []
            broken: list[Exception] = []

            async def consume() -> None:
                # Beside _forward_cancel, which must be able to reach the
                # server while the stream is open; whichever ends the stream
                # stops the other.
                try:
                    request = msgspec.structs.replace(
                        self._request, first_sequence=self._log.next_sequence
                    )
                    outcome.append(await self._consume(connection.client.execute_run(request)))
                except Exception as exc:  # the stream broke: the server died or went away
                    broken.append(exc)
                finally:
                    tg.cancel_scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(self._forward_cancel, connection)
                tg.start_soon(consume)
            if outcome:
                ended = outcome[0]
            else:
                failure = await self._describe_lost_server(
                    connection, broken[0] if broken else None
                )
        if ended is None:
            await self._end_failed(
                failure
                or f"{connection.description} ended the event stream before the run finished."
            )
            return
        await self._instance.event_writer.flush(self.run_id)
        await self._set_status(END_EVENT_STATUS[ended])

    async def _consume(self, stream: AsyncIterator[RunEvent]) -> str | None:
        forward = self._log.forward
        async for event in stream:
            forward(event)
            kind = event.event_type
            if kind == "RUN_START":
                self._streaming.set()
                if self.status == RunStatus.STARTING:
                    await self._set_status(RunStatus.STARTED)
            elif kind == "RUN_CANCELING":
                if self.status in (RunStatus.STARTING, RunStatus.STARTED):
                    await self._set_status(RunStatus.CANCELING)
            elif kind in END_EVENT_STATUS:
                return kind
        return None

    async def _forward_cancel(self, connection: ServerConnection) -> None:
        await self._cancel_requested.wait()
        # The server knows the run once it streamed RUN_START; asking earlier
        # could race the registration.
        await self._streaming.wait()
        try:
            await connection.client.cancel_run(self.run_id)
        except Exception as exc:
            logger.warning("could not forward cancellation of run %s: %s", self.run_id, exc)

    # --- endings ------------------------------------------------------------

    async def _end_canceled_before_start(self) -> None:
        self._emit("RUN_CANCELING")
        self._emit("RUN_CANCELED")
        await self._instance.event_writer.flush(self.run_id)
        await self._set_status(RunStatus.CANCELED)

    async def _end_failed(self, message: str, error: ErrorInfo | None = None) -> None:
        self._emit("ENGINE_EVENT", payload=EnginePayload(message=message, error=error))
        self._emit("RUN_FAILURE", payload=RunFailurePayload(message=message, error=error))
        await self._instance.event_writer.flush(self.run_id)
        await self._set_status(RunStatus.FAILURE, failure_reason=message)

    async def _fail_unfinished(self, exc: BaseException) -> None:
        """The driver itself was cancelled or crashed: leave the run finished and explained."""
        if self.status.is_finished:
            return
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            message = "The host stopped before the run finished (its workspace was closed)."
            error = None
        else:
            message = f"The host failed while driving the run: {type(exc).__name__}: {exc}"
            error = ErrorInfo(type=type(exc).__name__, message=str(exc))
        if self._connection is not None and self._streaming.is_set():
            # Best effort: the server (or its client) may be gone already.
            try:
                with anyio.move_on_after(2):
                    await self._connection.client.cancel_run(self.run_id)
            except Exception as cancel_error:
                logger.info(
                    "run %s: could not cancel it on the server: %s", self.run_id, cancel_error
                )
        try:
            await self._end_failed(message, error)
        except Exception:
            logger.exception("could not record the end of run %s", self.run_id)

    async def _describe_lost_server(
        self, connection: ServerConnection, exc: Exception | None
    ) -> str:
        process = connection.process
        if process is not None:
            with anyio.move_on_after(_EXIT_STATUS_WAIT):
                await process.exited.wait()
            if process.returncode is not None:
                return (
                    f"{connection.description} {process.exit_description()} while the run was "
                    f"in progress."
                )
        reason = f": {exc}" if exc is not None else " (the call was cut off)"
        return f"Lost contact with {connection.description} while the run was in progress{reason}"

    # --- helpers ------------------------------------------------------------

    def _emit(
        self,
        event_type: EventType,
        *,
        step_key: str | None = None,
        payload: AnyPayload = NO_PAYLOAD,
    ) -> RunEvent:
        return self._log.emit(event_type, step_key, payload)

    async def _set_status(
        self,
        status: RunStatus,
        *,
        failure_reason: str | None = None,
        expected_from: Collection[RunStatus] | None = None,
    ) -> None:
        record = await self._instance.update_run_status(
            self.run_id, status, failure_reason=failure_reason, expected_from=expected_from
        )
        self._record = record
        self.status = record.status

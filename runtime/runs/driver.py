"""RunDriver: the host-side task that carries one run from STARTING to its end.

It sends the run to a code server, stores every streamed event through the
instance's batching writer, moves the run's status as the events say, and
only after the last event is durable marks the run finished. When the code
server dies mid-run it records why (exit code or signal) and fails the run;
when the host itself fails (storage, a bug) the run fails saying so, never
blaming the code server. A run whose workspace closes under it ends CANCELED
with the reason.
"""

from __future__ import annotations

import logging
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
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
# Most of the loop's time one run's events may take before it yields; the clock
# is read every _CLOCK_EVERY events.
_SLICE_SECONDS = 0.002
_CLOCK_EVERY = 32

# Statuses in the order a run goes through them; a driver never moves its view back.
_PROGRESS = {
    RunStatus.NOT_STARTED: 0,
    RunStatus.STARTING: 1,
    RunStatus.STARTED: 2,
    RunStatus.CANCELING: 3,
    RunStatus.SUCCESS: 4,
    RunStatus.FAILURE: 4,
    RunStatus.CANCELED: 4,
}

WORKSPACE_CLOSED = "The run was canceled because its workspace closed before it finished."


class _StreamBroken(Exception):
    """Internal: reading the code server's event stream failed (not the host's handling of it)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


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
        # Why the run is being canceled, when the host decided it (its workspace closed).
        self._cancel_reason: str | None = None
        # Why, when the code server canceled it on its own (it was shutting down).
        self._server_cancel_reason: str | None = None

    # --- public -------------------------------------------------------------

    @property
    def record(self) -> RunRecord:
        """The run's record as this driver last stored it."""
        return self._record

    async def cancel(self, *, reason: str | None = None) -> None:
        """Request cancellation; the run's own events report how it ends.

        `reason`, when given, is stored as the run's reason if it ends CANCELED.
        """
        if reason is not None and self._cancel_reason is None:
            self._cancel_reason = reason
        if self.finished.is_set() or self._cancel_requested.is_set():
            return
        self._cancel_requested.set()
        if self._queue_scope is not None:
            self._queue_scope.cancel()
            return
        if self.status in (RunStatus.STARTING, RunStatus.STARTED):
            from runtime.instance.records import RunStatusTransitionError

            try:
                await self._set_status(
                    RunStatus.CANCELING, expected_from={RunStatus.STARTING, RunStatus.STARTED}
                )
            except RunStatusTransitionError:
                # The run moved on meanwhile: the server's RUN_CANCELING (or the
                # run's end) got there first, and says all there is to say.
                pass

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
        await self._set_status(RunStatus.CANCELED, failure_reason=self._cancel_reason)
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
            failed_here: list[Exception] = []

            async def consume() -> None:
                # Beside _forward_cancel, which must be able to reach the
                # server while the stream is open; whichever ends the stream
                # stops the other.
                try:
                    request = msgspec.structs.replace(
                        self._request, first_sequence=self._log.next_sequence
                    )
                    outcome.append(await self._consume(connection.client.execute_run(request)))
                except _StreamBroken as exc:  # the server died or went away
                    broken.append(exc.cause)
                except Exception as exc:  # the host's own part failed (storage, a bug)
                    failed_here.append(exc)
                finally:
                    tg.cancel_scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(self._forward_cancel, connection)
                tg.start_soon(consume)
            if failed_here:
                # Not the code server's doing: run() records it as the host's failure.
                raise failed_here[0]
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
        status = END_EVENT_STATUS[ended]
        reason = None
        if status is RunStatus.CANCELED:
            reason = self._cancel_reason or self._server_cancel_reason
        await self._set_status(status, failure_reason=reason)

    async def _consume(self, stream: AsyncIterator[RunEvent]) -> str | None:
        """Store the stream's events in order until the run's end event; return its type.

        Raises _StreamBroken when reading the stream fails; anything else it
        raises is the host's own failure.
        """
        forward = self._log.forward
        events = aiter(stream)
        # A batch that piled up while the host was busy arrives at once; the
        # stream yields its events without a pause, so the loop is given a
        # turn every _SLICE_SECONDS of work through it.
        clock = time.perf_counter
        slice_ends = clock() + _SLICE_SECONDS
        counted = 0
        while True:
            try:
                event = await anext(events)
            except StopAsyncIteration:
                return None
            except Exception as exc:
                raise _StreamBroken(exc) from exc
            forward(event)
            counted += 1
            if counted == _CLOCK_EVERY:
                counted = 0
                if clock() > slice_ends:
                    await anyio.lowlevel.checkpoint()
                    slice_ends = clock() + _SLICE_SECONDS
            kind = event.event_type
            if kind == "RUN_START":
                self._streaming.set()
                if self.status == RunStatus.STARTING:
                    await self._set_status(RunStatus.STARTED)
            elif kind == "RUN_CANCELING":
                if self.status in (RunStatus.STARTING, RunStatus.STARTED):
                    await self._set_status(RunStatus.CANCELING)
            elif kind == "ENGINE_EVENT":
                payload = event.payload
                if isinstance(payload, EnginePayload) and payload.metadata.get("cancel_reason"):
                    self._server_cancel_reason = payload.message
            elif kind in END_EVENT_STATUS:
                return kind

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
        await self._set_status(RunStatus.CANCELED, failure_reason=self._cancel_reason)

    async def _end_canceled(self, message: str) -> None:
        """End a run the host stops without its server's word (its workspace closed)."""
        if self.status is not RunStatus.CANCELING:
            self._emit("RUN_CANCELING")
        self._emit("ENGINE_EVENT", payload=EnginePayload(message=message))
        self._emit("RUN_CANCELED")
        await self._instance.event_writer.flush(self.run_id)
        if self.status is not RunStatus.CANCELING:
            await self._set_status(RunStatus.CANCELING)
        await self._set_status(RunStatus.CANCELED, failure_reason=message)

    async def _end_failed(self, message: str, error: ErrorInfo | None = None) -> None:
        self._emit("ENGINE_EVENT", payload=EnginePayload(message=message, error=error))
        self._emit("RUN_FAILURE", payload=RunFailurePayload(message=message, error=error))
        await self._instance.event_writer.flush(self.run_id)
        await self._set_status(RunStatus.FAILURE, failure_reason=message)

    async def _fail_unfinished(self, exc: BaseException) -> None:
        """The driver itself was cancelled or crashed: leave the run finished and explained."""
        if self.status.is_finished:
            return
        canceled = isinstance(exc, anyio.get_cancelled_exc_class())
        if canceled:
            message = self._cancel_reason or WORKSPACE_CLOSED
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
            if canceled:
                await self._end_canceled(message)
            else:
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
        # Two of this driver's moves may race (a cancel and the server's events):
        # keep the furthest, so its view never goes back to CANCELING from the end.
        if _PROGRESS[record.status] >= _PROGRESS[self.status]:
            self._record = record
            self.status = record.status

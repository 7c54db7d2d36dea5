"""EventWriter: many small event appends, few storage transactions.

A run emits an event every few microseconds at full speed; one transaction
per event would cap a run at a few thousand events per second. `append` only
puts the event in a buffer and wakes a background task, which hands everything
buffered so far to `RunStorage.store_events` as one batch. While a batch is
being written, new events pile up for the next one, so batches grow exactly
when the load does. `flush` waits until what was appended is durable.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import anyio

from runtime.errors import StorageError, StorageUnavailableError
from runtime.protocol.messages import RUN_END_EVENTS

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType
    from typing import Self

    from anyio.abc import TaskGroup, TaskStatus

    from runtime.instance.storage.base import RunStorage
    from runtime.protocol.messages import RunEvent

# A backlog is written in transactions of at most this many events, so one
# transaction never holds the write lock for long.
MAX_BATCH = 5000

# Pause between attempts at a batch while the storage's server is away (the
# storage itself retries for its reconnect window before it says so).
_UNAVAILABLE_PAUSE = 0.5

# How many ended runs keep their last stored sequence for wait_for_new_events.
_ENDED_RUNS_KEPT = 10_000


class EventWriter:
    """Buffers appended events and stores them in batches, in append order.

    Use as `async with EventWriter(storage) as writer:`; leaving it stores what is
    left. `append` never blocks and never fails for storage reasons: a batch that
    cannot be stored is retried run by run, and the runs whose events still fail
    make `flush(run_id)` (and `flush()`) raise StorageError. A batch refused with
    StorageUnavailableError (the server is away) is kept and tried again, with the
    events behind it waiting in order, until it is stored or the writer closes.

    The background task lives in a task group that `async with` enters, so the
    block's body runs inside that group, like any anyio task group: leave the
    block from the task that entered it. An exception the body raises comes out
    as itself, not wrapped in an ExceptionGroup.
    """

    def __init__(self, storage: RunStorage, *, max_batch: int = MAX_BATCH) -> None:
        self._storage = storage
        self._max_batch = max_batch
        self._buffer: list[RunEvent] = []
        self._appended = 0  # events ever appended
        self._done = 0  # events ever handled, stored or failed
        self._wakeup = anyio.Event()
        self._progress = anyio.Event()
        self._stopped = anyio.Event()
        self._task_group: TaskGroup | None = None
        self._running = False
        self._closed = False
        self._failed_runs: dict[str, BaseException] = {}
        # Set when the writer closed while the storage was unavailable: what is left fails at once.
        self._gave_up: StorageUnavailableError | None = None
        self._last_stored: dict[str, int] = {}
        self._ended_runs: OrderedDict[str, int] = OrderedDict()
        self._run_signals: dict[str, anyio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._thread_lock = threading.Lock()
        self._appended_by_threads = 0  # events put from other threads; only they write it
        self.batches_written = 0

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        try:
            await self._task_group.start(self._write_batches)
        except BaseException:
            self._task_group.cancel_scope.cancel()
            await self._task_group.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
        if self._task_group is not None:
            task_group, self._task_group = self._task_group, None
            # The background task has returned (aclose waited for it). The body's
            # own exception is not the task group's: handed to it, anyio would wrap
            # it in an ExceptionGroup; it propagates as it is once we return.
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Refuse new events, store the buffered ones, stop the background task. Safe to call twice.

        Storage failures of the last batches are not raised here; `flush` reports them.
        """
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        with anyio.CancelScope(shield=True):
            if self._running:
                await self._stopped.wait()  # it drains the buffer, then returns
            # Left over only if the task never started or was cancelled from outside.
            await self._drain()
        for signal in self._run_signals.values():
            signal.set()  # waiters see the writer closed

    # --- writing ----------------------------------------------------------------

    def append(self, event: RunEvent) -> None:
        """Queue one event for storage; raises StorageError if the writer is closed."""
        if self._closed:
            raise StorageError(
                f"Cannot store event {event.event_type} of run {event.run_id}: the event writer is closed."
            )
        self._buffer.append(event)
        self._appended += 1
        self._wakeup.set()

    def put(self, event: RunEvent) -> None:
        """Queue one event for storage, from the event loop or any other thread: the
        writer is a `runtime.protocol.run_log.EventSink`, so a RunLog can number into it.

        Raises StorageError if the writer is closed.
        """
        if self._loop is None or threading.get_ident() == self._loop_thread:
            self.append(event)
            return
        if self._closed:
            self.append(event)  # raises the closed error
        # Into the buffer at once, under the RunLog's lock, so the buffer keeps the
        # sequence order; list.append is atomic. Only the wake-up must go through the loop.
        with self._thread_lock:
            self._buffer.append(event)
            self._appended_by_threads += 1
        self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._wakeup.set()

    def append_many(self, events: Iterable[RunEvent]) -> None:
        """Queue events for storage, in order; raises StorageError if the writer is closed."""
        for event in events:
            self.append(event)

    async def store(self, events: Iterable[RunEvent]) -> None:
        """Append events and wait until they are stored; raises StorageError if they were not."""
        self.append_many(events)
        await self.flush()

    async def flush(self, run_id: str | None = None) -> None:
        """Wait until every event appended so far has been handled.

        Raises StorageError if events of `run_id` (of any run, when None) could not
        be stored since the writer opened.
        """
        target = self._appended + self._appended_by_threads
        while self._done < target:
            if not self._running and not self._closed:
                raise StorageError(
                    "The event writer is not running: use `async with EventWriter(storage)`."
                )
            progress = self._progress
            await progress.wait()
        failed = (
            self._failed_runs
            if run_id is None
            else {key: error for key, error in self._failed_runs.items() if key == run_id}
        )
        if failed:
            first_run, first_error = next(iter(failed.items()))
            raise StorageError(
                f"Events of {len(failed)} run(s) could not be stored, "
                f"first of run {first_run}: {first_error}"
            ) from first_error

    async def _write_batches(self, *, task_status: TaskStatus[None]) -> None:
        self._running = True
        task_status.started()
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup = anyio.Event()
                # A batch handed to the storage is written whatever happens; shielding keeps
                # the bookkeeping in step with it, so cancellation only lands between batches.
                with anyio.CancelScope(shield=True):
                    await self._drain()
                if self._closed:
                    return
        finally:
            self._running = False
            self._signal_progress()
            self._stopped.set()

    async def _drain(self) -> None:
        while self._buffer:
            batch = self._buffer[: self._max_batch]
            # len(batch), not max_batch: a thread may have put an event in between.
            del self._buffer[: len(batch)]
            await self._store(batch)
            self._done += len(batch)
            self.batches_written += 1
            self._signal_progress()

    def _signal_progress(self) -> None:
        progress, self._progress = self._progress, anyio.Event()
        progress.set()

    async def _store(self, batch: list[RunEvent]) -> None:
        while self._gave_up is None:
            try:
                await self._storage.store_events(batch)
            except StorageUnavailableError as exc:
                # The server is away and the storage retried for its whole window;
                # nothing of the batch was stored. Keep it, and the order: later
                # events wait in the buffer behind it. Only a closing writer gives up.
                if self._closed:
                    self._gave_up = exc
                    break
                await anyio.sleep(_UNAVAILABLE_PAUSE)
                continue
            except Exception:
                await self._store_run_by_run(batch)
            else:
                self._stored(batch)
            return
        gave_up = self._gave_up
        assert gave_up is not None
        for event in batch:  # the writer closed while the server was away
            self._failed_runs.setdefault(event.run_id, gave_up)

    async def _store_run_by_run(self, batch: list[RunEvent]) -> None:
        # Isolate the run whose events broke the batch, so other runs keep their events.
        by_run: dict[str, list[RunEvent]] = {}
        for event in batch:
            by_run.setdefault(event.run_id, []).append(event)
        for run_events in by_run.values():
            try:
                await self._storage.store_events(run_events)
            except Exception as exc:
                self._failed_runs[run_events[0].run_id] = exc
            else:
                self._stored(run_events)

    def _stored(self, events: list[RunEvent]) -> None:
        for event in events:
            self._last_stored[event.run_id] = event.sequence
            if event.event_type in RUN_END_EVENTS:
                # Keep memory bounded in a long-lived host: ended runs move to a capped LRU.
                self._ended_runs[event.run_id] = self._last_stored.pop(event.run_id)
                if len(self._ended_runs) > _ENDED_RUNS_KEPT:
                    self._ended_runs.popitem(last=False)
            signal = self._run_signals.pop(event.run_id, None)
            if signal is not None:
                signal.set()

    # --- following ---------------------------------------------------------------

    async def wait_for_new_events(self, run_id: str, after_sequence: int = 0) -> None:
        """Return once this writer has stored an event of `run_id` with a sequence above
        `after_sequence`.

        In-process only: events stored by another process wake nobody, so followers
        should wait with a timeout and read the storage either way. Raises
        StorageError when the writer closes.
        """
        while True:
            last = self._last_stored.get(run_id)
            if last is None:
                last = self._ended_runs.get(run_id, 0)
            if last > after_sequence:
                return
            if self._closed:
                raise StorageError(
                    f"The event writer closed while waiting for events of run {run_id}."
                )
            signal = self._run_signals.get(run_id)
            if signal is None:
                signal = self._run_signals[run_id] = anyio.Event()
            await signal.wait()

"""RunHandle: follow a run's events, wait for its result, cancel it."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from runtime.errors import RunNotFoundError, RuntimeFrameworkError
from runtime.protocol.messages import RUN_END_EVENTS
from runtime.protocol.run_result import fold_events

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime.instance.instance import Instance
    from runtime.instance.records import RunRecord, RunStatus
    from runtime.protocol.messages import RunEvent
    from runtime.protocol.run_result import RunResult
    from runtime.runs.driver import RunDriver
    from runtime.runs.followers import Followers

# A follower also re-reads storage at this interval, so it sees events that
# another process (a run worker, another host) stores.
_POLL_SECONDS = 0.5
_PAGE = 5000
# A result folded from more events than this is folded in a worker thread.
_FOLD_ON_LOOP = 2000


class RunHandle:
    """A launched (or stored) run.

    `events()` replays what is stored and then follows live events until the
    run's final event, or until the workspace that gave out the handle closes;
    any number of readers may follow one run. `wait()` returns a RunResult
    once the run finished and every event is stored.
    """

    def __init__(
        self,
        instance: Instance,
        record: RunRecord,
        *,
        driver: RunDriver | None = None,
        followers: Followers | None = None,
    ):
        self._instance = instance
        self._record = record
        self._driver = driver
        self._followers = followers
        self.run_id = record.run_id

    def __repr__(self) -> str:
        return f"<RunHandle {self.run_id} {self.job_name} {self.status}>"

    @property
    def job_name(self) -> str:
        return self._record.job_name

    @property
    def location_name(self) -> str | None:
        return self._record.location_name

    @property
    def status(self) -> RunStatus:
        """The run's status as this host last knew it (see `refresh()` for storage's view)."""
        if self._driver is not None:
            return self._driver.status
        return self._record.status

    @property
    def record(self) -> RunRecord:
        return self._record

    async def refresh(self) -> RunRecord:
        """Re-read the run's record from storage. Raises RunNotFoundError if it is gone."""
        record = await self._instance.storage.get_run(self.run_id)
        if record is None:
            raise RunNotFoundError(f"Run {self.run_id} is not in the instance's storage.")
        self._record = record
        return record

    async def events(self, *, after_sequence: int = 0) -> AsyncIterator[RunEvent]:
        """Every event of the run after `after_sequence`, in order, ending after the final one.

        When the workspace that gave out this handle closes, it ends after
        what is stored by then, even if the run goes on elsewhere.
        """
        followers = self._followers
        if followers is None:
            async for event in self._follow(after_sequence):
                yield event
            return
        with followers.following():
            async for event in self._follow(after_sequence):
                yield event

    async def _follow(self, after_sequence: int) -> AsyncIterator[RunEvent]:
        followers = self._followers
        last = after_sequence
        while True:
            closing = followers is not None and followers.closed
            try:
                batch = await self._instance.storage.get_events(
                    self.run_id, after_sequence=last, limit=_PAGE
                )
            except RuntimeFrameworkError:
                if closing:
                    return  # the instance closed with the workspace: nothing more to read
                raise
            for event in batch:
                last = event.sequence
                yield event
                if event.event_type in RUN_END_EVENTS:
                    return
            if len(batch) == _PAGE:
                continue
            if closing or await self._finished_without_end_event(last):
                return
            if followers is None:
                await self._instance.wait_for_new_events(self.run_id, last, _POLL_SECONDS)
            else:
                with followers.waiting():
                    await self._instance.wait_for_new_events(self.run_id, last, _POLL_SECONDS)

    async def _finished_without_end_event(self, last: int) -> bool:
        # A run whose host died before storing its end event is still finished
        # once storage says so (and the orphan sweep appends the end events).
        if self._driver is not None:
            return False
        record = await self.refresh()
        if not record.is_finished:
            return False
        return await self._instance.storage.last_sequence(self.run_id) <= last

    async def wait(self) -> RunResult:
        """Wait until the run finished and all its events are stored; return its result.

        Bound it with `anyio.fail_after(...)` (TimeoutError) if need be.
        """
        if self._driver is not None:
            await self._driver.finished.wait()
            await self.refresh()
        else:
            # Driven by another process: only storage can tell us it ended.
            while not (await self.refresh()).is_finished:  # noqa: ASYNC110
                await anyio.sleep(_POLL_SECONDS)
        events = await self._instance.storage.get_events(self.run_id)
        status = str(self._record.status)
        if len(events) < _FOLD_ON_LOOP:
            return fold_events(self.run_id, events, status=status)
        # Folding tens of thousands of events takes tens of milliseconds: not on the loop.
        return await anyio.to_thread.run_sync(
            functools.partial(fold_events, self.run_id, events, status=status)
        )

    async def cancel(self) -> None:
        """Ask the run to stop. Returns at once; `wait()` tells when it ended (CANCELED,
        or SUCCESS/FAILURE if it finished first). Cancelling a finished run does nothing.

        A run driven by another process (another host, a run launched elsewhere on
        this instance) gets a cancel request in the instance, which its host acts on
        within a second. Raises RunNotFoundError if the run is not stored.
        """
        if self._driver is not None:
            await self._driver.cancel()
            return
        self._record = await self._instance.request_cancel(self.run_id)

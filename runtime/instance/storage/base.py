"""RunStorage: the Protocol every run and event storage implements.

SQLite is the implementation today (runtime.instance.storage.sqlite); a
PostgreSQL one can follow by implementing the same methods. Every method is
async and must never block the event loop. A storage is an async context
manager over `aclose()`, and closing it twice is harmless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from types import TracebackType
    from typing import Self

    from runtime.instance.records import RunFilter, RunHost, RunRecord, RunStatus, StoredEvent
    from runtime.protocol.messages import RunEvent


class RunStorage(Protocol):
    """Stores runs and their events.

    Errors: `RunNotFoundError` for an unknown run id, `RunStatusTransitionError`
    for a status change that is not allowed, `StorageError` when the database
    fails or an invariant would break (a duplicate run id, a gap in a run's
    event sequence).
    """

    async def add_run(self, record: RunRecord) -> None:
        """Store a new run; raises StorageError if a run with that id exists."""
        ...

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run with that id, or None."""
        ...

    async def get_runs(
        self,
        filter: RunFilter | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> list[RunRecord]:
        """Runs matching `filter`, newest first. `cursor` is the run id of the last
        run of the previous page: only runs created before it are returned."""
        ...

    async def count_runs(self, filter: RunFilter | None = None) -> int:
        """How many runs match `filter`."""
        ...

    async def update_run_status(
        self,
        run_id: str,
        status: RunStatus,
        *,
        expected_from: Collection[RunStatus] | None = None,
        failure_reason: str | None = None,
        timestamp: float | None = None,
        host: RunHost | None = None,
    ) -> RunRecord:
        """Atomically move a run to `status` and return the updated record.

        Raises RunNotFoundError for an unknown run and RunStatusTransitionError when
        the change is not allowed or the run is not in one of `expected_from`.
        Entering STARTING (or STARTED, when no host is recorded yet) records `host`,
        by default the calling process, so a later instance can tell whether the
        run's host died. `started_at` is set on STARTED, `ended_at` on a finished status.
        """
        ...

    async def store_events(self, events: Sequence[RunEvent]) -> None:
        """Store a batch of events in one transaction; durable when this returns.

        Each run's sequence numbers must continue what is stored without a gap or
        a duplicate, else StorageError and nothing of the batch is stored.
        """
        ...

    async def get_events(
        self, run_id: str, *, after_sequence: int = 0, limit: int | None = None
    ) -> list[RunEvent]:
        """The run's events with a sequence above `after_sequence`, in order."""
        ...

    async def get_events_after(
        self,
        storage_cursor: int = 0,
        *,
        run_ids: Collection[str] | None = None,
        limit: int = 1000,
    ) -> list[StoredEvent]:
        """Events of any run (or of `run_ids`) stored after `storage_cursor`, in storage
        order; pass the last `storage_id` back to read on."""
        ...

    async def last_sequence(self, run_id: str) -> int:
        """The highest stored sequence of the run's events, 0 when it has none."""
        ...

    async def mark_orphaned_runs_failed(
        self,
        orphan_reason: Callable[[RunRecord], str | None],
        *,
        timestamp: float | None = None,
    ) -> list[str]:
        """Mark FAILURE every STARTING, STARTED or CANCELING run, and every NOT_STARTED
        run with a recorded host, for which `orphan_reason(run)` gives a reason, append
        an ENGINE_EVENT and a RUN_FAILURE event saying it so the run's event stream
        ends, and return their run ids.

        `orphan_reason` runs off the event loop and may do blocking checks.
        """
        ...

    async def aclose(self) -> None:
        """Release the storage; pending calls finish first. Safe to call twice."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

"""RunStorage: the Protocol every storage backend implements.

A backend stores and reads; it makes no decisions. The rules (which status
changes are allowed, what a transition stamps, which runs a dead host left
behind, how a run's events are numbered, which queued run starts next) live in
`Instance`, built on these primitives. Each primitive is atomic on its own;
`update_run` is a compare-and-set on the run's status, so rules that read and
then write stay correct with several processes on one storage.

Every method is async and must never block the event loop. A storage is an
async context manager over `open()` and `aclose()`; closing twice is harmless.
Backends register in `runtime.instance.storage.registry`, and every one must
pass the conformance suite in `tests/instance/test_storage_conformance.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from types import TracebackType
    from typing import Self

    from runtime.instance.daemon_records import (
        DaemonHeartbeat,
        InstigatorKind,
        InstigatorState,
        Lease,
        TickRecord,
        TickStatus,
    )
    from runtime.instance.records import (
        CancelRequest,
        RunChanges,
        RunFilter,
        RunRecord,
        RunStatus,
        StoredEvent,
    )
    from runtime.protocol.messages import RunEvent


class RunStorage(Protocol):
    """Stores runs, their events, cancel requests, leases and the daemon's state.

    Errors: `RunNotFoundError` for an unknown run id where a run must exist,
    `StorageError` when the database fails or an integrity constraint would
    break (a duplicate run id, a run's event sequence number stored twice).
    """

    # --- what it is -----------------------------------------------------------

    def describe(self) -> str:
        """One line: which storage and where (a path, or a URL with the password hidden)."""
        ...

    @property
    def schema_version(self) -> int:
        """The schema version of the open database (0 before it is opened)."""
        ...

    # --- life -----------------------------------------------------------------

    async def open(self) -> None:
        """Connect and bring the schema up to date; raises StorageError on failure."""
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

    # --- runs -------------------------------------------------------------------

    async def add_run(self, record: RunRecord) -> None:
        """Store a new run as it is; raises StorageError if a run with that id exists."""
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
        """Runs matching `filter`, most recently added first. `cursor` is the run id of
        the last run of the previous page: only runs added before it are returned.
        Raises RunNotFoundError when `cursor` names no run."""
        ...

    async def count_runs(self, filter: RunFilter | None = None) -> int:
        """How many runs match `filter`."""
        ...

    async def update_run(
        self,
        run_id: str,
        changes: RunChanges,
        *,
        expected_statuses: Collection[RunStatus],
    ) -> RunRecord | None:
        """Apply `changes` (its fields that are not None) to the run, atomically, only if
        its stored status is one of `expected_statuses`; return the updated record, or
        None when the status was another. Raises RunNotFoundError for an unknown run."""
        ...

    # --- events -----------------------------------------------------------------

    async def store_events(self, events: Sequence[RunEvent]) -> None:
        """Store a batch of events in one transaction, in order; durable when this returns.

        Raises StorageError, storing nothing of the batch, when a (run id,
        sequence) pair is already stored or appears twice in the batch. The
        numbering itself is the RunLog's job, not the storage's.
        """
        ...

    async def get_events(
        self, run_id: str, *, after_sequence: int = 0, limit: int | None = None
    ) -> list[RunEvent]:
        """The run's events with a sequence above `after_sequence`, in sequence order."""
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

    async def wait_for_events(self, run_id: str, after_sequence: int, timeout: float) -> None:  # noqa: ASYNC109
        """Return once an event of `run_id` with a sequence above `after_sequence` is
        stored, by this or any other process, or after `timeout` seconds (no error)."""
        ...

    # --- cancel requests -------------------------------------------------------------

    async def add_cancel_request(self, run_id: str, requested_at: float, requested_by: str) -> None:
        """Record that someone asked for the run to stop; the first request is kept."""
        ...

    async def get_cancel_requests(self, run_ids: Collection[str]) -> list[CancelRequest]:
        """The cancel requests of those runs (runs without one are left out)."""
        ...

    # --- leases ------------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, ttl: float, now: float) -> bool:
        """Take the lease `name` for `ttl` seconds from `now` if it is free, expired or
        already `holder`'s (which renews it); False when another holder has it."""
        ...

    async def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up if `holder` has it; True if it did."""
        ...

    async def get_lease(self, name: str) -> Lease | None:
        """The lease as stored (possibly expired), or None if nobody ever took it or it was released."""
        ...

    # --- schedules and sensors ---------------------------------------------------------

    async def set_instigator_state(self, state: InstigatorState) -> None:
        """Store a schedule's or sensor's state, replacing what was stored under its id."""
        ...

    async def get_instigator_state(self, instigator_id: str) -> InstigatorState | None:
        """The stored state of one instigator, or None."""
        ...

    async def get_instigator_states(
        self, *, kind: InstigatorKind | None = None, location: str | None = None
    ) -> list[InstigatorState]:
        """Every stored instigator state (of one kind, of one location), by id."""
        ...

    async def add_run_keys(self, instigator_id: str, run_keys: Collection[str]) -> set[str]:
        """Record run keys as used by the instigator, atomically; return those that were new.

        Two callers adding the same key at once: exactly one gets it back.
        """
        ...

    async def add_tick(self, tick: TickRecord) -> None:
        """Store a new tick; raises StorageError if one with that id exists."""
        ...

    async def update_tick(self, tick: TickRecord) -> None:
        """Replace a stored tick (by its id); raises StorageError if there is none."""
        ...

    async def get_ticks(
        self,
        instigator_id: str,
        *,
        limit: int | None = None,
        statuses: Collection[TickStatus] | None = None,
    ) -> list[TickRecord]:
        """The instigator's ticks (with one of `statuses`), newest tick time first."""
        ...

    # --- daemon heartbeats -----------------------------------------------------------

    async def add_daemon_heartbeat(self, heartbeat: DaemonHeartbeat) -> None:
        """Store a daemon's heartbeat, replacing its previous one."""
        ...

    async def get_daemon_heartbeats(self) -> list[DaemonHeartbeat]:
        """The latest heartbeat of every daemon, by daemon id."""
        ...

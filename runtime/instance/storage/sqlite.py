"""SqliteRunStorage: everything an instance stores, in one SQLite file, in WAL mode, off the event loop.

All writes go through one connection on one dedicated thread, so they are
serialized without locks in Python and never block the loop; reads use a second,
query-only connection on its own thread, and WAL lets them proceed while a write
is in progress. Every statement that must be atomic runs inside one function
on the writer thread, between BEGIN IMMEDIATE and COMMIT, so the primitives
stay atomic with several processes on one file. The SQL lives in
`sqlite_runs` (runs, events) and `sqlite_daemon` (cancel requests, leases,
schedule and sensor state).

`synchronous=NORMAL` in WAL mode: a committed transaction survives the process
crashing (the case that matters for a host that dies mid-run); only a power
loss can take back the last few commits. The database and its WAL and SHM
files are created readable by their owner only.
"""

from __future__ import annotations

import functools
import sqlite3
from typing import TYPE_CHECKING, TypeVar

import anyio

from runtime.errors import StorageError
from runtime.instance.storage import sqlite_daemon as daemon_sql
from runtime.instance.storage import sqlite_runs as run_sql
from runtime.instance.storage.sqlite_schema import MIGRATIONS, Migration, current_version, migrate
from runtime.instance.storage.sqlite_thread import SqliteThread
from runtime.resource import OpenedResource

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from pathlib import Path

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

DATABASE_FILE_NAME = "runtime.db"

# How often wait_for_events looks for events another process stored. One
# indexed MAX() on the reader thread, about 20 us.
POLL_SECONDS = 0.1

T = TypeVar("T")


class SqliteRunStorage(OpenedResource):
    """The SQLite RunStorage: `async with SqliteRunStorage(base_dir) as storage: ...`.

    The database is `base_dir/runtime.db`, created (with its directory, mode
    0700) and migrated to the current schema on open. Raises StorageError when
    the file cannot be opened or holds a newer schema than this version of
    runtime knows.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        migrations: Sequence[Migration] = MIGRATIONS,
        poll_interval: float = POLL_SECONDS,
    ) -> None:
        self.path = base_dir / DATABASE_FILE_NAME
        self._migrations = tuple(migrations)
        self._poll_interval = poll_interval
        self._writer = SqliteThread(self.path, name=f"runtime-sqlite-writer:{self.path}")
        self._reader = SqliteThread(
            self.path, name=f"runtime-sqlite-reader:{self.path}", query_only=True
        )
        self._opened = False
        self._schema_version = 0
        self.applied_migrations: list[int] = []
        """The schema versions this storage applied when it opened (empty: it was up to date)."""

    def describe(self) -> str:
        """`SQLite database at <path>`."""
        return f"SQLite database at {self.path}"

    @property
    def schema_version(self) -> int:
        """The schema version of the open database (0 before it is opened)."""
        return self._schema_version

    # --- life --------------------------------------------------------------------

    async def open(self) -> None:
        """Create and migrate the database and start its threads; raises StorageError on failure."""
        if self._opened:
            return
        self._opened = True
        try:
            await self._writer.start()
            self._schema_version = await self._writer.call(self._prepare)
            await self._reader.start()
        except BaseException:
            await self.aclose()
            raise

    def _prepare(self, connection: sqlite3.Connection) -> int:
        self.applied_migrations = migrate(connection, self._migrations, path=str(self.path))
        return current_version(connection)

    async def aclose(self) -> None:
        """Finish pending work and close both connections. Safe to call twice."""
        await self._reader.aclose()
        await self._writer.aclose()

    # --- runs ----------------------------------------------------------------------

    async def add_run(self, record: RunRecord) -> None:
        """Store a new run; raises StorageError if a run with that id exists."""
        await self._write(functools.partial(run_sql.insert_run, record=record, path=self.path))

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run with that id, or None."""
        return await self._read(functools.partial(run_sql.select_run, run_id=run_id))

    async def get_runs(
        self,
        filter: RunFilter | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> list[RunRecord]:
        """Runs matching `filter`, most recently added first; `cursor` is the last run id
        of the previous page. Raises RunNotFoundError when `cursor` names no run."""
        return await self._read(
            functools.partial(
                run_sql.select_runs, filter=filter, limit=limit, cursor=cursor, path=self.path
            )
        )

    async def count_runs(self, filter: RunFilter | None = None) -> int:
        """How many runs match `filter`."""
        return await self._read(functools.partial(run_sql.count_runs, filter=filter))

    async def update_run(
        self,
        run_id: str,
        changes: RunChanges,
        *,
        expected_statuses: Collection[RunStatus],
    ) -> RunRecord | None:
        """Compare-and-set on the run's status; see RunStorage.update_run."""
        return await self._write(
            functools.partial(
                run_sql.update_run,
                run_id=run_id,
                changes=changes,
                expected_statuses=frozenset(expected_statuses),
                path=self.path,
            )
        )

    # --- events ----------------------------------------------------------------------

    async def store_events(self, events: Sequence[RunEvent]) -> None:
        """Store a batch of events in one transaction; see RunStorage.store_events."""
        if not events:
            return
        await self._write(functools.partial(run_sql.insert_events, events=events, path=self.path))

    async def get_events(
        self, run_id: str, *, after_sequence: int = 0, limit: int | None = None
    ) -> list[RunEvent]:
        """The run's events with a sequence above `after_sequence`, in order."""
        return await self._read(
            functools.partial(
                run_sql.select_events, run_id=run_id, after_sequence=after_sequence, limit=limit
            )
        )

    async def get_events_after(
        self,
        storage_cursor: int = 0,
        *,
        run_ids: Collection[str] | None = None,
        limit: int = 1000,
    ) -> list[StoredEvent]:
        """Events stored after `storage_cursor`, of any run or of `run_ids`, in storage order."""
        return await self._read(
            functools.partial(
                run_sql.select_events_after,
                storage_cursor=storage_cursor,
                run_ids=run_ids,
                limit=limit,
            )
        )

    async def last_sequence(self, run_id: str) -> int:
        """The highest stored sequence of the run's events, 0 when it has none."""
        return await self._read(functools.partial(run_sql.last_sequence, run_id=run_id))

    async def wait_for_events(self, run_id: str, after_sequence: int, timeout: float) -> None:  # noqa: ASYNC109
        """Return once the run has an event past `after_sequence`, or at the timeout.

        SQLite cannot notify another process, so this polls the run's last
        sequence every `poll_interval` seconds (an index lookup).
        """
        with anyio.move_on_after(timeout):
            while await self.last_sequence(run_id) <= after_sequence:  # noqa: ASYNC110
                await anyio.sleep(self._poll_interval)

    # --- cancel requests -----------------------------------------------------------------

    async def add_cancel_request(self, run_id: str, requested_at: float, requested_by: str) -> None:
        """Record a cancel request; the first one for a run is kept."""
        await self._write(
            functools.partial(
                daemon_sql.add_cancel_request,
                run_id=run_id,
                requested_at=requested_at,
                requested_by=requested_by,
            )
        )

    async def get_cancel_requests(self, run_ids: Collection[str]) -> list[CancelRequest]:
        """The cancel requests of those runs."""
        return await self._read(functools.partial(daemon_sql.get_cancel_requests, run_ids=run_ids))

    # --- leases ----------------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, ttl: float, now: float) -> bool:
        """Take or renew the lease; see RunStorage.acquire_lease."""
        return await self._write(
            functools.partial(daemon_sql.acquire_lease, name=name, holder=holder, ttl=ttl, now=now)
        )

    async def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up if `holder` has it; True if it did."""
        return await self._write(
            functools.partial(daemon_sql.release_lease, name=name, holder=holder)
        )

    async def get_lease(self, name: str) -> Lease | None:
        """The lease as stored, or None."""
        return await self._read(functools.partial(daemon_sql.get_lease, name=name))

    # --- schedules and sensors ---------------------------------------------------------------

    async def set_instigator_state(self, state: InstigatorState) -> None:
        """Store an instigator's state, replacing the previous one."""
        await self._write(functools.partial(daemon_sql.set_instigator_state, state=state))

    async def get_instigator_state(self, instigator_id: str) -> InstigatorState | None:
        """One instigator's state, or None."""
        return await self._read(
            functools.partial(daemon_sql.get_instigator_state, instigator_id=instigator_id)
        )

    async def get_instigator_states(
        self, *, kind: InstigatorKind | None = None, location: str | None = None
    ) -> list[InstigatorState]:
        """Every stored instigator state (of one kind, of one location), by id."""
        return await self._read(
            functools.partial(daemon_sql.get_instigator_states, kind=kind, location=location)
        )

    async def add_run_keys(self, instigator_id: str, run_keys: Collection[str]) -> set[str]:
        """Record run keys, atomically; return those that were new."""
        return await self._write(
            functools.partial(
                daemon_sql.add_run_keys, instigator_id=instigator_id, run_keys=list(run_keys)
            )
        )

    async def add_tick(self, tick: TickRecord) -> None:
        """Store a new tick; raises StorageError if one with that id exists."""
        await self._write(functools.partial(daemon_sql.add_tick, tick=tick, path=self.path))

    async def update_tick(self, tick: TickRecord) -> None:
        """Replace a stored tick; raises StorageError if there is none."""
        await self._write(functools.partial(daemon_sql.update_tick, tick=tick, path=self.path))

    async def get_ticks(
        self,
        instigator_id: str,
        *,
        limit: int | None = None,
        statuses: Collection[TickStatus] | None = None,
    ) -> list[TickRecord]:
        """The instigator's ticks, newest tick time first."""
        return await self._read(
            functools.partial(
                daemon_sql.get_ticks,
                instigator_id=instigator_id,
                limit=limit,
                statuses=None if statuses is None else list(statuses),
            )
        )

    # --- daemon heartbeats -----------------------------------------------------------------

    async def add_daemon_heartbeat(self, heartbeat: DaemonHeartbeat) -> None:
        """Store a daemon's heartbeat, replacing its previous one."""
        await self._write(functools.partial(daemon_sql.add_daemon_heartbeat, heartbeat=heartbeat))

    async def get_daemon_heartbeats(self) -> list[DaemonHeartbeat]:
        """Every daemon's latest heartbeat, by daemon id."""
        return await self._read(daemon_sql.get_daemon_heartbeats)

    # --- plumbing ----------------------------------------------------------------------------

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._writer.call(fn)
        except sqlite3.Error as exc:
            raise StorageError(
                f"Writing to the SQLite database {self.path} failed: {exc}."
            ) from exc

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._reader.call(fn)
        except sqlite3.Error as exc:
            raise StorageError(f"Reading the SQLite database {self.path} failed: {exc}.") from exc

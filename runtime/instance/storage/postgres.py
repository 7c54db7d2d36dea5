"""PostgresRunStorage: everything an instance stores, in one PostgreSQL schema, shared by every host.

psycopg 3's async API over a small pool of connections (postgres_pool), so
nothing blocks the event loop. The SQL lives in `postgres_runs` (runs,
events) and `postgres_daemon` (cancel requests, leases, schedule and sensor
state); the schema and its migrations in `postgres_schema`; the LISTEN side of
`wait_for_events` in `postgres_listener`.

Losing the server: reads are repeated and writes committed exactly once
across dropped connections and restarts, for `reconnect_timeout` seconds
(postgres_transactions). Event batches take a transaction-level advisory
lock, so storage ids grow in commit order across hosts.
"""

from __future__ import annotations

import functools
import hashlib
from typing import TYPE_CHECKING, TypeVar

import anyio
import psycopg

from runtime.errors import StorageError
from runtime.instance.storage import postgres_daemon as daemon_sql
from runtime.instance.storage import postgres_runs as run_sql
from runtime.instance.storage.postgres_kind import connect_params, display_url
from runtime.instance.storage.postgres_listener import EventNotifications
from runtime.instance.storage.postgres_pool import ConnectionPool, one_line
from runtime.instance.storage.postgres_schema import (
    MIGRATIONS,
    current_schema,
    current_version,
    migrate,
)
from runtime.instance.storage.postgres_transactions import BEGIN, BEGIN_EVENTS, Transactions
from runtime.resource import OpenedResource

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection, Sequence

    from anyio.abc import TaskGroup

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
    from runtime.instance.storage.postgres_kind import PostgresStorageConfig
    from runtime.instance.storage.postgres_runs import Connection
    from runtime.instance.storage.sqlite_schema import Migration
    from runtime.protocol.messages import RunEvent

T = TypeVar("T")

# pg_current_xact_id and pg_xact_status, DROP DATABASE ... WITH (FORCE) in the tests.
MIN_SERVER_VERSION = 130000


def channel_name(schema: str) -> str:
    """The NOTIFY channel of the instance in `schema` (at most 63 bytes, PostgreSQL's limit)."""
    name = f"runtime_events:{schema}"
    if len(name.encode()) > 63:
        name = f"runtime_events:{hashlib.sha256(schema.encode()).hexdigest()[:32]}"
    return name


class PostgresRunStorage(OpenedResource):
    """The PostgreSQL RunStorage: `async with PostgresRunStorage(config) as storage: ...`.

    Opening connects, creates or migrates the schema (one host at a time) and
    starts listening for other hosts' events. Raises StorageError (naming the
    URL, password hidden) when the server cannot be reached, refuses the
    credentials or lacks the database, or when the schema is newer than this
    version of runtime knows.
    """

    def __init__(
        self,
        config: PostgresStorageConfig,
        *,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        self._config = config
        self._where = display_url(config)
        self._migrations = tuple(migrations)
        conninfo, params = connect_params(config)
        self._pool = ConnectionPool(conninfo, params, size=config.pool_size, where=self._where)
        self._transactions = Transactions(
            self._pool, where=self._where, reconnect_timeout=config.reconnect_timeout
        )
        self._notifications: EventNotifications | None = None
        self._task_group: TaskGroup | None = None
        self._opened = False
        self._closed = False
        self._schema_version = 0
        self._channel = channel_name("public")
        self.schema: str | None = None
        """The PostgreSQL schema holding the tables, once open."""
        self.applied_migrations: list[int] = []
        """The schema versions this storage applied when it opened (empty: it was up to date)."""

    def describe(self) -> str:
        """`PostgreSQL database at postgresql://user:***@host:port/db`."""
        return f"PostgreSQL database at {self._where}"

    @property
    def schema_version(self) -> int:
        """The schema version of the open database (0 before it is opened)."""
        return self._schema_version

    @property
    def notifications(self) -> EventNotifications | None:
        """The LISTEN side of wait_for_events, once open."""
        return self._notifications

    # --- life --------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, migrate the schema and start listening; raises StorageError on failure.

        Leave it (aclose) from the task that opened it: the listener's task
        group lives between the two.
        """
        if self._opened:
            return
        self._opened = True
        try:
            await self._prepare()
            self._notifications = EventNotifications(
                self._pool.connect, self._channel, where=self._where
            )
            self._task_group = anyio.create_task_group()
            await self._task_group.__aenter__()
            try:
                await self._task_group.start(self._notifications.run)
            except psycopg.Error as exc:
                raise StorageError(
                    f"Cannot listen on the PostgreSQL database {self._where}: {one_line(exc)}."
                ) from exc
        except BaseException:
            await self.aclose()
            raise

    async def _prepare(self) -> None:
        try:
            conn = await self._pool.connect()
        except psycopg.Error as exc:
            raise StorageError(
                f"Cannot connect to the PostgreSQL database {self._where}: {one_line(exc)}."
            ) from exc
        try:
            version = conn.info.server_version
            if version < MIN_SERVER_VERSION:
                raise StorageError(
                    f"The PostgreSQL server of {self._where} runs version {version // 10000}; "
                    "runtime needs PostgreSQL 13 or newer."
                )
            self.schema = await current_schema(conn, where=self._where)
            self._channel = channel_name(self.schema)
            self.applied_migrations = await migrate(conn, self._migrations, where=self._where)
            self._schema_version = await current_version(conn)
        except psycopg.Error as exc:
            raise StorageError(
                f"Cannot prepare the PostgreSQL database {self._where}: {one_line(exc)}."
            ) from exc
        finally:
            with anyio.CancelScope(shield=True):
                await conn.close()

    async def aclose(self) -> None:
        """Let calls in progress finish, close every connection, stop listening. Safe twice."""
        if self._closed:
            return
        self._closed = True
        if self._notifications is not None:
            self._notifications.wake_all()  # waiters look again and find the storage closed
        await self._pool.aclose()  # shielded: calls in progress finish
        if self._task_group is not None:
            # Outside any other cancel scope: a task group is left in the scope it was entered in.
            task_group, self._task_group = self._task_group, None
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(None, None, None)

    # --- runs ----------------------------------------------------------------------

    async def add_run(self, record: RunRecord) -> None:
        """Store a new run; raises StorageError if a run with that id exists."""
        await self._write(functools.partial(run_sql.insert_run, record=record, where_=self._where))

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
                run_sql.select_runs, filter=filter, limit=limit, cursor=cursor, where_=self._where
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
                where_=self._where,
            )
        )

    # --- events ----------------------------------------------------------------------

    async def store_events(self, events: Sequence[RunEvent]) -> None:
        """Store a batch of events in one transaction and notify their followers on every
        host; see RunStorage.store_events."""
        if not events:
            return
        await self._write(
            functools.partial(
                run_sql.insert_events, events=events, channel=self._channel, where_=self._where
            ),
            begin=BEGIN_EVENTS,
        )

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

        Woken by the NOTIFY of the transaction that stored it, on whichever host.
        """
        self._check_open()
        notifications = self._notifications
        assert notifications is not None
        with anyio.move_on_after(timeout):
            while True:
                # Watch first, then look: an event stored in between still wakes us.
                with notifications.watch(run_id, after_sequence) as waiter:
                    # Followers are cancelled all the time (Instance.wait_for_new_events
                    # races this against the local writer); a query cancelled mid-flight
                    # costs its connection, so let the look finish, within bounds.
                    last = 0
                    with anyio.CancelScope(shield=True, deadline=anyio.current_time() + 5):
                        last = await self.last_sequence(run_id)
                    if last > after_sequence:
                        return
                    await waiter.woken.wait()
                    if waiter.notified:
                        return
                # Woken to look again: the listener reconnected, or the storage closed.

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
        if not run_ids:
            return []
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
        await self._write(functools.partial(daemon_sql.add_tick, tick=tick, where_=self._where))

    async def update_tick(self, tick: TickRecord) -> None:
        """Replace a stored tick; raises StorageError if there is none."""
        await self._write(functools.partial(daemon_sql.update_tick, tick=tick, where_=self._where))

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

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"The PostgreSQL storage at {self._where} is closed.")
        if not self._opened or self._notifications is None:
            raise StorageError(f"The PostgreSQL storage at {self._where} is not open yet.")

    async def _read(self, fn: Callable[[Connection], Awaitable[T]]) -> T:
        self._check_open()
        return await self._transactions.read(fn)

    async def _write(self, fn: Callable[[Connection], Awaitable[T]], *, begin: str = BEGIN) -> T:
        self._check_open()
        return await self._transactions.write(fn, begin=begin)

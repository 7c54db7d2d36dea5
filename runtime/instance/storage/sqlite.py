"""SqliteRunStorage: runs and events in one SQLite file, in WAL mode, off the event loop.

All writes go through one connection on one dedicated thread, so they are
serialized without locks in Python and never block the loop; reads use a second,
query-only connection on its own thread, and WAL lets them proceed while a write
is in progress. Every statement that must be atomic runs inside one function
on the writer thread, between BEGIN IMMEDIATE and COMMIT.

`synchronous=NORMAL` in WAL mode: a committed transaction survives the process
crashing (the case that matters for a host that dies mid-run); only a power
loss can take back the last few commits.

Measured on the project's 2-core machine through EventWriter: about 140,000
events/s written by one run (0.6 us per append on the loop), 80,000 events/s
with 50 runs writing at once, 170,000 events/s read back with `get_events`
and 245,000 events/s with `get_events_after`.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from runtime.errors import RunNotFoundError, StorageError
from runtime.instance.host import current_host
from runtime.instance.records import (
    FINISHED_STATUSES,
    IN_FLIGHT_STATUSES,
    RunFilter,
    RunHost,
    RunRecord,
    RunStatus,
    StoredEvent,
    check_transition,
)
from runtime.instance.storage.sqlite_schema import MIGRATIONS, Migration, migrate
from runtime.instance.storage.sqlite_thread import SqliteThread
from runtime.protocol.messages import EnginePayload, RunEvent, RunFailurePayload

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from pathlib import Path
    from types import TracebackType
    from typing import Self

DATABASE_FILE_NAME = "runtime.db"

T = TypeVar("T")

_RUN_COLUMNS = (
    "run_id, job_name, location_name, status, run_config, tags, step_selection, parent_run_id, "
    "root_run_id, created_at, started_at, ended_at, updated_at, failure_reason, host"
)

_encoder = msgspec.msgpack.Encoder()
_decode_config = msgspec.msgpack.Decoder(dict[str, Any]).decode
_decode_tags = msgspec.msgpack.Decoder(dict[str, str]).decode
_decode_selection = msgspec.msgpack.Decoder(list[str]).decode
_decode_host = msgspec.msgpack.Decoder(RunHost).decode
_decode_event = msgspec.msgpack.Decoder(RunEvent).decode


def _record_from_row(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        run_id=row[0],
        job_name=row[1],
        location_name=row[2],
        status=RunStatus(row[3]),
        run_config=_decode_config(row[4]),
        tags=_decode_tags(row[5]),
        step_selection=None if row[6] is None else _decode_selection(row[6]),
        parent_run_id=row[7],
        root_run_id=row[8],
        created_at=row[9],
        started_at=row[10],
        ended_at=row[11],
        updated_at=row[12],
        failure_reason=row[13],
        host=None if row[14] is None else _decode_host(row[14]),
    )


def _where(filter: RunFilter | None) -> tuple[str, list[Any]]:
    """A WHERE clause (possibly empty) and its parameters for a run filter."""
    if filter is None:
        return "", []
    clauses: list[str] = []
    params: list[Any] = []
    if filter.run_ids is not None:
        clauses.append(f"run_id IN ({', '.join('?' * len(filter.run_ids))})")
        params += filter.run_ids
    if filter.job_name is not None:
        clauses.append("job_name = ?")
        params.append(filter.job_name)
    if filter.location_name is not None:
        clauses.append("location_name = ?")
        params.append(filter.location_name)
    if filter.statuses is not None:
        clauses.append(f"status IN ({', '.join('?' * len(filter.statuses))})")
        params += [str(status) for status in filter.statuses]
    for key, value in filter.tags.items():
        clauses.append("run_id IN (SELECT run_id FROM run_tags WHERE key = ? AND value = ?)")
        params += [key, value]
    if filter.created_after is not None:
        clauses.append("created_at > ?")
        params.append(filter.created_after)
    if filter.created_before is not None:
        clauses.append("created_at < ?")
        params.append(filter.created_before)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _select_run(connection: sqlite3.Connection, run_id: str) -> RunRecord | None:
    row = connection.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    return None if row is None else _record_from_row(row)


def _last_sequence(connection: sqlite3.Connection, run_id: str) -> int:
    (last,) = connection.execute(
        "SELECT COALESCE(MAX(sequence), 0) FROM events WHERE run_id = ?", (run_id,)
    ).fetchone()
    return int(last)


def _insert_events(connection: sqlite3.Connection, events: Sequence[RunEvent]) -> None:
    """Insert events after checking each run's sequences continue what is stored; inside a transaction."""
    next_sequence: dict[str, int] = {}
    rows = []
    for event in events:
        expected = next_sequence.get(event.run_id)
        if expected is None:
            expected = _last_sequence(connection, event.run_id) + 1
        if event.sequence != expected:
            raise StorageError(
                f"Event {event.event_type} of run {event.run_id} has sequence {event.sequence}, "
                f"but the run's next sequence is {expected}: a run's events must be stored "
                f"in order, without gaps or duplicates."
            )
        next_sequence[event.run_id] = expected + 1
        rows.append(
            (
                event.run_id,
                event.sequence,
                event.event_type,
                event.step_key,
                event.timestamp,
                _encoder.encode(event),
            )
        )
    connection.executemany(
        "INSERT INTO events (run_id, sequence, event_type, step_key, timestamp, body) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def _in_transaction(connection: sqlite3.Connection, fn: Callable[[], T]) -> T:
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = fn()
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result


class SqliteRunStorage:
    """The SQLite RunStorage: `async with SqliteRunStorage(base_dir) as storage: ...`.

    The database is `base_dir/runtime.db`, created (with its directory) and
    migrated to the current schema on open. Raises StorageError when the file
    cannot be opened or holds a newer schema than this version of runtime knows.
    """

    def __init__(self, base_dir: Path, *, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self.path = base_dir / DATABASE_FILE_NAME
        self._migrations = tuple(migrations)
        self._writer = SqliteThread(self.path, name=f"runtime-sqlite-writer:{self.path}")
        self._reader = SqliteThread(
            self.path, name=f"runtime-sqlite-reader:{self.path}", query_only=True
        )
        self._opened = False

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Create and migrate the database and start its threads; raises StorageError on failure."""
        if self._opened:
            return
        self._opened = True
        try:
            await self._writer.start()
            await self._writer.call(self._prepare)
            await self._reader.start()
        except BaseException:
            await self.aclose()
            raise

    def _prepare(self, connection: sqlite3.Connection) -> list[int]:
        return migrate(connection, self._migrations, path=str(self.path))

    async def aclose(self) -> None:
        """Finish pending work and close both connections. Safe to call twice."""
        await self._reader.aclose()
        await self._writer.aclose()

    # --- runs ----------------------------------------------------------------

    async def add_run(self, record: RunRecord) -> None:
        """Store a new run; raises StorageError if a run with that id exists."""

        def add(connection: sqlite3.Connection) -> None:
            def insert() -> None:
                connection.execute(
                    f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * 15)})",
                    (
                        record.run_id,
                        record.job_name,
                        record.location_name,
                        str(record.status),
                        _encoder.encode(record.run_config),
                        _encoder.encode(record.tags),
                        None
                        if record.step_selection is None
                        else _encoder.encode(record.step_selection),
                        record.parent_run_id,
                        record.root_run_id,
                        record.created_at,
                        record.started_at,
                        record.ended_at,
                        record.updated_at,
                        record.failure_reason,
                        None if record.host is None else _encoder.encode(record.host),
                    ),
                )
                connection.executemany(
                    "INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)",
                    [(record.run_id, key, value) for key, value in record.tags.items()],
                )

            try:
                _in_transaction(connection, insert)
            except sqlite3.IntegrityError as exc:
                raise StorageError(
                    f"A run with id {record.run_id} already exists in {self.path}."
                ) from exc

        await self._write(add)

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run with that id, or None."""
        return await self._read(lambda connection: _select_run(connection, run_id))

    async def get_runs(
        self,
        filter: RunFilter | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> list[RunRecord]:
        """Runs matching `filter`, most recently added first; `cursor` is the last run id of the previous page.

        Raises RunNotFoundError when `cursor` names no run.
        """
        where, params = _where(filter)
        if cursor is not None:
            where += " AND " if where else " WHERE "
            where += "rowid < (SELECT rowid FROM runs WHERE run_id = ?)"
            params.append(cursor)
        sql = f"SELECT {_RUN_COLUMNS} FROM runs{where} ORDER BY rowid DESC LIMIT ?"
        params.append(-1 if limit is None else limit)

        def select(connection: sqlite3.Connection) -> list[RunRecord]:
            if cursor is not None and _select_run(connection, cursor) is None:
                raise RunNotFoundError(
                    f"The cursor {cursor!r} is not the id of a run in {self.path}."
                )
            return [_record_from_row(row) for row in connection.execute(sql, params)]

        return await self._read(select)

    async def count_runs(self, filter: RunFilter | None = None) -> int:
        """How many runs match `filter`."""
        where, params = _where(filter)

        def count(connection: sqlite3.Connection) -> int:
            (n,) = connection.execute(f"SELECT COUNT(*) FROM runs{where}", params).fetchone()
            return int(n)

        return await self._read(count)

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
        """Atomically move a run to `status`; see RunStorage.update_run_status."""
        status = RunStatus(status)
        expected = None if expected_from is None else frozenset(expected_from)
        now = time.time() if timestamp is None else timestamp

        def update(connection: sqlite3.Connection) -> RunRecord:
            def transition() -> RunRecord:
                record = _select_run(connection, run_id)
                if record is None:
                    raise RunNotFoundError(f"No run with id {run_id} in {self.path}.")
                check_transition(run_id, record.status, status, expected)
                new_host = record.host
                if status is RunStatus.STARTING or (
                    status is RunStatus.STARTED and new_host is None
                ):
                    new_host = host or current_host()
                updated = msgspec.structs.replace(
                    record,
                    status=status,
                    updated_at=now,
                    started_at=now if status is RunStatus.STARTED else record.started_at,
                    ended_at=now if status in FINISHED_STATUSES else record.ended_at,
                    failure_reason=failure_reason
                    if failure_reason is not None
                    else record.failure_reason,
                    host=new_host,
                )
                connection.execute(
                    "UPDATE runs SET status = ?, updated_at = ?, started_at = ?, ended_at = ?, "
                    "failure_reason = ?, host = ? WHERE run_id = ?",
                    (
                        str(updated.status),
                        updated.updated_at,
                        updated.started_at,
                        updated.ended_at,
                        updated.failure_reason,
                        None if updated.host is None else _encoder.encode(updated.host),
                        run_id,
                    ),
                )
                return updated

            return _in_transaction(connection, transition)

        return await self._write(update)

    async def mark_orphaned_runs_failed(
        self,
        orphan_reason: Callable[[RunRecord], str | None],
        *,
        timestamp: float | None = None,
    ) -> list[str]:
        """Mark FAILURE the in-flight runs, and the NOT_STARTED runs with a recorded
        host, that `orphan_reason` has a reason for, and end their event streams with
        ENGINE_EVENT and RUN_FAILURE; see RunStorage."""
        now = time.time() if timestamp is None else timestamp
        in_flight = [str(status) for status in IN_FLIGHT_STATUSES]
        # A queued run is only someone's once its creator recorded itself as its host;
        # older records without one are left alone.
        sql = (
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE status IN ({', '.join('?' * len(in_flight))}) "
            "OR (status = ? AND host IS NOT NULL) ORDER BY rowid"
        )
        params = [*in_flight, str(RunStatus.NOT_STARTED)]

        def mark(connection: sqlite3.Connection) -> list[str]:
            def transition() -> list[str]:
                rows = connection.execute(sql, params).fetchall()
                marked: list[str] = []
                for row in rows:
                    record = _record_from_row(row)
                    reason = orphan_reason(record)
                    if reason is None:
                        continue
                    connection.execute(
                        "UPDATE runs SET status = ?, failure_reason = ?, ended_at = ?, "
                        "updated_at = ? WHERE run_id = ?",
                        (str(RunStatus.FAILURE), reason, now, now, record.run_id),
                    )
                    sequence = _last_sequence(connection, record.run_id)
                    metadata: dict[str, Any] = {"previous_status": str(record.status)}
                    if record.host is not None:
                        metadata["host_pid"] = record.host.pid
                    _insert_events(
                        connection,
                        [
                            RunEvent(
                                run_id=record.run_id,
                                sequence=sequence + 1,
                                timestamp=now,
                                event_type="ENGINE_EVENT",
                                payload=EnginePayload(message=reason, metadata=metadata),
                            ),
                            RunEvent(
                                run_id=record.run_id,
                                sequence=sequence + 2,
                                timestamp=now,
                                event_type="RUN_FAILURE",
                                payload=RunFailurePayload(message=reason),
                            ),
                        ],
                    )
                    marked.append(record.run_id)
                return marked

            return _in_transaction(connection, transition)

        return await self._write(mark)

    # --- events ----------------------------------------------------------------

    async def store_events(self, events: Sequence[RunEvent]) -> None:
        """Store a batch of events in one transaction; see RunStorage.store_events."""
        if not events:
            return

        def store(connection: sqlite3.Connection) -> None:
            _in_transaction(connection, lambda: _insert_events(connection, events))

        await self._write(store)

    async def get_events(
        self, run_id: str, *, after_sequence: int = 0, limit: int | None = None
    ) -> list[RunEvent]:
        """The run's events with a sequence above `after_sequence`, in order."""

        def select(connection: sqlite3.Connection) -> list[RunEvent]:
            rows = connection.execute(
                "SELECT body FROM events WHERE run_id = ? AND sequence > ? "
                "ORDER BY sequence LIMIT ?",
                (run_id, after_sequence, -1 if limit is None else limit),
            )
            return [_decode_event(body) for (body,) in rows]

        return await self._read(select)

    async def get_events_after(
        self,
        storage_cursor: int = 0,
        *,
        run_ids: Collection[str] | None = None,
        limit: int = 1000,
    ) -> list[StoredEvent]:
        """Events stored after `storage_cursor`, of any run or of `run_ids`, in storage order."""
        sql = "SELECT storage_id, body FROM events WHERE storage_id > ?"
        params: list[Any] = [storage_cursor]
        if run_ids is not None:
            ids = list(run_ids)
            sql += f" AND run_id IN ({', '.join('?' * len(ids))})"
            params += ids
        sql += " ORDER BY storage_id LIMIT ?"
        params.append(limit)

        def select(connection: sqlite3.Connection) -> list[StoredEvent]:
            return [
                StoredEvent(storage_id=storage_id, event=_decode_event(body))
                for storage_id, body in connection.execute(sql, params)
            ]

        return await self._read(select)

    async def last_sequence(self, run_id: str) -> int:
        """The highest stored sequence of the run's events, 0 when it has none."""
        return await self._read(lambda connection: _last_sequence(connection, run_id))

    # --- plumbing ------------------------------------------------------------------

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

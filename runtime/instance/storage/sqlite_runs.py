"""The SQL of runs and events for SqliteRunStorage: functions of a connection, run on its threads.

Every function here runs on a storage thread; the ones that write expect to be
called inside a transaction (see `in_transaction`).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from runtime.errors import RunNotFoundError, StorageError
from runtime.instance.records import RunHost, RunRecord, RunStatus, StoredEvent
from runtime.protocol.messages import RunEvent

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from runtime.instance.records import RunChanges, RunFilter

T = TypeVar("T")

RUN_COLUMNS = (
    "run_id, job_name, location_name, status, run_config, tags, step_selection, parent_run_id, "
    "root_run_id, created_at, started_at, ended_at, updated_at, failure_reason, host, queued_at"
)
_RUN_COLUMN_COUNT = RUN_COLUMNS.count(",") + 1

encode = msgspec.msgpack.Encoder().encode
_decode_config = msgspec.msgpack.Decoder(dict[str, Any]).decode
_decode_tags = msgspec.msgpack.Decoder(dict[str, str]).decode
_decode_selection = msgspec.msgpack.Decoder(list[str]).decode
_decode_host = msgspec.msgpack.Decoder(RunHost).decode
_decode_event = msgspec.msgpack.Decoder(RunEvent).decode


def in_transaction(connection: sqlite3.Connection, fn: Callable[[], T]) -> T:
    """Run `fn` between BEGIN IMMEDIATE and COMMIT (ROLLBACK if it raises)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = fn()
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result


# --- runs ------------------------------------------------------------------------


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
        queued_at=row[15],
    )


def where(filter: RunFilter | None) -> tuple[str, list[Any]]:
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
    if filter.queued is not None:
        clauses.append("queued_at IS NOT NULL" if filter.queued else "queued_at IS NULL")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def select_run(connection: sqlite3.Connection, run_id: str) -> RunRecord | None:
    """The run with that id, or None."""
    row = connection.execute(
        f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    return None if row is None else _record_from_row(row)


def insert_run(connection: sqlite3.Connection, record: RunRecord, *, path: object) -> None:
    """Insert a run and its tags in one transaction; StorageError for a duplicate id."""

    def insert() -> None:
        connection.execute(
            f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({', '.join('?' * _RUN_COLUMN_COUNT)})",
            (
                record.run_id,
                record.job_name,
                record.location_name,
                str(record.status),
                encode(record.run_config),
                encode(record.tags),
                None if record.step_selection is None else encode(record.step_selection),
                record.parent_run_id,
                record.root_run_id,
                record.created_at,
                record.started_at,
                record.ended_at,
                record.updated_at,
                record.failure_reason,
                None if record.host is None else encode(record.host),
                record.queued_at,
            ),
        )
        connection.executemany(
            "INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)",
            [(record.run_id, key, value) for key, value in record.tags.items()],
        )

    try:
        in_transaction(connection, insert)
    except sqlite3.IntegrityError as exc:
        raise StorageError(f"A run with id {record.run_id} already exists in {path}.") from exc


def select_runs(
    connection: sqlite3.Connection,
    filter: RunFilter | None,
    limit: int | None,
    cursor: str | None,
    *,
    path: object,
) -> list[RunRecord]:
    """Runs matching `filter`, most recently added first, after `cursor`."""
    clause, params = where(filter)
    if cursor is not None:
        if select_run(connection, cursor) is None:
            raise RunNotFoundError(f"The cursor {cursor!r} is not the id of a run in {path}.")
        clause += " AND " if clause else " WHERE "
        clause += "rowid < (SELECT rowid FROM runs WHERE run_id = ?)"
        params.append(cursor)
    sql = f"SELECT {RUN_COLUMNS} FROM runs{clause} ORDER BY rowid DESC LIMIT ?"
    params.append(-1 if limit is None else limit)
    return [_record_from_row(row) for row in connection.execute(sql, params)]


def count_runs(connection: sqlite3.Connection, filter: RunFilter | None) -> int:
    """How many runs match `filter`."""
    clause, params = where(filter)
    (n,) = connection.execute(f"SELECT COUNT(*) FROM runs{clause}", params).fetchone()
    return int(n)


_CHANGE_COLUMNS = ("status", "updated_at", "started_at", "ended_at", "failure_reason", "host")


def update_run(
    connection: sqlite3.Connection,
    run_id: str,
    changes: RunChanges,
    expected_statuses: Collection[RunStatus],
    *,
    path: object,
) -> RunRecord | None:
    """Compare-and-set: apply `changes` if the run's status is expected; see RunStorage.update_run."""
    assignments: list[str] = []
    params: list[Any] = []
    for column in _CHANGE_COLUMNS:
        value = getattr(changes, column)
        if value is None:
            continue
        assignments.append(f"{column} = ?")
        if column == "host":
            value = encode(value)
        elif column == "status":
            value = str(value)
        params.append(value)
    expected = [str(status) for status in expected_statuses]

    def update() -> RunRecord | None:
        if assignments and expected:
            cursor = connection.execute(
                f"UPDATE runs SET {', '.join(assignments)} WHERE run_id = ? "
                f"AND status IN ({', '.join('?' * len(expected))})",
                (*params, run_id, *expected),
            )
            changed = cursor.rowcount > 0
        else:
            changed = False
        record = select_run(connection, run_id)
        if record is None:
            raise RunNotFoundError(f"No run with id {run_id} in {path}.")
        if changed or (not assignments and record.status in expected_statuses):
            return record
        return None

    return in_transaction(connection, update)


# --- events ----------------------------------------------------------------------


def last_sequence(connection: sqlite3.Connection, run_id: str) -> int:
    """The highest stored sequence of the run's events, 0 when it has none."""
    (last,) = connection.execute(
        "SELECT COALESCE(MAX(sequence), 0) FROM events WHERE run_id = ?", (run_id,)
    ).fetchone()
    return int(last)


def insert_events(
    connection: sqlite3.Connection, events: Sequence[RunEvent], *, path: object
) -> None:
    """Insert a batch of events in one transaction; StorageError naming a duplicate sequence."""
    rows = [
        (
            event.run_id,
            event.sequence,
            event.event_type,
            event.step_key,
            event.timestamp,
            encode(event),
        )
        for event in events
    ]

    def insert() -> None:
        connection.executemany(
            "INSERT INTO events (run_id, sequence, event_type, step_key, timestamp, body) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )

    try:
        in_transaction(connection, insert)
    except sqlite3.IntegrityError as exc:
        raise StorageError(_duplicate_events(connection, events, path)) from exc


def _duplicate_events(
    connection: sqlite3.Connection, events: Sequence[RunEvent], path: object
) -> str:
    """Say which event of a refused batch was a duplicate (the batch was rolled back)."""
    seen: set[tuple[str, int]] = set()
    for event in events:
        key = (event.run_id, event.sequence)
        stored = connection.execute(
            "SELECT 1 FROM events WHERE run_id = ? AND sequence = ?", key
        ).fetchone()
        if stored is not None or key in seen:
            where_ = "is already stored" if stored is not None else "appears twice in the batch"
            return (
                f"Event {event.event_type} of run {event.run_id} has sequence {event.sequence}, "
                f"which {where_} in {path}: each sequence number of a run is stored once; "
                "nothing of the batch was stored."
            )
        seen.add(key)
    return f"A batch of {len(events)} events broke an integrity constraint of {path}; nothing of it was stored."


def select_events(
    connection: sqlite3.Connection, run_id: str, after_sequence: int, limit: int | None
) -> list[RunEvent]:
    """The run's events with a sequence above `after_sequence`, in order."""
    rows = connection.execute(
        "SELECT body FROM events WHERE run_id = ? AND sequence > ? ORDER BY sequence LIMIT ?",
        (run_id, after_sequence, -1 if limit is None else limit),
    )
    return [_decode_event(body) for (body,) in rows]


def select_events_after(
    connection: sqlite3.Connection,
    storage_cursor: int,
    run_ids: Collection[str] | None,
    limit: int,
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
    return [
        StoredEvent(storage_id=storage_id, event=_decode_event(body))
        for storage_id, body in connection.execute(sql, params)
    ]

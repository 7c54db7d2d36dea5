"""The SQL of runs and events for PostgresRunStorage: async functions of a connection.

The functions that write run inside the transaction PostgresRunStorage opened
for them (see `PostgresRunStorage._write`); readers run in autocommit. Records
and events are stored msgpack-encoded, as SQLite stores them, so they come
back exactly as they went in.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
import psycopg

from runtime.errors import RunNotFoundError, StorageError
from runtime.instance.records import RunHost, RunRecord, RunStatus, StoredEvent
from runtime.protocol.messages import RunEvent

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from runtime.instance.records import RunChanges, RunFilter

Connection = psycopg.AsyncConnection[Any]

RUN_COLUMNS = (
    "run_id, job_name, location_name, status, run_config, tags, step_selection, parent_run_id, "
    "root_run_id, created_at, started_at, ended_at, updated_at, failure_reason, host, queued_at"
)
_RUN_PLACEHOLDERS = ", ".join(["%s"] * (RUN_COLUMNS.count(",") + 1))

encode = msgspec.msgpack.Encoder().encode
_decode_config = msgspec.msgpack.Decoder(dict[str, Any]).decode
_decode_tags = msgspec.msgpack.Decoder(dict[str, str]).decode
_decode_selection = msgspec.msgpack.Decoder(list[str]).decode
_decode_host = msgspec.msgpack.Decoder(RunHost).decode
_decode_event = msgspec.msgpack.Decoder(RunEvent).decode


# --- runs ------------------------------------------------------------------------


def _record_from_row(row: Sequence[Any]) -> RunRecord:
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
        clauses.append("run_id = ANY(%s)")
        params.append(list(filter.run_ids))
    if filter.job_name is not None:
        clauses.append("job_name = %s")
        params.append(filter.job_name)
    if filter.location_name is not None:
        clauses.append("location_name = %s")
        params.append(filter.location_name)
    if filter.statuses is not None:
        clauses.append("status = ANY(%s)")
        params.append([str(status) for status in filter.statuses])
    for key, value in filter.tags.items():
        clauses.append(
            "EXISTS (SELECT 1 FROM run_tags t "
            "WHERE t.run_id = runs.run_id AND t.key = %s AND t.value = %s)"
        )
        params += [key, value]
    if filter.created_after is not None:
        clauses.append("created_at > %s")
        params.append(filter.created_after)
    if filter.created_before is not None:
        clauses.append("created_at < %s")
        params.append(filter.created_before)
    if filter.queued is not None:
        clauses.append("queued_at IS NOT NULL" if filter.queued else "queued_at IS NULL")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


async def select_run(conn: Connection, run_id: str) -> RunRecord | None:
    """The run with that id, or None."""
    cursor = await conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = %s", (run_id,))
    row = await cursor.fetchone()
    return None if row is None else _record_from_row(row)


async def insert_run(conn: Connection, record: RunRecord, *, where_: str) -> None:
    """Insert a run and its tags; StorageError for a duplicate id."""
    try:
        await conn.execute(
            f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({_RUN_PLACEHOLDERS})",
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
    except psycopg.errors.UniqueViolation as exc:
        raise StorageError(f"A run with id {record.run_id} already exists in {where_}.") from exc
    if record.tags:
        await conn.execute(
            "INSERT INTO run_tags (run_id, key, value) SELECT %s, * FROM unnest(%s::text[], %s::text[])",
            (record.run_id, list(record.tags), list(record.tags.values())),
        )


async def select_runs(
    conn: Connection,
    filter: RunFilter | None,
    limit: int | None,
    cursor: str | None,
    *,
    where_: str,
) -> list[RunRecord]:
    """Runs matching `filter`, most recently added first, after `cursor`."""
    clause, params = where(filter)
    if cursor is not None:
        if await select_run(conn, cursor) is None:
            raise RunNotFoundError(f"The cursor {cursor!r} is not the id of a run in {where_}.")
        clause += " AND " if clause else " WHERE "
        clause += "id < (SELECT id FROM runs WHERE run_id = %s)"
        params.append(cursor)
    params.append(limit)  # LIMIT NULL is no limit
    rows = await conn.execute(
        f"SELECT {RUN_COLUMNS} FROM runs{clause} ORDER BY id DESC LIMIT %s", params, binary=True
    )
    return [_record_from_row(row) for row in await rows.fetchall()]


async def count_runs(conn: Connection, filter: RunFilter | None) -> int:
    """How many runs match `filter`."""
    clause, params = where(filter)
    row = await (await conn.execute(f"SELECT COUNT(*) FROM runs{clause}", params)).fetchone()
    return int(row[0]) if row is not None else 0


_CHANGE_COLUMNS = ("status", "updated_at", "started_at", "ended_at", "failure_reason", "host")


async def update_run(
    conn: Connection,
    run_id: str,
    changes: RunChanges,
    expected_statuses: Collection[RunStatus],
    *,
    where_: str,
) -> RunRecord | None:
    """Compare-and-set: apply `changes` if the run's status is expected; see RunStorage.update_run."""
    assignments: list[str] = []
    params: list[Any] = []
    for column in _CHANGE_COLUMNS:
        value = getattr(changes, column)
        if value is None:
            continue
        assignments.append(f"{column} = %s")
        if column == "host":
            value = encode(value)
        elif column == "status":
            value = str(value)
        params.append(value)
    expected = [str(status) for status in expected_statuses]
    if assignments and expected:
        cursor = await conn.execute(
            f"UPDATE runs SET {', '.join(assignments)} WHERE run_id = %s AND status = ANY(%s) "
            f"RETURNING {RUN_COLUMNS}",
            (*params, run_id, expected),
        )
        row = await cursor.fetchone()
        if row is not None:
            return _record_from_row(row)
    record = await select_run(conn, run_id)
    if record is None:
        raise RunNotFoundError(f"No run with id {run_id} in {where_}.")
    if not assignments and record.status in expected_statuses:
        return record
    return None


# --- events ----------------------------------------------------------------------


async def last_sequence(conn: Connection, run_id: str) -> int:
    """The highest stored sequence of the run's events, 0 when it has none."""
    cursor = await conn.execute(
        "SELECT COALESCE(MAX(sequence), 0) FROM events WHERE run_id = %s", (run_id,)
    )
    row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0


# A small batch is one statement that stores it and announces, per run, its
# highest new sequence on the storage's channel (PostgreSQL delivers
# notifications when the transaction commits, and only then). From COPY_MIN
# events on, binary COPY is faster despite its extra round trips: 5,000 events
# in ~70 ms against ~200 ms for the INSERT, measured on the project's machine.
COPY_MIN = 100
_INSERT_EVENTS = """
WITH stored AS (
    INSERT INTO events (run_id, sequence, event_type, step_key, timestamp, body)
    SELECT * FROM unnest(%s::text[], %s::int4[], %s::text[], %s::text[], %s::float8[], %s::bytea[])
    RETURNING run_id, sequence
)
SELECT pg_notify(%s, MAX(sequence) || ':' || run_id) FROM stored GROUP BY run_id
"""
_COPY_EVENTS = (
    "COPY events (run_id, sequence, event_type, step_key, timestamp, body) "
    "FROM STDIN (FORMAT BINARY)"
)
_NOTIFY = "SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload"

# PostgreSQL's binary COPY format: a signature, flags and header extension length, then
# per row its field count and each field as a length and bytes (-1: NULL), then -1.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
_ROW_START = struct.Struct("!hi").pack  # 6 fields, then the run id's length
_SEQUENCE = struct.Struct("!ii").pack  # int4: length 4, the value
_LENGTH = struct.Struct("!i").pack
_TAIL = struct.Struct("!idi").pack  # float8 (length 8, the timestamp), then the body's length
_NULL = _LENGTH(-1)

# Reads of more rows than this decode them on a worker thread, off the event loop.
DECODE_IN_THREAD = 500


async def insert_events(
    conn: Connection, events: Sequence[RunEvent], *, channel: str, where_: str
) -> None:
    """Insert a batch of events and notify their followers; StorageError naming a duplicate."""
    seen: set[tuple[str, int]] = set()
    for event in events:
        key = (event.run_id, event.sequence)
        if key in seen:
            raise StorageError(_duplicate(event, "appears twice in the batch", where_))
        seen.add(key)
    try:
        if len(events) >= COPY_MIN:
            await _copy_events(conn, events, channel)
        else:
            await _insert_events(conn, events, channel)
    except psycopg.errors.UniqueViolation as exc:
        raise StorageError(await _which_duplicate(conn, events, where_)) from exc


async def _insert_events(conn: Connection, events: Sequence[RunEvent], channel: str) -> None:
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
    for event in events:
        columns[0].append(event.run_id)
        columns[1].append(event.sequence)
        columns[2].append(event.event_type)
        columns[3].append(event.step_key)
        columns[4].append(event.timestamp)
        columns[5].append(encode(event))
    await conn.execute(_INSERT_EVENTS, (*columns, channel), binary=True)


async def _copy_events(conn: Connection, events: Sequence[RunEvent], channel: str) -> None:
    # Encoding thousands of events takes milliseconds: done on a worker thread, so the
    # event loop only hands the finished buffer to the connection.
    data, last = await anyio.to_thread.run_sync(copy_data, events)
    async with conn.cursor() as cursor, cursor.copy(_COPY_EVENTS) as copy:
        await copy.write(data)
    payloads = [f"{sequence}:{run_id}" for run_id, sequence in last.items()]
    await conn.execute(_NOTIFY, (channel, payloads))


def copy_data(events: Sequence[RunEvent]) -> tuple[bytearray, dict[str, int]]:
    """The events as binary COPY data for the events table, and each run's highest sequence."""
    # A batch repeats a few run ids, event types and step keys: each is encoded once.
    run_ids: dict[str, bytes] = {}
    texts: dict[str | None, bytes] = {None: _NULL}
    data = bytearray(_COPY_HEADER)
    last: dict[str, int] = {}
    for event in events:
        run_id = event.run_id
        prefix = run_ids.get(run_id)
        if prefix is None:
            encoded = run_id.encode()
            prefix = run_ids[run_id] = _ROW_START(6, len(encoded)) + encoded
        event_type = texts.get(event.event_type)
        if event_type is None:
            event_type = texts[event.event_type] = _text_field(event.event_type)
        step_key = texts.get(event.step_key)
        if step_key is None:
            step_key = texts[event.step_key] = _text_field(event.step_key)
        body = encode(event)
        data += prefix
        data += _SEQUENCE(4, event.sequence)
        data += event_type
        data += step_key
        data += _TAIL(8, event.timestamp, len(body))
        data += body
        if event.sequence > last.get(run_id, 0):
            last[run_id] = event.sequence
    data += _COPY_TRAILER
    return data, last


def _text_field(text: str | None) -> bytes:
    if text is None:
        return _NULL
    encoded = text.encode()
    return _LENGTH(len(encoded)) + encoded


async def _decode_events(bodies: list[bytes]) -> list[RunEvent]:
    if len(bodies) > DECODE_IN_THREAD:
        return await anyio.to_thread.run_sync(lambda: [_decode_event(body) for body in bodies])
    return [_decode_event(body) for body in bodies]


def _duplicate(event: RunEvent, problem: str, where_: str) -> str:
    return (
        f"Event {event.event_type} of run {event.run_id} has sequence {event.sequence}, "
        f"which {problem} in {where_}: each sequence number of a run is stored once; "
        "nothing of the batch was stored."
    )


async def _which_duplicate(conn: Connection, events: Sequence[RunEvent], where_: str) -> str:
    """Say which event of a refused batch was stored already, after rolling the batch back."""
    await conn.execute("ROLLBACK")
    cursor = await conn.execute(
        "SELECT e.run_id, e.sequence FROM events e "
        "JOIN unnest(%s::text[], %s::int4[]) AS b(run_id, sequence) "
        "ON e.run_id = b.run_id AND e.sequence = b.sequence",
        ([event.run_id for event in events], [event.sequence for event in events]),
    )
    stored = {(run_id, sequence) for run_id, sequence in await cursor.fetchall()}
    for event in events:
        if (event.run_id, event.sequence) in stored:
            return _duplicate(event, "is already stored", where_)
    return (
        f"A batch of {len(events)} events broke an integrity constraint of {where_}; "
        "nothing of it was stored."
    )


async def select_events(
    conn: Connection, run_id: str, after_sequence: int, limit: int | None
) -> list[RunEvent]:
    """The run's events with a sequence above `after_sequence`, in order."""
    cursor = await conn.execute(
        "SELECT body FROM events WHERE run_id = %s AND sequence > %s ORDER BY sequence LIMIT %s",
        (run_id, after_sequence, limit),
        binary=True,
    )
    return await _decode_events([body for (body,) in await cursor.fetchall()])


async def select_events_after(
    conn: Connection,
    storage_cursor: int,
    run_ids: Collection[str] | None,
    limit: int,
) -> list[StoredEvent]:
    """Events stored after `storage_cursor`, of any run or of `run_ids`, in storage order."""
    sql = "SELECT storage_id, body FROM events WHERE storage_id > %s"
    params: list[Any] = [storage_cursor]
    if run_ids is not None:
        sql += " AND run_id = ANY(%s)"
        params.append(list(run_ids))
    sql += " ORDER BY storage_id LIMIT %s"
    params.append(limit)
    cursor = await conn.execute(sql, params, binary=True)
    rows = await cursor.fetchall()
    events = await _decode_events([body for _, body in rows])
    return [
        StoredEvent(storage_id=storage_id, event=event)
        for (storage_id, _), event in zip(rows, events, strict=True)
    ]

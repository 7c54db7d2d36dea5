"""The SQL of cancel requests, leases and the daemon's state for SqliteRunStorage.

Functions of a connection, run on the storage's threads; the ones that write
open their own transaction.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import msgspec

from runtime.errors import StorageError
from runtime.instance.daemon_records import (
    DaemonHeartbeat,
    InstigatorKind,
    InstigatorState,
    InstigatorStatus,
    Lease,
    TickRecord,
)
from runtime.instance.records import CancelRequest
from runtime.instance.storage.sqlite_runs import encode, in_transaction

if TYPE_CHECKING:
    from collections.abc import Collection

    from runtime.instance.daemon_records import TickStatus

_decode_data = msgspec.msgpack.Decoder(dict[str, Any]).decode
_decode_tick = msgspec.msgpack.Decoder(TickRecord).decode
_decode_heartbeat = msgspec.msgpack.Decoder(DaemonHeartbeat).decode

# SQLite's default limit on the parameters of one statement is 999 on old builds.
_CHUNK = 500


def _chunks(items: Collection[str]) -> list[list[str]]:
    values = list(items)
    return [values[start : start + _CHUNK] for start in range(0, len(values), _CHUNK)]


# --- cancel requests -----------------------------------------------------------------


def add_cancel_request(
    connection: sqlite3.Connection, run_id: str, requested_at: float, requested_by: str
) -> None:
    """Record a cancel request; the first one for a run is kept."""
    in_transaction(
        connection,
        lambda: connection.execute(
            "INSERT OR IGNORE INTO cancel_requests (run_id, requested_at, requested_by) "
            "VALUES (?, ?, ?)",
            (run_id, requested_at, requested_by),
        ),
    )


def get_cancel_requests(
    connection: sqlite3.Connection, run_ids: Collection[str]
) -> list[CancelRequest]:
    """The cancel requests of those runs."""
    found: list[CancelRequest] = []
    for chunk in _chunks(run_ids):
        rows = connection.execute(
            "SELECT run_id, requested_at, requested_by FROM cancel_requests "
            f"WHERE run_id IN ({', '.join('?' * len(chunk))}) ORDER BY requested_at",
            chunk,
        )
        found += [
            CancelRequest(run_id=run_id, requested_at=at, requested_by=by)
            for run_id, at, by in rows
        ]
    return found


# --- leases ----------------------------------------------------------------------------


def acquire_lease(
    connection: sqlite3.Connection, name: str, holder: str, ttl: float, now: float
) -> bool:
    """Take or renew a lease unless another holder has it unexpired."""

    def acquire() -> bool:
        row = connection.execute(
            "SELECT holder, acquired_at, expires_at FROM leases WHERE name = ?", (name,)
        ).fetchone()
        if row is not None and row[0] != holder and row[2] > now:
            return False
        acquired_at = row[1] if row is not None and row[0] == holder and row[2] > now else now
        connection.execute(
            "INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
            (name, holder, acquired_at, now + ttl),
        )
        return True

    return in_transaction(connection, acquire)


def release_lease(connection: sqlite3.Connection, name: str, holder: str) -> bool:
    """Drop the lease if `holder` has it."""
    cursor = in_transaction(
        connection,
        lambda: connection.execute(
            "DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)
        ),
    )
    return cursor.rowcount > 0


def get_lease(connection: sqlite3.Connection, name: str) -> Lease | None:
    """The stored lease, or None."""
    row = connection.execute(
        "SELECT name, holder, acquired_at, expires_at FROM leases WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        return None
    return Lease(name=row[0], holder=row[1], acquired_at=row[2], expires_at=row[3])


# --- instigators and their run keys -------------------------------------------------

_INSTIGATOR_COLUMNS = "name, kind, location, status, cursor, last_tick_at, data, updated_at"


def _instigator_from_row(row: tuple[Any, ...]) -> InstigatorState:
    return InstigatorState(
        name=row[0],
        kind=InstigatorKind(row[1]),
        location=row[2],
        status=InstigatorStatus(row[3]),
        cursor=row[4],
        last_tick_at=row[5],
        data=_decode_data(row[6]),
        updated_at=row[7],
    )


def set_instigator_state(connection: sqlite3.Connection, state: InstigatorState) -> None:
    """Insert or replace an instigator's state."""
    in_transaction(
        connection,
        lambda: connection.execute(
            f"INSERT OR REPLACE INTO instigators (instigator_id, {_INSTIGATOR_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                state.instigator_id,
                state.name,
                str(state.kind),
                state.location,
                str(state.status),
                state.cursor,
                state.last_tick_at,
                encode(state.data),
                state.updated_at,
            ),
        ),
    )


def get_instigator_state(
    connection: sqlite3.Connection, instigator_id: str
) -> InstigatorState | None:
    """One instigator's state, or None."""
    row = connection.execute(
        f"SELECT {_INSTIGATOR_COLUMNS} FROM instigators WHERE instigator_id = ?", (instigator_id,)
    ).fetchone()
    return None if row is None else _instigator_from_row(row)


def get_instigator_states(
    connection: sqlite3.Connection, kind: InstigatorKind | None, location: str | None
) -> list[InstigatorState]:
    """Every instigator state, of one kind or location when given, by id."""
    clauses: list[str] = []
    params: list[Any] = []
    if kind is not None:
        clauses.append("kind = ?")
        params.append(str(kind))
    if location is not None:
        clauses.append("location = ?")
        params.append(location)
    clause = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = connection.execute(
        f"SELECT {_INSTIGATOR_COLUMNS} FROM instigators{clause} ORDER BY instigator_id", params
    )
    return [_instigator_from_row(row) for row in rows]


def add_run_keys(
    connection: sqlite3.Connection, instigator_id: str, run_keys: Collection[str]
) -> set[str]:
    """Insert run keys in one transaction; return those that were not there yet."""

    def add() -> set[str]:
        new: set[str] = set()
        for key in dict.fromkeys(run_keys):
            cursor = connection.execute(
                "INSERT OR IGNORE INTO instigator_run_keys (instigator_id, run_key) VALUES (?, ?)",
                (instigator_id, key),
            )
            if cursor.rowcount > 0:
                new.add(key)
        return new

    return in_transaction(connection, add)


# --- ticks -------------------------------------------------------------------------------


def add_tick(connection: sqlite3.Connection, tick: TickRecord, *, path: object) -> None:
    """Insert a new tick; StorageError for a duplicate id."""
    try:
        in_transaction(
            connection,
            lambda: connection.execute(
                "INSERT INTO ticks (tick_id, instigator_id, tick_time, status, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (tick.tick_id, tick.instigator_id, tick.tick_time, str(tick.status), encode(tick)),
            ),
        )
    except sqlite3.IntegrityError as exc:
        raise StorageError(f"A tick with id {tick.tick_id} already exists in {path}.") from exc


def update_tick(connection: sqlite3.Connection, tick: TickRecord, *, path: object) -> None:
    """Replace a stored tick; StorageError when there is none with that id."""
    cursor = in_transaction(
        connection,
        lambda: connection.execute(
            "UPDATE ticks SET instigator_id = ?, tick_time = ?, status = ?, body = ? "
            "WHERE tick_id = ?",
            (tick.instigator_id, tick.tick_time, str(tick.status), encode(tick), tick.tick_id),
        ),
    )
    if cursor.rowcount == 0:
        raise StorageError(f"No tick with id {tick.tick_id} in {path} to update.")


def get_ticks(
    connection: sqlite3.Connection,
    instigator_id: str,
    limit: int | None,
    statuses: Collection[TickStatus] | None,
) -> list[TickRecord]:
    """An instigator's ticks, newest tick time first (ties: the later added first)."""
    sql = "SELECT body FROM ticks WHERE instigator_id = ?"
    params: list[Any] = [instigator_id]
    if statuses is not None:
        wanted = [str(status) for status in statuses]
        sql += f" AND status IN ({', '.join('?' * len(wanted))})"
        params += wanted
    sql += " ORDER BY tick_time DESC, rowid DESC LIMIT ?"
    params.append(-1 if limit is None else limit)
    return [_decode_tick(body) for (body,) in connection.execute(sql, params)]


# --- daemon heartbeats -------------------------------------------------------------------


def add_daemon_heartbeat(connection: sqlite3.Connection, heartbeat: DaemonHeartbeat) -> None:
    """Insert or replace a daemon's heartbeat."""
    in_transaction(
        connection,
        lambda: connection.execute(
            "INSERT OR REPLACE INTO daemon_heartbeats (daemon_id, last_heartbeat_at, body) "
            "VALUES (?, ?, ?)",
            (heartbeat.daemon_id, heartbeat.last_heartbeat_at, encode(heartbeat)),
        ),
    )


def get_daemon_heartbeats(connection: sqlite3.Connection) -> list[DaemonHeartbeat]:
    """Every daemon's latest heartbeat, by daemon id."""
    rows = connection.execute("SELECT body FROM daemon_heartbeats ORDER BY daemon_id")
    return [_decode_heartbeat(body) for (body,) in rows]

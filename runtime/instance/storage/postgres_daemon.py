"""The SQL of cancel requests, leases and the daemon's state for PostgresRunStorage.

Async functions of a connection; the ones that write run inside the
transaction the storage opened for them. Each write is one statement whose
conflict handling (`ON CONFLICT`) makes it atomic against other hosts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import psycopg

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
from runtime.instance.storage.postgres_runs import encode

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from runtime.instance.daemon_records import TickStatus
    from runtime.instance.storage.postgres_runs import Connection

_decode_data = msgspec.msgpack.Decoder(dict[str, Any]).decode
_decode_tick = msgspec.msgpack.Decoder(TickRecord).decode
_decode_heartbeat = msgspec.msgpack.Decoder(DaemonHeartbeat).decode


# --- cancel requests -----------------------------------------------------------------


async def add_cancel_request(
    conn: Connection, run_id: str, requested_at: float, requested_by: str
) -> None:
    """Record a cancel request; the first one for a run is kept."""
    await conn.execute(
        "INSERT INTO cancel_requests (run_id, requested_at, requested_by) VALUES (%s, %s, %s) "
        "ON CONFLICT (run_id) DO NOTHING",
        (run_id, requested_at, requested_by),
    )


async def get_cancel_requests(conn: Connection, run_ids: Collection[str]) -> list[CancelRequest]:
    """The cancel requests of those runs."""
    cursor = await conn.execute(
        "SELECT run_id, requested_at, requested_by FROM cancel_requests "
        "WHERE run_id = ANY(%s) ORDER BY requested_at",
        (list(run_ids),),
    )
    return [
        CancelRequest(run_id=run_id, requested_at=at, requested_by=by)
        for run_id, at, by in await cursor.fetchall()
    ]


# --- leases ----------------------------------------------------------------------------

# Free, expired or already the holder's: take it (a renewal keeps acquired_at).
# Held by another: the WHERE refuses the update and nothing is returned. The
# upsert locks the row, so of two hosts taking a free lease at once one wins.
_ACQUIRE = """
INSERT INTO leases AS l (name, holder, acquired_at, expires_at)
VALUES (%(name)s, %(holder)s, %(now)s, %(expires)s)
ON CONFLICT (name) DO UPDATE SET
    holder = excluded.holder,
    acquired_at = CASE WHEN l.holder = excluded.holder AND l.expires_at > %(now)s
                       THEN l.acquired_at ELSE excluded.acquired_at END,
    expires_at = excluded.expires_at
WHERE l.holder = excluded.holder OR l.expires_at <= %(now)s
RETURNING 1
"""


async def acquire_lease(conn: Connection, name: str, holder: str, ttl: float, now: float) -> bool:
    """Take or renew a lease unless another holder has it unexpired."""
    cursor = await conn.execute(
        _ACQUIRE, {"name": name, "holder": holder, "now": now, "expires": now + ttl}
    )
    return await cursor.fetchone() is not None


async def release_lease(conn: Connection, name: str, holder: str) -> bool:
    """Drop the lease if `holder` has it."""
    cursor = await conn.execute(
        "DELETE FROM leases WHERE name = %s AND holder = %s", (name, holder)
    )
    return cursor.rowcount > 0


async def get_lease(conn: Connection, name: str) -> Lease | None:
    """The stored lease, or None."""
    cursor = await conn.execute(
        "SELECT name, holder, acquired_at, expires_at FROM leases WHERE name = %s", (name,)
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return Lease(name=row[0], holder=row[1], acquired_at=row[2], expires_at=row[3])


# --- instigators and their run keys -------------------------------------------------

_INSTIGATOR_COLUMNS = "name, kind, location, status, cursor, last_tick_at, data, updated_at"


def _instigator_from_row(row: Sequence[Any]) -> InstigatorState:
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


async def set_instigator_state(conn: Connection, state: InstigatorState) -> None:
    """Insert or replace an instigator's state."""
    await conn.execute(
        f"INSERT INTO instigators (instigator_id, {_INSTIGATOR_COLUMNS}) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (instigator_id) DO UPDATE SET name = excluded.name, kind = excluded.kind, "
        "location = excluded.location, status = excluded.status, cursor = excluded.cursor, "
        "last_tick_at = excluded.last_tick_at, data = excluded.data, "
        "updated_at = excluded.updated_at",
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
    )


async def get_instigator_state(conn: Connection, instigator_id: str) -> InstigatorState | None:
    """One instigator's state, or None."""
    cursor = await conn.execute(
        f"SELECT {_INSTIGATOR_COLUMNS} FROM instigators WHERE instigator_id = %s",
        (instigator_id,),
    )
    row = await cursor.fetchone()
    return None if row is None else _instigator_from_row(row)


async def get_instigator_states(
    conn: Connection, kind: InstigatorKind | None, location: str | None
) -> list[InstigatorState]:
    """Every instigator state, of one kind or location when given, by id."""
    clauses: list[str] = []
    params: list[Any] = []
    if kind is not None:
        clauses.append("kind = %s")
        params.append(str(kind))
    if location is not None:
        clauses.append("location = %s")
        params.append(location)
    clause = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    cursor = await conn.execute(
        f'SELECT {_INSTIGATOR_COLUMNS} FROM instigators{clause} ORDER BY instigator_id COLLATE "C"',
        params,
    )
    return [_instigator_from_row(row) for row in await cursor.fetchall()]


async def add_run_keys(conn: Connection, instigator_id: str, run_keys: Collection[str]) -> set[str]:
    """Insert run keys; return those that were not there yet.

    Keys go in sorted, so two hosts claiming overlapping keys lock them in the
    same order and wait for each other instead of deadlocking.
    """
    keys = sorted(set(run_keys))
    if not keys:
        return set()
    cursor = await conn.execute(
        "INSERT INTO instigator_run_keys (instigator_id, run_key) "
        "SELECT %s, key FROM unnest(%s::text[]) WITH ORDINALITY AS k(key, n) ORDER BY n "
        "ON CONFLICT DO NOTHING RETURNING run_key",
        (instigator_id, keys),
    )
    return {key for (key,) in await cursor.fetchall()}


# --- ticks -------------------------------------------------------------------------------


async def add_tick(conn: Connection, tick: TickRecord, *, where_: str) -> None:
    """Insert a new tick; StorageError for a duplicate id."""
    try:
        await conn.execute(
            "INSERT INTO ticks (tick_id, instigator_id, tick_time, status, body) "
            "VALUES (%s, %s, %s, %s, %s)",
            (tick.tick_id, tick.instigator_id, tick.tick_time, str(tick.status), encode(tick)),
        )
    except psycopg.errors.UniqueViolation as exc:
        raise StorageError(f"A tick with id {tick.tick_id} already exists in {where_}.") from exc


async def update_tick(conn: Connection, tick: TickRecord, *, where_: str) -> None:
    """Replace a stored tick; StorageError when there is none with that id."""
    cursor = await conn.execute(
        "UPDATE ticks SET instigator_id = %s, tick_time = %s, status = %s, body = %s "
        "WHERE tick_id = %s",
        (tick.instigator_id, tick.tick_time, str(tick.status), encode(tick), tick.tick_id),
    )
    if cursor.rowcount == 0:
        raise StorageError(f"No tick with id {tick.tick_id} in {where_} to update.")


async def get_ticks(
    conn: Connection,
    instigator_id: str,
    limit: int | None,
    statuses: Collection[TickStatus] | None,
) -> list[TickRecord]:
    """An instigator's ticks, newest tick time first (ties: the later added first)."""
    sql = "SELECT body FROM ticks WHERE instigator_id = %s"
    params: list[Any] = [instigator_id]
    if statuses is not None:
        sql += " AND status = ANY(%s)"
        params.append([str(status) for status in statuses])
    sql += " ORDER BY tick_time DESC, id DESC LIMIT %s"
    params.append(limit)
    cursor = await conn.execute(sql, params, binary=True)
    return [_decode_tick(body) for (body,) in await cursor.fetchall()]


# --- daemon heartbeats -------------------------------------------------------------------


async def add_daemon_heartbeat(conn: Connection, heartbeat: DaemonHeartbeat) -> None:
    """Insert or replace a daemon's heartbeat."""
    await conn.execute(
        "INSERT INTO daemon_heartbeats (daemon_id, last_heartbeat_at, body) VALUES (%s, %s, %s) "
        "ON CONFLICT (daemon_id) DO UPDATE SET last_heartbeat_at = excluded.last_heartbeat_at, "
        "body = excluded.body",
        (heartbeat.daemon_id, heartbeat.last_heartbeat_at, encode(heartbeat)),
    )


async def get_daemon_heartbeats(conn: Connection) -> list[DaemonHeartbeat]:
    """Every daemon's latest heartbeat, by daemon id."""
    cursor = await conn.execute(
        'SELECT body FROM daemon_heartbeats ORDER BY daemon_id COLLATE "C"', binary=True
    )
    return [_decode_heartbeat(body) for (body,) in await cursor.fetchall()]

"""The PostgreSQL schema, as an ordered list of migrations, and the runner that applies them.

Version numbers mean what they mean for SQLite (runtime.instance.storage.sqlite_schema):
version 2 holds the same records, whichever backend. Tables live in the
connection's current schema (the first existing one on `search_path`), so one
database can hold several instances, one per schema.

Several hosts may open a new database at once: the runner holds a session
advisory lock (keyed by the schema's name) while it reads the version and
applies what is missing, each migration in its own transaction, so exactly one
of them migrates and the others find the work done. To change the schema,
append a Migration with the next version number; never edit one that has shipped.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import psycopg

from runtime.errors import StorageError
from runtime.instance.storage.postgres_pool import one_line
from runtime.instance.storage.sqlite_schema import Migration

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["MIGRATIONS", "Migration", "current_version", "migrate"]

# First key of every advisory lock runtime takes; the second is hashtext(schema name).
LOCK_NAMESPACE = 0x72756E74  # "runt"
MIGRATION_LOCK = LOCK_NAMESPACE
EVENTS_LOCK = LOCK_NAMESPACE + 1

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "create the runs, run_tags and events tables",
        (
            """
            CREATE TABLE runs (
                id BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
                run_id TEXT PRIMARY KEY,
                job_name TEXT NOT NULL,
                location_name TEXT,
                status TEXT NOT NULL,
                run_config BYTEA NOT NULL,
                tags BYTEA NOT NULL,
                step_selection BYTEA,
                parent_run_id TEXT,
                root_run_id TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                started_at DOUBLE PRECISION,
                ended_at DOUBLE PRECISION,
                updated_at DOUBLE PRECISION NOT NULL,
                failure_reason TEXT,
                host BYTEA
            )
            """,
            "CREATE INDEX runs_by_status ON runs (status)",
            "CREATE INDEX runs_by_job ON runs (job_name)",
            "CREATE INDEX runs_by_location ON runs (location_name)",
            "CREATE INDEX runs_by_created_at ON runs (created_at)",
            """
            CREATE TABLE run_tags (
                run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (run_id, key)
            )
            """,
            "CREATE INDEX run_tags_by_key_value ON run_tags (key, value)",
            """
            CREATE TABLE events (
                storage_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                run_id TEXT NOT NULL,
                sequence INTEGER NOT NULL,
                event_type TEXT NOT NULL,
                step_key TEXT,
                timestamp DOUBLE PRECISION NOT NULL,
                body BYTEA NOT NULL,
                UNIQUE (run_id, sequence)
            )
            """,
            "CREATE INDEX events_by_type ON events (event_type)",
        ),
    ),
    Migration(
        2,
        "add the run queue, cancel requests, leases, schedule and sensor state, ticks, heartbeats",
        (
            "ALTER TABLE runs ADD COLUMN queued_at DOUBLE PRECISION",
            """
            CREATE TABLE cancel_requests (
                run_id TEXT PRIMARY KEY,
                requested_at DOUBLE PRECISION NOT NULL,
                requested_by TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                acquired_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL
            )
            """,
            """
            CREATE TABLE instigators (
                instigator_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                kind TEXT NOT NULL,
                location TEXT NOT NULL,
                status TEXT NOT NULL,
                cursor TEXT,
                last_tick_at DOUBLE PRECISION,
                data BYTEA NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )
            """,
            """
            CREATE TABLE instigator_run_keys (
                instigator_id TEXT NOT NULL,
                run_key TEXT NOT NULL,
                PRIMARY KEY (instigator_id, run_key)
            )
            """,
            """
            CREATE TABLE ticks (
                id BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
                tick_id TEXT PRIMARY KEY,
                instigator_id TEXT NOT NULL,
                tick_time DOUBLE PRECISION NOT NULL,
                status TEXT NOT NULL,
                body BYTEA NOT NULL
            )
            """,
            "CREATE INDEX ticks_by_instigator_time ON ticks (instigator_id, tick_time)",
            """
            CREATE TABLE daemon_heartbeats (
                daemon_id TEXT PRIMARY KEY,
                last_heartbeat_at DOUBLE PRECISION NOT NULL,
                body BYTEA NOT NULL
            )
            """,
        ),
    ),
)


def _check_order(migrations: Sequence[Migration]) -> None:
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise ValueError(
                f"Migration {migration.description!r} has version {migration.version}; "
                f"migrations must be numbered 1, 2, ... in order, so it should be {expected}."
            )


async def current_schema(conn: psycopg.AsyncConnection[Any], *, where: str) -> str:
    """The schema the storage's tables live in; StorageError when search_path names none that exists."""
    row = await (
        await conn.execute("SELECT current_schema(), current_setting('search_path')")
    ).fetchone()
    assert row is not None
    if row[0] is None:
        raise StorageError(
            f"The PostgreSQL database {where} has no schema for runtime's tables: none of its "
            f"search_path ({row[1]}) exists; create one (CREATE SCHEMA ...) or change search_path."
        )
    return str(row[0])


async def current_version(conn: psycopg.AsyncConnection[Any]) -> int:
    """The schema version in the current schema, 0 when runtime's tables are not there."""
    cursor = await conn.execute(
        "SELECT to_regclass(quote_ident(current_schema()) || '.schema_version') IS NOT NULL"
    )
    row = await cursor.fetchone()
    if row is None or not row[0]:
        return 0
    cursor = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0


async def migrate(
    conn: psycopg.AsyncConnection[Any],
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    where: str,
) -> list[int]:
    """Apply the migrations the schema lacks, in order, under the migration lock; return the
    versions applied. `conn` must be in autocommit mode.

    Raises StorageError when the schema is newer than `migrations` (written by a
    later version of runtime) or a migration fails; a failed migration is rolled
    back and the ones before it stay applied.
    """
    _check_order(migrations)
    await current_schema(conn, where=where)
    await conn.execute("SELECT pg_advisory_lock(%s, hashtext(current_schema()))", (MIGRATION_LOCK,))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        version = await current_version(conn)
        if version > len(migrations):
            raise StorageError(
                f"The PostgreSQL database {where} has schema version {version}, but this version "
                f"of runtime knows only up to {len(migrations)}; upgrade runtime to open it."
            )
        applied: list[int] = []
        for migration in migrations[version:]:
            try:
                async with conn.transaction():
                    for statement in migration.statements:
                        await conn.execute(statement)
                    await conn.execute(
                        "INSERT INTO schema_version (version, description, applied_at) "
                        "VALUES (%s, %s, %s)",
                        (migration.version, migration.description, time.time()),
                    )
            except psycopg.Error as exc:
                raise StorageError(
                    f"Migration {migration.version} ({migration.description}) of the PostgreSQL "
                    f"database {where} failed: {one_line(exc)}."
                ) from exc
            applied.append(migration.version)
        return applied
    finally:
        if not conn.broken:
            await conn.execute(
                "SELECT pg_advisory_unlock(%s, hashtext(current_schema()))", (MIGRATION_LOCK,)
            )

"""The SQLite schema, as an ordered list of migrations, and the runner that applies them.

A database records every migration applied to it in `schema_version`. Opening
a database applies the missing ones in order, each in its own transaction, so
a crash mid-way leaves a database at a clean earlier version. To change the
schema, append a Migration with the next version number; never edit one that
has shipped.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

from runtime.errors import StorageError

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence


class Migration(NamedTuple):
    """One schema step: its version (1, 2, ...), what it does, and its SQL statements."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "create the runs, run_tags and events tables",
        (
            """
            CREATE TABLE runs (
                run_id TEXT PRIMARY KEY,
                job_name TEXT NOT NULL,
                location_name TEXT,
                status TEXT NOT NULL,
                run_config BLOB NOT NULL,
                tags BLOB NOT NULL,
                step_selection BLOB,
                parent_run_id TEXT,
                root_run_id TEXT,
                created_at REAL NOT NULL,
                started_at REAL,
                ended_at REAL,
                updated_at REAL NOT NULL,
                failure_reason TEXT,
                host BLOB
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
                storage_id INTEGER PRIMARY KEY,
                run_id TEXT NOT NULL,
                sequence INTEGER NOT NULL,
                event_type TEXT NOT NULL,
                step_key TEXT,
                timestamp REAL NOT NULL,
                body BLOB NOT NULL,
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
            "ALTER TABLE runs ADD COLUMN queued_at REAL",
            """
            CREATE TABLE cancel_requests (
                run_id TEXT PRIMARY KEY,
                requested_at REAL NOT NULL,
                requested_by TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                acquired_at REAL NOT NULL,
                expires_at REAL NOT NULL
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
                last_tick_at REAL,
                data BLOB NOT NULL,
                updated_at REAL NOT NULL
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
                tick_id TEXT PRIMARY KEY,
                instigator_id TEXT NOT NULL,
                tick_time REAL NOT NULL,
                status TEXT NOT NULL,
                body BLOB NOT NULL
            )
            """,
            "CREATE INDEX ticks_by_instigator_time ON ticks (instigator_id, tick_time)",
            """
            CREATE TABLE daemon_heartbeats (
                daemon_id TEXT PRIMARY KEY,
                last_heartbeat_at REAL NOT NULL,
                body BLOB NOT NULL
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


def current_version(connection: sqlite3.Connection) -> int:
    """The schema version of the database, 0 for an empty one."""
    row = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    (version,) = connection.execute(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version"
    ).fetchone()
    return int(version)


def migrate(
    connection: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS, *, path: str = ""
) -> list[int]:
    """Apply the migrations the database lacks, in order; return the versions applied.

    `connection` must be in autocommit mode (isolation_level=None). Raises
    StorageError when the database is newer than `migrations` (written by a
    later version of runtime) or a migration fails; a failed migration is
    rolled back and the ones before it stay applied.
    """
    _check_order(migrations)
    where = path or "the SQLite database"
    applied: list[int] = []
    connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    for migration in migrations:
        # BEGIN IMMEDIATE takes the write lock first, so two processes opening the
        # same new database do not both apply a migration.
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = current_version(connection)
            if migration.version <= version:
                connection.execute("COMMIT")
                continue
            for statement in migration.statements:
                connection.execute(statement)
            connection.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.description, time.time()),
            )
            connection.execute("COMMIT")
        except BaseException as exc:
            connection.execute("ROLLBACK")
            if isinstance(exc, StorageError | KeyboardInterrupt | SystemExit):
                raise
            raise StorageError(
                f"Migration {migration.version} ({migration.description}) of {where} failed: {exc}."
            ) from exc
        applied.append(migration.version)
    version = current_version(connection)
    if version > len(migrations):
        raise StorageError(
            f"{where} has schema version {version}, but this version of runtime knows only "
            f"up to {len(migrations)}; upgrade runtime to open it."
        )
    return applied

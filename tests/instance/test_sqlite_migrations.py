"""The migration runner: ordered, idempotent, one transaction each, refuses newer databases."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import TYPE_CHECKING

import pytest

from runtime.errors import StorageError
from runtime.instance.storage.sqlite import DATABASE_FILE_NAME, SqliteRunStorage
from runtime.instance.storage.sqlite_schema import MIGRATIONS, Migration, current_version, migrate
from tests.instance.storage_helpers import make_run

if TYPE_CHECKING:
    from pathlib import Path

LATEST = len(MIGRATIONS)
EXTRA = Migration(
    LATEST + 1,
    "add a priority column to runs",
    (
        "ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX runs_by_priority ON runs (priority)",
    ),
)


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_fresh_database_gets_every_migration_once(tmp_path: Path) -> None:
    connection = _connect(tmp_path / "db")
    assert migrate(connection) == list(range(1, LATEST + 1))
    assert migrate(connection) == []
    assert current_version(connection) == LATEST
    connection.close()


def test_appended_migration_applies_to_an_existing_database(tmp_path: Path) -> None:
    connection = _connect(tmp_path / "db")
    migrate(connection)
    connection.execute(
        "INSERT INTO runs (run_id, job_name, status, run_config, tags, created_at, updated_at) "
        "VALUES ('r1', 'etl', 'NOT_STARTED', x'80', x'80', 1, 1)"
    )
    assert migrate(connection, (*MIGRATIONS, EXTRA)) == [LATEST + 1]
    assert current_version(connection) == LATEST + 1
    # Existing rows survive and got the new column's default.
    assert connection.execute("SELECT run_id, priority FROM runs").fetchall() == [("r1", 0)]
    descriptions = [
        row[0]
        for row in connection.execute("SELECT description FROM schema_version ORDER BY version")
    ]
    assert descriptions == [*(m.description for m in MIGRATIONS), EXTRA.description]
    connection.close()


def test_failed_migration_rolls_back_and_keeps_earlier_ones(tmp_path: Path) -> None:
    broken = Migration(
        LATEST + 1, "half-broken", ("CREATE TABLE half (x INTEGER)", "THIS IS NOT SQL")
    )
    connection = _connect(tmp_path / "db")
    with pytest.raises(StorageError, match=rf"Migration {LATEST + 1} \(half-broken\) of .* failed"):
        migrate(connection, (*MIGRATIONS, broken), path="db")
    assert current_version(connection) == LATEST
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "half" not in tables
    connection.close()


def test_newer_database_is_refused(tmp_path: Path) -> None:
    connection = _connect(tmp_path / "db")
    migrate(connection, (*MIGRATIONS, EXTRA))
    with pytest.raises(
        StorageError,
        match=f"schema version {LATEST + 1}, but this version of runtime knows only up to {LATEST}",
    ):
        migrate(connection, MIGRATIONS, path="db")
    connection.close()


def test_misnumbered_migrations_are_a_programming_error(tmp_path: Path) -> None:
    connection = _connect(tmp_path / "db")
    with pytest.raises(ValueError, match=f"should be {LATEST + 1}"):
        migrate(connection, (*MIGRATIONS, EXTRA._replace(version=LATEST + 2)))
    connection.close()


@pytest.mark.anyio
async def test_storage_opens_with_an_extra_migration(tmp_path: Path) -> None:
    async with SqliteRunStorage(tmp_path) as storage:
        await storage.add_run(make_run("r1"))
    async with SqliteRunStorage(tmp_path, migrations=(*MIGRATIONS, EXTRA)) as storage:
        assert (await storage.get_run("r1")) is not None
    with closing(sqlite3.connect(tmp_path / DATABASE_FILE_NAME)) as connection:
        assert current_version(connection) == LATEST + 1
    # The old schema list now refuses the upgraded file.
    with pytest.raises(StorageError, match="upgrade runtime"):
        async with SqliteRunStorage(tmp_path):
            pass


@pytest.mark.anyio
async def test_a_database_of_the_first_schema_opens_and_keeps_its_runs(tmp_path: Path) -> None:
    # A database as the first release of runtime left it.
    with closing(_connect(tmp_path / DATABASE_FILE_NAME)) as connection:
        assert migrate(connection, MIGRATIONS[:1]) == [1]
        connection.execute(
            "INSERT INTO runs (run_id, job_name, status, run_config, tags, created_at, updated_at) "
            "VALUES ('old', 'etl', 'NOT_STARTED', x'80', x'80', 1, 1)"
        )
    async with SqliteRunStorage(tmp_path) as storage:
        assert storage.schema_version == LATEST
        old = await storage.get_run("old")
        assert old is not None and old.queued_at is None and old.job_name == "etl"
        assert await storage.acquire_lease("run_queue", "me", ttl=1, now=1.0)

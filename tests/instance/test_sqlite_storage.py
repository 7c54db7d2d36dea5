"""What is particular to SqliteRunStorage (the rest is in the conformance suite): the file,
its mode and permissions, errors opening it, a cancelled writer."""

from __future__ import annotations

import os
import sqlite3
import stat
from contextlib import closing
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.errors import StorageError
from runtime.instance.records import RunFilter
from runtime.instance.storage.sqlite import DATABASE_FILE_NAME, SqliteRunStorage
from tests.instance.storage_helpers import make_event, make_run

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.anyio


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqliteRunStorage]:
    async with SqliteRunStorage(tmp_path / "history") as storage:
        yield storage


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_database_is_a_wal_file_under_base_dir(tmp_path: Path) -> None:
    async with SqliteRunStorage(tmp_path / "a" / "b") as storage:
        assert (
            storage.describe() == f"SQLite database at {tmp_path / 'a' / 'b' / DATABASE_FILE_NAME}"
        )
    path = tmp_path / "a" / "b" / DATABASE_FILE_NAME
    with closing(sqlite3.connect(path)) as connection:
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert mode == "wal"
    assert {
        "runs",
        "run_tags",
        "events",
        "schema_version",
        "cancel_requests",
        "leases",
        "instigators",
        "instigator_run_keys",
        "ticks",
        "daemon_heartbeats",
    } <= tables
    assert {"runs_by_status", "runs_by_job", "run_tags_by_key_value"} <= tables


async def test_the_database_and_its_wal_and_shm_files_are_private(tmp_path: Path) -> None:
    base = tmp_path / "private" / "history"
    async with SqliteRunStorage(base) as storage:
        await storage.add_run(make_run("r1"))
        await storage.store_events([make_event("r1", 1)])
        path = storage.path
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        assert all(file.is_file() for file in files)
        assert {file.name: _mode(file) for file in files} == {file.name: 0o600 for file in files}
    assert _mode(base) == 0o700


async def test_an_existing_readable_database_is_made_private(tmp_path: Path) -> None:
    async with SqliteRunStorage(tmp_path):
        pass
    path = tmp_path / DATABASE_FILE_NAME
    os.chmod(path, 0o644)
    async with SqliteRunStorage(tmp_path):
        pass
    assert _mode(path) == 0o600


async def test_reopen_finds_everything(tmp_path: Path) -> None:
    async with SqliteRunStorage(tmp_path) as storage:
        await storage.add_run(make_run("r1", tags={"k": "v"}))
        await storage.store_events([make_event("r1", seq) for seq in range(1, 101)])
    async with SqliteRunStorage(tmp_path) as storage:
        assert [run.run_id for run in await storage.get_runs(RunFilter(tags={"k": "v"}))] == ["r1"]
        assert len(await storage.get_events("r1")) == 100


async def test_unopenable_database_raises_storage_error(tmp_path: Path) -> None:
    (tmp_path / DATABASE_FILE_NAME).mkdir()  # a directory where the file should be
    with pytest.raises(StorageError, match=DATABASE_FILE_NAME):
        async with SqliteRunStorage(tmp_path):
            pass


async def test_a_base_dir_under_a_file_raises_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match=r"Cannot open the SQLite database .*file"):
        async with SqliteRunStorage(tmp_path / "file" / "history"):
            pass


async def test_cancelled_caller_leaves_a_whole_batch_or_none(storage: SqliteRunStorage) -> None:
    batch = [make_event("r1", sequence) for sequence in range(1, 20_001)]
    with anyio.move_on_after(0.001) as scope:
        await storage.store_events(batch)
    assert scope.cancelled_caught
    # The write was already handed to the writer thread: it completes, all of it.
    await storage.store_events([make_event("r2", 1)])  # queued behind it, so it is done now
    assert await storage.last_sequence("r1") == 20_000
    assert await storage.last_sequence("r2") == 1

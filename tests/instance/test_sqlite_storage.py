"""SqliteRunStorage against real database files: runs, statuses, filters, events, cursors."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.errors import RunNotFoundError, StorageError
from runtime.instance.host import current_host
from runtime.instance.records import RunFilter, RunHost, RunStatus, RunStatusTransitionError
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


async def test_database_is_a_wal_file_under_base_dir(tmp_path: Path) -> None:
    async with SqliteRunStorage(tmp_path / "a" / "b"):
        pass
    path = tmp_path / "a" / "b" / DATABASE_FILE_NAME
    with closing(sqlite3.connect(path)) as connection:
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert mode == "wal"
    assert {"runs", "run_tags", "events", "schema_version"} <= tables
    assert {"runs_by_status", "runs_by_job", "run_tags_by_key_value"} <= tables


async def test_add_and_get_run_round_trips_every_field(storage: SqliteRunStorage) -> None:
    record = make_run(
        "r1",
        tags={"team": "data", "env": "prod"},
        run_config={"ops": {"extract": {"config": {"n": 3}}}},
        step_selection=["extract", "load"],
        parent_run_id="r0",
        root_run_id="r0",
    )
    await storage.add_run(record)
    assert await storage.get_run("r1") == record
    assert await storage.get_run("nope") is None


async def test_duplicate_run_id_is_rejected(storage: SqliteRunStorage) -> None:
    await storage.add_run(make_run("r1"))
    with pytest.raises(StorageError, match="run with id r1 already exists"):
        await storage.add_run(make_run("r1"))


async def test_status_lifecycle_sets_times_and_host(storage: SqliteRunStorage) -> None:
    await storage.add_run(make_run("r1"))
    starting = await storage.update_run_status("r1", RunStatus.STARTING, timestamp=10.0)
    assert starting.host == current_host()
    started = await storage.update_run_status("r1", RunStatus.STARTED, timestamp=11.0)
    assert started.started_at == 11.0 and started.ended_at is None
    done = await storage.update_run_status("r1", RunStatus.SUCCESS, timestamp=12.5)
    assert (done.started_at, done.ended_at, done.updated_at) == (11.0, 12.5, 12.5)
    assert done.is_finished
    assert await storage.get_run("r1") == done


async def test_illegal_transition_is_rejected_and_changes_nothing(
    storage: SqliteRunStorage,
) -> None:
    await storage.add_run(make_run("r1"))
    with pytest.raises(RunStatusTransitionError, match="cannot move from NOT_STARTED to SUCCESS"):
        await storage.update_run_status("r1", RunStatus.SUCCESS)
    await storage.update_run_status("r1", RunStatus.STARTING)
    await storage.update_run_status("r1", RunStatus.STARTED)
    await storage.update_run_status("r1", RunStatus.FAILURE, failure_reason="step x failed")
    with pytest.raises(RunStatusTransitionError, match="it is finished"):
        await storage.update_run_status("r1", RunStatus.STARTED)
    record = await storage.get_run("r1")
    assert record is not None
    assert record.status is RunStatus.FAILURE
    assert record.failure_reason == "step x failed"


async def test_expected_from_guards_the_transition(storage: SqliteRunStorage) -> None:
    await storage.add_run(make_run("r1"))
    await storage.update_run_status("r1", RunStatus.STARTING)
    # A legal move, refused because the caller expected the run to be queued still.
    with pytest.raises(RunStatusTransitionError, match="not one of NOT_STARTED"):
        await storage.update_run_status(
            "r1", RunStatus.CANCELED, expected_from={RunStatus.NOT_STARTED}
        )
    record = await storage.update_run_status(
        "r1", RunStatus.CANCELING, expected_from={RunStatus.STARTING, RunStatus.STARTED}
    )
    assert record.status is RunStatus.CANCELING


async def test_concurrent_transitions_only_one_wins(storage: SqliteRunStorage) -> None:
    await storage.add_run(make_run("r1"))
    outcomes: list[str] = []

    async def try_start(name: str) -> None:
        try:
            await storage.update_run_status(
                "r1", RunStatus.STARTING, expected_from={RunStatus.NOT_STARTED}
            )
        except RunStatusTransitionError:
            outcomes.append("refused")
        else:
            outcomes.append(name)

    async with anyio.create_task_group() as task_group:
        for index in range(10):
            task_group.start_soon(try_start, f"winner-{index}")
    assert sorted(outcomes).count("refused") == 9


async def test_unknown_run_status_update_raises(storage: SqliteRunStorage) -> None:
    with pytest.raises(RunNotFoundError, match="No run with id ghost"):
        await storage.update_run_status("ghost", RunStatus.STARTING)


async def test_explicit_host_is_recorded(storage: SqliteRunStorage) -> None:
    await storage.add_run(make_run("r1"))
    host = RunHost(hostname="elsewhere", pid=42, boot_id="b", process_start=7)
    record = await storage.update_run_status("r1", RunStatus.STARTING, host=host)
    assert record.host == host


async def test_filters_by_status_job_location_tags_and_time(storage: SqliteRunStorage) -> None:
    await storage.add_run(
        make_run("a", job_name="etl", tags={"team": "x", "env": "prod"}, created_at=1.0)
    )
    await storage.add_run(
        make_run("b", job_name="etl", tags={"team": "x", "env": "dev"}, created_at=2.0)
    )
    await storage.add_run(
        make_run("c", job_name="report", location_name="other", tags={"team": "y"}, created_at=3.0)
    )
    await storage.update_run_status("b", RunStatus.STARTING)

    async def ids(filter: RunFilter | None = None) -> list[str]:
        return [run.run_id for run in await storage.get_runs(filter)]

    assert await ids() == ["c", "b", "a"]  # newest first
    assert await ids(RunFilter(job_name="etl")) == ["b", "a"]
    assert await ids(RunFilter(location_name="other")) == ["c"]
    assert await ids(RunFilter(statuses=[RunStatus.STARTING])) == ["b"]
    assert await ids(RunFilter(statuses=[RunStatus.NOT_STARTED, RunStatus.STARTING])) == [
        "c",
        "b",
        "a",
    ]
    assert await ids(RunFilter(tags={"team": "x"})) == ["b", "a"]
    assert await ids(RunFilter(tags={"team": "x", "env": "prod"})) == ["a"]
    assert await ids(RunFilter(tags={"team": "y", "env": "prod"})) == []
    assert await ids(RunFilter(run_ids=["a", "c", "zzz"])) == ["c", "a"]
    assert await ids(RunFilter(created_after=1.5)) == ["c", "b"]
    assert await ids(RunFilter(created_after=1.5, created_before=2.5)) == ["b"]
    assert await storage.count_runs(RunFilter(tags={"team": "x"})) == 2
    assert await storage.count_runs() == 3


async def test_pages_of_runs_follow_the_cursor(storage: SqliteRunStorage) -> None:
    for index in range(7):
        await storage.add_run(make_run(f"r{index}", created_at=float(index)))
    seen: list[str] = []
    cursor: str | None = None
    while page := await storage.get_runs(limit=3, cursor=cursor):
        seen += [run.run_id for run in page]
        cursor = page[-1].run_id
    assert seen == [f"r{index}" for index in reversed(range(7))]
    with pytest.raises(RunNotFoundError, match="cursor 'missing'"):
        await storage.get_runs(cursor="missing")


async def test_event_batches_and_reads_after_a_sequence(storage: SqliteRunStorage) -> None:
    await storage.store_events([make_event("r1", seq) for seq in range(1, 6)])
    await storage.store_events([make_event("r2", 1), make_event("r1", 6), make_event("r2", 2)])
    events = await storage.get_events("r1")
    assert [event.sequence for event in events] == [1, 2, 3, 4, 5, 6]
    assert [event.sequence for event in await storage.get_events("r1", after_sequence=4)] == [5, 6]
    assert [event.sequence for event in await storage.get_events("r1", limit=2)] == [1, 2]
    assert await storage.last_sequence("r1") == 6
    assert await storage.last_sequence("nobody") == 0


async def test_stored_event_round_trips_exactly(storage: SqliteRunStorage) -> None:
    event = make_event("r1", 1, "STEP_START", step_key="extract")
    await storage.store_events([event])
    assert await storage.get_events("r1") == [event]


async def test_gap_or_duplicate_rejects_the_whole_batch(storage: SqliteRunStorage) -> None:
    await storage.store_events([make_event("r1", 1)])
    with pytest.raises(
        StorageError, match="run r1 has sequence 3, but the run's next sequence is 2"
    ):
        await storage.store_events([make_event("r2", 1), make_event("r1", 3)])
    with pytest.raises(StorageError, match="sequence 1, but the run's next sequence is 2"):
        await storage.store_events([make_event("r1", 1)])
    # Nothing of a refused batch is kept.
    assert await storage.get_events("r2") == []


async def test_global_cursor_reads_across_runs(storage: SqliteRunStorage) -> None:
    await storage.store_events([make_event("a", 1), make_event("b", 1), make_event("a", 2)])
    await storage.store_events([make_event("c", 1), make_event("b", 2)])
    first = await storage.get_events_after(0, limit=2)
    assert [(e.event.run_id, e.event.sequence) for e in first] == [("a", 1), ("b", 1)]
    rest = await storage.get_events_after(first[-1].storage_id)
    assert [(e.event.run_id, e.event.sequence) for e in rest] == [("a", 2), ("c", 1), ("b", 2)]
    only_b = await storage.get_events_after(0, run_ids=["b"])
    assert [(e.event.run_id, e.event.sequence) for e in only_b] == [("b", 1), ("b", 2)]
    assert await storage.get_events_after(rest[-1].storage_id) == []


async def test_reopen_finds_everything(tmp_path: Path) -> None:
    async with SqliteRunStorage(tmp_path) as storage:
        await storage.add_run(make_run("r1", tags={"k": "v"}))
        await storage.store_events([make_event("r1", seq) for seq in range(1, 101)])
    async with SqliteRunStorage(tmp_path) as storage:
        assert [run.run_id for run in await storage.get_runs(RunFilter(tags={"k": "v"}))] == ["r1"]
        assert len(await storage.get_events("r1")) == 100


async def test_closing_twice_is_harmless_and_use_after_close_raises(tmp_path: Path) -> None:
    storage = SqliteRunStorage(tmp_path)
    await storage.open()
    await storage.aclose()
    await storage.aclose()
    with pytest.raises(StorageError, match="is closed"):
        await storage.get_run("r1")


async def test_unopenable_database_raises_storage_error(tmp_path: Path) -> None:
    (tmp_path / DATABASE_FILE_NAME).mkdir()  # a directory where the file should be
    with pytest.raises(StorageError, match=DATABASE_FILE_NAME):
        async with SqliteRunStorage(tmp_path):
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

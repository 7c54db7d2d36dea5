"""The storage conformance suite: what every registered RunStorage backend must do.

Runs once per backend in conftest.BACKENDS, against a real database. Tests that
need two processes' view use `other_storage`, a second storage object on the
same database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import msgspec
import pytest

from runtime.errors import RunNotFoundError, StorageError
from runtime.instance.daemon_records import (
    DaemonHeartbeat,
    InstigatorKind,
    InstigatorState,
    InstigatorStatus,
    TickRecord,
    TickStatus,
    instigator_id,
)
from runtime.instance.records import RunChanges, RunFilter, RunHost, RunStatus
from tests.instance.storage_helpers import make_event, make_run

if TYPE_CHECKING:
    from runtime.instance.storage.base import RunStorage
    from tests.instance.conftest import StorageBackend

pytestmark = pytest.mark.anyio

HOST = RunHost(hostname="box", pid=42, boot_id="boot", process_start=7)


# --- what it is ----------------------------------------------------------------------


async def test_describe_is_one_line_and_the_schema_is_versioned(
    backend: StorageBackend, storage: RunStorage
) -> None:
    description = storage.describe()
    assert description and "\n" not in description
    assert storage.schema_version >= 2
    unopened = backend.storage()
    assert unopened.schema_version == 0
    assert unopened.describe() == description


async def test_closing_twice_is_harmless_and_use_after_close_raises(
    backend: StorageBackend,
) -> None:
    storage = backend.storage()
    await storage.open()
    await storage.add_run(make_run("r1"))
    await storage.aclose()
    await storage.aclose()
    with pytest.raises(StorageError, match="closed"):
        await storage.get_run("r1")
    async with backend.storage() as reopened:
        assert await reopened.get_run("r1") is not None


# --- runs ---------------------------------------------------------------------------------


async def test_add_and_get_run_round_trips_every_field(storage: RunStorage) -> None:
    record = make_run(
        "r1",
        tags={"team": "data", "env": "prod"},
        run_config={"ops": {"extract": {"config": {"n": 3}}}},
        step_selection=["extract", "load"],
        parent_run_id="r0",
        root_run_id="r0",
        host=HOST,
        queued_at=5.0,
        failure_reason="not yet",
        started_at=3.0,
        ended_at=4.0,
    )
    await storage.add_run(record)
    assert await storage.get_run("r1") == record
    assert await storage.get_run("nope") is None


async def test_duplicate_run_id_is_rejected(storage: RunStorage) -> None:
    await storage.add_run(make_run("r1"))
    with pytest.raises(StorageError, match="run with id r1 already exists"):
        await storage.add_run(make_run("r1", job_name="other"))
    stored = await storage.get_run("r1")
    assert stored is not None and stored.job_name == "etl"


async def test_filters_by_status_job_location_tags_time_and_queue(storage: RunStorage) -> None:
    await storage.add_run(
        make_run("a", job_name="etl", tags={"team": "x", "env": "prod"}, created_at=1.0)
    )
    await storage.add_run(
        make_run(
            "b",
            job_name="etl",
            tags={"team": "x", "env": "dev"},
            created_at=2.0,
            status=RunStatus.STARTING,
        )
    )
    await storage.add_run(
        make_run(
            "c",
            job_name="report",
            location_name="other",
            tags={"team": "y"},
            created_at=3.0,
            queued_at=3.0,
        )
    )

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
    assert await ids(RunFilter(queued=True)) == ["c"]
    assert await ids(RunFilter(queued=False, statuses=[RunStatus.NOT_STARTED])) == ["a"]
    assert await storage.count_runs(RunFilter(tags={"team": "x"})) == 2
    assert await storage.count_runs(RunFilter(queued=True)) == 1
    assert await storage.count_runs() == 3


async def test_pages_of_runs_follow_the_cursor(storage: RunStorage) -> None:
    for index in range(7):
        await storage.add_run(make_run(f"r{index}", created_at=float(index)))
    seen: list[str] = []
    cursor: str | None = None
    while page := await storage.get_runs(limit=3, cursor=cursor):
        assert len(page) <= 3
        seen += [run.run_id for run in page]
        cursor = page[-1].run_id
    assert seen == [f"r{index}" for index in reversed(range(7))]
    filtered = await storage.get_runs(RunFilter(run_ids=["r1", "r3", "r5"]), cursor="r5")
    assert [run.run_id for run in filtered] == ["r3", "r1"]
    with pytest.raises(RunNotFoundError, match="cursor 'missing'"):
        await storage.get_runs(cursor="missing")


async def test_update_run_applies_only_what_changes_when_the_status_is_expected(
    storage: RunStorage,
) -> None:
    await storage.add_run(make_run("r1", created_at=1.0, failure_reason="kept"))
    updated = await storage.update_run(
        "r1",
        RunChanges(status=RunStatus.STARTED, updated_at=2.0, started_at=2.0, host=HOST),
        expected_statuses={RunStatus.NOT_STARTED, RunStatus.STARTING},
    )
    assert updated is not None
    assert (updated.status, updated.updated_at, updated.started_at) == (RunStatus.STARTED, 2.0, 2.0)
    assert (updated.host, updated.failure_reason, updated.ended_at) == (HOST, "kept", None)
    assert await storage.get_run("r1") == updated


async def test_update_run_is_a_compare_and_set(storage: RunStorage) -> None:
    await storage.add_run(make_run("r1"))
    refused = await storage.update_run(
        "r1",
        RunChanges(status=RunStatus.FAILURE, failure_reason="x"),
        expected_statuses={RunStatus.STARTED},
    )
    assert refused is None
    stored = await storage.get_run("r1")
    assert stored is not None
    assert (stored.status, stored.failure_reason) == (RunStatus.NOT_STARTED, None)
    with pytest.raises(RunNotFoundError, match="ghost"):
        await storage.update_run(
            "ghost",
            RunChanges(status=RunStatus.STARTING),
            expected_statuses={RunStatus.NOT_STARTED},
        )


async def test_concurrent_compare_and_sets_from_two_storages_have_one_winner(
    storage: RunStorage, other_storage: RunStorage
) -> None:
    await storage.add_run(make_run("r1"))
    winners: list[str] = []

    async def start(name: str, on: RunStorage) -> None:
        changes = RunChanges(status=RunStatus.STARTING, failure_reason=name)
        if await on.update_run("r1", changes, expected_statuses={RunStatus.NOT_STARTED}):
            winners.append(name)

    async with anyio.create_task_group() as group:
        for index in range(10):
            group.start_soon(start, f"w{index}", storage if index % 2 else other_storage)
    assert len(winners) == 1
    stored = await other_storage.get_run("r1")
    assert stored is not None and stored.failure_reason == winners[0]


# --- events ---------------------------------------------------------------------------


async def test_event_batches_and_reads_after_a_sequence(storage: RunStorage) -> None:
    await storage.store_events([make_event("r1", seq) for seq in range(1, 6)])
    await storage.store_events([make_event("r2", 1), make_event("r1", 6), make_event("r2", 2)])
    events = await storage.get_events("r1")
    assert [event.sequence for event in events] == [1, 2, 3, 4, 5, 6]
    assert [event.sequence for event in await storage.get_events("r1", after_sequence=4)] == [5, 6]
    assert [event.sequence for event in await storage.get_events("r1", limit=2)] == [1, 2]
    assert await storage.last_sequence("r1") == 6
    assert await storage.last_sequence("nobody") == 0
    await storage.store_events([])  # an empty batch is nothing to do


async def test_stored_event_round_trips_exactly(storage: RunStorage) -> None:
    event = make_event("r1", 1, "STEP_START", step_key="extract")
    await storage.store_events([event])
    assert await storage.get_events("r1") == [event]


async def test_a_sequence_is_stored_once_and_a_refused_batch_leaves_nothing(
    storage: RunStorage,
) -> None:
    await storage.store_events([make_event("r1", 1)])
    with pytest.raises(StorageError, match=r"run r1 has sequence 1, which is already stored"):
        await storage.store_events([make_event("r2", 1), make_event("r1", 1)])
    with pytest.raises(StorageError, match=r"run r3 has sequence 2, which appears twice"):
        await storage.store_events([make_event("r3", 2), make_event("r3", 2)])
    assert await storage.get_events("r2") == []
    assert await storage.get_events("r3") == []
    # Numbering is the RunLog's job: the storage only keeps each number unique.
    await storage.store_events([make_event("r1", 5)])
    assert [event.sequence for event in await storage.get_events("r1")] == [1, 5]


async def test_global_cursor_reads_across_runs(storage: RunStorage) -> None:
    await storage.store_events([make_event("a", 1), make_event("b", 1), make_event("a", 2)])
    await storage.store_events([make_event("c", 1), make_event("b", 2)])
    first = await storage.get_events_after(0, limit=2)
    assert [(e.event.run_id, e.event.sequence) for e in first] == [("a", 1), ("b", 1)]
    rest = await storage.get_events_after(first[-1].storage_id)
    assert [(e.event.run_id, e.event.sequence) for e in rest] == [("a", 2), ("c", 1), ("b", 2)]
    only_b = await storage.get_events_after(0, run_ids=["b"])
    assert [(e.event.run_id, e.event.sequence) for e in only_b] == [("b", 1), ("b", 2)]
    assert await storage.get_events_after(rest[-1].storage_id) == []


async def test_wait_for_events_wakes_on_another_storage_s_write(
    storage: RunStorage, other_storage: RunStorage
) -> None:
    await storage.store_events([make_event("r1", 1)])
    woke = anyio.Event()

    async def wait() -> None:
        await storage.wait_for_events("r1", 1, timeout=600)
        woke.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await anyio.sleep(0.05)
            assert not woke.is_set()
            await other_storage.store_events([make_event("r1", 2)])
            await woke.wait()


async def test_wait_for_events_returns_at_once_or_at_the_timeout(storage: RunStorage) -> None:
    await storage.store_events([make_event("r1", 1), make_event("r1", 2)])
    with anyio.fail_after(30):
        await storage.wait_for_events("r1", 1, timeout=600)  # already there
        await storage.wait_for_events("r1", 2, timeout=0.05)  # nothing new: returns, no error
        await storage.wait_for_events("nobody", 0, timeout=0.05)


# --- cancel requests ---------------------------------------------------------------------


async def test_cancel_requests_keep_the_first_and_read_by_run(
    storage: RunStorage, other_storage: RunStorage
) -> None:
    await storage.add_cancel_request("r1", 1.0, "box (pid 1)")
    await other_storage.add_cancel_request("r1", 2.0, "other (pid 2)")
    await other_storage.add_cancel_request("r2", 3.0, "other (pid 2)")
    requests = await storage.get_cancel_requests(["r1", "r2", "r3"])
    assert {(r.run_id, r.requested_at, r.requested_by) for r in requests} == {
        ("r1", 1.0, "box (pid 1)"),
        ("r2", 3.0, "other (pid 2)"),
    }
    assert [r.run_id for r in await storage.get_cancel_requests(["r2"])] == ["r2"]
    assert await storage.get_cancel_requests([]) == []
    many = [f"x{index}" for index in range(1200)]
    for run_id in many[::400]:
        await storage.add_cancel_request(run_id, 4.0, "box (pid 1)")
    assert {r.run_id for r in await storage.get_cancel_requests(many)} == set(many[::400])


# --- leases ----------------------------------------------------------------------------------


async def test_a_lease_has_one_holder_until_released_or_expired(
    storage: RunStorage, other_storage: RunStorage
) -> None:
    assert await storage.get_lease("queue") is None
    assert await storage.acquire_lease("queue", "a", ttl=10, now=100.0)
    assert not await other_storage.acquire_lease("queue", "b", ttl=10, now=105.0)
    lease = await other_storage.get_lease("queue")
    assert lease is not None
    assert (lease.holder, lease.acquired_at, lease.expires_at) == ("a", 100.0, 110.0)
    assert lease.is_held(109.0) and not lease.is_held(110.0)

    # Renewal by the holder pushes the expiry, keeps when it was acquired.
    assert await other_storage.acquire_lease("queue", "a", ttl=10, now=108.0)
    renewed = await storage.get_lease("queue")
    assert renewed is not None and (renewed.acquired_at, renewed.expires_at) == (100.0, 118.0)
    assert not await storage.acquire_lease("queue", "b", ttl=10, now=115.0)

    # Expired: anyone takes it.
    assert await other_storage.acquire_lease("queue", "b", ttl=5, now=118.0)
    taken = await storage.get_lease("queue")
    assert taken is not None and (taken.holder, taken.acquired_at) == ("b", 118.0)

    # Only the holder releases it.
    assert not await storage.release_lease("queue", "a")
    assert await storage.release_lease("queue", "b")
    assert await storage.get_lease("queue") is None
    assert await storage.acquire_lease("queue", "a", ttl=1, now=119.0)
    # Other names are other leases.
    assert await storage.acquire_lease("daemon", "b", ttl=1, now=119.0)


async def test_concurrent_acquires_of_a_free_lease_have_one_winner(
    storage: RunStorage, other_storage: RunStorage
) -> None:
    winners: list[str] = []

    async def take(holder: str, on: RunStorage) -> None:
        if await on.acquire_lease("daemon", holder, ttl=30, now=1.0):
            winners.append(holder)

    async with anyio.create_task_group() as group:
        for index in range(8):
            group.start_soon(take, f"h{index}", storage if index % 2 else other_storage)
    assert len(winners) == 1
    lease = await storage.get_lease("daemon")
    assert lease is not None and lease.holder == winners[0]


# --- schedules and sensors --------------------------------------------------------------


def _state(
    name: str, kind: InstigatorKind, location: str = "loc", **changes: Any
) -> InstigatorState:
    state = InstigatorState(name=name, kind=kind, location=location, updated_at=1.0)
    return msgspec.structs.replace(state, **changes)


async def test_instigator_state_is_stored_replaced_and_listed(storage: RunStorage) -> None:
    nightly = _state(
        "nightly",
        InstigatorKind.SCHEDULE,
        status=InstigatorStatus.RUNNING,
        last_tick_at=10.0,
        data={"last_scheduled": 9.0},
    )
    files = _state("files", InstigatorKind.SENSOR, cursor="c1")
    elsewhere = _state("files", InstigatorKind.SENSOR, location="other")
    for state in (nightly, files, elsewhere):
        await storage.set_instigator_state(state)
    assert nightly.instigator_id == instigator_id("schedule", "loc", "nightly")
    assert await storage.get_instigator_state(nightly.instigator_id) == nightly
    assert await storage.get_instigator_state("sensor:loc/nope") is None

    moved = _state("files", InstigatorKind.SENSOR, cursor="c2", status=InstigatorStatus.RUNNING)
    await storage.set_instigator_state(moved)
    assert await storage.get_instigator_state(files.instigator_id) == moved

    everything = await storage.get_instigator_states()
    assert [s.instigator_id for s in everything] == sorted(
        [nightly.instigator_id, files.instigator_id, elsewhere.instigator_id]
    )
    sensors = await storage.get_instigator_states(kind=InstigatorKind.SENSOR)
    assert {s.location for s in sensors} == {"loc", "other"}
    assert await storage.get_instigator_states(kind=InstigatorKind.SCHEDULE, location="other") == []
    assert await storage.get_instigator_states(location="other") == [elsewhere]


async def test_run_keys_are_claimed_once(storage: RunStorage, other_storage: RunStorage) -> None:
    sensor = instigator_id("sensor", "loc", "files")
    assert await storage.add_run_keys(sensor, ["a", "b", "a"]) == {"a", "b"}
    assert await other_storage.add_run_keys(sensor, ["b", "c"]) == {"c"}
    # Keys are per instigator.
    assert await storage.add_run_keys(instigator_id("sensor", "loc", "other"), ["a"]) == {"a"}
    assert await storage.add_run_keys(sensor, []) == set()


async def test_concurrent_run_key_claims_never_share_a_key(
    storage: RunStorage, other_storage: RunStorage
) -> None:
    sensor = instigator_id("sensor", "loc", "files")
    keys = [f"k{index}" for index in range(200)]
    claimed: list[set[str]] = []

    async def claim(on: RunStorage, order: list[str]) -> None:
        for start in range(0, len(order), 20):
            claimed.append(await on.add_run_keys(sensor, order[start : start + 20]))

    async with anyio.create_task_group() as group:
        group.start_soon(claim, storage, keys)
        group.start_soon(claim, other_storage, keys[::-1])
        group.start_soon(claim, storage, keys[50:] + keys[:50])
    union: set[str] = set()
    for batch in claimed:
        assert not union & batch, "a key was handed out twice"
        union |= batch
    assert union == set(keys)


# --- ticks --------------------------------------------------------------------------------


def _tick(tick_id: str, at: float, sensor: str = "sensor:loc/files", **changes: Any) -> TickRecord:
    tick = TickRecord(
        tick_id=tick_id, instigator_id=sensor, tick_time=at, created_at=at, updated_at=at
    )
    return msgspec.structs.replace(tick, **changes)


async def test_ticks_are_added_updated_and_listed_newest_first(storage: RunStorage) -> None:
    await storage.add_tick(_tick("t1", 1.0))
    await storage.add_tick(_tick("t3", 3.0))
    await storage.add_tick(_tick("t2", 2.0))
    await storage.add_tick(_tick("o1", 5.0, sensor="sensor:loc/other"))
    done = _tick(
        "t3",
        3.0,
        status=TickStatus.SUCCESS,
        run_ids=["r1", "r2"],
        cursor="c9",
    )
    await storage.update_tick(done)
    skipped = _tick("t2", 2.0, status=TickStatus.SKIPPED, skip_reason="nothing new")
    await storage.update_tick(skipped)
    failed = _tick("t1", 1.0, status=TickStatus.FAILURE, error="boom")
    await storage.update_tick(failed)

    assert await storage.get_ticks("sensor:loc/files") == [done, skipped, failed]
    assert await storage.get_ticks("sensor:loc/files", limit=2) == [done, skipped]
    assert await storage.get_ticks(
        "sensor:loc/files", statuses=[TickStatus.FAILURE, TickStatus.SKIPPED]
    ) == [skipped, failed]
    assert [t.tick_id for t in await storage.get_ticks("sensor:loc/other")] == ["o1"]
    assert await storage.get_ticks("sensor:loc/none") == []

    with pytest.raises(StorageError, match="tick with id t1 already exists"):
        await storage.add_tick(_tick("t1", 9.0))
    with pytest.raises(StorageError, match="No tick with id ghost"):
        await storage.update_tick(_tick("ghost", 9.0))


# --- daemon heartbeats ----------------------------------------------------------------------


async def test_heartbeats_keep_the_latest_per_daemon(
    storage: RunStorage, other_storage: RunStorage
) -> None:
    first = DaemonHeartbeat(daemon_id="scheduler", host=HOST, last_heartbeat_at=1.0)
    await storage.add_daemon_heartbeat(first)
    sensor = DaemonHeartbeat(
        daemon_id="sensors", host=HOST, last_heartbeat_at=1.5, info={"sensors": 3}
    )
    await other_storage.add_daemon_heartbeat(sensor)
    later = DaemonHeartbeat(
        daemon_id="scheduler", host=HOST, last_heartbeat_at=2.0, info={"ticks": 1}
    )
    await other_storage.add_daemon_heartbeat(later)
    assert await storage.get_daemon_heartbeats() == [later, sensor]

"""Controlling runs through the instance from any process: cancel requests, waiting for
events stored elsewhere, and the daemon's leases, instigator state, run keys, ticks and heartbeats."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import msgspec
import pytest

from runtime.errors import RunNotFoundError, StorageError
from runtime.instance.daemon_records import (
    InstigatorKind,
    InstigatorState,
    InstigatorStatus,
    TickStatus,
    instigator_id,
)
from runtime.instance.host import current_host
from runtime.instance.instance import Instance
from runtime.instance.records import RunStatus
from tests.instance.storage_helpers import make_event

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.anyio


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Instance, Instance]]:
    """Two instances on one RUNTIME_HOME, as two host processes would open it."""
    async with Instance.from_home(tmp_path) as first, Instance.from_home(tmp_path) as second:
        yield first, second


async def test_a_cancel_request_is_seen_by_every_instance(pair: tuple[Instance, Instance]) -> None:
    first, second = pair
    await first.create_run("etl", run_id="r1")
    await first.create_run("etl", run_id="r2")
    record = await second.request_cancel("r1")
    assert record.run_id == "r1" and record.status is RunStatus.NOT_STARTED
    await second.request_cancel("r1")  # asking twice keeps the first request
    assert await first.cancel_requests(["r1", "r2", "ghost"]) == {"r1"}
    assert await first.cancel_requests([]) == set()
    [request] = await first.storage.get_cancel_requests(["r1"])
    assert request.requested_by == current_host().describe()


async def test_cancelling_a_finished_run_does_nothing_and_an_unknown_one_raises(
    pair: tuple[Instance, Instance],
) -> None:
    first, second = pair
    await first.create_run("etl", run_id="done")
    await first.update_run_status("done", RunStatus.CANCELED)
    record = await second.request_cancel("done")
    assert record.status is RunStatus.CANCELED
    assert await first.cancel_requests(["done"]) == set()
    with pytest.raises(RunNotFoundError, match="Cannot cancel run ghost"):
        await second.request_cancel("ghost")


async def test_waiting_for_events_wakes_on_this_writer_and_on_another_process(
    pair: tuple[Instance, Instance],
) -> None:
    first, second = pair
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            woke = anyio.Event()

            async def wait(after: int) -> None:
                await first.wait_for_new_events("r1", after, timeout=600)
                woke.set()

            # Stored by this instance's own writer.
            group.start_soon(wait, 0)
            first.event_writer.put(make_event("r1", 1))
            await woke.wait()

            # Stored by another instance (another process, as far as `first` knows).
            woke = anyio.Event()
            group.start_soon(wait, 1)
            await anyio.sleep(0.05)
            assert not woke.is_set()
            await second.event_writer.store([make_event("r1", 2)])
            await woke.wait()
        # Nothing new: returns at the timeout, without an error.
        await first.wait_for_new_events("r1", 2, timeout=0.05)


async def test_a_lease_taken_through_one_instance_holds_off_the_other(
    pair: tuple[Instance, Instance],
) -> None:
    first, second = pair
    assert first.lease_holder != second.lease_holder
    assert await first.acquire_lease("daemon", ttl=60)
    assert await first.acquire_lease("daemon", ttl=60)  # renewing
    assert not await second.acquire_lease("daemon", ttl=60)
    assert not await second.release_lease("daemon")
    assert await first.release_lease("daemon")
    assert await second.acquire_lease("daemon", ttl=60)


async def test_the_daemon_s_state_through_the_instance(pair: tuple[Instance, Instance]) -> None:
    first, second = pair
    state = InstigatorState(
        name="nightly",
        kind=InstigatorKind.SCHEDULE,
        location="team_one",
        status=InstigatorStatus.RUNNING,
        updated_at=0.0,
    )
    stored = await first.set_instigator_state(state)
    assert stored.updated_at > 0
    nightly = instigator_id("schedule", "team_one", "nightly")
    assert await second.get_instigator_state(nightly) == stored
    assert await second.get_instigator_states(kind=InstigatorKind.SENSOR) == []
    assert await second.get_instigator_states(location="team_one") == [stored]

    assert await first.add_run_keys(nightly, ["2024-01-01", "2024-01-02"]) == {
        "2024-01-01",
        "2024-01-02",
    }
    assert await second.add_run_keys(nightly, ["2024-01-02", "2024-01-03"]) == {"2024-01-03"}
    assert await second.add_run_keys(nightly, []) == set()

    tick = await first.create_tick(nightly, tick_time=100.0)
    assert tick.status is TickStatus.STARTED and tick.instigator_id == nightly
    finished = await second.update_tick(
        msgspec.structs.replace(tick, status=TickStatus.SUCCESS, run_ids=["r1"])
    )
    assert finished.updated_at >= tick.updated_at
    later = await first.create_tick(nightly, tick_time=200.0)
    assert await second.get_ticks(nightly) == [later, finished]
    assert await second.get_ticks(nightly, statuses=[TickStatus.SUCCESS]) == [finished]
    assert await second.get_ticks(nightly, limit=1) == [later]
    with pytest.raises(StorageError, match="No tick with id"):
        await first.update_tick(msgspec.structs.replace(tick, tick_id="ghost"))

    beat = await first.record_heartbeat("scheduler", {"ticks": 2})
    assert beat.host == current_host()
    newer = await second.record_heartbeat("scheduler")
    assert await first.get_daemon_heartbeats() == [newer]

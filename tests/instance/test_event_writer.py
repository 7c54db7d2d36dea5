"""EventWriter over a real SQLite file: batching, ordering, durability, failure isolation, loop latency."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest

from runtime.errors import StorageError
from runtime.instance.storage.event_writer import EventWriter
from runtime.instance.storage.sqlite import SqliteRunStorage
from runtime.protocol.run_log import RunLog
from tests.instance.storage_helpers import make_event

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


async def test_appends_coalesce_into_few_batches(tmp_path: Path) -> None:
    async with SqliteRunStorage(tmp_path) as storage, EventWriter(storage) as writer:
        for sequence in range(1, 2001):
            writer.append(make_event("r1", sequence))
        await writer.flush()
        assert writer.batches_written <= 2  # nothing yielded to the writer between appends
        events = await storage.get_events("r1")
        assert [event.sequence for event in events] == list(range(1, 2001))


async def test_backlog_is_split_into_bounded_transactions(tmp_path: Path) -> None:
    async with SqliteRunStorage(tmp_path) as storage, EventWriter(storage, max_batch=100) as writer:
        await writer.store(make_event("r1", sequence) for sequence in range(1, 1001))
        assert writer.batches_written == 10
        assert await storage.last_sequence("r1") == 1000


async def test_hundred_concurrent_writers_keep_every_run_in_order(tmp_path: Path) -> None:
    per_run = 50

    async def run(writer: EventWriter, run_id: str) -> None:
        for sequence in range(1, per_run + 1):
            writer.append(make_event(run_id, sequence))
            if sequence % 7 == 0:
                await anyio.lowlevel.checkpoint()  # interleave with the other runs
        await writer.flush(run_id)

    async with SqliteRunStorage(tmp_path) as storage, EventWriter(storage) as writer:
        async with anyio.create_task_group() as task_group:
            for index in range(100):
                task_group.start_soon(run, writer, f"run-{index}")
        assert writer.batches_written < 100 * per_run  # batched, not one transaction each
        everything = await storage.get_events_after(0, limit=100_000)
        assert len(everything) == 100 * per_run
        for index in range(100):
            events = await storage.get_events(f"run-{index}")
            assert [event.sequence for event in events] == list(range(1, per_run + 1))


async def test_flushed_events_survive_close_and_reopen(tmp_path: Path) -> None:
    async with SqliteRunStorage(tmp_path) as storage, EventWriter(storage) as writer:
        writer.append_many(make_event("r1", sequence) for sequence in range(1, 301))
        await writer.flush()
        # Appended but not flushed: leaving the writer must still store these.
        writer.append_many(make_event("r1", sequence) for sequence in range(301, 351))
    async with SqliteRunStorage(tmp_path) as storage:
        assert await storage.last_sequence("r1") == 350
        assert len(await storage.get_events("r1")) == 350


async def test_a_bad_run_does_not_lose_other_runs_events(tmp_path: Path) -> None:
    async with SqliteRunStorage(tmp_path) as storage, EventWriter(storage) as writer:
        await storage.store_events([make_event("bad", 1)])
        writer.append(make_event("good", 1))
        writer.append(make_event("bad", 1))  # stored already: a second writer of run "bad"
        writer.append(make_event("good", 2))
        with pytest.raises(StorageError, match="run bad"):
            await writer.flush()
        with pytest.raises(StorageError, match="sequence 1, which is already stored"):
            await writer.flush("bad")
        await writer.flush("good")
        assert [event.sequence for event in await storage.get_events("good")] == [1, 2]
        assert len(await storage.get_events("bad")) == 1


async def test_put_makes_the_writer_a_run_log_sink_from_the_loop_and_threads(
    tmp_path: Path,
) -> None:
    async with SqliteRunStorage(tmp_path) as storage, EventWriter(storage) as writer:
        log = RunLog("r1", writer, next_sequence=1)
        log.emit("RUN_START")

        def from_a_thread() -> None:
            for index in range(100):
                log.emit("LOG", step_key=f"s{index}")

        async with anyio.create_task_group() as group:
            # The loop emits too while the thread does: one log, two threads, one order.
            group.start_soon(anyio.to_thread.run_sync, from_a_thread)
            for _ in range(20):
                log.emit("ENGINE_EVENT")
                await anyio.lowlevel.checkpoint()
        log.emit("RUN_SUCCESS")
        await writer.flush()  # counts what the thread put as soon as it was put
        stored = await storage.get_events_after(0, limit=1000)
        # Stored in sequence order: the buffer took them in the order the log numbered them.
        assert [e.event.sequence for e in stored] == list(range(1, 123))
        events = await storage.get_events("r1")
        logs = [event.step_key for event in events if event.event_type == "LOG"]
        assert logs == [f"s{index}" for index in range(100)]


async def test_append_after_close_raises(tmp_path: Path) -> None:
    async with SqliteRunStorage(tmp_path) as storage:
        async with EventWriter(storage) as writer:
            pass
        await writer.aclose()  # twice is harmless
        with pytest.raises(StorageError, match="closed"):
            writer.append(make_event("r1", 1))
        with pytest.raises(StorageError, match="closed"):
            writer.put(make_event("r1", 1))


async def test_wait_for_new_events_wakes_followers(tmp_path: Path) -> None:
    async with SqliteRunStorage(tmp_path) as storage, EventWriter(storage) as writer:
        seen: list[int] = []

        async def follow() -> None:
            after = 0
            while after < 5:
                await writer.wait_for_new_events("r1", after)
                events = await storage.get_events("r1", after_sequence=after)
                seen.extend(event.sequence for event in events)
                after = events[-1].sequence

        with anyio.fail_after(5):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(follow)
                for sequence in range(1, 6):
                    await anyio.sleep(0.01)
                    writer.append(
                        make_event("r1", sequence, "RUN_SUCCESS" if sequence == 5 else "LOG")
                    )
        assert seen == [1, 2, 3, 4, 5]
        # Already stored (and ended): returns at once.
        with anyio.fail_after(1):
            await writer.wait_for_new_events("r1", 4)


async def test_closing_wakes_waiters_with_an_error(tmp_path: Path) -> None:
    async with SqliteRunStorage(tmp_path) as storage:
        writer = EventWriter(storage)
        with anyio.fail_after(5):
            async with writer, anyio.create_task_group() as task_group:

                async def wait() -> None:
                    with pytest.raises(StorageError, match="closed while waiting"):
                        await writer.wait_for_new_events("never")

                task_group.start_soon(wait)
                await anyio.sleep(0.01)
                await writer.aclose()


@pytest.mark.timeout(60)
async def test_the_loop_keeps_ticking_while_50k_events_are_written(tmp_path: Path) -> None:
    gaps: list[float] = []
    done = anyio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await anyio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async with SqliteRunStorage(tmp_path) as storage, EventWriter(storage) as writer:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(ticker)
            started = time.perf_counter()
            for run in range(10):
                for sequence in range(1, 5001):
                    writer.append(make_event(f"r{run}", sequence))
                    if sequence % 500 == 0:
                        await (
                            anyio.lowlevel.checkpoint()
                        )  # a producer yields now and then, as a run does
            await writer.flush()
            elapsed = time.perf_counter() - started
            done.set()
        assert len(await storage.get_events_after(0, limit=60_000)) == 50_000
    # The writes took many ticker periods, and the ticker never stalled on them: every
    # gap is far below the total time spent writing.
    assert elapsed > 0.05
    assert len(gaps) > 10
    assert max(gaps) < max(0.1, elapsed / 4), (max(gaps), elapsed)


async def test_events_appended_before_a_cancellation_are_still_stored(tmp_path: Path) -> None:
    with anyio.CancelScope() as scope:
        async with SqliteRunStorage(tmp_path) as storage, EventWriter(storage) as writer:
            writer.append_many(make_event("r1", sequence) for sequence in range(1, 1001))
            scope.cancel()
            await anyio.sleep(1)  # cancelled here, with the events maybe still buffered
            pytest.fail("not cancelled")
    async with SqliteRunStorage(tmp_path) as storage:
        assert await storage.last_sequence("r1") == 1000


async def test_the_body_s_exception_propagates_unwrapped_and_pending_events_are_stored(
    tmp_path: Path,
) -> None:
    async with SqliteRunStorage(tmp_path) as storage:
        with pytest.raises(StorageError, match="raised by the body") as raised:
            async with EventWriter(storage) as writer:
                writer.append_many(make_event("r1", sequence) for sequence in range(1, 101))
                raise StorageError("raised by the body")
        # Not an ExceptionGroup from the writer's task group: the very exception.
        assert type(raised.value) is StorageError
        assert await storage.last_sequence("r1") == 100

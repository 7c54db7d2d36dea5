"""RunLog and EventBuffer: gapless sequences from many threads, batches in order."""

from __future__ import annotations

import threading

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from runtime.execution.events import EventBuffer
from runtime.protocol.messages import LogPayload, RunEvent
from runtime.protocol.run_log import ListSink, RunLog


def test_emitter_stamps_run_id_gapless_sequence_and_time() -> None:
    sink = ListSink()
    emitter = RunLog("r1", sink)
    first = emitter.emit("RUN_START")
    second = emitter.emit("STEP_START", "a")
    assert sink.events == [first, second]
    assert (first.run_id, first.sequence, second.sequence) == ("r1", 1, 2)
    assert second.step_key == "a" and second.timestamp >= first.timestamp > 0
    assert emitter.last_sequence == 2


def test_emitter_keeps_sequence_and_delivery_order_together_across_threads() -> None:
    sink = ListSink()
    emitter = RunLog("r1", sink)

    def spam() -> None:
        for i in range(2000):
            emitter.emit("LOG", "s", LogPayload(message=str(i)))

    threads = [threading.Thread(target=spam) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [e.sequence for e in sink.events] == list(range(1, 8001))


@pytest.mark.anyio
async def test_buffer_yields_batches_in_order_from_the_loop_and_threads() -> None:
    buffer = EventBuffer(max_batch=500)
    emitter = RunLog("r1", buffer)
    received: list[RunEvent] = []
    batch_sizes: list[int] = []

    async def consume() -> None:
        async for batch in buffer.batches():
            batch_sizes.append(len(batch))
            received.extend(batch)

    def from_thread() -> None:
        for _ in range(3000):
            emitter.emit("LOG", "t", LogPayload(message="x"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        for _ in range(1000):
            emitter.emit("LOG", "loop", LogPayload(message="y"))
        await anyio.to_thread.run_sync(from_thread)
        await anyio.lowlevel.checkpoint()
        buffer.close()
    assert [e.sequence for e in received] == list(range(1, 4001))
    assert max(batch_sizes) <= 500
    # Bursts are delivered together, not one wake-up per event.
    assert len(batch_sizes) < 200


@pytest.mark.anyio
async def test_buffer_close_ends_iteration_after_pending_events_and_twice_is_harmless() -> None:
    buffer = EventBuffer()
    emitter = RunLog("r1", buffer)
    emitter.emit("RUN_START")
    buffer.close()
    buffer.close()
    batches = [batch async for batch in buffer.batches()]
    assert [[e.event_type for e in b] for b in batches] == [["RUN_START"]]


@pytest.mark.anyio
async def test_buffer_wakes_a_waiting_consumer_from_another_thread() -> None:
    buffer = EventBuffer()
    emitter = RunLog("r1", buffer)
    got: list[int] = []
    received = anyio.Event()

    async def consume() -> None:
        async for batch in buffer.batches():
            got.extend(e.sequence for e in batch)
            received.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.sleep(0.01)  # the consumer is now waiting
            await anyio.to_thread.run_sync(lambda: emitter.emit("RUN_START"))
            await received.wait()
            await anyio.to_thread.run_sync(buffer.close)
    assert got == [1]

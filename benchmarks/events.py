"""Scenario `events`: storage throughput, events per second written and read back.

Writes go through the `EventWriter` (the path every run's events take: appends
buffered and stored in batched transactions) into a fresh database of the
storage `--storage` chooses (SQLite by default, or PostgreSQL); reads use
`get_events` per run and `get_events_after` paging over all runs, as the CLI
and the UI do. Then how soon a follower waiting on a second storage object (as
another host would) wakes after an event is stored.
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import anyio

from benchmarks.harness import Figure, acollect
from benchmarks.report import Row
from benchmarks.storage import TITLES, fresh_storages, open_storage

if TYPE_CHECKING:
    from collections.abc import Callable

    from benchmarks.settings import Settings
    from runtime.protocol.messages import RunEvent

RUNS = 10
FULL_EVENTS = (10_000, 100_000)
QUICK_EVENTS = (20_000,)


def make_events(run_id: str, count: int) -> list[RunEvent]:
    """A run's worth of realistic events: start, output, success per step."""
    from runtime.protocol import messages as m

    events: list[RunEvent] = []
    now = time.time()
    for sequence in range(1, count + 1):
        step = f"o{sequence // 3}"
        kind = sequence % 3
        payload: m.AnyPayload
        if kind == 0:
            event_type: m.EventType = "STEP_START"
            payload = m.NoPayload()
        elif kind == 1:
            event_type = "STEP_OUTPUT"
            payload = m.StepOutputPayload(value_repr=str(sequence), type_name="int")
        else:
            event_type = "STEP_SUCCESS"
            payload = m.StepSuccessPayload(duration_seconds=0.0001)
        events.append(
            m.RunEvent(
                run_id=run_id,
                sequence=sequence,
                timestamp=now,
                event_type=event_type,
                step_key=step,
                payload=payload,
            )
        )
    return events


async def measure(
    settings: Settings, fresh: Callable[[], tuple[str, Any]], total: int
) -> dict[str, Figure]:
    from runtime.instance.records import RunRecord
    from runtime.instance.storage.event_writer import EventWriter

    per_run = total // RUNS

    async def once() -> dict[str, float]:
        async with open_storage(*fresh()) as storage:
            run_ids = [uuid.uuid4().hex for _ in range(RUNS)]
            now = time.time()
            for run_id in run_ids:
                await storage.add_run(
                    RunRecord(run_id=run_id, job_name="bench_job", created_at=now, updated_at=now)
                )
            batches = [make_events(run_id, per_run) for run_id in run_ids]
            start = time.perf_counter()
            async with EventWriter(storage) as writer:
                for batch in batches:
                    writer.append_many(batch)
                await writer.flush()
            write_seconds = time.perf_counter() - start

            start = time.perf_counter()
            read = 0
            for run_id in run_ids:
                read += len(await storage.get_events(run_id))
            read_seconds = time.perf_counter() - start

            start = time.perf_counter()
            cursor = 0
            paged = 0
            while True:
                page = await storage.get_events_after(cursor, limit=1000)
                if not page:
                    break
                paged += len(page)
                cursor = page[-1].storage_id
            page_seconds = time.perf_counter() - start
        expected = per_run * RUNS
        if read != expected or paged != expected:
            raise RuntimeError(
                f"Storage {storage.describe()} gave back {read} events per run and {paged} "
                f"paged, expected {expected}."
            )
        return {
            "write": expected / write_seconds,
            "read": expected / read_seconds,
            "page": expected / page_seconds,
        }

    return await acollect(once, repeats=settings.repeats, warmup=settings.warmup)


async def measure_follow(fresh: Callable[[], tuple[str, Any]], count: int) -> Figure:
    """Seconds from one storage object storing an event to a follower on a second one
    (another process, as far as the storage can tell) waking in wait_for_events."""
    kind, options = fresh()
    latencies: list[float] = []
    async with open_storage(kind, options) as writer, open_storage(kind, options) as follower:
        run_id = uuid.uuid4().hex
        events = make_events(run_id, count + 1)
        await writer.store_events(events[:1])
        for index in range(1, count + 1):
            stored_at: list[float] = []

            async def follow(after: int, stored_at: list[float]) -> None:
                await follower.wait_for_events(run_id, after, timeout=10)
                latencies.append(time.perf_counter() - stored_at[0])

            with anyio.fail_after(10):
                async with anyio.create_task_group() as group:
                    group.start_soon(follow, index, stored_at)
                    await anyio.sleep(0.01)  # the follower is waiting
                    stored_at.append(time.perf_counter())
                    await writer.store_events(events[index : index + 1])
    return Figure.of(latencies)


def run(settings: Settings) -> list[Row]:
    title = TITLES[settings.storage]
    with contextlib.ExitStack() as stack:
        try:
            fresh = stack.enter_context(fresh_storages(settings, "events"))
        except RuntimeError as exc:  # no server for --storage postgres
            print(f"events: no {title} storage: {exc}", file=sys.stderr)
            return [Row("events", title, "events/s", "ev/s", note=f"no {title} storage: {exc}")]
        return _rows(settings, fresh, title)


def _rows(settings: Settings, fresh: Callable[[], tuple[str, Any]], title: str) -> list[Row]:
    rows: list[Row] = []
    labels = {
        "write": "written (EventWriter)",
        "read": "read (get_events)",
        "page": "read (get_events_after)",
    }
    for total in settings.pick(FULL_EVENTS, QUICK_EVENTS):
        case = f"{title}, {total} events, {RUNS} runs"
        try:
            figures = anyio.run(measure, settings, fresh, total)
        except ImportError as exc:
            rows.append(Row("events", case, "events/s", "ev/s", note=f"not available yet ({exc})"))
            continue
        except RuntimeError as exc:
            print(f"events: failed for {total} events:\n{exc}", file=sys.stderr)
            rows.append(Row("events", case, "events/s", "ev/s", note=f"failed: {exc}"))
            continue
        for key, label in labels.items():
            rows.append(
                Row("events", case, label, "ev/s", ours=figures[key], higher_is_better=True)
            )
    count = 20 if settings.quick else 100
    follow = anyio.run(measure_follow, fresh, count).scaled(1000)
    case = f"{title}, follower on a second connection, {count} events"
    rows.append(Row("events", case, "wake p50", "ms", ours=follow))
    rows.append(Row("events", case, "wake p99", "ms", ours=Figure.of([follow.percentile(99)])))
    return rows

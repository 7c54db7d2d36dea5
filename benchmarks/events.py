"""Scenario `events`: storage throughput, events per second written and read back.

Writes go through the `EventWriter` (the path every run's events take: appends
buffered and stored in batched transactions) into the SQLite storage in a
fresh folder; reads use `get_events` per run and `get_events_after` paging
over all runs, as the CLI and the UI do.
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import TYPE_CHECKING

import anyio

from benchmarks.harness import Figure, acollect
from benchmarks.report import Row

if TYPE_CHECKING:
    from pathlib import Path

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


async def measure(settings: Settings, folder: Path, total: int) -> dict[str, Figure]:
    from runtime.instance.records import RunRecord
    from runtime.instance.storage.event_writer import EventWriter
    from runtime.instance.storage.sqlite import SqliteRunStorage

    per_run = total // RUNS
    counter = iter(range(1_000_000))

    async def once() -> dict[str, float]:
        async with SqliteRunStorage(folder / f"db{next(counter)}") as storage:
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
                f"Storage in {folder} gave back {read} events per run and {paged} paged, "
                f"expected {expected}."
            )
        return {
            "write": expected / write_seconds,
            "read": expected / read_seconds,
            "page": expected / page_seconds,
        }

    return await acollect(once, repeats=settings.repeats, warmup=settings.warmup)


def run(settings: Settings) -> list[Row]:
    rows: list[Row] = []
    for total in settings.pick(FULL_EVENTS, QUICK_EVENTS):
        case = f"{total} events, {RUNS} runs"
        labels = {
            "write": "written (EventWriter)",
            "read": "read (get_events)",
            "page": "read (get_events_after)",
        }
        try:
            figures = anyio.run(measure, settings, settings.workdir / f"events_{total}", total)
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
    return rows

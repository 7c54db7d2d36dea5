"""Scenario `web`: the HTTP API of `runtime webserver` under load.

- `GET /api/runs` (the first page of 50, newest first, with the total count)
  with 10,000 runs stored: p50 and p99 over sequential requests on one
  keep-alive connection.
- An SSE stream's first event after launch while 100 runs execute: from
  `POST /api/runs` (a 1-step job) until the first `data:` line of
  `GET /api/runs/{id}/events` arrives, while 100 other runs (in two other
  locations) each hold a step that sleeps.

The server (uvicorn over create_app, a real code server, SQLite) runs on this
process's event loop; the client is httpx's sync client in a worker thread, so
its parsing stays off the server's loop (it still shares the GIL and 2 cores).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import anyio

from benchmarks.harness import Figure
from benchmarks.report import Row

if TYPE_CHECKING:
    from pathlib import Path

    from benchmarks.settings import Settings

JOBS = """
import asyncio
from runtime import Definitions, job, op

@op
def ping() -> int:
    return 1

@job
def quick():
    ping()

@op
async def hold() -> int:
    await asyncio.sleep(300)
    return 0

@job
def holding():
    hold()

defs = Definitions(jobs=[quick, holding])
"""


# One code server carries every run it executes as a stream on one HTTP/2
# connection, which allows 100 at once (heartbeats and launches need some too):
# the busy runs are spread over two locations of the same code.
BUSY_LOCATIONS = ("web_busy_a", "web_busy_b")


def _locations(settings: Settings) -> list[Path]:
    folder = settings.workdir / "web"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("web_bench", *BUSY_LOCATIONS):
        path = folder / f"{name}.py"
        path.write_text(JOBS)
        paths.append(path)
    return paths


async def _store_runs(instance: Any, count: int) -> None:
    # Stored as finished runs of the quick job, as a busy instance would hold them.
    from runtime.instance.records import RunStatus

    for i in range(count):
        record = await instance.create_run(
            "quick", location_name="web_bench", tags={"batch": str(i % 10)}
        )
        await instance.update_run_status(record.run_id, RunStatus.STARTING)
        await instance.update_run_status(record.run_id, RunStatus.STARTED)
        await instance.update_run_status(record.run_id, RunStatus.SUCCESS)


def _list_runs(url: str, requests: int) -> list[float]:
    import httpx

    latencies = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(requests):
            start = time.perf_counter()
            reply = client.get("/api/runs")
            reply.raise_for_status()
            latencies.append(time.perf_counter() - start)
            if len(reply.json()) != 50:
                raise RuntimeError(f"GET /api/runs returned {len(reply.json())} runs, not 50.")
    return latencies


def _first_events(url: str, launches: int) -> list[float]:
    import httpx

    latencies = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(launches):
            start = time.perf_counter()
            reply = client.post("/api/runs", json={"job": "quick", "location": "web_bench"})
            reply.raise_for_status()
            run_id = reply.json()["run_id"]
            with client.stream("GET", f"/api/runs/{run_id}/events") as response:
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        latencies.append(time.perf_counter() - start)
                        break
            # Let the run finish so the next launch meets the same load.
            with client.stream("GET", f"/api/runs/{run_id}/events") as response:
                for _ in response.iter_lines():
                    pass
    return latencies


async def measure(
    settings: Settings, stored: int, requests: int, busy: int, launches: int
) -> dict[str, Figure]:
    from runtime import Instance, Workspace
    from runtime.web import create_app, serve

    files = _locations(settings)
    home = settings.workdir / "web" / "home"
    async with Instance.from_home(home) as instance:
        if await instance.storage.count_runs() < stored:
            await _store_runs(instance, stored)
    async with (
        Instance.from_home(home) as instance,
        Workspace.from_targets(python_files=[str(f) for f in files], instance=instance) as ws,
    ):
        for location in ws.locations.values():
            if location.status != "loaded":
                raise RuntimeError(
                    f"Location {location.name} is {location.status}: {location.error}"
                )
        async with serve(create_app(ws), "127.0.0.1", 0) as at:
            await anyio.to_thread.run_sync(_list_runs, at.url, 20)  # warm-up
            listing = await anyio.to_thread.run_sync(_list_runs, at.url, requests)
            holders = [
                await ws.launch_run(job="holding", location=BUSY_LOCATIONS[i % 2])
                for i in range(busy)
            ]
            try:
                await anyio.to_thread.run_sync(_first_events, at.url, 5)  # warm-up
                first = await anyio.to_thread.run_sync(_first_events, at.url, launches)
                still = sum(not h.status.is_finished for h in holders)
                if still != busy:
                    raise RuntimeError(
                        f"Only {still} of {busy} background runs were still executing."
                    )
            finally:
                for handle in holders:
                    await handle.cancel()
                with anyio.fail_after(60):
                    for handle in holders:
                        await handle.wait()
    return {"list": Figure.of(listing).scaled(1000), "first": Figure.of(first).scaled(1000)}


def run(settings: Settings) -> list[Row]:
    stored, busy = 10_000, 100
    requests, launches = (200, 30) if settings.quick else (1000, 100)
    list_case = f"GET /api/runs, {stored:,} runs stored, {requests} requests"
    sse_case = f"SSE first event after POST, {busy} runs executing, {launches} launches"
    rows = [
        Row("web", list_case, "p50", "ms"),
        Row("web", list_case, "p99", "ms"),
        Row("web", sse_case, "p50", "ms"),
        Row("web", sse_case, "p99", "ms"),
    ]
    try:
        figures = anyio.run(measure, settings, stored, requests, busy, launches)
    except ImportError as exc:
        for row in rows:
            row.note = f"needs the web extra ({exc})"
        return rows
    except (RuntimeError, TimeoutError) as exc:
        print(f"web: failed:\n{exc}", file=sys.stderr)
        for row in rows:
            row.note = f"failed: {str(exc).splitlines()[0]}"
        return rows
    for (p50, p99), figure in zip(
        (rows[:2], rows[2:]), (figures["list"], figures["first"]), strict=True
    ):
        p50.ours = Figure.of([figure.percentile(50)])
        p99.ours = Figure.of([figure.percentile(99)])
    return rows

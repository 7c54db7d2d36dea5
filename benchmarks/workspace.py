"""Scenario `workspace`: K locations of 100 assets loaded concurrently by one `Workspace`.

Figures: seconds from entering `async with Workspace.from_targets(...)` until
every location is loaded, and the total peak RSS of all location processes.
Dagster's side loads the same files from a workspace.yaml through its
`WorkspaceProcessContext` (benchmarks/peers/dagster_workspace.py).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

import anyio

from benchmarks import generate
from benchmarks.harness import Figure, acollect
from benchmarks.peer import PeerError, run_peer
from benchmarks.procs import descendants, total_peak_rss_mib
from benchmarks.report import Row

if TYPE_CHECKING:
    from pathlib import Path

    from benchmarks.settings import Settings

ASSETS = 100
SHAPE: generate.Shape = "layered"
FULL_COUNTS = (1, 5, 10, 25)
QUICK_COUNTS = (5,)
TIME_TARGET_MS = {10: 1000.0}


def location_files(settings: Settings, k: int, flavor: generate.Flavor) -> list[Path]:
    """k files of 100 assets with distinct base names (a location is named after its file)."""
    folder = settings.workdir / f"workspace_{flavor}"
    files = []
    for index in range(k):
        path = folder / f"loc{index}_{flavor}.py"
        if not path.exists():
            generate.write_assets(path, n=ASSETS, shape=SHAPE, flavor=flavor)
        files.append(path)
    return files


async def measure_ours(settings: Settings, k: int) -> dict[str, Figure]:
    from runtime import Workspace

    files = location_files(settings, k, "runtime")

    async def once() -> dict[str, float]:
        start = time.perf_counter()
        async with Workspace.from_targets(python_files=[str(f) for f in files]) as ws:
            seconds = time.perf_counter() - start
            failed = {
                name: loc.error for name, loc in ws.locations.items() if loc.status != "loaded"
            }
            if failed or len(ws.locations) != k:
                raise RuntimeError(
                    f"The workspace loaded {len(ws.locations)} locations; failed: {failed}"
                )
            pids = [loc.pid for loc in ws.locations.values() if loc.pid is not None]
            # Also count anything the location processes spawned themselves.
            pids += [child for pid in pids for child in descendants(pid)]
            rss = total_peak_rss_mib(pids or descendants(os.getpid()))
        return {"seconds": seconds, "rss_mib": rss}

    return await acollect(once, repeats=settings.repeats, warmup=settings.warmup)


def measure_peer(settings: Settings, k: int) -> dict[str, Figure]:
    assert settings.peer_python is not None
    files = location_files(settings, k, "dagster")
    repeats = 1 if k >= 10 else settings.peer_repeats
    result = run_peer(
        settings.peer_python,
        "dagster_workspace.py",
        ["--files", *map(str, files), "--repeats", str(repeats), "--warmup", "0"],
        timeout=1800,
    )
    return {key: Figure.of(result[key]) for key in ("seconds", "rss_mib")}


def run(settings: Settings) -> list[Row]:
    rows: list[Row] = []
    for k in settings.pick(FULL_COUNTS, QUICK_COUNTS):
        case = f"{k} x {ASSETS} assets"
        time_row = Row("workspace", case, "all loaded", "ms", target=TIME_TARGET_MS.get(k))
        rss_row = Row("workspace", case, "total peak RSS", "MiB")
        notes: list[str] = []
        try:
            ours = anyio.run(measure_ours, settings, k)
            time_row.ours = ours["seconds"].scaled(1000)
            rss_row.ours = ours["rss_mib"]
        except ImportError as exc:
            notes.append(f"not available yet ({exc})")
        except (RuntimeError, TimeoutError) as exc:
            notes.append(f"ours failed: {str(exc).splitlines()[0]}")
            print(f"workspace: ours failed for K={k}:\n{exc}", file=sys.stderr)
        if settings.peer_python is not None:
            try:
                peer = measure_peer(settings, k)
                time_row.peer = peer["seconds"].scaled(1000)
                rss_row.peer = peer["rss_mib"]
            except PeerError as exc:
                notes.append("dagster failed")
                print(f"workspace: dagster failed for K={k}:\n{exc}", file=sys.stderr)
        time_row.note = rss_row.note = "; ".join(notes)
        rows += [time_row, rss_row]
    return rows

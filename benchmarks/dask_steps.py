"""`--only steps --executor dask`: fan-out jobs on a 2-worker Dask cluster beside the multiprocess executor.

Ours: the same generated fan-out jobs (one root, N-1 steps reading it) and the
same measurement as the steps scenario (execute_plan, every event stored in
SQLite), with the dask executor on one LocalCluster of two single-threaded
worker processes started before the measurement (a cluster users keep
running), outputs through an FsspecIOManager in the run's folder; and with
the multiprocess executor. Dagster: `dask_executor` from dagster-dask on a
LocalCluster of the same size its script starts once, when `--peer-python`
has dagster-dask (benchmarks/peers/dagster_dask_steps.py).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import anyio

from benchmarks import steps
from benchmarks.harness import Figure
from benchmarks.peer import PeerError, run_peer
from benchmarks.report import Row

if TYPE_CHECKING:
    from benchmarks.settings import Settings

SIZES = (100, 1_000)
QUICK_SIZES = (100,)
# dagster-dask spends about half a second a step (a process per step): 1,000
# of them would take many minutes.
PEER_SIZES = (100,)
WORKERS = 2


def run(settings: Settings) -> list[Row]:
    from distributed import LocalCluster

    rows: list[Row] = []
    cluster: Any = LocalCluster(
        n_workers=WORKERS,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )
    try:
        address = str(cluster.scheduler_address)
        for n in settings.pick(SIZES, QUICK_SIZES):
            rows.append(_row(settings, n, "multiprocess", {}))
            rows.append(_row(settings, n, "dask", {"scheduler_address": address}))
            if settings.peer_python is not None and n in PEER_SIZES:
                rows.append(_peer_row(settings, n))
    finally:
        cluster.close()
    return rows


def _row(settings: Settings, n: int, executor: str, options: dict[str, Any]) -> Row:
    label = f"{n} fanout sync ({executor}, {WORKERS} workers)"
    row = Row("steps", label, "per step", "ms")
    file = steps.job_file(settings, n, "fanout", "sync", "runtime")
    try:
        ours = anyio.run(
            steps.measure_ours, settings, file, n, executor, options, executor == "dask"
        )
    except (RuntimeError, TimeoutError) as exc:
        row.note = f"ours failed: {str(exc).splitlines()[0]}"
        print(f"steps: ours failed for {label}:\n{exc}", file=sys.stderr)
        return row
    row.ours = ours["seconds"].scaled(1000 / n)
    row.note = f"wall {ours['seconds'].median * 1000:.0f} ms, {ours['events'].median:.0f} events"
    return row


def _peer_row(settings: Settings, n: int) -> Row:
    label = f"{n} fanout sync (Dagster dask_executor, {WORKERS} workers)"
    row = Row("steps", label, "per step", "ms")
    assert settings.peer_python is not None
    file = steps.job_file(settings, n, "fanout", "sync", "dagster")
    try:
        result = run_peer(
            settings.peer_python,
            "dagster_dask_steps.py",
            ["--file", str(file), "--steps", str(n), "--workers", str(WORKERS), "--repeats", "1"],
            timeout=3600,
        )
    except PeerError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "failed"
        row.note = f"dagster failed: {first}"
        print(f"steps: dagster failed for {label}:\n{exc}", file=sys.stderr)
        return row
    peer = Figure.of(result["seconds"])
    row.peer = peer.scaled(1000 / n)
    row.note = f"dagster wall {peer.median * 1000:.0f} ms"
    return row

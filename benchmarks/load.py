"""Scenario `load`: one code location of N assets, spawn to snapshot on the host, and its peak RSS.

Beside it, the floor: a bare interpreter importing the same graph written as
plain functions plus the libraries our code server cannot do without, spawn to
exit. And, with --peer-python, Dagster's `dagster api grpc` until a client
holds the repository snapshot.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from benchmarks import generate
from benchmarks.harness import Figure, acollect, collect
from benchmarks.peer import PeerError, run_peer
from benchmarks.procs import python_to_exit
from benchmarks.report import Row

if TYPE_CHECKING:
    from benchmarks.settings import Settings

SHAPE: generate.Shape = "layered"
FULL_SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (100, 1_000)
# Under --quick, Dagster (seconds per load) is measured at this size only.
QUICK_PEER_SIZES = (100,)
# The targets, per size: time in ms, RSS in MiB.
TIME_TARGET_MS = {100: 150.0, 1_000: 300.0}
RSS_TARGET_MIB = {100: 40.0, 1_000: 40.0}
# The third-party imports a code server needs whatever it serves.
FLOOR_IMPORTS = ("asyncio", "grpclib.server", "betterproto", "msgspec")


def definitions_file(settings: Settings, n: int, flavor: generate.Flavor) -> Path:
    """The generated file of n assets in a flavour, written once per invocation."""
    path = settings.workdir / f"load_{flavor}_{n}" / f"gen_{flavor}_{n}.py"
    if not path.exists():
        generate.write_assets(path, n=n, shape=SHAPE, flavor=flavor)
    return path


def measure_floor(settings: Settings, n: int, *, with_libraries: bool = True) -> dict[str, Figure]:
    """Spawn-to-exit of `python -c 'import <FLOOR_IMPORTS>; import gen_plain_N'`.

    Without libraries: the bare interpreter importing the plain functions only,
    to show how much of the floor the libraries are.
    """
    plain = definitions_file(settings, n, "plain")
    libraries = f"import {', '.join(FLOOR_IMPORTS)}; " if with_libraries else ""
    code = f"{libraries}import {plain.stem}"
    return collect(
        lambda: python_to_exit(sys.executable, code, cwd=plain.parent),
        repeats=settings.repeats,
        warmup=settings.warmup,
    )


async def measure_ours(settings: Settings, n: int) -> dict[str, Figure]:
    """Spawn our code server on the generated file until the host holds its snapshot."""
    from benchmarks.codeserver import load_once

    file = definitions_file(settings, n, "runtime")
    counter = iter(range(1_000_000))
    # Unix socket paths are limited to ~100 bytes: keep them short, under /tmp.
    with tempfile.TemporaryDirectory(prefix="bench-") as sockets:

        async def once() -> dict[str, float]:
            sample, rss = await load_once(file, Path(sockets) / f"s{next(counter)}.sock")
            if sample.assets != n:
                raise RuntimeError(
                    f"The snapshot of {file} holds {sample.assets} assets, expected {n}."
                )
            return {"seconds": sample.seconds, "rss_mib": rss}

        return await acollect(once, repeats=settings.repeats, warmup=settings.warmup)


def measure_peer(settings: Settings, n: int) -> dict[str, Figure]:
    """Dagster's code server on the same graph, through benchmarks/peers/dagster_load.py."""
    assert settings.peer_python is not None
    file = definitions_file(settings, n, "dagster")
    # Dagster takes seconds per load: fewer repetitions at the largest size.
    repeats = 1 if n >= 10_000 else settings.peer_repeats
    result = run_peer(
        settings.peer_python,
        "dagster_load.py",
        ["--file", str(file), "--assets", str(n), "--repeats", str(repeats), "--warmup", "1"],
        timeout=1800,
    )
    return {key: Figure.of(result[key]) for key in ("seconds", "rss_mib")}


def run(settings: Settings) -> list[Row]:
    """Measure every size; a failure of one side is a note in its row, not an abort."""
    rows: list[Row] = []
    for n in settings.pick(FULL_SIZES, QUICK_SIZES):
        case = f"{n} assets ({SHAPE})"
        time_row = Row("load", case, "spawn to snapshot", "ms", target=TIME_TARGET_MS.get(n))
        rss_row = Row("load", case, "peak RSS", "MiB", target=RSS_TARGET_MIB.get(n))
        notes: list[str] = []
        try:
            floor = measure_floor(settings, n)
            time_row.floor = floor["seconds"].scaled(1000)
            rss_row.floor = floor["rss_mib"]
            bare = measure_floor(settings, n, with_libraries=False)
            time_row.note = f"bare plain import {bare['seconds'].median * 1000:.0f} ms"
            rss_row.note = f"bare plain import {bare['rss_mib'].median:.1f} MiB"
        except RuntimeError as exc:
            notes.append(f"floor failed: {exc}")
        try:
            ours = anyio.run(measure_ours, settings, n)
            time_row.ours = ours["seconds"].scaled(1000)
            rss_row.ours = ours["rss_mib"]
        except (RuntimeError, ImportError, TimeoutError) as exc:
            notes.append(f"ours failed: {str(exc).splitlines()[0]}")
            print(f"load: ours failed for {n} assets:\n{exc}", file=sys.stderr)
        if settings.peer_python is not None and (not settings.quick or n in QUICK_PEER_SIZES):
            try:
                peer = measure_peer(settings, n)
                time_row.peer = peer["seconds"].scaled(1000)
                rss_row.peer = peer["rss_mib"]
            except PeerError as exc:
                notes.append("dagster failed")
                print(f"load: dagster failed for {n} assets:\n{exc}", file=sys.stderr)
        for row in (time_row, rss_row):
            row.note = "; ".join(filter(None, [row.note, *notes]))
        rows += [time_row, rss_row]
    return rows

"""The benchmark program: `python -m benchmarks [--quick] [--only load,steps] [--peer-python PATH]`."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.peer import PeerError, peer_version
from benchmarks.report import Row, table, write_json
from benchmarks.settings import Settings
from benchmarks.storage import DEFAULT_POSTGRES_URL, STORAGES

# Scenario name -> module with `run(settings) -> list[Row]`, in the order they run.
SCENARIOS: dict[str, str] = {
    "load": "benchmarks.load",
    "workspace": "benchmarks.workspace",
    "launch": "benchmarks.launch",
    "steps": "benchmarks.steps",
    "events": "benchmarks.events",
    "web": "benchmarks.web",
    "loop": "benchmarks.loop",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Measure load, workspace, launch, step, event and web API overhead and host "
            "loop lag, beside the floor and Dagster."
        ),
    )
    parser.add_argument("--quick", action="store_true", help="a small subset, in under a minute")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated scenarios to run, among: {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--peer-python",
        type=Path,
        default=None,
        help="an interpreter with dagster installed (benchmarks/peers/setup_dagster.sh makes one)",
    )
    parser.add_argument(
        "--storage",
        choices=STORAGES,
        default="sqlite",
        help="the instance storage of the events and launch scenarios (default sqlite)",
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="with --storage postgres: a superuser URL of the server to make a scratch database on",
    )
    parser.add_argument(
        "--executor",
        choices=("in_process", "dask"),
        default="in_process",
        help="the steps scenario's executor: dask compares fan-outs on a 2-worker Dask cluster",
    )
    parser.add_argument("--repeats", type=int, default=None, help="runs per figure after warm-up")
    parser.add_argument("--warmup", type=int, default=1, help="discarded runs before measuring")
    parser.add_argument("--peer-repeats", type=int, default=None, help="runs per Dagster figure")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help="where the JSON goes (default benchmarks/results)",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"--only names unknown scenarios {unknown}; choose among {list(SCENARIOS)}.")
    args.scenarios = chosen or list(SCENARIOS)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Measure the steady state of an installed package: bytecode caches written
    # once and reused. Without this, a PYTHONDONTWRITEBYTECODE=1 environment
    # makes every spawned process compile runtime/ and the generated files anew.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    extra: dict[str, Any] = {
        "quick": args.quick,
        "scenarios": args.scenarios,
        "storage": args.storage,
    }
    peer_python: Path | None = args.peer_python
    if peer_python is not None:
        try:
            extra["dagster"] = peer_version(peer_python)
        except (PeerError, OSError) as exc:
            print(f"benchmarks: {exc}", file=sys.stderr)
            return 2
    started = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="runtime-bench-") as workdir:
        settings = Settings(
            quick=args.quick,
            peer_python=peer_python,
            workdir=Path(workdir),
            repeats=args.repeats or (3 if args.quick else 5),
            warmup=args.warmup,
            peer_repeats=args.peer_repeats or (1 if args.quick else 3),
            storage=args.storage,
            postgres_url=args.postgres_url,
            executor=args.executor,
        )
        for name in args.scenarios:
            print(f"benchmarks: running {name}...", file=sys.stderr, flush=True)
            scenario_start = time.perf_counter()
            module = importlib.import_module(SCENARIOS[name])
            new_rows: list[Row] = module.run(settings)
            rows += new_rows
            print(
                f"benchmarks: {name} done in {time.perf_counter() - scenario_start:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    extra["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    kwargs = {} if args.results_dir is None else {"directory": args.results_dir}
    path = write_json(rows, command=command, extra=extra, **kwargs)
    print(table(rows))
    print(f"\n{len(rows)} figures in {extra['elapsed_seconds']} s; written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

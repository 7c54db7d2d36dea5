"""Dagster's workspace loading: K python_file locations from one workspace.yaml.

Run under the peer interpreter:
    python dagster_workspace.py --files a.py b.py ... --repeats 1 --warmup 0
Times `WorkspaceProcessContext(...)` (which spawns one code server per location
and fetches every snapshot) and sums the peak RSS of every process it started.
Prints one JSON line: {"seconds": [...], "rss_mib": [...]}.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from _peer_common import descendants, emit, total_peak_rss_mib
from dagster._core.instance import DagsterInstance  # type: ignore[import-not-found,unused-ignore]
from dagster._core.workspace.context import (  # type: ignore[import-not-found,unused-ignore]
    WorkspaceProcessContext,
)
from dagster._core.workspace.load_target import (  # type: ignore[import-not-found,unused-ignore]
    WorkspaceFileTarget,
)


def write_workspace(files: list[Path], folder: Path) -> Path:
    lines = ["load_from:"]
    for file in files:
        lines.append(
            f"  - python_file:\n      relative_path: {file}\n      location_name: {file.stem}"
        )
    path = folder / "workspace.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def load_once(workspace: Path, instance: Any, expected: int) -> dict[str, float]:
    start = time.perf_counter()
    with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace)])) as context:
        entries = context.get_current_workspace().code_location_entries
        seconds = time.perf_counter() - start
        errors = {name: entry.load_error for name, entry in entries.items() if entry.load_error}
        if errors or len(entries) != expected:
            raise RuntimeError(
                f"Dagster loaded {len(entries)} of {expected} locations; errors: {errors}"
            )
        rss = total_peak_rss_mib(descendants(os.getpid()))
    return {"seconds": seconds, "rss_mib": rss}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=Path, nargs="+", required=True)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=0)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {"seconds": [], "rss_mib": []}
    with (
        tempfile.TemporaryDirectory(prefix="bench-dgws-") as tmp,
        DagsterInstance.local_temp(tempdir=tmp) as instance,
    ):
        workspace = write_workspace([f.resolve() for f in args.files], Path(tmp))
        for i in range(args.warmup + args.repeats):
            once = load_once(workspace, instance, len(args.files))
            if i >= args.warmup:
                for key, value in once.items():
                    samples[key].append(value)
    emit(samples)


if __name__ == "__main__":
    main()

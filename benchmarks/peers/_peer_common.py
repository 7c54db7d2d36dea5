"""Helpers shared by the Dagster-side scripts (run under the peer interpreter, not ours)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def peak_rss_mib(pid: int) -> float:
    """VmHWM of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ProcessLookupError(f"/proc/{pid}/status has no VmHWM line.")


def descendants(pid: int) -> list[int]:
    """Every live process whose parent chain leads to pid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def total_peak_rss_mib(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += peak_rss_mib(pid)
        except (OSError, ProcessLookupError):
            continue
    return total


# Dagster's code servers inherit stdout and log to it: the answer carries a marker.
RESULT_MARKER = "BENCH_PEER_RESULT "


def emit(result: dict[str, Any]) -> None:
    """Print the result on one marked line of stdout, for benchmarks/peer.py."""
    print(RESULT_MARKER + json.dumps(result), flush=True)

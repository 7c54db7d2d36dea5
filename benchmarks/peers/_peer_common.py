"""Helpers shared by the Dagster-side scripts (run under the peer interpreter, not ours)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# The /proc readings are the ones our side uses (benchmarks/procs.py, stdlib
# only); the peer interpreter finds them through the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.procs import descendants, peak_rss_mib, total_peak_rss_mib

__all__ = ["RESULT_MARKER", "descendants", "emit", "peak_rss_mib", "total_peak_rss_mib"]


# Dagster's code servers inherit stdout and log to it: the answer carries a marker.
RESULT_MARKER = "BENCH_PEER_RESULT "


def emit(result: dict[str, Any]) -> None:
    """Print the result on one marked line of stdout, for benchmarks/peer.py."""
    print(RESULT_MARKER + json.dumps(result), flush=True)

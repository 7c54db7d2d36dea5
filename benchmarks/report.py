"""Rows of results, the printed table, and the JSON file under benchmarks/results/."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from benchmarks.harness import Figure

RESULTS_DIR = Path(__file__).parent / "results"
# The target wherever a floor is measured: within this factor of it.
FLOOR_FACTOR = 2.0


@dataclass(slots=True)
class Row:
    """One measured quantity: ours beside the floor and Dagster, against a target.

    Lower is better unless `higher_is_better`. A missing figure (None) is shown with
    `note` explaining why (not available yet, no --peer-python, failed).
    """

    scenario: str
    case: str
    metric: str
    unit: str
    ours: Figure | None = None
    floor: Figure | None = None
    peer: Figure | None = None
    target: float | None = None
    note: str = ""
    # Throughputs: the target is a minimum and the ratios read the other way.
    higher_is_better: bool = False

    @property
    def target_met(self) -> bool | None:
        if self.target is None or self.ours is None:
            return None
        if self.higher_is_better:
            return self.ours.median >= self.target
        return self.ours.median <= self.target

    @property
    def within_floor(self) -> bool | None:
        """True when ours is within FLOOR_FACTOR of the floor; None without both."""
        if self.ours is None or self.floor is None:
            return None
        return self.ours.median <= FLOOR_FACTOR * self.floor.median

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "case": self.case,
            "metric": self.metric,
            "unit": self.unit,
            "ours": self.ours.to_json() if self.ours else None,
            "floor": self.floor.to_json() if self.floor else None,
            "dagster": self.peer.to_json() if self.peer else None,
            "target": self.target,
            "target_met": self.target_met,
            "higher_is_better": self.higher_is_better,
            "within_2x_floor": self.within_floor,
            "note": self.note,
        }


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _figure(figure: Figure | None) -> str:
    if figure is None:
        return "-"
    if len(figure.samples) == 1:
        return _num(figure.median)
    return f"{_num(figure.median)} [{_num(figure.minimum)}-{_num(figure.maximum)}]"


def _ratio(numerator: Figure | None, denominator: Figure | None) -> str:
    if numerator is None or denominator is None or denominator.median <= 0:
        return "-"
    return f"{numerator.median / denominator.median:.2f}x"


HEADERS = (
    "scenario",
    "case",
    "metric",
    "unit",
    "ours median [min-max]",
    "floor",
    "ours/floor",
    "dagster",
    "vs dagster (x better)",
    "target",
    "note",
)


def table(rows: Sequence[Row]) -> str:
    """The rows as an aligned plain-text table (also valid Markdown)."""
    cells = [HEADERS]
    for row in rows:
        if row.target is None:
            target = "-"
        else:
            verdict = {True: "met", False: "MISSED", None: "?"}[row.target_met]
            bound = ">" if row.higher_is_better else "<"
            target = f"{bound}{_num(row.target)} {verdict}"
        cells.append(
            (
                row.scenario,
                row.case,
                row.metric,
                row.unit,
                _figure(row.ours),
                _figure(row.floor),
                _ratio(row.ours, row.floor) + (" MISSED" if row.within_floor is False else ""),
                _figure(row.peer),
                _ratio(row.ours, row.peer) if row.higher_is_better else _ratio(row.peer, row.ours),
                target,
                row.note,
            )
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]

    def fmt(line: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(cells[0]), rule, *(fmt(line) for line in cells[1:])])


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": platform.platform(),
        "python": sys.version.split()[0],
    }


def write_json(
    rows: Sequence[Row], *, command: str, extra: dict[str, Any], directory: Path = RESULTS_DIR
) -> Path:
    """Write the run to directory/<UTC timestamp>.json and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{stamp}.json"
    document = {
        "timestamp": stamp,
        "command": command,
        "machine": machine(),
        **extra,
        "rows": [row.to_json() for row in rows],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path

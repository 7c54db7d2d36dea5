"""The benchmark harness: figures, the printed table and the JSON file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import Figure, collect, figures
from benchmarks.report import Row, table, write_json

REPO = Path(__file__).resolve().parents[2]


def test_figure_median_min_max_and_percentile() -> None:
    figure = Figure.of([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (figure.median, figure.minimum, figure.maximum) == (3.0, 1.0, 5.0)
    assert figure.percentile(99) == 5.0
    assert figure.percentile(50) == 3.0
    assert figure.scaled(1000).median == 3000.0


def test_figure_needs_samples() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        Figure.of([])


def test_collect_discards_the_warmup() -> None:
    calls = iter([100.0, 1.0, 2.0, 3.0])
    result = collect(lambda: {"t": next(calls)}, repeats=3, warmup=1)
    assert result["t"].samples == (1.0, 2.0, 3.0)
    assert figures([{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}])["b"].median == 3.0


def test_table_shows_ratios_targets_and_notes() -> None:
    rows = [
        Row(
            "load",
            "100 assets",
            "spawn to snapshot",
            "ms",
            ours=Figure.of([100.0, 120.0, 110.0]),
            floor=Figure.of([50.0]),
            peer=Figure.of([1100.0]),
            target=150.0,
        ),
        Row(
            "events",
            "10 runs",
            "written",
            "ev/s",
            ours=Figure.of([2000.0]),
            peer=Figure.of([1000.0]),
            target=5000.0,
            higher_is_better=True,
        ),
        Row("launch", "1 step", "p50", "ms", note="not available yet"),
    ]
    text = table(rows)
    lines = text.splitlines()
    assert len(lines) == 2 + len(rows)
    assert "110 [100-120]" in lines[2] and "2.20x" in lines[2] and "10.00x" in lines[2]
    assert "<150 met" in lines[2]
    assert ">5000 MISSED" in lines[3] and "2.00x" in lines[3]
    assert "not available yet" in lines[4]


def test_write_json_records_rows_and_machine(tmp_path: Path) -> None:
    row = Row(
        "steps", "1000 layered async", "per step", "ms", ours=Figure.of([0.1, 0.2]), target=0.25
    )
    path = write_json(
        [row], command="python -m benchmarks", extra={"quick": True}, directory=tmp_path
    )
    document = json.loads(path.read_text())
    assert document["quick"] is True
    assert document["machine"]["cores"] >= 1
    assert document["rows"][0]["ours"]["samples"] == [0.1, 0.2]
    assert document["rows"][0]["target_met"] is True


@pytest.mark.timeout(120)
def test_program_runs_a_scenario_and_writes_its_json(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--only",
            "events",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "| events" in done.stdout
    [path] = tmp_path.glob("*.json")
    rows = json.loads(path.read_text())["rows"]
    assert {row["scenario"] for row in rows} == {"events"}
    assert all(row["ours"]["median"] > 0 for row in rows)


def test_program_rejects_an_unknown_scenario() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "lod"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown scenarios ['lod']" in done.stderr

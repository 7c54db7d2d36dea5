"""`--json` output of the list and show commands: what scripts and other tools read."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.cli.test_cli_jobs_and_runs import HELLO, runtime_cli

if TYPE_CHECKING:
    from pathlib import Path


def test_run_list_and_show_print_json_rows(tmp_path: Path) -> None:
    launched = runtime_cli(
        "job", "launch", "-f", str(HELLO), "-j", "etl", "--tag", "team=data", home=tmp_path
    )
    assert launched.returncode == 0, launched.stderr
    run_id = launched.stdout.strip()
    other = runtime_cli("job", "launch", "-f", str(HELLO), "-j", "etl", home=tmp_path)
    assert other.returncode == 0, other.stderr

    listed = runtime_cli("run", "list", "--json", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert len(rows) == 2
    row = next(r for r in rows if r["run_id"] == run_id)
    assert row["job"] == "etl" and row["location"] == "definitions"
    assert row["status"] == "SUCCESS" and row["tags"]["team"] == "data"
    assert row["created"] <= row["start"] <= row["end"]
    assert isinstance(row["end"], float)

    tagged = json.loads(
        runtime_cli("run", "list", "--json", "--tag", "team=data", home=tmp_path).stdout
    )
    assert [r["run_id"] for r in tagged] == [run_id]

    shown = runtime_cli("run", "show", run_id, "--json", home=tmp_path)
    assert shown.returncode == 0, shown.stderr
    details = json.loads(shown.stdout)
    assert details["run_id"] == run_id and details["status"] == "SUCCESS"
    steps = {step["step_key"]: step for step in details["steps"]}
    assert set(steps) >= {"extract", "total"}
    assert all(step["status"] == "SUCCESS" for step in steps.values())
    assert details["event_count"] > 0


def test_workspace_and_job_list_print_json(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom at import')\n")
    listed = runtime_cli(
        "workspace", "list", "--json", "-f", str(HELLO), "-f", str(broken), home=tmp_path
    )
    assert listed.returncode == 0, listed.stderr
    locations = {row["name"]: row for row in json.loads(listed.stdout)}
    hello = locations["definitions"]
    assert hello["status"] == "loaded" and "etl" in hello["jobs"] and hello["pid"] > 0
    assert locations["broken"]["status"] == "error"
    assert (
        "boom at import"
        in locations["broken"]["error"]["message"] + locations["broken"]["error"]["traceback"]
    )

    jobs = runtime_cli("job", "list", "--json", "-f", str(HELLO), home=tmp_path)
    assert jobs.returncode == 0, jobs.stderr
    rows = json.loads(jobs.stdout)
    etl = next(row for row in rows if row["job"] == "etl")
    assert etl["location"] == "definitions" and "extract" in etl["steps"]

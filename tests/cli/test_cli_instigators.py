"""`runtime schedule ...` and `runtime sensor ...` as Dagster users type them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime import Daemon, DaemonOptions, Workspace
from runtime.daemon.clock import ManualClock
from runtime.instance.daemon_records import TickStatus
from runtime.instance.instance import Instance
from tests.cli.test_cli_jobs_and_runs import runtime_cli

if TYPE_CHECKING:
    from pathlib import Path

LOCATION = """
from runtime import Definitions, RunRequest, SkipReason, job, op, schedule, sensor

@op
def noop() -> int:
    return 1

@job
def work():
    noop()

@schedule("0 9 * * 1-5", job=work, execution_timezone="Europe/Paris")
def weekday_mornings(context):
    return {}

@sensor(job=work, minimum_interval_seconds=45, default_status="running")
def new_files(context):
    if context.cursor == "seen":
        return SkipReason("no new files")
    context.update_cursor("seen")
    return RunRequest(run_key="file-1", tags={"file": "1"})

@sensor(job=work)
def broken(context):
    raise KeyError("missing")

defs = Definitions(jobs=[work], schedules=[weekday_mornings], sensors=[new_files, broken])
"""


@pytest.fixture
def location(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.py"
    path.write_text(LOCATION)
    return path


def cli(location: Path, home: Path, *args: str) -> tuple[int, str, str]:
    result = runtime_cli(*args, "-f", str(location), home=home, cwd=location.parent)
    return result.returncode, result.stdout, result.stderr


def test_list_start_and_stop_store_the_choice_over_default_status(
    location: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    code, out, err = cli(location, home, "schedule", "list", "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["name"] == "weekday_mornings" and row["location"] == "pipeline"
    assert (row["status"], row["status_source"]) == ("stopped", "default")
    assert row["cron_schedule"] == "0 9 * * 1-5" and row["execution_timezone"] == "Europe/Paris"
    assert (
        row["next_tick_iso"].endswith(("+01:00", "+02:00")) and "T09:00:00" in row["next_tick_iso"]
    )

    code, out, err = cli(location, home, "schedule", "start", "weekday_mornings")
    assert (code, out.strip()) == (
        0,
        "schedule 'weekday_mornings' of location 'pipeline' is running",
    ), err
    code, out, _ = cli(location, home, "schedule", "start", "weekday_mornings")
    assert "is already running" in out
    code, out, _ = cli(location, home, "schedule", "list")
    assert "running" in out and "(default)" not in out and "Europe/Paris" in out

    code, out, err = cli(location, home, "sensor", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["new_files"]["status"] == "running" and rows["broken"]["status"] == "stopped"
    code, out, err = cli(location, home, "sensor", "stop", "new_files", "--json")
    assert code == 0, err
    stopped = json.loads(out)
    assert (stopped["status"], stopped["status_source"]) == ("stopped", "user")
    code, out, _ = cli(location, home, "sensor", "list")
    line = next(line for line in out.splitlines() if line.startswith("pipeline  new_files"))
    assert "stopped" in line and "(default)" not in line


def test_preview_evaluates_without_launching_or_storing(location: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, out, err = cli(location, home, "sensor", "preview", "new_files", "--json")
    assert code == 0, err
    preview = json.loads(out)
    assert preview["cursor"] == "seen" and preview["error"] is None
    (request,) = preview["run_requests"]
    assert request["run_key"] == "file-1" and request["job_name"] == "work"

    code, out, _ = cli(location, home, "sensor", "preview", "new_files", "--cursor", "seen")
    assert code == 0 and "skip: no new files" in out

    code, out, _ = cli(location, home, "sensor", "preview", "broken")
    assert code == 1 and "error: KeyError: 'missing'" in out

    code, out, err = cli(location, home, "schedule", "preview", "weekday_mornings")
    assert code == 0, err
    assert "would launch job 'work'" in out and ("CET" in out or "CEST" in out)

    code, out, _ = cli(location, home, "sensor", "ticks", "new_files", "--json")
    assert json.loads(out) == []
    code, out, _ = cli(location, home, "sensor", "cursor", "new_files")
    assert "has no cursor" in out
    assert json.loads(runtime_cli("run", "list", "--json", home=home).stdout) == []


def test_cursor_set_and_delete_and_ticks_after_a_daemon_ran(location: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, out, err = cli(location, home, "sensor", "cursor", "new_files", "--set", "seen")
    assert code == 0, err
    assert out.strip() == "sensor 'new_files' of location 'pipeline': cursor set to 'seen'"
    code, out, _ = cli(location, home, "sensor", "cursor", "new_files", "--json")
    assert json.loads(out)["cursor"] == "seen"

    async def tick_twice() -> None:
        # The stored cursor says "seen": the first tick skips; then the cursor is deleted.
        clock = ManualClock(1_800_000_000)
        options = DaemonOptions(heartbeat_interval=0.5, heartbeat_timeout=5)
        async with (
            Workspace.from_targets(
                python_files=[location], instance=Instance.from_home(home)
            ) as ws,
            Daemon(ws, clock=clock, options=options),
        ):
            instance = await ws.open_instance()
            sensor_id = "sensor:pipeline/new_files"
            with anyio.fail_after(30):
                while len(await instance.get_ticks(sensor_id, statuses=[TickStatus.SKIPPED])) < 1:
                    await anyio.sleep(0.05)
            deleted = await anyio.to_thread.run_sync(
                lambda: cli(location, home, "sensor", "cursor", "new_files", "--delete")
            )
            assert deleted[0] == 0 and "cursor deleted" in deleted[1]
            clock.advance(45)
            with anyio.fail_after(30):
                while len(await instance.get_ticks(sensor_id, statuses=[TickStatus.SUCCESS])) < 1:
                    await anyio.sleep(0.05)

    anyio.run(tick_twice)
    code, out, err = cli(location, home, "sensor", "ticks", "new_files")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["TICK", "STATUS", "RUNS", "DETAIL"]
    assert "success" in lines[1] and "skipped" in lines[2] and "no new files" in lines[2]
    code, out, _ = cli(
        location, home, "sensor", "ticks", "new_files", "--status", "success", "--json"
    )
    (tick,) = json.loads(out)
    assert tick["cursor"] == "seen" and len(tick["run_ids"]) == 1
    (run,) = json.loads(runtime_cli("run", "list", "--json", home=home).stdout)
    assert run["run_id"] == tick["run_ids"][0] and run["tags"]["file"] == "1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("schedule", "start", "nope"),
            "There is no schedule named 'nope' in this workspace; the schedules are: pipeline:weekday_mornings.",
        ),
        (
            ("sensor", "ticks", "new_files", "-l", "elsewhere"),
            "There is no code location named 'elsewhere'; the locations are: pipeline.",
        ),
        (("sensor", "ticks", "new_files", "--limit", "0"), "--limit 0 must be at least 1."),
    ],
)
def test_bad_names_are_one_clear_line(
    location: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    code, out, err = cli(location, tmp_path / "home", *args)
    assert code == 1
    assert err.strip() == f"error: {message}"
    assert out == ""


def test_a_name_in_two_locations_needs_a_location(location: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.py"
    other.write_text(LOCATION)
    home = tmp_path / "home"
    result = runtime_cli(
        "sensor", "start", "broken", "-f", str(location), "-f", str(other), home=home
    )
    assert result.returncode == 1
    assert "exists in several locations (other, pipeline); pass --location" in result.stderr
    chosen = runtime_cli(
        "sensor",
        "start",
        "broken",
        "-l",
        "other",
        "-f",
        str(location),
        "-f",
        str(other),
        home=home,
    )
    assert chosen.returncode == 0, chosen.stderr
    assert "of location 'other' is running" in chosen.stdout

"""`runtime instance info`: reads without creating, reports the storage and the queue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.instance.instance import Instance
from runtime.instance.records import RunStatus

if TYPE_CHECKING:
    from pathlib import Path


def runtime_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RUNTIME_HOME": str(home)},
    )


@pytest.mark.timeout(60)
def test_info_of_a_home_not_created_yet_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = runtime_cli("instance", "info", home=home)
    assert result.returncode == 0, result.stderr
    assert f"home             {home}" in result.stdout
    assert "not created yet" in result.stdout
    assert not home.exists()


@pytest.mark.timeout(60)
def test_info_reports_the_storage_and_the_queue(tmp_path: Path) -> None:
    async def fill() -> None:
        async with Instance.from_home(tmp_path) as instance:
            await instance.create_run("etl", run_id="q1", queued=True)
            await instance.create_run("etl", run_id="q2", queued=True)
            await instance.create_run("etl", run_id="r1")
            await instance.update_run_status("r1", RunStatus.STARTING)

    anyio.run(fill)
    result = runtime_cli("instance", "info", "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["storage"] == "sqlite"
    assert facts["description"] == f"SQLite database at {tmp_path / 'history' / 'runtime.db'}"
    assert facts["schema_version"] >= 2
    assert facts["runs"] == {"total": 3, "queued": 2, "in_flight": 1}
    text = runtime_cli("instance", "info", home=tmp_path)
    assert "runs             total 3, queued 2, in flight 1" in text.stdout


@pytest.mark.timeout(60)
def test_info_refuses_a_world_writable_home_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "open"
    home.mkdir()
    home.chmod(0o777)
    result = runtime_cli("instance", "info", home=home)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: RUNTIME_HOME {home} is writable by every user")

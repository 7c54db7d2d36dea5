"""`runtime run ...` when the storage fails under it: one sentence on stderr, exit status 1."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.instance.instance import Instance

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
def test_a_storage_error_inside_a_run_command_is_one_line_on_stderr(tmp_path: Path) -> None:
    async def create() -> Path:
        async with Instance.from_home(tmp_path) as instance:
            await instance.create_run("etl", run_id="r1")
            return instance.storage_dir

    storage_dir = anyio.run(create)
    # The instance still opens (the runs table is intact); reading the run's
    # events then fails inside the command's body.
    connection = sqlite3.connect(storage_dir / "runtime.db")
    try:
        connection.execute("DROP TABLE events")
        connection.commit()
    finally:
        connection.close()

    result = runtime_cli("run", "show", "r1", home=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: Reading the SQLite database ")
    assert "runtime.db failed: no such table: events." in lines[0]
    assert "Traceback" not in result.stderr and "ExceptionGroup" not in result.stderr

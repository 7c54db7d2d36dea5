"""A python_file that does not exist fails its own location only, however it was declared."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from runtime.host.workspace import Workspace
from tests.workspace.workspace_helpers import HELLO, user_code

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.workspace.options import SupervisorOptions

pytestmark = pytest.mark.anyio


async def test_from_yaml_puts_only_the_missing_files_location_in_error(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    user_code(tmp_path, "good.py", HELLO)
    workspace_file = tmp_path / "workspace.yaml"
    workspace_file.write_text("load_from:\n  - python_file: good.py\n  - python_file: gone.py\n")
    async with Workspace.from_yaml(workspace_file, options=fast_options) as ws:
        assert ws.locations["good"].status == "loaded"
        gone = ws.locations["gone"]
        assert gone.status == "error"
        assert gone.pid is None  # no process was started for it
        assert gone.error is not None
        assert gone.error.message == (
            f"location 'gone': its python_file {tmp_path / 'gone.py'} does not exist "
            f"(declared in {workspace_file} line 3)."
        )
        # The file appears: a reload loads it.
        user_code(tmp_path, "gone.py", HELLO)
        await ws.reload("gone")
        assert ws.locations["gone"].status == "loaded", gone.error


async def test_from_targets_puts_only_the_missing_files_location_in_error(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    good = user_code(tmp_path, "good.py", HELLO)
    async with Workspace.from_targets(
        python_files=[good, tmp_path / "nowhere" / "gone.py"], options=fast_options
    ) as ws:
        assert ws.locations["good"].status == "loaded"
        error = ws.locations["gone"].error
        assert error is not None and "does not exist" in error.message
        assert str(tmp_path / "nowhere" / "gone.py") in error.message
        assert (await (await ws.launch_run(job="greet")).wait()).status == "SUCCESS"


def test_the_cli_lists_the_missing_file_as_a_location_in_error(tmp_path: Path) -> None:
    user_code(tmp_path, "good.py", HELLO)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime",
            "workspace",
            "validate",
            "-f",
            "good.py",
            "-f",
            "gone.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ok     good" in result.stdout
    assert f"its python_file {tmp_path / 'gone.py'} does not exist" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr

"""A user's mistake is shown as the user's: no frame of the runtime's own in what they read."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from runtime.host.workspace import Workspace
from tests.workspace.workspace_helpers import HELLO, user_code

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.workspace.options import SupervisorOptions

CYCLE = """
from runtime import Definitions, asset

@asset
def first(second: int) -> int:
    return second

@asset
def second(first: int) -> int:
    return first

defs = Definitions(assets=[first, second])
"""


@pytest.mark.anyio
async def test_an_asset_cycle_shows_only_the_users_line(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    code = user_code(tmp_path, "cycle.py", CYCLE)
    async with Workspace.from_targets(python_files=[code], options=fast_options) as ws:
        error = ws.locations["cycle"].error
        assert error is not None
        assert "form a cycle" in error.message
        assert f'File "{code}", line 12, in <module>' in error.traceback
        assert "defs = Definitions(assets=[first, second])" in error.traceback
        assert "runtime/definitions" not in error.traceback
        assert "asset_graph.py" not in error.traceback


@pytest.mark.anyio
async def test_a_missing_module_has_no_traceback_at_all(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    async with Workspace.from_targets(modules=["no_such_module_xyz"], options=fast_options) as ws:
        error = ws.locations["no_such_module_xyz"].error
        assert error is not None
        assert "no module named 'no_such_module_xyz'" in error.message
        # Only importlib's frames led there: nothing of the user's to show.
        assert error.traceback == ""
        assert "importlib" not in error.describe()


def test_runtime_home_a_file_is_one_line_for_every_command(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("not a directory")
    code = user_code(tmp_path, "hello.py", HELLO)
    for args in (
        ("job", "launch", "-f", str(code), "-j", "greet"),
        ("run", "list"),
        ("instance", "info"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "runtime", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "RUNTIME_HOME": str(home)},
        )
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stderr == (
            f"error: RUNTIME_HOME {home} is a file, not a directory; remove it or set "
            "RUNTIME_HOME to a directory.\n"
        ), args

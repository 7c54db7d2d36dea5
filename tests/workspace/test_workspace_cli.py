"""`runtime workspace list` and `runtime workspace validate`, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from tests.workspace.workspace_helpers import HELLO, user_code

if TYPE_CHECKING:
    from pathlib import Path


def runtime_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", "workspace", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=45,
    )


def test_list_prints_a_row_per_location(tmp_path: Path) -> None:
    user_code(tmp_path, "good.py", HELLO)
    user_code(tmp_path, "bad.py", "import missing_dependency_xyz\n")
    result = runtime_cli("list", "-f", "good.py", "-f", "bad.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["LOCATION", "STATUS", "JOBS", "ASSETS", "LOAD", "TIME", "ERROR"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["good"].split()[:4] == ["good", "loaded", "1", "2"]
    assert rows["good"].split()[4].replace(".", "").isdigit()
    assert rows["bad"].split()[:5] == ["bad", "error", "-", "-", "-"]
    assert "missing_dependency_xyz" in rows["bad"]
    # Only the first line of the error: no traceback in a table.
    assert "Traceback" not in result.stdout


def test_validate_exits_1_and_prints_each_error_fully(tmp_path: Path) -> None:
    user_code(tmp_path, "good.py", HELLO)
    user_code(tmp_path, "broken.py", "def f(:\n    pass\n")
    (tmp_path / "workspace.yaml").write_text(
        "load_from:\n  - python_file: good.py\n  - python_file: broken.py\n"
    )
    result = runtime_cli("validate", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ok     good: 1 jobs, 2 assets" in result.stdout
    assert "error  broken (" in result.stdout and "workspace.yaml" in result.stdout
    assert "SyntaxError" in result.stdout
    assert "broken.py" in result.stdout and "def f(:" in result.stdout
    assert "1 of 2 locations failed to load." in result.stdout


def test_validate_exits_0_when_everything_loads(tmp_path: Path) -> None:
    user_code(tmp_path / "pkg_root" / "team", "__init__.py", HELLO)
    result = runtime_cli("validate", "-m", "team", "-d", "pkg_root", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All 1 locations loaded." in result.stdout


def test_bad_targets_are_reported_without_a_traceback(tmp_path: Path) -> None:
    result = runtime_cli("list", cwd=tmp_path)
    assert result.returncode == 1
    assert "workspace.yaml" in result.stderr and "Traceback" not in result.stderr
    result = runtime_cli("validate", "-f", "x.py", "--grpc-port", "4000", cwd=tmp_path)
    assert result.returncode == 1
    assert "error:" in result.stderr and "Traceback" not in result.stderr

"""`runtime job launch|execute` wait only for the location of their job, within --startup-timeout."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

GOOD = """
from runtime import Definitions, job, op

@op
def say() -> str:
    return "hello"

@job
def greet():
    say()

defs = Definitions(jobs=[greet])
"""

# Hangs while importing, for much longer than any test waits.
HANGS = "import time\ntime.sleep(600)\n"


def job_cli(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", "job", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "RUNTIME_HOME": str(home)},
    )


def test_a_location_hanging_at_import_does_not_hold_up_a_job_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "hangs.py").write_text(HANGS)
    # Before, each of these waited out the hanging location's 180 s start-up
    # deadline, far past the 60 s this test gives the command.
    for where in (("-l", "good"), ()):
        result = job_cli(
            "launch", "-f", "hangs.py", "-f", "good.py", "-j", "greet", *where,
            home=tmp_path / "home", cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.strip()) == 36  # the run id


def test_startup_timeout_bounds_the_wait_for_the_jobs_own_location(tmp_path: Path) -> None:
    (tmp_path / "hangs.py").write_text(HANGS)
    result = job_cli(
        "execute", "-f", "hangs.py", "-l", "hangs", "-j", "greet", "--startup-timeout", "2",
        home=tmp_path / "home", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert "loading did not finish within 2 s" in result.stderr
    assert "Traceback" not in result.stderr
    bad = job_cli("launch", "-f", "hangs.py", "-j", "greet", "--startup-timeout", "0",
                  home=tmp_path / "home", cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2
    assert "--startup-timeout" in bad.stderr and "positive" in bad.stderr

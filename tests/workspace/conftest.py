"""Fixtures of the workspace tests: a leak check per test, a second venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


@pytest.fixture
def no_processes_left(tmp_path: Path) -> Iterable[Callable[[], None]]:
    """A check that no process runs user code from this test's tmp_path."""
    from tests.workspace.workspace_helpers import processes_mentioning, wait_until_gone

    def check() -> None:
        left = wait_until_gone(processes_mentioning(str(tmp_path)), timeout=5.0)
        assert not left, f"processes still running code from {tmp_path}: {left}"

    yield check
    check()


@pytest.fixture(scope="session")
def second_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv made for this session whose python still imports runtime; returns its python."""
    root = tmp_path_factory.mktemp("second-venv") / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root)],
        check=True,
        timeout=60,
    )
    python = root / "bin" / "python"
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    # --system-site-packages shows the base interpreter's packages, not the
    # host venv's where runtime is installed: add those (and their .pth files).
    host_site = [path for path in sys.path if path.endswith("site-packages")]
    lines = [f"import site; site.addsitedir({path!r})" for path in host_site]
    Path(site_packages, "host_venv.pth").write_text("\n".join(lines) + "\n")
    assert os.path.exists(python)
    return python

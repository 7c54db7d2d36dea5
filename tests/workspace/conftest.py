"""Fixtures for workspace supervision tests: user code on disk, tuning, a second venv, process checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from workspace_helpers import HELLO, processes_mentioning, user_code, wait_until_gone

from runtime.workspace.options import RestartPolicy, SupervisorOptions

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


@pytest.fixture
def hello_file(tmp_path: Path) -> Path:
    return user_code(tmp_path / "hello", "hello.py", HELLO)


@pytest.fixture
def fast_options() -> SupervisorOptions:
    """Tuning that keeps supervision tests quick: short grace, quick restarts."""
    return SupervisorOptions(
        startup_timeout=30.0,
        heartbeat_timeout=6.0,
        stop_grace=3.0,
        restart=RestartPolicy(initial_delay=0.1, max_delay=1.0),
        remote_poll_interval=0.2,
        remote_retry=RestartPolicy(initial_delay=0.2, max_delay=0.5),
    )


@pytest.fixture
def no_processes_left(tmp_path: Path) -> Iterable[Callable[[], None]]:
    """A check that no process runs user code from this test's tmp_path."""

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

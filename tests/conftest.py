"""Suite-wide fixtures: the asyncio backend for anyio tests, and a leak check.

Every test that starts processes must stop them; the session-end check below
fails the run if any child of the test process survived the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runtime.workspace.options import RestartPolicy, SupervisorOptions

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator


@pytest.fixture
def anyio_backend() -> str:
    # grpclib is asyncio-only.
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def runtime_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """RUNTIME_HOME for the session: a workspace opened without an instance stores
    its runs here, never in the checkout."""
    home = tmp_path_factory.mktemp("runtime-home")
    previous = os.environ.get("RUNTIME_HOME")
    os.environ["RUNTIME_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("RUNTIME_HOME", None)
    else:
        os.environ["RUNTIME_HOME"] = previous


# --- workspace supervision fixtures (helpers live in tests/workspace/) --------
# Kept here: a second conftest.py would collide with this one under mypy.


@pytest.fixture
def hello_file(tmp_path: Path) -> Path:
    from workspace_helpers import HELLO, user_code

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
    from workspace_helpers import processes_mentioning, wait_until_gone

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


def _descendants(pid: int) -> list[int]:
    """Pids of every live descendant of pid, read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces; the ppid follows the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if state == "Z":
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


@pytest.fixture(scope="session", autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    leftovers = {pid: _cmdline(pid) for pid in _descendants(os.getpid())}
    # Don't leave them running for the next session either.
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not leftovers, f"processes outlived the test suite: {leftovers}"

"""Suite-wide fixtures: the asyncio backend for anyio tests, and a leak check.

Every test that starts processes must stop them; the session-end check below
fails the run if any child of the test process survived the suite.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runtime.workspace.options import RestartPolicy, SupervisorOptions

if TYPE_CHECKING:
    from collections.abc import Iterator


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


# --- supervision tuning shared by the workspace and run tests ---------------


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

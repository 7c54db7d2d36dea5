"""Nothing outlives the workspace: leaving, cancellation, and a host killed with SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime import Workspace
from tests.workspace.workspace_helpers import (
    HELLO,
    is_running,
    processes_mentioning,
    user_code,
    wait_until_gone,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from anyio.abc import TaskStatus

    from runtime.workspace.options import SupervisorOptions

HOST_SCRIPT = """
import json, sys
import anyio
from runtime import Workspace

async def main() -> None:
    files = sys.argv[1:]
    async with Workspace.from_targets(python_files=files, heartbeat_timeout=3.0) as ws:
        print(json.dumps({n: loc.pid for n, loc in ws.locations.items()}), flush=True)
        await anyio.sleep_forever()

anyio.run(main)
"""


def test_host_killed_with_sigkill_leaves_nothing_behind(tmp_path: Path) -> None:
    files = [user_code(tmp_path / f"h{i}", f"orphan{i}.py", HELLO) for i in range(2)]
    host_script = user_code(tmp_path, "host.py", HOST_SCRIPT)
    host = subprocess.Popen(
        [sys.executable, str(host_script), *map(str, files)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None
        pids = json.loads(host.stdout.readline())
        assert set(pids) == {"orphan0", "orphan1"}
        assert all(is_running(pid) for pid in pids.values())
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=10)
        # Gone well within the heartbeat timeout (3 s): the parent-death signal
        # fires at once; the heartbeat is the fallback.
        assert not wait_until_gone(pids.values(), timeout=3.0)
    finally:
        host.kill()
        host.wait()
        if host.stdout is not None:
            host.stdout.close()
        for pid in processes_mentioning(str(tmp_path)):
            subprocess.run(["kill", "-9", str(pid)], check=False)


@pytest.mark.anyio
async def test_cancelling_the_holding_task_stops_every_process(
    tmp_path: Path, fast_options: SupervisorOptions, no_processes_left: Callable[[], None]
) -> None:
    files = [user_code(tmp_path / f"c{i}", f"held{i}.py", HELLO) for i in range(2)]

    async def hold(*, task_status: TaskStatus[list[int]]) -> None:
        async with Workspace.from_targets(python_files=files, options=fast_options) as ws:
            task_status.started([loc.pid for loc in ws.locations.values() if loc.pid])
            await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        pids = await tg.start(hold)
        assert len(pids) == 2 and all(is_running(pid) for pid in pids)
        tg.cancel_scope.cancel()
    # Process stops are shielded: by the time the task group exits they are reaped.
    assert not [pid for pid in pids if is_running(pid)]
    no_processes_left()


@pytest.mark.anyio
async def test_cancelled_while_loading(
    tmp_path: Path, fast_options: SupervisorOptions, no_processes_left: Callable[[], None]
) -> None:
    # Still importing when the cancellation lands.
    slow = user_code(tmp_path, "slow.py", "import time\ntime.sleep(30)\n")
    fast = user_code(tmp_path, "fast.py", HELLO)
    ws = Workspace.from_targets(python_files=[slow, fast], options=fast_options)
    with anyio.move_on_after(2.0) as scope:
        async with ws:
            pytest.fail("the workspace cannot have loaded a location that sleeps for 30 s")
    assert scope.cancelled_caught
    assert ws.location("slow").status == "loading"
    no_processes_left()


@pytest.mark.anyio
async def test_leaving_stops_processes_and_their_children(
    tmp_path: Path, fast_options: SupervisorOptions, no_processes_left: Callable[[], None]
) -> None:
    # User code that starts a long-running child of its own.
    marker = tmp_path / "grandchild-marker"
    source = HELLO + textwrap.dedent(
        f"""
        import subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", {str(marker)!r}])
        """
    )
    file = user_code(tmp_path, "parent.py", source)
    async with Workspace.from_targets(python_files=[file], options=fast_options) as ws:
        assert ws.location("parent").status == "loaded"
        assert processes_mentioning(str(marker))
    assert not wait_until_gone(processes_mentioning(str(marker)), timeout=3.0)
    no_processes_left()

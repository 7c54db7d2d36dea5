"""A loaded location whose process dies is restarted; reload swaps in a new process."""

from __future__ import annotations

import dataclasses
import os
import signal
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime import Workspace
from runtime.workspace.options import RestartPolicy
from tests.workspace.workspace_helpers import (
    HELLO,
    eventually,
    is_running,
    still_running_after,
    user_code,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from runtime.workspace.options import SupervisorOptions

MORE = (
    HELLO
    + """
@asset
def extra() -> int:
    return 1

defs = Definitions(assets=[numbers, total, extra], jobs=[greet])
"""
)


@pytest.mark.anyio
async def test_killed_location_goes_to_error_then_restarts(
    tmp_path: Path, fast_options: SupervisorOptions, no_processes_left: Callable[[], None]
) -> None:
    crashy = user_code(tmp_path / "crashy", "crashy.py", HELLO)
    steady = user_code(tmp_path / "steady", "steady.py", HELLO)
    ws = Workspace.from_targets(python_files=[crashy, steady], options=fast_options)
    async with ws, ws.watch() as changes:
        location = ws.location("crashy")
        first_pid, first_server = location.pid, location.server_id
        steady_pid = ws.location("steady").pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        seen: list[tuple[str | None, str]] = []
        with anyio.fail_after(15):
            async for change in changes:
                if change.location_name != "crashy":
                    continue
                seen.append((change.old_status, change.new_status))
                if change.old_status == "error":
                    assert change.error is not None
                    assert f"pid {first_pid}" in change.error.message
                    assert "was killed by SIGKILL" in change.error.message
                if seen[-2:] == [("error", "loading"), ("loading", "loaded")]:
                    break
        assert seen[0] == ("loaded", "error")
        assert location.status == "loaded" and location.error is None
        assert location.pid != first_pid and location.server_id != first_server
        assert location.pid is not None and is_running(location.pid)
        # The neighbour never noticed.
        assert ws.location("steady").pid == steady_pid
        assert [s for s, _ in ws.location("steady").history] == ["loading", "loaded"]
    no_processes_left()


@pytest.mark.anyio
async def test_a_crash_loop_backs_off_and_leaves_others_alone(
    tmp_path: Path, fast_options: SupervisorOptions, no_processes_left: Callable[[], None]
) -> None:
    # Loads fine, then dies half a second later, every time.
    source = HELLO + ("\nimport os, threading\nthreading.Timer(0.5, lambda: os._exit(7)).start()\n")
    crashing = user_code(tmp_path / "loop", "loop.py", source)
    steady = user_code(tmp_path / "steady", "steady.py", HELLO)
    options = dataclasses.replace(
        fast_options, restart=RestartPolicy(initial_delay=0.2, multiplier=2.0, max_delay=5.0)
    )
    async with Workspace.from_targets(python_files=[crashing, steady], options=options) as ws:
        location = ws.location("loop")
        await eventually(
            lambda: sum(1 for status, _ in location.history if status == "error") >= 3, 20
        )
        error_times = [t for status, t in location.history if status == "error"]
        restart_times = [
            t
            for (status, t), (previous, _) in zip(
                location.history[1:], location.history, strict=False
            )
            if status == "loading" and previous == "error"
        ]
        # Each wait between an error and the restart is longer than the one before.
        waits = [start - error for error, start in zip(error_times, restart_times, strict=False)]
        assert len(waits) >= 2
        assert waits[1] > waits[0] * 1.5, waits
        assert location.error is not None and "exited with code 7" in location.error.message
        steady_location = ws.location("steady")
        assert steady_location.status == "loaded"
        assert [s for s, _ in steady_location.history] == ["loading", "loaded"]
    no_processes_left()


@pytest.mark.anyio
async def test_no_restart_when_disabled(
    tmp_path: Path, fast_options: SupervisorOptions, no_processes_left: Callable[[], None]
) -> None:
    file = user_code(tmp_path, "once.py", HELLO)
    options = dataclasses.replace(fast_options, restart=RestartPolicy(enabled=False))
    async with Workspace.from_targets(python_files=[file], options=options) as ws:
        location = ws.location("once")
        assert location.pid is not None
        os.kill(location.pid, signal.SIGTERM)
        await eventually(lambda: location.status == "error")
        await anyio.sleep(0.5)
        assert location.status == "error"
        assert location.error is not None and "pid" in location.error.message
        # The last snapshot is still there to look at, but nothing serves it.
        assert location.snapshot is not None and location.pid is None
        # An explicit reload brings it back.
        await ws.reload("once")
        assert location.status == "loaded" and location.pid is not None
    no_processes_left()


@pytest.mark.anyio
async def test_reload_swaps_in_a_new_process_and_snapshot(
    tmp_path: Path, fast_options: SupervisorOptions, no_processes_left: Callable[[], None]
) -> None:
    file = user_code(tmp_path, "live.py", HELLO)
    async with Workspace.from_targets(python_files=[file], options=fast_options) as ws:
        location = ws.location("live")
        old_pid, old_snapshot = location.pid, location.snapshot
        assert old_pid is not None and old_snapshot is not None
        file.write_text(MORE)
        await ws.reload("live")
        assert location.status == "loaded" and location.error is None
        assert location.pid != old_pid
        assert location.snapshot is not None
        assert {a.key for a in location.snapshot.assets} == {"numbers", "total", "extra"}
        assert [s for s, _ in location.history] == ["loading", "loaded", "reloading", "loaded"]
        # The old process had no work in flight, so it is stopped.
        assert not await still_running_after([old_pid], 5.0)
    no_processes_left()


@pytest.mark.anyio
async def test_failed_reload_keeps_the_last_good_snapshot(
    tmp_path: Path, fast_options: SupervisorOptions, no_processes_left: Callable[[], None]
) -> None:
    file = user_code(tmp_path, "edited.py", HELLO)
    async with Workspace.from_targets(python_files=[file], options=fast_options) as ws:
        location = ws.location("edited")
        good_pid, good_snapshot = location.pid, location.snapshot
        file.write_text(HELLO + "\ndef oops(:\n")
        await ws.reload()
        assert location.status == "loaded"
        assert location.snapshot is good_snapshot
        assert location.pid == good_pid and good_pid is not None and is_running(good_pid)
        assert location.error is not None and location.error.type == "SyntaxError"
        assert "edited.py" in location.error.describe()
        async with location.lease() as server:
            assert (await server.client.ping()).server_id == location.server_id
        # Fixing the file and reloading clears the error.
        file.write_text(MORE)
        await ws.reload("edited")
        assert location.error is None and location.pid != good_pid
    no_processes_left()


@pytest.mark.anyio
async def test_retired_process_finishes_its_leases_first(
    tmp_path: Path, fast_options: SupervisorOptions, no_processes_left: Callable[[], None]
) -> None:
    file = user_code(tmp_path, "busy.py", HELLO)
    async with Workspace.from_targets(python_files=[file], options=fast_options) as ws:
        location = ws.location("busy")
        async with location.lease() as old_server:
            await ws.reload("busy")
            assert location.server is not old_server and old_server.retired
            # A run in flight on the old process can still talk to it.
            await anyio.sleep(0.3)
            assert is_running(old_server.pid)
            assert (await old_server.client.ping()).server_id == old_server.server_id
        assert not await still_running_after([old_server.pid], 5.0)
        assert location.pid is not None and is_running(location.pid)
    no_processes_left()


@pytest.mark.anyio
async def test_unresponsive_server_is_killed_and_restarted(
    tmp_path: Path, fast_options: SupervisorOptions, no_processes_left: Callable[[], None]
) -> None:
    file = user_code(tmp_path, "frozen.py", HELLO)
    options = dataclasses.replace(fast_options, heartbeat_timeout=1.5)
    async with Workspace.from_targets(python_files=[file], options=options) as ws:
        location = ws.location("frozen")
        frozen_pid = location.pid
        assert frozen_pid is not None
        # A stopped process answers nothing: to the host it is hung.
        os.kill(frozen_pid, signal.SIGSTOP)
        await eventually(lambda: location.status == "error", 10)
        assert location.error is not None and "SIGKILL" in location.error.message
        await eventually(lambda: location.status == "loaded", 10)
        assert location.pid != frozen_pid
        assert not await still_running_after([frozen_pid], 2.0)
    no_processes_left()

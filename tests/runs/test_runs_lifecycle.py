"""Runs against the life of their location and host: cancel, kill, reload, restart, workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.instance.instance import Instance
from runtime.instance.records import RunStatus
from runtime.protocol.messages import EnginePayload
from tests.runs.runs_helpers import PIPELINE, pipeline_workspace, wait_for_file

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


async def test_cancel_before_the_run_starts_executing(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        run = await ws.launch_run(job="slow_async")
        await run.cancel()
        result = await run.wait()
        assert result.status == "CANCELED"
        kinds = [e.event_type for e in await ws.instance.storage.get_events(run.run_id)]
        assert kinds[-1] == "RUN_CANCELED"
        assert "RUN_SUCCESS" not in kinds


async def test_cancel_mid_async_step(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        run = await ws.launch_run(job="slow_async")
        await wait_for_file(tmp_path / "async_started")
        with anyio.fail_after(15):
            await run.cancel()
            result = await run.wait()
        assert result.status == "CANCELED"
        assert run.status == RunStatus.CANCELED
        kinds = [e.event_type for e in await ws.instance.storage.get_events(run.run_id)]
        assert "RUN_CANCELING" in kinds
        assert kinds[-1] == "RUN_CANCELED"
        # The location keeps serving new runs.
        assert (await (await ws.launch_run(job="diamond")).wait()).status == "SUCCESS"


async def test_cancel_mid_thread_step_reports_what_could_not_stop(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        run = await ws.launch_run(job="blocked")
        await wait_for_file(tmp_path / "blocking_started")
        await run.cancel()
        await anyio.sleep(0.3)
        # The thread step cannot be interrupted: it ends when it is released.
        (tmp_path / "release").write_text("go")
        with anyio.fail_after(15):
            result = await run.wait()
        assert result.status == "CANCELED"
        events = await ws.instance.storage.get_events(run.run_id)
        assert events[-1].event_type == "RUN_CANCELED"
        engine = [e for e in events if e.event_type == "ENGINE_EVENT"]
        assert any("blocking_step" in repr(e.payload) for e in engine)


async def test_the_location_killed_mid_run_fails_the_run_with_the_signal(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        run = await ws.launch_run(job="blocked")
        pid = int(await wait_for_file(tmp_path / "blocking_started"))
        os.kill(pid, signal.SIGKILL)
        with anyio.fail_after(20):
            result = await run.wait()
        assert result.status == "FAILURE"
        events = await ws.instance.storage.get_events(run.run_id)
        assert events[-1].event_type == "RUN_FAILURE"
        engine = [e.payload for e in events if e.event_type == "ENGINE_EVENT"]
        assert any(isinstance(p, EnginePayload) and "SIGKILL" in p.message for p in engine)
        record = await run.refresh()
        assert record.failure_reason is not None and "SIGKILL" in record.failure_reason


async def test_reexecution_from_failure_runs_only_what_failed(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        first = await ws.launch_run(job="recoverable")
        assert (await first.wait()).status == "FAILURE"
        assert len(list(tmp_path.glob("first_value_ran_*"))) == 1
        (tmp_path / "fixed").write_text("yes")
        second = await ws.reexecute(first.run_id)
        result = await second.wait()
        assert result.status == "SUCCESS", result
        # first_value's stored output was reused: it did not run again.
        assert len(list(tmp_path.glob("first_value_ran_*"))) == 1
        assert set(result.steps) == {"flaky_once", "combine"}
        record = await second.refresh()
        assert record.parent_run_id == first.run_id
        assert record.tags["runtime/parent_run_id"] == first.run_id
        outputs = [
            e.payload
            for e in await ws.instance.storage.get_events(second.run_id)
            if e.event_type == "STEP_OUTPUT" and e.step_key == "combine"
        ]
        assert "42" in repr(outputs)


async def test_a_reload_during_a_run_lets_it_finish_in_the_old_process(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        location = ws.locations["runs_pipeline"]
        run = await ws.launch_run(job="blocked")
        old_pid = int(await wait_for_file(tmp_path / "blocking_started"))
        await ws.reload("runs_pipeline")
        assert location.status == "loaded"
        assert location.pid != old_pid
        # New runs go to the new process while the old one still serves the first.
        pid_run = await ws.launch_run(job="pid_job")
        assert (await pid_run.wait()).status == "SUCCESS"
        pid_outputs = [
            e.payload
            for e in await ws.instance.storage.get_events(pid_run.run_id)
            if e.event_type == "STEP_OUTPUT"
        ]
        assert str(location.pid) in repr(pid_outputs)
        (tmp_path / "release").write_text("go")
        with anyio.fail_after(20):
            assert (await run.wait()).status == "SUCCESS"
        # The old process exits once its run is done.
        with anyio.fail_after(15):
            while _alive(old_pid):
                await anyio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_run_worker_runs_in_a_fresh_process(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        location_pid = ws.locations["runs_pipeline"].pid
        run = await ws.launch_run(job="pid_job", launcher="run_worker")
        result = await run.wait()
        assert result.status == "SUCCESS"
        outputs = [
            e.payload
            for e in await ws.instance.storage.get_events(run.run_id)
            if e.event_type == "STEP_OUTPUT"
        ]
        assert outputs and str(location_pid) not in repr(outputs)


HOST_SCRIPT = textwrap.dedent(
    """
    import os, sys, anyio
    from runtime.instance.instance import Instance
    from runtime.host.workspace import Workspace

    async def main():
        os.environ["RUNS_TEST_DIR"] = sys.argv[3]
        async with Instance.from_home(sys.argv[2]) as instance:
            async with Workspace.from_targets(python_files=[sys.argv[1]], instance=instance,
                                              heartbeat_timeout=3.0) as ws:
                run = await ws.launch_run(job="blocked")
                print(run.run_id, flush=True)
                await anyio.sleep(60)

    anyio.run(main)
    """
)


@pytest.mark.timeout(90)
async def test_a_restarted_host_fails_the_runs_its_dead_predecessor_left(tmp_path: Path) -> None:
    home = tmp_path / "home"
    control = tmp_path / "control"
    control.mkdir()
    host = subprocess.Popen(
        [sys.executable, "-c", HOST_SCRIPT, str(PIPELINE), str(home), str(control)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None
        run_id = host.stdout.readline().strip()
        server_pid = int(await wait_for_file(control / "blocking_started"))
    finally:
        host.kill()
        host.wait()
        if host.stdout is not None:
            host.stdout.close()
    # The orphaned code server notices its host is gone (parent-death signal).
    with anyio.fail_after(15):
        while _alive(server_pid):
            await anyio.sleep(0.05)
    async with Instance.from_home(home) as instance:
        assert run_id in instance.orphaned_run_ids
        record = await instance.storage.get_run(run_id)
        assert record is not None
        assert record.status == RunStatus.FAILURE
        assert record.failure_reason is not None and str(host.pid) in record.failure_reason
        events = await instance.storage.get_events(run_id)
        assert events[-1].event_type == "RUN_FAILURE"


# A location whose file a test breaks after it loaded.
SINGLE_JOB = (
    "from runtime import Definitions, job, op\n"
    "@op\n"
    "def one() -> int:\n"
    "    return 1\n"
    "@job\n"
    "def single() -> None:\n"
    "    one()\n"
    "defs = Definitions(jobs=[single])\n"
)


async def test_a_run_worker_that_cannot_load_fails_only_its_run(tmp_path: Path) -> None:
    from runtime.host.workspace import Workspace

    code = tmp_path / "changing.py"
    code.write_text(SINGLE_JOB)
    async with Workspace.from_targets(
        python_files=[code], instance=Instance.ephemeral(), restart=False
    ) as ws:
        # The file breaks after the location loaded: a fresh worker cannot import it.
        code.write_text("raise RuntimeError('broken after loading')\n")
        run = await ws.launch_run(job="single", launcher="run_worker")
        with anyio.fail_after(30):
            result = await run.wait()
        assert result.status == "FAILURE"
        assert result.failure_message is not None
        assert "could not start" in result.failure_message
        assert "broken after loading" in result.failure_message
        # The workspace and its location keep working.
        again = await ws.launch_run(job="single")
        assert (await again.wait()).status == "SUCCESS"


@pytest.mark.parametrize("how", ["task.cancel", "move_on_after"])
async def test_cancelling_the_holder_mid_run_stops_everything(tmp_path: Path, how: str) -> None:
    import asyncio

    from runtime.host.workspace import Workspace

    instance = Instance.ephemeral()
    pids: dict[str, int] = {}
    run_ids: list[str] = []
    os.environ["RUNS_TEST_DIR"] = str(tmp_path)

    async def hold() -> None:
        async with Workspace.from_targets(python_files=[PIPELINE], instance=instance) as ws:
            run = await ws.launch_run(job="blocked")
            run_ids.append(run.run_id)
            pids["server"] = int(await wait_for_file(tmp_path / "blocking_started"))
            await anyio.sleep(60)

    async with instance:
        if how == "task.cancel":
            task = asyncio.ensure_future(hold())
            with anyio.fail_after(20):
                while "server" not in pids:
                    await anyio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            with anyio.move_on_after(20) as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(hold)
                    while "server" not in pids:
                        await anyio.sleep(0.02)
                    tg.cancel_scope.cancel()
            assert not scope.cancelled_caught
        with anyio.fail_after(15):
            while _alive(pids["server"]):
                await anyio.sleep(0.05)
        record = await instance.storage.get_run(run_ids[0])
        assert record is not None and record.status == RunStatus.CANCELED
        assert record.failure_reason is not None
        assert "its workspace closed" in record.failure_reason
        events = await instance.storage.get_events(run_ids[0])
        assert events[-1].event_type == "RUN_CANCELED"
        engine = [e.payload for e in events if e.event_type == "ENGINE_EVENT"]
        assert any(
            isinstance(p, EnginePayload) and "its workspace closed" in p.message for p in engine
        )
    (tmp_path / "release").write_text("go")


async def test_a_run_worker_that_hangs_while_loading_fails_at_the_startup_deadline(
    tmp_path: Path,
) -> None:
    from runtime.host.workspace import Workspace

    code = tmp_path / "slow_later.py"
    code.write_text(SINGLE_JOB)
    async with Workspace.from_targets(
        python_files=[code], instance=Instance.ephemeral(), restart=False, startup_timeout=3.0
    ) as ws:
        code.write_text("import time\ntime.sleep(60)\n")
        run = await ws.launch_run(job="single", launcher="run_worker")
        with anyio.fail_after(20):
            result = await run.wait()
        assert result.status == "FAILURE"
        assert result.failure_message is not None
        assert "could not load its code" in result.failure_message
        assert "loading did not finish within 3 s" in result.failure_message

"""Runs controlled through the instance: cancel from any process, one queue for every host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime import Workspace
from runtime.instance.instance import Instance
from runtime.instance.records import RunStatus

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.anyio

HOST_SCRIPT = Path(__file__).with_name("host_script.py")

LOCATION = """
import asyncio
from runtime import Definitions, job, op

@op
async def nap() -> None:
    await asyncio.sleep(0.4)

@op
async def long_nap() -> None:
    await asyncio.sleep(120)

@job
def napper():
    nap()

@job
def sleeper():
    long_nap()

defs = Definitions(jobs=[napper, sleeper])
"""


def home_with(tmp_path: Path, instance_yaml: str = "") -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    if instance_yaml:
        (home / "instance.yaml").write_text(instance_yaml)
    return home


def location_file(tmp_path: Path) -> Path:
    path = tmp_path / "naps.py"
    path.write_text(LOCATION)
    return path


class Host:
    """A host process running host_script.py, reading the run ids it prints."""

    def __init__(self, home: Path, location: Path, job: str, count: int, *, wait: bool) -> None:
        args = [sys.executable, str(HOST_SCRIPT), str(location), job, str(count)]
        self.process = subprocess.Popen(
            [*args, "--wait"] if wait else args,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "RUNTIME_HOME": str(home)},
            cwd=location.parent,
        )

    def run_ids(self, count: int) -> list[str]:
        assert self.process.stdout is not None
        return [self.process.stdout.readline().strip() for _ in range(count)]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def hosts() -> Iterator[list[Host]]:
    started: list[Host] = []
    yield started
    for host in started:
        host.stop()


async def wait_until_finished(instance: Instance, run_id: str, limit: float = 30) -> RunStatus:
    with anyio.fail_after(limit):
        while True:
            record = await instance.storage.get_run(run_id)
            assert record is not None
            if record.is_finished:
                return record.status
            await anyio.sleep(0.05)


async def test_runtime_run_cancel_stops_a_run_another_host_drives(
    tmp_path: Path, hosts: list[Host]
) -> None:
    home = home_with(tmp_path)
    host = Host(home, location_file(tmp_path), "sleeper", 1, wait=True)
    hosts.append(host)
    (run_id,) = await anyio.to_thread.run_sync(host.run_ids, 1)
    async with Instance.from_home(home) as instance:
        with anyio.fail_after(30):
            while (await instance.storage.get_run(run_id)).status != RunStatus.STARTED:  # type: ignore[union-attr]
                await anyio.sleep(0.05)
        cancelled = await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                [sys.executable, "-m", "runtime", "run", "cancel", run_id, "--wait", "20"],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "RUNTIME_HOME": str(home)},
            )
        )
        assert cancelled.returncode == 0, cancelled.stderr
        assert f"run {run_id} CANCELED" in cancelled.stdout
        events = [e.event_type for e in await instance.storage.get_events(run_id)]
        assert events[-2:] == ["STEP_SKIPPED", "RUN_CANCELED"] or events[-1] == "RUN_CANCELED"
        assert "RUN_CANCELING" in events
    await anyio.to_thread.run_sync(host.process.wait, 30)
    assert host.process.returncode == 0


async def test_a_run_handle_from_another_workspace_cancels_the_run(
    tmp_path: Path, hosts: list[Host]
) -> None:
    home = home_with(tmp_path)
    location = location_file(tmp_path)
    host = Host(home, location, "sleeper", 1, wait=True)
    hosts.append(host)
    (run_id,) = await anyio.to_thread.run_sync(host.run_ids, 1)
    async with Workspace.from_targets(
        python_files=[location], instance=Instance.from_home(home)
    ) as ws:
        run = await ws.get_run(run_id)
        await run.cancel()
        with anyio.fail_after(20):
            result = await run.wait()
        assert result.status == "CANCELED"


async def test_queue_limits_hold_across_two_hosts(tmp_path: Path, hosts: list[Host]) -> None:
    home = home_with(tmp_path, "run_coordinator:\n  queued:\n    max_concurrent_runs: 2\n")
    location = location_file(tmp_path)
    for _ in range(2):
        hosts.append(Host(home, location, "napper", 6, wait=True))
    ids = [run_id for host in hosts for run_id in await anyio.to_thread.run_sync(host.run_ids, 6)]
    for host in hosts:
        await anyio.to_thread.run_sync(host.process.wait, 90)
        assert host.process.returncode == 0
    async with Instance.from_home(home) as instance:
        runs = [await instance.storage.get_run(run_id) for run_id in ids]
    assert all(r is not None and r.status == RunStatus.SUCCESS for r in runs), runs
    # Each run was in flight at least from RUN_START (started_at) to its end.
    moments = sorted(
        [(r.started_at, 1) for r in runs if r is not None and r.started_at is not None]
        + [(r.ended_at, -1) for r in runs if r is not None and r.ended_at is not None]
    )
    assert len(moments) == 24
    running = most = 0
    for _, change in moments:
        running += change
        most = max(most, running)
    assert most == 2


async def test_a_dead_hosts_runs_do_not_block_the_queue(tmp_path: Path, hosts: list[Host]) -> None:
    home = home_with(tmp_path, "run_coordinator:\n  queued:\n    max_concurrent_runs: 1\n")
    location = location_file(tmp_path)
    async with Workspace.from_targets(
        python_files=[location], instance=Instance.from_home(home)
    ) as ws:
        assert await ws.count_runs() == 0  # the instance is open before the other host dies
        host = Host(home, location, "sleeper", 2, wait=False)
        hosts.append(host)
        running, queued = await anyio.to_thread.run_sync(host.run_ids, 2)
        with anyio.fail_after(30):
            while (await ws.get_run(running)).record.status != RunStatus.STARTED:
                await anyio.sleep(0.05)
        host.process.send_signal(signal.SIGKILL)
        await anyio.to_thread.run_sync(host.process.wait, 30)

        mine = await ws.launch_run(job="napper")
        with anyio.fail_after(30):
            assert (await mine.wait()).status == "SUCCESS"
        for run_id in (running, queued):
            record = (await ws.get_run(run_id)).record
            assert record.status == RunStatus.FAILURE
            assert record.failure_reason is not None
            assert f"pid {host.process.pid}" in record.failure_reason


async def test_history_is_readable_before_anything_is_launched(tmp_path: Path) -> None:
    home = tmp_path / "never-created"
    ws = Workspace.from_targets(
        python_files=[location_file(tmp_path)], instance=Instance.from_home(home)
    )
    assert ws.instance.home == home
    async with ws:
        assert not home.exists()  # loading and reading ws.instance create nothing
        assert await ws.list_runs() == []
        assert await ws.count_runs(status="SUCCESS") == 0
        run = await ws.launch_run(job="napper")
        with anyio.fail_after(30):
            await run.wait()
        listed = await ws.list_runs(job="napper", status=["SUCCESS"], limit=5)
        assert [r.run_id for r in listed] == [run.run_id]
        assert await ws.count_runs(location="naps") == 1
        assert (await ws.get_run(run.run_id)).run_id == run.run_id
        with pytest.raises(ValueError, match="Unknown run status"):
            await ws.list_runs(status="DONE")

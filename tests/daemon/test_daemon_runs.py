"""The daemon's run queue and run monitoring, with hosts in other processes on one RUNTIME_HOME."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.daemon.clock import ManualClock
from runtime.daemon.tags import DAGSTER_MAX_RUNTIME_TAG, MAX_RUNTIME_TAG
from runtime.instance.host import current_host
from runtime.instance.records import RunHost, RunRecord, RunStatus
from tests.daemon.daemon_helpers import (
    FAST,
    finished_runs,
    start,
    wait_for_ticks,
    wait_until,
    workspace_and_daemon,
)
from tests.daemon.locations import RUNS, write_location

if TYPE_CHECKING:
    from collections.abc import Iterator

    from runtime.workspace.options import SupervisorOptions

pytestmark = pytest.mark.anyio

HOST_SCRIPT = Path(__file__).with_name("host_script.py")
ONLY_QUEUE = replace(FAST, schedules=False, sensors=False, run_monitoring=False)
ONLY_MONITORING = replace(FAST, schedules=False, sensors=False, run_queue=False)


class Host:
    """A host process running host_script.py; `run_ids` reads the ids it prints."""

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


def queued_home(home: Path, limit: int) -> Path:
    home.mkdir(mode=0o700)
    (home / "instance.yaml").write_text(
        f"run_coordinator:\n  queued:\n    max_concurrent_runs: {limit}\n"
    )
    return home


def most_at_once(runs: list[RunRecord]) -> int:
    """The most runs that were in flight (from started_at to ended_at) at one moment."""
    moments = sorted(
        [(r.started_at, 1) for r in runs if r.started_at is not None]
        + [(r.ended_at, -1) for r in runs if r.ended_at is not None]
    )
    assert len(moments) == 2 * len(runs)
    running = most = 0
    for _, change in moments:
        running += change
        most = max(most, running)
    return most


async def test_queue_limits_hold_for_the_daemons_runs_and_another_hosts(
    tmp_path: Path, home: Path, hosts: list[Host], fast_options: SupervisorOptions
) -> None:
    queued_home(home, 1)
    location = write_location(tmp_path, RUNS)
    clock = ManualClock()
    async with workspace_and_daemon(location, home, clock=clock, supervisor=fast_options) as (
        ws,
        _,
    ):
        instance = await ws.open_instance()
        sensor = await start(ws, "sensor", "three_naps", clock.now())
        host = Host(home, location, "napper", 3, wait=True)
        hosts.append(host)
        clock.advance(1)
        (tick,) = await wait_for_ticks(instance, sensor.id, 1)
        theirs = await anyio.to_thread.run_sync(host.run_ids, 3)
        runs = await finished_runs(instance, tick.run_ids + theirs, limit=60)
        await anyio.to_thread.run_sync(host.process.wait, 30)
    assert host.process.returncode == 0
    assert {r.status for r in runs} == {RunStatus.SUCCESS}
    assert {r.host.pid for r in runs if r.host is not None} == {os.getpid(), host.process.pid}
    assert most_at_once(runs) == 1


async def test_a_queued_run_whose_host_died_is_failed_by_the_queue(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    queued_home(home, 1)
    location = write_location(tmp_path, RUNS)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    here = current_host()
    dead = RunHost(hostname=here.hostname, pid=gone.pid, boot_id=here.boot_id, process_start=1)
    async with workspace_and_daemon(
        location, home, options=ONLY_QUEUE, supervisor=fast_options
    ) as (ws, _):
        instance = await ws.open_instance()
        now = time.time()
        await instance.storage.add_run(
            RunRecord(
                run_id="queued-by-the-dead",
                job_name="napper",
                location_name="pipeline",
                created_at=now,
                updated_at=now,
                host=dead,
                queued_at=now,
            )
        )

        async def failed() -> bool:
            record = await instance.storage.get_run("queued-by-the-dead")
            return record is not None and record.status is RunStatus.FAILURE

        await wait_until(failed)
        record = await instance.storage.get_run("queued-by-the-dead")
        assert record is not None and f"pid {gone.pid}" in (record.failure_reason or "")
        events = [e.event_type for e in await instance.storage.get_events(record.run_id)]
        assert events == ["ENGINE_EVENT", "RUN_FAILURE"]


@pytest.mark.parametrize("launcher", ["in_process", "run_worker"])
async def test_a_run_whose_host_is_sigkilled_is_failed_by_monitoring(
    tmp_path: Path,
    home: Path,
    hosts: list[Host],
    fast_options: SupervisorOptions,
    launcher: str,
) -> None:
    # The run executes in the host's code server, or in a run worker of its own;
    # either way it dies with its host (parent-death signal), and nobody is left
    # to record how the run ended but the daemon.
    home.mkdir(mode=0o700)
    (home / "instance.yaml").write_text(f"run_launcher:\n  {launcher}: {{}}\n")
    location = write_location(tmp_path, RUNS)
    async with workspace_and_daemon(
        location, home, options=ONLY_MONITORING, supervisor=fast_options
    ) as (ws, _):
        instance = await ws.open_instance()
        host = Host(home, location, "sleeper", 1, wait=False)
        hosts.append(host)
        (run_id,) = await anyio.to_thread.run_sync(host.run_ids, 1)

        async def status_is(status: RunStatus) -> bool:
            record = await instance.storage.get_run(run_id)
            return record is not None and record.status is status

        await wait_until(lambda: status_is(RunStatus.STARTED))
        host.process.send_signal(signal.SIGKILL)
        await anyio.to_thread.run_sync(host.process.wait, 30)
        await wait_until(lambda: status_is(RunStatus.FAILURE))
        record = await instance.storage.get_run(run_id)
        assert record is not None
        assert f"pid {host.process.pid}" in (record.failure_reason or "")
        assert "exited before it finished" in (record.failure_reason or "")
        events = await instance.storage.get_events(run_id)
        assert [e.event_type for e in events][-2:] == ["ENGINE_EVENT", "RUN_FAILURE"]
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))


async def test_a_run_stuck_starting_is_failed_after_the_start_timeout(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    location = write_location(tmp_path, RUNS)
    clock = ManualClock()
    options = replace(ONLY_MONITORING, start_timeout=60.0)
    async with workspace_and_daemon(
        location, home, clock=clock, options=options, supervisor=fast_options
    ) as (ws, _):
        instance = await ws.open_instance()
        # STARTING, and its host (this process) alive, but nothing will ever start it.
        record = await instance.create_run("napper", location_name="pipeline")
        starting = await instance.update_run_status(record.run_id, RunStatus.STARTING)
        clock.set(starting.updated_at + 30)
        await anyio.sleep(0.3)
        stored = await instance.storage.get_run(record.run_id)
        assert stored is not None and stored.status is RunStatus.STARTING
        clock.set(starting.updated_at + 61)

        async def failed() -> bool:
            stored = await instance.storage.get_run(record.run_id)
            return stored is not None and stored.status is RunStatus.FAILURE

        await wait_until(failed)
        stored = await instance.storage.get_run(record.run_id)
        assert stored is not None and stored.failure_reason is not None
        assert re.search(
            r"STARTING for 61\.0 s, longer than the daemon's start timeout of 60 s",
            stored.failure_reason,
        )
        events = [e.event_type for e in await instance.storage.get_events(record.run_id)]
        assert events == ["ENGINE_EVENT", "RUN_FAILURE"]
        (request,) = await instance.storage.get_cancel_requests([record.run_id])
        assert "start timeout" in request.requested_by


async def test_a_run_past_its_max_runtime_is_cancelled_saying_why(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    location = write_location(tmp_path, RUNS)
    clock = ManualClock()
    async with workspace_and_daemon(
        location, home, clock=clock, options=ONLY_MONITORING, supervisor=fast_options
    ) as (ws, _):
        instance = await ws.open_instance()
        limited = await ws.launch_run(job="sleeper", tags={DAGSTER_MAX_RUNTIME_TAG: "5"})
        ours = await ws.launch_run(job="sleeper", tags={MAX_RUNTIME_TAG: "30"})
        bad = await ws.launch_run(job="sleeper", tags={MAX_RUNTIME_TAG: "soon"})
        started_at: dict[str, float] = {}
        for run in (limited, ours, bad):

            async def started(run_id: str = run.run_id) -> bool:
                record = await instance.storage.get_run(run_id)
                if record is None or record.status is not RunStatus.STARTED:
                    return False
                assert record.started_at is not None
                started_at[run_id] = record.started_at
                return True

            await wait_until(started)
        clock.set(max(clock.now(), *started_at.values()) + 6)
        with anyio.fail_after(30):
            assert (await limited.wait()).status == "CANCELED"
        (request,) = await instance.storage.get_cancel_requests([limited.run_id])
        assert "exceeded its max runtime of 5 s (tag dagster/max_runtime)" in request.requested_by
        assert await instance.storage.get_cancel_requests([ours.run_id, bad.run_id]) == []
        clock.set(max(clock.now(), started_at[ours.run_id] + 31))
        with anyio.fail_after(30):
            assert (await ours.wait()).status == "CANCELED"
        (request,) = await instance.storage.get_cancel_requests([ours.run_id])
        assert "max runtime of 30 s (tag runtime/max_runtime_seconds)" in request.requested_by
        clock.advance(600)
        await anyio.sleep(0.3)
        assert (await instance.storage.get_run(bad.run_id)).status is RunStatus.STARTED  # type: ignore[union-attr]
        await bad.cancel()
        with anyio.fail_after(30):
            assert (await bad.wait()).status == "CANCELED"

"""A host that dies mid-run or with runs queued: the next instance to open marks them FAILURE and
ends their events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from runtime.instance.host import current_host, dead_host_reason, host_is_alive
from runtime.instance.instance import Instance
from runtime.instance.records import RunHost, RunStatus
from runtime.protocol.messages import EnginePayload, RunFailurePayload
from tests.instance.storage_helpers import make_event, make_run

# A host process: opens the instance, starts a run, stores its first events, queues another
# run, then waits to be killed.
HOST = textwrap.dedent(
    """
    import sys, time, anyio
    from runtime.instance.instance import Instance
    from runtime.instance.records import RunStatus
    from runtime.protocol.messages import RunEvent

    async def main():
        async with Instance.from_home(sys.argv[1]) as instance:
            await instance.create_run("etl", location_name="team_one", run_id="doomed")
            await instance.create_run("etl", location_name="team_one", run_id="queued")
            await instance.event_writer.store(
                [RunEvent(run_id="queued", sequence=1, timestamp=time.time(), event_type="ENGINE_EVENT")]
            )
            await instance.update_run_status("doomed", RunStatus.STARTING)
            await instance.update_run_status("doomed", RunStatus.STARTED)
            await instance.event_writer.store(
                RunEvent(run_id="doomed", sequence=n, timestamp=time.time(), event_type=kind)
                for n, kind in enumerate(["RUN_STARTING", "RUN_START", "STEP_START"], start=1)
            )
            print("ready", flush=True)
            await anyio.sleep(60)

    anyio.run(main)
    """
)


@pytest.mark.anyio
async def test_runs_of_a_killed_host_are_failed_with_their_events_ended(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with await anyio.open_process(
        [sys.executable, "-c", HOST, str(home)], stdout=subprocess.PIPE
    ) as host:
        assert host.stdout is not None
        with anyio.fail_after(20):
            assert (await host.stdout.receive()).strip() == b"ready"
        host.send_signal(signal.SIGKILL)
        await host.wait()
    dead_pid = host.pid

    # Runs this (live) process runs or queues in the same home must be left alone.
    async with Instance.from_home(home) as instance:
        assert instance.orphaned_run_ids == ["doomed", "queued"]
        await instance.create_run("etl", run_id="alive")
        await instance.update_run_status("alive", RunStatus.STARTING)
        await instance.create_run("etl", run_id="alive-queued")

        queued = await instance.storage.get_run("queued")
        assert queued is not None and queued.status is RunStatus.FAILURE
        assert queued.failure_reason == (
            f"The process (pid {dead_pid}) that created this run exited before the run started; "
            "it was still NOT_STARTED when the instance found it, and nothing else will start it."
        )
        queued_events = await instance.storage.get_events("queued")
        assert [(e.sequence, e.event_type) for e in queued_events] == [
            (1, "ENGINE_EVENT"),
            (2, "ENGINE_EVENT"),
            (3, "RUN_FAILURE"),
        ]
        engine = queued_events[1].payload
        assert isinstance(engine, EnginePayload)
        assert engine.metadata == {"previous_status": "NOT_STARTED", "host_pid": dead_pid}

        run = await instance.storage.get_run("doomed")
        assert run is not None and run.status is RunStatus.FAILURE
        assert run.failure_reason is not None
        assert f"host process (pid {dead_pid}) that ran this run exited before it finished" in (
            run.failure_reason
        )
        assert run.ended_at is not None
        events = await instance.storage.get_events("doomed")
        assert [event.event_type for event in events] == [
            "RUN_STARTING",
            "RUN_START",
            "STEP_START",
            "ENGINE_EVENT",
            "RUN_FAILURE",
        ]
        assert [event.sequence for event in events] == [1, 2, 3, 4, 5]
        engine, failure = events[3].payload, events[4].payload
        assert isinstance(engine, EnginePayload) and engine.metadata["host_pid"] == dead_pid
        assert isinstance(failure, RunFailurePayload) and str(dead_pid) in failure.message

    async with Instance.from_home(home) as instance:
        assert instance.orphaned_run_ids == []
        alive = await instance.storage.get_run("alive")
        assert alive is not None and alive.status is RunStatus.STARTING
        alive_queued = await instance.storage.get_run("alive-queued")
        assert alive_queued is not None and alive_queued.status is RunStatus.NOT_STARTED
        assert alive_queued.host == current_host()


def test_a_reaped_child_is_dead_and_this_process_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        start = int(Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        host = RunHost(
            hostname=current_host().hostname,
            pid=child.pid,
            boot_id=current_host().boot_id,
            process_start=start,
        )
        assert host_is_alive(host) is True
    finally:
        child.kill()
        child.wait()
    assert host_is_alive(host) is False
    assert host_is_alive(current_host()) is True


def test_pid_reuse_and_other_machines() -> None:
    here = current_host()
    # Same pid, different start tick: another process that got our old pid.
    assert (
        host_is_alive(
            RunHost(hostname=here.hostname, pid=os.getpid(), boot_id=here.boot_id, process_start=1)
        )
        is False
    )
    # A different boot of this machine: everything from then is gone.
    assert (
        host_is_alive(RunHost(hostname=here.hostname, pid=os.getpid(), boot_id="another-boot"))
        is False
    )
    # Another machine: cannot tell, so never failed from here.
    elsewhere = RunHost(hostname=here.hostname + "-elsewhere", pid=1)
    assert host_is_alive(elsewhere) is None
    assert dead_host_reason(make_run("r", status=RunStatus.STARTED, host=elsewhere)) is None


@pytest.mark.anyio
async def test_in_flight_and_queued_runs_of_a_dead_host_are_failed_finished_ones_kept(
    tmp_path: Path,
) -> None:
    dead = RunHost(hostname=current_host().hostname, pid=os.getpid(), boot_id="old-boot")
    async with Instance.from_home(tmp_path) as instance:
        storage = instance.storage
        await storage.add_run(make_run("queued", status=RunStatus.NOT_STARTED, host=dead))
        # A queued run stored before runs recorded their creator: nobody to ask, kept.
        await storage.add_run(make_run("hostless", status=RunStatus.NOT_STARTED))
        await storage.add_run(make_run("done", status=RunStatus.SUCCESS, host=dead))
        await storage.add_run(make_run("canceling", status=RunStatus.CANCELING, host=dead))
        await storage.add_run(make_run("mine", status=RunStatus.STARTED, host=current_host()))
        await storage.store_events([make_event("canceling", 1, "RUN_CANCELING")])

        assert await instance.fail_orphaned_runs() == ["queued", "canceling"]
        statuses = {run.run_id: run.status for run in await storage.get_runs()}
        assert statuses == {
            "queued": RunStatus.FAILURE,
            "hostless": RunStatus.NOT_STARTED,
            "done": RunStatus.SUCCESS,
            "canceling": RunStatus.FAILURE,
            "mine": RunStatus.STARTED,
        }
        canceling = await storage.get_run("canceling")
        assert canceling is not None and canceling.ended_at is not None
        assert canceling.failure_reason is not None and "pid" in canceling.failure_reason
        # The run log continued the stored sequence.
        assert [(e.sequence, e.event_type) for e in await storage.get_events("canceling")] == [
            (1, "RUN_CANCELING"),
            (2, "ENGINE_EVENT"),
            (3, "RUN_FAILURE"),
        ]
        queued = await storage.get_events("queued")
        assert [(e.sequence, e.event_type) for e in queued] == [
            (1, "ENGINE_EVENT"),
            (2, "RUN_FAILURE"),
        ]
        assert await instance.fail_orphaned_runs() == []


@pytest.mark.anyio
async def test_two_instances_sweeping_at_once_fail_each_run_once(tmp_path: Path) -> None:
    dead = RunHost(hostname=current_host().hostname, pid=os.getpid(), boot_id="old-boot")
    async with Instance.from_home(tmp_path) as first, Instance.from_home(tmp_path) as second:
        for index in range(20):
            await first.storage.add_run(make_run(f"r{index}", status=RunStatus.STARTED, host=dead))
        swept: list[list[str]] = []

        async def sweep(instance: Instance) -> None:
            swept.append(await instance.fail_orphaned_runs())

        async with anyio.create_task_group() as group:
            group.start_soon(sweep, first)
            group.start_soon(sweep, second)
        assert sorted(swept[0] + swept[1]) == sorted(f"r{index}" for index in range(20))
        assert not set(swept[0]) & set(swept[1])
        for index in range(20):
            kinds = [e.event_type for e in await second.storage.get_events(f"r{index}")]
            assert kinds == ["ENGINE_EVENT", "RUN_FAILURE"]


@pytest.mark.anyio
async def test_create_run_records_this_process_until_a_host_starts_it(tmp_path: Path) -> None:
    async with Instance.from_home(tmp_path) as instance:
        created = await instance.create_run("etl", run_id="r1")
        assert created.host == current_host()
        stored = await instance.storage.get_run("r1")
        assert stored is not None and stored.host == current_host()
        other = RunHost(hostname=current_host().hostname, pid=1, boot_id=current_host().boot_id)
        started = await instance.update_run_status("r1", RunStatus.STARTING, host=other)
        assert started.host == other

"""Runs launched into a PostgreSQL instance end to end: a real Workspace and code server, two
host processes writing into one database at once, and a third process following their runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime import Workspace
from runtime.instance.instance import Instance
from runtime.instance.records import RunStatus
from runtime.protocol.messages import RUN_END_EVENTS
from tests.runs.runs_helpers import pipeline_workspace

if TYPE_CHECKING:
    from runtime.protocol.messages import RunEvent

pytestmark = pytest.mark.anyio

HOST_SCRIPT = Path(__file__).parents[1] / "runs" / "host_script.py"

LOCATION = """
import asyncio
from runtime import Definitions, job, op

@op
async def first() -> int:
    await asyncio.sleep(0.3)
    return 1

@op
async def second(n: int) -> int:
    await asyncio.sleep(0.3)
    return n + 1

@job
def two_steps():
    second(first())

defs = Definitions(jobs=[two_steps])
"""


def postgres_home(tmp_path: Path, url: str) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "instance.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {url}\n    pool_size: 3\n"
    )
    return home


def check_complete(events: list[RunEvent]) -> None:
    """Sequences gapless from 1, one end event, last."""
    assert [event.sequence for event in events] == list(range(1, len(events) + 1))
    assert events[0].event_type == "RUN_STARTING"
    assert [e.event_type for e in events if e.event_type in RUN_END_EVENTS] == ["RUN_SUCCESS"]
    assert events[-1].event_type == "RUN_SUCCESS"


async def test_a_workspace_launches_runs_into_a_postgres_instance(
    tmp_path: Path, postgres_url: str
) -> None:
    instance = Instance.from_home(postgres_home(tmp_path, postgres_url))
    with anyio.fail_after(60):
        async with pipeline_workspace(tmp_path, instance=instance) as ws:
            run = await ws.launch_run(job="diamond", tags={"team": "data"})
            assert ws.instance.storage.describe().startswith("PostgreSQL database at postgresql://")
            followed = [event async for event in run.events()]
            result = await run.wait()
            assert result.status == "SUCCESS"
            stored = await ws.instance.storage.get_events(run.run_id)
            assert stored == followed
            check_complete(stored)
            runs = await ws.list_runs(tags={"team": "data"})
            assert [handle.run_id for handle in runs] == [run.run_id]
            record = await ws.instance.storage.get_run(run.run_id)
            assert record is not None and record.status is RunStatus.SUCCESS


def start_host(home: Path, location: Path, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HOST_SCRIPT), str(location), "two_steps", str(count), "--wait"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUNTIME_HOME": str(home)},
        cwd=location.parent,
    )


@pytest.mark.timeout(120)
async def test_two_hosts_write_runs_into_one_database_while_a_third_follows(
    tmp_path: Path, postgres_url: str
) -> None:
    home = postgres_home(tmp_path, postgres_url)
    location = tmp_path / "two.py"
    location.write_text(LOCATION)
    count = 4
    hosts = [start_host(home, location, count) for _ in range(2)]
    try:
        async with Workspace.from_targets(python_files=[], instance=Instance.from_home(home)) as ws:
            # The first run id each host prints: follow it from here, live.
            assert hosts[0].stdout is not None
            first = await anyio.to_thread.run_sync(hosts[0].stdout.readline)
            with anyio.fail_after(90):
                handle = await ws.get_run(first.strip())
                followed = [event async for event in handle.events()]
            check_complete(followed)
            for host in hosts:
                assert await anyio.to_thread.run_sync(host.wait, 90) == 0
            runs = await ws.instance.storage.get_runs()
            assert len(runs) == 2 * count
            assert {run.status for run in runs} == {RunStatus.SUCCESS}
            assert len({run.host.pid for run in runs if run.host is not None}) == 2
            for run in runs:
                check_complete(await ws.instance.storage.get_events(run.run_id))
            assert followed == await ws.instance.storage.get_events(first.strip())
    finally:
        for host in hosts:
            if host.poll() is None:
                host.kill()
            host.wait()
            if host.stdout is not None:
                host.stdout.close()

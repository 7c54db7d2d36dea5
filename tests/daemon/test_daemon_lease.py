"""One daemon per instance: a second is refused while the first's heartbeat is fresh and takes
over once it is stale; heartbeats say how each loop is doing."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

import anyio
import pytest

import runtime
from runtime import Daemon, DaemonOptions, Workspace
from runtime.daemon import DaemonAlreadyRunningError, DaemonLeaseLostError
from runtime.daemon.lease import DAEMON_LEASE
from runtime.errors import RuntimeFrameworkError
from runtime.instance.instance import Instance
from tests.daemon.daemon_helpers import FAST, wait_until, workspace_and_daemon
from tests.daemon.locations import SENSORS, write_location

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.workspace.options import SupervisorOptions

pytestmark = pytest.mark.anyio


async def test_a_second_daemon_on_the_instance_is_refused(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    location = write_location(tmp_path, SENSORS)
    async with workspace_and_daemon(location, home, supervisor=fast_options) as (ws, daemon):
        assert daemon.loops == ["schedules", "sensors", "run_queue", "run_monitoring"]
        async with Workspace.from_targets(
            python_files=[location], instance=Instance.from_home(home), options=fast_options
        ) as other:
            with pytest.raises(DaemonAlreadyRunningError) as refused:
                async with Daemon(other, options=FAST):
                    pass
        message = str(refused.value)
        assert message.startswith(f"Another daemon is running on the instance at {home}: ")
        assert "\n" not in message and "lease lapses in" in message
        # Two daemons over one workspace (one Instance object) are two daemons too.
        with pytest.raises(DaemonAlreadyRunningError):
            async with Daemon(ws, options=FAST):
                pass
        instance = await ws.open_instance()
        lease = await instance.storage.get_lease(DAEMON_LEASE)
        assert lease is not None and lease.is_held(time.time())
    async with Instance.from_home(home) as instance:
        assert await instance.storage.get_lease(DAEMON_LEASE) is None  # given up on exit


async def test_a_daemon_takes_over_once_the_other_heartbeat_is_stale(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    location = write_location(tmp_path, SENSORS)
    async with Workspace.from_targets(
        python_files=[location], instance=Instance.from_home(home), options=fast_options
    ) as ws:
        instance = await ws.open_instance()
        # A daemon that stopped renewing (killed, or frozen) a moment ago.
        assert await instance.storage.acquire_lease(DAEMON_LEASE, "ghost", 0.5, time.time())
        with pytest.raises(DaemonAlreadyRunningError, match="ghost"):
            async with Daemon(ws, options=FAST):
                pass
        await anyio.sleep(0.6)
        async with Daemon(ws, options=FAST):
            lease = await instance.storage.get_lease(DAEMON_LEASE)
            assert lease is not None and lease.holder != "ghost"


async def test_heartbeats_name_every_loop_and_a_lost_lease_stops_the_daemon(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    location = write_location(tmp_path, SENSORS)
    options = replace(FAST, heartbeat_interval=0.2, heartbeat_timeout=2.0)
    with pytest.raises(DaemonLeaseLostError, match="lost its lease"):
        async with workspace_and_daemon(
            location, home, options=options, supervisor=fast_options
        ) as (ws, _):
            instance = await ws.open_instance()

            async def beating() -> bool:
                beats = await instance.get_daemon_heartbeats()
                return len(beats) == 4 and all(b.info["iterations"] >= 1 for b in beats)

            await wait_until(beating)
            beats = {b.daemon_id: b for b in await instance.get_daemon_heartbeats()}
            assert set(beats) == {"schedules", "sensors", "run_queue", "run_monitoring"}
            lease = await instance.storage.get_lease(DAEMON_LEASE)
            assert lease is not None
            assert {b.info["holder"] for b in beats.values()} == {lease.holder}
            # Another daemon finds the lease lapsed (as if this one had frozen) and takes it.
            assert await instance.storage.acquire_lease(
                DAEMON_LEASE, "usurper", 60, time.time() + 10
            )
            with anyio.fail_after(10):
                await anyio.sleep_forever()


async def test_daemon_is_public_and_its_options_are_checked(
    tmp_path: Path, home: Path, fast_options: SupervisorOptions
) -> None:
    assert runtime.Daemon is Daemon and runtime.DaemonOptions is DaemonOptions
    with pytest.raises(ValueError, match="poll_interval must be a positive number"):
        DaemonOptions(poll_interval=0)
    with pytest.raises(ValueError, match="must be longer than heartbeat_interval"):
        DaemonOptions(heartbeat_interval=5, heartbeat_timeout=5)
    location = write_location(tmp_path, SENSORS)
    async with workspace_and_daemon(location, home, supervisor=fast_options) as (_, daemon):
        with pytest.raises(RuntimeFrameworkError, match="entered only once"):
            async with daemon:
                pass

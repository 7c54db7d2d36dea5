"""Helpers of the daemon tests: a workspace and a daemon on a fresh instance, waiting for ticks."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from runtime import Daemon, DaemonOptions, Workspace
from runtime.daemon.instigators import find_instigator, set_status
from runtime.instance.daemon_records import InstigatorStatus, TickStatus
from runtime.instance.instance import Instance

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from runtime.daemon.clock import Clock
    from runtime.daemon.instigators import Instigator
    from runtime.instance.daemon_records import TickRecord
    from runtime.instance.records import RunRecord
    from runtime.workspace.options import SupervisorOptions

# Quick heartbeats; every loop on; ticks that give up before a test does.
FAST = DaemonOptions(heartbeat_interval=0.5, heartbeat_timeout=5.0, tick_timeout=10.0)


@asynccontextmanager
async def workspace_and_daemon(
    location: Path,
    home: Path,
    *,
    clock: Clock | None = None,
    options: DaemonOptions = FAST,
    supervisor: SupervisorOptions | None = None,
) -> AsyncIterator[tuple[Workspace, Daemon]]:
    """A workspace over `location` on the instance at `home`, with a Daemon running over it."""
    async with (
        Workspace.from_targets(
            python_files=[location], instance=Instance.from_home(home), options=supervisor
        ) as ws,
        Daemon(ws, clock=clock, options=options) as daemon,
    ):
        yield ws, daemon


async def start(ws: Workspace, kind: str, name: str, now: float) -> Instigator:
    """Start a schedule or sensor by hand, as `runtime <kind> start` does."""
    instigator = find_instigator(ws.locations, kind, name)
    await set_status(await ws.open_instance(), instigator, InstigatorStatus.RUNNING, now=now)
    return instigator


async def wait_for_ticks(
    instance: Instance,
    instigator_id: str,
    count: int,
    *,
    limit: float = 30.0,
) -> list[TickRecord]:
    """The instigator's ticks, oldest first, once `count` of them have finished.

    Waits for the state too, so the next tick's due time is stored when this returns.
    """
    with anyio.fail_after(limit):
        while True:
            ticks = await instance.get_ticks(instigator_id)
            finished = [t for t in ticks if t.status is not TickStatus.STARTED]
            state = await instance.get_instigator_state(instigator_id)
            if len(finished) >= count and state is not None and state.last_tick_at is not None:
                newest = max(t.tick_time for t in finished)
                if state.last_tick_at >= newest:
                    return sorted(finished, key=lambda t: t.tick_time)
            await anyio.sleep(0.05)


async def wait_until(
    check: Callable[[], Awaitable[object]], *, limit: float = 30.0, interval: float = 0.05
) -> None:
    """Poll the async `check()` until it returns something true."""
    with anyio.fail_after(limit):
        while not await check():
            await anyio.sleep(interval)


async def finished_runs(
    instance: Instance, run_ids: list[str], *, limit: float = 30.0
) -> list[RunRecord]:
    """The records of these runs once every one of them has finished."""
    with anyio.fail_after(limit):
        while True:
            records = [await instance.storage.get_run(run_id) for run_id in run_ids]
            done = [r for r in records if r is not None and r.is_finished]
            if len(done) == len(run_ids):
                return done
            await anyio.sleep(0.05)

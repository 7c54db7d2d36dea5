"""The daemon's lease on its instance, and its heartbeats.

One daemon per instance: starting takes the lease "daemon", which a daemon
renews every `heartbeat_interval` and which lapses `heartbeat_timeout` after
the last renewal. A second daemon is refused while the lease is fresh and
takes over once it lapsed (its holder stalled or died). With each renewal
every loop stores a heartbeat saying how it is doing. Lease and heartbeats
run on real time, not the loops' clock: they are about the process being alive.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING

import anyio

from runtime.daemon.errors import DaemonAlreadyRunningError, DaemonLeaseLostError

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from runtime.daemon.context import DaemonContext
    from runtime.instance.daemon_records import Lease
    from runtime.instance.instance import Instance

__all__ = ["DAEMON_LEASE", "DaemonLease", "describe_holder"]

logger = logging.getLogger("runtime.daemon")

DAEMON_LEASE = "daemon"


class DaemonLease:
    """Takes, keeps and gives up the instance's daemon lease for one Daemon."""

    def __init__(self, ctx: DaemonContext) -> None:
        self._ctx = ctx
        # One holder per Daemon, so two daemons over one Instance object are two holders.
        self.holder = f"{ctx.instance.lease_holder} daemon {uuid.uuid4().hex[:8]}"
        self._held = False

    async def acquire(self) -> None:
        """Take the lease; raises DaemonAlreadyRunningError when another daemon holds it."""
        instance = self._ctx.instance
        ttl = self._ctx.options.heartbeat_timeout
        if await instance.storage.acquire_lease(DAEMON_LEASE, self.holder, ttl, time.time()):
            self._held = True
            return
        text = await self._describe_holder()
        raise DaemonAlreadyRunningError(text[:1].upper() + text[1:])

    async def keep(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Renew the lease and store heartbeats until cancelled; raises DaemonLeaseLostError
        if another daemon took the lease over meanwhile."""
        options = self._ctx.options
        storage = self._ctx.instance.storage
        await self.beat()
        task_status.started()
        while True:
            await anyio.sleep(options.heartbeat_interval)
            try:
                renewed = await storage.acquire_lease(
                    DAEMON_LEASE, self.holder, options.heartbeat_timeout, time.time()
                )
            except Exception:
                # The storage hiccuped: the lease still runs for a while; try again.
                logger.exception("could not renew the daemon lease; retrying")
                continue
            if not renewed:
                self._held = False
                raise DaemonLeaseLostError(
                    "This daemon lost its lease on the instance at "
                    f"{self._ctx.instance.home}: {await self._describe_holder()}"
                )
            try:
                await self.beat()
            except Exception:
                logger.exception("could not store the daemon's heartbeats; retrying")

    async def beat(self) -> None:
        """Store a heartbeat for every loop."""
        for name, health in self._ctx.health.items():
            await self._ctx.instance.record_heartbeat(
                name, {"holder": self.holder, **health.info()}
            )

    async def release(self) -> None:
        """Give the lease up (at once, so a successor need not wait). Safe to call twice."""
        if self._held:
            self._held = False
            await self._ctx.instance.storage.release_lease(DAEMON_LEASE, self.holder)

    async def _describe_holder(self) -> str:
        lease = await self._ctx.instance.storage.get_lease(DAEMON_LEASE)
        if lease is None:
            return "another daemon just took the lease."
        return await describe_holder(self._ctx.instance, lease)


async def describe_holder(instance: Instance, lease: Lease) -> str:
    """`another daemon is running on the instance at ...: HOLDER, last heartbeat N s ago; ...`."""
    now = time.time()
    beats = [
        beat.last_heartbeat_at
        for beat in await instance.get_daemon_heartbeats()
        if beat.info.get("holder") == lease.holder
    ]
    seen = f"last heartbeat {now - max(beats):.0f} s ago" if beats else "no heartbeat yet"
    left = max(0.0, lease.expires_at - now)
    return (
        f"another daemon is running on the instance at {instance.home}: {lease.holder}, "
        f"{seen}; stop it first, or start this one once its heartbeat is stale "
        f"(its lease lapses in {left:.0f} s)."
    )

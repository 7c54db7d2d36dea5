"""EventNotifications: one LISTEN connection that wakes the followers of a run when any host
stores its events.

Every event batch NOTIFYs the storage's channel with `<last sequence>:<run id>`
per run, delivered when the batch commits. The listener wakes the waiters of
that run whose sequence it passed, so a follower on another host reads the
new events a round trip after they are stored, without polling.

When the LISTEN connection drops (a server restart, a terminated backend) the
listener reconnects with backoff and then wakes every waiter, since it cannot
know what it missed meanwhile; they look at the storage themselves.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio
import psycopg
from psycopg import sql

from runtime.instance.storage.postgres_pool import is_transient, one_line

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from anyio.abc import TaskStatus

logger = logging.getLogger("runtime.instance")

# Reconnect pacing of the LISTEN connection: it retries for as long as the storage is open.
_FIRST_DELAY = 0.05
_MAX_DELAY = 1.0


class Waiter:
    """One follower waiting for events of `run_id` past `after_sequence`."""

    def __init__(self, run_id: str, after_sequence: int) -> None:
        self.run_id = run_id
        self.after_sequence = after_sequence
        self.woken = anyio.Event()
        # True when a notification said an event past after_sequence is stored;
        # False when it was woken to look for itself (a reconnect, the storage closing).
        self.notified = False


class EventNotifications:
    """The LISTEN side of the storage's event channel; `run()` is its background task."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
        channel: str,
        *,
        where: str,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._where = where
        self._waiters: dict[str, set[Waiter]] = {}
        self.reconnects = 0

    @contextmanager
    def watch(self, run_id: str, after_sequence: int) -> Iterator[Waiter]:
        """Register a waiter for the block's duration."""
        waiter = Waiter(run_id, after_sequence)
        self._waiters.setdefault(run_id, set()).add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiters.get(run_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[run_id]

    def wake_all(self) -> None:
        """Wake every waiter to look at the storage itself."""
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.woken.set()

    def _dispatch(self, payload: str) -> None:
        sequence, _, run_id = payload.partition(":")
        waiters = self._waiters.get(run_id)
        if not waiters or not sequence.isdigit():
            return
        last = int(sequence)
        for waiter in waiters:
            if last > waiter.after_sequence:
                waiter.notified = True
                waiter.woken.set()

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        """LISTEN until cancelled, reconnecting whenever the connection drops.

        The first connection's failure is raised (the storage cannot open
        without it); later ones are retried for as long as the storage is open.
        """
        delay = _FIRST_DELAY
        started = False
        while True:
            try:
                conn = await self._connect()
            except Exception as exc:
                if not started:
                    raise
                logger.warning("LISTEN on %s: reconnecting: %s", self._where, one_line(exc))
                await anyio.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY)
                continue
            try:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                if started:
                    self.reconnects += 1
                    self.wake_all()  # events stored while we were away woke nobody
                else:
                    started = True
                    task_status.started()
                delay = _FIRST_DELAY
                async for notify in conn.notifies():
                    self._dispatch(notify.payload)
            except Exception as exc:
                if not started:
                    raise
                # Never raise from here once started: this task's failure would
                # cancel the task group of the storage, and everything its owner does.
                level = logging.INFO if is_transient(exc) else logging.WARNING
                logger.log(level, "LISTEN on %s dropped: %s", self._where, one_line(exc))
                self.wake_all()
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        await conn.close()
                    except psycopg.Error:
                        pass

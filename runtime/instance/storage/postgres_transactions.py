"""Transactions that survive a lost server: reads repeated, writes committed exactly once.

Every call that fails because the connection or the server went away is
tried again, with backoff, for `reconnect_timeout` seconds; then it raises
StorageUnavailableError. Reads are simply repeated. A write runs in an
explicit transaction whose id (pg_current_xact_id) is known before COMMIT is
sent, so when the connection drops during the COMMIT the server is asked,
once it is back, whether that transaction committed (pg_xact_status) instead
of guessing: a batch of events that did commit is not stored a second time,
a compare-and-set that did apply is not reported as refused.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeVar

import psycopg

from runtime.errors import StorageError, StorageUnavailableError
from runtime.instance.storage.postgres_pool import Backoff, is_transient, one_line
from runtime.instance.storage.postgres_schema import EVENTS_LOCK

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from runtime.instance.storage.postgres_pool import ConnectionPool
    from runtime.instance.storage.postgres_runs import Connection

logger = logging.getLogger("runtime.instance")

T = TypeVar("T")

BEGIN = "BEGIN; SELECT pg_current_xact_id()::text"
# Event batches take a transaction-level advisory lock, so storage ids are handed out
# in commit order across hosts and a reader paging with get_events_after never skips
# a batch that commits late.
BEGIN_EVENTS = (
    f"BEGIN; SELECT pg_advisory_xact_lock({EVENTS_LOCK}, hashtext(current_schema())); "
    "SELECT pg_current_xact_id()::text"
)


class Transactions:
    """Runs reads and writes on `pool`'s connections, riding out a lost server."""

    def __init__(self, pool: ConnectionPool, *, where: str, reconnect_timeout: float) -> None:
        self._pool = pool
        self._where = where
        self._reconnect_timeout = reconnect_timeout

    async def read(self, fn: Callable[[Connection], Awaitable[T]]) -> T:
        """Run a read in autocommit; repeat it while the server is away."""
        backoff = Backoff(self._reconnect_timeout, self._where)
        while True:
            try:
                async with self._pool.connection() as conn:
                    return await fn(conn)
            except psycopg.Error as exc:
                if not is_transient(exc):
                    raise StorageError(
                        f"Reading the PostgreSQL database {self._where} failed: {one_line(exc)}."
                    ) from exc
                logger.info("%s: a read failed, trying again: %s", self._where, one_line(exc))
                await self._pool.discard_idle()
                await backoff.wait(exc)

    async def write(self, fn: Callable[[Connection], Awaitable[T]], *, begin: str = BEGIN) -> T:
        """Run `fn` in a transaction and commit it, exactly once, however the connection fares.

        A failure before COMMIT rolled the transaction back: try again. A failure
        during COMMIT leaves the outcome unknown to us but not to the server,
        which `_committed` asks.
        """
        backoff = Backoff(self._reconnect_timeout, self._where)
        while True:
            xid: str | None = None
            backend_pid = 0
            committing = False
            try:
                async with self._pool.connection() as conn:
                    backend_pid = conn.info.backend_pid
                    cursor = await conn.execute(begin)
                    while cursor.nextset():
                        pass  # to the last result: the transaction id
                    row = await cursor.fetchone()
                    assert row is not None
                    xid = str(row[0])
                    result = await fn(conn)
                    committing = True
                    await conn.execute("COMMIT")
                    return result
            except psycopg.Error as exc:
                if not is_transient(exc):
                    raise StorageError(
                        f"Writing to the PostgreSQL database {self._where} failed: {one_line(exc)}."
                    ) from exc
                logger.info("%s: a write failed, trying again: %s", self._where, one_line(exc))
                await self._pool.discard_idle()
                if committing and xid is not None and await self._committed(xid, backend_pid, exc):
                    logger.info("%s: a commit whose reply was lost had gone through", self._where)
                    return result
                await backoff.wait(exc)

    async def _committed(self, xid: str, backend_pid: int, lost: BaseException) -> bool:
        """Whether the transaction `xid`, whose COMMIT reply was lost, committed.

        Raises StorageError when the server stays away too long to tell: the
        caller must not guess, so it must not try the write again either.
        """
        backoff = Backoff(self._reconnect_timeout, self._where)
        while True:
            problem: BaseException = lost
            try:
                status = await self._xact_status(xid, backend_pid)
            except psycopg.Error as exc:
                if "in the future" in str(exc):
                    return False  # the server crashed before the transaction was even logged
                if not is_transient(exc):
                    raise StorageError(
                        f"Lost the connection to the PostgreSQL database {self._where} while "
                        f"committing, and could not tell whether the write was stored: "
                        f"{one_line(exc)}; it was not tried again."
                    ) from exc
                await self._pool.discard_idle()
                problem = exc
            else:
                if status != "in progress":
                    return status == "committed"
            try:
                await backoff.wait(problem)
            except StorageUnavailableError as gave_up:
                raise StorageError(
                    f"Lost the connection to the PostgreSQL database {self._where} while "
                    f"committing ({one_line(lost)}), and it stayed away too long to tell "
                    "whether the write was stored; it was not tried again."
                ) from gave_up

    async def _xact_status(self, xid: str, backend_pid: int) -> str | None:
        """pg_xact_status of `xid`; a backend still in it (it has not noticed that we are
        gone) is terminated, which rolls it back, so the next look can tell."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute("SELECT pg_xact_status(%s::xid8)", (xid,))
            row = await cursor.fetchone()
            status = None if row is None else row[0]
            if status == "in progress":
                try:
                    await conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE pid = %s AND backend_xid::text = %s",
                        (backend_pid, str(int(xid) % 2**32)),
                    )
                except psycopg.Error as exc:
                    if is_transient(exc):
                        raise
                    # Not ours to end: it rolls back once it notices on its own.
            return None if status is None else str(status)

"""A small pool of psycopg async connections, and what counts as a passing failure of the server.

The pool opens connections on demand, up to `size`, and keeps them for reuse.
A connection comes back to it only when it is healthy and outside a
transaction; anything else (broken, cancelled mid-query, left in a
transaction) is closed. When the server goes away every idle connection is
dead at once, so `discard_idle()` drops them all on the first sign of it,
and the next caller connects afresh instead of finding them one by one.

No background tasks: connecting and retrying happen in the caller's task, so
nothing outlives the storage and a retry's pace is the caller's backoff.
"""

from __future__ import annotations

import re
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import psycopg

from runtime.errors import StorageError, StorageUnavailableError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

# SQLSTATEs after which the same work may simply be tried again: the server shut down
# or is starting (57P0x), too many connections (53300), a connection exception (08xxx),
# and the transaction-level conflicts PostgreSQL resolves by aborting one side.
_TRANSIENT_STATES = frozenset({"57P01", "57P02", "57P03", "53300", "40001", "40P01"})


def is_transient(exc: BaseException) -> bool:
    """True for a failure that retrying can cure: the connection or the server went away."""
    if not isinstance(exc, psycopg.OperationalError):
        return False  # a constraint, a bad statement, a misuse: trying again changes nothing
    state = exc.sqlstate
    # No SQLSTATE: libpq's own failure (refused, reset, timed out, lost).
    return state is None or state.startswith("08") or state in _TRANSIENT_STATES


def one_line(exc: BaseException) -> str:
    """libpq's message (often several lines: the failure, then hints) as one sentence, without
    its final period: `... failed: Connection refused (is the server running on that host ...)`."""
    text = re.sub(r"^connection failed:\s*", "", str(exc).strip())
    lines = [
        re.sub(r"^(FATAL|ERROR|DETAIL|HINT):\s*", "", line.strip()) for line in text.splitlines()
    ]
    lines = [line for line in lines if line]
    if not lines:
        return type(exc).__name__
    first, hints = lines[0].rstrip("."), [line.rstrip(".?") for line in lines[1:]]
    return first + "".join(f" ({hint[:1].lower()}{hint[1:]})" for hint in hints)


class Backoff:
    """Paces retries against one deadline: at once, then 50 ms doubling to 1 s.

    `await wait(exc)` sleeps before the next try, or raises StorageUnavailableError
    (naming `where` and `exc`) once the deadline would pass.
    """

    def __init__(
        self, timeout: float, where: str, *, first: float = 0.05, cap: float = 1.0
    ) -> None:
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._where = where
        self._delay = 0.0
        self._first = first
        self._cap = cap

    async def wait(self, exc: BaseException) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise StorageUnavailableError(
                f"The PostgreSQL database {self._where} is unreachable: {one_line(exc)} "
                f"(retried for {self._timeout:g} s)."
            ) from exc
        await anyio.sleep(min(self._delay, remaining))
        self._delay = min(max(self._delay * 2, self._first), self._cap)


class ConnectionPool:
    """Up to `size` autocommit connections to one database, reused while healthy.

    `async with pool.connection() as conn:` waits for a free slot, then hands out
    an idle connection or opens a new one (raising psycopg's error if that fails).
    Raises StorageError once the pool is closed.
    """

    def __init__(self, conninfo: str, params: dict[str, Any], *, size: int, where: str) -> None:
        self._conninfo = conninfo
        self._params = params
        self._where = where
        self._slots = anyio.Semaphore(size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._closed = False
        self._out = 0
        self._returned = anyio.Event()

    async def connect(self) -> psycopg.AsyncConnection[Any]:
        """A new connection outside the pool (the caller closes it)."""
        return await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, **self._params
        )

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._closed:
            raise StorageError(f"The PostgreSQL storage at {self._where} is closed.")
        async with self._slots:
            self._out += 1
            try:
                conn = self._idle.pop() if self._idle else await self.connect()
                # psycopg finishes a statement before it raises, so after an error the
                # connection is in a known state; after a cancellation it is not.
                reusable = False
                try:
                    yield conn
                    reusable = True
                except Exception:
                    reusable = True
                    raise
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._give_back(conn, reusable)
            finally:
                self._out -= 1
                returned, self._returned = self._returned, anyio.Event()
                returned.set()

    async def _give_back(self, conn: psycopg.AsyncConnection[Any], reusable: bool) -> None:
        if reusable and not self._closed and not conn.broken:
            status = conn.info.transaction_status
            if status != psycopg.pq.TransactionStatus.IDLE:
                try:
                    await conn.execute("ROLLBACK")
                except psycopg.Error:
                    status = psycopg.pq.TransactionStatus.UNKNOWN
                else:
                    status = conn.info.transaction_status
            if status == psycopg.pq.TransactionStatus.IDLE:
                self._idle.append(conn)
                return
        await _close(conn)

    async def discard_idle(self) -> None:
        """Close the idle connections: the server went away, so they are all dead."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await _close(conn)

    async def aclose(self) -> None:
        """Wait for the connections in use to come back, then close them all. Safe twice."""
        self._closed = True
        with anyio.CancelScope(shield=True):
            while self._out:
                await self._returned.wait()
            await self.discard_idle()


async def _close(conn: psycopg.AsyncConnection[Any]) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await conn.close()
        except psycopg.Error:
            pass

"""Handing a run's events, in order, to whoever streams them.

Steps emit from the event loop and from worker threads through the run's
RunLog (runtime.protocol.run_log), whose sink is synchronous and cheap
(`put`); an `EventBuffer` collects events and lets one async consumer drain
them in batches, which is what the code server streams.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime.protocol.messages import RunEvent


def jsonable(metadata: dict[str, Any]) -> dict[str, Any]:
    """User metadata made encodable: values msgpack cannot carry become their repr()."""
    converted: dict[str, Any] = msgspec.to_builtins(metadata, enc_hook=repr, str_keys=True)
    return converted


class EventBuffer:
    """A thread-safe sink drained by one async consumer in batches.

    Producers call `put` from the loop or from threads; `batches()` yields
    lists of events in order, waking once per burst rather than per event,
    and ends after `close()` once everything put before it was yielded.
    Create it on the event loop that will consume it.
    """

    def __init__(self, *, max_batch: int = 2000) -> None:
        if max_batch < 1:
            raise ValueError(f"EventBuffer max_batch must be >= 1, got {max_batch}.")
        self._max_batch = max_batch
        self._events: deque[RunEvent] = deque()
        self._closed = False
        # The buffer is asyncio-specific on purpose: a bare future is the
        # cheapest wake-up, and grpclib (the consumer) is asyncio-only anyway.
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._waiter: asyncio.Future[None] | None = None
        self._lock = threading.Lock()

    def put(self, event: RunEvent) -> None:
        """Append one event and wake the consumer if it waits. Safe from any thread."""
        self._events.append(event)
        self._wake()

    def close(self) -> None:
        """Let `batches()` finish after the events already put. Safe to call twice."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            waiter, self._waiter = self._waiter, None
        if waiter is None:
            return
        if threading.get_ident() == self._loop_thread:
            # Not set_result right away: a burst of puts from one step then
            # ends up in one batch.
            self._loop.call_soon(_release, waiter)
        else:
            self._loop.call_soon_threadsafe(_release, waiter)

    async def batches(self) -> AsyncIterator[list[RunEvent]]:
        """Yield the events put so far in order, in lists of at most max_batch, until closed."""
        events = self._events
        while True:
            if events:
                count = min(len(events), self._max_batch)
                yield [events.popleft() for _ in range(count)]
                continue
            if self._closed:
                return
            waiter = self._loop.create_future()
            with self._lock:
                self._waiter = waiter
            # A producer may have put (or closed) between the checks above and
            # installing the waiter; look again before sleeping.
            if events or self._closed:
                with self._lock:
                    self._waiter = None
                continue
            await waiter


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)

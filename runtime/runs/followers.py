"""Followers: every `RunHandle.events()` iteration of one workspace, ended together when it closes.

A follower waiting for a run's next event would otherwise wait for the
length of the run, holding up whatever embeds the workspace (a web server's
event streams, say) when it shuts down. Closing wakes every waiting
follower, which reads what is stored one last time and ends.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Iterator


class Followers:
    """The live event followers of one workspace; `close()` ends each of them."""

    def __init__(self) -> None:
        self._waiting: set[anyio.CancelScope] = set()
        self._active = 0
        self._none_active = anyio.Event()
        self._none_active.set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @contextmanager
    def following(self) -> Iterator[None]:
        """Count one follower for the duration of the block."""
        self._active += 1
        if self._active == 1:
            self._none_active = anyio.Event()
        try:
            yield
        finally:
            self._active -= 1
            if self._active == 0:
                self._none_active.set()

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """A wait for new events that `close()` cuts short (at once if already closed)."""
        with anyio.CancelScope() as scope:
            if self._closed:
                scope.cancel()
            self._waiting.add(scope)
            try:
                yield
            finally:
                self._waiting.discard(scope)

    def close(self) -> None:
        """Wake every waiting follower; from now on each ends after its next read."""
        self._closed = True
        for scope in list(self._waiting):
            scope.cancel()

    async def wait_ended(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return once no follower is active, or after `timeout` seconds (a consumer
        that stopped iterating keeps its follower open)."""
        with anyio.move_on_after(timeout):
            await self._none_active.wait()

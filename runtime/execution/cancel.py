"""CancelToken: how a caller asks a run to stop."""

from __future__ import annotations

import anyio


class CancelToken:
    """Asks a run to stop. `cancel()` is called on the run's event loop; `cancelled` is safe anywhere."""

    def __init__(self) -> None:
        self._cancelled = False
        self._event: anyio.Event | None = None
        # Why, when the canceller says so; the run reports it in an engine event.
        self.reason: str | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self, reason: str | None = None) -> None:
        """Request cancellation; the run ends CANCELED. Calling it again does nothing.

        `reason` (the first one given) is reported in an ENGINE_EVENT right after
        RUN_CANCELING, with metadata ``{"cancel_reason": true}``.
        """
        if self.reason is None:
            self.reason = reason
        self._cancelled = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        """Return once cancellation was requested."""
        if self._cancelled:
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()

"""What the daemon raises: it could not start, or it lost the instance's daemon lease."""

from __future__ import annotations

from runtime.errors import RuntimeFrameworkError

__all__ = ["DaemonAlreadyRunningError", "DaemonError", "DaemonLeaseLostError"]


class DaemonError(RuntimeFrameworkError):
    """The daemon cannot do its work."""


class DaemonAlreadyRunningError(DaemonError):
    """Another daemon holds the instance's daemon lease and its heartbeat is fresh."""


class DaemonLeaseLostError(DaemonError):
    """Another daemon took the lease over (this one stalled past its heartbeat timeout)."""

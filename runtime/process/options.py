"""How a code server process is started, kept alive and stopped."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class CodeServerOptions:
    """Deadlines for one code server process; frozen, passed down, never global."""

    # From spawn to loaded definitions; on expiry the process is killed.
    startup_timeout: float = 180.0
    # The code server exits when no heartbeat arrives for this long, so a host
    # that vanishes leaves nothing behind; the host sends one every third of it.
    heartbeat_timeout: float = 30.0
    # SIGTERM, then this long for a graceful exit, then SIGKILL.
    stop_grace: float = 5.0

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_timeout / 3

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
    # Where the code server keeps run outputs, for re-execution (`--storage-dir`):
    # the workspace sets its instance's artifacts directory. None: in memory only.
    storage_dir: str | None = None
    # The largest request the code server accepts (`--max-request-bytes`);
    # None: its default, 4 MiB.
    max_request_bytes: int | None = None

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_timeout / 3

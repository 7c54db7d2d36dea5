"""How a workspace supervises its locations: deadlines, heartbeats, restarts.

One frozen value passed down from the Workspace to every supervisor, so two
workspaces in one process can be tuned independently and nothing is global.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runtime.process.options import CodeServerOptions


@dataclass(frozen=True, kw_only=True)
class RestartPolicy:
    """Exponential backoff for restarting a loaded location whose process died.

    The delay before restart n (counting from 0) is
    `min(initial_delay * multiplier**n, max_delay)`; n goes back to 0 once a
    restarted process has stayed up for `stable_after` seconds.
    """

    enabled: bool = True
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    stable_after: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart number `attempt` (0-based)."""
        return min(self.initial_delay * self.multiplier**attempt, self.max_delay)


@dataclass(frozen=True, kw_only=True)
class SupervisorOptions(CodeServerOptions):
    """Tuning for every location of one workspace: its code servers' deadlines, restarts, polling."""

    restart: RestartPolicy = field(default_factory=RestartPolicy)
    # grpc_server locations: how often to ask whether the server id changed.
    remote_poll_interval: float = 2.0
    # grpc_server locations: backoff while the server is unreachable.
    remote_retry: RestartPolicy = field(
        default_factory=lambda: RestartPolicy(initial_delay=1.0, max_delay=30.0)
    )
    # On close: how long runs in flight get to end CANCELED through their code
    # servers before the host ends them itself (still CANCELED, with the reason).
    cancel_grace: float = 2.0

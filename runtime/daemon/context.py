"""What every loop of a daemon shares: the workspace, its open instance, the clock, the
options, and each loop's health for the heartbeats."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.daemon.clock import Clock
    from runtime.daemon.options import DaemonOptions
    from runtime.host.workspace import Workspace
    from runtime.instance.instance import Instance

__all__ = ["DaemonContext", "LoopHealth"]

# Errors a loop keeps for its heartbeat.
_KEPT_ERRORS = 5


@dataclass
class LoopHealth:
    """How one loop is doing: iterations, when the last one ended, its latest errors."""

    name: str
    iterations: int = 0
    last_iteration_at: float | None = None
    errors: list[str] = field(default_factory=list)

    def iterated(self) -> None:
        self.iterations += 1
        self.last_iteration_at = time.time()

    def failed(self, message: str) -> None:
        self.errors = [*self.errors[-(_KEPT_ERRORS - 1) :], message]

    def info(self) -> dict[str, Any]:
        """What its heartbeat says."""
        return {
            "iterations": self.iterations,
            "last_iteration_at": self.last_iteration_at,
            "errors": list(self.errors),
        }


@dataclass
class DaemonContext:
    """The parts a loop works with."""

    workspace: Workspace
    instance: Instance
    clock: Clock
    options: DaemonOptions
    health: dict[str, LoopHealth] = field(default_factory=dict)

    def loop_health(self, name: str) -> LoopHealth:
        return self.health.setdefault(name, LoopHealth(name))

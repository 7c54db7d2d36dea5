"""The values a code location's state machine is made of.

loading ──► loaded ──► reloading ──► loaded   (a failed reload keeps the
   │          │                               last good snapshot, with
   ▼          ▼                               the error beside it)
 error ◄── process died ──► loading (restart with backoff)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from runtime.process.failure import LocationFailure

__all__ = ["LocationFailure", "LocationStatus", "StatusChange"]

LocationStatus = Literal["loading", "loaded", "error", "reloading"]


@dataclass(frozen=True, kw_only=True)
class StatusChange:
    """One transition of one location, as `Workspace.watch()` reports it."""

    location_name: str
    old_status: LocationStatus | None
    new_status: LocationStatus
    # time.time() of the change.
    time: float
    # The location's error after the change (None when it has none).
    error: LocationFailure | None = None

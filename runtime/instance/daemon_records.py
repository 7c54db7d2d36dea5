"""What the instance stores for the daemon: leases, schedule and sensor state, ticks, heartbeats.

A lease lets one process across every host of an instance do something alone
(the run-queue pass, the daemon itself). Instigators (schedules and sensors)
keep their status and cursor here, the run keys they already used, and one
tick per evaluation. Frozen msgspec Structs, like the run records.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from runtime.instance.records import RunHost

__all__ = [
    "DaemonHeartbeat",
    "InstigatorKind",
    "InstigatorState",
    "InstigatorStatus",
    "Lease",
    "TickRecord",
    "TickStatus",
    "instigator_id",
]


class Lease(msgspec.Struct, frozen=True, kw_only=True):
    """A named lease: `holder` has it until `expires_at` (Unix seconds) unless it renews it."""

    name: str
    holder: str
    acquired_at: float
    expires_at: float

    def is_held(self, now: float) -> bool:
        """True until the lease expires."""
        return now < self.expires_at


class InstigatorKind(enum.StrEnum):
    """What starts runs on its own: a schedule or a sensor."""

    SCHEDULE = "schedule"
    SENSOR = "sensor"


class InstigatorStatus(enum.StrEnum):
    """Whether the daemon evaluates an instigator."""

    RUNNING = "running"
    STOPPED = "stopped"


def instigator_id(kind: InstigatorKind | str, location: str, name: str) -> str:
    """The id an instigator is stored under: `schedule:location/name`, `sensor:location/name`."""
    return f"{InstigatorKind(kind)}:{location}/{name}"


class InstigatorState(msgspec.Struct, frozen=True, kw_only=True):
    """A schedule's or sensor's stored state: running or stopped, its cursor, its last tick."""

    name: str
    kind: InstigatorKind
    location: str
    status: InstigatorStatus = InstigatorStatus.STOPPED
    cursor: str | None = None
    last_tick_at: float | None = None
    # Free-form, for what the daemon needs to remember (e.g. a schedule's last scheduled time).
    data: dict[str, Any] = {}
    updated_at: float

    @property
    def instigator_id(self) -> str:
        """The id this state is stored under (see `instigator_id`)."""
        return instigator_id(self.kind, self.location, self.name)


class TickStatus(enum.StrEnum):
    """How one evaluation of an instigator went."""

    STARTED = "started"
    SUCCESS = "success"
    SKIPPED = "skipped"
    FAILURE = "failure"


class TickRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One evaluation of a schedule or sensor: when, how it went, the runs it requested."""

    tick_id: str
    instigator_id: str
    tick_time: float
    status: TickStatus = TickStatus.STARTED
    run_ids: list[str] = []
    skip_reason: str | None = None
    error: str | None = None
    cursor: str | None = None
    # What else the daemon says about the tick: missed cron times it did not
    # catch up on, run keys it did not launch again.
    notes: list[str] = []
    created_at: float
    updated_at: float


class DaemonHeartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """A daemon saying it is alive: which one, on which host, when, and what it reports."""

    daemon_id: str
    host: RunHost
    last_heartbeat_at: float
    info: dict[str, Any] = {}

"""Schedules and sensors as the daemon and the CLI see them: what the locations define,
what the instance stores about each, and whether it is running.

Whether an instigator runs is its definition's `default_status` until someone
starts or stops it; from then on the stored choice wins (the state's
`status_source` is "user"). A status stored other than the one the
daemon stored as the default (the web API's start and stop store a status
as it is) is a choice too. What the daemon itself keeps in the
state (a sensor's cursor and last tick, a schedule's last cron time and since
when it runs) never changes that choice: every write re-reads the stored
state and changes only its own fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from runtime.errors import UnknownDefinitionError
from runtime.instance.daemon_records import (
    InstigatorKind,
    InstigatorState,
    InstigatorStatus,
    instigator_id,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from runtime.instance.instance import Instance
    from runtime.protocol.messages import ScheduleSnapshot, SensorSnapshot
    from runtime.workspace.location import CodeLocation

__all__ = [
    "RUNNING_SINCE",
    "STATUS_SOURCE",
    "Instigator",
    "chosen_by_hand",
    "effective_status",
    "find_instigator",
    "list_instigators",
    "set_cursor",
    "set_status",
    "update_state",
]

# InstigatorState.data keys.
STATUS_SOURCE = "status_source"  # "user" once started or stopped by hand, else "default"
DEFAULT_WRITTEN = "default_status"  # the status the daemon stored because it was the default
RUNNING_SINCE = "running_since"  # a schedule fires only for cron times after this


@dataclass(frozen=True, slots=True)
class Instigator:
    """One schedule or sensor of a loaded location, from its snapshot."""

    kind: InstigatorKind
    location: str
    name: str
    job_name: str | None
    default_status: str
    description: str | None
    schedule: ScheduleSnapshot | None = None
    sensor: SensorSnapshot | None = None

    @property
    def id(self) -> str:
        """The id its state and ticks are stored under."""
        return instigator_id(self.kind, self.location, self.name)

    @property
    def label(self) -> str:
        """`schedule 'name' of location 'loc'`, for messages."""
        return f"{self.kind} {self.name!r} of location {self.location!r}"

    @property
    def default(self) -> InstigatorStatus:
        return (
            InstigatorStatus.RUNNING
            if self.default_status == "running"
            else InstigatorStatus.STOPPED
        )


def list_instigators(
    locations: Mapping[str, CodeLocation], kind: InstigatorKind | str
) -> list[Instigator]:
    """Every schedule (or sensor) of every location that has a snapshot, by location and name."""
    wanted = InstigatorKind(kind)
    found: list[Instigator] = []
    for location in locations.values():
        snapshot = location.snapshot
        if snapshot is None:
            continue
        if wanted is InstigatorKind.SCHEDULE:
            found += [
                Instigator(
                    kind=wanted,
                    location=location.name,
                    name=s.name,
                    job_name=s.job_name,
                    default_status=s.default_status,
                    description=s.description,
                    schedule=s,
                )
                for s in snapshot.schedules
            ]
        else:
            found += [
                Instigator(
                    kind=wanted,
                    location=location.name,
                    name=s.name,
                    job_name=s.job_name,
                    default_status=s.default_status,
                    description=s.description,
                    sensor=s,
                )
                for s in snapshot.sensors
            ]
    return sorted(found, key=lambda i: (i.location, i.name))


def find_instigator(
    locations: Mapping[str, CodeLocation],
    kind: InstigatorKind | str,
    name: str,
    location: str | None = None,
) -> Instigator:
    """The schedule (or sensor) called `name`, in `location` when given.

    Raises UnknownDefinitionError naming what exists, or the locations that
    share the name when `location` is needed to choose.
    """
    wanted = InstigatorKind(kind)
    every = list_instigators(locations, wanted)
    if location is not None and location not in locations:
        known = ", ".join(sorted(locations)) or "none"
        raise UnknownDefinitionError(
            f"There is no code location named {location!r}; the locations are: {known}."
        )
    matches = [i for i in every if i.name == name and location in (None, i.location)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        where = ", ".join(i.location for i in matches)
        raise UnknownDefinitionError(
            f"{wanted.capitalize()} {name!r} exists in several locations ({where}); "
            "pass --location to say which."
        )
    scope = f"location {location!r}" if location is not None else "this workspace"
    names = ", ".join(f"{i.location}:{i.name}" for i in every) or "none"
    broken = sorted(n for n, loc in locations.items() if loc.snapshot is None)
    detail = f" (locations that did not load, which may define it: {', '.join(broken)})"
    raise UnknownDefinitionError(
        f"There is no {wanted} named {name!r} in {scope}{detail if broken else ''}; "
        f"the {wanted}s are: {names}."
    )


def chosen_by_hand(state: InstigatorState | None) -> bool:
    """True once someone started or stopped the instigator: here (`set_status`), or by
    storing a status other than the default the daemon stored (the web API does that)."""
    if state is None:
        return False
    if state.data.get(STATUS_SOURCE) == "user":
        return True
    return state.data.get(DEFAULT_WRITTEN) != str(state.status)


def effective_status(instigator: Instigator, state: InstigatorState | None) -> InstigatorStatus:
    """RUNNING or STOPPED: the stored choice once someone started or stopped it, else the default."""
    if state is not None and chosen_by_hand(state):
        return state.status
    return instigator.default


def fresh_state(instigator: Instigator, now: float) -> InstigatorState:
    """The state of an instigator nothing was stored for yet."""
    return InstigatorState(
        name=instigator.name,
        kind=instigator.kind,
        location=instigator.location,
        status=instigator.default,
        data={STATUS_SOURCE: "default", DEFAULT_WRITTEN: str(instigator.default)},
        updated_at=now,
    )


async def update_state(
    instance: Instance,
    instigator: Instigator,
    change: Callable[[InstigatorState], InstigatorState],
    *,
    now: float,
) -> InstigatorState:
    """Re-read the stored state (or a fresh one), apply `change`, store and return it.

    Reading just before writing keeps what others changed meanwhile (a stop,
    a cursor set by hand) unless `change` itself overrides it.
    """
    stored = await instance.get_instigator_state(instigator.id)
    state = stored if stored is not None else fresh_state(instigator, now)
    changed = change(state)
    if not chosen_by_hand(changed):
        # Nobody chose: what is stored follows the definition's default as it is now.
        default = instigator.default
        changed = with_data(
            msgspec.structs.replace(changed, status=default),
            **{STATUS_SOURCE: "default", DEFAULT_WRITTEN: str(default)},
        )
    return await instance.set_instigator_state(changed)


def with_data(state: InstigatorState, **data: Any) -> InstigatorState:
    """`state` with these `data` keys set (None removes a key)."""
    merged = {**state.data, **data}
    return msgspec.structs.replace(
        state, data={key: value for key, value in merged.items() if value is not None}
    )


async def set_status(
    instance: Instance, instigator: Instigator, status: InstigatorStatus, *, now: float
) -> InstigatorState:
    """Start or stop an instigator by hand: the choice overrides its default_status.

    A schedule started now fires only for cron times after `now`.
    """

    def change(state: InstigatorState) -> InstigatorState:
        running_since = now if status is InstigatorStatus.RUNNING else None
        running = effective_status(instigator, state) is InstigatorStatus.RUNNING
        if status is InstigatorStatus.RUNNING and running:
            # Already running: starting it again keeps when it started.
            running_since = state.data.get(RUNNING_SINCE, now)
        if instigator.kind is not InstigatorKind.SCHEDULE:
            running_since = None  # a sensor ticks by its interval, whenever it started
        changed = msgspec.structs.replace(state, status=status)
        return with_data(
            changed,
            **{STATUS_SOURCE: "user", DEFAULT_WRITTEN: None, RUNNING_SINCE: running_since},
        )

    return await update_state(instance, instigator, change, now=now)


async def set_cursor(
    instance: Instance, instigator: Instigator, cursor: str | None, *, now: float
) -> InstigatorState:
    """Replace a sensor's cursor (None deletes it); its next tick receives it."""
    return await update_state(
        instance,
        instigator,
        lambda state: msgspec.structs.replace(state, cursor=cursor),
        now=now,
    )

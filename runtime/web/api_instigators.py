"""`/api/schedules` and `/api/sensors`: what each location defines, with its status and ticks.

A schedule's or sensor's status follows the daemon's rules
(runtime.daemon.instigators): the choice stored by start/stop (here, or
`runtime schedule|sensor start|stop`) once someone made one, else the default
status its definition declares. Start and stop here go through the same
`set_status` as the command line. The daemon evaluates those that are running
and stores a tick per evaluation.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec

from runtime.daemon.instigators import find_instigator
from runtime.daemon.instigators import set_status as choose_status
from runtime.errors import UnknownDefinitionError
from runtime.instance.daemon_records import InstigatorKind, InstigatorStatus, instigator_id
from runtime.web.endpoints import Endpoint
from runtime.web.http import ApiError, json_response, read_json
from runtime.web.models import InstigatorBody, InstigatorStatusRequest, TickBody

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from runtime.instance.daemon_records import InstigatorState
    from runtime.instance.instance import Instance
    from runtime.web.context import WebContext

KINDS = ("schedule", "sensor")
# Ticks shown with each schedule or sensor.
RECENT_TICKS = 10


def defined_instigators(ctx: WebContext, kind: str) -> list[InstigatorBody]:
    """Every schedule (or sensor) of every loaded location, with its default status."""
    found: list[InstigatorBody] = []
    for location in ctx.workspace.locations.values():
        snapshot = location.snapshot
        if snapshot is None:
            continue
        if kind == "schedule":
            found += [
                InstigatorBody(
                    name=s.name,
                    location=location.name,
                    kind=kind,
                    job_name=s.job_name,
                    description=s.description,
                    status=s.default_status,
                    default_status=s.default_status,
                    cron_schedule=s.cron_schedule,
                    execution_timezone=s.execution_timezone,
                )
                for s in snapshot.schedules
            ]
        else:
            found += [
                InstigatorBody(
                    name=s.name,
                    location=location.name,
                    kind=kind,
                    job_name=s.job_name,
                    description=s.description,
                    status=s.default_status,
                    default_status=s.default_status,
                    minimum_interval_seconds=s.minimum_interval_seconds,
                )
                for s in snapshot.sensors
            ]
    return found


async def with_state(
    instance: Instance, body: InstigatorBody, state: InstigatorState | None
) -> InstigatorBody:
    """`body` with its status as the daemon sees it, its cursor (when stored) and its recent ticks."""
    from runtime.daemon.instigators import chosen_by_hand

    ticks = await instance.get_ticks(
        instigator_id(body.kind, body.location, body.name), limit=RECENT_TICKS
    )
    changes: dict[str, Any] = {
        "ticks": [
            TickBody(
                tick_id=t.tick_id,
                tick_time=t.tick_time,
                status=str(t.status),
                run_ids=t.run_ids,
                skip_reason=t.skip_reason,
                error=t.error,
            )
            for t in ticks
        ]
    }
    if state is not None:
        status = state.status if chosen_by_hand(state) else body.default_status
        changes |= {
            "status": str(status),
            "state_stored": True,
            "cursor": state.cursor,
            "last_tick_at": state.last_tick_at,
        }
    return msgspec.structs.replace(body, **changes)


async def instigator_bodies(ctx: WebContext, kind: str) -> list[InstigatorBody]:
    """Every schedule (or sensor) with its status and recent ticks."""
    instance = await ctx.open_instance()
    states = {
        (s.location, s.name): s
        for s in await instance.get_instigator_states(kind=InstigatorKind(kind))
    }
    return [
        await with_state(instance, body, states.get((body.location, body.name)))
        for body in defined_instigators(ctx, kind)
    ]


def instigator_endpoints(ctx: WebContext) -> list[Endpoint]:
    """List, start and stop for schedules and sensors."""
    endpoints: list[Endpoint] = []
    for kind in KINDS:
        endpoints += _endpoints_of(ctx, kind)
    return endpoints


def _endpoints_of(ctx: WebContext, kind: str) -> list[Endpoint]:
    plural = f"{kind}s"

    async def list_all(request: Request) -> Response:
        return json_response(await instigator_bodies(ctx, kind))

    async def set_status(request: Request) -> Response:
        body = await read_json(request, InstigatorStatusRequest, optional=True)
        target = _find(ctx, kind, request.path_params["name"], body.location)
        running = request.url.path.endswith("/start")
        instance = await ctx.open_instance()
        status = InstigatorStatus.RUNNING if running else InstigatorStatus.STOPPED
        instigator = find_instigator(ctx.workspace.locations, kind, target.name, target.location)
        stored = await choose_status(instance, instigator, status, now=time.time())
        return json_response(await with_state(instance, target, stored))

    list_all.__name__ = f"list_{plural}"
    start = _named(set_status, f"start_{kind}")
    stop = _named(set_status, f"stop_{kind}")
    return [
        Endpoint(
            "GET",
            f"/api/{plural}",
            list_all,
            f"Every {kind}, its status and recent ticks",
            response=list[InstigatorBody],
        ),
        Endpoint(
            "POST",
            f"/api/{plural}/{{name}}/start",
            start,
            f"Start a {kind}",
            body=InstigatorStatusRequest,
            body_optional=True,
            response=InstigatorBody,
            errors=(404, 409),
        ),
        Endpoint(
            "POST",
            f"/api/{plural}/{{name}}/stop",
            stop,
            f"Stop a {kind}",
            body=InstigatorStatusRequest,
            body_optional=True,
            response=InstigatorBody,
            errors=(404, 409),
        ),
    ]


def _named(handler: Any, name: str) -> Any:
    async def named(request: Request) -> Response:
        response: Response = await handler(request)
        return response

    named.__name__ = name
    return named


def _find(ctx: WebContext, kind: str, name: str, location: str | None) -> InstigatorBody:
    if location is not None:
        ctx.location(location)
    matches = [
        body
        for body in defined_instigators(ctx, kind)
        if body.name == name and (location is None or body.location == location)
    ]
    if not matches:
        known = ", ".join(sorted({b.name for b in defined_instigators(ctx, kind)})) or "none"
        raise UnknownDefinitionError(
            f"No {kind} named {name!r} in the workspace; the {kind}s are: {known}."
        )
    if len(matches) > 1:
        where = ", ".join(b.location for b in matches)
        raise ApiError(
            409,
            "UnknownDefinitionError",
            f'{kind.capitalize()} {name!r} is defined in several locations ({where}); name one as "location" in the body.',
        )
    return matches[0]

"""`/api/schedules` and `/api/sensors`: what each location defines, with its status and ticks.

Until the instance stores schedule and sensor state, each is shown with the
default status its definition declares (`state_stored` is false) and start/stop
answer 501.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.errors import UnknownDefinitionError
from runtime.web.endpoints import Endpoint
from runtime.web.http import ApiError, json_response, read_json
from runtime.web.models import InstigatorBody, InstigatorStatusRequest

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from runtime.web.context import WebContext

KINDS = ("schedule", "sensor")


def instigator_bodies(ctx: WebContext, kind: str) -> list[InstigatorBody]:
    """Every schedule (or sensor) of every loaded location."""
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


def instigator_endpoints(ctx: WebContext) -> list[Endpoint]:
    """List, start and stop for schedules and sensors."""
    endpoints: list[Endpoint] = []
    for kind in KINDS:
        endpoints += _endpoints_of(ctx, kind)
    return endpoints


def _endpoints_of(ctx: WebContext, kind: str) -> list[Endpoint]:
    plural = f"{kind}s"

    async def list_all(request: Request) -> Response:
        return json_response(instigator_bodies(ctx, kind))

    async def set_status(request: Request) -> Response:
        body = await read_json(request, InstigatorStatusRequest, optional=True)
        target = _find(ctx, kind, request.path_params["name"], body.location)
        action = request.url.path.rsplit("/", 1)[1]
        raise ApiError(
            501,
            "NotImplemented",
            f"Cannot {action} {kind} {target.name!r}: this instance does not store "
            f"{kind} state yet; it runs with its default status ({target.default_status}).",
        )

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
            errors=(404, 501),
        ),
        Endpoint(
            "POST",
            f"/api/{plural}/{{name}}/stop",
            stop,
            f"Stop a {kind}",
            body=InstigatorStatusRequest,
            body_optional=True,
            response=InstigatorBody,
            errors=(404, 501),
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
        for body in instigator_bodies(ctx, kind)
        if body.name == name and (location is None or body.location == location)
    ]
    if not matches:
        known = ", ".join(sorted({b.name for b in instigator_bodies(ctx, kind)})) or "none"
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

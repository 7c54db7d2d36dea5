"""`/api/locations`: the workspace's code locations, reloading them, their jobs, and a live
stream of their status changes; `/api/assets`: every asset with its latest materialization."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from runtime.errors import UnknownJobError
from runtime.web.convert import job_body, location_body
from runtime.web.endpoints import Endpoint
from runtime.web.http import ApiError, json_response
from runtime.web.models import AssetBody, JobBody, LocationBody, LocationChange
from runtime.web.sse import EventStreamResponse, Message

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from starlette.requests import Request
    from starlette.responses import Response

    from runtime.web.context import WebContext


def location_endpoints(ctx: WebContext) -> list[Endpoint]:
    """The endpoints of locations, jobs and assets over `ctx`'s workspace."""
    workspace = ctx.workspace
    encode = msgspec.json.encode

    async def list_locations(request: Request) -> Response:
        return json_response([location_body(loc) for loc in workspace.locations.values()])

    async def get_location(request: Request) -> Response:
        return json_response(location_body(ctx.location(request.path_params["name"])))

    async def reload_location(request: Request) -> Response:
        location = ctx.location(request.path_params["name"])
        await workspace.reload(location.name)
        return json_response(location_body(location))

    async def get_job(request: Request) -> Response:
        location = ctx.location(request.path_params["name"])
        name = request.path_params["job"]
        snapshot = location.snapshot
        if snapshot is None:
            detail = f": {location.error.first_line}" if location.error is not None else ""
            raise ApiError(
                409,
                "CodeLocationError",
                f"Location {location.name!r} is {location.status} and has no jobs to show{detail}",
            )
        for job in snapshot.jobs:
            if job.name == name:
                return json_response(job_body(location.name, job))
        known = ", ".join(job.name for job in snapshot.jobs) or "none"
        raise UnknownJobError(
            f"No job named {name!r} in location {location.name!r}; its jobs are: {known}."
        )

    async def list_assets(request: Request) -> Response:
        latest = await ctx.materializations.latest(await ctx.open_instance())
        assets = [
            AssetBody(
                key=asset.key,
                location=location.name,
                deps=asset.deps,
                group_name=asset.group_name,
                description=asset.description,
                tags=asset.tags,
                job_names=asset.job_names,
                latest_materialization=latest.get(asset.key),
            )
            for location in workspace.locations.values()
            if location.snapshot is not None
            for asset in location.snapshot.assets
        ]
        return json_response(assets)

    async def watch_locations(request: Request) -> Response:
        async def messages() -> AsyncGenerator[Message, None]:
            # Subscribe before reading the list, so no change falls between them.
            async with workspace.watch() as watcher:
                rows = [location_body(loc) for loc in workspace.locations.values()]
                yield Message(encode(rows), event="locations")
                async for change in watcher:
                    location = workspace.locations[change.location_name]
                    body = LocationChange(
                        location=location_body(location), old_status=change.old_status
                    )
                    yield Message(encode(body), event="change")

        return EventStreamResponse(messages(), ctx.closing)

    return [
        Endpoint(
            "GET",
            "/api/locations",
            list_locations,
            "Every code location",
            response=list[LocationBody],
        ),
        Endpoint(
            "GET",
            "/api/locations/{name}",
            get_location,
            "One code location",
            response=LocationBody,
            errors=(404,),
        ),
        Endpoint(
            "POST",
            "/api/locations/{name}/reload",
            reload_location,
            "Reload a location; returns once it loaded or failed",
            response=LocationBody,
            errors=(404, 409),
        ),
        Endpoint(
            "GET",
            "/api/locations/{name}/jobs/{job}",
            get_job,
            "A job's steps and the edges between them",
            response=JobBody,
            errors=(404, 409),
        ),
        Endpoint(
            "GET",
            "/api/assets",
            list_assets,
            "Every asset with its deps and latest materialization",
            response=list[AssetBody],
        ),
        Endpoint(
            "GET",
            "/api/watch/locations",
            watch_locations,
            "Server-Sent Events: `locations` (the list) first, then a `change` per status change",
            stream=True,
        ),
    ]

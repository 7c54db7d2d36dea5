"""`/api/runs`: launch, list, read, cancel and re-execute runs, and follow a run's events live."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from runtime.errors import RunNotFoundError
from runtime.instance.records import RunStatus
from runtime.protocol.messages import RUN_END_EVENTS
from runtime.protocol.run_result import fold_events
from runtime.web.convert import event_body, run_body, run_detail_body
from runtime.web.endpoints import Endpoint, Query
from runtime.web.http import ApiError, json_response, read_json, runtime_error_response
from runtime.web.models import (
    LaunchRequest,
    ReexecuteRequest,
    RunBody,
    RunDetailBody,
    RunIdReply,
    RunStatusReply,
)
from runtime.web.run_config import parse_run_config
from runtime.web.sse import EventStreamResponse, Message

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from starlette.requests import Request
    from starlette.responses import Response

    from runtime.instance.instance import Instance
    from runtime.runs.handle import RunHandle
    from runtime.web.context import WebContext

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
# Longer than any id the runtime makes (uuid4: 36); a longer one names no run.
_MAX_RUN_ID = 128

_LIST_QUERY = (
    Query("status", "Only runs in these statuses (repeat, or separate with commas)", repeated=True),
    Query("job", "Only runs of this job"),
    Query("location", "Only runs of this location"),
    Query("tag", "Only runs with this tag, as key=value (repeat for several)", repeated=True),
    Query(
        "limit",
        f"At most this many runs (default {DEFAULT_LIMIT}, at most {MAX_LIMIT})",
        type="integer",
    ),
    Query("cursor", "The run id of the last run of the previous page"),
)


def run_endpoints(ctx: WebContext) -> list[Endpoint]:
    """The endpoints of runs over `ctx`'s workspace."""
    workspace = ctx.workspace

    async def launch_run(request: Request) -> Response:
        body = await read_json(request, LaunchRequest)
        if body.location is not None:
            ctx.location(body.location)
        config: dict[str, Any] | None
        if isinstance(body.run_config, str):
            config = await parse_run_config(body.run_config)
        else:
            config = body.run_config
        run = await workspace.launch_run(
            job=body.job,
            location=body.location,
            run_config=config,
            tags=body.tags,
            step_selection=body.step_selection,
        )
        return json_response(RunIdReply(run_id=run.run_id))

    async def list_runs(request: Request) -> Response:
        filters = _run_filters(request)
        limit = filters.pop("limit")
        cursor = filters.pop("cursor")
        try:
            runs = await workspace.list_runs(**filters, limit=limit, cursor=cursor)
        except RunNotFoundError:
            raise ApiError(
                400, "BadRequest", f"cursor {cursor!r} is not the id of a stored run."
            ) from None
        total = await workspace.count_runs(**filters)
        headers = {"x-total-count": str(total)}
        if len(runs) == limit:
            headers["x-next-cursor"] = runs[-1].run_id
        return json_response([run_body(record) for record in runs], headers=headers)

    async def get_run(request: Request) -> Response:
        handle = await _handle(request)
        record = await handle.refresh()
        instance = await ctx.open_instance()
        events = await instance.storage.get_events(record.run_id)
        result = fold_events(record.run_id, events, status=str(record.status))
        return json_response(run_detail_body(record, result))

    async def cancel_run(request: Request) -> Response:
        handle = await _handle(request)
        try:
            await handle.cancel()
        except RunNotFoundError as exc:
            # The run exists; another host drives it.
            return runtime_error_response(exc, status=409)
        record = await handle.refresh()
        return json_response(RunStatusReply(run_id=record.run_id, status=str(record.status)))

    async def reexecute_run(request: Request) -> Response:
        body = await read_json(request, ReexecuteRequest, optional=True)
        run_id = _run_id(request)
        run = await workspace.reexecute(run_id, from_failure=body.from_failure)
        return json_response(RunIdReply(run_id=run.run_id))

    async def run_events(request: Request) -> Response:
        after = _after_sequence(request)
        handle = await _handle(request)
        instance = await ctx.open_instance()
        return EventStreamResponse(_follow(handle, instance, after), ctx.closing)

    async def _handle(request: Request) -> RunHandle:
        return await workspace.get_run(_run_id(request))

    return [
        Endpoint(
            "POST",
            "/api/runs",
            launch_run,
            "Launch a run; `run_config` is a mapping or YAML text",
            body=LaunchRequest,
            response=RunIdReply,
            errors=(404, 409, 413, 415, 422),
        ),
        Endpoint(
            "GET",
            "/api/runs",
            list_runs,
            "Stored runs, newest first",
            response=list[RunBody],
            query=_LIST_QUERY,
            errors=(404,),
            response_headers=(
                ("X-Total-Count", "How many runs match the filters"),
                ("X-Next-Cursor", "The cursor of the next page, when this one is full"),
            ),
        ),
        Endpoint(
            "GET",
            "/api/runs/{run_id}",
            get_run,
            "A run with its config and the outcome of each step",
            response=RunDetailBody,
            errors=(404,),
        ),
        Endpoint(
            "POST",
            "/api/runs/{run_id}/cancel",
            cancel_run,
            "Ask a run to stop (returns at once)",
            response=RunStatusReply,
            errors=(404, 409),
        ),
        Endpoint(
            "POST",
            "/api/runs/{run_id}/reexecute",
            reexecute_run,
            "Launch a run's job again (by default only the steps that did not succeed)",
            body=ReexecuteRequest,
            body_optional=True,
            response=RunIdReply,
            errors=(404, 409, 422),
        ),
        Endpoint(
            "GET",
            "/api/runs/{run_id}/events",
            run_events,
            "Server-Sent Events: the run's events, replayed then followed, ending after the last",
            query=(
                Query("after", "Resume after this sequence (as Last-Event-ID)", type="integer"),
            ),
            stream=True,
            errors=(404,),
        ),
    ]


async def _follow(
    handle: RunHandle, instance: Instance, after: int
) -> AsyncGenerator[Message, None]:
    encode = msgspec.json.encode
    if after > 0:
        # A client resuming after the run's last event: nothing more will come
        # (a handle still held by its driver would otherwise wait for more).
        record = await handle.refresh()
        if record.is_finished and await instance.storage.last_sequence(record.run_id) <= after:
            yield Message(b"{}", event="end")
            return
    async for event in handle.events(after_sequence=after):
        yield Message(encode(event_body(event)), id=event.sequence)
        if event.event_type in RUN_END_EVENTS:
            break
    yield Message(b"{}", event="end")


def _run_id(request: Request) -> str:
    run_id: str = request.path_params["run_id"]
    if len(run_id) > _MAX_RUN_ID:
        raise ApiError(
            404, "RunNotFoundError", f"No run {run_id[:_MAX_RUN_ID]}...: the id is too long."
        )
    return run_id


def _after_sequence(request: Request) -> int:
    text = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    if not text.isdigit() or len(text) > 18:
        raise ApiError(
            400,
            "BadRequest",
            f"Last-Event-ID (or ?after=) must be an event sequence number, not {text!r}.",
        )
    return int(text)


_KNOWN = {"status", "job", "location", "tag", "limit", "cursor"}


def _run_filters(request: Request) -> dict[str, Any]:
    params = request.query_params
    unknown = sorted(set(params) - _KNOWN)
    if unknown:
        raise ApiError(
            400,
            "BadRequest",
            f"Unknown query parameter {unknown[0]!r}; /api/runs takes: {', '.join(sorted(_KNOWN))}.",
        )
    statuses = [
        s.strip().upper()
        for value in params.getlist("status")
        for s in value.split(",")
        if s.strip()
    ]
    for status in statuses:
        if status not in RunStatus.__members__:
            raise ApiError(
                400,
                "BadRequest",
                f"Unknown run status {status!r}; the statuses are: {', '.join(RunStatus)}.",
            )
    tags: dict[str, str] = {}
    for value in params.getlist("tag"):
        key, sep, tag_value = value.partition("=")
        if not sep or not key:
            raise ApiError(400, "BadRequest", f"tag={value!r} is not of the form key=value.")
        tags[key] = tag_value
    limit_text = params.get("limit", str(DEFAULT_LIMIT))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise ApiError(
            400,
            "BadRequest",
            f"limit must be a whole number from 1 to {MAX_LIMIT}, not {limit_text!r}.",
        )
    cursor = params.get("cursor") or None
    if cursor is not None and len(cursor) > _MAX_RUN_ID:
        raise ApiError(400, "BadRequest", "cursor is too long to be a run id.")
    return {
        "status": statuses or None,
        "job": params.get("job") or None,
        "location": params.get("location") or None,
        "tags": tags or None,
        "limit": int(limit_text),
        "cursor": cursor,
    }

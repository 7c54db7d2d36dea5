"""The OpenAPI 3.1 description of the API, generated from the endpoint table and the bodies'
msgspec schemas (so it cannot drift from what the handlers accept and send)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from runtime.version import __version__
from runtime.web.models import ErrorReply

if TYPE_CHECKING:
    from collections.abc import Sequence

    from runtime.web.endpoints import Endpoint

_REF = "#/components/schemas/{name}"
_REASONS = {
    400: "Malformed request (bad JSON, a bad query parameter)",
    401: "Missing or wrong token",
    404: "No such location, job, run, schedule or sensor",
    409: "The location is in error, or the run is not this server's to change",
    413: "Body too large",
    415: "Body not sent as application/json",
    422: "Well-formed but invalid (bad run config, unknown step, wrong field types)",
    501: "Not available on this instance",
}


def openapi_document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """The whole description as a JSON-ready dict."""
    types: list[Any] = [ErrorReply]
    for endpoint in endpoints:
        if endpoint.body is not None:
            types.append(endpoint.body)
        if endpoint.response is not None:
            types.append(endpoint.response)
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    schema_of = {id(t): s for t, s in zip(types, schemas, strict=True)}
    error_schema = schema_of[id(ErrorReply)]

    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "operationId": endpoint.handler.__name__.strip("_"),
        }
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in endpoint.path_params
        ]
        for query in endpoint.query:
            schema: dict[str, Any] = {"type": query.type}
            if query.repeated:
                schema = {"type": "array", "items": schema}
            parameters.append(
                {
                    "name": query.name,
                    "in": "query",
                    "required": False,
                    "description": query.description,
                    "schema": schema,
                    **({"explode": True} if query.repeated else {}),
                }
            )
        if endpoint.stream:
            parameters.append(
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "description": "Resume after this event sequence.",
                    "schema": {"type": "integer"},
                }
            )
        if parameters:
            operation["parameters"] = parameters
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": not endpoint.body_optional,
                "content": {"application/json": {"schema": schema_of[id(endpoint.body)]}},
            }
        responses: dict[str, Any] = {}
        if endpoint.stream:
            responses["200"] = {
                "description": "Server-Sent Events: `data:` lines of JSON, `id:` the event sequence.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        else:
            ok: dict[str, Any] = {"description": "OK"}
            if endpoint.response is not None:
                ok["content"] = {"application/json": {"schema": schema_of[id(endpoint.response)]}}
            if endpoint.response_headers:
                ok["headers"] = {
                    name: {"description": text, "schema": {"type": "string"}}
                    for name, text in endpoint.response_headers
                }
            responses["200"] = ok
        for status in sorted({*endpoint.errors, 400, 401}):
            responses[str(status)] = {
                "description": _REASONS.get(status, "Error"),
                "content": {"application/json": {"schema": error_schema}},
            }
        operation["responses"] = responses
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "runtime web API",
            "version": __version__,
            "description": "Locations, jobs, assets, runs and their live events, schedules and sensors.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
    }

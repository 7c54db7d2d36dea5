"""Request and response plumbing: JSON bodies in and out, and every error as a 4xx/5xx JSON reply.

A user's mistake (an unknown job, bad run config, malformed JSON, a body too
large) gets a status in the 4xx range and a JSON body naming the problem, with
the error's class as the Python API raises it; never a traceback.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response

from runtime.errors import (
    CodeLocationError,
    ConfigError,
    DefinitionError,
    RunNotFoundError,
    RuntimeFrameworkError,
    StepSelectionError,
    UnknownDefinitionError,
    UnknownJobError,
)
from runtime.web.models import ErrorBody, ErrorReply

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request

logger = logging.getLogger("runtime.web")

# No API body comes near this: a run config of a few thousand keys is ~100 KiB.
MAX_BODY_BYTES = 1024 * 1024

T = TypeVar("T")

_ENCODER = msgspec.json.Encoder()


class ApiError(Exception):
    """An HTTP error with a JSON body: `status`, an error `type` and a sentence saying what is wrong."""

    def __init__(
        self, status: int, type: str, message: str, *, detail: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.detail = detail


def json_response(
    value: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """`value` (Structs, lists, dicts) encoded by msgspec."""
    return Response(
        _ENCODER.encode(value), status_code=status, media_type="application/json", headers=headers
    )


def error_response(
    status: int, type: str, message: str, detail: dict[str, Any] | None = None
) -> Response:
    body = ErrorReply(error=ErrorBody(type=type, message=message, detail=detail))
    return json_response(body, status=status)


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request's body; ApiError 413 past `limit` bytes, whether or not Content-Length says so."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "BadRequest", f"Content-Length {declared!r} is not a number.")
        if int(declared) > limit:
            raise ApiError(
                413,
                "PayloadTooLarge",
                f"The body is {declared} bytes; at most {limit} are accepted.",
            )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(
                413, "PayloadTooLarge", f"The body is over {limit} bytes, the most accepted."
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, type: type[T], *, optional: bool = False) -> T:
    """The body decoded as JSON into `type`.

    ApiError 415 unless the body is JSON, 400 for JSON that does not parse,
    422 (with the `$.path`) for JSON of the wrong shape. An empty body is `type()`
    when `optional`.
    """
    body = await read_body(request)
    if not body.strip():
        if optional:
            return type()
        raise ApiError(400, "BadRequest", "The request needs a JSON body.")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # Browsers send cross-site form posts as text/plain or form data without a
    # preflight; requiring JSON keeps other sites from launching runs.
    if media != "application/json":
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"The body must be sent as application/json, not {media or 'no content type'!r}.",
        )
    try:
        return msgspec.json.decode(body, type=type)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "ValidationError", f"The body is not valid: {exc}.") from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "BadRequest", f"The body is not valid JSON: {exc}.") from None


def exception_status(exc: RuntimeFrameworkError) -> int:
    """The HTTP status a runtime error maps to."""
    if isinstance(exc, UnknownJobError | UnknownDefinitionError | RunNotFoundError):
        return 404
    if isinstance(exc, ConfigError | StepSelectionError | DefinitionError):
        return 422
    if isinstance(exc, CodeLocationError):
        return 409
    return 400


def runtime_error_response(exc: RuntimeFrameworkError, *, status: int | None = None) -> Response:
    """A runtime error as the API answers it: its class name and message, and a location's error."""
    detail: dict[str, Any] | None = None
    if isinstance(exc, CodeLocationError) and exc.error is not None:
        detail = {"location_error": msgspec.to_builtins(exc.error)}
    return error_response(status or exception_status(exc), type(exc).__name__, str(exc), detail)


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.type, exc.message, exc.detail)


async def handle_runtime_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RuntimeFrameworkError)
    return runtime_error_response(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        names = {404: "NotFound", 405: "MethodNotAllowed"}
        message = {
            404: f"No API endpoint at {request.url.path}; /api/openapi.json lists them.",
            405: f"{request.method} is not allowed on {request.url.path}.",
        }.get(exc.status_code, str(exc.detail))
        return error_response(exc.status_code, names.get(exc.status_code, "HTTPError"), message)
    return PlainTextResponse(f"{exc.status_code}: {exc.detail}\n", status_code=exc.status_code)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    # A bug of ours: logged with its traceback here, one sentence for the client.
    logger.exception("%s %s failed", request.method, request.url.path)
    return error_response(
        500,
        "InternalServerError",
        f"The server failed on {request.method} {request.url.path}: {type(exc).__name__}.",
    )


EXCEPTION_HANDLERS = {
    ApiError: handle_api_error,
    RuntimeFrameworkError: handle_runtime_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}

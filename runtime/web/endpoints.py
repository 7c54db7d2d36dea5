"""Endpoint: one API route with what it takes and returns, the one table both routing and
the OpenAPI description are built from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request
    from starlette.responses import Response


@dataclass(frozen=True, slots=True)
class Query:
    """A query parameter: its name, a JSON-schema type, whether it repeats, what it means."""

    name: str
    description: str
    type: str = "string"
    repeated: bool = False


@dataclass(frozen=True, slots=True)
class Endpoint:
    """`method path` answered by `handler`.

    `body` is the request Struct (None: no body), `response` the type of a 200
    reply (a Struct or `list[Struct]`; None when `stream` sends Server-Sent
    Events), `errors` the statuses it may answer with besides.
    """

    method: str
    path: str
    handler: Callable[[Request], Awaitable[Response]]
    summary: str
    body: type[Any] | None = None
    body_optional: bool = False
    response: Any = None
    query: tuple[Query, ...] = ()
    stream: bool = False
    errors: tuple[int, ...] = ()
    response_headers: tuple[tuple[str, str], ...] = ()

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

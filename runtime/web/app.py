"""WebApp: the ASGI application (UI and HTTP API) over one Workspace.

    app = create_app(workspace, auth_token="...")
    async with serve(app, "127.0.0.1", 3000) as server:   # or mount `app` in your own ASGI server
        ...

The app holds no tasks of its own: requests run in the server's tasks and read
the workspace. Event streams (a run's events, location changes) are the only
long requests; `close_streams()` ends them all, and `serve` calls it before
asking uvicorn to stop, so shutting down never waits for a run to finish.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.routing import Route

from runtime.web.api_instigators import instigator_endpoints
from runtime.web.api_locations import location_endpoints
from runtime.web.api_runs import run_endpoints
from runtime.web.context import WebContext
from runtime.web.guard import Guard
from runtime.web.http import EXCEPTION_HANDLERS, json_response
from runtime.web.openapi import openapi_document
from runtime.web.pages import PAGE_PATHS, StaticFiles

if TYPE_CHECKING:
    from collections.abc import Collection

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import Receive, Scope, Send

    from runtime.host.workspace import Workspace
    from runtime.web.endpoints import Endpoint


class WebApp:
    """An ASGI app serving the UI and `/api/...` for `workspace` (see `create_app`)."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        auth_token: str | None = None,
        allowed_hosts: Collection[str] | None = None,
    ) -> None:
        self.workspace = workspace
        self.context = WebContext(workspace)
        self.endpoints: list[Endpoint] = [
            *location_endpoints(self.context),
            *run_endpoints(self.context),
            *instigator_endpoints(self.context),
        ]
        document = openapi_document(self.endpoints)

        async def openapi(request: Request) -> Response:
            return json_response(document)

        static = StaticFiles()
        routes = [Route(e.path, e.handler, methods=[e.method]) for e in self.endpoints]
        routes.append(Route("/api/openapi.json", openapi, methods=["GET"]))
        routes.append(Route("/static/{file}", static.file, methods=["GET"]))
        routes += [Route(path, static.page, methods=["GET"]) for path in PAGE_PATHS]
        self.starlette = Starlette(routes=routes, exception_handlers=dict(EXCEPTION_HANDLERS))
        self._asgi = Guard(self.starlette, token=auth_token, allowed_hosts=allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)

    @property
    def streams_closed(self) -> bool:
        return self.context.closing.is_set()

    def close_streams(self) -> None:
        """End every open event stream now, and any opened later at once (call before stopping
        the server that serves this app). Safe to call twice."""
        self.context.closing.set()


def create_app(
    workspace: Workspace,
    *,
    auth_token: str | None = None,
    allowed_hosts: Collection[str] | None = None,
) -> WebApp:
    """The UI and HTTP API over `workspace` (entered or not yet: requests need it open).

    With `auth_token`, every page and API call needs it (`Authorization: Bearer`,
    or the cookie `/?token=...` sets). `allowed_hosts` limits the Host headers
    answered (a loopback server should allow only its own names).
    """
    return WebApp(workspace, auth_token=auth_token, allowed_hosts=allowed_hosts)

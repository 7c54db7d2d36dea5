"""The web server: the UI and HTTP API over a Workspace, as an ASGI app.

    from runtime.web import create_app, serve

    async with Workspace.from_yaml("workspace.yaml") as ws:
        app = create_app(ws)                       # an ASGI app: mount it in your own server,
        async with serve(app, "127.0.0.1", 3000):  # or serve it with uvicorn in this loop
            await anyio.sleep_forever()

Needs the `web` extra (`pip install 'runtime[web]'`: Starlette and uvicorn);
`import runtime` never imports this package.
"""

from __future__ import annotations

from runtime.web.app import WebApp, create_app
from runtime.web.server import ServingAt, is_loopback, serve

__all__ = ("ServingAt", "WebApp", "create_app", "is_loopback", "serve")

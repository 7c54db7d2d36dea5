"""A real web server over a real workspace, for the web tests: `async with web_server(tmp) as srv`."""

from __future__ import annotations

import json
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from runtime.host.workspace import Workspace
from runtime.instance.instance import Instance
from runtime.web import WebApp, create_app, serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Collection

PIPELINE = Path(__file__).with_name("web_pipeline.py")
LOCATION = "web_pipeline"
BROKEN_SOURCE = """
from runtime import Definitions

def load_orders():
    raise ZeroDivisionError("the orders table is empty")

load_orders()
defs = Definitions()
"""


@dataclass
class Served:
    workspace: Workspace
    app: WebApp
    url: str
    client: httpx.AsyncClient
    control: Path

    async def launch(self, job: str, **body: Any) -> str:
        reply = await self.client.post("/api/runs", json={"job": job, **body})
        assert reply.status_code == 200, reply.text
        run_id: str = reply.json()["run_id"]
        return run_id

    async def wait_for_status(
        self, run_id: str, statuses: Collection[str], limit: float = 20.0
    ) -> dict[str, Any]:
        """The run once its stored status is one of `statuses`."""
        with anyio.fail_after(limit):
            while True:
                run: dict[str, Any] = (await self.client.get(f"/api/runs/{run_id}")).json()
                if run["status"] in statuses:
                    return run
                await anyio.sleep(0.05)


@asynccontextmanager
async def web_server(
    tmp_path: Path,
    *,
    broken: bool = False,
    auth_token: str | None = None,
    allowed_hosts: Collection[str] | None = None,
) -> AsyncIterator[Served]:
    """A workspace of web_pipeline.py (and a location that fails to import), served on 127.0.0.1:0."""
    control = tmp_path / "control"
    control.mkdir(exist_ok=True)
    os.environ["WEB_TEST_DIR"] = str(control)
    files = [PIPELINE]
    if broken:
        path = tmp_path / "broken_orders.py"
        path.write_text(BROKEN_SOURCE)
        files.append(path)
    async with Workspace.from_targets(
        python_files=files,
        instance=Instance.ephemeral(),
        restart=False,
        heartbeat_timeout=10.0,
        stop_grace=2.0,
    ) as ws:
        assert ws.locations[LOCATION].status == "loaded", ws.locations[LOCATION].error
        app = create_app(ws, auth_token=auth_token, allowed_hosts=allowed_hosts)
        async with serve(app, "127.0.0.1", 0) as at:
            headers = {"authorization": f"Bearer {auth_token}"} if auth_token else {}
            async with httpx.AsyncClient(base_url=at.url, headers=headers, timeout=20.0) as client:
                yield Served(workspace=ws, app=app, url=at.url, client=client, control=control)


async def sse_events(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every message of an SSE stream until the server ends it: {"id", "event", "data"}."""
    messages: list[dict[str, Any]] = []
    async with client.stream("GET", path, headers=headers or {}) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        current: dict[str, Any] = {}
        async for line in response.aiter_lines():
            if not line:
                if current:
                    messages.append(current)
                current = {}
            elif line.startswith(":"):
                continue
            else:
                field, _, value = line.partition(": ")
                current[field] = json.loads(value) if field == "data" else value
    return messages


async def wait_for_file(path: Path, limit: float = 20.0) -> None:
    with anyio.fail_after(limit):
        while not path.exists():
            await anyio.sleep(0.02)

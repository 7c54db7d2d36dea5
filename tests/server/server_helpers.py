"""Helpers of the code-server tests: the example location, and a run's events collected."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.protocol import messages as m
    from tests.helpers_server import ServerProcess

HELLO = str(Path(__file__).resolve().parents[2] / "examples" / "hello_world" / "definitions.py")


async def collect(server: ServerProcess, request: m.ExecuteRunRequest) -> list[m.RunEvent]:
    """Execute a run on the server and return every event it streamed."""
    async with server.client() as client:
        return [event async for event in client.execute_run(request)]

"""The default launcher: a run executes in its location's own code server, where its code is loaded."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from runtime.runs.launcher import ServerConnection, register_launcher

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime.process.options import CodeServerOptions
    from runtime.workspace.location import CodeLocation


class InLocationLauncher:
    """Runs execute in the location's current code server (`in_process` in instance.yaml)."""

    def __init__(self, options: CodeServerOptions) -> None:
        self._options = options

    def check(self, location: CodeLocation) -> None:
        return None

    @asynccontextmanager
    async def connect(self, location: CodeLocation) -> AsyncIterator[ServerConnection]:
        # The lease keeps this generation of the server alive through a reload:
        # the run finishes in the old process while new runs go to the new one.
        async with location.lease() as server:
            yield ServerConnection(
                server.client,
                server.process,
                f"the code server of location {location.name!r} (pid {server.pid})",
            )


register_launcher("in_process", InLocationLauncher)

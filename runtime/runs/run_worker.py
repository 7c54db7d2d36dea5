"""Run workers: a fresh code-server process for one run, for isolation.

The worker is the location's own code server started anew under the same
interpreter and target, through the same start-up path as the location's
(runtime.process.loaded); it loads the user code, runs the one run, and is
stopped (terminate, grace, kill) when the run's driver is done with it.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from runtime.errors import CodeLocationError
from runtime.process.code_server import CodeServerStartError
from runtime.process.loaded import open_loaded_code_server
from runtime.runs.launcher import ServerConnection, register_launcher

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime.process.options import CodeServerOptions
    from runtime.workspace.location import CodeLocation


class RunWorkerLauncher:
    """Each run gets a code server process of its own (`run_worker` in instance.yaml)."""

    def __init__(self, options: CodeServerOptions) -> None:
        self._options = options

    def check(self, location: CodeLocation) -> None:
        if not location.is_managed:
            raise CodeLocationError(
                f"Location {location.name!r} is a grpc_server: its code runs elsewhere, so the "
                "workspace cannot start a run worker for it; launch it with launcher='in_process'."
            )

    @asynccontextmanager
    async def connect(self, location: CodeLocation) -> AsyncIterator[ServerConnection]:
        self.check(location)
        sender = f"run-worker host pid {os.getpid()}"
        try:
            async with open_loaded_code_server(
                location.spec.code_server_target(), self._options, heartbeat_sender=sender
            ) as worker:
                yield ServerConnection(
                    worker.client,
                    worker.process,
                    f"the run worker of location {location.name!r} (pid {worker.process.pid})",
                )
        except CodeServerStartError as exc:
            failure = exc.failure
            raise CodeLocationError(
                f"The run worker of location {location.name!r} could not load its code: "
                f"{failure.type}: {failure.message}"
            ) from None


register_launcher("run_worker", RunWorkerLauncher)

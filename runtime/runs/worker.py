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

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime.process.loaded import LoadedCodeServer
    from runtime.process.options import CodeServerOptions
    from runtime.workspace.spec import LocationSpec


@asynccontextmanager
async def open_run_worker(
    spec: LocationSpec, options: CodeServerOptions
) -> AsyncIterator[LoadedCodeServer]:
    """Start a code server for one run; yield it once its code is loaded.

    Raises CodeLocationError when the worker cannot start or its code fails to load.
    """
    if not spec.is_managed:
        raise CodeLocationError(
            f"Location {spec.name!r} is a grpc_server: the workspace cannot start run workers for it."
        )
    try:
        async with open_loaded_code_server(
            spec.code_server_target(),
            options,
            heartbeat_sender=f"run-worker host pid {os.getpid()}",
        ) as loaded:
            yield loaded
    except CodeServerStartError as exc:
        failure = exc.failure
        raise CodeLocationError(
            f"The run worker of location {spec.name!r} could not load its code: "
            f"{failure.type}: {failure.message}"
        ) from None

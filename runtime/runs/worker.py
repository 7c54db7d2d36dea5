"""Run workers: a fresh code-server process for one run, for isolation.

The worker is the location's own code server started anew under the same
interpreter and target; it loads the user code, runs the one run, and is
stopped (terminate, grace, kill) when the run's driver is done with it.
"""

from __future__ import annotations

import functools
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from runtime.errors import CodeLocationError
from runtime.protocol.client import CodeLocationClient
from runtime.workspace.process import CodeServerProcess, run_code_server

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime.workspace.options import SupervisorOptions
    from runtime.workspace.spec import LocationSpec


@asynccontextmanager
async def open_run_worker(
    spec: LocationSpec, options: SupervisorOptions
) -> AsyncIterator[tuple[CodeLocationClient, CodeServerProcess]]:
    """Start a code server for one run; yield its client once its code is loaded.

    Raises CodeLocationError when the worker cannot start or its code fails to load.
    """
    if not spec.is_managed:
        raise CodeLocationError(
            f"Location {spec.name!r} is a grpc_server: the workspace cannot start run workers for it."
        )
    try:
        async with _worker_process(spec, options) as opened:
            yield opened
    except BaseExceptionGroup as group:
        # The worker's task group wraps what went wrong; callers want the error itself.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


@asynccontextmanager
async def _worker_process(
    spec: LocationSpec, options: SupervisorOptions
) -> AsyncIterator[tuple[CodeLocationClient, CodeServerProcess]]:
    async with anyio.create_task_group() as tg:
        deadline = anyio.current_time() + options.startup_timeout
        process: CodeServerProcess = await tg.start(
            functools.partial(run_code_server, spec, options, deadline=deadline)
        )
        try:
            async with CodeLocationClient(socket=process.socket_path) as client:
                tg.start_soon(_heartbeat, client, options.heartbeat_interval)
                # The ready line comes before the (lazy) import: the start-up
                # deadline must cover loading the code too.
                try:
                    with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                        snapshot = await client.snapshot()
                except TimeoutError:
                    raise CodeLocationError(
                        f"The run worker of location {spec.name!r} did not load its code within "
                        f"{options.startup_timeout:g} s."
                    ) from None
                if snapshot.error is not None:
                    raise CodeLocationError(
                        f"The run worker of location {spec.name!r} could not load its code: "
                        f"{snapshot.error.type}: {snapshot.error.message}",
                        error=snapshot.error,
                    )
                yield client, process
        finally:
            # Stops the worker process (terminate, grace, kill).
            tg.cancel_scope.cancel()


async def _heartbeat(client: CodeLocationClient, interval: float) -> None:
    while True:
        await anyio.sleep(interval)
        try:
            await client.heartbeat(sender="run-worker-host")
        except Exception:
            return

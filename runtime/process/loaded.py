"""A code server that has loaded its code: spawned, connected, heartbeating, snapshot in hand.

`open_loaded_code_server` is the one way the host gets such a server, for a
location's supervisor and for a run worker alike: it spawns the process, waits
for the ready line and then for the (lazy) load within one start-up deadline,
and keeps heartbeats going until the block ends, when the process is stopped
(terminate, grace, kill). A load that fails raises CodeServerStartError with
the failure as data: the user's import error, the exit code or signal of a
process that died while importing, or the module it was importing when the
deadline passed.
"""

from __future__ import annotations

import functools
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from runtime.errors import CodeLocationError, ProtocolError, RuntimeFrameworkError
from runtime.process.code_server import CodeServerStartError, run_code_server
from runtime.process.failure import LocationFailure

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime.process.code_server import CodeServerProcess
    from runtime.process.options import CodeServerOptions
    from runtime.process.target import CodeServerTarget
    from runtime.protocol.client import CodeLocationClient
    from runtime.protocol.messages import ServerInfo, Snapshot

logger = logging.getLogger("runtime.process")

# Errors that mean "the server did not answer", as opposed to a bug here.
UNREACHABLE = (CodeLocationError, ProtocolError, TimeoutError, OSError)
# How long one control-plane call may take before it counts as unanswered.
CALL_TIMEOUT = 10.0


@dataclass(frozen=True, eq=False)
class LoadedCodeServer:
    """A code server process whose code loaded, and the client that talks to it."""

    process: CodeServerProcess
    client: CodeLocationClient
    info: ServerInfo
    snapshot: Snapshot


@asynccontextmanager
async def open_loaded_code_server(
    target: CodeServerTarget,
    options: CodeServerOptions,
    *,
    heartbeat_sender: str,
) -> AsyncIterator[LoadedCodeServer]:
    """Start a code server for `target` and yield it once its code has loaded.

    Heartbeats start before the load finishes (a slow import must not trip the
    server's own heartbeat timeout) and a server that stops answering them
    past the heartbeat timeout is killed. Leaving the block stops the process.
    Raises CodeServerStartError (carrying a LocationFailure) when the process
    cannot start, dies, or does not load within `options.startup_timeout`.
    """
    deadline = anyio.current_time() + options.startup_timeout
    try:
        async with anyio.create_task_group() as tg:
            process: CodeServerProcess = await tg.start(
                functools.partial(run_code_server, target, options, deadline=deadline)
            )
            try:
                async with _connected(target, process) as client:
                    tg.start_soon(_heartbeat, target, process, client, options, heartbeat_sender)
                    loaded = await _wait_loaded(target, process, client, options, deadline)
                    yield LoadedCodeServer(
                        process=process, client=client, info=loaded[0], snapshot=loaded[1]
                    )
            finally:
                # Stops the process (terminate, grace, kill) if it still runs.
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The task group wraps what went wrong; callers want the error itself.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    except CodeLocationError as exc:
        if isinstance(exc, CodeServerStartError):
            raise
        raise CodeServerStartError(
            LocationFailure(type=type(exc).__name__, message=str(exc), time=time.time())
        ) from exc


@asynccontextmanager
async def _connected(
    target: CodeServerTarget, process: CodeServerProcess
) -> AsyncIterator[CodeLocationClient]:
    from runtime.protocol.client import CodeLocationClient

    try:
        client = CodeLocationClient(socket=process.socket_path)
    except RuntimeFrameworkError as exc:
        raise CodeServerStartError(
            LocationFailure(type=type(exc).__name__, message=str(exc), time=time.time())
        ) from exc
    async with client:
        yield client


async def _wait_loaded(
    target: CodeServerTarget,
    process: CodeServerProcess,
    client: CodeLocationClient,
    options: CodeServerOptions,
    deadline: float,
) -> tuple[ServerInfo, Snapshot]:
    failure: LocationFailure | None = None
    with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
        try:
            # The server answers GetSnapshot once its lazy load finished.
            snapshot = await client.snapshot()
            info = await client.server_info(timeout=CALL_TIMEOUT)
        except UNREACHABLE as exc:
            failure = await _failure_while_loading(target, process, exc)
        else:
            if snapshot.error is None:
                return info, snapshot
            failure = LocationFailure.from_error_info(
                snapshot.error, timings=snapshot.timings, time=time.time()
            )
    if failure is None:
        failure = _timeout_failure(target, process, options)
    raise CodeServerStartError(failure)


async def _failure_while_loading(
    target: CodeServerTarget, process: CodeServerProcess, exc: Exception
) -> LocationFailure:
    # Usually the process died while importing (os.abort, sys.exit, a segfault).
    with anyio.move_on_after(1.0):
        await process.exited.wait()
    if process.returncode is not None:
        tail = process.stderr_tail()
        return LocationFailure(
            type="CodeServerExited",
            message=(
                f"location {target.name!r}: its code server {process.exit_description()} "
                f"while loading the location's code."
            ),
            traceback=f"Last output on stderr:\n{tail}" if tail else "",
            time=time.time(),
        )
    return LocationFailure(
        type=type(exc).__name__,
        message=f"location {target.name!r}: could not fetch its snapshot: {exc}",
        time=time.time(),
    )


def _timeout_failure(
    target: CodeServerTarget, process: CodeServerProcess, options: CodeServerOptions
) -> LocationFailure:
    from runtime.protocol.load_status import read_load_status

    elapsed = anyio.current_time() - process.started_at
    status = read_load_status(process.load_status_path)
    # The import is stuck: a graceful stop would only wait for it.
    process.kill()
    timeout = options.startup_timeout
    message = f"location {target.name!r}: loading did not finish within {timeout:g} s"
    if status is not None and status.importing_module:
        message += f"; it was importing `{status.importing_module}` after {elapsed:.1f} s."
    else:
        message += f" (it ran for {elapsed:.1f} s)."
    return LocationFailure(type="TimeoutError", message=message, timings=status, time=time.time())


async def _heartbeat(
    target: CodeServerTarget,
    process: CodeServerProcess,
    client: CodeLocationClient,
    options: CodeServerOptions,
    sender: str,
) -> None:
    last_answer = anyio.current_time()
    while process.returncode is None:
        await anyio.sleep(options.heartbeat_interval)
        try:
            await client.heartbeat(sender, timeout=options.heartbeat_interval)
            last_answer = anyio.current_time()
        except UNREACHABLE as exc:
            if process.returncode is not None:
                return
            silent = anyio.current_time() - last_answer
            if silent > options.heartbeat_timeout:
                logger.warning(
                    "location %r: its code server (pid %d) has not answered a heartbeat "
                    "for %.0f s (%s); killing it.",
                    target.name,
                    process.pid,
                    silent,
                    exc,
                )
                process.kill()
                return

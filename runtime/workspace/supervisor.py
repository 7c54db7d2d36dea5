"""Supervision of one managed code location: load, heartbeat, restart, reload.

A ManagedSupervisor runs as one task of its workspace's task group. Each load
starts a new *generation* (a task owning one code server process and its
client); the location's current server is swapped only once the new generation
has loaded, so a failed reload leaves the last good one in place. A generation
whose process dies reports it to the supervisor's inbox, which marks the
location in error and schedules a restart with exponential backoff.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import anyio

from runtime.errors import CodeLocationError, ProtocolError, RuntimeFrameworkError
from runtime.workspace.location import LocationServer
from runtime.workspace.process import CodeServerStartError, run_code_server
from runtime.workspace.state import LocationFailure

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import TaskGroup, TaskStatus
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from runtime.protocol.client import CodeLocationClient
    from runtime.protocol.messages import ServerInfo, Snapshot
    from runtime.workspace.location import CodeLocation
    from runtime.workspace.options import SupervisorOptions
    from runtime.workspace.process import CodeServerProcess

logger = logging.getLogger("runtime.workspace")

T = TypeVar("T")

# Errors that mean "the server did not answer", as opposed to a bug here.
UNREACHABLE = (CodeLocationError, ProtocolError, TimeoutError, OSError)
# How long one control-plane call may take before it counts as unanswered.
CALL_TIMEOUT = 10.0


@dataclass(frozen=True)
class ReloadRequest:
    """Asks a supervisor to reload; `done` is set when the reload finished either way."""

    done: anyio.Event


@dataclass(frozen=True)
class ServerDied:
    """A generation's process exited without being asked to."""

    server: LocationServer


SupervisorEvent = ReloadRequest | ServerDied


class LoadFailed(Exception):
    """Internal: a generation failed to load; carries the failure as data."""

    def __init__(self, failure: LocationFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


async def first_of(*waits: Callable[[], Awaitable[object]]) -> None:
    """Return as soon as any of the awaitables returns; cancel the rest."""
    async with anyio.create_task_group() as tg:

        async def run(wait: Callable[[], Awaitable[object]]) -> None:
            await wait()
            tg.cancel_scope.cancel()

        for wait in waits:
            tg.start_soon(run, wait)


def unreachable_failure(location_name: str, address: str, exc: BaseException) -> LocationFailure:
    """A failure saying the code server at `address` did not answer."""
    detail = str(exc) or type(exc).__name__
    if address not in detail:
        detail = f"the code server at {address} is unreachable: {detail}"
    return LocationFailure(
        type=type(exc).__name__,
        message=f"location {location_name!r}: {detail}",
        time=time.time(),
    )


class ManagedSupervisor:
    """Keeps one managed location's code server running; see the module docstring."""

    def __init__(self, location: CodeLocation, options: SupervisorOptions) -> None:
        self._location = location
        self._options = options
        self._inbox_send: MemoryObjectSendStream[SupervisorEvent] | None = None
        self._tg: TaskGroup | None = None

    async def reload(self) -> None:
        """Start a new generation and swap it in; return when it loaded or failed."""
        if self._inbox_send is None:
            raise CodeLocationError(f"location {self._location.name!r} is not running.")
        request = ReloadRequest(done=anyio.Event())
        self._inbox_send.send_nowait(request)
        await request.done.wait()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Load the location, then supervise it until cancelled."""
        send, receive = anyio.create_memory_object_stream[SupervisorEvent](math.inf)
        self._inbox_send = send
        self._location._attach(self)
        try:
            async with send, receive, anyio.create_task_group() as tg:
                self._tg = tg
                task_status.started()
                await self._supervise(receive)
        finally:
            self._inbox_send = None
            self._location._detach()

    async def _supervise(self, inbox: MemoryObjectReceiveStream[SupervisorEvent]) -> None:
        location = self._location
        policy = self._options.restart
        await self._load("loading")
        restart_at = math.inf
        crashes = 0
        while True:
            event: SupervisorEvent | None = None
            with anyio.move_on_after(max(0.0, restart_at - anyio.current_time())):
                event = await inbox.receive()
            if event is None:
                # A restart is due.
                if await self._load("loading"):
                    restart_at = math.inf
                else:
                    crashes += 1
                    restart_at = anyio.current_time() + policy.delay(crashes - 1)
            elif isinstance(event, ReloadRequest):
                mode = "reloading" if location.server is not None else "loading"
                if await self._load(mode):
                    restart_at = math.inf
                event.done.set()
            elif event.server is location.server:
                process = event.server.process
                assert process is not None
                uptime = anyio.current_time() - process.started_at
                crashes = 0 if uptime >= policy.stable_after else crashes + 1
                location._swap_server(None)
                location._set_status("error", error=self._death_failure(process))
                if policy.enabled:
                    delay = policy.delay(max(0, crashes - 1))
                    logger.warning(
                        "location %r: restarting its code server in %.1f s.", location.name, delay
                    )
                    restart_at = anyio.current_time() + delay

    def _death_failure(self, process: CodeServerProcess) -> LocationFailure:
        tail = process.stderr_tail()
        message = (
            f"location {self._location.name!r}: its code server (pid {process.pid}) "
            f"{process.exit_description()} after it had loaded."
        )
        return LocationFailure(
            type="CodeServerExited",
            message=message,
            traceback=f"Last output on stderr:\n{tail}" if tail else "",
            time=time.time(),
        )

    async def _load(self, mode: str) -> bool:
        """Load a new generation; on success swap it in and retire the old one."""
        location = self._location
        assert self._tg is not None
        if mode == "reloading":
            location._set_status("reloading", error=location.error)
        elif location.status != "loading":
            location._set_status("loading", error=location.error)
        started = anyio.current_time()
        try:
            server: LocationServer = await self._tg.start(self._serve_generation)
        except LoadFailed as exc:
            logger.warning("%s", exc.failure.first_line)
            current = location.server
            if (
                current is not None
                and current.process is not None
                and current.process.returncode is None
            ):
                # The last good generation keeps serving; the error goes beside it.
                location._set_status("loaded", error=exc.failure)
            else:
                location._set_status("error", error=exc.failure)
            return False
        location.load_seconds = anyio.current_time() - started
        old = location._swap_server(server)
        location._set_status("loaded", error=None)
        if old is not None:
            old.retire()
        return True

    async def _serve_generation(
        self, *, task_status: TaskStatus[LocationServer] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Spawn, load and own one code server; report it through task_status once loaded.

        Raises LoadFailed (before reporting) when it does not load.
        """
        spec = self._location.spec
        deadline = anyio.current_time() + self._options.startup_timeout
        failure: LocationFailure | None = None
        async with anyio.create_task_group() as tg:
            try:
                process: CodeServerProcess = await tg.start(
                    functools.partial(run_code_server, spec, self._options, deadline=deadline)
                )
            except CodeServerStartError as exc:
                failure = exc.failure
            except CodeLocationError as exc:
                failure = LocationFailure(
                    type=type(exc).__name__, message=str(exc), time=time.time()
                )
            else:
                failure = await self._own_process(process, tg, deadline, task_status)
            # Stops the process (terminate, grace, kill) if it still runs.
            tg.cancel_scope.cancel()
        if failure is not None:
            raise LoadFailed(failure)

    async def _own_process(
        self,
        process: CodeServerProcess,
        tg: TaskGroup,
        deadline: float,
        task_status: TaskStatus[LocationServer],
    ) -> LocationFailure | None:
        from runtime.protocol.client import CodeLocationClient

        try:
            client = CodeLocationClient(socket=process.socket_path)
        except RuntimeFrameworkError as exc:
            return LocationFailure(type=type(exc).__name__, message=str(exc), time=time.time())
        async with client:
            # Heartbeats start before the load finishes: a slow import must not
            # trip the server's own heartbeat timeout.
            tg.start_soon(self._heartbeat, process, client)
            loaded = await self._wait_loaded(process, client, deadline)
            if isinstance(loaded, LocationFailure):
                return loaded
            info, snapshot = loaded
            server = LocationServer(client=client, info=info, snapshot=snapshot, process=process)
            task_status.started(server)
            await first_of(process.exited.wait, server.wait_retired)
            if server.retired:
                # Runs in flight on the old generation finish before it stops.
                await first_of(process.exited.wait, server.wait_idle)
            elif self._inbox_send is not None:
                self._inbox_send.send_nowait(ServerDied(server))
        return None

    async def _wait_loaded(
        self, process: CodeServerProcess, client: CodeLocationClient, deadline: float
    ) -> tuple[ServerInfo, Snapshot] | LocationFailure:
        result: tuple[ServerInfo, Snapshot] | LocationFailure | None = None
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
            try:
                # The server answers GetSnapshot once its lazy load finished.
                snapshot = await client.snapshot()
                info = await client.server_info(timeout=CALL_TIMEOUT)
            except UNREACHABLE as exc:
                result = await self._failure_while_loading(process, exc)
            else:
                if snapshot.error is not None:
                    result = LocationFailure.from_error_info(
                        snapshot.error, timings=snapshot.timings, time=time.time()
                    )
                else:
                    result = (info, snapshot)
        if result is None:
            result = self._timeout_failure(process)
        return result

    async def _failure_while_loading(
        self, process: CodeServerProcess, exc: Exception
    ) -> LocationFailure:
        # Usually the process died while importing (os.abort, sys.exit, a segfault).
        with anyio.move_on_after(1.0):
            await process.exited.wait()
        if process.returncode is not None:
            return self._died_while_loading(process)
        return LocationFailure(
            type=type(exc).__name__,
            message=f"location {self._location.name!r}: could not fetch its snapshot: {exc}",
            time=time.time(),
        )

    def _died_while_loading(self, process: CodeServerProcess) -> LocationFailure:
        tail = process.stderr_tail()
        return LocationFailure(
            type="CodeServerExited",
            message=(
                f"location {self._location.name!r}: its code server {process.exit_description()} "
                f"while loading the location's code."
            ),
            traceback=f"Last output on stderr:\n{tail}" if tail else "",
            time=time.time(),
        )

    def _timeout_failure(self, process: CodeServerProcess) -> LocationFailure:
        from runtime.loader.status_file import read_load_status

        elapsed = anyio.current_time() - process.started_at
        status = read_load_status(process.load_status_path)
        # The import is stuck: a graceful stop would only wait for it.
        process.kill()
        timeout = self._options.startup_timeout
        message = f"location {self._location.name!r}: loading did not finish within {timeout:g} s"
        if status is not None and status.importing_module:
            message += f"; it was importing `{status.importing_module}` after {elapsed:.1f} s."
        else:
            message += f" (it ran for {elapsed:.1f} s)."
        return LocationFailure(
            type="TimeoutError", message=message, timings=status, time=time.time()
        )

    async def _heartbeat(self, process: CodeServerProcess, client: CodeLocationClient) -> None:
        options = self._options
        sender = f"workspace host pid {os.getpid()}"
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
                        self._location.name,
                        process.pid,
                        silent,
                        exc,
                    )
                    process.kill()
                    return

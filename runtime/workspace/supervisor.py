"""Supervision of one managed code location: load, heartbeat, restart, reload.

A ManagedSupervisor runs as one task of its workspace's task group. Each load
starts a new *generation* (a task owning one code server process and its
client); the location's current server is swapped only once the new generation
has loaded, so a failed reload leaves the last good one in place. A generation
whose process dies reports it to the supervisor's inbox, which marks the
location in error and schedules a restart with exponential backoff.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from runtime.errors import CodeLocationError
from runtime.process.code_server import CodeServerStartError
from runtime.process.failure import LocationFailure
from runtime.process.loaded import CALL_TIMEOUT, UNREACHABLE
from runtime.workspace.location import LocationServer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import TaskGroup, TaskStatus
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from runtime.process.code_server import CodeServerProcess
    from runtime.workspace.location import CodeLocation
    from runtime.workspace.options import SupervisorOptions
    from runtime.workspace.spec import LocationSpec

logger = logging.getLogger("runtime.workspace")


__all__ = [
    "CALL_TIMEOUT",
    "UNREACHABLE",
    "ManagedSupervisor",
    "first_of",
    "missing_file_failure",
    "unreachable_failure",
]


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


def missing_file_failure(spec: LocationSpec) -> LocationFailure | None:
    """The failure of a python_file location whose file does not exist (None when it does).

    Checked before each load, so the file may appear later and a reload picks it up.
    """
    if spec.kind != "python_file" or spec.python_file is None:
        return None
    if os.path.isfile(spec.python_file):
        return None
    where = f" (declared in {spec.origin})" if spec.origin else ""
    what = "is a directory, not a file" if os.path.isdir(spec.python_file) else "does not exist"
    return LocationFailure(
        type="FileNotFoundError",
        message=f"location {spec.name!r}: its python_file {spec.python_file} {what}{where}.",
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
        from runtime.process.loaded import open_loaded_code_server

        missing = missing_file_failure(self._location.spec)
        if missing is not None:
            raise LoadFailed(missing)
        target = self._location.spec.code_server_target()
        sender = f"workspace host pid {os.getpid()}"
        try:
            async with open_loaded_code_server(
                target, self._options, heartbeat_sender=sender
            ) as loaded:
                process = loaded.process
                server = LocationServer(
                    client=loaded.client,
                    info=loaded.info,
                    snapshot=loaded.snapshot,
                    process=process,
                )
                task_status.started(server)
                await first_of(process.exited.wait, server.wait_retired)
                if server.retired:
                    # Runs in flight on the old generation finish before it stops.
                    await first_of(process.exited.wait, server.wait_idle)
                elif self._inbox_send is not None:
                    self._inbox_send.send_nowait(ServerDied(server))
        except CodeServerStartError as exc:
            raise LoadFailed(exc.failure) from None

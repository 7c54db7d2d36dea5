"""CodeLocationService: the RPC handlers of a code server.

Control-plane handlers (Ping, Heartbeat, GetServerInfo, Shutdown) only read
state kept on the event loop and never wait on user code. GetSnapshot waits
for a lazy load to end, then streams the pre-encoded snapshot in chunks.
Schedules and sensors are evaluated by runtime.server.ticks (user code in a
thread unless it is async). Every request's protocol version is checked before
its payload is decoded.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import time
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import grpclib.const
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from runtime.errors import UnknownDefinitionError
from runtime.protocol import messages as m
from runtime.protocol._generated.runtime_api import CodeLocationBase, Envelope
from runtime.protocol.envelope import split_into_chunks, wrap
from runtime.server.ticks import evaluate_schedule, evaluate_sensor
from runtime.version import __version__

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    import grpclib.server
    import msgspec

    from runtime.definitions.repository import RepositoryDefinition
    from runtime.protocol._generated.runtime_api import Chunk
    from runtime.server.heartbeat import HeartbeatWatchdog
    from runtime.server.location import LocationState

T = TypeVar("T")

_ping = m.decoder(m.PingRequest)
_heartbeat = m.decoder(m.HeartbeatRequest)
_server_info = m.decoder(m.ServerInfoRequest)
_shutdown = m.decoder(m.ShutdownRequest)
_snapshot = m.decoder(m.SnapshotRequest)
_validate_run = m.decoder(m.ValidateRunRequest)
_execute_run = m.decoder(m.ExecuteRunRequest)
_cancel_run = m.decoder(m.CancelRunRequest)
_evaluate_schedule = m.decoder(m.EvaluateScheduleRequest)
_evaluate_sensor = m.decoder(m.EvaluateSensorRequest)

SHUTDOWN_PATH = "/runtime_api.CodeLocation/Shutdown"


class RunRequestHandler(Protocol):
    """What the service needs to answer ValidateRun, ExecuteRun and CancelRun (runtime/server/runs.py)."""

    def execute(
        self, request: m.ExecuteRunRequest, repository: RepositoryDefinition
    ) -> AsyncIterator[m.EventBatch]:
        """Execute a run; yield its events in batches as they happen."""
        ...

    async def validate(
        self, request: m.ValidateRunRequest, repository: RepositoryDefinition
    ) -> m.ValidateRunReply:
        """Check a run could be launched (job, run config, step selection) without running it."""
        ...

    async def cancel(self, run_id: str) -> m.CancelRunReply:
        """Cancel a run this process is executing."""
        ...


class CodeLocationService(CodeLocationBase):
    """The RPC handlers for one LocationState.

    `request_stop(grace_seconds)` is called when a Shutdown request has been
    answered; `runs` is set by the server once it can execute runs (the run
    RPCs answer UNIMPLEMENTED until then).
    """

    def __init__(
        self,
        location: LocationState,
        *,
        request_stop: Callable[[float], None],
        watchdog: HeartbeatWatchdog | None = None,
    ) -> None:
        self.location = location
        self.runs: RunRequestHandler | None = None
        self._request_stop = request_stop
        self._watchdog = watchdog
        self._started_at = time.time()
        # Handler tasks of ExecuteRun streams in flight, for a graceful shutdown.
        self._run_tasks: set[asyncio.Task[Any]] = set()

    # --- helpers -------------------------------------------------------------

    def _open(self, envelope: Envelope, decoder: msgspec.msgpack.Decoder[T]) -> T:
        """Check the request's protocol version, then decode its payload (GRPCError otherwise)."""
        import msgspec

        if envelope.protocol_version != m.PROTOCOL_VERSION:
            raise GRPCError(
                Status.FAILED_PRECONDITION,
                f"the client speaks protocol version {envelope.protocol_version} but this code "
                f"server (runtime {__version__}) speaks version {m.PROTOCOL_VERSION}; run the same "
                "runtime version on the host and the code server.",
            )
        try:
            return decoder.decode(envelope.payload)
        except msgspec.DecodeError as exc:
            raise GRPCError(
                Status.INVALID_ARGUMENT, f"The request payload could not be decoded: {exc}."
            ) from exc

    async def _loaded_repository(self, rpc: str) -> RepositoryDefinition:
        """The repository once loading ended; UNAVAILABLE with the load error if it failed."""
        location = self.location
        await location.done.wait()
        if location.repository is None:
            error = location.error
            detail = f"{error.type}: {error.message}" if error else "no repository"
            raise GRPCError(
                Status.UNAVAILABLE,
                f"{rpc} needs the user code of location {location.location_name!r}, "
                f"which failed to load: {detail}",
            )
        return location.repository

    @property
    def runs_in_flight(self) -> int:
        return len(self._run_tasks)

    async def wait_for_runs(self, grace_seconds: float) -> None:
        """Wait up to grace_seconds for the ExecuteRun streams in flight to end."""
        if self._run_tasks and grace_seconds > 0:
            await asyncio.wait(set(self._run_tasks), timeout=grace_seconds)

    # --- control plane -------------------------------------------------------

    async def ping(self, envelope: Envelope) -> Envelope:
        request = self._open(envelope, _ping)
        return wrap(m.PingReply(echo=request.echo, server_id=self.location.server_id))

    async def heartbeat(self, envelope: Envelope) -> Envelope:
        self._open(envelope, _heartbeat)
        if self._watchdog is not None:
            self._watchdog.beat()
        return wrap(m.HeartbeatReply(server_id=self.location.server_id))

    async def get_server_info(self, envelope: Envelope) -> Envelope:
        self._open(envelope, _server_info)
        location = self.location
        return wrap(
            m.ServerInfo(
                server_id=location.server_id,
                pid=os.getpid(),
                python_version=platform.python_version(),
                runtime_version=__version__,
                protocol_version=m.PROTOCOL_VERSION,
                location_name=location.location_name,
                executable=sys.executable,
                started_at=self._started_at,
                load_status=location.status,
            )
        )

    async def shutdown(self, envelope: Envelope) -> Envelope:
        # Reached only through _rpc_shutdown, which stops the server after replying.
        self._open(envelope, _shutdown)
        return wrap(
            m.ShutdownReply(server_id=self.location.server_id, runs_in_flight=self.runs_in_flight)
        )

    async def _rpc_shutdown(self, stream: grpclib.server.Stream[Envelope, Envelope]) -> None:
        """Shutdown, replying (trailers included) before the stop begins.

        The generated handler would return first, and stopping the server right
        away could cancel the reply on its way out.
        """
        request = await stream.recv_message()
        assert request is not None
        grace = self._open(request, _shutdown).grace_seconds
        await stream.send_message(await self.shutdown(request))
        await stream.send_trailing_metadata()
        self._request_stop(grace)

    def __mapping__(self) -> dict[str, grpclib.const.Handler]:
        mapping = super().__mapping__()
        mapping[SHUTDOWN_PATH] = mapping[SHUTDOWN_PATH]._replace(func=self._rpc_shutdown)
        return mapping

    # --- definitions ---------------------------------------------------------

    async def get_snapshot(self, envelope: Envelope) -> AsyncIterator[Chunk]:
        self._open(envelope, _snapshot)
        await self.location.done.wait()
        for chunk in split_into_chunks(self.location.snapshot_bytes):
            yield chunk

    # --- runs ----------------------------------------------------------------

    def _run_handler(self, rpc: str) -> RunRequestHandler:
        if self.runs is None:
            raise GRPCError(
                Status.UNIMPLEMENTED,
                f"This code server (location {self.location.location_name!r}) cannot serve {rpc}: "
                "it executes no runs.",
            )
        return self.runs

    async def validate_run(self, envelope: Envelope) -> Envelope:
        request = self._open(envelope, _validate_run)
        runs = self._run_handler("ValidateRun")
        repository = await self._loaded_repository("ValidateRun")
        return wrap(await runs.validate(request, repository))

    async def execute_run(self, envelope: Envelope) -> AsyncIterator[Envelope]:
        request = self._open(envelope, _execute_run)
        runs = self._run_handler("ExecuteRun")
        repository = await self._loaded_repository("ExecuteRun")
        task = asyncio.current_task()
        assert task is not None
        self._run_tasks.add(task)
        try:
            async for batch in runs.execute(request, repository):
                yield wrap(batch)
        finally:
            self._run_tasks.discard(task)

    async def cancel_run(self, envelope: Envelope) -> Envelope:
        request = self._open(envelope, _cancel_run)
        reply = await self._run_handler("CancelRun").cancel(request.run_id)
        return wrap(reply)

    # --- schedules and sensors -----------------------------------------------

    async def evaluate_schedule(self, envelope: Envelope) -> Envelope:
        request = self._open(envelope, _evaluate_schedule)
        repository = await self._loaded_repository("EvaluateSchedule")
        try:
            return wrap(await evaluate_schedule(repository, request))
        except UnknownDefinitionError as exc:
            raise GRPCError(Status.NOT_FOUND, str(exc)) from exc

    async def evaluate_sensor(self, envelope: Envelope) -> Envelope:
        request = self._open(envelope, _evaluate_sensor)
        repository = await self._loaded_repository("EvaluateSensor")
        try:
            return wrap(await evaluate_sensor(repository, request))
        except UnknownDefinitionError as exc:
            raise GRPCError(Status.NOT_FOUND, str(exc)) from exc

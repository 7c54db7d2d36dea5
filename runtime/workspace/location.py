"""CodeLocation: the host's handle on one code location, and the server behind it.

A location is served by one `LocationServer` at a time (a generation: a code
server process and the client that talks to it). A reload starts a new
generation and swaps it in at once; the old one is *retired*: it keeps serving
whatever leased it (runs in flight) and is stopped once idle.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Protocol

import anyio

from runtime.errors import CodeLocationError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from runtime.process.code_server import CodeServerProcess
    from runtime.protocol.client import CodeLocationClient
    from runtime.protocol.messages import ServerInfo, Snapshot
    from runtime.workspace.spec import LocationSpec
    from runtime.workspace.state import LocationFailure, LocationStatus, StatusChange


class LocationServer:
    """One generation of a location's code server: its client, identity and snapshot.

    `process` is None for a grpc_server location (the workspace does not own it).
    """

    def __init__(
        self,
        *,
        client: CodeLocationClient,
        info: ServerInfo,
        snapshot: Snapshot,
        process: CodeServerProcess | None = None,
    ) -> None:
        self.client = client
        self.info = info
        self.snapshot = snapshot
        self.process = process
        self._in_flight = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._retired = anyio.Event()

    @property
    def server_id(self) -> str:
        return self.info.server_id

    @property
    def pid(self) -> int:
        return self.info.pid

    @property
    def in_flight(self) -> int:
        """How many leases (runs, evaluations) are using this server now."""
        return self._in_flight

    @property
    def retired(self) -> bool:
        return self._retired.is_set()

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[LocationServer]:
        """Keep this server alive for the block, even if it is retired meanwhile."""
        self._in_flight += 1
        self._idle = anyio.Event() if self._in_flight == 1 else self._idle
        try:
            yield self
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    def retire(self) -> None:
        """Take no new work; the owner stops the server once it is idle."""
        self._retired.set()

    async def wait_retired(self) -> None:
        await self._retired.wait()

    async def wait_idle(self) -> None:
        """Return once no lease is held."""
        await self._idle.wait()


class LocationSupervisor(Protocol):
    """What a CodeLocation asks of whatever keeps it running."""

    async def reload(self) -> None: ...


class CodeLocation:
    """One code location of a workspace: its state, snapshot, error and current server.

    Attributes are updated by the location's supervisor; read them freely.
    `status` is "loading", "loaded", "error" or "reloading"; `history` holds
    every (status, time.time()) in order; `error` says why the location is in
    error, or why its last reload failed while the last good snapshot stays in
    use.
    """

    def __init__(
        self, spec: LocationSpec, *, on_change: Callable[[StatusChange], None] | None = None
    ) -> None:
        self.name = spec.name
        self.spec = spec
        self.status: LocationStatus = "loading"
        self.history: list[tuple[LocationStatus, float]] = [("loading", time.time())]
        self.snapshot: Snapshot | None = None
        self.error: LocationFailure | None = None
        # Seconds from spawn (or connect) to a snapshot in hand, for the last load.
        self.load_seconds: float | None = None
        self.server: LocationServer | None = None
        # Set once the first load has either succeeded or failed.
        self.settled = anyio.Event()
        self._on_change = on_change
        self._supervisor: LocationSupervisor | None = None

    def __repr__(self) -> str:
        return f"<CodeLocation {self.name!r} {self.status}>"

    @property
    def is_managed(self) -> bool:
        """True when the workspace runs this location's process (not a grpc_server)."""
        return self.spec.is_managed

    @property
    def server_id(self) -> str | None:
        return self.server.server_id if self.server is not None else None

    @property
    def pid(self) -> int | None:
        """The pid of the current code server (on its own host, for grpc_server locations)."""
        return self.server.pid if self.server is not None else None

    @property
    def server_info(self) -> ServerInfo | None:
        return self.server.info if self.server is not None else None

    async def reload(self) -> None:
        """Restart (managed) or refresh (grpc_server) this location; see Workspace.reload."""
        if self._supervisor is None:
            raise CodeLocationError(
                f"location {self.name!r} is not running: open its workspace with `async with` first."
            )
        await self._supervisor.reload()

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[LocationServer]:
        """The current server, kept alive for the block even if a reload replaces it.

        Raises CodeLocationError when the location has no server that loaded.
        """
        server = self.server
        if server is None or self.status not in ("loaded", "reloading"):
            detail = f": {self.error.first_line}" if self.error is not None else ""
            raise CodeLocationError(f"location {self.name!r} is {self.status}{detail}")
        async with server.lease():
            yield server

    # --- for supervisors ----------------------------------------------------

    def _attach(self, supervisor: LocationSupervisor) -> None:
        self._supervisor = supervisor

    def _detach(self) -> None:
        self._supervisor = None

    def _set_status(self, status: LocationStatus, *, error: LocationFailure | None) -> None:
        old = self.status
        now = time.time()
        self.status = status
        self.error = error
        self.history.append((status, now))
        if status in ("loaded", "error"):
            self.settled.set()
        if self._on_change is not None:
            from runtime.workspace.state import StatusChange

            self._on_change(
                StatusChange(
                    location_name=self.name,
                    old_status=old,
                    new_status=status,
                    time=now,
                    error=error,
                )
            )

    def _swap_server(self, server: LocationServer | None) -> LocationServer | None:
        """Make `server` current at once; return the one it replaced."""
        old, self.server = self.server, server
        if server is not None:
            self.snapshot = server.snapshot
        return old

"""Locations: the code locations of one workspace, loaded and kept healthy.

Entering `serve` starts every location's supervisor concurrently and reports
started once each has loaded or failed (or once each started loading, without
`wait_for_load`); cancelling it stops every process the supervisors started. Knows nothing of runs or storage: the public Workspace
(runtime.host.workspace) composes it with runs and the instance.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import TYPE_CHECKING

import anyio
from anyio.abc import AsyncResource

from runtime.errors import CodeLocationError, WorkspaceConfigError
from runtime.workspace.location import CodeLocation
from runtime.workspace.state import StatusChange

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from anyio.abc import TaskStatus
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from runtime.workspace.options import SupervisorOptions
    from runtime.workspace.spec import LocationSpec


class StatusWatcher(AsyncResource):
    """An async iterator of the workspace's StatusChanges, from its creation on.

    Ends when the workspace closes; `aclose()` (or `async with`) stops it early.
    """

    def __init__(
        self,
        receive: MemoryObjectReceiveStream[StatusChange],
        on_close: Callable[[], None],
    ) -> None:
        self._receive = receive
        self._on_close = on_close

    def __aiter__(self) -> StatusWatcher:
        return self

    async def __anext__(self) -> StatusChange:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._receive.close()
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Stop watching; safe to call twice."""
        self._on_close()
        self._receive.close()


class Locations:
    """Every code location of a workspace, by name; raises WorkspaceConfigError for a duplicate name."""

    def __init__(
        self,
        specs: Iterable[LocationSpec],
        options: SupervisorOptions,
        *,
        wait_for_load: bool = True,
    ) -> None:
        self.options = options
        self._wait_for_load = wait_for_load
        locations: dict[str, CodeLocation] = {}
        for spec in specs:
            if spec.name in locations:
                first = locations[spec.name].spec
                raise WorkspaceConfigError(
                    f"Two locations are named {spec.name!r} ({_origin(first)} and {_origin(spec)}); "
                    "give one of them another location_name."
                )
            locations[spec.name] = CodeLocation(spec, on_change=self._on_change)
        self._locations = locations
        self.by_name: Mapping[str, CodeLocation] = MappingProxyType(locations)
        self._watchers: set[MemoryObjectSendStream[StatusChange]] = set()
        self._serving = False
        self._closed = False

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start every location; report started once each loaded or failed (at once without
        `wait_for_load`); supervise until cancelled."""
        from runtime.workspace.remote import RemoteSupervisor
        from runtime.workspace.supervisor import ManagedSupervisor

        self._serving = True
        try:
            async with anyio.create_task_group() as tg:
                for location in self._locations.values():
                    supervisor = (
                        ManagedSupervisor(location, self.options)
                        if location.is_managed
                        else RemoteSupervisor(location, self.options)
                    )
                    await tg.start(supervisor.run, name=f"location {location.name}")
                if self._wait_for_load:
                    for location in self._locations.values():
                        await location.settled.wait()
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._serving = False
            self._closed = True
            for send in list(self._watchers):
                send.close()
            self._watchers.clear()

    def location(self, name: str) -> CodeLocation:
        """The location called `name`; raises CodeLocationError listing the known names."""
        try:
            return self._locations[name]
        except KeyError:
            known = ", ".join(sorted(self._locations)) or "none"
            raise CodeLocationError(
                f"No location named {name!r} in this workspace; it has: {known}."
            ) from None

    async def reload(self, name: str | None = None) -> None:
        """Reload one location (or all, concurrently); see Workspace.reload."""
        if not self._serving:
            raise CodeLocationError("The workspace is not open: use `async with workspace:` first.")
        targets = [self.location(name)] if name is not None else list(self._locations.values())
        async with anyio.create_task_group() as tg:
            for location in targets:
                tg.start_soon(location.reload)

    def watch(self) -> StatusWatcher:
        """An async iterator of every status change from now on (see StatusChange)."""
        send, receive = anyio.create_memory_object_stream[StatusChange](math.inf)
        if self._closed:
            send.close()
        else:
            self._watchers.add(send)
        return StatusWatcher(receive, lambda: self._forget(send))

    def _forget(self, send: MemoryObjectSendStream[StatusChange]) -> None:
        self._watchers.discard(send)
        send.close()

    def _on_change(self, change: StatusChange) -> None:
        for send in list(self._watchers):
            try:
                send.send_nowait(change)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._watchers.discard(send)

    def __repr__(self) -> str:
        states = ", ".join(f"{loc.name}={loc.status}" for loc in self._locations.values())
        return f"<Workspace {states}>"


def _origin(spec: LocationSpec) -> str:
    return spec.origin or "declared in code"

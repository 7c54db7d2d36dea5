"""Workspace: every code location of a deployment, loaded and kept healthy.

    async with Workspace.from_yaml("workspace.yaml") as ws:
        for location in ws.locations.values():
            print(location.name, location.status, location.error)

Entering starts every location concurrently in the workspace's own task group
and returns once each has loaded or failed; leaving (or cancelling the task
that entered) stops every process it started. The workspace installs no signal
handlers, runs no loop of its own and keeps no global state, so any number of
them can live in one process.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from runtime.errors import (
    CodeLocationError,
    RunNotFoundError,
    RuntimeFrameworkError,
    WorkspaceConfigError,
)
from runtime.workspace.location import CodeLocation
from runtime.workspace.options import RestartPolicy, SupervisorOptions
from runtime.workspace.state import StatusChange

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from anyio.abc import TaskGroup, TaskStatus
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from runtime.instance.instance import Instance
    from runtime.runs.handle import RunHandle
    from runtime.runs.launcher import LauncherKind, RunLauncher
    from runtime.workspace.spec import LocationSpec


class StatusWatcher:
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

    async def __aenter__(self) -> StatusWatcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class Workspace:
    """The code locations of one workspace, each supervised in its own process (or remote).

    Build one with `from_yaml`, `from_targets` or `from_specs`, then enter it
    with `async with`. `locations` maps names to CodeLocation handles.
    `instance` is the Instance that runs will be stored in (None until set).
    Raises WorkspaceConfigError when two locations share a name.
    """

    def __init__(
        self,
        specs: Iterable[LocationSpec],
        *,
        instance: Instance | None = None,
        options: SupervisorOptions | None = None,
    ) -> None:
        self.options = options or SupervisorOptions()
        # Where runs and their events are stored. None: the default instance
        # (RUNTIME_HOME) is opened on entry. An instance that is not open yet is
        # opened on entry and closed on exit; an open one is left to its owner.
        self._instance = instance
        self._runs_tg: TaskGroup | None = None
        self._launcher: RunLauncher | None = None
        self._launcher_lock = anyio.Lock()
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
        self.locations: Mapping[str, CodeLocation] = MappingProxyType(locations)
        self._watchers: set[MemoryObjectSendStream[StatusChange]] = set()
        self._tg: TaskGroup | None = None
        self._closed = False

    @property
    def instance(self) -> Instance:
        """The instance runs are stored in: the one given, else RUNTIME_HOME's (read on first use)."""
        if self._instance is None:
            from runtime.instance.instance import Instance

            self._instance = Instance.from_home()
        return self._instance

    # --- constructors -------------------------------------------------------

    @classmethod
    def from_specs(
        cls,
        specs: Iterable[LocationSpec],
        *,
        instance: Instance | None = None,
        startup_timeout: float = 180.0,
        restart: bool | RestartPolicy = True,
        heartbeat_timeout: float = 30.0,
        stop_grace: float = 5.0,
        options: SupervisorOptions | None = None,
    ) -> Workspace:
        """A workspace of these LocationSpecs. `options`, when given, overrides the tuning keywords."""
        if options is None:
            if isinstance(restart, bool):
                restart = RestartPolicy(enabled=restart)
            options = SupervisorOptions(
                startup_timeout=startup_timeout,
                heartbeat_timeout=heartbeat_timeout,
                stop_grace=stop_grace,
                restart=restart,
            )
        return cls(specs, instance=instance, options=options)

    @classmethod
    def from_yaml(
        cls,
        path: str | os.PathLike[str],
        *,
        instance: Instance | None = None,
        startup_timeout: float = 180.0,
        restart: bool | RestartPolicy = True,
        heartbeat_timeout: float = 30.0,
        stop_grace: float = 5.0,
        options: SupervisorOptions | None = None,
    ) -> Workspace:
        """The workspace a workspace.yaml (or pyproject.toml [tool.runtime]) declares.

        Raises WorkspaceConfigError naming the file, line and key of what is wrong.
        """
        from runtime.workspace.config import load_workspace_file

        file = Path(path).absolute()
        if not file.is_file():
            raise WorkspaceConfigError(f"Workspace file {file} does not exist.")
        return cls.from_specs(
            load_workspace_file(file),
            instance=instance,
            startup_timeout=startup_timeout,
            restart=restart,
            heartbeat_timeout=heartbeat_timeout,
            stop_grace=stop_grace,
            options=options,
        )

    @classmethod
    def from_targets(
        cls,
        python_files: Sequence[str | os.PathLike[str]] = (),
        modules: Sequence[str] = (),
        packages: Sequence[str] = (),
        grpc_servers: Sequence[str] = (),
        *,
        attribute: str | None = None,
        working_directory: str | os.PathLike[str] | None = None,
        executable_path: str | os.PathLike[str] | None = None,
        instance: Instance | None = None,
        startup_timeout: float = 180.0,
        restart: bool | RestartPolicy = True,
        heartbeat_timeout: float = 30.0,
        stop_grace: float = 5.0,
        options: SupervisorOptions | None = None,
    ) -> Workspace:
        """A workspace of Python files, modules, packages and running code servers.

        Names default as in workspace.yaml (file base name, module or package
        name). `grpc_servers` entries are "host:port", or the path of a Unix
        socket. Relative paths are taken from the current directory, which is
        also the working directory unless `working_directory` says otherwise.
        Raises WorkspaceConfigError for a missing file or a malformed address.
        """
        from runtime.workspace.config import code_location_spec

        # Modules and packages are imported from the current directory; a file's
        # own folder goes on sys.path unless a working directory is given.
        workdir = str(Path(working_directory or Path.cwd()).absolute())
        executable = str(Path(executable_path).expanduser().absolute()) if executable_path else None
        specs: list[LocationSpec] = []
        for file in python_files:
            path = Path(file).expanduser().absolute()
            if not path.is_file():
                raise WorkspaceConfigError(
                    f"Python file {path} (from python_files) does not exist."
                )
            spec = code_location_spec(
                "python_file",
                str(path),
                working_directory=workdir,
                attribute=attribute,
                executable_path=executable,
                origin="Workspace.from_targets",
            )
            if working_directory is None:
                spec = msgspec.structs.replace(spec, working_directory=None)
            specs.append(spec)
        for kind, names in (("python_module", modules), ("python_package", packages)):
            for name in names:
                specs.append(
                    code_location_spec(
                        kind,  # type: ignore[arg-type]
                        name,
                        working_directory=workdir,
                        attribute=attribute,
                        executable_path=executable,
                        origin="Workspace.from_targets",
                    )
                )
        specs += [_grpc_target(address) for address in grpc_servers]
        return cls.from_specs(
            specs,
            instance=instance,
            startup_timeout=startup_timeout,
            restart=restart,
            heartbeat_timeout=heartbeat_timeout,
            stop_grace=stop_grace,
            options=options,
        )

    # --- lifecycle ----------------------------------------------------------

    async def __aenter__(self) -> Workspace:
        """Start every location; return once each has loaded or failed."""
        if self._tg is not None or self._closed:
            raise RuntimeFrameworkError("A Workspace can be entered only once; build a new one.")
        from runtime.workspace.remote import RemoteSupervisor
        from runtime.workspace.supervisor import ManagedSupervisor

        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            for location in self._locations.values():
                supervisor = (
                    ManagedSupervisor(location, self.options)
                    if location.is_managed
                    else RemoteSupervisor(location, self.options)
                )
                await tg.start(supervisor.run, name=f"location {location.name}")
            for location in self._locations.values():
                await location.settled.wait()
            # Run drivers get a task group of their own, entered last so it is
            # left first: runs record how they ended before their servers stop.
            self._runs_tg = anyio.create_task_group()
            await self._runs_tg.__aenter__()
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg = self._tg
        if tg is None or self._closed:
            return None
        self._closed = True
        # Each task group is cancelled and then shielded from outer
        # cancellation, so a cancelled holder still waits until every run is
        # recorded and every process it started is stopped and reaped.
        try:
            if self._runs_tg is not None:
                # Runs still in flight are stopped and recorded as such,
                # while their servers and the instance are still there.
                self._runs_tg.cancel_scope.cancel()
                self._runs_tg.cancel_scope.shield = True
                await self._runs_tg.__aexit__(None, None, None)
        finally:
            # Every supervisor, generation and process task ends (and the
            # instance this workspace opened closes). The body's own exception
            # is not the task group's: it propagates as it is once we return.
            tg.cancel_scope.cancel()
            tg.cancel_scope.shield = True
            try:
                await tg.__aexit__(None, None, None)
            finally:
                for send in list(self._watchers):
                    send.close()
                self._watchers.clear()
        return None

    async def aclose(self) -> None:
        """Stop every location; call from the task that entered the workspace. Safe to call twice."""
        await self.__aexit__(None, None, None)

    # --- using it -----------------------------------------------------------

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
        """Reload one location (or all, concurrently) and return when each loaded or failed.

        Managed locations get a new process whose snapshot is swapped in at
        once; the old process finishes what it is running, then stops. A
        failed reload keeps the last good snapshot in use and puts the error
        in `location.error`. Raises CodeLocationError for an unknown name or a
        workspace that is not open.
        """
        if self._tg is None or self._closed:
            raise CodeLocationError("The workspace is not open: use `async with workspace:` first.")
        targets = [self.location(name)] if name is not None else list(self._locations.values())
        async with anyio.create_task_group() as tg:
            for location in targets:
                tg.start_soon(location.reload)

    async def launch_run(
        self,
        job: str,
        location: str | None = None,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        step_selection: Sequence[str] | None = None,
        *,
        launcher: LauncherKind | None = None,
    ) -> RunHandle:
        """Launch a run of `job` and return its handle at once.

        `location` may be left out when the job name is unique in the
        workspace. `launcher="run_worker"` runs it in a fresh process instead of
        the location's code server (the instance's run_launcher is the default).
        Raises before storing anything: CodeLocationError (unknown location, or
        one in error), UnknownJobError (listing the jobs that exist),
        RunConfigError (with the path of the bad value), StepSelectionError.
        """
        runs = await self._runs()
        return await runs.launch(
            job=job,
            location=location,
            run_config=run_config,
            tags=tags,
            step_selection=list(step_selection) if step_selection is not None else None,
            launcher=launcher,
        )

    async def reexecute(
        self, run_id: str, *, from_failure: bool = True, launcher: LauncherKind | None = None
    ) -> RunHandle:
        """Launch the job of an earlier run again, with its config and tags.

        With `from_failure` only the steps that did not succeed run; the others'
        stored outputs are reused. The new run records its parent. Raises
        RunNotFoundError for an unknown run, and what launch_run raises.
        """
        from runtime.runs.reexecution import steps_to_reuse

        runs = await self._runs()
        parent = await self.instance.storage.get_run(run_id)
        if parent is None:
            raise RunNotFoundError(f"Cannot re-execute run {run_id}: the instance has no such run.")
        reused: list[str] = []
        if from_failure:
            reused = await steps_to_reuse(self.instance.storage, parent)
        return await runs.launch(
            job=parent.job_name,
            location=parent.location_name,
            run_config=parent.run_config,
            tags={k: v for k, v in parent.tags.items() if not k.startswith("runtime/")},
            step_selection=parent.step_selection,
            parent_run_id=parent.run_id,
            reused_steps=reused,
            launcher=launcher,
        )

    async def get_run(self, run_id: str) -> RunHandle:
        """A handle on a stored run (launched here or anywhere else on this instance).

        Raises RunNotFoundError for an unknown id.
        """
        from runtime.runs.handle import RunHandle

        live = (await self._runs()).handle(run_id)
        if live is not None:
            return live
        record = await self.instance.storage.get_run(run_id)
        if record is None:
            raise RunNotFoundError(f"No run {run_id} in the instance at {self.instance.home}.")
        return RunHandle(self.instance, record)

    async def _runs(self) -> RunLauncher:
        """The run launcher, opening the instance on first use.

        Only runs need the instance: a workspace that just loads and lists its
        locations never reads instance.yaml nor creates RUNTIME_HOME. Raises
        InstanceConfigError for a bad instance.yaml, StorageError when the
        storage cannot be opened.
        """
        if self._launcher is not None and not self._closed:
            return self._launcher
        async with self._launcher_lock:
            if self._tg is None or self._runs_tg is None or self._closed:
                raise CodeLocationError(
                    "The workspace is not open: use `async with workspace:` first."
                )
            if self._launcher is None:
                from runtime.runs.launcher import RunLauncher

                if not self.instance.is_open:
                    # Opened in a task of the workspace, which closes it last.
                    await self._tg.start(self._keep_instance_open)
                self._launcher = RunLauncher(
                    self.instance, self._locations, self._runs_tg, self.options
                )
        return self._launcher

    async def _keep_instance_open(self, *, task_status: TaskStatus[None]) -> None:
        async with self.instance:
            task_status.started()
            await anyio.sleep_forever()

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


def _grpc_target(address: str) -> LocationSpec:
    from runtime.workspace.config import grpc_server_spec

    if address.startswith("unix:") or "/" in address:
        socket = str(Path(address.removeprefix("unix:")).absolute())
        return grpc_server_spec(
            host="localhost", port=None, socket=socket, origin="Workspace.from_targets"
        )
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise WorkspaceConfigError(
            f"grpc_servers entry {address!r} is not 'host:port' or the path of a Unix socket."
        )
    return grpc_server_spec(host=host, port=int(port), socket=None, origin="Workspace.from_targets")

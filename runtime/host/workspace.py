"""Workspace: the public facade a host uses: code locations, their runs, and the instance.

    async with Workspace.from_yaml("workspace.yaml") as ws:
        for location in ws.locations.values():
            print(location.name, location.status, location.error)
        run = await ws.launch_run(job="etl")
        result = await run.wait()

It composes three parts that know nothing of each other's insides: the
locations (runtime.workspace: supervised code servers), the runs
(runtime.runs: launch, drive, follow) and the instance (runtime.instance:
storage and its rules). Entering starts every location concurrently in the
workspace's own task group and returns once each has loaded or failed;
leaving (or cancelling the task that entered) records how runs in flight
ended and stops every process it started. The workspace installs no signal
handlers, runs no loop of its own and keeps no global state, so any number of
them can live in one process.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from runtime.errors import (
    CodeLocationError,
    RunNotFoundError,
    RuntimeFrameworkError,
    WorkspaceConfigError,
)
from runtime.workspace.locations import Locations, StatusWatcher
from runtime.workspace.options import RestartPolicy, SupervisorOptions

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Mapping, Sequence
    from types import TracebackType

    from anyio.abc import TaskGroup, TaskStatus

    from runtime.instance.instance import Instance
    from runtime.instance.records import RunRecord, RunStatus
    from runtime.runs.controller import RunController
    from runtime.runs.handle import RunHandle
    from runtime.workspace.location import CodeLocation
    from runtime.workspace.spec import LocationSpec

__all__ = ["StatusWatcher", "Workspace"]

# On close, how long event followers get to read the last events and end.
_FOLLOWERS_GRACE = 1.0


class Workspace:
    """The code locations of one workspace, each supervised in its own process (or remote), and their runs.

    Build one with `from_yaml`, `from_targets` or `from_specs`, then enter it
    with `async with`, which returns once every location loaded or failed
    (with `wait_for_load=False`: once each started loading; a launch then waits
    only for the location it needs). `locations` maps names to CodeLocation handles.
    `instance` is the Instance runs are stored in (RUNTIME_HOME's unless one
    is given); it opens on first use. Raises WorkspaceConfigError when two
    locations share a name.
    """

    def __init__(
        self,
        specs: Iterable[LocationSpec],
        *,
        instance: Instance | None = None,
        options: SupervisorOptions | None = None,
        wait_for_load: bool = True,
    ) -> None:
        self.options = options or SupervisorOptions()
        self._locations = Locations(specs, self.options, wait_for_load=wait_for_load)
        self.locations: Mapping[str, CodeLocation] = self._locations.by_name
        # Where runs and their events are stored. None: the default instance
        # (RUNTIME_HOME), read on first use. An instance that is not open yet is
        # opened on first use and closed on exit; an open one is left to its owner.
        self._instance = instance
        self._tg: TaskGroup | None = None
        self._runs_tg: TaskGroup | None = None
        self._runs: RunController | None = None
        self._runs_lock = anyio.Lock()
        self._closed = False
        from runtime.runs.followers import Followers

        # Every events() follower of this workspace's handles; ended when it closes.
        self._followers = Followers()

    @property
    def instance(self) -> Instance:
        """The instance runs are stored in: the one given, else RUNTIME_HOME's (read on first use).

        Reading it creates nothing on disk; the instance opens when runs are first launched or read.
        """
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
        wait_for_load: bool = True,
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
        return cls(specs, instance=instance, options=options, wait_for_load=wait_for_load)

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
        wait_for_load: bool = True,
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
            wait_for_load=wait_for_load,
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
        wait_for_load: bool = True,
    ) -> Workspace:
        """A workspace of Python files, modules, packages and running code servers.

        Names default as in workspace.yaml (file base name, module or package
        name). `grpc_servers` entries are "host:port", or the path of a Unix
        socket. Relative paths are taken from the current directory, which is
        also the working directory unless `working_directory` says otherwise.
        A file that does not exist is not raised: its location is in error once
        the workspace is entered. Raises WorkspaceConfigError for a malformed address.
        """
        from runtime.workspace.config import code_location_spec

        # Modules and packages are imported from the current directory; a file's
        # own folder goes on sys.path unless a working directory is given.
        workdir = str(Path(working_directory or Path.cwd()).absolute())
        executable = str(Path(executable_path).expanduser().absolute()) if executable_path else None
        specs: list[LocationSpec] = []
        for file in python_files:
            # A file that does not exist puts only its location in error, on entry.
            path = Path(file).expanduser().absolute()
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
            wait_for_load=wait_for_load,
        )

    # --- lifecycle ----------------------------------------------------------

    async def __aenter__(self) -> Workspace:
        """Start every location; return once each has loaded or failed (or at once,
        with `wait_for_load=False`).

        Raises RuntimeFrameworkError when entered twice, or outside an asyncio
        event loop (under anyio's trio backend, say).
        """
        from runtime.event_loop import require_asyncio

        require_asyncio("A Workspace")
        if self._tg is not None or self._closed:
            raise RuntimeFrameworkError("A Workspace can be entered only once; build a new one.")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            await tg.start(self._locations.serve, name="workspace locations")
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
                if self._runs is not None:
                    # Runs still in flight are asked to cancel and get a moment
                    # to end CANCELED through their servers, every event stored.
                    with anyio.CancelScope(shield=True):
                        await self._runs.close(grace=self.options.cancel_grace)
                # Those that did not are stopped and recorded CANCELED here,
                # while their servers and the instance are still there.
                self._runs_tg.cancel_scope.cancel()
                self._runs_tg.cancel_scope.shield = True
                await self._runs_tg.__aexit__(None, None, None)
            # Followers read what was stored one last time and end.
            self._followers.close()
            with anyio.CancelScope(shield=True):
                await self._followers.wait_ended(_FOLLOWERS_GRACE)
        finally:
            # Every supervisor, generation and process task ends (and the
            # instance this workspace opened closes). The body's own exception
            # is not the task group's: it propagates as it is once we return.
            tg.cancel_scope.cancel()
            tg.cancel_scope.shield = True
            await tg.__aexit__(None, None, None)
        return None

    async def aclose(self) -> None:
        """Stop every location; call from the task that entered the workspace. Safe to call twice."""
        await self.__aexit__(None, None, None)

    # --- locations ----------------------------------------------------------

    def location(self, name: str) -> CodeLocation:
        """The location called `name`; raises CodeLocationError listing the known names."""
        return self._locations.location(name)

    async def reload(self, name: str | None = None) -> None:
        """Reload one location (or all, concurrently) and return when each loaded or failed.

        Managed locations get a new process whose snapshot is swapped in at
        once; the old process finishes what it is running, then stops. A
        failed reload keeps the last good snapshot in use and puts the error
        in `location.error`. Raises CodeLocationError for an unknown name or a
        workspace that is not open.
        """
        await self._locations.reload(name)

    def watch(self) -> StatusWatcher:
        """An async iterator of every location status change from now on (see StatusChange)."""
        return self._locations.watch()

    # --- runs ---------------------------------------------------------------

    async def launch_run(
        self,
        job: str,
        location: str | None = None,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        step_selection: Sequence[str] | None = None,
        *,
        launcher: str | None = None,
    ) -> RunHandle:
        """Launch a run of `job` and return its handle at once.

        `location` may be left out when the job name is unique in the
        workspace. In a workspace entered with `wait_for_load=False` it waits
        for the location it needs to load (up to its start-up deadline), not
        for the others. `launcher="run_worker"` runs it in a fresh process instead of
        the location's code server (the instance's run_launcher is the default).
        Raises before storing anything: CodeLocationError (unknown location, or
        one in error), UnknownJobError (listing the jobs that exist),
        RunConfigError (with the path of the bad value), StepSelectionError.
        """
        runs = await self._controller()
        return await runs.launch(
            job=job,
            location=location,
            run_config=run_config,
            tags=tags,
            step_selection=list(step_selection) if step_selection is not None else None,
            launcher=launcher,
        )

    async def reexecute(
        self, run_id: str, *, from_failure: bool = True, launcher: str | None = None
    ) -> RunHandle:
        """Launch the job of an earlier run again, with its config and tags.

        With `from_failure` only the steps that did not succeed run; the others'
        stored outputs are reused. The new run records its parent. Raises
        RunNotFoundError for an unknown run, and what launch_run raises.
        """
        from runtime.runs.reexecution import steps_to_reuse

        runs = await self._controller()
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

        live = (await self._controller()).handle(run_id)
        if live is not None:
            return live
        record = await self.instance.storage.get_run(run_id)
        if record is None:
            raise RunNotFoundError(f"No run {run_id} in the instance at {self.instance.home}.")
        return RunHandle(self.instance, record, followers=self._followers)

    async def list_runs(
        self,
        *,
        status: RunStatus | str | Sequence[RunStatus | str] | None = None,
        job: str | None = None,
        location: str | None = None,
        tags: Mapping[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> list[RunRecord]:
        """Stored runs, newest first, that match every filter given.

        `cursor` is the run id of the last run of the previous page. Raises
        RunNotFoundError for a cursor that names no run, ValueError for an
        unknown status.
        """
        await self._controller()
        return await self.instance.storage.get_runs(
            _run_filter(status, job, location, tags), limit=limit, cursor=cursor
        )

    async def count_runs(
        self,
        *,
        status: RunStatus | str | Sequence[RunStatus | str] | None = None,
        job: str | None = None,
        location: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> int:
        """How many stored runs match every filter given (see list_runs)."""
        await self._controller()
        return await self.instance.storage.count_runs(_run_filter(status, job, location, tags))

    async def open_instance(self) -> Instance:
        """The instance runs are stored in, opened if it was not (it stays open until the
        workspace closes); for services beside the workspace, like the daemon.

        Raises what opening raises (InstanceConfigError, StorageError) and
        CodeLocationError when the workspace is not open.
        """
        await self._controller()
        return self.instance

    async def _controller(self) -> RunController:
        """The run controller, opening the instance on first use.

        Only runs need the instance: a workspace that just loads and lists its
        locations never reads instance.yaml nor creates RUNTIME_HOME. Raises
        InstanceConfigError for a bad instance.yaml, StorageError when the
        storage cannot be opened, CodeLocationError when the workspace is not open.
        """
        if self._runs is not None and not self._closed:
            return self._runs
        async with self._runs_lock:
            if self._tg is None or self._runs_tg is None or self._closed:
                raise CodeLocationError(
                    "The workspace is not open: use `async with workspace:` first."
                )
            if self._runs is None:
                from runtime.runs.controller import RunController

                if not self.instance.is_open:
                    # Opened in a task of the workspace, which closes it last.
                    await self._tg.start(self._keep_instance_open)
                self._runs = RunController(
                    self.instance,
                    self.locations,
                    self._runs_tg,
                    self.options,
                    followers=self._followers,
                )
        return self._runs

    async def _keep_instance_open(self, *, task_status: TaskStatus[None]) -> None:
        async with self.instance:
            task_status.started()
            await anyio.sleep_forever()

    def __repr__(self) -> str:
        return repr(self._locations)


def _run_filter(
    status: RunStatus | str | Sequence[RunStatus | str] | None,
    job: str | None,
    location: str | None,
    tags: Mapping[str, str] | None,
) -> Any:
    from runtime.instance.records import RunFilter, RunStatus

    statuses: list[RunStatus] | None = None
    if status is not None:
        given = [status] if isinstance(status, str) else list(status)
        try:
            statuses = [RunStatus(str(s).upper()) for s in given]
        except ValueError:
            raise ValueError(
                f"Unknown run status in {given!r}; the statuses are: {', '.join(RunStatus)}."
            ) from None
    return RunFilter(job_name=job, location_name=location, statuses=statuses, tags=dict(tags or {}))


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

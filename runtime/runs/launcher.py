"""launch_run: check a run request against the workspace, store it, and start it.

Bad input (an unknown location or job, a location in error, run config that
does not validate, an unknown step) raises before anything is stored. A good
request is stored as NOT_STARTED and handed to a RunDriver in the workspace's
task group; the caller gets a RunHandle at once.
"""

from __future__ import annotations

import functools
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

from runtime.errors import (
    CodeLocationError,
    RunConfigError,
    RunNotFoundError,
    StepSelectionError,
    UnknownJobError,
)
from runtime.protocol.messages import ExecuteRunRequest, ValidateRunRequest
from runtime.runs.coordinator import RunCoordinator
from runtime.runs.driver import RunDriver, ServerConnection
from runtime.runs.handle import RunHandle

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from anyio.abc import TaskGroup

    from runtime.instance.instance import Instance
    from runtime.workspace.location import CodeLocation
    from runtime.workspace.options import SupervisorOptions

LauncherKind = Literal["in_process", "run_worker"]

PARENT_RUN_TAG = "runtime/parent_run_id"
ROOT_RUN_TAG = "runtime/root_run_id"


def resolve_location(
    locations: Mapping[str, CodeLocation], job: str, location: str | None
) -> CodeLocation:
    """The location that should run `job`; raises CodeLocationError or UnknownJobError."""
    if location is not None:
        found = locations.get(location)
        if found is None:
            known = ", ".join(sorted(locations)) or "none"
            raise CodeLocationError(
                f"There is no code location named {location!r} in this workspace; "
                f"the locations are: {known}."
            )
        _require_loaded(found)
        assert found.snapshot is not None
        names = [j.name for j in found.snapshot.jobs]
        if job not in names:
            raise UnknownJobError(
                f"Location {location!r} has no job named {job!r}; its jobs are: "
                f"{', '.join(sorted(names)) or 'none'}."
            )
        return found
    holders = [
        loc
        for loc in locations.values()
        if loc.snapshot is not None and any(j.name == job for j in loc.snapshot.jobs)
    ]
    if len(holders) == 1:
        _require_loaded(holders[0])
        return holders[0]
    if len(holders) > 1:
        raise UnknownJobError(
            f"Job {job!r} exists in several locations ({', '.join(sorted(h.name for h in holders))}); "
            "pass location= to say which."
        )
    every = sorted(
        f"{loc.name}:{j.name}"
        for loc in locations.values()
        if loc.snapshot is not None
        for j in loc.snapshot.jobs
    )
    broken = sorted(loc.name for loc in locations.values() if loc.status == "error")
    detail = f" (locations in error, which may define it: {', '.join(broken)})" if broken else ""
    raise UnknownJobError(
        f"No location in this workspace has a job named {job!r}{detail}; "
        f"the jobs are: {', '.join(every) or 'none'}."
    )


def _require_loaded(location: CodeLocation) -> None:
    if location.status in ("loaded", "reloading") and location.server is not None:
        return
    error = location.error
    detail = f": {error.describe()}" if error is not None else ""
    raise CodeLocationError(
        f"Location {location.name!r} cannot run anything: it is {location.status}{detail}"
    )


class RunLauncher:
    """Launches runs of one workspace into its locations (or into run workers)."""

    def __init__(
        self,
        instance: Instance,
        locations: Mapping[str, CodeLocation],
        task_group: TaskGroup,
        options: SupervisorOptions,
    ) -> None:
        self._instance = instance
        self._locations = locations
        self._task_group = task_group
        self._options = options
        self._drivers: dict[str, RunDriver] = {}
        self._coordinator = RunCoordinator(instance.config.run_coordinator)

    async def launch(
        self,
        *,
        job: str,
        location: str | None = None,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        step_selection: list[str] | None = None,
        parent_run_id: str | None = None,
        reused_steps: list[str] | None = None,
        launcher: LauncherKind | None = None,
    ) -> RunHandle:
        target = resolve_location(self._locations, job, location)
        kind = launcher or self._instance.config.run_launcher.kind
        if kind == "run_worker" and not target.is_managed:
            raise CodeLocationError(
                f"Location {target.name!r} is a grpc_server: its code runs elsewhere, so the "
                "workspace cannot start a run worker for it; launch it with launcher='in_process'."
            )
        config = dict(run_config or {})
        await self._validate(target, job, config, step_selection)
        # The job's own tags, under those given at launch.
        assert target.snapshot is not None
        job_tags = next((j.tags for j in target.snapshot.jobs if j.name == job), {})
        run_tags = {**job_tags, **(tags or {})}
        root_run_id = None
        if parent_run_id is not None:
            parent = await self._instance.storage.get_run(parent_run_id)
            if parent is None:
                raise RunNotFoundError(f"Cannot re-execute run {parent_run_id}: no such run.")
            root_run_id = parent.root_run_id or parent.run_id
            run_tags[PARENT_RUN_TAG] = parent_run_id
            run_tags[ROOT_RUN_TAG] = root_run_id
        record = await self._instance.create_run(
            job,
            location_name=target.name,
            run_config=config,
            tags=run_tags,
            step_selection=step_selection,
            parent_run_id=parent_run_id,
            root_run_id=root_run_id,
        )
        executor = self._instance.config.executor
        request = ExecuteRunRequest(
            run_id=record.run_id,
            job_name=job,
            run_config=config,
            tags=run_tags,
            step_selection=step_selection,
            parent_run_id=parent_run_id,
            reused_steps=reused_steps or [],
            storage_dir=str(self._instance.artifacts_dir),
            executor=executor.kind,
            max_concurrent=executor.max_concurrent,
            pool_limits=dict(executor.pools),
            first_sequence=2,
        )
        connect = (
            functools.partial(_run_worker_connection, target, self._options)
            if kind == "run_worker"
            else functools.partial(_location_connection, target)
        )
        slot = (
            functools.partial(self._coordinator.slot, run_tags)
            if self._coordinator.kind == "queued"
            else None
        )
        driver = RunDriver(self._instance, record, request, connect, slot)
        self._drivers[record.run_id] = driver
        self._task_group.start_soon(self._drive, driver)
        return RunHandle(self._instance, record, driver=driver)

    def handle(self, run_id: str) -> RunHandle | None:
        """The live handle of a run launched by this launcher, if it is still known."""
        driver = self._drivers.get(run_id)
        if driver is None:
            return None
        return RunHandle(self._instance, driver._record, driver=driver)

    async def _drive(self, driver: RunDriver) -> None:
        try:
            await driver.run()
        finally:
            # Finished runs are read from storage from now on.
            self._drivers.pop(driver.run_id, None)

    async def _validate(
        self,
        location: CodeLocation,
        job: str,
        run_config: dict[str, Any],
        step_selection: list[str] | None,
    ) -> None:
        async with location.lease() as server:
            reply = await server.client.validate_run(
                ValidateRunRequest(
                    job_name=job, run_config=run_config, step_selection=step_selection
                )
            )
        if reply.error is None:
            return
        message = reply.error.message
        if reply.problem == "run_config":
            raise RunConfigError(message)
        if reply.problem == "step_selection":
            raise StepSelectionError(message)
        if reply.problem == "unknown_job":
            raise UnknownJobError(message)
        raise CodeLocationError(
            f"Location {location.name!r} could not check the run of job {job!r}: "
            f"{reply.error.type}: {message}",
            error=reply.error,
        )


@asynccontextmanager
async def _location_connection(location: CodeLocation) -> AsyncIterator[ServerConnection]:
    # The lease keeps this generation of the server alive through a reload:
    # the run finishes in the old process while new runs go to the new one.
    async with location.lease() as server:
        yield ServerConnection(
            server.client,
            server.process,
            f"the code server of location {location.name!r} (pid {server.pid})",
        )


@asynccontextmanager
async def _run_worker_connection(
    location: CodeLocation, options: SupervisorOptions
) -> AsyncIterator[ServerConnection]:
    from runtime.runs.worker import open_run_worker

    async with open_run_worker(location.spec, options) as worker:
        yield ServerConnection(
            worker.client,
            worker.process,
            f"the run worker of location {location.name!r} (pid {worker.process.pid})",
        )

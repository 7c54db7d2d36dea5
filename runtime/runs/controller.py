"""RunController: launch runs of a workspace's locations, drive them, find them again.

Bad input (an unknown location or job, a location in error, run config that
does not validate, an unknown step, a launcher that cannot serve the location)
raises before anything is stored. A good request is stored as NOT_STARTED and
handed to a RunDriver in the controller's task group; the caller gets a
RunHandle at once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from runtime.errors import (
    CodeLocationError,
    InstanceConfigError,
    RunConfigError,
    RunNotFoundError,
    StepSelectionError,
    UnknownJobError,
)
from runtime.protocol.messages import ExecuteRunRequest, ValidateRunRequest
from runtime.runs.driver import WORKSPACE_CLOSED, RunDriver
from runtime.runs.followers import Followers
from runtime.runs.handle import RunHandle
from runtime.runs.launcher import build_launcher

if TYPE_CHECKING:
    from collections.abc import Mapping

    from anyio.abc import TaskGroup

    from runtime.instance.config import ExecutorConfig
    from runtime.instance.instance import Instance
    from runtime.process.options import CodeServerOptions
    from runtime.runs.launcher import RunLauncher
    from runtime.runs.queue import RunQueue
    from runtime.workspace.location import CodeLocation

logger = logging.getLogger("runtime.runs")

# How often the host looks for cancel requests made by other processes (`runtime
# run cancel`, another host's RunHandle.cancel) for the runs it drives.
CANCEL_POLL_INTERVAL = 0.25

# Launches checked and stored at once. A service that launches hundreds of runs
# in one go would otherwise have every one of them encode its request, read
# its reply and store its record in the same turn of the event loop, stalling
# the loop for hundreds of milliseconds; the rest wait their turn, briefly.
LAUNCHES_AT_ONCE = 2

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


async def settled_location(
    locations: Mapping[str, CodeLocation], job: str, location: str | None
) -> CodeLocation:
    """`resolve_location`, once the locations it depends on have loaded or failed.

    With `location` named, only that one is waited for. Without, the job is
    looked for as locations settle: the first loaded location found holding it
    is used while others still load (a workspace entered with its default
    `wait_for_load` has them all settled already). Each wait is bounded by the
    location's start-up deadline, when it goes to error.
    """
    if location is not None:
        found = locations.get(location)
        if found is not None:
            await found.settled.wait()
        return resolve_location(locations, job, location)
    while True:
        loading = [loc for loc in locations.values() if not loc.settled.is_set()]
        held = any(
            loc.snapshot is not None and any(j.name == job for j in loc.snapshot.jobs)
            for loc in locations.values()
        )
        if held or not loading:
            return resolve_location(locations, job, None)
        await _first_settled(loading)


async def _first_settled(locations: list[CodeLocation]) -> None:
    async with anyio.create_task_group() as tg:

        async def wait(location: CodeLocation) -> None:
            await location.settled.wait()
            tg.cancel_scope.cancel()

        for location in locations:
            tg.start_soon(wait, location)


def _require_loaded(location: CodeLocation) -> None:
    if location.status in ("loaded", "reloading") and location.server is not None:
        return
    error = location.error
    detail = f": {error.describe()}" if error is not None else ""
    raise CodeLocationError(
        f"Location {location.name!r} cannot run anything: it is {location.status}{detail}"
    )


class RunController:
    """The runs one workspace launches: validated, stored, driven in its task group."""

    def __init__(
        self,
        instance: Instance,
        locations: Mapping[str, CodeLocation],
        task_group: TaskGroup,
        options: CodeServerOptions,
        *,
        followers: Followers | None = None,
    ) -> None:
        self._instance = instance
        self._locations = locations
        self._task_group = task_group
        self._options = options
        self.followers = followers if followers is not None else Followers()
        self._launchers: dict[str, RunLauncher] = {}
        self._drivers: dict[str, RunDriver] = {}
        self._queue: RunQueue | None = None
        if instance.config.run_coordinator.queued is not None:
            from runtime.runs.queue import RunQueue

            self._queue = RunQueue(instance, task_group)
        self._watching_cancels = False
        self._launching = anyio.CapacityLimiter(LAUNCHES_AT_ONCE)

    def _launcher(self, name: str) -> RunLauncher:
        launcher = self._launchers.get(name)
        if launcher is None:
            launcher = self._launchers[name] = build_launcher(name, self._options)
        return launcher

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
        launcher: str | None = None,
    ) -> RunHandle:
        """Check, store and start one run; see Workspace.launch_run."""
        target = await settled_location(self._locations, job, location)
        async with self._launching:
            return await self._launch(
                target,
                job=job,
                run_config=run_config,
                tags=tags,
                step_selection=step_selection,
                parent_run_id=parent_run_id,
                reused_steps=reused_steps,
                launcher=launcher,
            )

    async def _launch(
        self,
        target: CodeLocation,
        *,
        job: str,
        run_config: Mapping[str, Any] | None,
        tags: Mapping[str, str] | None,
        step_selection: list[str] | None,
        parent_run_id: str | None,
        reused_steps: list[str] | None,
        launcher: str | None,
    ) -> RunHandle:
        if launcher is None:
            configured = self._instance.config.run_launcher.kind
            try:
                run_launcher = self._launcher(configured)
            except CodeLocationError as exc:
                raise CodeLocationError(
                    f"{self._instance.home / 'instance.yaml'}: `$.run_launcher.{configured}`: {exc}"
                ) from None
        else:
            run_launcher = self._launcher(launcher)
        run_launcher.check(target)
        config = dict(run_config or {})
        executor = self._instance.config.executor
        await self._validate(target, job, config, step_selection, executor)
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
            queued=self._queue is not None,
        )
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
            executor_config=dict(executor.options),
            max_concurrent=executor.max_concurrent,
            pool_limits=dict(executor.pools),
        )
        driver = RunDriver(
            self._instance, record, request, lambda: run_launcher.connect(target), self._queue
        )
        self._drivers[record.run_id] = driver
        self._task_group.start_soon(self._drive, driver)
        if not self._watching_cancels:
            self._watching_cancels = True
            self._task_group.start_soon(self._watch_cancel_requests, name="run cancel requests")
        return RunHandle(self._instance, record, driver=driver, followers=self.followers)

    def handle(self, run_id: str) -> RunHandle | None:
        """The live handle of a run this controller drives, if it still drives it."""
        driver = self._drivers.get(run_id)
        if driver is None:
            return None
        return RunHandle(self._instance, driver.record, driver=driver, followers=self.followers)

    async def close(self, *, grace: float, reason: str = WORKSPACE_CLOSED) -> None:
        """Ask every run driven here to cancel, giving `reason`; return once all have ended
        or after `grace` seconds (the caller then stops the drivers still running).
        """
        drivers = list(self._drivers.values())
        for driver in drivers:
            try:
                await driver.cancel(reason=reason)
            except Exception:
                logger.exception("could not cancel run %s", driver.run_id)
        with anyio.move_on_after(grace):
            for driver in drivers:
                await driver.finished.wait()

    async def _drive(self, driver: RunDriver) -> None:
        try:
            await driver.run()
        finally:
            # Finished runs are read from storage from now on.
            self._drivers.pop(driver.run_id, None)
            if self._queue is not None:
                self._queue.poke()  # its slot is free

    async def _watch_cancel_requests(self) -> None:
        """Act on cancel requests other processes record for the runs driven here."""
        try:
            while self._drivers:
                await anyio.sleep(CANCEL_POLL_INTERVAL)
                try:
                    requested = await self._instance.cancel_requests(list(self._drivers))
                except Exception:
                    logger.exception("could not read cancel requests; retrying")
                    continue
                for run_id in requested:
                    driver = self._drivers.get(run_id)
                    if driver is not None:
                        await driver.cancel()
        finally:
            self._watching_cancels = False

    async def _validate(
        self,
        location: CodeLocation,
        job: str,
        run_config: dict[str, Any],
        step_selection: list[str] | None,
        executor: ExecutorConfig,
    ) -> None:
        async with location.lease() as server:
            reply = await server.client.validate_run(
                ValidateRunRequest(
                    job_name=job,
                    run_config=run_config,
                    step_selection=step_selection,
                    executor=executor.kind,
                    executor_config=dict(executor.options),
                    max_concurrent=executor.max_concurrent,
                    pool_limits=dict(executor.pools),
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
        if reply.problem == "executor":
            raise InstanceConfigError(
                f"{self._instance.home / 'instance.yaml'}: `$.executor` cannot run job {job!r} "
                f"of location {location.name!r}: {message}"
            )
        raise CodeLocationError(
            f"Location {location.name!r} could not check the run of job {job!r}: "
            f"{reply.error.type}: {message}",
            error=reply.error,
        )

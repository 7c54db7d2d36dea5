"""Instance: one RUNTIME_HOME, its configuration, its storage, its event writer, and the rules.

The storage only stores and reads (runtime.instance.storage.base); the
instance decides: how runs are created and move between statuses
(transitions), which runs a dead host left behind (orphans), which queued run
starts next (run_queue), and it relays cancel requests and the daemon's state.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from runtime.errors import (
    InstanceConfigError,
    RunNotFoundError,
    RuntimeFrameworkError,
    StorageError,
)
from runtime.instance.config import InstanceConfig, load_instance_config
from runtime.instance.home import (
    DEFAULT_HOME_DIR,
    HOME_ENV_VAR,
    check_home,
    create_home,
    default_home,
)
from runtime.instance.records import RunRecord, RunStatus
from runtime.instance.storage.registry import StorageRegistry
from runtime.resource import OpenedResource

if TYPE_CHECKING:
    import os
    from collections.abc import Collection

    from runtime.instance.config import QueuedRunCoordinatorConfig, RunCoordinatorConfig
    from runtime.instance.daemon_records import (
        DaemonHeartbeat,
        InstigatorKind,
        InstigatorState,
        TickRecord,
        TickStatus,
    )
    from runtime.instance.records import RunHost
    from runtime.instance.storage.base import RunStorage
    from runtime.instance.storage.event_writer import EventWriter

__all__ = ["ARTIFACTS_DIR_NAME", "DEFAULT_HOME_DIR", "HOME_ENV_VAR", "Instance", "default_home"]

ARTIFACTS_DIR_NAME = "storage"


class Instance(OpenedResource):
    """Where runs and their events live: a home directory, its instance.yaml and its storage.

    Build one, then open it with `async with`, which creates the home if need be,
    opens the storage, starts the event writer and fails the runs a dead host
    left behind::

        async with Instance.from_home() as instance:            # RUNTIME_HOME, or ./.runtime
            runs = await instance.storage.get_runs()
        async with Instance.from_home("/srv/runtime") as instance: ...
        async with Instance.ephemeral() as instance: ...         # a temp home, removed on close

    `from_home` reads instance.yaml at once and raises InstanceConfigError naming
    the file, line and key of a mistake; it creates nothing on disk. Entering
    raises StorageError when the storage cannot be opened. `aclose()` (what
    leaving the block does) stores pending events, closes the storage and, for
    an ephemeral instance, removes its home; it is safe to call twice, from the
    task that opened the instance.

    Events are written through `event_writer` (batched, see EventWriter) and read
    back through `storage` (RunStorage: runs, filters, events after a cursor).
    Changes to runs go through the instance: `create_run`, `update_run_status`,
    `request_cancel`, `dequeue_runs`.
    """

    def __init__(
        self,
        home: Path,
        config: InstanceConfig,
        *,
        remove_home_on_close: bool = False,
        registry: StorageRegistry | None = None,
    ) -> None:
        self._home = home
        self._config = config
        self._registry = registry or StorageRegistry()
        self._remove_home_on_close = remove_home_on_close
        self._exit_stack: AsyncExitStack | None = None
        self._storage: RunStorage | None = None
        self._event_writer: EventWriter | None = None
        self._closed = False
        # One dequeue pass at a time in this process; the lease orders the others.
        self._queue_lock = anyio.Lock()
        self._lease_holder: str | None = None
        self.orphaned_run_ids: list[str] = []
        """Runs that this instance marked FAILURE when it opened because their host had died."""

    @classmethod
    def from_home(
        cls,
        home: str | os.PathLike[str] | None = None,
        *,
        registry: StorageRegistry | None = None,
    ) -> Instance:
        """The instance at `home` (default: RUNTIME_HOME, else ./.runtime); the directory is
        created when the instance opens, not now.

        Raises InstanceConfigError when `home/instance.yaml` is invalid, when
        `home` is a file, or when it is a directory every user may write to.
        """
        path = Path(home).expanduser().absolute() if home is not None else default_home()
        check_home(path)
        return cls(path, load_instance_config(path, registry=registry), registry=registry)

    @classmethod
    def ephemeral(cls, config: InstanceConfig | None = None) -> Instance:
        """An instance in a new temporary directory that is removed when it closes.

        For tests and for embedding services that keep no history.
        """
        home = Path(tempfile.mkdtemp(prefix="runtime-instance-"))
        return cls(home, config or InstanceConfig(), remove_home_on_close=True)

    # --- what it is -------------------------------------------------------------

    @property
    def home(self) -> Path:
        """The instance's home directory (RUNTIME_HOME)."""
        return self._home

    @property
    def config(self) -> InstanceConfig:
        """The validated instance.yaml, defaults filled in."""
        return self._config

    @property
    def storage_dir(self) -> Path:
        """Where the SQLite database lives; RuntimeFrameworkError for another storage."""
        from runtime.instance.storage.sqlite_kind import database_dir

        sqlite = self._config.storage.sqlite
        if sqlite is None:
            raise RuntimeFrameworkError(
                f"The instance at {self._home} stores in {self._config.storage.kind}, not "
                "SQLite; it has no storage_dir."
            )
        return database_dir(self._home, sqlite)

    @property
    def artifacts_dir(self) -> Path:
        """Where the filesystem IO manager keeps step outputs: one folder per run below it."""
        return self._home / ARTIFACTS_DIR_NAME

    def run_artifacts_dir(self, run_id: str) -> Path:
        """The folder of one run's step outputs: `artifacts_dir/<run_id>`."""
        return self.artifacts_dir / run_id

    @property
    def storage(self) -> RunStorage:
        """The storage, to read runs and events; raises RuntimeFrameworkError unless the
        instance is open. Change runs through the instance's methods, which keep the rules."""
        if self._storage is None or self._closed:
            raise RuntimeFrameworkError(self._not_open())
        return self._storage

    @property
    def event_writer(self) -> EventWriter:
        """The batched event writer; raises RuntimeFrameworkError unless the instance is open."""
        if self._event_writer is None or self._closed:
            raise RuntimeFrameworkError(self._not_open())
        return self._event_writer

    @property
    def lease_holder(self) -> str:
        """The name this instance takes leases under: its host, pid and a per-instance id."""
        if self._lease_holder is None:
            from runtime.instance.host import current_host

            self._lease_holder = f"{current_host().describe()} instance {uuid.uuid4().hex[:12]}"
        return self._lease_holder

    def _not_open(self) -> str:
        state = "closed" if self._closed else "not open yet"
        return f"The instance at {self._home} is {state}; use it inside `async with instance:`."

    # --- runs -------------------------------------------------------------------

    async def create_run(
        self,
        job_name: str,
        *,
        location_name: str | None = None,
        run_config: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        step_selection: list[str] | None = None,
        parent_run_id: str | None = None,
        root_run_id: str | None = None,
        run_id: str | None = None,
        queued: bool = False,
    ) -> RunRecord:
        """Store a new NOT_STARTED run with a fresh id (unless `run_id` is given) and return it.

        This process is recorded as the run's host until one starts it: if it
        dies while the run is still queued, the next instance to open fails
        the run instead of leaving it NOT_STARTED forever. With `queued` the run
        waits in the run queue until `dequeue_runs` moves it to STARTING.
        A re-execution names its `parent_run_id`; its `root_run_id` defaults to the
        parent's root, or the parent itself. Raises RunNotFoundError for an unknown
        parent and StorageError for a duplicate id.
        """
        if parent_run_id is not None and root_run_id is None:
            parent = await self.storage.get_run(parent_run_id)
            if parent is None:
                raise RunNotFoundError(
                    f"Cannot re-execute run {parent_run_id}: the instance at {self._home} has no such run."
                )
            root_run_id = parent.root_run_id or parent.run_id
        from runtime.instance.host import current_host

        now = time.time()
        record = RunRecord(
            run_id=run_id or str(uuid.uuid4()),
            job_name=job_name,
            location_name=location_name,
            status=RunStatus.NOT_STARTED,
            run_config=run_config or {},
            tags=tags or {},
            step_selection=step_selection,
            parent_run_id=parent_run_id,
            root_run_id=root_run_id,
            created_at=now,
            updated_at=now,
            host=current_host(),
            queued_at=now if queued else None,
        )
        await self.storage.add_run(record)
        return record

    async def update_run_status(
        self,
        run_id: str,
        status: RunStatus,
        *,
        expected_from: Collection[RunStatus] | None = None,
        failure_reason: str | None = None,
        host: RunHost | None = None,
    ) -> RunRecord:
        """Move a run to `status` and return the updated record.

        Sets `started_at` on STARTED and `ended_at` on a finished status; records
        `host` (default: this process) on STARTING, and on STARTED when the run
        has none. Asking for the status the run already has returns it unchanged.
        Raises RunNotFoundError for an unknown run and RunStatusTransitionError
        when the move is not allowed or the run is not in one of `expected_from`.
        """
        from runtime.instance.host import current_host
        from runtime.instance.transitions import transition

        return await transition(
            self.storage,
            run_id,
            RunStatus(status),
            now=time.time(),
            host=host or current_host(),
            expected_from=expected_from,
            failure_reason=failure_reason,
        )

    async def fail_orphaned_runs(self) -> list[str]:
        """Fail the runs whose recorded host died: in flight, or queued by a dead creator.

        Each gets the reason (naming the pid) and an ENGINE_EVENT and RUN_FAILURE
        event that end its stream; returns their ids, oldest first. Opening the
        instance does this once (`orphaned_run_ids`).
        """
        from runtime.instance.orphans import fail_orphaned_runs

        return await fail_orphaned_runs(self.storage, now=time.time())

    async def request_cancel(self, run_id: str, *, requested_by: str | None = None) -> RunRecord:
        """Ask for a run to stop, from any process sharing the instance; return its record.

        The host driving the run sees it in `cancel_requests`. `requested_by`
        says who asked and why (default: this process). A finished run is left
        alone. Raises RunNotFoundError for an unknown run.
        """
        from runtime.instance.host import current_host

        record = await self.storage.get_run(run_id)
        if record is None:
            raise RunNotFoundError(
                f"Cannot cancel run {run_id}: the instance at {self._home} has no such run."
            )
        if not record.is_finished:
            who = requested_by or current_host().describe()
            await self.storage.add_cancel_request(run_id, time.time(), who)
        return record

    async def fail_run(self, run: RunRecord, reason: str) -> bool:
        """Fail a run that is still in `run.status`, with `reason`, and append an ENGINE_EVENT
        and a RUN_FAILURE that end its event stream.

        For runs nobody drives any more (the daemon's run monitoring). Returns
        False, changing nothing, when the run moved on since `run` was read.
        """
        from runtime.instance.orphans import fail_run

        return await fail_run(self.storage, run, reason, now=time.time())

    async def cancel_requests(self, run_ids: Collection[str]) -> set[str]:
        """Which of these runs someone asked to cancel."""
        if not run_ids:
            return set()
        return {request.run_id for request in await self.storage.get_cancel_requests(run_ids)}

    async def dequeue_runs(
        self, coordinator_config: RunCoordinatorConfig | QueuedRunCoordinatorConfig | None = None
    ) -> list[RunRecord]:
        """Start what fits from the run queue shared by every process of the instance.

        Under the lease "run_queue", moves to STARTING, in creation order, each
        queued run that fits under `max_concurrent_runs` and every tag limit it
        falls under (default: this instance's run_coordinator; the immediate
        coordinator has no limits), stamped with the run's creating host, which
        drives it. A queued run whose creator died is failed instead. Returns
        the runs it moved; [] when another process holds the lease right now.
        """
        from runtime.instance.config import RunCoordinatorConfig
        from runtime.instance.run_queue import dequeue

        config = coordinator_config or self._config.run_coordinator
        queued = config.queued if isinstance(config, RunCoordinatorConfig) else config
        async with self._queue_lock:
            return await dequeue(self.storage, queued, holder=self.lease_holder, now=time.time())

    async def wait_for_new_events(self, run_id: str, after_sequence: int, timeout: float) -> None:  # noqa: ASYNC109
        """Return once an event of `run_id` past `after_sequence` is stored, by this process's
        event writer (at once) or by any other process (the storage tells), or at `timeout`."""
        writer, storage = self.event_writer, self.storage
        failures: list[Exception] = []
        with anyio.move_on_after(timeout):
            async with anyio.create_task_group() as group:

                async def written_here() -> None:
                    try:
                        await writer.wait_for_new_events(run_id, after_sequence)
                    except StorageError:
                        await anyio.sleep_forever()  # the writer closed; the storage may still tell
                    group.cancel_scope.cancel()

                async def stored_anywhere() -> None:
                    try:
                        await storage.wait_for_events(run_id, after_sequence, timeout)
                    except Exception as exc:
                        failures.append(exc)  # raised below, not wrapped in an ExceptionGroup
                    group.cancel_scope.cancel()

                group.start_soon(written_here)
                group.start_soon(stored_anywhere)
        if failures:
            raise failures[0]

    # --- leases, schedules, sensors, ticks, heartbeats (for the daemon) --------

    async def acquire_lease(self, name: str, ttl: float) -> bool:
        """Take (or renew) the lease `name` for `ttl` seconds under `lease_holder`; False
        when another process holds it."""
        return await self.storage.acquire_lease(name, self.lease_holder, ttl, time.time())

    async def release_lease(self, name: str) -> bool:
        """Give up the lease `name` if this instance holds it; True if it did."""
        return await self.storage.release_lease(name, self.lease_holder)

    async def get_instigator_state(self, instigator_id: str) -> InstigatorState | None:
        """A schedule's or sensor's stored state (ids from `daemon_records.instigator_id`)."""
        return await self.storage.get_instigator_state(instigator_id)

    async def get_instigator_states(
        self, *, kind: InstigatorKind | None = None, location: str | None = None
    ) -> list[InstigatorState]:
        """Every stored schedule and sensor state (of one kind, of one location)."""
        return await self.storage.get_instigator_states(kind=kind, location=location)

    async def set_instigator_state(self, state: InstigatorState) -> InstigatorState:
        """Store a schedule's or sensor's state, stamped with the time; return what was stored."""
        import msgspec

        stored = msgspec.structs.replace(state, updated_at=time.time())
        await self.storage.set_instigator_state(stored)
        return stored

    async def add_run_keys(self, instigator_id: str, run_keys: Collection[str]) -> set[str]:
        """Claim run keys for an instigator; return those not used before (atomic across
        processes: of two claiming one key at once, one gets it)."""
        if not run_keys:
            return set()
        return await self.storage.add_run_keys(instigator_id, run_keys)

    async def create_tick(self, instigator_id: str, tick_time: float) -> TickRecord:
        """Store a new STARTED tick of an instigator and return it."""
        from runtime.instance.daemon_records import TickRecord

        now = time.time()
        tick = TickRecord(
            tick_id=str(uuid.uuid4()),
            instigator_id=instigator_id,
            tick_time=tick_time,
            created_at=now,
            updated_at=now,
        )
        await self.storage.add_tick(tick)
        return tick

    async def update_tick(self, tick: TickRecord) -> TickRecord:
        """Store a tick's new state (status, run ids, skip reason, error, cursor), stamped with
        the time; raises StorageError for a tick never created."""
        import msgspec

        stored = msgspec.structs.replace(tick, updated_at=time.time())
        await self.storage.update_tick(stored)
        return stored

    async def get_ticks(
        self,
        instigator_id: str,
        *,
        limit: int | None = None,
        statuses: Collection[TickStatus] | None = None,
    ) -> list[TickRecord]:
        """An instigator's ticks, newest first."""
        return await self.storage.get_ticks(instigator_id, limit=limit, statuses=statuses)

    async def record_heartbeat(
        self, daemon_id: str, info: dict[str, Any] | None = None
    ) -> DaemonHeartbeat:
        """Store that the daemon `daemon_id` in this process is alive now; return the heartbeat."""
        from runtime.instance.daemon_records import DaemonHeartbeat
        from runtime.instance.host import current_host

        heartbeat = DaemonHeartbeat(
            daemon_id=daemon_id,
            host=current_host(),
            last_heartbeat_at=time.time(),
            info=info or {},
        )
        await self.storage.add_daemon_heartbeat(heartbeat)
        return heartbeat

    async def get_daemon_heartbeats(self) -> list[DaemonHeartbeat]:
        """The latest heartbeat of every daemon of the instance."""
        return await self.storage.get_daemon_heartbeats()

    # --- life -------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True between `open()` (or entering `async with`) and `aclose()`."""
        return self._exit_stack is not None and not self._closed

    async def open(self) -> None:
        """Create the home (0700) if missing, open the storage and the event writer, then
        fail the runs of dead hosts (`fail_orphaned_runs`).

        Prefer `async with instance:`. Raises InstanceConfigError for a home that
        cannot be used or a storage kind nobody registered, StorageError if the
        storage cannot be opened, RuntimeFrameworkError outside an asyncio loop.
        """
        from runtime.event_loop import require_asyncio

        require_asyncio("An Instance")
        if self._closed:
            raise RuntimeFrameworkError(f"The instance at {self._home} is closed; build a new one.")
        if self._exit_stack is not None:
            return
        from runtime.instance.storage.event_writer import EventWriter

        self._exit_stack = AsyncExitStack()
        try:
            await anyio.to_thread.run_sync(create_home, self._home)
            storage = await self._exit_stack.enter_async_context(self._build_storage())
            self._storage = storage
            self._event_writer = await self._exit_stack.enter_async_context(EventWriter(storage))
            self.orphaned_run_ids = await self.fail_orphaned_runs()
        except BaseException:
            await self.aclose()
            raise

    def _build_storage(self) -> RunStorage:
        chosen = self._config.storage
        kind = self._registry.get(chosen.kind)
        if kind is None:
            raise InstanceConfigError(
                f"The instance at {self._home} chooses a storage that is not available: "
                f"{self._registry.explain_unknown(chosen.kind)}"
            )
        return kind.open(self._home, chosen.options)

    async def aclose(self) -> None:
        """Store pending events, close the storage, remove an ephemeral home. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            # No cancel scope around this: the event writer's task group must be exited
            # in the scope it was entered in. Each part shields its own cleanup.
            if self._exit_stack is not None:
                await self._exit_stack.aclose()
        finally:
            if self._remove_home_on_close:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(
                        lambda: shutil.rmtree(self._home, ignore_errors=True)
                    )

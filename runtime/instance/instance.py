"""Instance: one RUNTIME_HOME, its configuration, its run storage and its event writer."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from runtime.errors import RunNotFoundError, RuntimeFrameworkError
from runtime.instance.config import DEFAULT_SQLITE_DIR, InstanceConfig, load_instance_config
from runtime.instance.records import RunRecord, RunStatus

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

    from runtime.instance.storage.base import RunStorage
    from runtime.instance.storage.event_writer import EventWriter

HOME_ENV_VAR = "RUNTIME_HOME"
DEFAULT_HOME_DIR = ".runtime"
ARTIFACTS_DIR_NAME = "storage"


def default_home() -> Path:
    """RUNTIME_HOME if set, else `.runtime/` under the current directory (absolute)."""
    configured = os.environ.get(HOME_ENV_VAR)
    return Path(configured).expanduser().absolute() if configured else Path.cwd() / DEFAULT_HOME_DIR


class Instance:
    """Where runs and their events live: a home directory, its instance.yaml and its storage.

    Build one, then open it with `async with`, which opens the storage, starts the
    event writer and marks FAILURE the runs a dead host left in flight::

        async with Instance.from_home() as instance:            # RUNTIME_HOME, or ./.runtime
            runs = await instance.storage.get_runs()
        async with Instance.from_home("/srv/runtime") as instance: ...
        async with Instance.ephemeral() as instance: ...         # a temp home, removed on close

    `from_home` reads instance.yaml at once and raises InstanceConfigError naming
    the file, line and key of a mistake. Entering raises StorageError when the
    storage cannot be opened. `aclose()` (what leaving the block does) stores
    pending events, closes the storage and, for an ephemeral instance, removes
    its home; it is safe to call twice, from the task that opened the instance.

    Events are written through `event_writer` (batched, see EventWriter) and read
    back through `storage` (RunStorage: runs, filters, events after a cursor).
    """

    def __init__(
        self, home: Path, config: InstanceConfig, *, remove_home_on_close: bool = False
    ) -> None:
        self._home = home
        self._config = config
        self._remove_home_on_close = remove_home_on_close
        self._exit_stack: AsyncExitStack | None = None
        self._storage: RunStorage | None = None
        self._event_writer: EventWriter | None = None
        self._closed = False
        self.orphaned_run_ids: list[str] = []
        """Runs that this instance marked FAILURE when it opened because their host had died."""

    @classmethod
    def from_home(cls, home: str | os.PathLike[str] | None = None) -> Instance:
        """The instance at `home` (default: RUNTIME_HOME, else ./.runtime), created if missing.

        Raises InstanceConfigError when `home/instance.yaml` is invalid.
        """
        path = Path(home).expanduser().absolute() if home is not None else default_home()
        path.mkdir(parents=True, exist_ok=True)
        return cls(path, load_instance_config(path))

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
        """Where the SQLite database lives."""
        sqlite = self._config.storage.sqlite
        if sqlite is not None and sqlite.base_dir is not None:
            return self._home / sqlite.base_dir  # absolute base_dir wins over home
        return self._home / DEFAULT_SQLITE_DIR

    @property
    def artifacts_dir(self) -> Path:
        """Where the filesystem IO manager keeps step outputs: one folder per run below it."""
        return self._home / ARTIFACTS_DIR_NAME

    def run_artifacts_dir(self, run_id: str) -> Path:
        """The folder of one run's step outputs: `artifacts_dir/<run_id>`."""
        return self.artifacts_dir / run_id

    @property
    def storage(self) -> RunStorage:
        """The run and event storage; raises RuntimeFrameworkError unless the instance is open."""
        if self._storage is None or self._closed:
            raise RuntimeFrameworkError(self._not_open())
        return self._storage

    @property
    def event_writer(self) -> EventWriter:
        """The batched event writer; raises RuntimeFrameworkError unless the instance is open."""
        if self._event_writer is None or self._closed:
            raise RuntimeFrameworkError(self._not_open())
        return self._event_writer

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
    ) -> RunRecord:
        """Store a new NOT_STARTED run with a fresh id (unless `run_id` is given) and return it.

        This process is recorded as the run's host until one starts it: if it
        dies while the run is still queued, the next instance to open fails
        the run instead of leaving it NOT_STARTED forever.
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
        )
        await self.storage.add_run(record)
        return record

    # --- life -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def is_open(self) -> bool:
        """True between `open()` (or entering `async with`) and `aclose()`."""
        return self._exit_stack is not None and not self._closed

    async def open(self) -> None:
        """Open the storage and event writer, then fail the runs of dead hosts.

        Runs in flight (STARTING, STARTED, CANCELING) and runs still queued
        (NOT_STARTED) whose recorded host process has exited are marked FAILURE.

        Prefer `async with instance:`. Raises StorageError if the storage cannot be opened.
        """
        if self._closed:
            raise RuntimeFrameworkError(f"The instance at {self._home} is closed; build a new one.")
        if self._exit_stack is not None:
            return
        from runtime.instance.storage.event_writer import EventWriter
        from runtime.instance.storage.sqlite import SqliteRunStorage

        self._exit_stack = AsyncExitStack()
        try:
            storage = await self._exit_stack.enter_async_context(SqliteRunStorage(self.storage_dir))
            self.orphaned_run_ids = await storage.mark_orphaned_runs_failed(_orphan_reason)
            self._event_writer = await self._exit_stack.enter_async_context(EventWriter(storage))
            self._storage = storage
        except BaseException:
            await self.aclose()
            raise

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


def _orphan_reason(run: RunRecord) -> str | None:
    """Why a run can never finish because the process responsible for it exited, or None.

    Runs off the event loop (it reads /proc).
    """
    from runtime.instance.host import dead_host_reason, host_is_alive

    if run.status is not RunStatus.NOT_STARTED:
        return dead_host_reason(run)
    if run.host is None or host_is_alive(run.host) is not False:
        return None
    return (
        f"The process (pid {run.host.pid}) that created this run exited before the run "
        f"started; it was still {run.status} when the instance found it, and nothing "
        "else will start it."
    )

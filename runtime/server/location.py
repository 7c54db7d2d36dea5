"""LocationState: the user code of this server, loaded once, off the event loop.

Loading (import, resolve, snapshot) runs in a daemon thread; the encoded
snapshot is kept so GetSnapshot only slices bytes. A failed load keeps the
error and the import timings, which GetSnapshot then returns.
"""

from __future__ import annotations

import gc
import time
from typing import TYPE_CHECKING, Literal

import anyio
import msgspec

from runtime.errors import LoadError
from runtime.gc_pause import gc_paused
from runtime.loader.import_recorder import ImportRecorder
from runtime.loader.load import load_repository
from runtime.protocol.error_info import error_info, format_user_traceback
from runtime.protocol.messages import ErrorInfo, LoadTimings, ModuleImportTime, Snapshot, encode
from runtime.server.threads import run_sync_in_daemon_thread

if TYPE_CHECKING:
    from runtime.definitions.repository import RepositoryDefinition
    from runtime.loader.import_recorder import ImportTimings
    from runtime.loader.target import LoadTarget

LoadStatus = Literal["loading", "loaded", "error"]


def load_error_info(exc: BaseException) -> ErrorInfo:
    """ErrorInfo for a failed load; for an import that raised, the user's traceback and exception."""
    info = error_info(exc)
    cause = exc.__cause__
    if isinstance(exc, LoadError) and cause is not None:
        return msgspec.structs.replace(
            info,
            traceback=format_user_traceback(cause),
            cause=ErrorInfo(type=error_info(cause).type, message=str(cause)),
        )
    return info


def load_timings(timings: ImportTimings) -> LoadTimings:
    """The wire form of what the loader's import recorder saw."""
    return LoadTimings(
        import_seconds=timings.import_seconds,
        total_seconds=timings.total_seconds,
        slowest_modules=[
            ModuleImportTime(module=t.module, seconds=t.seconds) for t in timings.slowest_modules
        ],
        importing_module=timings.importing_module,
    )


class LocationState:
    """The code location this server serves: status, repository, snapshot bytes or error."""

    def __init__(self, target: LoadTarget, *, location_name: str, server_id: str) -> None:
        self.target = target
        self.location_name = location_name
        self.server_id = server_id
        self.status: LoadStatus = "loading"
        self.recorder = ImportRecorder()
        self.repository: RepositoryDefinition | None = None
        self.error: ErrorInfo | None = None
        self.timings = LoadTimings()
        # The msgpack-encoded Snapshot (or the error Snapshot); set once loading ends.
        self.snapshot_bytes = b""
        # Set when loading has ended, successfully or not.
        self.done = anyio.Event()

    def current_timings(self, *, total_seconds: float | None = None) -> LoadTimings:
        """What the import recorder saw so far; safe to call while loading."""
        return load_timings(self.recorder.timings(total_seconds=total_seconds))

    async def load(self) -> None:
        """Load the user code in a daemon thread; never raises for a user-code failure."""
        try:
            await run_sync_in_daemon_thread(self._load_blocking, name="runtime-load-user-code")
        finally:
            self.done.set()

    def _load_blocking(self) -> None:
        started = time.perf_counter()
        try:
            # User definitions and the snapshot are many small acyclic objects:
            # scanning them for cycles while they are made only costs time.
            with gc_paused():
                repository = load_repository(self.target, recorder=self.recorder)
                from runtime.server.snapshot import build_snapshot

                snapshot = build_snapshot(
                    repository,
                    location_name=self.location_name,
                    server_id=self.server_id,
                    timings=self.current_timings(total_seconds=time.perf_counter() - started),
                )
                # Building the snapshot is part of loading; report it in the total.
                self.timings = self.current_timings(total_seconds=time.perf_counter() - started)
                self.snapshot_bytes = encode(
                    msgspec.structs.replace(snapshot, timings=self.timings)
                )
                self.repository = repository
                self.status = "loaded"
            # They live as long as the server: keep later collections from
            # walking them again on every run.
            gc.freeze()
        except Exception as exc:
            self.timings = self.current_timings(total_seconds=time.perf_counter() - started)
            self.error = load_error_info(exc)
            self.snapshot_bytes = encode(
                Snapshot(
                    location_name=self.location_name,
                    server_id=self.server_id,
                    timings=self.timings,
                    error=self.error,
                )
            )
            self.status = "error"

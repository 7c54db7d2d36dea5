"""Worker processes for the multiprocess executor: a forkserver pool with user modules preloaded.

The forkserver imports the user's modules once; each worker is forked from it,
so a step starts without paying for imports again. Values move by pickle.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.forkserver
import os
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

import anyio

from runtime.execution.process_worker import ProcessStepCall, ProcessStepOutcome, run_step

if TYPE_CHECKING:
    from collections.abc import Iterable

_WORKER_MODULE = "runtime.execution.process_worker"


class StepProcessPool:
    """A pool of forkserver worker processes that run step attempts; an async context manager.

    `terminate()` kills the workers at once (run cancellation); `aclose()`
    waits for them to exit and is safe to call twice.
    """

    def __init__(self, *, max_workers: int, preload: Iterable[str]) -> None:
        context = multiprocessing.get_context("forkserver")
        modules = ["__main__", _WORKER_MODULE, *sorted(set(preload) - {"__main__", _WORKER_MODULE})]
        # Takes effect when the forkserver starts; later pools reuse the running
        # server and import any other module on first use.
        context.set_forkserver_preload(modules)
        self._executor = ProcessPoolExecutor(max_workers=max(1, max_workers), mp_context=context)
        self._closed = False

    async def run(self, call: ProcessStepCall) -> ProcessStepOutcome:
        """Run one step attempt in a worker; cancelling the caller does not stop the worker."""
        future = self._executor.submit(run_step, call)
        return await asyncio.wrap_future(future)

    def terminate(self) -> list[int]:
        """Kill every worker process now; return their pids."""
        # ProcessPoolExecutor cannot stop a running task (before Python 3.14's
        # terminate_workers); its process table is the only handle on them.
        processes = dict(getattr(self._executor, "_processes", None) or {})
        for process in processes.values():
            if process.is_alive():
                process.kill()
        return list(processes)

    async def aclose(self) -> None:
        """Shut the pool down and wait for its workers to exit. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._shutdown)

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def __aenter__(self) -> StepProcessPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def default_worker_count(max_concurrent: int) -> int:
    """Workers for a run: max_concurrent when set, else one per CPU."""
    return max_concurrent if max_concurrent > 0 else (os.cpu_count() or 1)


def stop_forkserver() -> None:
    """Stop this process's forkserver and resource tracker, if they run.

    For tests: both helpers otherwise live as long as their parent, which is
    what a code server wants (they exit with it).
    """
    import multiprocessing.resource_tracker

    # No public way to stop them; multiprocessing's own tests use these methods.
    multiprocessing.forkserver._forkserver._stop()  # type: ignore[attr-defined]
    multiprocessing.resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]

"""Worker processes for the process step runner: a forkserver pool with user modules preloaded.

The forkserver imports the user's modules once; each worker is forked from it,
so a step starts without paying for imports again. Values move by pickle;
events (logs, prints) come back live through one queue per pool, drained by a
thread that hands each to the step it belongs to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import multiprocessing
import multiprocessing.forkserver
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import anyio

from runtime.execution.process_worker import (
    ProcessStepCall,
    ProcessStepOutcome,
    init_worker,
    run_step,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from runtime.protocol.messages import AnyPayload, EventType

    EventHandler = Callable[[EventType, AnyPayload], object]

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
        self._events = context.SimpleQueue()
        self._executor = ProcessPoolExecutor(
            max_workers=max(1, max_workers),
            mp_context=context,
            initializer=init_worker,
            initargs=(self._events,),
        )
        self._call_ids = itertools.count(1)
        # call id -> (event handler, wake-up once the worker's last event is handed over)
        self._listeners: dict[int, tuple[EventHandler, Callable[[], object]]] = {}
        self._drainer = threading.Thread(
            target=self._drain_events, name="runtime-step-events", daemon=True
        )
        self._drainer.start()
        self._closed = False

    async def run(self, call: ProcessStepCall, on_event: EventHandler) -> ProcessStepOutcome:
        """Run one step attempt in a worker; `on_event` gets its events as they happen
        (from another thread), all of them before this returns. Cancelling the caller
        does not stop the worker."""
        call_id = next(self._call_ids)
        loop = asyncio.get_running_loop()
        delivered = asyncio.Event()
        self._listeners[call_id] = (on_event, lambda: loop.call_soon_threadsafe(delivered.set))
        try:
            future = self._executor.submit(run_step, dataclasses.replace(call, call_id=call_id))
            outcome = await asyncio.wrap_future(future)
            # The worker queued "done" before returning; wait until it is drained.
            await delivered.wait()
            return outcome
        finally:
            self._listeners.pop(call_id, None)

    def _drain_events(self) -> None:
        while True:
            item: tuple[Any, ...] | None = self._events.get()
            if item is None:
                return
            listener = self._listeners.get(item[1])
            if listener is None:
                continue
            if item[0] == "event":
                listener[0](item[2], item[3])
            else:
                listener[1]()

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
        self._events.put(None)
        self._drainer.join()
        self._events.close()

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
    import gc
    import multiprocessing.resource_tracker

    # Release what closed pools left (their event queues' semaphores) while the
    # resource tracker still runs: it must see them unlinked, not leaked.
    multiprocessing.active_children()
    gc.collect()
    # No public way to stop them; multiprocessing's own tests use these methods.
    multiprocessing.forkserver._forkserver._stop()  # type: ignore[attr-defined]
    multiprocessing.resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]

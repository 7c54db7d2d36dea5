"""The dask runner: every step of a run is a task on a Dask cluster.

One asynchronous `distributed.Client` per run, on the code server's own
event loop, to the scheduler at `scheduler_address` or to a LocalCluster
started for the run (and closed after it). Each step attempt is one task
(runtime.execution.dask.worker), submitted when the step scheduler starts the
step, so the run's `max_concurrent` and pool limits hold as for every other
executor. Inputs reach the worker inline when they are small and were
produced in this run, else from the run's FsspecIOManager; the worker stores
the output there. Events the worker publishes on the run's topic become the
step's events as they arrive.

Worker deaths: a task whose worker died is run again by Dask elsewhere up to
the scheduler's `distributed.scheduler.allowed-failures` (the run says so in
an ENGINE_EVENT), then fails with KilledWorker, which fails (or retries,
under the step's RetryPolicy) the step with a message naming the worker.
LocalClusters started here allow no silent rerun.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import pickle
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import dask
import msgspec
from distributed import Client, LocalCluster
from distributed.scheduler import KilledWorker

from runtime.definitions.retry import RetryRequested
from runtime.execution.dask.options import parse_options
from runtime.execution.dask.worker import (
    EVENT,
    START,
    DaskStepResult,
    DaskStepSpec,
    InputRef,
    SysPathPlugin,
    run_async_step,
    run_step,
)
from runtime.execution.fsspec_io import FsspecIOManager, pickle_value
from runtime.execution.process_worker import FunctionRef
from runtime.execution.step_runner import RemoteStepError, RunnerUnavailableError
from runtime.protocol.messages import EnginePayload, ErrorInfo, LogPayload

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from distributed import Future

    from runtime.definitions.graph import OpDefinition
    from runtime.execution.step_runner import RunnerSetup, StepCall
    from runtime.protocol.messages import EventType

# Worker events still missing this long after their task returned are reported lost.
EVENT_GRACE_SECONDS = 10.0
# Inline outputs the runner keeps for the steps that read them, at most.
INLINE_CACHE_BYTES = 64 * 1024 * 1024
# Closing the client and a LocalCluster: long enough for workers to exit.
CLOSE_TIMEOUT = 30.0

_payload_decoder = msgspec.msgpack.Decoder(LogPayload | EnginePayload)


class _Attempt:
    """A step attempt in flight: its call, its Dask future, where it runs, its events so far."""

    __slots__ = ("call", "expected", "future", "key", "received", "settled", "worker")

    def __init__(self, call: StepCall, key: str) -> None:
        self.call = call
        self.key = key
        self.future: Future[Any] | None = None
        # (address, pid) of the worker that started it last.
        self.worker: tuple[str, int] | None = None
        self.received = 0
        self.expected: int | None = None
        self.settled = asyncio.Event()

    def worker_name(self, address: str | None = None) -> str:
        if self.worker is not None and (address is None or self.worker[0] == address):
            return f"{self.worker[0]} (pid {self.worker[1]})"
        return address or "unknown"


class DaskRunner:
    """Calls step functions as tasks on a Dask cluster; cancelling the run cancels the tasks.

    A function already running on a worker cannot be interrupted there: it
    runs to its end (a sync one sees `context.is_cancelled`).
    """

    interruptible = True

    def __init__(self, setup: RunnerSetup) -> None:
        self._setup = setup
        self._options = parse_options(setup.options)
        self._ops = setup.ops
        self._client: Client | None = None
        self._cluster: LocalCluster | None = None
        self._topic = ""
        self._address = self._options.scheduler_address or ""
        self._call_ids = itertools.count(1)
        self._attempts: dict[int, _Attempt] = {}
        self._by_step: dict[str, _Attempt] = {}
        # Small outputs of this run, pickled, for the steps that read them.
        self._inline: dict[tuple[str, str], bytes] = {}
        self._inline_total = 0
        # Used when the run's IO manager is not one the workers can reach.
        self._own_store: FsspecIOManager | None = None
        self._own_folder: str | None = None
        self._cancels: list[asyncio.Task[Any]] = []
        self._closed = False

    # --- lifecycle --------------------------------------------------------

    async def start(self) -> EnginePayload:
        options = self._options
        run_id = self._setup.run_id
        if options.local:
            self._cluster = await self._start_local_cluster()
            self._address = str(self._cluster.scheduler_address)
        try:
            self._client = await Client(
                self._cluster or self._address,
                asynchronous=True,
                timeout=options.connect_timeout,
                name=f"runtime-run-{run_id}",
                set_as_default=False,
            )
        except Exception as exc:
            raise RunnerUnavailableError(
                f"Cannot reach the Dask scheduler at {self._address} within "
                f"{options.connect_timeout:g} s ({_first_line(exc)}); check "
                "`scheduler_address` of the dask executor."
            ) from None
        client = self._client
        # The scheduler drops the events of a client's own topic when the client
        # leaves: nothing of the run stays behind on a long-lived cluster.
        self._topic = str(client.id)
        client.subscribe_topic(self._topic, self._on_message)
        paths = import_roots(self._ops)
        try:
            if paths:
                digest = hashlib.sha1("\0".join(paths).encode()).hexdigest()[:12]
                await client.register_plugin(SysPathPlugin(paths, f"runtime-sys-path-{digest}"))
            # An asynchronous client caches no per-worker information: ask.
            scheduler: Any = client.scheduler
            info = await scheduler.identity(n_workers=-1)
        except Exception as exc:
            raise RunnerUnavailableError(
                f"The Dask scheduler at {self._address} refused the run's setup (its code's "
                f"folders on the workers' sys.path): {_first_line(exc)}"
            ) from None
        workers = info.get("workers", {})
        threads = sum(int(w.get("nthreads", 0)) for w in workers.values())
        where = "a LocalCluster started for the run" if options.local else "the Dask cluster"
        return EnginePayload(
            message=(
                f"Steps run on {where} at {self._address}: {len(workers)} workers, "
                f"{threads} threads."
            ),
            metadata={
                "scheduler_address": self._address,
                "workers": len(workers),
                "threads": threads,
                "local_cluster": options.local,
            },
        )

    async def _start_local_cluster(self) -> LocalCluster:
        options = self._options
        # A step whose worker died fails (or retries under its RetryPolicy) at
        # once instead of running again behind the run's back.
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            try:
                cluster = await LocalCluster(
                    n_workers=options.n_workers,
                    threads_per_worker=options.threads_per_worker,
                    processes=options.processes,
                    # Loopback only; workers in this process talk in-process.
                    **({"host": "127.0.0.1"} if options.processes else {}),
                    dashboard_address=None,
                    # The scheduler serves /health and /metrics even without a
                    # dashboard, on port 8787 unless told: any free loopback port.
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    asynchronous=True,
                )
            except Exception as exc:
                raise RunnerUnavailableError(
                    f"Could not start a Dask LocalCluster for run {self._setup.run_id!r}: "
                    f"{_first_line(exc)}"
                ) from None
        return cluster

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT):
            client, self._client = self._client, None
            if client is not None:
                pending = [a.future for a in self._attempts.values() if a.future is not None]
                if pending:
                    await client.cancel(pending, force=True, reason="the run ended")
                for task in self._cancels:
                    await asyncio.gather(task, return_exceptions=True)
                # Else the scheduler tells the topic, which is the client's
                # own, that the client left, over the comm being closed.
                if self._topic:
                    client.unsubscribe_topic(self._topic)
                await client.close()
            cluster: Any = self._cluster
            self._cluster = None
            if cluster is not None:
                await cluster.close()
        if self._own_folder is not None:
            await anyio.to_thread.run_sync(shutil.rmtree, self._own_folder, True)

    # --- one step ---------------------------------------------------------

    async def call(self, call: StepCall) -> Any:
        client = self._client
        assert client is not None, "DaskRunner.start() was not awaited"
        step = call.step
        op = step.node.op
        call_id = next(self._call_ids)
        key = f"{call.key}-{call.run_id}-{call.retry_number}"
        store, inputs = await self._inputs(call)
        spec = DaskStepSpec(
            function=FunctionRef.of(op.fn, call.key),
            run_id=call.run_id,
            step_key=call.key,
            op_name=op.name,
            task_key=key,
            call_id=call_id,
            topic=self._topic,
            store=store.location,
            inputs=inputs,
            wants_context=op.wants_context,
            takes_config=op.config_type is not None,
            asset_key=op.asset_key,
            run_config=call.run_config,
            resources=dict(call.resources),
            retry_number=call.retry_number,
            inline_bytes=self._options.inline_bytes,
        )
        attempt = _Attempt(call, key)
        self._attempts[call_id] = attempt
        self._by_step[call.key] = attempt
        try:
            future = client.submit(
                run_async_step if op.is_async else run_step, spec, key=key, pure=False
            )
            attempt.future = future
            try:
                result: DaskStepResult = await future
            except KilledWorker as exc:
                raise RemoteStepError(self._worker_died(attempt, exc)) from None
            except asyncio.CancelledError:
                self._cancel([future], "the step was cancelled")
                raise
            except Exception as exc:
                raise RemoteStepError(self._task_failed(attempt, exc)) from None
            await self._settle(attempt, result.events_sent)
        finally:
            self._attempts.pop(call_id, None)
            if self._by_step.get(call.key) is attempt:
                del self._by_step[call.key]
        return await self._outcome(call, store, result)

    async def _inputs(self, call: StepCall) -> tuple[FsspecIOManager, tuple[InputRef, ...]]:
        """Where the worker stores the output, and how each input reaches it."""
        io = call.scope.io
        refs: list[InputRef] = []
        step = call.step
        for name, (up, output) in step.inputs.items():
            inline = self._inline.get((up, output))
            if inline is not None:
                refs.append(InputRef(name, inline=inline))
            else:
                refs.append(InputRef(name, step_key=up, output_name=output))
        if isinstance(io, FsspecIOManager):
            for stored in step.stored_inputs:
                refs.append(
                    InputRef(
                        stored.input_name,
                        step_key=stored.upstream_step,
                        output_name=stored.upstream_output,
                        asset_key=stored.asset_key,
                    )
                )
            return io, tuple(refs)
        # The run keeps outputs where the workers cannot read them (memory):
        # this run's go to a store of the runner's own, and stored inputs are
        # read here and sent inline.
        store = await self._private_store()
        if step.stored_inputs:
            refs.extend(await anyio.to_thread.run_sync(_load_stored, call))
        return store, tuple(refs)

    async def _private_store(self) -> FsspecIOManager:
        if self._own_store is None:
            url = self._options.io_url
            if url is None:
                url = self._own_folder = await anyio.to_thread.run_sync(
                    lambda: tempfile.mkdtemp(prefix="runtime-dask-outputs-")
                )
            self._own_store = FsspecIOManager(
                url, self._setup.run_id, storage_options=self._options.io_options
            )
        return self._own_store

    async def _outcome(self, call: StepCall, store: FsspecIOManager, result: DaskStepResult) -> Any:
        if result.retry_requested is not None:
            max_retries, wait = result.retry_requested
            raise RetryRequested(max_retries=max_retries, seconds_to_wait=wait)
        if result.error is not None:
            raise RemoteStepError(result.error)
        if result.inline is not None and self._inline_total < INLINE_CACHE_BYTES:
            self._inline[call.key, "result"] = result.inline
            self._inline_total += len(result.inline)
        if result.output_metadata:
            call.add_output_metadata(result.output_metadata)
        call.describe_output(result.value_repr, result.type_name)
        if store is not call.scope.io:
            # Mirrored into the run's own IO manager, where its caller reads outputs.
            inline = result.inline
            value = await anyio.to_thread.run_sync(
                lambda: (
                    pickle.loads(inline) if inline is not None else store.load(call.key, "result")
                )
            )
            if call.stores_block:
                await anyio.to_thread.run_sync(call.store, value)
            else:
                call.store(value)
        return None

    # --- events from the workers -----------------------------------------

    def _on_message(self, event: tuple[float, Any]) -> None:
        """A message on the run's topic (on the loop, in the order the worker sent them)."""
        message = event[1]
        if not isinstance(message, list | tuple) or len(message) != 4:
            return  # the scheduler's own notes about the client
        kind, call_id = message[0], message[1]
        attempt = self._attempts.get(call_id)
        if attempt is None:
            return
        if kind == START:
            previous = attempt.worker
            attempt.worker = (str(message[2]), int(message[3]))
            if previous is not None:
                attempt.call.emit(
                    "ENGINE_EVENT",
                    EnginePayload(
                        message=(
                            f"The Dask worker {previous[0]} (pid {previous[1]}) running step "
                            f"{attempt.call.key!r} died; Dask runs it again on "
                            f"{attempt.worker_name()} (the scheduler's "
                            "distributed.scheduler.allowed-failures lets it)."
                        ),
                        metadata={"worker": previous[0], "pid": previous[1]},
                    ),
                )
        elif kind == EVENT:
            event_type: EventType = message[2]
            attempt.call.emit(event_type, _payload_decoder.decode(message[3]))
            attempt.received += 1
            if attempt.expected is not None and attempt.received >= attempt.expected:
                attempt.settled.set()

    async def _settle(self, attempt: _Attempt, sent: int) -> None:
        """Wait until every event the worker sent for the attempt was emitted here."""
        if attempt.received >= sent:
            return
        attempt.expected = sent
        with anyio.move_on_after(EVENT_GRACE_SECONDS):
            await attempt.settled.wait()
        missing = sent - attempt.received
        if missing > 0:
            attempt.call.emit(
                "ENGINE_EVENT",
                EnginePayload(
                    message=(
                        f"{missing} of the {sent} log events step {attempt.call.key!r} sent "
                        f"from the Dask worker {attempt.worker_name()} did not arrive."
                    )
                ),
            )

    # --- failures and cancellation ----------------------------------------

    def _worker_died(self, attempt: _Attempt, exc: KilledWorker) -> ErrorInfo:
        address = getattr(exc.last_worker, "address", None)
        pid = getattr(exc.last_worker, "pid", None)
        # A worker killed at once may not have sent the attempt's first message.
        name = attempt.worker_name(address)
        if attempt.worker is None and pid:
            name = f"{address} (pid {pid})"
        tries = exc.allowed_failures + 1
        return ErrorInfo(
            type="runtime.execution.dask.WorkerDiedError",
            message=(
                f"The Dask worker {name} running step "
                f"{attempt.call.key!r} died; Dask gave up on the task after "
                f"{tries} worker{'s' if tries > 1 else ''} died running it."
            ),
        )

    def _task_failed(self, attempt: _Attempt, exc: Exception) -> ErrorInfo:
        return ErrorInfo(
            type=f"{type(exc).__module__}.{type(exc).__qualname__}",
            message=(
                f"The Dask task of step {attempt.call.key!r} failed on the cluster at "
                f"{self._address}: {_first_line(exc)}"
            ),
        )

    def stop(self, step_keys: Sequence[str]) -> EnginePayload | None:
        futures = [
            attempt.future
            for key in step_keys
            if (attempt := self._by_step.get(key)) is not None and attempt.future is not None
        ]
        self._cancel(futures, "the run was canceled")
        return EnginePayload(
            message=(
                f"Canceled the Dask tasks of steps {', '.join(step_keys)}; a function already "
                "running on a worker runs to its end there (a sync one sees "
                "context.is_cancelled)."
            ),
            metadata={"steps": list(step_keys), "scheduler_address": self._address},
        )

    def _cancel(self, futures: Iterable[Future[Any]], reason: str) -> None:
        futures = list(futures)
        if futures and self._client is not None:
            # Awaited in aclose: cancel() runs on the loop and must not block.
            self._cancels.append(
                asyncio.ensure_future(self._client.cancel(futures, force=True, reason=reason))
            )


def _load_stored(call: StepCall) -> list[InputRef]:
    """In a worker thread: the stored inputs of a step, read from the run's IO manager, pickled."""
    io = call.scope.io
    refs = []
    for stored in call.step.stored_inputs:
        if stored.asset_key is not None:
            value = io.load_asset(stored.asset_key)
        else:
            assert stored.upstream_step is not None
            value = io.load(stored.upstream_step, stored.upstream_output)
        refs.append(InputRef(stored.input_name, inline=pickle_value(value)))
    return refs


def import_roots(ops: Iterable[OpDefinition]) -> list[str]:
    """The sys.path folders the ops' modules were imported from, in first-seen order."""
    roots: list[str] = []
    for op in ops:
        name = getattr(op.fn, "__module__", None) or ""
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if not file:
            continue
        path = Path(file).resolve()
        depth = name.count(".") + (1 if path.name == "__init__.py" else 0)
        root = str(path.parents[depth])
        if root not in roots:
            roots.append(root)
    return roots


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]

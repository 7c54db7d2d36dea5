"""What runs on a Dask worker for one step attempt of the dask runner.

The task function (`run_step`, or `run_async_step` for async step functions,
which Dask awaits on the worker's event loop) imports the step's function by
module and name, reads its inputs (inline, or from the run's FsspecIOManager),
calls it, stores its output there and returns a DaskStepResult; a failure of
the user's code is data in that result, never an exception Dask would have to
pickle. Logs, prints and `context.log_event` calls become events published on
the run's Dask topic as they happen (`Worker.log_event`, relayed by the
scheduler to the run's client); the first message of every attempt says which
worker runs it. This module is imported on the workers: the `runtime` package
must be installed there.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import reprlib
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from distributed import WorkerPlugin, get_worker

from runtime.definitions.retry import RetryRequested
from runtime.execution import capture
from runtime.execution.context import StepContext, StepLogger
from runtime.execution.events import jsonable
from runtime.execution.fsspec_io import FsspecIOManager, FsspecLocation, pickle_value
from runtime.protocol.error_info import error_info
from runtime.protocol.messages import EnginePayload, ErrorInfo, encode
from runtime.protocol.run_log import RunLog

if TYPE_CHECKING:
    from collections.abc import Callable

    import msgspec
    from distributed import Worker

    from runtime.execution.process_worker import FunctionRef
    from runtime.protocol.messages import RunEvent

# The first element of every message on a run's topic.
START = "start"
EVENT = "event"


@dataclass(frozen=True, slots=True)
class InputRef:
    """How one input of a step reaches the worker: pickled inline, or a stored output or asset."""

    name: str
    inline: bytes | None = None
    step_key: str | None = None
    output_name: str = "result"
    asset_key: str | None = None


@dataclass(frozen=True, slots=True)
class DaskStepSpec:
    """Everything a worker needs to run one attempt of a step."""

    function: FunctionRef
    run_id: str
    step_key: str
    op_name: str
    # The Dask key of this attempt (the worker's task state tells whether it was cancelled).
    task_key: str
    # Tags this attempt's messages on `topic`.
    call_id: int
    topic: str
    store: FsspecLocation
    inputs: tuple[InputRef, ...] = ()
    wants_context: bool = False
    takes_config: bool = False
    asset_key: str | None = None
    run_config: msgspec.Struct | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    retry_number: int = 0
    inline_bytes: int = 0


@dataclass(slots=True)
class DaskStepResult:
    """What came back from the worker: where it ran, the output (or the error), how many events."""

    worker: str
    pid: int
    events_sent: int = 0
    # The pickled output, when it is small enough to travel with the result.
    inline: bytes | None = None
    value_repr: str = ""
    type_name: str = ""
    output_metadata: dict[str, Any] = field(default_factory=dict)
    error: ErrorInfo | None = None
    # (max_retries, seconds_to_wait) when the step raised RetryRequested.
    retry_requested: tuple[int, float] | None = None


class SysPathPlugin(WorkerPlugin):
    """Puts the folders the code location imports its modules from first on each worker's sys.path.

    Workers import step functions by module name; on a worker of this machine
    or one that shares its filesystem, these folders hold the same code.
    """

    idempotent = True

    def __init__(self, paths: list[str], name: str) -> None:
        self.paths = paths
        self.name = name

    def setup(self, worker: Worker) -> None:
        for path in reversed(self.paths):
            if path not in sys.path:
                sys.path.insert(0, path)


class _TopicSink:
    """Publishes each event of the attempt on the run's topic as it is emitted."""

    def __init__(self, worker: Worker, spec: DaskStepSpec) -> None:
        self._worker = worker
        self._topic = spec.topic
        self._call_id = spec.call_id
        self.sent = 0

    def put(self, event: RunEvent) -> None:
        self.sent += 1
        self._worker.log_event(
            self._topic, [EVENT, self._call_id, event.event_type, encode(event.payload)]
        )


class _Attempt:
    """One attempt on this worker: its events, context and result, shared by the sync and async paths."""

    def __init__(self, spec: DaskStepSpec) -> None:
        capture.install()
        self.spec = spec
        worker = get_worker()
        self.worker = worker
        worker.log_event(spec.topic, [START, spec.call_id, worker.address, os.getpid()])
        self.sink = _TopicSink(worker, spec)
        self.emitter = RunLog(spec.run_id, self.sink)
        self.capture = capture.StepCapture(self.emitter, spec.step_key)
        self.result = DaskStepResult(worker=worker.address, pid=os.getpid())
        self.context: StepContext | None = None

    def prepare(self) -> tuple[Callable[..., Any], dict[str, Any]]:
        """The function and its keyword arguments (blocking: reads stored inputs)."""
        spec = self.spec
        function = _resolve(spec, self.worker.address)
        store: FsspecIOManager | None = None
        kwargs: dict[str, Any] = {}
        for ref in spec.inputs:
            if ref.inline is not None:
                kwargs[ref.name] = pickle.loads(ref.inline)
                continue
            if store is None:
                store = _store(spec.store)
            if ref.asset_key is not None:
                kwargs[ref.name] = store.load_asset(ref.asset_key)
            else:
                assert ref.step_key is not None
                kwargs[ref.name] = store.load(ref.step_key, ref.output_name)
        if spec.wants_context:
            self.context = self._make_context()
            kwargs["context"] = self.context
        if spec.takes_config:
            kwargs["config"] = spec.run_config
        return function, kwargs

    def _make_context(self) -> StepContext:
        spec = self.spec
        worker = self.worker
        emitter = self.emitter

        def cancelled() -> bool:
            # The worker forgets or marks cancelled a task whose future the
            # run's client cancelled; a running function is not interrupted.
            task = worker.state.tasks.get(spec.task_key)
            return task is None or task.state in ("cancelled", "released", "forgotten")

        return StepContext(
            run_id=spec.run_id,
            step_key=spec.step_key,
            op_name=spec.op_name,
            log=StepLogger(spec.op_name, self.capture.log),
            asset_key=spec.asset_key,
            run_config=spec.run_config,
            resources=spec.resources,
            retry_number=spec.retry_number,
            cancelled=cancelled,
            engine_event=lambda message, metadata: emitter.emit(
                "ENGINE_EVENT",
                spec.step_key,
                EnginePayload(message=message, metadata=jsonable(metadata)),
            ),
        )

    def failed(self, exc: BaseException) -> None:
        if isinstance(exc, RetryRequested):
            self.result.retry_requested = (exc.max_retries, exc.seconds_to_wait)
        self.result.error = error_info(exc)

    def succeeded(self, value: Any) -> None:
        """Store the output (blocking) and describe it in the result."""
        spec = self.spec
        result = self.result
        try:
            data = pickle_value(value)
        except Exception as exc:
            self.failed(
                _Unpicklable(
                    f"Step {spec.step_key!r} returned a {type(value).__qualname__} that cannot "
                    f"be pickled ({type(exc).__name__}: {exc}); the dask executor stores every "
                    "output where the other steps' workers can read it."
                )
            )
            return
        _store(spec.store).store_pickled(spec.step_key, "result", data, asset_key=spec.asset_key)
        if len(data) <= spec.inline_bytes:
            result.inline = data
        result.value_repr = _value_repr(value)
        result.type_name = type(value).__qualname__
        if self.context is not None and self.context.output_metadata:
            result.output_metadata = jsonable(self.context.output_metadata)

    def finish(self) -> DaskStepResult:
        self.capture.flush()
        self.result.events_sent = self.sink.sent
        return self.result


def run_step(spec: DaskStepSpec) -> DaskStepResult:
    """The Dask task of a sync step: run one attempt in this worker thread; never raises for user errors."""
    attempt = _Attempt(spec)
    token = capture.current_step.set(attempt.capture)
    try:
        try:
            function, kwargs = attempt.prepare()
            value = function(**kwargs)
        except Exception as exc:
            attempt.failed(exc)
        else:
            try:
                attempt.succeeded(value)
            except Exception as exc:
                attempt.failed(exc)
        return attempt.finish()
    finally:
        capture.current_step.reset(token)


async def run_async_step(spec: DaskStepSpec) -> DaskStepResult:
    """The Dask task of an async step: awaited on the worker's event loop; file I/O in threads."""
    attempt = _Attempt(spec)
    token = capture.current_step.set(attempt.capture)
    try:
        try:
            function, kwargs = await asyncio.to_thread(attempt.prepare)
            value = await function(**kwargs)
        except Exception as exc:
            attempt.failed(exc)
        else:
            try:
                await asyncio.to_thread(attempt.succeeded, value)
            except Exception as exc:
                attempt.failed(exc)
        return attempt.finish()
    finally:
        capture.current_step.reset(token)


class _Unpicklable(TypeError):
    """A step's output cannot be pickled."""


class StepImportError(ImportError):
    """A worker cannot import the module of a step's function."""


def _resolve(spec: DaskStepSpec, worker: str) -> Callable[..., Any]:
    try:
        return spec.function.resolve()
    except ImportError as exc:
        raise StepImportError(
            f"The Dask worker {worker} cannot import the function of step {spec.step_key!r} "
            f"({spec.function.module}.{spec.function.qualname}): {exc}. Workers import step "
            "functions by module name: install the same code on them (the same path, a shared "
            "filesystem or a package)."
        ) from None


# One IO manager per run on each worker: fsspec filesystems are reused.
_stores: dict[tuple[str, str, str | None, str], FsspecIOManager] = {}
_STORES_KEPT = 64


def _store(location: FsspecLocation) -> FsspecIOManager:
    # Storage options may hold unhashable values; their repr tells them apart.
    key = (
        location.url,
        location.run_id,
        location.parent_run_id,
        repr(sorted(location.storage_options.items())),
    )
    store = _stores.get(key)
    if store is None:
        if len(_stores) >= _STORES_KEPT:
            _stores.pop(next(iter(_stores)))
        store = _stores[key] = location.open()
    return store


_short_repr = reprlib.Repr()
_short_repr.maxstring = 120
_short_repr.maxother = 120


def _value_repr(value: Any) -> str:
    # As the scheduler shows a STEP_OUTPUT of a step that ran on its loop.
    return _short_repr.repr(value)

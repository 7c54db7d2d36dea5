"""What runs inside a worker process for one step attempt of the process runner.

The step function travels as a reference (module and qualified name) rather
than by value: decorators replace the function in its module with the @op or
@asset object, which plain pickling refuses. Logs and prints made in the
worker stream back to the parent as they happen, through a queue the pool
hands every worker when it starts, and become LOG events of the step; the
worker marks the end of each call in that queue, so the parent emits all of a
step's logs before its outcome.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runtime.definitions.retry import RetryRequested
from runtime.execution import capture
from runtime.execution.context import StepContext, StepLogger
from runtime.execution.events import jsonable
from runtime.protocol.error_info import error_info
from runtime.protocol.messages import EnginePayload
from runtime.protocol.run_log import ListSink, RunLog

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.queues import SimpleQueue

    import msgspec

    from runtime.protocol.messages import AnyPayload, ErrorInfo, EventType, RunEvent


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """An importable module-level function, found again in the worker by module and name."""

    module: str
    qualname: str

    @classmethod
    def of(cls, fn: Callable[..., Any], step_key: str) -> FunctionRef:
        """Reference fn; raises ValueError if it is not reachable from its module's top level."""
        module = getattr(fn, "__module__", None)
        qualname = getattr(fn, "__qualname__", None)
        if not module or not qualname or "<locals>" in qualname or module == "__main__":
            raise ValueError(
                f"Step {step_key!r} runs in a worker process, but its function "
                f"{module}.{qualname} is not importable from its module's top level; "
                "define it at module level in an importable module."
            )
        return cls(module, qualname)

    def resolve(self) -> Callable[..., Any]:
        """Import the module and return the function, unwrapping @op/@asset objects."""
        obj: Any = importlib.import_module(self.module)
        for part in self.qualname.split("."):
            obj = getattr(obj, part)
        # @op and @asset keep the function as __wrapped__.
        while not _is_plain_function(obj) and hasattr(obj, "__wrapped__"):
            obj = obj.__wrapped__
        if not callable(obj):
            raise TypeError(f"{self.module}.{self.qualname} is not callable in the worker process.")
        return obj  # type: ignore[no-any-return]


def _is_plain_function(obj: object) -> bool:
    return hasattr(obj, "__code__")


@dataclass(frozen=True, slots=True)
class ProcessStepCall:
    """Everything a worker needs to run one attempt of a step."""

    function: FunctionRef
    kwargs: dict[str, Any]
    run_id: str
    step_key: str
    op_name: str
    # Build a StepContext and pass it as `context`.
    wants_context: bool = False
    asset_key: str | None = None
    run_config: msgspec.Struct | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    retry_number: int = 0
    # Set by the pool: tags this call's events in the pool's event queue.
    call_id: int = 0


@dataclass(slots=True)
class ProcessStepOutcome:
    """What came back from the worker: the value or the error, and the events to re-emit."""

    value: Any = None
    events: list[tuple[EventType, AnyPayload]] = field(default_factory=list)
    output_metadata: dict[str, Any] = field(default_factory=dict)
    error: ErrorInfo | None = None
    # (max_retries, seconds_to_wait) when the step raised RetryRequested.
    retry_requested: tuple[int, float] | None = None


# The pool's event queue, set once in each worker by `init_worker`.
_event_queue: SimpleQueue[tuple[Any, ...]] | None = None


def init_worker(event_queue: SimpleQueue[tuple[Any, ...]]) -> None:
    """Worker initializer: keep the queue through which events reach the parent live."""
    global _event_queue
    _event_queue = event_queue


class _QueueSink:
    """Sends each event to the parent as it is emitted."""

    def __init__(self, queue: SimpleQueue[tuple[Any, ...]], call_id: int) -> None:
        self._queue = queue
        self._call_id = call_id

    def put(self, event: RunEvent) -> None:
        self._queue.put(("event", self._call_id, event.event_type, event.payload))


def run_step(call: ProcessStepCall) -> ProcessStepOutcome:
    """Run one attempt of a step in this (worker) process; never raises for user errors."""
    capture.install()
    queue = _event_queue
    sink: _QueueSink | ListSink = ListSink() if queue is None else _QueueSink(queue, call.call_id)
    emitter = RunLog(call.run_id, sink)
    step_capture = capture.StepCapture(emitter, call.step_key)
    token = capture.current_step.set(step_capture)
    outcome = ProcessStepOutcome()
    try:
        kwargs = dict(call.kwargs)
        context: StepContext | None = None
        if call.wants_context:
            context = StepContext(
                run_id=call.run_id,
                step_key=call.step_key,
                op_name=call.op_name,
                log=StepLogger(call.op_name, step_capture.log),
                asset_key=call.asset_key,
                run_config=call.run_config,
                resources=call.resources,
                retry_number=call.retry_number,
                engine_event=lambda message, metadata: emitter.emit(
                    "ENGINE_EVENT",
                    call.step_key,
                    EnginePayload(message=message, metadata=jsonable(metadata)),
                ),
            )
            kwargs["context"] = context
        try:
            outcome.value = call.function.resolve()(**kwargs)
        except RetryRequested as exc:
            outcome.error = error_info(exc)
            outcome.retry_requested = (exc.max_retries, exc.seconds_to_wait)
        except Exception as exc:
            outcome.error = error_info(exc)
        if context is not None:
            outcome.output_metadata = context.output_metadata
    finally:
        step_capture.flush()
        capture.current_step.reset(token)
        if queue is not None:
            queue.put(("done", call.call_id))
    if isinstance(sink, ListSink):
        outcome.events = [(event.event_type, event.payload) for event in sink.events]
    return outcome

"""The thread runner: sync step functions run in worker threads, off the loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from runtime.protocol.messages import EnginePayload

if TYPE_CHECKING:
    from collections.abc import Coroutine, Sequence

    from runtime.execution.step_runner import RunnerSetup, StepCall

# Sync steps share this many threads when max_concurrent does not say.
DEFAULT_THREAD_LIMIT = 64


class ThreadRunner:
    """Calls sync step functions in threads, at most max_concurrent (else 64) at once.

    A thread cannot be interrupted: on cancellation the step sees
    `context.is_cancelled` and the run waits for it to return.
    """

    interruptible = False

    def __init__(self, setup: RunnerSetup) -> None:
        limit = setup.max_concurrent if setup.max_concurrent > 0 else DEFAULT_THREAD_LIMIT
        self._limiter = anyio.CapacityLimiter(limit)

    def call(self, call: StepCall) -> Coroutine[Any, Any, Any]:
        # Hands back anyio's coroutine rather than awaiting it in one of its
        # own: a frame less on every sync step.
        return anyio.to_thread.run_sync(
            _call,
            call,
            limiter=self._limiter,
            # Reached only when the run is cancelled from outside (server
            # shutdown): the thread is left to finish alone.
            abandon_on_cancel=True,
        )

    def stop(self, step_keys: Sequence[str]) -> EnginePayload | None:
        return EnginePayload(
            message=(
                f"Steps {', '.join(step_keys)} run in threads and cannot be interrupted; "
                "they see context.is_cancelled and the run waits for them to return."
            ),
            metadata={"steps": list(step_keys)},
        )

    async def aclose(self) -> None:
        return None


def _call(call: StepCall) -> Any:
    """In a worker thread: load the inputs, call the function, store its output."""
    value = call.step.node.op.fn(**call.arguments())
    call.store(value)
    return value

"""The loop runner: async step functions run as tasks on the run's event loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.to_thread

if TYPE_CHECKING:
    from collections.abc import Sequence

    from runtime.execution.step_runner import RunnerSetup, StepCall
    from runtime.protocol.messages import EnginePayload


class LoopRunner:
    """Awaits async step functions on the loop; cancelling the run cancels them."""

    interruptible = True

    def __init__(self, setup: RunnerSetup) -> None:
        del setup  # nothing to set up: the loop is already there

    async def call(self, call: StepCall) -> Any:
        # Every async step passes here: plain attributes rather than StepCall's
        # properties (the same tests as `loads_block`).
        step = call.step
        fn = step.node.op.fn
        if call.scope.io.blocking or step.stored_inputs:
            # File IO must not block the loop the other steps share.
            kwargs = await anyio.to_thread.run_sync(call.arguments)
            value = await fn(**kwargs)
            await anyio.to_thread.run_sync(call.store, value)
        else:
            value = await fn(**call.arguments())
            call.store(value)
        return value

    def stop(self, step_keys: Sequence[str]) -> EnginePayload | None:
        # The scheduler cancels the steps' tasks; nothing more to say.
        return None

    async def aclose(self) -> None:
        return None

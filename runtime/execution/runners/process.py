"""The process runner: sync step functions run in forkserver worker processes.

The pool (runtime.execution.processes) preloads the modules of the ops it
will run; inputs and the output cross by pickle, and the worker's logs stream
back as the step's LOG events while it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.to_thread

from runtime.definitions.retry import RetryRequested
from runtime.execution.process_worker import FunctionRef, ProcessStepCall
from runtime.execution.processes import StepProcessPool, default_worker_count
from runtime.execution.step_runner import RemoteStepError
from runtime.protocol.messages import EnginePayload

if TYPE_CHECKING:
    from collections.abc import Sequence

    from runtime.execution.step_runner import RunnerSetup, StepCall


class ProcessRunner:
    """Calls sync step functions in a pool of worker processes; cancelling the run kills them.

    The pool has max_concurrent workers (else one per CPU), never more than
    the steps it will run.
    """

    interruptible = True

    def __init__(self, setup: RunnerSetup) -> None:
        workers = min(default_worker_count(setup.max_concurrent), len(setup.ops))
        modules = {op.fn.__module__ for op in setup.ops}
        self._pool = StepProcessPool(max_workers=workers, preload=modules)

    async def call(self, call: StepCall) -> Any:
        op = call.op
        # The worker builds its own context; inputs may come from files.
        kwargs = await anyio.to_thread.run_sync(call.arguments, False)
        request = ProcessStepCall(
            function=FunctionRef.of(op.fn, call.key),
            kwargs=kwargs,
            run_id=call.run_id,
            step_key=call.key,
            op_name=op.name,
            wants_context=op.wants_context,
            asset_key=op.asset_key,
            run_config=call.run_config,
            resources=dict(call.resources),
            retry_number=call.retry_number,
        )
        outcome = await self._pool.run(request, call.emit)
        if outcome.retry_requested is not None:
            max_retries, wait = outcome.retry_requested
            raise RetryRequested(max_retries=max_retries, seconds_to_wait=wait)
        if outcome.error is not None:
            raise RemoteStepError(outcome.error)
        await anyio.to_thread.run_sync(call.store, outcome.value)
        if outcome.output_metadata:
            call.add_output_metadata(outcome.output_metadata)
        return outcome.value

    def stop(self, step_keys: Sequence[str]) -> EnginePayload | None:
        pids = self._pool.terminate()
        return EnginePayload(
            message=(
                f"Terminated the worker processes (pids {', '.join(map(str, pids))}) "
                f"of steps {', '.join(step_keys)}."
            ),
            metadata={"steps": list(step_keys), "pids": pids},
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

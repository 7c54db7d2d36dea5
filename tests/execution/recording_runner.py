"""RecordingRunner: a step runner as a plugin module would add one, recording what it did."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.to_thread

from runtime.protocol.messages import EnginePayload

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from runtime.execution.step_runner import RunnerSetup, StepCall


class RecordingRunner:
    """Calls sync functions in threads and awaits async ones; keeps every instance in `made`."""

    interruptible = True
    made: list[RecordingRunner] = []

    def __init__(self, setup: RunnerSetup) -> None:
        self.setup = setup
        self.called: list[tuple[str, int]] = []
        self.active = 0
        self.most_active = 0
        self.stopped: list[str] = []
        self.closed = False
        RecordingRunner.made.append(self)

    async def call(self, call: StepCall) -> Any:
        self.called.append((call.key, call.retry_number))
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            kwargs = call.arguments()
            if call.op.is_async:
                value = await call.op.fn(**kwargs)
            else:
                value = await anyio.to_thread.run_sync(lambda: call.op.fn(**kwargs))
            call.store(value)
            return value
        finally:
            self.active -= 1

    def stop(self, step_keys: Sequence[str]) -> EnginePayload | None:
        self.stopped.extend(step_keys)
        return EnginePayload(message=f"recording runner stopped {', '.join(step_keys)}")

    async def aclose(self) -> None:
        self.closed = True


def check_label(options: Mapping[str, Any]) -> None:
    """The recording executor's options: an optional string `label`, nothing else."""
    unknown = sorted(set(options) - {"label"})
    if unknown:
        raise ValueError(f"unknown options {', '.join(unknown)}")
    if not isinstance(options.get("label", ""), str):
        raise ValueError("label must be a string")

"""The built-in step runners: `loop` (async steps), `thread` (sync steps), `process` (worker processes).

Importing this package registers them; the process runner's module (and
multiprocessing) is imported only when a run uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.execution.runners.loop import LoopRunner
from runtime.execution.runners.thread import ThreadRunner
from runtime.execution.step_runner import register_step_runner

if TYPE_CHECKING:
    from runtime.execution.step_runner import RunnerSetup, StepRunner


def _process_runner(setup: RunnerSetup) -> StepRunner:
    from runtime.execution.runners.process import ProcessRunner

    return ProcessRunner(setup)


register_step_runner("loop", LoopRunner)
register_step_runner("thread", ThreadRunner)
register_step_runner("process", _process_runner)

"""The built-in step runners: `loop` (async steps), `thread` (sync steps), `process` (worker
processes), `dask` (tasks on a Dask cluster).

Importing this package registers them; the process and dask runners' modules
(multiprocessing, Dask) are imported only when a run uses them.
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


def _dask_runner(setup: RunnerSetup) -> StepRunner:
    from runtime.execution.dask.runner import DaskRunner

    return DaskRunner(setup)


register_step_runner("loop", LoopRunner)
register_step_runner("thread", ThreadRunner)
register_step_runner("process", _process_runner)
register_step_runner("dask", _dask_runner)

"""Executors: a name a run asks for, mapping each of its steps to a registered StepRunner.

`in_process` (the default) runs async steps on the loop, sync steps in
threads and `@op(cpu_bound=True)` steps in worker processes; `multiprocess`
runs every sync step in worker processes. The wire carries the executor's
name and its options (`executor_config`); an executor checks its options
before the run starts. Adding one is a module that registers its runners
and an `ExecutorDefinition`; the scheduler gives every executor the same
limits, pools, retries, cancellation, log capture and events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.execution.step_runner import step_runner_names, unknown_name_message

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from runtime.definitions.graph import OpDefinition

DEFAULT_EXECUTOR = "in_process"


def takes_no_options(options: Mapping[str, Any]) -> None:
    """For executors without options: raise ValueError naming any that were given."""
    if options:
        names = ", ".join(repr(name) for name in sorted(options))
        raise ValueError(f"it takes no options, got {names}")


@dataclass(frozen=True, slots=True)
class ExecutorDefinition:
    """An executor: the runner (by registered name) each op's steps use, and its option check.

    `check_options` raises ValueError saying what is wrong with the run's
    executor_config (the message is prefixed with the executor and the run).
    """

    name: str
    runner_for: Callable[[OpDefinition], str]
    check_options: Callable[[Mapping[str, Any]], None] = takes_no_options
    description: str = ""


_EXECUTORS: dict[str, ExecutorDefinition] = {}


def register_executor(definition: ExecutorDefinition) -> None:
    """Make an executor available to runs as `definition.name`."""
    _EXECUTORS[definition.name] = definition


def executor_names() -> list[str]:
    """The names of the registered executors."""
    return sorted(_EXECUTORS)


def resolve_executor(name: str, options: Mapping[str, Any], *, run_id: str) -> ExecutorDefinition:
    """The executor registered as `name`, once it accepted `options`.

    Raises ValueError naming the run: for an unknown name (listing the
    registered executors), for options the executor refuses.
    """
    definition = _EXECUTORS.get(name)
    if definition is None:
        raise ValueError(
            unknown_name_message("executor", name, _EXECUTORS, where=f" for run {run_id!r}")
        )
    try:
        definition.check_options(options)
    except ValueError as exc:
        raise ValueError(f"Executor {name!r} of run {run_id!r}: {exc}.") from None
    return definition


def check_runner_names(definition: ExecutorDefinition, runners: set[str], *, run_id: str) -> None:
    """Raise ValueError unless every runner the executor chose is registered."""
    known = set(step_runner_names())
    missing = sorted(runners - known)
    if missing:
        raise ValueError(
            f"Executor {definition.name!r} of run {run_id!r} chose step runners "
            f"{', '.join(map(repr, missing))}, which are not registered; "
            f"the registered runners are: {', '.join(sorted(known))}."
        )


def _in_process(op: OpDefinition) -> str:
    if op.is_async:
        return "loop"
    return "process" if op.cpu_bound else "thread"


def _multiprocess(op: OpDefinition) -> str:
    return "loop" if op.is_async else "process"


register_executor(
    ExecutorDefinition(
        name=DEFAULT_EXECUTOR,
        runner_for=_in_process,
        description="async steps on the loop, sync steps in threads, cpu_bound ops in processes",
    )
)
register_executor(
    ExecutorDefinition(
        name="multiprocess",
        runner_for=_multiprocess,
        description="async steps on the loop, sync steps in forkserver worker processes",
    )
)

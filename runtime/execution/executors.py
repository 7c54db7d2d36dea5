"""Executors: a name a run asks for, mapping each of its steps to a registered StepRunner.

`in_process` (the default) runs async steps on the loop, sync steps in
threads and `@op(cpu_bound=True)` steps in worker processes; `multiprocess`
runs every sync step in worker processes; `dask` makes every step a task on
a Dask cluster (runtime.execution.dask). The wire carries the executor's
name and its options (`executor_config`); an executor checks its options
before the run starts, and a run's config may choose another
(`execution: {dask: {...}}`, or under `execution: {config: ...}` as in
Dagster). Adding one is a module that registers its runners and an
`ExecutorDefinition`; the scheduler gives every executor the same limits,
pools, retries, cancellation, log capture and events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.errors import RunConfigError
from runtime.execution.step_runner import step_runner_names, unknown_name_message

if TYPE_CHECKING:
    from collections.abc import Callable

    from runtime.definitions.graph import OpDefinition
    from runtime.execution.io_manager import IOManager

DEFAULT_EXECUTOR = "in_process"


def takes_no_options(options: Mapping[str, Any]) -> None:
    """For executors without options: raise ValueError naming any that were given."""
    if options:
        names = ", ".join(repr(name) for name in sorted(options))
        raise ValueError(f"it takes no options, got {names}")


@dataclass(frozen=True, slots=True)
class RunOutputs:
    """What an executor that picks its runs' IO manager is told: the run, its storage, its options."""

    run_id: str
    # The instance's folder for outputs, when the run has one.
    storage_dir: str | None
    parent_run_id: str | None
    options: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ExecutorDefinition:
    """An executor: the runner (by registered name) each op's steps use, and its option check.

    `check_options` raises ValueError saying what is wrong with the run's
    executor_config (the message is prefixed with the executor and the run).
    `io_manager_for`, when set, makes the IO manager of a launched run (steps
    on other machines need one they can all reach); it raises ValueError for
    storage it cannot open.
    """

    name: str
    runner_for: Callable[[OpDefinition], str]
    check_options: Callable[[Mapping[str, Any]], None] = takes_no_options
    description: str = ""
    io_manager_for: Callable[[RunOutputs], IOManager] | None = None


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


def executor_from_run_config(
    run_config: Mapping[str, Any],
    executor: str,
    executor_config: Mapping[str, Any],
    *,
    job_name: str,
) -> tuple[str, dict[str, Any]]:
    """The executor and options a run uses: its run config's `execution` choice, else the given.

    `execution: {NAME: {...}}` or `execution: {config: {NAME: {...}}}` picks
    the registered executor NAME; options for the executor already chosen
    are laid over its options. Raises RunConfigError naming the `$.execution`
    path of what is wrong (the options themselves are the executor's to check).
    """
    section = run_config.get("execution") if isinstance(run_config, Mapping) else None
    if section is None:
        return executor, dict(executor_config)
    where = f"Run config for job {job_name!r}"
    path = "$.execution"
    if isinstance(section, Mapping) and "config" in section:
        if len(section) != 1:
            others = ", ".join(repr(key) for key in section if key != "config")
            raise RunConfigError(
                f"{where}: `$.execution` has 'config' beside {others}; put the executor under "
                "one of them."
            )
        section = section["config"]
        path = "$.execution.config"
    if not isinstance(section, Mapping) or len(section) != 1:
        problem = (
            "must be a mapping"
            if not isinstance(section, Mapping)
            else ("names no executor" if not section else "names more than one executor")
        )
        raise RunConfigError(
            f"{where}: `{path}` {problem}; it names one executor with its options, e.g. "
            f"`{path}: {{dask: {{scheduler_address: tcp://host:8786}}}}` (executors: "
            f"{', '.join(executor_names())})."
        )
    name, options = next(iter(section.items()))
    if name not in _EXECUTORS:
        raise RunConfigError(
            f"{where}: "
            + unknown_name_message("executor", str(name), _EXECUTORS, where=f" at `{path}`")
        )
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise RunConfigError(
            f"{where}: `{path}.{name}` holds the options of executor {name!r}: it must be a "
            f"mapping, got {type(options).__name__}."
        )
    if name == executor:
        return name, {**executor_config, **options}
    return name, dict(options)


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


def _dask(op: OpDefinition) -> str:
    return "dask"


def _check_dask_options(options: Mapping[str, Any]) -> None:
    # Dask itself is imported only by the runner, when a run uses it.
    from runtime.execution.dask.options import check_options

    check_options(options)


def _dask_io_manager(outputs: RunOutputs) -> IOManager:
    from runtime.execution.dask.options import run_io_manager

    return run_io_manager(outputs)


register_executor(
    ExecutorDefinition(
        name="dask",
        runner_for=_dask,
        check_options=_check_dask_options,
        io_manager_for=_dask_io_manager,
        description="every step a task on a Dask cluster (pip install 'runtime[dask]')",
    )
)

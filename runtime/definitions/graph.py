"""The in-memory shape of what user code defines: ops, the steps of a job, jobs.

This is the seam between the authoring API (decorators and composition, which
build these objects) and the execution engine (which runs them). The engine
depends on this module; this module depends on nothing of the engine (see
runtime.definitions.runner for how `execute_in_process` reaches it).

How a step gets its arguments: for each entry of `StepNode.inputs` the engine
passes the upstream step's output under that parameter name; for each entry of
`StepNode.external_inputs` (asset jobs only: the upstream asset exists but is
not selected in this job) it loads the last materialized value of that asset
key from the IO manager; `context` and `config` are passed when the op asks
for them. A data parameter of an op that is in neither mapping was left
unwired in a @job and keeps its default value: do not pass it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import msgspec

    from runtime.definitions.retry import RetryPolicy
    from runtime.execution.in_process import ExecuteInProcessResult

DEFAULT_OUTPUT = "result"
ASSET_JOB_NAME = "__ASSET_JOB"


# OpDefinition, StepInput and StepNode are built once per asset or step, tens
# of thousands of times for a large location: they are plain slotted
# dataclasses because a frozen one's __init__ costs three times as much
# (object.__setattr__ per field). Treat them as immutable all the same.


@dataclass(slots=True, eq=False)
class OpDefinition:
    """A unit of user computation: an @op, or the compute of an @asset.

    `input_names` are the function's data parameters, in order; a parameter
    named `context` receives the step context and one named `config` the
    validated config struct, and neither is an input.
    """

    name: str
    fn: Callable[..., Any]
    is_async: bool
    input_names: tuple[str, ...] = ()
    wants_context: bool = False
    config_type: type[msgspec.Struct] | None = None
    pool: str | None = None
    retry_policy: RetryPolicy | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None
    # Set for assets: the asset key this op materializes.
    asset_key: str | None = None
    group_name: str = "default"
    # Assets only: upstream asset keys this asset depends on without taking
    # their value (`deps=`); ordering only.
    non_data_deps: tuple[str, ...] = ()
    # Run sync steps in a separate process when the executor allows it.
    cpu_bound: bool = False


@dataclass(slots=True)
class StepInput:
    """Where one data input of a step comes from."""

    name: str
    upstream_step: str
    upstream_output: str = DEFAULT_OUTPUT


@dataclass(slots=True, eq=False)
class StepNode:
    """One step of a job: an op placed in the graph under a unique key."""

    key: str
    op: OpDefinition
    # Data inputs, keyed by parameter name.
    inputs: Mapping[str, StepInput] = field(default_factory=dict)
    # Steps that must finish first without passing a value (asset deps=).
    after: tuple[str, ...] = ()
    # Asset jobs only: data inputs whose upstream asset is not a step of this
    # job, parameter name -> asset key; the engine loads them from the IO manager.
    external_inputs: Mapping[str, str] = field(default_factory=dict)

    @property
    def upstream_keys(self) -> tuple[str, ...]:
        """Every step this one waits for, data or ordering, without duplicates."""
        seen = dict.fromkeys(i.upstream_step for i in self.inputs.values())
        seen.update(dict.fromkeys(self.after))
        return tuple(seen)


@dataclass(eq=False)
class JobDefinition:
    """A named graph of steps. `steps` is in a topological order."""

    name: str
    steps: Mapping[str, StepNode]
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    is_asset_job: bool = False

    def downstream_of(self) -> dict[str, list[str]]:
        """Map each step key to the keys of the steps that wait for it."""
        down: dict[str, list[str]] = {key: [] for key in self.steps}
        for node in self.steps.values():
            for up in node.upstream_keys:
                down[up].append(node.key)
        return down

    def execute_in_process(
        self,
        run_config: Mapping[str, Any] | None = None,
        resources: Mapping[str, Any] | None = None,
        raise_on_error: bool = True,
        **options: Any,
    ) -> ExecuteInProcessResult:
        """Run this job in this process (for tests); see runtime.execution.in_process.execute_job_in_process."""
        from runtime.definitions.runner import in_process_runner

        return in_process_runner()(
            self, run_config, resources, raise_on_error=raise_on_error, **options
        )

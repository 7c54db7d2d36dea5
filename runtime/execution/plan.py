"""The execution plan: which steps of a job run, what each waits for, what is loaded from storage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from runtime.errors import StepSelectionError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from runtime.definitions.graph import JobDefinition, StepNode


@dataclass(frozen=True, slots=True)
class StoredInput:
    """A data input of a planned step whose value is loaded from storage, not computed in this run.

    Either `upstream_step` (an output of a step reused from a parent run or
    left out of the selection) or `asset_key` (an upstream asset that is not a
    step of the job) is set.
    """

    input_name: str
    upstream_step: str | None = None
    upstream_output: str = "result"
    asset_key: str | None = None


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """A step that runs in this plan."""

    node: StepNode
    # Steps of this plan that must finish first.
    upstream: tuple[str, ...]
    # Steps of this plan that wait for this one.
    downstream: tuple[str, ...]
    # Inputs fed by steps of this plan: parameter name -> (step key, output name).
    inputs: Mapping[str, tuple[str, str]]
    stored_inputs: tuple[StoredInput, ...]

    @property
    def key(self) -> str:
        return self.node.key


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """The steps to run, in a topological order, with their dependencies inside the plan."""

    job: JobDefinition
    steps: Mapping[str, PlannedStep]
    # Steps of the job that do not run because a parent run's outputs are reused.
    reused_steps: frozenset[str]

    @classmethod
    def build(
        cls,
        job: JobDefinition,
        *,
        step_selection: Iterable[str] | None = None,
        reused_steps: Iterable[str] = (),
    ) -> ExecutionPlan:
        """Plan a run of `job`: the selected steps (all by default) minus the reused ones.

        An input from a step that does not run is loaded from storage. Raises
        StepSelectionError naming the job and listing its steps when the
        selection or the reused steps name a step the job does not have, or
        when nothing is left to run.
        """
        reused = frozenset(reused_steps)
        _check_known(job, reused, "reused steps")
        if step_selection is None:
            selected = set(job.steps)
        else:
            selected = set(step_selection)
            _check_known(job, selected, "step selection")
        selected -= reused
        if not selected:
            raise StepSelectionError(
                f"Nothing to run in job {job.name!r}: the step selection is empty once reused steps are left out."
            )

        upstream: dict[str, tuple[str, ...]] = {}
        downstream: dict[str, list[str]] = {}
        inputs: dict[str, dict[str, tuple[str, str]]] = {}
        stored: dict[str, list[StoredInput]] = {}
        for key, node in job.steps.items():
            if key not in selected:
                continue
            downstream[key] = []
            step_inputs: dict[str, tuple[str, str]] = {}
            step_stored: list[StoredInput] = []
            for name, step_input in node.inputs.items():
                if step_input.upstream_step in selected:
                    step_inputs[name] = (step_input.upstream_step, step_input.upstream_output)
                else:
                    step_stored.append(
                        StoredInput(
                            input_name=name,
                            upstream_step=step_input.upstream_step,
                            upstream_output=step_input.upstream_output,
                        )
                    )
            for name, asset_key in node.external_inputs.items():
                step_stored.append(StoredInput(input_name=name, asset_key=asset_key))
            # Ordering-only deps on steps that do not run are already satisfied.
            upstream[key] = tuple(up for up in node.upstream_keys if up in selected)
            inputs[key] = step_inputs
            stored[key] = step_stored
        for key, ups in upstream.items():
            for up in ups:
                downstream[up].append(key)

        steps = {
            key: PlannedStep(
                node=job.steps[key],
                upstream=upstream[key],
                downstream=tuple(downstream[key]),
                inputs=inputs[key],
                stored_inputs=tuple(stored[key]),
            )
            for key in upstream
        }
        return cls(job=job, steps=steps, reused_steps=reused)


def _check_known(job: JobDefinition, keys: Iterable[str], what: str) -> None:
    unknown = sorted(key for key in keys if key not in job.steps)
    if unknown:
        existing = ", ".join(sorted(job.steps)) or "(none)"
        raise StepSelectionError(
            f"The {what} names {', '.join(map(repr, unknown))}, not a step of job {job.name!r}; "
            f"its steps are: {existing}."
        )

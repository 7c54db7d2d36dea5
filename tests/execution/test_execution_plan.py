"""ExecutionPlan: selection, reused steps, stored inputs, validation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from runtime.errors import StepSelectionError
from runtime.execution.plan import ExecutionPlan, StoredInput
from tests.execution.graph_builders import make_job, step

if TYPE_CHECKING:
    from runtime.definitions.graph import JobDefinition


def one() -> int:
    return 1


def plus(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def diamond() -> JobDefinition:
    return make_job(
        "diamond",
        step("a", one),
        step("b", plus, x="a"),
        step("c", plus, x="a"),
        step("d", add, x="b", y="c"),
    )


def test_whole_job_keeps_topological_order_and_links_both_ways() -> None:
    plan = ExecutionPlan.build(diamond())
    assert list(plan.steps) == ["a", "b", "c", "d"]
    assert plan.steps["a"].upstream == ()
    assert plan.steps["a"].downstream == ("b", "c")
    assert plan.steps["d"].upstream == ("b", "c")
    assert plan.steps["d"].inputs == {"x": ("b", "result"), "y": ("c", "result")}
    assert all(not s.stored_inputs for s in plan.steps.values())


def test_selection_loads_inputs_of_unselected_upstreams_from_storage() -> None:
    plan = ExecutionPlan.build(diamond(), step_selection=["b", "d"])
    assert list(plan.steps) == ["b", "d"]
    assert plan.steps["b"].upstream == ()
    assert plan.steps["b"].stored_inputs == (StoredInput("x", upstream_step="a"),)
    assert plan.steps["d"].upstream == ("b",)
    assert plan.steps["d"].inputs == {"x": ("b", "result")}
    assert plan.steps["d"].stored_inputs == (StoredInput("y", upstream_step="c"),)


def test_reused_steps_are_left_out_and_read_from_storage() -> None:
    plan = ExecutionPlan.build(diamond(), reused_steps=["a", "b"])
    assert list(plan.steps) == ["c", "d"]
    assert plan.reused_steps == {"a", "b"}
    assert plan.steps["c"].stored_inputs == (StoredInput("x", upstream_step="a"),)
    assert plan.steps["d"].upstream == ("c",)


def test_external_asset_inputs_and_ordering_deps_on_steps_not_run() -> None:
    job = make_job(
        "assets",
        step("a", one),
        step("b", plus, after=("a",), external={"x": "upstream_asset"}),
    )
    whole = ExecutionPlan.build(job)
    assert whole.steps["b"].upstream == ("a",)
    assert whole.steps["b"].stored_inputs == (StoredInput("x", asset_key="upstream_asset"),)
    only_b = ExecutionPlan.build(job, step_selection=["b"])
    # An ordering-only dependency on a step that does not run is already met.
    assert only_b.steps["b"].upstream == ()


def test_unknown_selected_step_lists_the_steps_of_the_job() -> None:
    with pytest.raises(StepSelectionError) as caught:
        ExecutionPlan.build(diamond(), step_selection=["b", "zz"])
    message = str(caught.value)
    assert "'zz'" in message and "'diamond'" in message and "a, b, c, d" in message


def test_unknown_reused_step_is_an_error() -> None:
    with pytest.raises(StepSelectionError, match="reused steps names 'nope'"):
        ExecutionPlan.build(diamond(), reused_steps=["nope"])


def test_nothing_left_to_run_is_an_error() -> None:
    with pytest.raises(StepSelectionError, match="Nothing to run in job 'diamond'"):
        ExecutionPlan.build(diamond(), step_selection=["a"], reused_steps=["a"])

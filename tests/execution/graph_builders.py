"""Build jobs by hand for the execution tests, and check a run's events against its plan.

The engine consumes only runtime.definitions.graph; building those objects
directly keeps these tests about the engine, not about the decorators.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from runtime.definitions.graph import JobDefinition, OpDefinition, StepInput, StepNode
from runtime.execution.plan import ExecutionPlan
from runtime.execution.scheduler import execute_plan
from runtime.protocol.messages import RUN_END_EVENTS
from runtime.protocol.run_log import ListSink

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from runtime.definitions.retry import RetryPolicy
    from runtime.protocol.messages import RunEvent
    from runtime.protocol.run_result import RunResult

_NOT_INPUTS = {"context", "config"}


def make_op(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    pool: str | None = None,
    retry_policy: RetryPolicy | None = None,
    asset_key: str | None = None,
    config_type: Any = None,
    cpu_bound: bool = False,
) -> OpDefinition:
    """An OpDefinition read from fn's signature, the way the decorators make one."""
    params = inspect.signature(fn).parameters
    return OpDefinition(
        name=name or fn.__name__,
        fn=fn,
        is_async=inspect.iscoroutinefunction(fn),
        input_names=tuple(p for p in params if p not in _NOT_INPUTS),
        wants_context="context" in params,
        config_type=config_type,
        pool=pool,
        retry_policy=retry_policy,
        asset_key=asset_key,
        cpu_bound=cpu_bound,
    )


def step(
    key: str,
    fn: Callable[..., Any] | OpDefinition,
    *,
    after: tuple[str, ...] = (),
    external: Mapping[str, str] | None = None,
    **upstream: str,
) -> StepNode:
    """A step named `key` whose parameter p receives the output of step upstream[p]."""
    op = fn if isinstance(fn, OpDefinition) else make_op(fn, name=key)
    return StepNode(
        key=key,
        op=op,
        inputs={param: StepInput(param, up) for param, up in upstream.items()},
        after=after,
        external_inputs=dict(external or {}),
    )


def make_job(name: str, *steps: StepNode) -> JobDefinition:
    """A job from steps given upstream first."""
    return JobDefinition(name=name, steps={s.key: s for s in steps})


async def run_job(
    job: JobDefinition, run_id: str = "run-1", **options: Any
) -> tuple[RunResult, list[RunEvent]]:
    """Plan and execute the whole job; return the outcome and every event, after checking them."""
    plan = ExecutionPlan.build(
        job,
        step_selection=options.pop("step_selection", None),
        reused_steps=options.pop("reused_steps", ()),
    )
    sink = ListSink()
    outcome = await execute_plan(plan, run_id=run_id, sink=sink, **options)
    check_events(plan, sink.events)
    return outcome, sink.events


def check_events(plan: ExecutionPlan, events: list[RunEvent]) -> None:
    """Assert the invariants every run's events keep, whatever happened in the run.

    Sequences are 1..n without gaps; RUN_START first and one run-end event
    last; every planned step ends exactly once (SUCCESS, FAILURE or SKIPPED);
    a step that ran started with STEP_START, and a successful one emitted
    STEP_OUTPUT before STEP_SUCCESS; a skipped step never started.
    """
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].event_type == "RUN_START"
    assert events[-1].event_type in RUN_END_EVENTS
    assert sum(e.event_type in RUN_END_EVENTS for e in events) == 1
    assert len({e.run_id for e in events}) == 1
    by_step: dict[str, list[str]] = {key: [] for key in plan.steps}
    for event in events:
        if event.step_key is not None:
            assert event.step_key in by_step, f"event for unplanned step {event.step_key!r}"
            by_step[event.step_key].append(event.event_type)
    for key, types in by_step.items():
        ends = [t for t in types if t in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED")]
        assert len(ends) == 1, f"step {key!r} ended {ends}: {types}"
        if ends[0] == "STEP_SKIPPED":
            assert types == ["STEP_SKIPPED"], f"skipped step {key!r} did more: {types}"
            continue
        assert types[0] == "STEP_START", f"step {key!r} did not begin with STEP_START: {types}"
        assert types[-1] == ends[0], f"step {key!r} emitted events after it ended: {types}"
        if ends[0] == "STEP_SUCCESS":
            assert types.count("STEP_OUTPUT") == 1
            assert types.index("STEP_OUTPUT") < types.index("STEP_SUCCESS")

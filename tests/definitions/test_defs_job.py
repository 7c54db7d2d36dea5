"""@job composition: calling ops inside the body wires the graph."""

from __future__ import annotations

from typing import Any

import pytest

from runtime import asset, job, op
from runtime.definitions.composition import current_composition
from runtime.definitions.graph import JobDefinition, StepInput
from runtime.errors import DefinitionError


@op
def extract() -> int:
    return 1


@op
async def extract_more() -> int:
    return 2


@op
def transform(n: int) -> int:
    return n * 10


@op
def combine(a: int, b: int, scale: int = 1) -> int:
    return (a + b) * scale


@op
def load(n: int, context: Any = None) -> None:
    return None


def _edges(job_def: JobDefinition) -> dict[str, dict[str, str]]:
    return {
        key: {name: i.upstream_step for name, i in node.inputs.items()}
        for key, node in job_def.steps.items()
    }


def test_chain() -> None:
    @job
    def etl() -> None:
        load(transform(extract()))

    assert isinstance(etl, JobDefinition)
    assert etl.name == "etl"
    assert list(etl.steps) == ["extract", "transform", "load"]
    assert etl.steps["transform"].inputs == {"n": StepInput("n", "extract", "result")}
    assert etl.steps["load"].inputs["n"].upstream_step == "transform"
    assert etl.steps["extract"].op is extract.op
    assert etl.is_asset_job is False
    assert etl.downstream_of() == {"extract": ["transform"], "transform": ["load"], "load": []}


def test_fan_out_and_op_used_twice() -> None:
    @job(name="fanned", description="one output, two consumers", tags={"team": "a"})
    def fan() -> None:
        value = extract()
        transform(value)
        transform(value)
        transform(n=value)

    assert fan.name == "fanned"
    assert fan.description == "one output, two consumers"
    assert fan.tags == {"team": "a"}
    assert list(fan.steps) == ["extract", "transform", "transform_2", "transform_3"]
    assert _edges(fan) == {
        "extract": {},
        "transform": {"n": "extract"},
        "transform_2": {"n": "extract"},
        "transform_3": {"n": "extract"},
    }
    assert fan.steps["transform_2"].op is transform.op


def test_fan_in_positional_and_keyword() -> None:
    @job
    def merge() -> None:
        first = extract()
        second = extract_more()
        combine(first, b=second)

    assert _edges(merge)["combine"] == {"a": "extract", "b": "extract_more"}
    # `scale` has a default and stays unwired: the engine leaves it to the function.
    assert "scale" not in merge.steps["combine"].inputs
    assert merge.steps["extract_more"].op.is_async is True


def test_step_keys_skip_names_already_taken() -> None:
    @op(name="transform_2")
    def other(n: int) -> int:
        return n

    @job
    def crowded() -> None:
        value = extract()
        transform(value)
        other(value)
        transform(value)

    assert list(crowded.steps) == ["extract", "transform", "transform_2", "transform_3"]
    assert crowded.steps["transform_2"].op is other.op
    assert crowded.steps["transform_3"].op is transform.op


def test_steps_are_in_topological_order() -> None:
    @job
    def diamond() -> None:
        root = extract()
        left = transform(root)
        right = transform(root)
        combine(left, right)

    order = list(diamond.steps)
    for key, node in diamond.steps.items():
        for upstream in node.upstream_keys:
            assert order.index(upstream) < order.index(key)


def test_unwired_required_input_names_op_param_and_job() -> None:
    with pytest.raises(DefinitionError) as info:

        @job
        def broken() -> None:
            transform()

    message = str(info.value)
    assert "'transform'" in message and "'n'" in message and "'broken'" in message


def test_plain_value_argument_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="got 5 for its input 'n'"):

        @job
        def constant() -> None:
            transform(5)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("transform(extract(), extract())", r"takes 1 input\(s\) \(n\)"),
        ("transform(m=extract())", "has no input named 'm'; its inputs are: n"),
        ("transform(extract(), n=extract())", "got two values for its input 'n'"),
        ("load(extract(), context=1)", "was passed 'context'"),
    ],
)
def test_bad_calls_are_rejected(body: str, message: str) -> None:
    namespace: dict[str, Any] = {"transform": transform, "extract": extract, "load": load}
    exec(f"def bad():\n    {body}\n", namespace)
    with pytest.raises(DefinitionError, match=message) as info:
        job(namespace["bad"])
    assert "job 'bad'" in str(info.value)


def test_output_of_another_job_is_rejected() -> None:
    leaked: list[Any] = []

    @job
    def first() -> None:
        leaked.append(extract())

    with pytest.raises(DefinitionError, match="an output recorded for another job"):

        @job
        def second() -> None:
            transform(leaked[0])


def test_job_without_ops_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="job 'empty' calls no ops"):

        @job
        def empty() -> None:
            return None


def test_async_job_body_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="job 'later' is defined by an async function"):

        @job
        async def later() -> None:
            extract()


def test_asset_called_in_job_body_is_rejected() -> None:
    @asset
    def an_asset() -> int:
        return 1

    with pytest.raises(DefinitionError, match="asset 'an_asset' was called inside the body of job"):

        @job
        def mixed() -> None:
            an_asset()


def test_nested_job_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="nested jobs"):

        @job
        def outer() -> None:
            extract()

            @job
            def inner() -> None:
                extract()


def test_recording_ends_even_when_the_body_raises() -> None:
    with pytest.raises(ZeroDivisionError):

        @job
        def explodes() -> None:
            extract()
            _ = 1 / 0

    assert current_composition() is None
    assert extract() == 1

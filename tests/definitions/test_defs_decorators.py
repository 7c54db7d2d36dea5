"""@asset and @op: every decorator form, what the signature means, direct calls."""

from __future__ import annotations

import functools
import subprocess
import sys
from typing import Any

import msgspec
import pytest

from runtime import RetryPolicy, asset, op
from runtime.definitions.asset import AssetsDefinition
from runtime.definitions.op import Op
from runtime.errors import DefinitionError


class SizeConfig(msgspec.Struct):
    size: int
    label: str = "x"


def test_bare_asset_is_keyed_by_function_name() -> None:
    @asset
    def raw_orders() -> list[int]:
        """Orders as they arrive."""
        return [1, 2]

    assert isinstance(raw_orders, AssetsDefinition)
    assert raw_orders.key == "raw_orders"
    assert raw_orders.op.asset_key == "raw_orders"
    assert raw_orders.op.is_async is False
    assert raw_orders.op.input_names == ()
    assert raw_orders.deps == ()
    assert raw_orders.op.description == "Orders as they arrive."
    assert raw_orders.group_name == "default"


def test_asset_with_every_option() -> None:
    policy = RetryPolicy(max_retries=3, delay=0.5)

    @asset
    def upstream() -> int:
        return 1

    @asset(
        name="renamed",
        deps=[upstream, "other"],
        group_name="sales",
        tags={"team": "data"},
        description="explicit",
        retry_policy=policy,
        pool="db",
    )
    def compute(first: int, context: Any) -> int:
        return first

    assert compute.key == "renamed"
    assert compute.op.name == "renamed"
    assert compute.op.input_names == ("first",)
    assert compute.op.non_data_deps == ("upstream", "other")
    assert compute.deps == ("first", "upstream", "other")
    assert compute.group_name == "sales"
    assert compute.op.tags == {"team": "data"}
    assert compute.op.description == "explicit"
    assert compute.op.retry_policy is policy
    assert compute.op.pool == "db"
    assert compute.op.wants_context is True


def test_parameter_named_after_asset_is_a_data_dependency() -> None:
    @asset
    def order_count(raw_orders: list[int]) -> int:
        return len(raw_orders)

    assert order_count.op.input_names == ("raw_orders",)
    assert order_count.deps == ("raw_orders",)

    # A data dependency listed in deps= as well is still one dependency.
    @asset(deps=["raw_orders"])
    def twice(raw_orders: list[int]) -> int:
        return len(raw_orders)

    assert twice.deps == ("raw_orders",)
    assert twice.op.non_data_deps == ()


def test_async_asset_and_op_are_detected() -> None:
    @asset
    async def fetched() -> int:
        return 1

    @op
    async def fetch() -> int:
        return 1

    assert fetched.op.is_async is True
    assert fetch.op.is_async is True


def test_context_and_config_are_not_inputs() -> None:
    @op
    def configured(context: Any, value: int, config: SizeConfig) -> int:
        return value

    assert configured.op.input_names == ("value",)
    assert configured.op.wants_context is True
    assert configured.op.config_type is SizeConfig


def test_op_with_every_option() -> None:
    policy = RetryPolicy(max_retries=2)

    @op(
        name="load_rows",
        tags={"kind": "io"},
        description="Loads.",
        retry_policy=policy,
        pool="warehouse",
        cpu_bound=True,
    )
    def load(rows: list[int], batch: int = 10) -> int:
        return len(rows)

    assert isinstance(load, Op)
    assert load.name == "load_rows"
    assert load.op.input_names == ("rows", "batch")
    assert load.required_inputs == frozenset({"rows"})
    assert load.op.tags == {"kind": "io"}
    assert load.op.description == "Loads."
    assert load.op.retry_policy is policy
    assert load.op.pool == "warehouse"
    assert load.op.cpu_bound is True
    assert load.op.asset_key is None


def test_keyword_only_parameters_are_inputs() -> None:
    @op
    def combine(a: int, *, b: int, c: int = 0) -> int:
        return a + b + c

    assert combine.op.input_names == ("a", "b", "c")
    assert combine.required_inputs == frozenset({"a", "b"})


def test_calling_outside_a_job_calls_the_function() -> None:
    @asset
    def doubled(numbers: list[int]) -> list[int]:
        return [n * 2 for n in numbers]

    @op
    def add(a: int, b: int = 1) -> int:
        return a + b

    assert doubled([1, 2]) == [2, 4]
    assert add(1) == 2
    assert add(a=1, b=5) == 6


@pytest.mark.anyio
async def test_calling_an_async_asset_returns_its_coroutine() -> None:
    @asset
    async def later() -> int:
        return 7

    assert await later() == 7


def test_callable_objects_and_partials_are_read_with_signature() -> None:
    class Loader:
        async def __call__(self, rows: list[int]) -> int:
            return len(rows)

    def scale(rows: list[int], factor: int) -> list[int]:
        return [r * factor for r in rows]

    loader = op(name="loader")(Loader())
    assert loader.op.is_async is True
    assert loader.op.input_names == ("rows",)
    scaled = asset(name="scaled")(functools.partial(scale, factor=2))
    assert scaled.op.input_names == ("rows", "factor")
    assert scaled([1]) == [2]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(*rows): pass", r"takes \*args or \*\*kwargs"),
        ("def f(**rows): pass", r"takes \*args or \*\*kwargs"),
        ("def f(a, /): pass", "positional-only"),
        ("async def f():\n    yield 1", "async generator"),
        ("def f(config): pass", "without an annotation"),
        ("def f(config: int): pass", "must be a msgspec.Struct subclass"),
        ("def f(config: 'Missing'): pass", "Cannot resolve the annotation 'Missing'"),
    ],
)
def test_bad_signatures_are_rejected(source: str, message: str) -> None:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    for decorator in (asset, op):
        with pytest.raises(DefinitionError, match=message) as info:
            decorator(namespace["f"])
        assert "'f'" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad-name"}, "asset name 'bad-name' is invalid"),
        ({"tags": {"k": 1}}, "has tag 'k': 1"),
        ({"pool": ""}, "has pool ''"),
        ({"retry_policy": 3}, "has retry_policy=3"),
        ({"deps": [3]}, "has deps entry 3"),
        ({"deps": ["no way"]}, "dependency of asset 'f'"),
        ({"group_name": "a b"}, "group name 'a b' is invalid"),
    ],
)
def test_bad_asset_options_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    def f() -> None:
        return None

    with pytest.raises(DefinitionError, match=message):
        asset(**kwargs)(f)


def test_not_a_function_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="must decorate a function"):
        op(name="x")(42)  # type: ignore[arg-type]


def test_importing_the_asset_decorator_stays_light() -> None:
    code = (
        "import sys, runtime.definitions.asset; "
        "print(','.join(m for m in ('asyncio', 'grpclib', 'msgspec', 'croniter') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

"""@op: a unit of computation that jobs wire together."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, overload

from runtime.definitions.composition import current_composition
from runtime.definitions.graph import OpDefinition
from runtime.definitions.introspect import (
    check_name,
    check_pool,
    check_retry_policy,
    check_tags,
    docstring,
    inspect_function,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from runtime.definitions.retry import RetryPolicy


class Op:
    """An @op: its OpDefinition, plus the call behaviour of the decorated function.

    Called inside a @job body it records a step and returns an output handle;
    called anywhere else it calls the function (handy in unit tests).
    """

    def __init__(self, op: OpDefinition, required_inputs: frozenset[str]) -> None:
        self.op = op
        self.required_inputs = required_inputs
        self.__name__ = op.name
        self.__doc__ = op.description
        self.__wrapped__ = op.fn

    @property
    def name(self) -> str:
        return self.op.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        composition = current_composition()
        if composition is None:
            return self.op.fn(*args, **kwargs)
        return composition.add_step(self.op, self.required_inputs, args, kwargs)

    def __repr__(self) -> str:
        return f"<op {self.op.name!r}>"


def _build_op(
    fn: Callable[..., Any],
    *,
    name: str | None,
    tags: Mapping[str, str] | None,
    description: str | None,
    retry_policy: RetryPolicy | None,
    pool: str | None,
    cpu_bound: bool,
) -> Op:
    op_name = check_name(name or getattr(fn, "__name__", None), kind="op")
    params = inspect_function(fn, kind="op", name=op_name)
    definition = OpDefinition(
        name=op_name,
        fn=fn,
        is_async=params.is_async,
        input_names=params.data_params,
        wants_context=params.wants_context,
        config_type=params.config_type,
        pool=check_pool(pool, kind="op", name=op_name),
        retry_policy=check_retry_policy(retry_policy, kind="op", name=op_name),
        tags=check_tags(tags, kind="op", name=op_name),
        description=description if description is not None else docstring(fn),
        cpu_bound=cpu_bound,
    )
    return Op(definition, params.required)


@overload
def op(fn: Callable[..., Any], /) -> Op: ...


@overload
def op(
    *,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
    retry_policy: RetryPolicy | None = None,
    pool: str | None = None,
    cpu_bound: bool = False,
) -> Callable[[Callable[..., Any]], Op]: ...


def op(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
    retry_policy: RetryPolicy | None = None,
    pool: str | None = None,
    cpu_bound: bool = False,
) -> Op | Callable[[Callable[..., Any]], Op]:
    """Define an op from a sync or async function, bare (`@op`) or with options (`@op(...)`).

    Data parameters are inputs wired in a @job body; `context` receives the step
    context and `config` (annotated with a msgspec.Struct) the validated run
    config. Raises DefinitionError for an invalid name, tags or signature.
    """

    def decorate(f: Callable[..., Any]) -> Op:
        return _build_op(
            f,
            name=name,
            tags=tags,
            description=description,
            retry_policy=retry_policy,
            pool=pool,
            cpu_bound=cpu_bound,
        )

    if fn is not None:
        return decorate(fn)
    return decorate

"""@asset: a named piece of data and the function that computes it.

Every data parameter of an asset function names an upstream asset whose value
it receives; `deps=` adds upstream assets that must be materialized first
without passing their value.
"""

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
from runtime.errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from runtime.definitions.retry import RetryPolicy


class AssetsDefinition:
    """An @asset: its key, the OpDefinition that computes it, and its upstream keys.

    Calling it calls the function directly (handy in unit tests).
    """

    def __init__(self, op: OpDefinition) -> None:
        if op.asset_key is None:
            raise DefinitionError(f"op {op.name!r} has no asset_key; it is not an asset.")
        self.op = op
        self.key: str = op.asset_key
        # Data dependencies first (in parameter order), then ordering-only ones.
        self.deps: tuple[str, ...] = tuple(dict.fromkeys((*op.input_names, *op.non_data_deps)))
        self.__name__ = self.key
        self.__doc__ = op.description
        self.__wrapped__ = op.fn

    @property
    def group_name(self) -> str:
        return self.op.group_name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        composition = current_composition()
        if composition is not None:
            raise DefinitionError(
                f"asset {self.key!r} was called inside the body of job "
                f"{composition.job_name!r}; jobs over assets are made with define_asset_job."
            )
        return self.op.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<asset {self.key!r}>"


def _dep_key(dep: object, asset_key: str) -> str:
    if isinstance(dep, AssetsDefinition):
        return dep.key
    if isinstance(dep, str):
        return check_name(dep, kind=f"dependency of asset {asset_key!r}:")
    raise DefinitionError(
        f"asset {asset_key!r} has deps entry {dep!r}; pass assets or asset keys (strings)."
    )


def _build_asset(
    fn: Callable[..., Any],
    *,
    name: str | None,
    deps: Iterable[AssetsDefinition | str] | None,
    group_name: str | None,
    tags: Mapping[str, str] | None,
    description: str | None,
    retry_policy: RetryPolicy | None,
    pool: str | None,
) -> AssetsDefinition:
    key = check_name(name or getattr(fn, "__name__", None), kind="asset")
    params = inspect_function(fn, kind="asset", name=key)
    if isinstance(deps, (str, AssetsDefinition)):
        deps = [deps]
    non_data = tuple(dict.fromkeys(_dep_key(d, key) for d in deps or ()))
    definition = OpDefinition(
        name=key,
        fn=fn,
        is_async=params.is_async,
        input_names=params.data_params,
        wants_context=params.wants_context,
        config_type=params.config_type,
        pool=check_pool(pool, kind="asset", name=key),
        retry_policy=check_retry_policy(retry_policy, kind="asset", name=key),
        tags=check_tags(tags, kind="asset", name=key),
        description=description if description is not None else docstring(fn),
        asset_key=key,
        group_name=check_name(group_name, kind="group") if group_name else "default",
        non_data_deps=tuple(d for d in non_data if d not in params.data_params),
    )
    return AssetsDefinition(definition)


@overload
def asset(fn: Callable[..., Any], /) -> AssetsDefinition: ...


@overload
def asset(
    *,
    name: str | None = None,
    deps: Iterable[AssetsDefinition | str] | None = None,
    group_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
    retry_policy: RetryPolicy | None = None,
    pool: str | None = None,
) -> Callable[[Callable[..., Any]], AssetsDefinition]: ...


def asset(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    deps: Iterable[AssetsDefinition | str] | None = None,
    group_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
    retry_policy: RetryPolicy | None = None,
    pool: str | None = None,
) -> AssetsDefinition | Callable[[Callable[..., Any]], AssetsDefinition]:
    """Define an asset from a sync or async function, bare (`@asset`) or with options.

    The key is `name` or the function's name. Each data parameter depends on
    the asset of that name; `deps=` lists assets (or keys) to run first without
    taking their value; `context` and `config` work as for ops. Unknown keys and
    cycles are found when the asset is put into Definitions. Raises
    DefinitionError for an invalid name, tags, deps or signature.
    """

    def decorate(f: Callable[..., Any]) -> AssetsDefinition:
        return _build_asset(
            f,
            name=name,
            deps=deps,
            group_name=group_name,
            tags=tags,
            description=description,
            retry_policy=retry_policy,
            pool=pool,
        )

    if fn is not None:
        return decorate(fn)
    return decorate

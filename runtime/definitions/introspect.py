"""Read what a step function asks for: data parameters, `context`, `config`, sync or async.

Decorating thousands of assets must be cheap, so plain functions are read from
their code object directly; `inspect.signature` is only the fallback for other
callables (partials, callable objects). The `config` annotation is resolved
only when a function has such a parameter, so msgspec is imported only then.
"""

from __future__ import annotations

import inspect
import re
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.definitions.retry import RetryPolicy
from runtime.errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import msgspec

CONTEXT_PARAM = "context"
CONFIG_PARAM = "config"

_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")

_NOTHING: frozenset[str] = frozenset()

_VARARGS = 0x04
_VARKEYWORDS = 0x08


@dataclass(slots=True)  # not frozen: built per asset, and frozen __init__ is slow
class FunctionParams:
    """What a step function's signature asks for."""

    # Parameters that receive values from upstream steps, in order.
    data_params: tuple[str, ...]
    # Data parameters that have no default value.
    required: frozenset[str]
    wants_context: bool
    # The validated `config` struct type, when the function takes `config`.
    config_type: type[msgspec.Struct] | None
    is_async: bool


def short_repr(value: object, limit: int = 120) -> str:
    """repr for error messages: jobs by name, anything else cut to `limit` characters."""
    from runtime.definitions.graph import JobDefinition

    if isinstance(value, JobDefinition):
        return f"<job {value.name!r}>"
    if isinstance(value, (list, tuple)):
        text = ", ".join(short_repr(item, limit) for item in value)
        text = f"[{text}]" if isinstance(value, list) else f"({text})"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_name(name: object, *, kind: str) -> str:
    """Return `name` if it is a valid definition name, else raise DefinitionError."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise DefinitionError(
            f"{kind} name {name!r} is invalid: use letters, digits and underscores only."
        )
    return name


def check_tags(tags: Mapping[str, str] | None, *, kind: str, name: str) -> dict[str, str]:
    """Return a copy of `tags` after checking keys and values are strings."""
    if not tags:
        return {}
    checked: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise DefinitionError(
                f"{kind} {name!r} has tag {key!r}: {value!r}; tag keys and values must be strings."
            )
        checked[key] = value
    return checked


def check_pool(pool: object, *, kind: str, name: str) -> str | None:
    """Return `pool` if it is None or a non-empty string, else raise DefinitionError."""
    if pool is None or (isinstance(pool, str) and pool):
        return pool
    raise DefinitionError(f"{kind} {name!r} has pool {pool!r}; a pool is a non-empty string.")


def check_retry_policy(policy: object, *, kind: str, name: str) -> RetryPolicy | None:
    """Return `policy` if it is None or a RetryPolicy, else raise DefinitionError."""
    if policy is None or isinstance(policy, RetryPolicy):
        return policy
    raise DefinitionError(
        f"{kind} {name!r} has retry_policy={policy!r}; pass a runtime.RetryPolicy."
    )


def docstring(fn: Callable[..., Any]) -> str | None:
    """The function's docstring, stripped, or None."""
    doc = getattr(fn, "__doc__", None)
    return (doc.strip() or None) if isinstance(doc, str) else None


def inspect_function(fn: Callable[..., Any], *, kind: str, name: str) -> FunctionParams:
    """Read `fn`'s parameters. Raises DefinitionError for *args, **kwargs,
    positional-only parameters, async generators, or a bad `config` annotation."""
    if isinstance(fn, types.FunctionType):
        names, defaulted, is_async = _from_code(fn, kind=kind, name=name)
    elif callable(fn):
        names, defaulted, is_async = _from_signature(fn, kind=kind, name=name)
    else:
        raise DefinitionError(f"{kind} {name!r} must decorate a function, got {fn!r}.")
    wants_context = CONTEXT_PARAM in names
    has_config = CONFIG_PARAM in names
    data = names
    if wants_context or has_config:
        data = tuple(p for p in names if p != CONTEXT_PARAM and p != CONFIG_PARAM)
    required = _NOTHING
    if data:
        required = frozenset(data).difference(defaulted) if defaulted else frozenset(data)
    return FunctionParams(
        data_params=data,
        required=required,
        wants_context=wants_context,
        config_type=_config_type(fn, kind=kind, name=name) if has_config else None,
        is_async=is_async,
    )


def _from_code(
    fn: types.FunctionType, *, kind: str, name: str
) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    # (parameter names, those with a default, is async) straight from the code
    # object: several times cheaper than inspect.signature.
    code = fn.__code__
    flags = code.co_flags
    if flags & (_VARARGS | _VARKEYWORDS):
        raise DefinitionError(
            f"{kind} {name!r} takes *args or **kwargs; step functions need named parameters."
        )
    if code.co_posonlyargcount:
        raise DefinitionError(
            f"{kind} {name!r} has positional-only parameters; inputs are passed by name."
        )
    if flags & inspect.CO_ASYNC_GENERATOR:
        raise DefinitionError(
            f"{kind} {name!r} is an async generator; step functions must return their value."
        )
    n_positional = code.co_argcount
    names = code.co_varnames[: n_positional + code.co_kwonlyargcount]
    defaulted: tuple[str, ...] = ()
    if fn.__defaults__:
        defaulted = names[n_positional - len(fn.__defaults__) : n_positional]
    if fn.__kwdefaults__:
        defaulted = (*defaulted, *fn.__kwdefaults__)
    return names, defaulted, bool(flags & inspect.CO_COROUTINE)


def _from_signature(
    fn: Callable[..., Any], *, kind: str, name: str
) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise DefinitionError(f"Cannot read the parameters of {kind} {name!r}: {exc}.") from exc
    names: list[str] = []
    defaulted: list[str] = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise DefinitionError(
                f"{kind} {name!r} takes *args or **kwargs; step functions need named parameters."
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise DefinitionError(
                f"{kind} {name!r} has positional-only parameters; inputs are passed by name."
            )
        names.append(param.name)
        if param.default is not param.empty:
            defaulted.append(param.name)
    # A callable object is async when its __call__ is.
    call = type(fn).__call__ if not inspect.isroutine(fn) else None
    if inspect.isasyncgenfunction(fn) or inspect.isasyncgenfunction(call):
        raise DefinitionError(
            f"{kind} {name!r} is an async generator; step functions must return their value."
        )
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)
    return tuple(names), tuple(defaulted), is_async


def _config_type(fn: Callable[..., Any], *, kind: str, name: str) -> type[msgspec.Struct]:
    import msgspec

    annotations: dict[str, Any] = getattr(inspect.unwrap(fn), "__annotations__", {})
    annotation = annotations.get(CONFIG_PARAM)
    if annotation is None:
        raise DefinitionError(
            f"{kind} {name!r} takes `config` without an annotation; "
            "annotate it with a msgspec.Struct subclass."
        )
    # The way typing.get_type_hints resolves string annotations, for this one
    # only; twice for a quoted annotation under `from __future__ import annotations`.
    namespace = getattr(inspect.unwrap(fn), "__globals__", {})
    for _ in range(2):
        if not isinstance(annotation, str):
            break
        try:
            annotation = eval(annotation, namespace)
        except Exception as exc:
            raise DefinitionError(
                f"Cannot resolve the annotation {annotation!r} of `config` in {kind} {name!r}: "
                f"{type(exc).__name__}: {exc}. Define the config class at module level."
            ) from exc
    if not (isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)):
        raise DefinitionError(
            f"{kind} {name!r} annotates `config` with {annotation!r}; "
            "it must be a msgspec.Struct subclass."
        )
    return annotation

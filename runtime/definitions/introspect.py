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

_VARARGS = 0x04
_VARKEYWORDS = 0x08


@dataclass(frozen=True, slots=True)
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
    if not callable(fn):
        raise DefinitionError(f"{kind} {name!r} must decorate a function, got {fn!r}.")
    if isinstance(fn, types.FunctionType):
        params, is_async = _from_code(fn, kind=kind, name=name)
    else:
        params, is_async = _from_signature(fn, kind=kind, name=name)
    if inspect.isasyncgenfunction(fn):
        raise DefinitionError(
            f"{kind} {name!r} is an async generator; step functions must return their value."
        )
    data: list[str] = []
    required: set[str] = set()
    wants_context = False
    has_config = False
    for param, has_default in params:
        if param == CONTEXT_PARAM:
            wants_context = True
        elif param == CONFIG_PARAM:
            has_config = True
        else:
            data.append(param)
            if not has_default:
                required.add(param)
    config_type = _config_type(fn, kind=kind, name=name) if has_config else None
    return FunctionParams(
        data_params=tuple(data),
        required=frozenset(required),
        wants_context=wants_context,
        config_type=config_type,
        is_async=is_async,
    )


def _from_code(
    fn: types.FunctionType, *, kind: str, name: str
) -> tuple[list[tuple[str, bool]], bool]:
    code = fn.__code__
    if code.co_flags & (_VARARGS | _VARKEYWORDS):
        raise DefinitionError(
            f"{kind} {name!r} takes *args or **kwargs; step functions need named parameters."
        )
    if code.co_posonlyargcount:
        raise DefinitionError(
            f"{kind} {name!r} has positional-only parameters; inputs are passed by name."
        )
    positional = code.co_varnames[: code.co_argcount]
    keyword_only = code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
    n_defaults = len(fn.__defaults__ or ())
    first_default = len(positional) - n_defaults
    kw_defaults = fn.__kwdefaults__ or {}
    params = [(p, i >= first_default) for i, p in enumerate(positional)]
    params.extend((p, p in kw_defaults) for p in keyword_only)
    return params, bool(code.co_flags & inspect.CO_COROUTINE)


def _from_signature(
    fn: Callable[..., Any], *, kind: str, name: str
) -> tuple[list[tuple[str, bool]], bool]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise DefinitionError(f"Cannot read the parameters of {kind} {name!r}: {exc}.") from exc
    params: list[tuple[str, bool]] = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise DefinitionError(
                f"{kind} {name!r} takes *args or **kwargs; step functions need named parameters."
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise DefinitionError(
                f"{kind} {name!r} has positional-only parameters; inputs are passed by name."
            )
        params.append((param.name, param.default is not param.empty))
    # A callable object is async when its __call__ is.
    call = type(fn).__call__ if not inspect.isroutine(fn) else None
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)
    return params, is_async


def _config_type(fn: Callable[..., Any], *, kind: str, name: str) -> type[msgspec.Struct]:
    import msgspec

    annotations: dict[str, Any] = getattr(inspect.unwrap(fn), "__annotations__", {})
    annotation = annotations.get(CONFIG_PARAM)
    if annotation is None:
        raise DefinitionError(
            f"{kind} {name!r} takes `config` without an annotation; "
            "annotate it with a msgspec.Struct subclass."
        )
    if isinstance(annotation, str):
        # The way typing.get_type_hints resolves string annotations, for this one only.
        namespace = getattr(inspect.unwrap(fn), "__globals__", {})
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

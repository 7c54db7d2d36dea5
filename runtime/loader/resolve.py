"""Find the one repository a loaded module defines.

The rules: an `attribute` picks one object; otherwise exactly one top-level
Definitions, else exactly one @repository. Every error names where it looked
and what it found there.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, cast

from runtime.errors import LoadError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from runtime.definitions.repository import RepositoryDefinition

_WHAT_WE_LOAD = "a Definitions object, a @repository, or a function without arguments returning one"


def _classes() -> tuple[type[Any], type[Any]]:
    from runtime.definitions.definitions import Definitions
    from runtime.definitions.repository import RepositoryDefinition

    return Definitions, RepositoryDefinition


def _named(namespace: Mapping[str, object], cls: type[Any]) -> dict[int, list[str]]:
    """Objects of cls at top level: id -> the names bound to it (aliases count once)."""
    found: dict[int, list[str]] = {}
    for name, value in namespace.items():
        if isinstance(value, cls) and not name.startswith("__"):
            found.setdefault(id(value), []).append(name)
    return found


def _listing(found: dict[int, list[str]]) -> str:
    return ", ".join(" = ".join(names) for names in found.values())


def _first(namespace: Mapping[str, object], found: dict[int, list[str]]) -> object:
    return namespace[next(iter(found.values()))[0]]


def resolve_repository(
    namespace: Mapping[str, object], *, where: str, attribute: str | None = None
) -> RepositoryDefinition:
    """The repository that `namespace` (a module's globals, described by `where`) defines.

    Raises LoadError naming `where` when there is none, more than one, or the
    attribute is missing, of the wrong type, or a function needing arguments.
    """
    definitions_cls, repository_cls = _classes()
    if attribute is not None:
        if attribute not in namespace:
            known = [
                name
                for name, value in namespace.items()
                if isinstance(value, (definitions_cls, repository_cls))
            ]
            found = f"; it defines {', '.join(known)}" if known else ""
            raise LoadError(f"{where} has no attribute {attribute!r}{found}.")
        return coerce_to_repository(
            namespace[attribute], what=f"Attribute {attribute!r} of {where}"
        )

    definitions = _named(namespace, definitions_cls)
    if len(definitions) == 1:
        return coerce_to_repository(_first(namespace, definitions), what=where)
    if len(definitions) > 1:
        raise LoadError(
            f"{where} defines {len(definitions)} Definitions objects at top level "
            f"({_listing(definitions)}); a code location must hold exactly one. "
            "Keep one, or pick one with an attribute (--attribute NAME)."
        )
    repositories = _named(namespace, repository_cls)
    if len(repositories) == 1:
        return coerce_to_repository(_first(namespace, repositories), what=where)
    if len(repositories) > 1:
        raise LoadError(
            f"{where} defines no Definitions but {len(repositories)} repositories "
            f"({_listing(repositories)}); pick one with an attribute (--attribute NAME)."
        )
    raise LoadError(
        f"{where} defines nothing loadable: the loader looked for one top-level Definitions "
        "object (e.g. `defs = Definitions(assets=[...])`) and then for @repository functions, "
        "and found neither."
    )


def coerce_to_repository(value: object, *, what: str) -> RepositoryDefinition:
    """value as a repository: Definitions -> its repository; a no-argument function -> called.

    Raises LoadError saying what `what` is when it cannot be one.
    """
    definitions_cls, repository_cls = _classes()
    if isinstance(value, definitions_cls):
        repository: RepositoryDefinition = value.get_repository()
        return repository
    if isinstance(value, repository_cls):
        return cast("RepositoryDefinition", value)
    if callable(value) and not isinstance(value, type):
        required = _required_parameters(value)
        if required:
            raise LoadError(
                f"{what} is a function that needs arguments ({', '.join(required)}); "
                f"the loader can only call a function without arguments. Expected {_WHAT_WE_LOAD}."
            )
        result = value()
        if isinstance(result, (definitions_cls, repository_cls)):
            return coerce_to_repository(result, what=what)
        raise LoadError(
            f"{what} is a function that returned a {type(result).__name__}; expected it to "
            "return Definitions or a repository."
        )
    raise LoadError(f"{what} is a {type(value).__name__}; expected {_WHAT_WE_LOAD}.")


def _required_parameters(fn: Any) -> list[str]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [
        name
        for name, param in signature.parameters.items()
        if param.default is inspect.Parameter.empty
        and param.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]

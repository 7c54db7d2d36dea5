"""@job: compose ops into a graph by calling them inside the decorated function."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, overload

from runtime.definitions.composition import composing
from runtime.definitions.graph import JobDefinition
from runtime.definitions.introspect import check_name, check_tags, docstring
from runtime.errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def _build_job(
    fn: Callable[..., Any],
    *,
    name: str | None,
    description: str | None,
    tags: Mapping[str, str] | None,
) -> JobDefinition:
    job_name = check_name(name or getattr(fn, "__name__", None), kind="job")
    with composing(job_name) as composition:
        # Run the body once: each op call records a step and wires its inputs.
        returned = fn()
    if inspect.iscoroutine(returned):
        returned.close()
        raise DefinitionError(
            f"job {job_name!r} is defined by an async function; the body of a @job is a plain "
            "function that calls ops (the ops themselves may be async)."
        )
    if not composition.steps:
        raise DefinitionError(f"job {job_name!r} calls no ops; a job needs at least one step.")
    return JobDefinition(
        name=job_name,
        steps=composition.steps,
        description=description if description is not None else docstring(fn),
        tags=check_tags(tags, kind="job", name=job_name),
    )


@overload
def job(fn: Callable[..., Any], /) -> JobDefinition: ...


@overload
def job(
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Callable[[Callable[..., Any]], JobDefinition]: ...


def job(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> JobDefinition | Callable[[Callable[..., Any]], JobDefinition]:
    """Define a job by composition, bare (`@job`) or with options (`@job(name=...)`).

    The function runs once, now: calling an op inside it adds a step and returns
    that step's output, and passing outputs as arguments wires the edges. An op
    used twice gets the step keys `name`, `name_2`, ... Raises DefinitionError
    when an op input without a default is left unwired, for a non-output
    argument, or for a job that calls no op.
    """

    def decorate(f: Callable[..., Any]) -> JobDefinition:
        return _build_job(f, name=name, description=description, tags=tags)

    if fn is not None:
        return decorate(fn)
    return decorate

"""Recording a @job body: while it runs, calling an op adds a step and returns an output handle.

The body runs once, at decoration time. A context variable says whether a body
is being recorded, so an op called anywhere else simply calls its function.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from runtime.definitions.graph import DEFAULT_OUTPUT, StepInput, StepNode
from runtime.definitions.introspect import short_repr
from runtime.errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from runtime.definitions.graph import OpDefinition


class OutputHandle:
    """What calling an op inside a @job body returns: a reference to that step's output."""

    __slots__ = ("_composition", "output_name", "step_key")

    def __init__(self, composition: Composition, step_key: str, output_name: str) -> None:
        self._composition = composition
        self.step_key = step_key
        self.output_name = output_name

    def __repr__(self) -> str:
        return f"<output {self.output_name!r} of step {self.step_key!r}>"


class Composition:
    """The steps recorded so far for one job, in call order (a topological order)."""

    def __init__(self, job_name: str) -> None:
        self.job_name = job_name
        self.steps: dict[str, StepNode] = {}

    def add_step(
        self,
        op: OpDefinition,
        required: frozenset[str],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> OutputHandle:
        """Place `op` as a new step wired to the handles in args/kwargs; return its output."""
        where = f"op {op.name!r} in job {self.job_name!r}"
        bound = self._bind(op, args, kwargs, where)
        inputs: dict[str, StepInput] = {}
        for param in op.input_names:
            if param not in bound:
                if param in required:
                    raise DefinitionError(
                        f"{where} has no value for its input {param!r}: pass it the output "
                        "of another op, or give the parameter a default."
                    )
                continue
            value = bound[param]
            if not isinstance(value, OutputHandle):
                raise DefinitionError(
                    f"{where} got {short_repr(value)} for its input {param!r}; inside a @job body, "
                    "inputs must be outputs of other ops (use config for constant values)."
                )
            if value._composition is not self:
                raise DefinitionError(
                    f"{where} got {short_repr(value)} for its input {param!r}, "
                    "an output recorded for another job."
                )
            inputs[param] = StepInput(param, value.step_key, value.output_name)
        key = self._free_key(op.name)
        self.steps[key] = StepNode(key=key, op=op, inputs=inputs)
        return OutputHandle(self, key, DEFAULT_OUTPUT)

    def _bind(
        self, op: OpDefinition, args: tuple[Any, ...], kwargs: dict[str, Any], where: str
    ) -> dict[str, Any]:
        names = op.input_names
        if len(args) > len(names):
            raise DefinitionError(
                f"{where} takes {len(names)} input(s) ({', '.join(names) or 'none'}) "
                f"but was called with {len(args)} positional argument(s)."
            )
        bound = dict(zip(names, args, strict=False))
        for param, value in kwargs.items():
            if param not in names:
                if param in ("context", "config"):
                    raise DefinitionError(
                        f"{where} was passed {param!r}; the runtime provides it when the step runs."
                    )
                raise DefinitionError(
                    f"{where} has no input named {param!r}; "
                    f"its inputs are: {', '.join(names) or 'none'}."
                )
            if param in bound:
                raise DefinitionError(f"{where} got two values for its input {param!r}.")
            bound[param] = value
        return bound

    def _free_key(self, name: str) -> str:
        if name not in self.steps:
            return name
        n = 2
        while f"{name}_{n}" in self.steps:
            n += 1
        return f"{name}_{n}"


_current: ContextVar[Composition | None] = ContextVar("runtime_job_composition", default=None)


def current_composition() -> Composition | None:
    """The job body being recorded in this context, if any."""
    return _current.get()


@contextmanager
def composing(job_name: str) -> Iterator[Composition]:
    """Record ops called inside the block as the steps of job `job_name`."""
    if _current.get() is not None:
        raise DefinitionError(
            f"job {job_name!r} is being defined inside the body of another job; "
            "nested jobs are not supported."
        )
    composition = Composition(job_name)
    token = _current.set(composition)
    try:
        yield composition
    finally:
        _current.reset(token)

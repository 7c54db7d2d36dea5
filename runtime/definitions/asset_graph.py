"""The graph of a set of assets: checked once, ordered once, and cut into asset jobs."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from runtime.definitions.asset import AssetsDefinition
from runtime.definitions.graph import JobDefinition, StepInput, StepNode
from runtime.definitions.introspect import short_repr
from runtime.errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def closest(name: str, candidates: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest candidate, or '' when none is close."""
    import difflib  # only on the error path

    match = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


class AssetGraph:
    """Assets by key, checked for duplicate keys, unknown dependencies and cycles.

    `where` names the container in error messages (e.g. "Definitions").
    Raises DefinitionError when a check fails.
    """

    def __init__(self, assets: Iterable[object], *, where: str) -> None:
        self.where = where
        self.by_key: dict[str, AssetsDefinition] = {}
        for item in assets:
            if not isinstance(item, AssetsDefinition):
                raise DefinitionError(
                    f"{where} got {short_repr(item)} in its assets; pass objects made with @asset."
                )
            existing = self.by_key.get(item.key)
            if existing is item:
                continue
            if existing is not None:
                raise DefinitionError(
                    f"{where} has two different assets with the key {item.key!r} "
                    f"(functions {_qualname(existing)} and {_qualname(item)})."
                )
            self.by_key[item.key] = item
        self._check_dependencies()
        # Upstream before downstream; ties keep definition order.
        self.order: list[str] = self._topological_order()

    def _check_dependencies(self) -> None:
        for asset in self.by_key.values():
            for dep in asset.deps:
                if dep not in self.by_key:
                    raise DefinitionError(
                        f"asset {asset.key!r} depends on {dep!r}, which is not an asset of "
                        f"{self.where}{closest(dep, self.by_key)}."
                    )

    def _topological_order(self) -> list[str]:
        # Iterative depth-first search: a chain of 10,000 assets must not hit
        # the recursion limit. A dependency met while still on the stack closes a cycle.
        order: list[str] = []
        done: set[str] = set()
        on_stack: dict[str, int] = {}
        for root in self.by_key:
            if root in done:
                continue
            stack = [(root, iter(self.by_key[root].deps))]
            on_stack[root] = 0
            while stack:
                key, deps = stack[-1]
                for dep in deps:
                    if dep in done:
                        continue
                    if dep in on_stack:
                        raise DefinitionError(self._cycle_message(stack, on_stack[dep]))
                    on_stack[dep] = len(stack)
                    stack.append((dep, iter(self.by_key[dep].deps)))
                    break
                else:
                    stack.pop()
                    del on_stack[key]
                    done.add(key)
                    order.append(key)
        return order

    def _cycle_message(self, stack: Sequence[tuple[str, object]], start: int) -> str:
        # The stack runs downstream -> upstream; show the cycle the way data flows.
        keys = [key for key, _ in stack[start:]][::-1]
        path = " -> ".join([*keys, keys[0]])
        return f"The assets of {self.where} form a cycle: {path} (each feeds the next)."

    def check_selection(self, job_name: str, keys: Iterable[str]) -> None:
        """Raise DefinitionError naming the job and the first selected key that is not an asset."""
        for key in keys:
            if key not in self.by_key:
                raise DefinitionError(
                    f"asset job {job_name!r} selects {key!r}, which is not an asset of "
                    f"{self.where}{closest(key, self.by_key)}."
                )

    def build_job(
        self,
        name: str,
        selection: Collection[str] | None = None,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> JobDefinition:
        """A job with one step per selected asset (all when selection is None), keyed by asset key.

        A data input whose upstream asset is not selected goes to
        StepNode.external_inputs; an unselected ordering-only dep is dropped.
        """
        selected: Collection[str]
        if selection is None:
            selected = self.by_key
        else:
            self.check_selection(name, selection)
            selected = set(selection)
        steps: dict[str, StepNode] = {}
        by_key = self.by_key
        for key in self.order:
            if key not in selected:
                continue
            op = by_key[key].op
            # Most assets of a big graph have few inputs: share one empty mapping.
            inputs: Mapping[str, StepInput] = _EMPTY
            external: Mapping[str, str] = _EMPTY
            if op.input_names:
                inputs = {p: StepInput(p, p) for p in op.input_names if p in selected}
                external = {p: p for p in op.input_names if p not in selected}
            after = tuple(d for d in op.non_data_deps if d in selected) if op.non_data_deps else ()
            steps[key] = StepNode(key, op, inputs, after, external)
        return JobDefinition(
            name=name,
            steps=steps,
            description=description,
            tags=dict(tags or {}),
            is_asset_job=True,
        )


def _qualname(asset: AssetsDefinition) -> str:
    fn = asset.op.fn
    module = getattr(fn, "__module__", "?")
    return f"{module}.{getattr(fn, '__qualname__', repr(fn))}"

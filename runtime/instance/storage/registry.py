"""The storage registry: a storage kind's name -> its instance.yaml options and its factory.

instance.yaml chooses a storage as `storage: {<kind>: {<options>}}`. The kind's
options are validated against its config Struct, and its factory builds the
(unopened) RunStorage from the instance's home and those options. A backend
is a module defining `STORAGE_KIND`, listed in BUILTIN_STORAGES below; the
module is imported only when its kind is chosen, so a backend's driver costs
nothing to instances that do not use it.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from runtime.instance.storage.base import RunStorage

C = TypeVar("C")

# Adding a backend: a module defining STORAGE_KIND, and one line here.
BUILTIN_STORAGES: dict[str, str] = {
    "sqlite": "runtime.instance.storage.sqlite_kind",
    "postgres": "runtime.instance.storage.postgres_kind",
}

# Backends that are planned but not written yet: choosing one is an error saying so.
PLANNED_STORAGES: dict[str, str] = {}

DEFAULT_STORAGE = "sqlite"


@dataclass(frozen=True)
class StorageKind(Generic[C]):
    """One kind of storage: its name in instance.yaml, its options Struct, its factory.

    `open(home, options)` builds the RunStorage, not yet opened; it must not
    touch the disk or the network (Instance.open does that, through the storage).
    """

    name: str
    title: str
    config_type: type[C]
    open: Callable[[Path, C], RunStorage]


class StorageRegistry:
    """The storage kinds an instance may choose from: the built-in ones, plus any registered.

    Each Instance holds its own registry (default: `StorageRegistry()`), so
    registering a kind (tests, an embedding service's own backend) changes no
    global state.
    """

    def __init__(
        self,
        kinds: Mapping[str, str] | None = None,
        *,
        planned: Mapping[str, str] | None = None,
    ) -> None:
        self._modules: dict[str, str] = dict(BUILTIN_STORAGES if kinds is None else kinds)
        self._planned: dict[str, str] = dict(PLANNED_STORAGES if planned is None else planned)
        self._loaded: dict[str, StorageKind[Any]] = {}

    def register(self, kind: StorageKind[Any]) -> None:
        """Add (or replace) a storage kind."""
        self._loaded[kind.name] = kind
        self._modules.pop(kind.name, None)
        self._planned.pop(kind.name, None)

    @property
    def names(self) -> list[str]:
        """The kinds that can be chosen, sorted."""
        return sorted({*self._modules, *self._loaded})

    @property
    def all_names(self) -> list[str]:
        """The kinds that can be chosen, then the planned ones."""
        return self.names + sorted(set(self._planned) - set(self.names))

    def planned_title(self, name: str) -> str | None:
        """What a planned, not yet available kind is (`PostgreSQL storage`), else None."""
        return self._planned.get(name)

    def get(self, name: str) -> StorageKind[Any] | None:
        """The kind by that name (importing its module on first use), or None if unknown."""
        kind = self._loaded.get(name)
        if kind is not None:
            return kind
        module_name = self._modules.get(name)
        if module_name is None:
            return None
        kind = importlib.import_module(module_name).STORAGE_KIND
        if not isinstance(kind, StorageKind) or kind.name != name:
            raise TypeError(f"{module_name}.STORAGE_KIND must be the StorageKind named {name!r}.")
        self._loaded[name] = kind
        return kind

    def explain_unknown(self, name: str) -> str:
        """A sentence for a kind nobody registered: the closest known one and the list."""
        close = difflib.get_close_matches(name, self.all_names, n=1)
        known = ", ".join(f"`{known}`" for known in self.names)
        hint = f"did you mean `{close[0]}`? " if close else ""
        return f"there is no storage `{name}`; {hint}the known storages are {known}."

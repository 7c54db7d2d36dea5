"""load_assets_from_modules: gather the assets defined at the top level of modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.definitions.asset import AssetsDefinition
from runtime.errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import ModuleType


def load_assets_from_modules(modules: Iterable[ModuleType]) -> list[AssetsDefinition]:
    """Every asset object bound at the top level of `modules`, each once, in module order.

    An asset imported into several of the modules counts once. Raises
    DefinitionError when two different assets share a key (naming both
    modules) or when an entry is not a module.
    """
    found: dict[str, tuple[AssetsDefinition, str]] = {}
    for module in modules:
        namespace = getattr(module, "__dict__", None)
        module_name = getattr(module, "__name__", None)
        if not isinstance(namespace, dict) or not isinstance(module_name, str):
            raise DefinitionError(
                f"load_assets_from_modules got {module!r}; pass imported modules."
            )
        for value in list(namespace.values()):
            if not isinstance(value, AssetsDefinition):
                continue
            seen = found.get(value.key)
            if seen is None:
                found[value.key] = (value, module_name)
            elif seen[0] is not value:
                raise DefinitionError(
                    f"Two different assets have the key {value.key!r}: one in module "
                    f"{seen[1]!r}, one in module {module_name!r}."
                )
    return [asset for asset, _ in found.values()]

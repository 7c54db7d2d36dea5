"""load_assets_from_modules over real module files written to tmp_path."""

from __future__ import annotations

import importlib
import textwrap
from typing import TYPE_CHECKING

import pytest

from runtime import Definitions, load_assets_from_modules
from runtime.errors import DefinitionError

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType


def _write(root: Path, relative: str, source: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


def _import(name: str) -> ModuleType:
    importlib.invalidate_caches()
    return importlib.import_module(name)


def test_assets_from_submodules(package: Path) -> None:
    _write(package, "shop/__init__.py", "")
    _write(
        package,
        "shop/raw.py",
        """
        from runtime import asset

        @asset
        def orders():
            return [1, 2]

        @asset
        async def customers():
            return ["a"]

        def helper():
            return None

        NOT_AN_ASSET = 3
        """,
    )
    _write(
        package,
        "shop/reports.py",
        """
        from runtime import asset
        from shop.raw import orders

        @asset
        def order_count(orders):
            return len(orders)
        """,
    )
    raw = _import("shop.raw")
    reports = _import("shop.reports")
    assets = load_assets_from_modules([raw, reports])
    # `orders` is imported into reports too; it counts once.
    assert [a.key for a in assets] == ["orders", "customers", "order_count"]
    defs = Definitions(assets=assets)
    assert defs.get_job("__ASSET_JOB").steps["order_count"].inputs["orders"].upstream_step == (
        "orders"
    )


def test_two_assets_with_one_key_name_both_modules(package: Path) -> None:
    for name in ("left", "right"):
        _write(
            package,
            f"{name}.py",
            """
            from runtime import asset

            @asset
            def shared():
                return 1
            """,
        )
    with pytest.raises(DefinitionError) as info:
        load_assets_from_modules([_import("left"), _import("right")])
    message = str(info.value)
    assert "'shared'" in message and "'left'" in message and "'right'" in message


def test_not_a_module() -> None:
    with pytest.raises(DefinitionError, match="pass imported modules"):
        load_assets_from_modules(["shop.raw"])  # type: ignore[list-item]

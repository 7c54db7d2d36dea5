"""The subsystems import one way (DESIGN.md, Layering): checked on the source, call-time imports included.

Imports under `if TYPE_CHECKING:` are annotations only and are not counted.
The import-linter contracts of pyproject.toml cover the whole package; the
rules below are the stricter ones of the engine side (a loader that needs
only the definitions, an engine that knows no code server).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "runtime"

# Modules of the package's root that any subsystem may use.
BASE = {"errors", "gc_pause", "version"}

# Subsystem -> the other subsystems it may import.
ALLOWED: dict[str, set[str]] = {
    "protocol": set(),
    "definitions": set(),
    "loader": {"definitions"},
    "execution": {"definitions", "protocol"},
    "server": {"loader", "execution", "protocol", "definitions"},
}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, subsystem) for every `runtime.<subsystem>` import executed at run time."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "runtime":
                names = [f"runtime.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "runtime" and len(parts) > 1:
                found.append((getattr(node, "lineno", 0), parts[1]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _violations(subsystem: str) -> list[str]:
    allowed = ALLOWED[subsystem] | BASE | {subsystem}
    problems = []
    for path in sorted((PACKAGE / subsystem).rglob("*.py")):
        if "_generated" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, imported in _runtime_imports(tree):
            if imported not in allowed:
                relative = path.relative_to(PACKAGE.parent)
                problems.append(f"{relative}:{line} imports runtime.{imported}")
    return problems


@pytest.mark.parametrize("subsystem", sorted(ALLOWED))
def test_subsystem_imports_only_lower_layers(subsystem: str) -> None:
    assert _violations(subsystem) == []


def test_the_check_sees_call_time_imports(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from runtime.execution.plan import ExecutionPlan\n"
        "def run():\n"
        "    from runtime.execution import in_process\n"
        "    import runtime.server.main\n"
    )
    assert _runtime_imports(ast.parse(source)) == [(5, "execution"), (6, "server")]


def test_the_import_contracts_of_pyproject_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]

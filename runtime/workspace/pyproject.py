"""pyproject.toml's ``[tool.runtime]`` table as a workspace.

``module_name = "my_team.defs"`` (or ``modules = ["a.defs", "b.defs"]``), with
optional ``attribute``, ``working_directory`` (relative to the file; the file's
folder by default) and ``location_name``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from runtime.config_file import explain_validation_error
from runtime.errors import WorkspaceConfigError
from runtime.workspace.config import code_location_spec

if TYPE_CHECKING:
    from runtime.workspace.spec import LocationSpec

__all__ = ["has_runtime_table", "load_pyproject_workspace"]

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
_TABLE = "tool.runtime"


class _ToolRuntime(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    module_name: NonEmpty | None = None
    modules: list[NonEmpty] | None = None
    attribute: NonEmpty | None = None
    working_directory: NonEmpty | None = None
    location_name: NonEmpty | None = None


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except FileNotFoundError as exc:
        raise WorkspaceConfigError(f"Workspace file {path} does not exist.") from exc
    except OSError as exc:
        raise WorkspaceConfigError(f"Workspace file {path} could not be read: {exc}.") from exc
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line N, column M)".
        raise WorkspaceConfigError(f"{path} is not valid TOML: {exc}.") from exc


def _runtime_table(document: dict[str, Any]) -> Any:
    tool = document.get("tool")
    return tool.get("runtime") if isinstance(tool, dict) else None


def has_runtime_table(path: Path) -> bool:
    """True when ``path`` is a pyproject.toml with a ``[tool.runtime]`` table.

    Raises WorkspaceConfigError when the file is not valid TOML.
    """
    return _runtime_table(_read_toml(path)) is not None


def _where(path: Path, text: str, key: str | None) -> str:
    """``file, line N`` of ``key`` inside ``[tool.runtime]`` (tomllib keeps no positions)."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\s*tool\s*\.\s*runtime\s*\]\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return str(path)
    if key is not None:
        assignment = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for number in range(start + 1, len(lines)):
            if lines[number].lstrip().startswith("["):
                break
            if assignment.match(lines[number]):
                return f"{path}, line {number + 1}"
    return f"{path}, line {start + 1}"


def load_pyproject_workspace(path: Path) -> list[LocationSpec]:
    """The locations pyproject.toml's ``[tool.runtime]`` declares, one per module.

    Raises WorkspaceConfigError when the file is not valid TOML, has no
    ``[tool.runtime]``, the table has an unknown key or a bad value, sets both or
    neither of ``module_name`` and ``modules``, or names two locations alike.
    """
    document = _read_toml(path)
    table = _runtime_table(document)
    if table is None:
        raise WorkspaceConfigError(
            f"{path} has no [tool.runtime] table; add one with "
            '`module_name = "my_package.definitions"`.'
        )
    text = path.read_text(encoding="utf-8")
    try:
        settings = msgspec.convert(table, _ToolRuntime)
    except msgspec.ValidationError as exc:
        at, problem, _ = explain_validation_error(exc, _ToolRuntime, root=_TABLE)
        key = at[0] if at and isinstance(at[0], str) else None
        raise WorkspaceConfigError(f"{_where(path, text, key)}: {problem}") from exc

    if settings.module_name is not None and settings.modules is not None:
        raise WorkspaceConfigError(
            f"{_where(path, text, 'modules')}: [tool.runtime] sets both `module_name` and "
            "`modules`; keep one of them."
        )
    modules = [settings.module_name] if settings.module_name is not None else settings.modules
    if not modules:
        raise WorkspaceConfigError(
            f"{_where(path, text, 'modules')}: [tool.runtime] names no module; add "
            '`module_name = "my_package.definitions"` or `modules = ["a.defs", "b.defs"]`.'
        )
    if settings.location_name is not None and len(modules) > 1:
        raise WorkspaceConfigError(
            f"{_where(path, text, 'location_name')}: [tool.runtime] sets one `location_name` "
            f"for {len(modules)} modules; locations need distinct names, so drop it."
        )
    duplicates = sorted({module for module in modules if modules.count(module) > 1})
    if duplicates:
        raise WorkspaceConfigError(
            f"{_where(path, text, 'modules')}: [tool.runtime] lists the module "
            f"`{duplicates[0]}` twice; two locations cannot share a name."
        )

    base = Path(os.path.abspath(path)).parent
    working_directory = str(base)
    if settings.working_directory is not None:
        working_directory = os.path.abspath(base / os.path.expanduser(settings.working_directory))
    origin = _where(path, text, "module_name" if settings.module_name else "modules")
    return [
        code_location_spec(
            "python_module",
            module,
            working_directory=working_directory,
            attribute=settings.attribute,
            location_name=settings.location_name,
            origin=origin.replace(", line", " line"),
        )
        for module in modules
    ]

"""Hints for an import that failed: the usual cause is sys.path, not the code.

Two causes account for most failures: a file that uses relative imports (it
must be loaded as a module of its package), and a sibling module or package
that is not importable because the working directory is not the project root.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.loader.target import LoadTarget

# How far up from the file or working directory to look for a missing module.
_ANCESTOR_LEVELS = 4


def _package_module_name(file: Path) -> tuple[str, Path]:
    """The dotted name of a file inside packages (folders with __init__.py), and the folder above them."""
    parts = [file.stem]
    folder = file.parent
    while (folder / "__init__.py").exists() and folder.parent != folder:
        parts.append(folder.name)
        folder = folder.parent
    return ".".join(reversed(parts)), folder


def _find_importable(top: str, starts: list[Path]) -> Path | None:
    """A folder near `starts` that holds module or package `top`, or None."""
    on_path = {Path(p).resolve() for p in sys.path if p}
    for start in starts:
        folder = start
        for _ in range(_ANCESTOR_LEVELS + 1):
            if folder not in on_path and (
                (folder / top / "__init__.py").exists() or (folder / f"{top}.py").exists()
            ):
                return folder
            if folder.parent == folder:
                break
            folder = folder.parent
        for candidate in (start / "src",):
            if (candidate / top).is_dir() or (candidate / f"{top}.py").exists():
                return candidate
    return None


def import_error_hints(exc: BaseException, target: LoadTarget, search_root: Path) -> list[str]:
    """Sentences telling the user how to fix the sys.path cause of exc, when that is the cause."""
    hints: list[str] = []
    file = target.resolved_file() if target.python_file else None
    message = str(exc)
    if file is not None and isinstance(exc, ImportError) and "relative import" in message:
        dotted, root = _package_module_name(file)
        if "." in dotted:
            hints.append(
                f"{file} uses relative imports, so it must be loaded as a module of its package: "
                f"use --module-name {dotted} --working-directory {root} "
                f"(python_module: {{module_name: {dotted}, working_directory: {root}}}) instead of a file."
            )
        else:
            hints.append(
                f"{file} uses relative imports but its folder is not a package (no __init__.py); "
                "add __init__.py files and load it with --module-name, or use absolute imports."
            )
        return hints
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return hints
    top = exc.name.partition(".")[0]
    starts = [file.parent] if file is not None else []
    starts.append(search_root)
    found = _find_importable(top, starts)
    if found is not None:
        hints.append(
            f"{top!r} is in {found}, which is not on sys.path: set the working directory to {found} "
            f"(--working-directory {found}, or working_directory: in workspace.yaml)."
        )
        if file is not None and (file.parent / "__init__.py").exists():
            dotted, root = _package_module_name(file)
            hints.append(
                f"{file} is part of a package; loading it as a module "
                f"(--module-name {dotted} --working-directory {root}) puts {root} on sys.path."
            )
    elif target.kind != "python_file" and target.name.startswith(exc.name):
        name = target.name
        if name.endswith(".py") or "/" in name:
            hints.append(f"{name!r} looks like a file path: use --python-file {name} instead.")
        else:
            hints.append(
                f"Set the working directory to the folder that contains {top!r} "
                f"(--working-directory), or install it into {sys.executable}."
            )
    return hints

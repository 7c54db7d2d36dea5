"""Import a load target and resolve it into a RepositoryDefinition."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.errors import LoadError
from runtime.loader.hints import import_error_hints
from runtime.loader.import_recorder import ImportRecorder
from runtime.loader.resolve import resolve_repository

if TYPE_CHECKING:
    from types import ModuleType

    from runtime.definitions.repository import RepositoryDefinition
    from runtime.loader.target import LoadTarget


def load_repository(
    target: LoadTarget, *, recorder: ImportRecorder | None = None
) -> RepositoryDefinition:
    """Import target and return the repository it defines.

    Pass a recorder to read import progress from another thread while this
    runs, and the import timings afterwards (also after a failure). Raises
    LoadError, chained to the user's exception when an import raised, with
    hints when sys.path is the likely cause.
    """
    recorder = recorder if recorder is not None else ImportRecorder()
    search_root = Path(target.working_directory or os.getcwd()).resolve()
    with recorder.recording():
        module = _import_target(target, recorder, search_root)
    where = target.describe()
    try:
        return resolve_repository(vars(module), where=where, attribute=target.attribute)
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(
            f"Building the repository of {where} raised {type(exc).__name__}: {exc}"
        ) from exc


def _put_first_on_sys_path(*folders: Path) -> None:
    """Make folders the first sys.path entries, in this order, each once (moved if already there)."""
    entries = list(dict.fromkeys(str(folder) for folder in folders))
    sys.path[:] = entries + [entry for entry in sys.path if entry not in entries]


def _import_target(target: LoadTarget, recorder: ImportRecorder, search_root: Path) -> ModuleType:
    if target.python_file:
        return _import_file(target, recorder)
    _put_first_on_sys_path(search_root)
    name = target.module_name or target.package_name or ""
    try:
        module = importlib.import_module(name)
    except BaseException as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name and name.startswith(exc.name):
            raise LoadError(
                f"Cannot load {target.describe()}: no module named {exc.name!r} on sys.path "
                f"(working directory {search_root}).",
                hints=import_error_hints(exc, target, search_root),
            ) from exc
        raise _import_failure(exc, target, search_root) from exc
    if target.package_name and not hasattr(module, "__path__"):
        raise LoadError(
            f"{target.describe()} is a module ({module.__file__}), not a package; "
            f"use --module-name {name} (python_module) for it."
        )
    return module


def _import_file(target: LoadTarget, recorder: ImportRecorder) -> ModuleType:
    path = target.resolved_file()
    if path.is_dir():
        raise LoadError(
            f"Cannot load {target.describe()}: it is a folder; point --python-file at a .py file, "
            "or load the package with --package-name."
        )
    if not path.is_file():
        raise LoadError(f"Cannot load {target.describe()}: the file does not exist.")
    folder = path.parent
    search_root = Path(target.working_directory).resolve() if target.working_directory else folder
    # The working directory goes first, then the file's own folder: the file's
    # sibling modules import as they would with `python etl.py`, and the file
    # itself is importable by its stem, which is how worker processes (the
    # forkserver starts from this sys.path) find its functions again.
    _put_first_on_sys_path(search_root, folder)
    module_name = _file_module_name(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LoadError(
            f"Cannot load {target.describe()}: Python cannot import a file of this kind."
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with recorder.timed(module_name):
            spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        raise _import_failure(exc, target, search_root) from exc
    return module


def _file_module_name(path: Path) -> str:
    """The name to register the file under: its stem when importing that name finds this file.

    Another module already imported under the stem, or an earlier sys.path
    entry holding one, would be shadowed (or shadow the file in worker
    processes); the file then gets a private name instead.
    """
    stem = path.stem
    private = f"__runtime_location__{stem}"
    if stem in sys.modules:
        return private
    spec = importlib.machinery.PathFinder.find_spec(stem)
    origin = spec.origin if spec is not None else None
    if origin is None or Path(origin).resolve() != path:
        return private
    return stem


def _import_failure(exc: BaseException, target: LoadTarget, search_root: Path) -> LoadError:
    """The LoadError for an import that raised: what was imported, what it raised, and hints."""
    if isinstance(exc, SystemExit):
        what = f"called sys.exit({exc.code!r})"
    elif isinstance(exc, KeyboardInterrupt):
        what = "was interrupted"
    else:
        what = f"raised {type(exc).__name__}: {exc}"
    return LoadError(
        f"Importing {target.describe()} {what}",
        hints=import_error_hints(exc, target, search_root),
    )

"""Command-line targets: the flags every command shares, resolved into LocationSpecs.

Three kinds of target, one kind per command line:
- workspace files: ``-w FILE`` (repeatable; a later file wins on a duplicate name);
- code: ``-f FILE``, ``-m MODULE`` (both repeatable) and ``--package-name``, with
  ``-a`` and ``-d`` applying to each of them;
- a running code server: ``--grpc-host`` with ``--grpc-port`` or ``--grpc-socket``.
With no target, the current directory's workspace.yaml, workspace.yml or
pyproject.toml ``[tool.runtime]`` is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.errors import WorkspaceConfigError
from runtime.workspace.config import (
    code_location_spec,
    grpc_server_spec,
    load_workspace_file,
)

if TYPE_CHECKING:
    import argparse

    from runtime.workspace.spec import LocationKind, LocationSpec

__all__ = [
    "DEFAULT_WORKSPACE_FILES",
    "TargetOptions",
    "add_target_arguments",
    "find_default_workspace",
    "resolve_targets",
]

DEFAULT_WORKSPACE_FILES = ("workspace.yaml", "workspace.yml")
_ORIGIN = "command line"


@dataclass(frozen=True)
class TargetOptions:
    """The target flags of one command line (see ``add_target_arguments``)."""

    workspace_files: list[str] = field(default_factory=list)
    python_files: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)
    package_name: str | None = None
    attribute: str | None = None
    working_directory: str | None = None
    grpc_host: str | None = None
    grpc_port: int | None = None
    grpc_socket: str | None = None

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> TargetOptions:
        """The options ``add_target_arguments`` put on a parsed namespace."""
        values = {f.name: getattr(args, f.name, None) for f in fields(cls)}
        for name in ("workspace_files", "python_files", "modules"):
            values[name] = list(values[name] or [])
        return cls(**values)  # type: ignore[arg-type]

    @property
    def is_empty(self) -> bool:
        """True when no flag was given, so the current directory's workspace applies."""
        return not any(getattr(self, f.name) for f in fields(self))


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the shared target flags (-w, -f, -m, --package-name, -a, -d, --grpc-*) to ``parser``."""
    group = parser.add_argument_group(
        "targets",
        "Which code locations to load. Without any, the current directory's "
        "workspace.yaml, workspace.yml or pyproject.toml [tool.runtime] is used.",
    )
    group.add_argument(
        "-w",
        "--workspace",
        dest="workspace_files",
        action="append",
        metavar="FILE",
        help="a workspace.yaml (or pyproject.toml); repeatable, a later file wins on a duplicate name",
    )
    group.add_argument(
        "-f",
        "--python-file",
        dest="python_files",
        action="append",
        metavar="FILE",
        help="a Python file holding Definitions; repeatable",
    )
    group.add_argument(
        "-m",
        "--module-name",
        dest="modules",
        action="append",
        metavar="MODULE",
        help="an importable module holding Definitions; repeatable",
    )
    group.add_argument(
        "--package-name", metavar="PACKAGE", help="an installed package holding Definitions"
    )
    group.add_argument(
        "-a",
        "--attribute",
        metavar="NAME",
        help="the Definitions (or @repository) attribute to load from each -f/-m/--package-name",
    )
    group.add_argument(
        "-d",
        "--working-directory",
        metavar="DIR",
        help="working directory of the -f/-m/--package-name locations (default: the current one)",
    )
    group.add_argument("--grpc-host", metavar="HOST", help="host of a running code server")
    group.add_argument(
        "--grpc-port", type=int, metavar="PORT", help="port of a running code server"
    )
    group.add_argument("--grpc-socket", metavar="PATH", help="Unix socket of a running code server")


def find_default_workspace(cwd: Path) -> Path | None:
    """workspace.yaml, workspace.yml or a pyproject.toml with [tool.runtime] in ``cwd``, if any."""
    from runtime.workspace.pyproject import has_runtime_table

    for name in DEFAULT_WORKSPACE_FILES:
        candidate = cwd / name
        if candidate.is_file():
            return candidate
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file() and has_runtime_table(pyproject):
        return pyproject
    return None


def resolve_targets(options: TargetOptions, cwd: Path) -> list[LocationSpec]:
    """The locations a command line asks for; relative paths are taken from ``cwd``.

    Raises WorkspaceConfigError when target kinds are mixed (naming the clashing
    flags), a flag is missing its partner, a workspace file does not exist, two locations
    get the same name, or no target is given and ``cwd`` holds no workspace
    (saying what to create).
    """
    workspace_flags = _given(options, ("workspace_files", "-w/--workspace"))
    code_flags = _given(
        options,
        ("python_files", "-f/--python-file"),
        ("modules", "-m/--module-name"),
        ("package_name", "--package-name"),
    )
    modifier_flags = _given(
        options, ("attribute", "-a/--attribute"), ("working_directory", "-d/--working-directory")
    )
    grpc_flags = _given(
        options,
        ("grpc_host", "--grpc-host"),
        ("grpc_port", "--grpc-port"),
        ("grpc_socket", "--grpc-socket"),
    )
    kinds = [flags for flags in (workspace_flags, code_flags, grpc_flags) if flags]
    if len(kinds) > 1:
        raise WorkspaceConfigError(
            f"{_flag_list(kinds[0])} cannot be combined with {_flag_list(kinds[1])}; "
            "give workspace files, code targets (-f/-m/--package-name) or a code server "
            "(--grpc-*), one kind at a time."
        )
    if modifier_flags and not code_flags:
        other = f" with {_flag_list(kinds[0])}" if kinds else " on their own"
        verb = "applies" if len(modifier_flags) == 1 else "apply"
        raise WorkspaceConfigError(
            f"{_flag_list(modifier_flags)} {verb} to -f/-m/--package-name targets, not{other}."
        )

    if workspace_flags:
        return _from_workspace_files(options.workspace_files, cwd)
    if code_flags:
        return _from_code_targets(options, cwd)
    if grpc_flags:
        return [_from_grpc_flags(options, cwd)]

    default = find_default_workspace(cwd)
    if default is None:
        raise WorkspaceConfigError(
            f"No target given and {cwd} has no workspace.yaml, workspace.yml or pyproject.toml "
            "with a [tool.runtime] table; create workspace.yaml with a `load_from:` list "
            "(e.g. `load_from: [{python_file: defs.py}]`), or pass -f FILE, -m MODULE or "
            "-w WORKSPACE."
        )
    return load_workspace_file(default)


def _given(options: TargetOptions, *flags: tuple[str, str]) -> list[str]:
    """The spellings of the flags among ``flags`` that were set."""
    return [spelling for name, spelling in flags if getattr(options, name) not in (None, [])]


def _flag_list(flags: list[str]) -> str:
    return flags[0] if len(flags) == 1 else f"{', '.join(flags[:-1])} and {flags[-1]}"


def _absolute(value: str, cwd: Path) -> Path:
    return Path(os.path.abspath(cwd / os.path.expanduser(value)))


def _from_workspace_files(files: list[str], cwd: Path) -> list[LocationSpec]:
    merged: dict[str, LocationSpec] = {}
    for file in files:
        path = _absolute(file, cwd)
        if not path.is_file():
            raise WorkspaceConfigError(f"Workspace file {path} (from -w {file}) does not exist.")
        for spec in load_workspace_file(path):
            # A later file overrides a location of the same name, in its original place.
            merged[spec.name] = spec
    return list(merged.values())


def _from_code_targets(options: TargetOptions, cwd: Path) -> list[LocationSpec]:
    working_directory = str(cwd)
    if options.working_directory is not None:
        directory = _absolute(options.working_directory, cwd)
        if not directory.is_dir():
            raise WorkspaceConfigError(
                f"-d/--working-directory {options.working_directory} is not a directory "
                f"({directory} does not exist)."
            )
        working_directory = str(directory)

    specs: list[LocationSpec] = []
    for file in options.python_files:
        # A missing file fails only its own location, when the workspace loads.
        path = _absolute(file, cwd)
        specs.append(_code_spec("python_file", str(path), options, working_directory))
    for module in options.modules:
        specs.append(_code_spec("python_module", module, options, working_directory))
    if options.package_name is not None:
        specs.append(_code_spec("python_package", options.package_name, options, working_directory))

    seen: dict[str, LocationSpec] = {}
    for spec in specs:
        if spec.name in seen:
            first = seen[spec.name]
            raise WorkspaceConfigError(
                f"Two command-line targets would both be the location `{spec.name}` "
                f"({_target_of(first)} and {_target_of(spec)}); rename one, or load them "
                "from a workspace.yaml with distinct `location_name`s."
            )
        seen[spec.name] = spec
    return specs


def _code_spec(
    kind: LocationKind, target: str, options: TargetOptions, working_directory: str
) -> LocationSpec:
    return code_location_spec(
        kind,
        target,
        working_directory=working_directory,
        attribute=options.attribute,
        origin=_ORIGIN,
    )


def _target_of(spec: LocationSpec) -> str:
    return spec.python_file or spec.module_name or spec.package_name or spec.name


def _from_grpc_flags(options: TargetOptions, cwd: Path) -> LocationSpec:
    if options.grpc_port is not None and options.grpc_socket is not None:
        raise WorkspaceConfigError(
            "--grpc-port cannot be combined with --grpc-socket; a code server listens on one."
        )
    if options.grpc_port is None and options.grpc_socket is None:
        raise WorkspaceConfigError(
            "--grpc-host needs --grpc-port or --grpc-socket to say where the code server listens."
        )
    if options.grpc_port is not None and not 1 <= options.grpc_port <= 65535:
        raise WorkspaceConfigError(
            f"--grpc-port {options.grpc_port} is not a port number (1 to 65535)."
        )
    socket = str(_absolute(options.grpc_socket, cwd)) if options.grpc_socket else None
    return grpc_server_spec(
        host=options.grpc_host or "localhost",
        port=options.grpc_port,
        socket=socket,
        origin=_ORIGIN,
    )

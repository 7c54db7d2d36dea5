"""workspace.yaml: the ``load_from:`` list of code locations, parsed into LocationSpecs.

Each entry declares one location: ``python_file``, ``python_module`` or
``python_package`` (a scalar, or a mapping with ``attribute``, ``location_name``,
``working_directory`` and ``executable_path``) or ``grpc_server``. Paths are
relative to the workspace file's folder, which is also the default working
directory. Every error names the file, the line and column, and the key.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated, Any, Final

import msgspec

from runtime.config_file import YamlDocument, format_config_path, read_yaml_document
from runtime.errors import WorkspaceConfigError
from runtime.workspace.spec import LocationKind, LocationSpec

__all__ = [
    "code_location_spec",
    "default_location_name",
    "grpc_server_spec",
    "load_workspace_file",
    "load_workspace_yaml",
    "resolve_executable",
]

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]

CODE_KINDS: Final = ("python_file", "python_module", "python_package")
ENTRY_KINDS: Final = (*CODE_KINDS, "grpc_server")
# The key holding the target in the mapping form of each code kind.
_TARGET_KEY: Final[dict[str, str]] = {
    "python_file": "relative_path",
    "python_module": "module_name",
    "python_package": "package_name",
}


class _CodeTarget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    attribute: NonEmpty | None = None
    location_name: NonEmpty | None = None
    working_directory: NonEmpty | None = None
    executable_path: NonEmpty | None = None


class _PythonFile(_CodeTarget, frozen=True, kw_only=True, forbid_unknown_fields=True):
    relative_path: NonEmpty


class _PythonModule(_CodeTarget, frozen=True, kw_only=True, forbid_unknown_fields=True):
    module_name: NonEmpty


class _PythonPackage(_CodeTarget, frozen=True, kw_only=True, forbid_unknown_fields=True):
    package_name: NonEmpty


class _GrpcServer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: NonEmpty = "localhost"
    port: Port | None = None
    socket: NonEmpty | None = None
    location_name: NonEmpty | None = None
    ssl: bool = False


class _Entry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    python_file: NonEmpty | _PythonFile | None = None
    python_module: NonEmpty | _PythonModule | None = None
    python_package: NonEmpty | _PythonPackage | None = None
    grpc_server: _GrpcServer | None = None


class _WorkspaceFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    load_from: list[_Entry]


def default_location_name(kind: LocationKind, target: str, attribute: str | None = None) -> str:
    """The name a location gets without ``location_name``.

    A file's base name without ``.py``, or the module or package name, with
    ``:attribute`` appended when one is set.
    """
    if kind == "python_file":
        base = os.path.basename(target)
        name = base[: -len(".py")] if base.endswith(".py") and base != ".py" else base
    else:
        name = target
    return f"{name}:{attribute}" if attribute else name


def code_location_spec(
    kind: LocationKind,
    target: str,
    *,
    working_directory: str,
    attribute: str | None = None,
    location_name: str | None = None,
    executable_path: str | None = None,
    origin: str = "",
) -> LocationSpec:
    """A managed location: ``target`` is an absolute file path, a module or a package name."""
    name = location_name or default_location_name(kind, target, attribute)
    return LocationSpec(
        name=name,
        kind=kind,
        python_file=target if kind == "python_file" else None,
        module_name=target if kind == "python_module" else None,
        package_name=target if kind == "python_package" else None,
        attribute=attribute,
        working_directory=working_directory,
        executable_path=executable_path,
        origin=origin,
    )


def grpc_server_spec(
    *,
    host: str,
    port: int | None,
    socket: str | None,
    location_name: str | None = None,
    ssl: bool = False,
    origin: str = "",
) -> LocationSpec:
    """A remote location; named ``host:port`` or ``host:socket`` unless ``location_name`` is set."""
    name = location_name or f"{host}:{socket if socket is not None else port}"
    return LocationSpec(
        name=name,
        kind="grpc_server",
        host=host,
        port=port,
        socket=socket,
        ssl=ssl,
        origin=origin,
    )


def resolve_executable(value: str, base: Path) -> str | None:
    """An absolute interpreter path: ``~`` expanded, relative paths taken from ``base``,
    a bare name (``python3.11``) looked up on PATH. None when a bare name is not found.
    """
    expanded = os.path.expanduser(value)
    if os.sep in expanded or (os.altsep and os.altsep in expanded):
        return os.path.abspath(base / expanded)
    return shutil.which(expanded)


def load_workspace_file(path: Path) -> list[LocationSpec]:
    """The locations a workspace file declares: workspace.yaml, or pyproject.toml's [tool.runtime].

    Raises WorkspaceConfigError naming the file, line, column and key of what is wrong.
    """
    if path.name == "pyproject.toml" or path.suffix == ".toml":
        from runtime.workspace.pyproject import load_pyproject_workspace

        return load_pyproject_workspace(path)
    return load_workspace_yaml(path)


def load_workspace_yaml(path: Path) -> list[LocationSpec]:
    """The locations a workspace.yaml declares, in file order.

    Raises WorkspaceConfigError for: YAML that does not parse, an unknown key
    (suggesting the closest known one), a missing required key, an entry with
    no kind or two kinds, an empty ``load_from``, both or neither of ``port``
    and ``socket``, ``ssl`` with a ``socket``, an ``executable_path`` not on
    PATH, and two locations with the same name. A ``python_file`` that does not
    exist is not an error here: that location alone fails to load.
    """
    document = read_yaml_document(path, error=WorkspaceConfigError, schema=_WorkspaceFile)
    parsed = document.convert(_WorkspaceFile, error=WorkspaceConfigError)
    if not parsed.load_from:
        raise document.error(
            WorkspaceConfigError,
            ("load_from",),
            "`load_from` is empty; list at least one location, e.g. `- python_file: defs.py`.",
        )
    base = Path(os.path.abspath(path)).parent
    specs: list[LocationSpec] = []
    first_line_of: dict[str, int] = {}
    for index, entry in enumerate(parsed.load_from):
        at = ("load_from", index)
        spec = _entry_spec(document, at, entry, base)
        line = document.line_of(at)
        if spec.name in first_line_of:
            where = (*at, _kind_of(document, at), "location_name")
            raise document.error(
                WorkspaceConfigError,
                where,
                f"two locations are named `{spec.name}` (line {first_line_of[spec.name]} "
                f"and line {line}); give one of them another `location_name`.",
            )
        first_line_of[spec.name] = line
        specs.append(spec)
    return specs


def _kind_of(document: YamlDocument, at: tuple[str | int, ...]) -> str:
    """The first kind key written in the raw entry at ``at``."""
    raw: dict[str, Any] = document.data[at[0]][at[1]]
    return next((key for key in raw if key in ENTRY_KINDS), "")


def _entry_spec(
    document: YamlDocument, at: tuple[str | int, ...], entry: _Entry, base: Path
) -> LocationSpec:
    raw: dict[str, Any] = document.data[at[0]][at[1]]
    written = [key for key in raw if key in ENTRY_KINDS]
    if not written:
        raise document.error(
            WorkspaceConfigError,
            at,
            f"`{format_config_path(at)}` declares no location; use one of "
            "`python_file`, `python_module`, `python_package` or `grpc_server`.",
        )
    if len(written) > 1:
        raise document.error(
            WorkspaceConfigError,
            (*at, written[1]),
            f"`{format_config_path(at)}` declares both `{written[0]}` and `{written[1]}`; "
            "write each location as its own `- ` entry under `load_from`.",
            key=True,
        )
    kind = written[0]
    origin = f"{document.source} line {document.line_of(at)}"
    value = getattr(entry, kind)
    if value is None:
        hint = (
            "`host` and `port` (or `socket`)"
            if kind == "grpc_server"
            else f"a value, e.g. `{kind}: {_example(kind)}`, or a mapping with `{_TARGET_KEY[kind]}`"
        )
        raise document.error(
            WorkspaceConfigError,
            (*at, kind),
            f"`{format_config_path((*at, kind))}` is empty; it needs {hint}.",
            key=True,
        )
    if isinstance(value, _GrpcServer):
        return _grpc_spec(document, (*at, kind), value, base, origin)
    return _code_spec(document, (*at, kind), kind, value, base, origin)


def _example(kind: str) -> str:
    return {"python_file": "defs.py", "python_module": "my_team.defs"}.get(kind, "my_team")


def _code_spec(
    document: YamlDocument,
    at: tuple[str | int, ...],
    kind: str,
    value: str | _PythonFile | _PythonModule | _PythonPackage,
    base: Path,
    origin: str,
) -> LocationSpec:
    if isinstance(value, str):
        options = _CodeTarget()
        target = value
    else:
        options = value
        target = getattr(value, _TARGET_KEY[kind])

    if kind == "python_file":
        # A file that does not exist puts only its location in error when the
        # workspace loads (see runtime.workspace.supervisor), as an import error would.
        target = os.path.abspath(base / os.path.expanduser(target))

    working_directory = str(base)
    if options.working_directory is not None:
        working_directory = os.path.abspath(base / os.path.expanduser(options.working_directory))

    executable_path = None
    if options.executable_path is not None:
        executable_path = resolve_executable(options.executable_path, base)
        if executable_path is None:
            raise document.error(
                WorkspaceConfigError,
                (*at, "executable_path"),
                f"`{format_config_path((*at, 'executable_path'))}` is "
                f"`{options.executable_path}`, which is not on PATH; give the interpreter's path.",
            )

    return code_location_spec(
        _location_kind(kind),
        target,
        working_directory=working_directory,
        attribute=options.attribute,
        location_name=options.location_name,
        executable_path=executable_path,
        origin=origin,
    )


def _location_kind(kind: str) -> LocationKind:
    if kind == "python_file":
        return "python_file"
    if kind == "python_module":
        return "python_module"
    return "python_package"


def _grpc_spec(
    document: YamlDocument,
    at: tuple[str | int, ...],
    server: _GrpcServer,
    base: Path,
    origin: str,
) -> LocationSpec:
    shown = format_config_path(at)
    if server.port is not None and server.socket is not None:
        raise document.error(
            WorkspaceConfigError,
            (*at, "socket"),
            f"`{shown}` sets both `port` and `socket`; a server listens on one of them.",
            key=True,
        )
    if server.port is None and server.socket is None:
        raise document.error(
            WorkspaceConfigError,
            at,
            f"`{shown}` sets neither `port` nor `socket`; add `port: 4266` or "
            "`socket: /path/to/server.sock`.",
        )
    if server.socket is not None and server.ssl:
        raise document.error(
            WorkspaceConfigError,
            (*at, "ssl"),
            f"`{shown}` sets both `socket` and `ssl: true`; TLS is served on a TCP `port` only "
            "(a Unix socket is private already), so drop `ssl` or use `port`.",
            key=True,
        )
    socket = None
    if server.socket is not None:
        socket = os.path.abspath(base / os.path.expanduser(server.socket))
    return grpc_server_spec(
        host=server.host,
        port=server.port,
        socket=socket,
        location_name=server.location_name,
        ssl=server.ssl,
        origin=origin,
    )

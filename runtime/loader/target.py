"""LoadTarget: what to import for one code location."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TargetKind = Literal["python_file", "python_module", "python_package"]


@dataclass(frozen=True)
class LoadTarget:
    """Exactly one of python_file, module_name and package_name, with an optional attribute.

    `working_directory` goes first on sys.path (without it: a file's own
    folder, or for modules and packages the current directory); a file's own
    folder always goes on sys.path too, right after it.
    Raises ValueError when not exactly one target is given.
    """

    python_file: str | None = None
    module_name: str | None = None
    package_name: str | None = None
    attribute: str | None = None
    working_directory: str | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.python_file, self.module_name, self.package_name) if v]
        if len(given) != 1:
            raise ValueError(
                "A load target needs exactly one of python_file, module_name and package_name; "
                f"got {len(given)}."
            )

    @property
    def kind(self) -> TargetKind:
        if self.python_file:
            return "python_file"
        if self.module_name:
            return "python_module"
        return "python_package"

    @property
    def name(self) -> str:
        """The file path, module name or package name as given."""
        return self.python_file or self.module_name or self.package_name or ""

    def describe(self) -> str:
        """How messages name this target: `file /abs/defs.py`, `module 'pkg.defs'`, `package 'pkg'`."""
        if self.python_file:
            return f"file {self.resolved_file()}"
        if self.module_name:
            return f"module {self.module_name!r}"
        return f"package {self.package_name!r}"

    def resolved_file(self) -> Path:
        """The absolute path of a python_file target (relative paths are relative to the current directory)."""
        return Path(self.python_file or "").expanduser().resolve()

    def default_location_name(self) -> str:
        """The file's base name or the module or package name, with `:attribute` when one is set."""
        base = Path(self.python_file).stem if self.python_file else self.name
        return f"{base}:{self.attribute}" if self.attribute else base

"""Loader tests import user code into the test process; these undo it.

(Fixtures live in each test module, built from these helpers: a conftest.py
below tests/ would clash with the root one under mypy.)
"""

from __future__ import annotations

import contextlib
import sys
import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@contextlib.contextmanager
def imports_restored(tmp_path: Path) -> Iterator[None]:
    """Restore sys.path, and drop modules imported from tmp_path, when the block exits."""
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            origin = str(getattr(sys.modules[name], "__file__", "") or "")
            if origin.startswith(str(tmp_path)) or name.startswith("__runtime_location__"):
                del sys.modules[name]


def file_writer(tmp_path: Path) -> Callable[[str, str], Path]:
    """writer("pkg/mod.py", source) creates the file (dedented) under tmp_path and returns its path."""

    def write_file(relative: str, source: str) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    return write_file

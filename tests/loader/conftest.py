"""Loader tests import user code into this process: each test's imports are undone after it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.helpers_loader import file_writer, imports_restored

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    Write = Callable[[str, str], Path]


@pytest.fixture(autouse=True)
def isolated_imports(tmp_path: Path) -> Iterator[None]:
    with imports_restored(tmp_path):
        yield


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Writes a file under tmp_path (dedented) and returns its path."""
    return file_writer(tmp_path)

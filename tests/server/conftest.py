"""Fixtures of the code-server tests: the location file a test module defines."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The test module's DEFINITIONS source, written to tmp_path/location.py."""
    source = getattr(request.module, "DEFINITIONS", None)
    if not isinstance(source, str):
        raise TypeError(f"{request.module.__name__} defines no DEFINITIONS source string.")
    path = tmp_path / "location.py"
    path.write_text(textwrap.dedent(source))
    return path

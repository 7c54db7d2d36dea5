"""Fixtures of the daemon tests: a fresh instance home per test."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """RUNTIME_HOME of one test (created when the instance opens)."""
    return tmp_path / "home"

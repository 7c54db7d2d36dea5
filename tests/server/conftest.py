"""Fixtures of the code-server tests: the location file a test module defines, and a token.

Every test here runs with RUNTIME_CODE_SERVER_TOKEN set, so a code server it
starts on a TCP port (which needs a token) inherits one;
tests.helpers_server.start_code_server gives each server a fresh one of its own.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

from runtime.protocol.auth import TOKEN_ENV_VAR

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


SERVER_TOKEN = "code-server-tests-token"


@pytest.fixture(autouse=True)
def server_token(monkeypatch: pytest.MonkeyPatch) -> str:
    """The token code servers started by this test inherit from its environment."""
    monkeypatch.setenv(TOKEN_ENV_VAR, SERVER_TOKEN)
    return SERVER_TOKEN

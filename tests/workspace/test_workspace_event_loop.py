"""Outside asyncio (anyio's trio backend, a bare coroutine driver) the host says so in one sentence."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from runtime.errors import RuntimeFrameworkError
from runtime.host.workspace import Workspace
from runtime.instance.instance import Instance
from tests.workspace.workspace_helpers import HELLO, user_code

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from pathlib import Path
    from typing import Any


def _step_outside_any_loop(coroutine: Coroutine[Any, Any, Any]) -> None:
    """Drive a coroutine by hand, as an event loop that is not asyncio's would."""
    try:
        coroutine.send(None)
    finally:
        coroutine.close()


def test_entering_a_workspace_without_asyncio_names_the_problem(tmp_path: Path) -> None:
    code = user_code(tmp_path, "hello.py", HELLO)
    workspace = Workspace.from_targets(python_files=[code])
    with pytest.raises(
        RuntimeFrameworkError, match="A Workspace needs an asyncio event loop"
    ) as info:
        _step_outside_any_loop(workspace.__aenter__())
    message = str(info.value)
    assert "grpclib" in message and "anyio.run(main)" in message
    assert "\n" not in message


def test_opening_an_instance_without_asyncio_names_the_problem(tmp_path: Path) -> None:
    instance = Instance.from_home(tmp_path / "home")
    with pytest.raises(RuntimeFrameworkError, match="An Instance needs an asyncio event loop"):
        _step_outside_any_loop(instance.__aenter__())
    # Nothing was created on the way.
    assert not (tmp_path / "home").exists()

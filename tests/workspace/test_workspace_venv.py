"""executable_path: a location that runs under another venv's interpreter."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from runtime import Workspace
from tests.workspace.workspace_helpers import user_code

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.workspace.options import SupervisorOptions

# Reports, through its snapshot, what the environment looked like at import.
ENVIRONMENT_PROBE = """
import os, shutil, sys
from runtime import Definitions, asset

@asset(tags={
    "executable": sys.executable,
    "virtual_env": os.environ.get("VIRTUAL_ENV", ""),
    "python_on_path": shutil.which("python") or "",
})
def probe() -> int:
    return 1

defs = Definitions(assets=[probe])
"""


@pytest.mark.anyio
async def test_location_runs_under_its_executable_path(
    tmp_path: Path, second_venv: Path, fast_options: SupervisorOptions
) -> None:
    file = user_code(tmp_path, "probe.py", ENVIRONMENT_PROBE)
    async with Workspace.from_targets(
        python_files=[file], executable_path=second_venv, options=fast_options
    ) as ws:
        location = ws.location("probe")
        assert location.status == "loaded", location.error
        assert location.server_info is not None
        assert location.server_info.executable == str(second_venv)
        assert location.snapshot is not None
        (asset,) = location.snapshot.assets
        venv_root = second_venv.parent.parent
        assert asset.tags["executable"] == str(second_venv)
        assert asset.tags["virtual_env"] == str(venv_root)
        # Tools user code calls come from that venv first.
        assert asset.tags["python_on_path"] == str(venv_root / "bin" / "python")
        assert os.environ.get("VIRTUAL_ENV") != str(venv_root)

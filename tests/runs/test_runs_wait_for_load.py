"""A workspace entered with wait_for_load=False: each launch waits for its own location only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.errors import CodeLocationError
from runtime.host.workspace import Workspace
from runtime.instance.instance import Instance
from tests.runs.runs_helpers import PIPELINE

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


async def test_a_launch_waits_for_its_location_and_not_the_others(tmp_path: Path) -> None:
    hangs = tmp_path / "hangs.py"
    hangs.write_text("import time\ntime.sleep(600)\n")
    async with Workspace.from_targets(
        python_files=[PIPELINE, hangs],
        instance=Instance.ephemeral(),
        restart=False,
        startup_timeout=6.0,
        wait_for_load=False,
    ) as ws:
        # Entered at once: nothing has loaded yet.
        assert ws.locations["hangs"].status == "loading"
        run = await ws.launch_run(job="diamond")
        assert run.location_name == "runs_pipeline"
        named = await ws.launch_run(job="diamond", location="runs_pipeline")
        # Had the launches waited for every location, this one would be in error by now.
        assert ws.locations["hangs"].status == "loading"
        assert (await run.wait()).status == "SUCCESS"
        assert (await named.wait()).status == "SUCCESS"
        # A launch in the hanging location waits for its deadline, then says why.
        with (
            anyio.fail_after(30),
            pytest.raises(CodeLocationError, match="loading did not finish within 6 s"),
        ):
            await ws.launch_run(job="anything", location="hangs")

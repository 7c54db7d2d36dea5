"""A workspace over runs_pipeline.py with an ephemeral instance, for the run tests."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from runtime.host.workspace import Workspace
from runtime.instance.instance import Instance

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

PIPELINE = Path(__file__).with_name("runs_pipeline.py")


@asynccontextmanager
async def pipeline_workspace(
    control_dir: Path, *, instance: Instance | None = None, restart: bool = False
) -> AsyncIterator[Workspace]:
    """A loaded workspace of runs_pipeline.py whose steps read `control_dir`."""
    os.environ["RUNS_TEST_DIR"] = str(control_dir)
    async with Workspace.from_targets(
        python_files=[PIPELINE],
        instance=instance if instance is not None else Instance.ephemeral(),
        restart=restart,
        heartbeat_timeout=10.0,
        stop_grace=2.0,
    ) as ws:
        location = ws.locations["runs_pipeline"]
        assert location.status == "loaded", location.error
        yield ws


async def wait_for_file(path: Path, limit: float = 20.0) -> str:
    """The file's text once it exists; TimeoutError after `limit` seconds."""
    with anyio.fail_after(limit):
        while not path.exists():
            await anyio.sleep(0.02)
    return path.read_text()

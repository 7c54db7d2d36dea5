"""The queued run coordinator: runs wait in NOT_STARTED until they fit under the limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.instance.config import (
    InstanceConfig,
    QueuedRunCoordinatorConfig,
    RunCoordinatorConfig,
    TagConcurrencyLimit,
)
from runtime.instance.instance import Instance
from runtime.instance.records import RunStatus
from tests.runs.runs_helpers import pipeline_workspace, wait_for_file

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


def queued(max_runs: int, *limits: TagConcurrencyLimit) -> Instance:
    return Instance.ephemeral(
        InstanceConfig(
            run_coordinator=RunCoordinatorConfig(
                queued=QueuedRunCoordinatorConfig(
                    max_concurrent_runs=max_runs, tag_concurrency_limits=list(limits)
                )
            )
        )
    )


async def test_max_concurrent_runs_holds_the_next_run_until_a_slot_frees(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path, instance=queued(1)) as ws:
        first = await ws.launch_run(job="blocked")
        await wait_for_file(tmp_path / "blocking_started")
        second = await ws.launch_run(job="diamond")
        await anyio.sleep(0.3)
        assert second.status == RunStatus.NOT_STARTED
        assert await ws.instance.storage.get_events(second.run_id) == []
        (tmp_path / "release").write_text("go")
        with anyio.fail_after(20):
            assert (await first.wait()).status == "SUCCESS"
            result = await second.wait()
        assert result.status == "SUCCESS"
        first_end = (await first.refresh()).ended_at
        second_start = (await second.refresh()).started_at
        assert first_end is not None and second_start is not None
        assert second_start >= first_end


async def test_a_tag_limit_only_holds_runs_with_that_tag(tmp_path: Path) -> None:
    limit = TagConcurrencyLimit(key="team", value="data", limit=1)
    async with pipeline_workspace(tmp_path, instance=queued(10, limit)) as ws:
        first = await ws.launch_run(job="blocked", tags={"team": "data"})
        await wait_for_file(tmp_path / "blocking_started")
        held = await ws.launch_run(job="diamond", tags={"team": "data"})
        free = await ws.launch_run(job="diamond", tags={"team": "web"})
        with anyio.fail_after(20):
            assert (await free.wait()).status == "SUCCESS"
        assert held.status == RunStatus.NOT_STARTED
        (tmp_path / "release").write_text("go")
        with anyio.fail_after(20):
            assert (await held.wait()).status == "SUCCESS"
            assert (await first.wait()).status == "SUCCESS"


async def test_a_queued_run_can_be_cancelled_before_it_starts(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path, instance=queued(1)) as ws:
        first = await ws.launch_run(job="blocked")
        await wait_for_file(tmp_path / "blocking_started")
        waiting = await ws.launch_run(job="diamond")
        await waiting.cancel()
        with anyio.fail_after(10):
            result = await waiting.wait()
        assert result.status == "CANCELED"
        kinds = [e.event_type for e in await ws.instance.storage.get_events(waiting.run_id)]
        assert kinds == ["RUN_CANCELED"]
        (tmp_path / "release").write_text("go")
        with anyio.fail_after(20):
            assert (await first.wait()).status == "SUCCESS"


async def test_a_run_held_by_a_tag_limit_does_not_take_a_slot_of_the_total(
    tmp_path: Path,
) -> None:
    limit = TagConcurrencyLimit(key="team", value="data", limit=1)
    async with pipeline_workspace(tmp_path, instance=queued(2, limit)) as ws:
        first = await ws.launch_run(job="blocked", tags={"team": "data"})
        await wait_for_file(tmp_path / "blocking_started")
        held = await ws.launch_run(job="diamond", tags={"team": "data"})
        await anyio.sleep(0.2)
        # One run works, one waits on its tag: the second slot is still free.
        untagged = await ws.launch_run(job="diamond")
        with anyio.fail_after(20):
            assert (await untagged.wait()).status == "SUCCESS"
        assert held.status == RunStatus.NOT_STARTED
        (tmp_path / "release").write_text("go")
        with anyio.fail_after(20):
            assert (await held.wait()).status == "SUCCESS"
            assert (await first.wait()).status == "SUCCESS"

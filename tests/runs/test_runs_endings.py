"""How runs end when the host, not the run, decides: cancel races, storage failures, closing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

from runtime.errors import StorageError
from runtime.instance.instance import Instance
from runtime.instance.records import RunStatus
from runtime.protocol.messages import EnginePayload, RunFailurePayload
from tests.runs.runs_helpers import pipeline_workspace, wait_for_file

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.protocol.messages import RunEvent
    from runtime.runs.handle import RunHandle

pytestmark = pytest.mark.anyio


async def _until_started(run: RunHandle) -> None:
    with anyio.fail_after(20):
        while run.status is not RunStatus.STARTED:
            await anyio.sleep(0.01)


async def test_cancels_racing_the_servers_canceling_event_all_end_canceled(
    tmp_path: Path,
) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        runs = [await ws.launch_run(job="slow_async") for _ in range(12)]
        for run in runs:
            await _until_started(run)
        # Each run is cancelled twice at once, and the host's CANCELING races the
        # server's RUN_CANCELING coming back on the stream.
        async with anyio.create_task_group() as tg:
            for run in runs:
                tg.start_soon(run.cancel)
                tg.start_soon(run.cancel)
        with anyio.fail_after(30):
            results = [await run.wait() for run in runs]
        assert [r.status for r in results] == ["CANCELED"] * len(runs)
        for run in runs:
            record = await run.refresh()
            assert record.status is RunStatus.CANCELED
            assert run.status is RunStatus.CANCELED


class _FailingStatusInstance(Instance):
    """The real instance, except that storing STARTED fails once, as a full disk would."""

    failed = False

    async def update_run_status(self, run_id: str, status: RunStatus, **kwargs: Any) -> Any:
        if status is RunStatus.STARTED and not self.failed:
            self.failed = True
            raise StorageError("database or disk is full")
        return await super().update_run_status(run_id, status, **kwargs)


async def test_a_storage_failure_is_the_hosts_not_a_lost_code_server(tmp_path: Path) -> None:
    base = Instance.ephemeral()
    instance = _FailingStatusInstance(base.home, base.config, remove_home_on_close=True)
    async with instance, pipeline_workspace(tmp_path, instance=instance) as ws:
        run = await ws.launch_run(job="diamond")
        with anyio.fail_after(20):
            result = await run.wait()
        assert result.status == "FAILURE"
        assert result.failure_message is not None
        assert "The host failed while driving the run: StorageError" in result.failure_message
        assert "database or disk is full" in result.failure_message
        assert "Lost contact" not in result.failure_message
        assert "code server" not in result.failure_message
        # The location is fine: the next run succeeds.
        assert (await (await ws.launch_run(job="diamond")).wait()).status == "SUCCESS"


async def test_closing_the_workspace_cancels_runs_in_flight_through_their_server(
    tmp_path: Path,
) -> None:
    async with Instance.ephemeral() as instance:
        async with pipeline_workspace(tmp_path, instance=instance) as ws:
            run = await ws.launch_run(job="slow_async")
            await wait_for_file(tmp_path / "async_started")
        record = await instance.storage.get_run(run.run_id)
        assert record is not None
        assert record.status is RunStatus.CANCELED
        assert record.failure_reason is not None
        assert "its workspace closed" in record.failure_reason
        events = await instance.storage.get_events(run.run_id)
        kinds = [e.event_type for e in events]
        # The server's own cancellation, down to its RUN_CANCELED, is stored: the
        # host did not have to end the run in its place.
        assert "STEP_START" in kinds and "RUN_CANCELING" in kinds
        assert kinds[-1] == "RUN_CANCELED"
        assert "RUN_FAILURE" not in kinds
        assert not any(
            isinstance(e.payload, EnginePayload) and "its workspace closed" in e.payload.message
            for e in events
        )


async def test_closing_the_workspace_ends_every_events_follower(tmp_path: Path) -> None:
    async with Instance.ephemeral() as instance:
        followed: dict[str, list[RunEvent]] = {"live": [], "elsewhere": []}
        ended = anyio.Event()

        async def follow(handle: RunHandle, into: list[RunEvent]) -> None:
            async for event in handle.events():
                into.append(event)

        async with anyio.create_task_group() as tg:
            async with pipeline_workspace(tmp_path, instance=instance) as ws:
                live = await ws.launch_run(job="slow_async")
                # A run this workspace does not drive (queued by another process,
                # say): without the close, its follower would wait forever.
                other = await instance.create_run("diamond", location_name="runs_pipeline")
                elsewhere = await ws.get_run(other.run_id)

                async def follow_both() -> None:
                    async with anyio.create_task_group() as both:
                        both.start_soon(follow, live, followed["live"])
                        both.start_soon(follow, elsewhere, followed["elsewhere"])
                    ended.set()

                tg.start_soon(follow_both)
                await wait_for_file(tmp_path / "async_started")
            with anyio.fail_after(5):
                await ended.wait()
        assert followed["live"][-1].event_type == "RUN_CANCELED"
        assert followed["elsewhere"] == []
        record = await instance.storage.get_run(other.run_id)
        assert record is not None and record.status is RunStatus.NOT_STARTED


async def test_a_run_the_host_ends_on_close_says_why_in_its_events(tmp_path: Path) -> None:
    # A thread step ignores cancellation: after the grace the host ends the run itself.
    async with Instance.ephemeral() as instance:
        async with pipeline_workspace(tmp_path, instance=instance) as ws:
            run = await ws.launch_run(job="blocked")
            await wait_for_file(tmp_path / "blocking_started")
        (tmp_path / "release").write_text("go")
        events = await instance.storage.get_events(run.run_id)
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        assert events[-1].event_type == "RUN_CANCELED"
        engine = [e.payload for e in events if isinstance(e.payload, EnginePayload)]
        assert any("its workspace closed" in p.message for p in engine)
        assert not any(isinstance(e.payload, RunFailurePayload) for e in events)

"""A code server told to stop (SIGTERM, as a supervisor or an operator sends it) mid-run:
new runs are refused, runs in flight finish within the shutdown grace, the rest are
canceled saying why, and every event reaches the host."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.host.workspace import Workspace
from runtime.instance.instance import Instance
from runtime.instance.records import RunStatus
from runtime.protocol.messages import EnginePayload
from tests.runs.runs_helpers import PIPELINE, pipeline_workspace, wait_for_file
from tests.workspace.workspace_helpers import standalone_server

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


async def test_sigterm_mid_run_cancels_it_after_the_grace_naming_the_signal(
    tmp_path: Path,
) -> None:
    # A supervised server gets a grace a second short of the workspace's stop_grace (2 s).
    async with pipeline_workspace(tmp_path) as ws:
        run = await ws.launch_run(job="slow_async")
        pid = int(await wait_for_file(tmp_path / "async_started"))
        os.kill(pid, signal.SIGTERM)
        with anyio.fail_after(20):
            result = await run.wait()
        assert result.status == "CANCELED", result.failure_message
        record = await run.refresh()
        assert record.status is RunStatus.CANCELED
        assert record.failure_reason is not None
        assert "received SIGTERM" in record.failure_reason
        assert "1 s shutdown grace" in record.failure_reason
        events = await ws.instance.storage.get_events(run.run_id)
        assert events[-1].event_type == "RUN_CANCELED"
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        reasons = [
            e.payload.message
            for e in events
            if isinstance(e.payload, EnginePayload) and e.payload.metadata.get("cancel_reason")
        ]
        assert reasons == [record.failure_reason]
        assert "exited with code" not in (result.failure_message or "")


async def test_sigterm_lets_runs_in_flight_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    os.environ["RUNS_TEST_DIR"] = str(tmp_path)
    async with standalone_server(
        "-f", str(PIPELINE), "--port", "0", "--shutdown-grace", "30"
    ) as server:
        async with Workspace.from_targets(
            grpc_servers=[f"127.0.0.1:{server.port}"], instance=Instance.ephemeral()
        ) as ws:
            run = await ws.launch_run(job="blocked")
            await wait_for_file(tmp_path / "blocking_started")
            server.process.send_signal(signal.SIGTERM)
            # Draining: a new run is refused with the reason, as one RUN_FAILURE.
            with anyio.fail_after(20):
                while True:
                    late = await (await ws.launch_run(job="diamond")).wait()
                    if late.status == "FAILURE":
                        break
                    await anyio.sleep(0.05)  # the signal may not have arrived yet
            assert late.failure_message is not None
            assert "shutting down (received SIGTERM)" in late.failure_message
            # The run in flight finishes within the grace.
            (tmp_path / "release").write_text("go")
            with anyio.fail_after(20):
                result = await run.wait()
            assert result.status == "SUCCESS", result.failure_message
            with anyio.fail_after(20):
                assert await server.process.wait() == 0

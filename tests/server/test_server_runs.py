"""CodeServerRuns behind a real code server: ExecuteRun streams, CancelRun, ValidateRun, stored outputs."""

from __future__ import annotations

import pickle
import textwrap
import time
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.execution.io_manager import FilesystemIOManager
from runtime.protocol import messages as m
from tests.helpers_server import start_code_server
from tests.server.server_helpers import collect

if TYPE_CHECKING:
    from pathlib import Path


pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

DEFINITIONS = textwrap.dedent(
    """
    from __future__ import annotations

    import asyncio
    import time

    import msgspec

    from runtime import Definitions, StepContext, asset, job, op


    class Scale(msgspec.Struct):
        factor: int


    @asset
    async def numbers() -> list[int]:
        await asyncio.sleep(0.01)
        return [1, 2, 3]


    @asset
    def total(numbers: list[int], config: Scale) -> int:
        print("summing", numbers)
        return sum(numbers) * config.factor


    @op
    async def waits_forever() -> None:
        await asyncio.sleep(60)


    @op
    def polls(context: StepContext) -> str:
        deadline = time.monotonic() + 30
        while not context.is_cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        return "noticed"


    @job
    def long_job() -> None:
        waits_forever()
        polls()


    @op
    async def short_wait() -> str:
        await asyncio.sleep(0.3)
        return "done"


    @job
    def short_job() -> None:
        short_wait()


    defs = Definitions(assets=[numbers, total], jobs=[long_job, short_job])
    """
)


async def test_execute_run_streams_every_event_in_order_and_stores_outputs(
    location: Path, tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    request = m.ExecuteRunRequest(
        run_id="run-1",
        job_name="__ASSET_JOB",
        run_config={"ops": {"total": {"config": {"factor": 10}}}},
        storage_dir=str(storage),
        first_sequence=2,
    )
    async with start_code_server("--python-file", str(location), "--port", "0") as server:
        events = await collect(server, request)
    assert [e.sequence for e in events] == list(range(2, len(events) + 2))
    assert events[0].event_type == "RUN_START" and events[-1].event_type == "RUN_SUCCESS"
    by_step = {
        key: [e.event_type for e in events if e.step_key == key] for key in ("numbers", "total")
    }
    assert by_step["numbers"] == [
        "STEP_START",
        "STEP_OUTPUT",
        "ASSET_MATERIALIZATION",
        "STEP_SUCCESS",
    ]
    assert by_step["total"] == [
        "STEP_START",
        "LOG",
        "STEP_OUTPUT",
        "ASSET_MATERIALIZATION",
        "STEP_SUCCESS",
    ]
    # Outputs were on disk before the run's final event.
    assert FilesystemIOManager(storage, "run-1").load("total", "result") == 60
    assert pickle.loads((storage / "assets" / "numbers.pickle").read_bytes()) == [1, 2, 3]


async def test_re_execution_reads_reused_outputs_from_the_parent_run(
    location: Path, tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    config = {"ops": {"total": {"config": {"factor": 2}}}}
    async with start_code_server("--python-file", str(location), "--port", "0") as server:
        first = await collect(
            server,
            m.ExecuteRunRequest(
                run_id="parent", job_name="__ASSET_JOB", run_config=config, storage_dir=str(storage)
            ),
        )
        second = await collect(
            server,
            m.ExecuteRunRequest(
                run_id="child",
                job_name="__ASSET_JOB",
                run_config={"ops": {"total": {"config": {"factor": 5}}}},
                storage_dir=str(storage),
                parent_run_id="parent",
                reused_steps=["numbers"],
            ),
        )
    assert first[-1].event_type == "RUN_SUCCESS"
    assert second[-1].event_type == "RUN_SUCCESS"
    assert {e.step_key for e in second} == {None, "total"}
    assert FilesystemIOManager(storage, "child").load("total", "result") == 30


async def test_a_run_that_cannot_start_ends_with_a_run_failure(location: Path) -> None:
    async with start_code_server("--python-file", str(location), "--port", "0") as server:
        bad_config = await collect(
            server,
            m.ExecuteRunRequest(
                run_id="r1",
                job_name="__ASSET_JOB",
                run_config={"ops": {"total": {"config": {"factor": "many"}}}},
            ),
        )
        unknown_job = await collect(server, m.ExecuteRunRequest(run_id="r2", job_name="nope"))
        async with server.client() as client:
            valid = await client.validate_run(
                m.ValidateRunRequest(
                    job_name="__ASSET_JOB", run_config={"ops": {"total": {"config": {"factor": 1}}}}
                )
            )
            bad_selection = await client.validate_run(
                m.ValidateRunRequest(job_name="long_job", step_selection=["nope"])
            )
            no_job = await client.validate_run(m.ValidateRunRequest(job_name="nope"))
            missing_config = await client.validate_run(m.ValidateRunRequest(job_name="__ASSET_JOB"))
    for events in (bad_config, unknown_job):
        assert [e.event_type for e in events] == ["RUN_FAILURE"]
        assert events[0].sequence == 1
    failure = bad_config[0].payload
    assert isinstance(failure, m.RunFailurePayload)
    assert "$.ops.total.config.factor" in failure.message
    assert failure.error is not None and failure.error.type.endswith("RunConfigError")
    unknown = unknown_job[0].payload
    assert isinstance(unknown, m.RunFailurePayload) and "'nope'" in unknown.message
    assert "long_job" in unknown.message
    assert valid.error is None and valid.problem is None
    assert bad_selection.problem == "step_selection"
    assert no_job.problem == "unknown_job"
    assert missing_config.problem == "run_config"


async def test_cancel_run_stops_async_steps_and_waits_for_thread_steps(location: Path) -> None:
    request = m.ExecuteRunRequest(run_id="long", job_name="long_job")
    events: list[m.RunEvent] = []
    async with start_code_server("--python-file", str(location), "--port", "0") as server:
        async with server.client() as client, anyio.create_task_group() as tg:
            started = anyio.Event()

            async def follow() -> None:
                async for event in client.execute_run(request):
                    events.append(event)
                    if sum(e.event_type == "STEP_START" for e in events) == 2:
                        started.set()

            tg.start_soon(follow)
            with anyio.fail_after(10):
                await started.wait()
            canceled_at = time.monotonic()
            reply = await client.cancel_run("long")
            assert reply.found
        elapsed = time.monotonic() - canceled_at
        async with server.client() as client:
            assert not (await client.cancel_run("long")).found
    assert elapsed < 5
    types = [e.event_type for e in events if e.step_key is None]
    assert types == ["RUN_START", "RUN_CANCELING", "ENGINE_EVENT", "RUN_CANCELED"]
    ends = {
        e.step_key: e.event_type for e in events if e.event_type in ("STEP_SUCCESS", "STEP_FAILURE")
    }
    assert ends == {"waits_forever": "STEP_FAILURE", "polls": "STEP_SUCCESS"}


async def test_shutdown_with_grace_lets_a_run_in_flight_finish(location: Path) -> None:
    events: list[m.RunEvent] = []
    async with start_code_server("--python-file", str(location), "--port", "0") as server:
        async with server.client() as client, anyio.create_task_group() as tg:
            started = anyio.Event()

            async def follow() -> None:
                request = m.ExecuteRunRequest(run_id="short", job_name="short_job")
                async for event in client.execute_run(request):
                    events.append(event)
                    if event.event_type == "STEP_START":
                        started.set()

            tg.start_soon(follow)
            with anyio.fail_after(10):
                await started.wait()
            reply = await client.shutdown(grace_seconds=10)
            assert reply.runs_in_flight == 1
        assert await server.wait() == 0
    assert events[-1].event_type == "RUN_SUCCESS"

"""launch_run end to end: a real code server, real gRPC, a real SQLite instance."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.errors import CodeLocationError, RunConfigError, UnknownJobError
from runtime.instance.records import RunStatus
from runtime.protocol.messages import RUN_END_EVENTS, StepFailurePayload
from tests.runs.runs_helpers import pipeline_workspace

if TYPE_CHECKING:
    from runtime.protocol.messages import RunEvent
    from runtime.workspace.options import SupervisorOptions

pytestmark = pytest.mark.anyio


def check_complete(events: list[RunEvent], steps: set[str]) -> None:
    """Sequences gapless from 1; RUN_STARTING first; one end event, last; each step ends once."""
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].event_type == "RUN_STARTING"
    assert events[1].event_type == "RUN_START"
    assert events[-1].event_type in RUN_END_EVENTS
    assert sum(e.event_type in RUN_END_EVENTS for e in events) == 1
    for step in steps:
        kinds = [e.event_type for e in events if e.step_key == step]
        ends = [k for k in kinds if k in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED")]
        assert len(ends) == 1, (step, kinds)
        if ends[0] != "STEP_SKIPPED":
            assert kinds[0] == "STEP_START", (step, kinds)


async def test_a_diamond_runs_and_every_event_is_stored(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        run = await ws.launch_run(job="diamond")
        followed = [event async for event in run.events()]
        result = await run.wait()
        assert result.status == "SUCCESS"
        assert run.status == RunStatus.SUCCESS
        stored = await ws.instance.storage.get_events(run.run_id)
        assert stored == followed
        check_complete(stored, {"one", "add_one", "add_one_2", "total"})
        record = await ws.instance.storage.get_run(run.run_id)
        assert record is not None
        assert record.status == RunStatus.SUCCESS
        assert record.location_name == "runs_pipeline"
        assert record.started_at is not None and record.ended_at is not None
        assert set(result.steps) == {"one", "add_one", "add_one_2", "total"}
        assert all(step.status == "SUCCESS" for step in result.steps.values())


async def test_the_implicit_asset_job_runs(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        result = await (await ws.launch_run(job="__ASSET_JOB")).wait()
        assert result.status == "SUCCESS"
        events = await ws.instance.storage.get_events(result.run_id)
        materialized = {e.step_key for e in events if e.event_type == "ASSET_MATERIALIZATION"}
        assert materialized == {"numbers", "doubled"}


async def test_bad_input_raises_and_stores_nothing(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        with pytest.raises(UnknownJobError, match="job named 'nope'.*runs_pipeline:diamond"):
            await ws.launch_run(job="nope")
        with pytest.raises(CodeLocationError, match="no code location named 'elsewhere'"):
            await ws.launch_run(job="diamond", location="elsewhere")
        with pytest.raises(RunConfigError, match=r"greet.*\$\.ops\.greet\.config\.times"):
            await ws.launch_run(
                job="configured",
                run_config={"ops": {"greet": {"config": {"name": "ada", "times": "x"}}}},
            )
        with pytest.raises(RunConfigError, match="greet"):
            await ws.launch_run(job="configured")
        # A misspelt field used to run with the default: it is named, with the right one.
        with pytest.raises(
            RunConfigError,
            match=r"unknown field 'timez' at `\$\.ops\.greet\.config\.timez` "
            r"\(did you mean 'times'\?\)",
        ):
            await ws.launch_run(
                job="configured",
                run_config={"ops": {"greet": {"config": {"name": "ada", "timez": 2}}}},
            )
        assert await ws.instance.storage.count_runs() == 0


async def test_run_config_reaches_the_step(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        run = await ws.launch_run(
            job="configured",
            run_config={"ops": {"greet": {"config": {"name": "ada", "times": 2}}}},
            tags={"team": "data"},
        )
        result = await run.wait()
        assert result.status == "SUCCESS"
        outputs = [
            e.payload
            for e in await ws.instance.storage.get_events(run.run_id)
            if e.event_type == "STEP_OUTPUT"
        ]
        assert "hello ada hello ada" in repr(outputs)
        record = await run.refresh()
        assert record.tags == {"team": "data"}
        assert record.run_config["ops"]["greet"]["config"]["name"] == "ada"


async def test_a_failing_step_skips_downstream(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        run = await ws.launch_run(job="failing")
        result = await run.wait()
        assert result.status == "FAILURE"
        assert result.steps["explode"].status == "FAILURE"
        error = result.steps["explode"].error
        assert error is not None and error.type == "ValueError"
        assert "the source is empty" in error.message
        assert "raise ValueError" in error.traceback
        assert result.steps["after_explode"].status == "SKIPPED"
        events = await ws.instance.storage.get_events(run.run_id)
        check_complete(events, {"explode", "after_explode"})
        failure = next(e for e in events if e.event_type == "STEP_FAILURE")
        assert isinstance(failure.payload, StepFailurePayload)


async def test_retries_follow_the_policy(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        result = await (await ws.launch_run(job="retrying")).wait()
        assert result.status == "SUCCESS"
        kinds = [e.event_type for e in await ws.instance.storage.get_events(result.run_id)]
        assert kinds.count("STEP_UP_FOR_RETRY") == 2
        assert kinds.count("STEP_RESTARTED") == 2
        assert (tmp_path / "retried_attempts").read_text() == "3"


async def test_several_readers_follow_one_run(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        run = await ws.launch_run(job="blocked")
        seen: list[list[int]] = [[], [], []]

        async def read(i: int) -> None:
            async for event in run.events():
                seen[i].append(event.sequence)

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(read, i)
            await anyio.sleep(0.2)
            (tmp_path / "release").write_text("go")
        assert seen[0] == seen[1] == seen[2]
        assert seen[0] == list(range(1, len(seen[0]) + 1))
        assert (await run.wait()).status == "SUCCESS"


async def test_fifty_runs_at_once_are_all_stored(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        runs = []

        async def launch() -> None:
            runs.append(await ws.launch_run(job="diamond"))

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(launch)
        results = []
        for run in runs:
            results.append(await run.wait())
        assert all(r.status == "SUCCESS" for r in results)
        assert len({r.run_id for r in results}) == 50
        for run in runs:
            events = await ws.instance.storage.get_events(run.run_id)
            check_complete(events, {"one", "add_one", "add_one_2", "total"})
        assert await ws.instance.storage.count_runs() == 50


async def test_a_location_in_error_refuses_runs_and_the_rest_keep_working(tmp_path: Path) -> None:
    from runtime.host.workspace import Workspace
    from runtime.instance.instance import Instance
    from tests.runs.runs_helpers import PIPELINE

    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_anywhere\n")
    async with Workspace.from_targets(
        python_files=[PIPELINE, broken], instance=Instance.ephemeral(), restart=False
    ) as ws:
        assert ws.locations["broken"].status == "error"
        with pytest.raises(CodeLocationError, match="'broken'.*no_such_module_anywhere"):
            await ws.launch_run(job="anything", location="broken")
        with pytest.raises(UnknownJobError, match="locations in error.*broken"):
            await ws.launch_run(job="only_in_broken")
        assert (await (await ws.launch_run(job="diamond")).wait()).status == "SUCCESS"
        assert await ws.instance.storage.count_runs() == 1


async def test_run_workers_are_refused_for_grpc_server_locations(
    fast_options: SupervisorOptions,
) -> None:
    from runtime.host.workspace import Workspace
    from runtime.instance.instance import Instance
    from runtime.workspace.config import grpc_server_spec
    from tests.helpers_server import start_code_server

    hello = Path(__file__).resolve().parents[2] / "examples" / "hello_world" / "definitions.py"
    async with start_code_server("-f", str(hello), "-p", "0") as server:
        spec = grpc_server_spec(
            host="127.0.0.1", port=int(server.address.rpartition(":")[2]), socket=None
        )
        async with Workspace.from_specs(
            [spec], options=fast_options, instance=Instance.ephemeral()
        ) as ws:
            with pytest.raises(CodeLocationError, match="is a grpc_server.*run worker"):
                await ws.launch_run(job="etl", launcher="run_worker")
            assert await ws.instance.storage.count_runs() == 0
            assert (await (await ws.launch_run(job="etl")).wait()).status == "SUCCESS"


async def test_a_jobs_own_tags_are_stored_on_its_runs(tmp_path: Path) -> None:
    async with pipeline_workspace(tmp_path) as ws:
        run = await ws.launch_run(job="pid_job", tags={"kind": "override"})
        assert (await run.wait()).status == "SUCCESS"
        record = await run.refresh()
        assert record.tags == {"team": "data", "kind": "override"}


async def test_an_unknown_run_launcher_is_refused_before_anything_is_stored(
    tmp_path: Path,
) -> None:
    from runtime.instance.config import InstanceConfig, RunLauncherConfig
    from runtime.instance.instance import Instance

    instance = Instance.ephemeral(InstanceConfig(run_launcher=RunLauncherConfig(kind="run_wroker")))
    async with pipeline_workspace(tmp_path, instance=instance) as ws:
        with pytest.raises(
            CodeLocationError, match=r"run_launcher\.run_wroker.*Did you mean 'run_worker'"
        ):
            await ws.launch_run(job="diamond")
        with pytest.raises(
            CodeLocationError,
            match="no run launcher named 'nope'; the launchers are: in_process, run_worker",
        ):
            await ws.launch_run(job="diamond", launcher="nope")
        assert await ws.count_runs() == 0


async def test_an_unknown_executor_is_refused_at_launch_naming_instance_yaml(
    tmp_path: Path,
) -> None:
    from runtime.errors import InstanceConfigError
    from runtime.instance.config import ExecutorConfig, InstanceConfig
    from runtime.instance.instance import Instance

    instance = Instance.ephemeral(InstanceConfig(executor=ExecutorConfig(kind="multiprocesss")))
    async with pipeline_workspace(tmp_path, instance=instance) as ws:
        with pytest.raises(
            InstanceConfigError, match=r"`\$\.executor` cannot run job 'diamond'.*'multiprocess'"
        ):
            await ws.launch_run(job="diamond")
        assert await ws.count_runs() == 0

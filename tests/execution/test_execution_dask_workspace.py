"""A launched run through a real Workspace whose instance.yaml chooses the dask executor."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.errors import InstanceConfigError, RunConfigError
from runtime.execution.fsspec_io import FsspecIOManager
from runtime.host.workspace import Workspace
from runtime.instance.instance import Instance
from runtime.protocol.messages import EnginePayload

if TYPE_CHECKING:
    from pathlib import Path

    from tests.execution.dask_cluster import DaskCluster

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

# User code as a user writes it; its folder is on no worker's path until the
# executor puts it there.
USER_CODE = """
import os
from pathlib import Path

from runtime import Definitions, job, op

# Beside the code, not in an environment variable: the workers have their own.
CONTROL = Path(__file__).resolve().parent.parent


@op
def numbers() -> list[int]:
    print("making numbers")
    return [1, 2, 3]


@op
async def doubled(numbers: list[int]) -> list[int]:
    return [n * 2 for n in numbers]


@op
def where() -> int:
    return os.getpid()


@op
def checked(doubled: list[int], where: int) -> int:
    if not (CONTROL / "fixed").exists():
        raise RuntimeError("not fixed yet")
    return sum(doubled) + 0 * where


@job
def on_dask():
    checked(doubled(numbers()), where())


defs = Definitions(jobs=[on_dask])
"""


def instance_home(folder: Path, address: str) -> Path:
    home = folder / "home"
    home.mkdir()
    (home / "instance.yaml").write_text(
        textwrap.dedent(
            f"""
            executor:
              kind: dask
              dask:
                scheduler_address: {address}
                connect_timeout: 5
            """
        )
    )
    return home


async def test_a_launched_run_executes_on_the_cluster_and_reexecutes_from_failure(
    dask_cluster: DaskCluster, dask_address: str, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "dask_user_pipeline.py").write_text(USER_CODE)
    async with (
        Instance.from_home(instance_home(tmp_path, dask_address)) as instance,
        Workspace.from_targets(
            python_files=[code / "dask_user_pipeline.py"],
            instance=instance,
            heartbeat_timeout=20.0,
            stop_grace=5.0,
        ) as ws,
    ):
        location = ws.locations["dask_user_pipeline"]
        assert location.status == "loaded", location.error
        with anyio.fail_after(120):
            run = await ws.launch_run(job="on_dask")
            events = [event async for event in run.events()]
            result = await run.wait()
        assert result.status == "FAILURE"
        assert result.steps["checked"].error is not None
        assert result.steps["checked"].error.message == "not fixed yet"
        assert await instance.storage.get_events(run.run_id) == events
        started = next(e.payload for e in events if e.event_type == "ENGINE_EVENT")
        assert isinstance(started, EnginePayload)
        assert started.message.startswith(f"Steps run on the Dask cluster at {dask_address}")
        assert any(
            e.step_key == "numbers" and getattr(e.payload, "message", "") == "making numbers"
            for e in events
        )
        outputs = FsspecIOManager(instance.artifacts_dir, run.run_id)
        assert outputs.load("where", "result") in dask_cluster.worker_pids()

        # Re-execution from failure runs only `checked`, reading the others' outputs.
        (tmp_path / "fixed").write_text("yes")
        with anyio.fail_after(120):
            again = await ws.reexecute(run.run_id)
            second = await again.wait()
        assert second.status == "SUCCESS"
        assert set(second.steps) == {"checked"}
        assert FsspecIOManager(instance.artifacts_dir, again.run_id).load("checked", "result") == 12

        # A bad choice is refused at launch, naming where it was made.
        with pytest.raises(RunConfigError, match=r"`\$\.execution`.*'n_workers'"):
            await ws.launch_run(job="on_dask", run_config={"execution": {"dask": {"n_workers": 0}}})
        assert await ws.count_runs() == 2


async def test_a_bad_dask_setting_in_instance_yaml_is_refused_at_launch(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "dask_user_pipeline.py").write_text(USER_CODE)
    home = instance_home(tmp_path, "tcp://127.0.0.1:1")
    (home / "instance.yaml").write_text(
        "executor:\n  kind: dask\n  dask:\n    scheduler_adress: tcp://127.0.0.1:1\n"
    )
    async with (
        Instance.from_home(home) as instance,
        Workspace.from_targets(
            python_files=[code / "dask_user_pipeline.py"], instance=instance, stop_grace=5.0
        ) as ws,
    ):
        with pytest.raises(InstanceConfigError) as raised:
            await ws.launch_run(job="on_dask")
        assert str(raised.value) == (
            f"{home / 'instance.yaml'}: `$.executor` cannot run job 'on_dask' of location "
            "'dask_user_pipeline': Executor 'dask' of run '<new run of on_dask>': unknown "
            "option 'scheduler_adress' (did you mean 'scheduler_address'?); the options are: "
            "scheduler_address, n_workers, threads_per_worker, processes, connect_timeout, "
            "io_url, io_options, inline_bytes."
        )
        assert await ws.count_runs() == 0

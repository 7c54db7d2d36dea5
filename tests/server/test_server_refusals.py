"""A run the code server refuses ends with one RUN_FAILURE saying why, whatever refused it."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

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

    import threading

    from runtime import Definitions, job, op


    class Guarded:
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.value = 21


    @op(pool="db")
    def guarded() -> Guarded:
        return Guarded()


    @op(pool="db")
    def doubled(guarded: Guarded) -> int:
        return guarded.value * 2


    @job
    def locked() -> None:
        doubled(guarded())


    defs = Definitions(jobs=[locked])
    """
)


def only_failure(events: list[m.RunEvent], first_sequence: int) -> str:
    assert [e.event_type for e in events] == ["RUN_FAILURE"], events
    assert events[0].sequence == first_sequence
    payload = events[0].payload
    assert isinstance(payload, m.RunFailurePayload)
    assert payload.error is not None
    return payload.message


async def test_bad_executor_options_and_io_settings_are_refused_with_their_reason(
    location: Path, tmp_path: Path
) -> None:
    async with start_code_server("--python-file", str(location), "--port", "0") as server:
        negative = await collect(
            server,
            m.ExecuteRunRequest(
                run_id="r1", job_name="locked", max_concurrent=-1, first_sequence=2
            ),
        )
        zero_pool = await collect(
            server, m.ExecuteRunRequest(run_id="r2", job_name="locked", pool_limits={"db": 0})
        )
        no_storage = await collect(
            server,
            m.ExecuteRunRequest(
                run_id="r3", job_name="locked", parent_run_id="r0", reused_steps=["guarded"]
            ),
        )
        unnumbered = await collect(
            server, m.ExecuteRunRequest(run_id="r4", job_name="locked", first_sequence=0)
        )
        unknown_executor = await collect(
            server, m.ExecuteRunRequest(run_id="r5", job_name="locked", executor="spark")
        )
        refused_options = await collect(
            server,
            m.ExecuteRunRequest(
                run_id="r6", job_name="locked", executor_config={"scheduler_address": "x:1"}
            ),
        )
        # The server is fine afterwards, and a refused id can run once corrected.
        fine = await collect(
            server, m.ExecuteRunRequest(run_id="r2", job_name="locked", pool_limits={"db": 1})
        )
    message = only_failure(negative, first_sequence=2)
    assert message.startswith("Run 'r1' of job 'locked' could not start: ")
    assert "max_concurrent must be >= 0 (0: no limit), got -1 for run 'r1'." in message
    message = only_failure(zero_pool, first_sequence=1)
    assert "The limit of pool 'db' must be >= 1, got 0 for run 'r2'." in message
    message = only_failure(no_storage, first_sequence=1)
    assert message == (
        "Run 'r3' of job 'locked' could not start: it reuses the stored outputs of steps "
        "guarded, but this code server keeps run outputs in memory only (it was started "
        "without --storage-dir), so it cannot re-execute from stored outputs"
    )
    message = only_failure(unnumbered, first_sequence=1)
    assert "first_sequence must be >= 1, got 0 for run 'r4'." in message
    message = only_failure(unknown_executor, first_sequence=1)
    assert message.endswith(
        "Unknown executor 'spark' for run 'r5'; the registered executors are: "
        "dask, in_process, multiprocess."
    )
    message = only_failure(refused_options, first_sequence=1)
    assert message.endswith(
        "Executor 'in_process' of run 'r6': it takes no options, got 'scheduler_address'."
    )
    assert fine[0].event_type == "RUN_START" and fine[-1].event_type == "RUN_SUCCESS"
    assert not [e for e in fine if e.event_type == "ENGINE_EVENT"]


async def test_unpicklable_outputs_and_unlimited_pools_are_engine_events(
    location: Path, tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    args = ("--python-file", str(location), "--port", "0", "--storage-dir", str(storage))
    async with start_code_server(*args) as server:
        events = await collect(server, m.ExecuteRunRequest(run_id="r1", job_name="locked"))
    assert events[0].event_type == "RUN_START" and events[-1].event_type == "RUN_SUCCESS"
    messages = []
    for event in events:
        if event.event_type == "ENGINE_EVENT":
            assert isinstance(event.payload, m.EnginePayload)
            messages.append(event.payload.message)
    assert messages[0] == (
        "Steps of pool 'db' run without a limit: set executor.pools.db in instance.yaml "
        "(or pass pool_limits when executing in process)."
    )
    assert len(messages) == 2
    assert messages[1].startswith(
        "Output 'result' of step 'guarded' was passed on in memory but could not be saved "
        "for re-execution: TypeError: cannot pickle"
    )
    assert FilesystemIOManager(storage, "r1").load("doubled", "result") == 42

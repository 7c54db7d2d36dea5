"""Run status transitions through the instance: the rules, what each stamps, and races."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.errors import RunNotFoundError
from runtime.instance.host import current_host
from runtime.instance.instance import Instance
from runtime.instance.records import RunHost, RunStatus, RunStatusTransitionError
from tests.instance.storage_helpers import make_run

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.anyio

ELSEWHERE = RunHost(hostname="elsewhere", pid=42, boot_id="b", process_start=7)


@pytest.fixture
async def instance(tmp_path: Path) -> AsyncIterator[Instance]:
    async with Instance.from_home(tmp_path) as instance:
        yield instance


async def test_lifecycle_stamps_times_and_the_driving_host(instance: Instance) -> None:
    await instance.storage.add_run(make_run("r1", host=ELSEWHERE))
    before = time.time()
    starting = await instance.update_run_status("r1", RunStatus.STARTING)
    assert starting.host == current_host()  # the process that will drive it
    assert starting.started_at is None and starting.updated_at >= before
    started = await instance.update_run_status("r1", RunStatus.STARTED, host=ELSEWHERE)
    assert started.host == current_host()  # STARTED keeps the host STARTING recorded
    assert started.started_at is not None and started.ended_at is None
    done = await instance.update_run_status("r1", RunStatus.SUCCESS)
    assert done.started_at == started.started_at
    assert done.ended_at is not None and done.ended_at >= started.started_at
    assert done.is_finished
    assert await instance.storage.get_run("r1") == done


async def test_started_records_a_host_only_when_there_is_none(instance: Instance) -> None:
    await instance.storage.add_run(make_run("hostless", status=RunStatus.STARTING))
    started = await instance.update_run_status("hostless", RunStatus.STARTED, host=ELSEWHERE)
    assert started.host == ELSEWHERE
    explicit = await instance.create_run("etl", run_id="r2")
    moved = await instance.update_run_status(explicit.run_id, RunStatus.STARTING, host=ELSEWHERE)
    assert moved.host == ELSEWHERE


async def test_illegal_transition_is_rejected_and_changes_nothing(instance: Instance) -> None:
    await instance.create_run("etl", run_id="r1")
    with pytest.raises(RunStatusTransitionError, match="cannot move from NOT_STARTED to SUCCESS"):
        await instance.update_run_status("r1", RunStatus.SUCCESS)
    await instance.update_run_status("r1", RunStatus.STARTING)
    await instance.update_run_status("r1", RunStatus.STARTED)
    await instance.update_run_status("r1", RunStatus.FAILURE, failure_reason="step x failed")
    with pytest.raises(RunStatusTransitionError, match="it is finished"):
        await instance.update_run_status("r1", RunStatus.STARTED)
    record = await instance.storage.get_run("r1")
    assert record is not None
    assert (record.status, record.failure_reason) == (RunStatus.FAILURE, "step x failed")


async def test_asking_for_the_status_a_run_has_is_a_no_op(instance: Instance) -> None:
    await instance.create_run("etl", run_id="r1")
    await instance.update_run_status("r1", RunStatus.STARTING)
    canceling = await instance.update_run_status("r1", RunStatus.CANCELING)
    again = await instance.update_run_status("r1", RunStatus.CANCELING)
    assert again == canceling
    canceled = await instance.update_run_status("r1", RunStatus.CANCELED)
    assert await instance.update_run_status("r1", RunStatus.CANCELED) == canceled
    # With expected_from, the same status still has to be one of those expected.
    with pytest.raises(RunStatusTransitionError, match="not one of STARTED"):
        await instance.update_run_status(
            "r1", RunStatus.CANCELED, expected_from={RunStatus.STARTED}
        )


async def test_expected_from_guards_the_transition(instance: Instance) -> None:
    await instance.create_run("etl", run_id="r1")
    await instance.update_run_status("r1", RunStatus.STARTING)
    with pytest.raises(RunStatusTransitionError, match="not one of NOT_STARTED"):
        await instance.update_run_status(
            "r1", RunStatus.CANCELED, expected_from={RunStatus.NOT_STARTED}
        )
    record = await instance.update_run_status(
        "r1", RunStatus.CANCELING, expected_from={RunStatus.STARTING, RunStatus.STARTED}
    )
    assert record.status is RunStatus.CANCELING


async def test_unknown_run_raises(instance: Instance) -> None:
    with pytest.raises(RunNotFoundError, match="No run with id ghost in SQLite database at"):
        await instance.update_run_status("ghost", RunStatus.STARTING)


async def test_racing_instances_have_one_winner_and_the_losers_re_decide(tmp_path: Path) -> None:
    async with Instance.from_home(tmp_path) as first, Instance.from_home(tmp_path) as second:
        await first.create_run("etl", run_id="r1")
        outcomes: list[str] = []

        async def start(instance: Instance, name: str) -> None:
            try:
                await instance.update_run_status(
                    "r1", RunStatus.STARTING, expected_from={RunStatus.NOT_STARTED}
                )
            except RunStatusTransitionError:
                outcomes.append("refused")
            else:
                outcomes.append(name)

        async with anyio.create_task_group() as group:
            for index in range(10):
                group.start_soon(start, first if index % 2 else second, f"winner-{index}")
        assert sorted(outcomes).count("refused") == 9

        # Without expected_from, a loser of the race re-reads and applies its move from
        # where the winner left the run: both cancel requests end in one CANCELING.
        await first.update_run_status("r1", RunStatus.STARTED)
        results = []

        async def cancel(instance: Instance) -> None:
            results.append(await instance.update_run_status("r1", RunStatus.CANCELING))

        async with anyio.create_task_group() as group:
            group.start_soon(cancel, first)
            group.start_soon(cancel, second)
        assert [r.status for r in results] == [RunStatus.CANCELING, RunStatus.CANCELING]

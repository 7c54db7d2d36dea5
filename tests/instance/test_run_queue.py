"""The run queue held in storage: limits and order across two Instance objects on one
RUNTIME_HOME, tag limits, dead creators, cancel requests and the queue's lease."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest

from runtime.instance.config import (
    NoOptions,
    QueuedRunCoordinatorConfig,
    RunCoordinatorConfig,
    TagConcurrencyLimit,
)
from runtime.instance.host import current_host
from runtime.instance.instance import Instance
from runtime.instance.records import RunHost, RunStatus
from runtime.instance.run_queue import RUN_QUEUE_LEASE
from tests.instance.storage_helpers import make_run

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.anyio

# Another machine: this one cannot tell whether it lives, so its runs are never failed from here.
ELSEWHERE = RunHost(hostname=current_host().hostname + "-elsewhere", pid=7)


def queued(max_runs: int = 10, *limits: TagConcurrencyLimit) -> QueuedRunCoordinatorConfig:
    return QueuedRunCoordinatorConfig(
        max_concurrent_runs=max_runs, tag_concurrency_limits=list(limits)
    )


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Instance, Instance]]:
    """Two instances on one RUNTIME_HOME, as two host processes would open it."""
    async with Instance.from_home(tmp_path) as first, Instance.from_home(tmp_path) as second:
        yield first, second


async def test_queued_runs_start_in_creation_order_under_the_total_limit(
    pair: tuple[Instance, Instance],
) -> None:
    first, second = pair
    for index in range(5):
        await (first if index % 2 else second).create_run("etl", run_id=f"q{index}", queued=True)
    await first.create_run("etl", run_id="unqueued")  # not the queue's business
    config = queued(2)

    dequeued = await first.dequeue_runs(config)
    assert [run.run_id for run in dequeued] == ["q0", "q1"]
    assert all(run.status is RunStatus.STARTING for run in dequeued)
    assert await second.dequeue_runs(config) == []  # the limit holds across instances

    await first.update_run_status("q0", RunStatus.STARTED)
    await first.update_run_status("q0", RunStatus.SUCCESS)
    assert [run.run_id for run in await second.dequeue_runs(config)] == ["q2"]
    await second.update_run_status("q1", RunStatus.FAILURE)
    await second.update_run_status("q2", RunStatus.CANCELED)
    assert [run.run_id for run in await first.dequeue_runs(config)] == ["q3", "q4"]
    assert await first.dequeue_runs(config) == []
    unqueued = await first.storage.get_run("unqueued")
    assert unqueued is not None and unqueued.status is RunStatus.NOT_STARTED


async def test_a_dequeued_run_keeps_its_creating_host(pair: tuple[Instance, Instance]) -> None:
    first, _ = pair
    await first.storage.add_run(make_run("remote", host=ELSEWHERE, queued_at=1.0))
    [run] = await first.dequeue_runs(queued(1))
    assert (run.run_id, run.host, run.status) == ("remote", ELSEWHERE, RunStatus.STARTING)


async def test_runs_in_flight_outside_the_queue_count_against_the_limits(
    pair: tuple[Instance, Instance],
) -> None:
    first, second = pair
    await first.create_run("etl", run_id="direct", tags={"team": "data"})
    await first.update_run_status("direct", RunStatus.STARTING)
    await second.create_run("etl", run_id="q", tags={"team": "data"}, queued=True)
    await second.create_run("etl", run_id="other", tags={"team": "web"}, queued=True)
    limit = TagConcurrencyLimit(key="team", value="data", limit=1)
    assert [run.run_id for run in await second.dequeue_runs(queued(10, limit))] == ["other"]
    assert await second.dequeue_runs(queued(2, limit)) == []


async def test_tag_limits_by_value_by_key_and_zero(pair: tuple[Instance, Instance]) -> None:
    first, second = pair
    runs = [
        ("d1", {"team": "data"}),
        ("d2", {"team": "data"}),  # held back by team=data: 1
        ("w1", {"team": "web"}),
        ("w2", {"team": "web"}),  # held back by the key limit on team: 2
        ("x1", {"blocked": "yes"}),  # a limit of 0 blocks
        ("n1", {}),  # under no tag limit
        ("n2", {}),  # held back by max_concurrent_runs: 3
    ]
    for index, (run_id, tags) in enumerate(runs):
        await (first if index % 2 else second).create_run(
            "etl", run_id=run_id, tags=tags, queued=True
        )
    limits = (
        TagConcurrencyLimit(key="team", value="data", limit=1),
        TagConcurrencyLimit(key="team", limit=2),
        TagConcurrencyLimit(key="blocked", limit=0),
    )
    assert [run.run_id for run in await first.dequeue_runs(queued(3, *limits))] == [
        "d1",
        "w1",
        "n1",
    ]
    assert await second.dequeue_runs(queued(3, *limits)) == []
    # A larger total: only the run under no tag limit fits.
    assert [run.run_id for run in await second.dequeue_runs(queued(10, *limits))] == ["n2"]
    await first.update_run_status("d1", RunStatus.FAILURE)  # team=data and team free a slot
    assert [run.run_id for run in await first.dequeue_runs(queued(10, *limits))] == ["d2"]
    await first.update_run_status("w1", RunStatus.FAILURE)
    assert [run.run_id for run in await second.dequeue_runs(queued(10, *limits))] == ["w2"]
    x1 = await first.storage.get_run("x1")
    assert x1 is not None and x1.status is RunStatus.NOT_STARTED


async def test_a_queued_run_of_a_dead_creator_is_failed_not_started(
    pair: tuple[Instance, Instance],
) -> None:
    first, _ = pair
    dead = RunHost(hostname=current_host().hostname, pid=os.getpid(), boot_id="old-boot")
    await first.storage.add_run(make_run("orphan", host=dead, queued_at=1.0, created_at=1.0))
    await first.create_run("etl", run_id="alive", queued=True)
    assert [run.run_id for run in await first.dequeue_runs(queued(1))] == ["alive"]
    orphan = await first.storage.get_run("orphan")
    assert orphan is not None and orphan.status is RunStatus.FAILURE
    assert orphan.failure_reason is not None
    assert f"The process (pid {os.getpid()}) that created this run exited" in orphan.failure_reason
    kinds = [event.event_type for event in await first.storage.get_events("orphan")]
    assert kinds == ["ENGINE_EVENT", "RUN_FAILURE"]


async def test_a_queued_run_with_a_cancel_request_is_not_started(
    pair: tuple[Instance, Instance],
) -> None:
    first, second = pair
    await first.create_run("etl", run_id="unwanted", queued=True)
    await first.create_run("etl", run_id="wanted", queued=True)
    await second.request_cancel("unwanted")
    assert [run.run_id for run in await first.dequeue_runs(queued(1))] == ["wanted"]
    unwanted = await second.storage.get_run("unwanted")
    assert unwanted is not None and unwanted.status is RunStatus.NOT_STARTED


async def test_nothing_is_dequeued_while_another_process_holds_the_lease(
    pair: tuple[Instance, Instance],
) -> None:
    first, second = pair
    await first.create_run("etl", run_id="q", queued=True)
    assert await second.storage.acquire_lease(RUN_QUEUE_LEASE, "someone", ttl=60, now=time.time())
    assert await first.dequeue_runs(queued(1)) == []
    assert await second.storage.release_lease(RUN_QUEUE_LEASE, "someone")
    assert [run.run_id for run in await first.dequeue_runs(queued(1))] == ["q"]
    assert await first.storage.get_lease(RUN_QUEUE_LEASE) is None  # released after the pass


async def test_concurrent_passes_never_exceed_the_limit(pair: tuple[Instance, Instance]) -> None:
    first, second = pair
    for index in range(30):
        await first.create_run("etl", run_id=f"q{index:02}", tags={"team": "data"}, queued=True)
    config = queued(4, TagConcurrencyLimit(key="team", limit=3))
    started: list[str] = []

    async def passes(instance: Instance) -> None:
        for _ in range(5):
            started.extend(run.run_id for run in await instance.dequeue_runs(config))
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as group:
        for instance in (first, second, first, second):
            group.start_soon(passes, instance)
    assert started == ["q00", "q01", "q02"]


async def test_the_immediate_coordinator_and_the_instance_s_own_config(tmp_path: Path) -> None:
    async with Instance.from_home(tmp_path) as instance:
        for index in range(3):
            await instance.create_run("etl", run_id=f"q{index}", queued=True)
        immediate = RunCoordinatorConfig(immediate=NoOptions())
        assert [run.run_id for run in await instance.dequeue_runs(immediate)] == ["q0", "q1", "q2"]
    (tmp_path / "instance.yaml").write_text(
        "run_coordinator:\n  queued: {max_concurrent_runs: 4}\n"
    )
    async with Instance.from_home(tmp_path) as instance:
        for index in range(3, 6):
            await instance.create_run("etl", run_id=f"q{index}", queued=True)
        assert [run.run_id for run in await instance.dequeue_runs()] == ["q3"]

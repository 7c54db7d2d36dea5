"""The PostgreSQL server restarts under a running storage: nothing lost, nothing stored twice.

These use a server of the session's own (tests/instance/postgres_server.py), since
they stop it: `pg_ctl restart -m fast` ends every connection and rolls back
what is in flight, as a server being upgraded or failed over would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.instance.instance import Instance
from runtime.instance.records import RunStatus
from runtime.instance.storage.event_writer import EventWriter
from runtime.instance.storage.postgres import PostgresRunStorage
from runtime.instance.storage.postgres_kind import PostgresStorageConfig
from runtime.protocol.messages import RUN_END_EVENTS
from tests.instance.storage_helpers import make_event, make_run
from tests.runs.runs_helpers import pipeline_workspace, wait_for_file

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.instance.postgres_server import PrivateServer, Schema

pytestmark = pytest.mark.anyio


@pytest.fixture
def private_schema(private_postgres: PrivateServer) -> Iterator[Schema]:
    with private_postgres.database() as db_name, private_postgres.schema(db_name) as schema:
        yield schema


@pytest.mark.timeout(120)
async def test_events_appended_across_a_restart_are_all_stored_once_in_order(
    private_postgres: PrivateServer, private_schema: Schema
) -> None:
    # A short reconnect window: the storage gives up while the server is down and
    # the event writer must keep the batch and try it again, in order.
    config = PostgresStorageConfig(postgres_url=private_schema.url(), reconnect_timeout=0.2)
    total = 400
    async with PostgresRunStorage(config) as storage:
        await storage.add_run(make_run("r1"))
        async with EventWriter(storage) as writer:
            with anyio.fail_after(90):
                async with anyio.create_task_group() as group:

                    async def restart() -> None:
                        await anyio.to_thread.run_sync(private_postgres.restart)

                    for sequence in range(1, total + 1):
                        writer.append(make_event("r1", sequence))
                        if sequence == total // 4:
                            await writer.flush("r1")
                            group.start_soon(restart)
                        if sequence % 10 == 0:
                            await anyio.sleep(0.01)
                await writer.flush("r1")  # raises if any event of r1 was given up
        stored = await storage.get_events("r1")
        assert [event.sequence for event in stored] == list(range(1, total + 1))
        notifications = storage.notifications
        assert notifications is not None
        with anyio.fail_after(30):  # the LISTEN connection comes back too, at its own pace
            while notifications.reconnects == 0:
                await anyio.sleep(0.05)


@pytest.mark.timeout(120)
async def test_a_run_survives_a_restart_and_ends_with_every_event_stored(
    private_postgres: PrivateServer, private_schema: Schema, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "instance.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {private_schema.url()}\n"
        "    reconnect_timeout: 60\n"
    )
    control = tmp_path / "control"
    control.mkdir()
    with anyio.fail_after(100):
        async with pipeline_workspace(control, instance=Instance.from_home(home)) as ws:
            run = await ws.launch_run(job="blocked")
            await wait_for_file(control / "blocking_started")
            await anyio.to_thread.run_sync(private_postgres.restart)
            (control / "release").write_text("go")
            result = await run.wait()
            assert result.status == "SUCCESS"
            events = await ws.instance.storage.get_events(run.run_id)
            assert [event.sequence for event in events] == list(range(1, len(events) + 1))
            assert [event.event_type for event in events if event.event_type in RUN_END_EVENTS] == [
                "RUN_SUCCESS"
            ]
            kinds = [(event.step_key, event.event_type) for event in events]
            assert ("after_block", "STEP_SUCCESS") in kinds
            record = await ws.instance.storage.get_run(run.run_id)
            assert record is not None and record.status is RunStatus.SUCCESS

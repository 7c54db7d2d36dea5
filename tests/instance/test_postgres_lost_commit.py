"""A write whose connection drops exactly at COMMIT: the server committed, the client never heard.

A proxy (tests/instance/postgres_proxy.py) between the storage and a real
server drops the connection after forwarding the COMMIT and before its reply.
The storage must ask the server what became of the transaction: retrying
blindly would store a batch of events twice (refused as a duplicate, so the
run's events would be reported lost) or report a compare-and-set that did
apply as refused.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import quote

import anyio
import pytest

from runtime.instance.records import RunChanges, RunStatus
from runtime.instance.storage.event_writer import EventWriter
from runtime.instance.storage.postgres import PostgresRunStorage
from runtime.instance.storage.postgres_kind import PostgresStorageConfig
from tests.instance.postgres_proxy import DroppingProxy
from tests.instance.storage_helpers import make_event, make_run

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.instance.postgres_server import Schema

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def behind_a_proxy(schema: Schema) -> AsyncIterator[tuple[DroppingProxy, PostgresRunStorage]]:
    params = schema.server.params
    host, port = params.get("host", "127.0.0.1"), int(params.get("port", "5432"))
    user = params.get("user", "postgres")
    async with DroppingProxy(host, port) as proxy:
        options = quote(f"-csearch_path={schema.name}", safe="")
        url = (
            f"postgresql://{user}@127.0.0.1:{proxy.port}/{schema.db_name}?options={options}"
            "&sslmode=disable&gssencmode=disable"
        )
        async with PostgresRunStorage(
            PostgresStorageConfig(postgres_url=url, reconnect_timeout=30)
        ) as storage:
            yield proxy, storage


async def test_a_batch_whose_commit_reply_was_lost_is_stored_once(postgres_schema: Schema) -> None:
    with anyio.fail_after(60):
        async with behind_a_proxy(postgres_schema) as (proxy, storage):
            await storage.add_run(make_run("r1"))
            proxy.arm(b"COMMIT", after_reply=True)
            await storage.store_events([make_event("r1", 1), make_event("r1", 2)])
            assert proxy.dropped == 1
            big = [make_event("r1", sequence) for sequence in range(3, 303)]  # through COPY
            proxy.arm(b"COMMIT", after_reply=True)
            await storage.store_events(big)
            assert proxy.dropped == 2
            stored = await storage.get_events("r1")
            assert [event.sequence for event in stored] == list(range(1, 303))


async def test_a_compare_and_set_whose_commit_reply_was_lost_is_reported_applied(
    postgres_schema: Schema,
) -> None:
    with anyio.fail_after(60):
        async with behind_a_proxy(postgres_schema) as (proxy, storage):
            await storage.add_run(make_run("r1"))
            proxy.arm(b"COMMIT", after_reply=True)
            updated = await storage.update_run(
                "r1",
                RunChanges(status=RunStatus.STARTING, updated_at=2.0),
                expected_statuses={RunStatus.NOT_STARTED},
            )
            assert proxy.dropped == 1
            assert updated is not None and updated.status is RunStatus.STARTING
            proxy.arm(b"COMMIT", after_reply=True)
            assert await storage.add_run_keys("sensor:loc/s", ["a", "b"]) == {"a", "b"}
            assert proxy.dropped == 2


async def test_a_write_dropped_before_commit_is_tried_again(postgres_schema: Schema) -> None:
    with anyio.fail_after(60):
        async with behind_a_proxy(postgres_schema) as (proxy, storage):
            await storage.add_run(make_run("r1"))
            proxy.arm(b"INSERT INTO events", after_reply=False)
            await storage.store_events([make_event("r1", 1)])
            assert proxy.dropped == 1
            proxy.arm(b"COMMIT", after_reply=False)
            assert await storage.acquire_lease("queue", "me", ttl=10, now=1.0)
            assert proxy.dropped == 2
            assert [event.sequence for event in await storage.get_events("r1")] == [1]
            lease = await storage.get_lease("queue")
            assert lease is not None and lease.holder == "me"


async def test_the_event_writer_reports_nothing_lost(postgres_schema: Schema) -> None:
    with anyio.fail_after(60):
        async with behind_a_proxy(postgres_schema) as (proxy, storage):
            await storage.add_run(make_run("r1"))
            async with EventWriter(storage) as writer:
                proxy.arm(b"COMMIT", after_reply=True)
                writer.append_many(make_event("r1", sequence) for sequence in range(1, 51))
                await writer.flush("r1")  # raises if the writer thought the batch failed
            assert proxy.dropped == 1
            stored = await storage.get_events("r1")
            assert [event.sequence for event in stored] == list(range(1, 51))

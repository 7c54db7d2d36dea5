"""PostgreSQL storage beyond the conformance suite, on a real server: opening (one-line errors,
the password hidden, Unix sockets), migrations with several hosts at once, the LISTEN
connection, and connections killed under a stream of writes."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

import anyio
import psycopg
import pytest

from runtime.errors import StorageError
from runtime.instance.records import RunChanges, RunStatus
from runtime.instance.storage.event_writer import EventWriter
from runtime.instance.storage.postgres import PostgresRunStorage
from runtime.instance.storage.postgres_kind import PostgresDbConfig, PostgresStorageConfig
from runtime.instance.storage.postgres_schema import MIGRATIONS, Migration
from tests.instance.storage_helpers import make_event, make_run

if TYPE_CHECKING:
    from tests.instance.postgres_server import Schema, Server

pytestmark = pytest.mark.anyio

LATEST = len(MIGRATIONS)
EXTRA = Migration(
    LATEST + 1,
    "add a priority column to runs",
    ("ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",),
)


def storage_at(url: str, *, reconnect_timeout: float = 30) -> PostgresRunStorage:
    return PostgresRunStorage(
        PostgresStorageConfig(postgres_url=url, reconnect_timeout=reconnect_timeout)
    )


def server_setting(server: Server, name: str) -> str:
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        row = conn.execute(f"SHOW {name}").fetchone()
    assert row is not None
    return str(row[0])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- opening ---------------------------------------------------------------------------


async def test_a_unix_socket_opens_as_a_url_and_as_a_postgres_db_section(
    postgres_server: Server, postgres_schema: Schema
) -> None:
    socket_dir = server_setting(postgres_server, "unix_socket_directories").split(",")[0].strip()
    port = server_setting(postgres_server, "port")
    user = postgres_server.params.get("user", "postgres")
    search_path = f"-csearch_path={postgres_schema.name}"
    by_url = PostgresStorageConfig(
        postgres_url=f"postgresql://{user}@/{postgres_schema.db_name}?host={socket_dir}"
        f"&port={port}&options={search_path.replace('=', '%3D')}"
    )
    by_parts = PostgresStorageConfig(
        postgres_db=PostgresDbConfig(
            username=user,
            hostname=socket_dir,
            port=int(port),
            db_name=postgres_schema.db_name,
            params={"options": search_path},
        )
    )
    async with PostgresRunStorage(by_url) as storage:
        await storage.add_run(make_run("r1"))
        assert f"host={socket_dir}" in storage.describe()
        assert storage.schema == postgres_schema.name
    async with PostgresRunStorage(by_parts) as storage:
        assert await storage.get_run("r1") is not None
        assert storage.describe() == (
            f"PostgreSQL database at postgresql://{user}@/{postgres_schema.db_name}"
            f"?host={socket_dir}&port={port}"
        )


@pytest.mark.parametrize("mistake", ["role", "database", "port", "schema"])
async def test_opening_fails_in_one_line_naming_the_url_without_its_password(
    postgres_server: Server, postgres_schema: Schema, mistake: str
) -> None:
    params = postgres_server.params
    host, port = params.get("host", "127.0.0.1"), int(params.get("port", "5432"))
    user, db_name, options = params.get("user", "postgres"), postgres_schema.db_name, ""
    expected = ""
    if mistake == "role":
        user, expected = "no_such_role", 'role "no_such_role" does not exist'
    elif mistake == "database":
        db_name, expected = "no_such_database", 'database "no_such_database" does not exist'
    elif mistake == "port":
        host, port, expected = "127.0.0.1", closed_port(), "Connection refused"
    else:
        options, expected = "-csearch_path=no_such_schema", "none of its search_path"
    config = PostgresStorageConfig(
        postgres_db=PostgresDbConfig(
            username=user,
            password="s3cret",
            hostname=host,
            port=port,
            db_name=db_name,
            params={"options": options} if options else {},
        ),
        reconnect_timeout=0,
    )
    storage = PostgresRunStorage(config)
    with pytest.raises(StorageError) as caught:
        await storage.open()
    message = str(caught.value)
    assert "\n" not in message and "s3cret" not in message
    assert f"{user}:***@" in message
    assert expected in message
    with pytest.raises(StorageError, match="closed"):
        await storage.get_run("r1")


# --- migrations ------------------------------------------------------------------------------


async def test_hosts_opening_a_new_schema_at_once_migrate_it_once(postgres_url: str) -> None:
    applied: list[list[int]] = []
    versions: list[int] = []
    all_open = anyio.Event()

    async def open_one(count: int) -> None:
        async with storage_at(postgres_url) as storage:
            applied.append(storage.applied_migrations)
            versions.append(storage.schema_version)
            if len(applied) == count:
                all_open.set()
            await all_open.wait()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for _ in range(6):
                group.start_soon(open_one, 6)
    assert versions == [LATEST] * 6
    assert sorted(applied) == [[]] * 5 + [list(range(1, LATEST + 1))]
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [version for (version,) in rows] == list(range(1, LATEST + 1))


async def test_an_appended_migration_applies_and_a_newer_schema_is_refused(
    postgres_url: str,
) -> None:
    async with storage_at(postgres_url) as storage:
        await storage.add_run(make_run("r1"))
    newer = PostgresRunStorage(
        PostgresStorageConfig(postgres_url=postgres_url), migrations=(*MIGRATIONS, EXTRA)
    )
    async with newer:
        assert newer.applied_migrations == [LATEST + 1]
        assert newer.schema_version == LATEST + 1
        assert await newer.get_run("r1") is not None  # existing rows survive
    with pytest.raises(
        StorageError,
        match=rf"has schema version {LATEST + 1}, but this version of runtime knows only up to "
        rf"{LATEST}; upgrade runtime to open it\.",
    ):
        await storage_at(postgres_url).open()


async def test_a_failed_migration_rolls_back_and_keeps_the_earlier_ones(postgres_url: str) -> None:
    broken = Migration(LATEST + 1, "half-broken", ("CREATE TABLE half (x INTEGER)", "NOT SQL"))
    storage = PostgresRunStorage(
        PostgresStorageConfig(postgres_url=postgres_url), migrations=(*MIGRATIONS, broken)
    )
    with pytest.raises(
        StorageError, match=rf"Migration {LATEST + 1} \(half-broken\) of .* failed: syntax error"
    ):
        await storage.open()
    async with storage_at(postgres_url) as current:
        assert current.schema_version == LATEST
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT to_regclass('half')").fetchone()
    assert row == (None,)


# --- following and lost connections ------------------------------------------------------------


async def test_a_follower_wakes_when_its_listen_connection_was_killed_meanwhile(
    postgres_server: Server, postgres_schema: Schema
) -> None:
    follower_app = f"follower_{postgres_schema.name}"
    follower = storage_at(postgres_schema.url(application_name=follower_app))
    writer = storage_at(postgres_schema.url(application_name=f"writer_{postgres_schema.name}"))
    async with follower, writer:
        await writer.store_events([make_event("r1", 1)])
        notifications = follower.notifications
        assert notifications is not None
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                group.start_soon(follower.wait_for_events, "r1", 1, 600)
                await anyio.sleep(0.05)
                assert await anyio.to_thread.run_sync(postgres_server.terminate, follower_app) >= 1
                while notifications.reconnects == 0:
                    await anyio.sleep(0.02)
                await writer.store_events([make_event("r1", 2)])
            # And the new LISTEN connection hears the next batch.
            async with anyio.create_task_group() as group:
                group.start_soon(follower.wait_for_events, "r1", 2, 600)
                await anyio.sleep(0.05)
                await writer.store_events([make_event("r1", 3)])


async def test_events_written_while_connections_are_killed_are_stored_once_in_order(
    postgres_server: Server, postgres_schema: Schema
) -> None:
    app = f"churn_{postgres_schema.name}"
    storage = storage_at(postgres_schema.url(application_name=app))
    kills: list[int] = []
    total = 600
    async with storage:
        await storage.add_run(make_run("r1"))
        async with EventWriter(storage) as writer:
            with anyio.fail_after(120):
                async with anyio.create_task_group() as group:

                    async def kill_connections() -> None:
                        while True:
                            kills.append(
                                await anyio.to_thread.run_sync(postgres_server.terminate, app)
                            )
                            await anyio.sleep(0.03)

                    group.start_soon(kill_connections)
                    for sequence in range(1, total + 1):
                        writer.append(make_event("r1", sequence))
                        if sequence % 25 == 0:
                            await anyio.sleep(0.01)  # let a batch go out
                        if sequence == total // 2:
                            changes = RunChanges(status=RunStatus.STARTING)
                            started = await storage.update_run(
                                "r1", changes, expected_statuses={RunStatus.NOT_STARTED}
                            )
                            assert started is not None and started.status is RunStatus.STARTING
                    await writer.flush("r1")
                    group.cancel_scope.cancel()
        assert sum(kills) > 0, "no connection was ever killed: the test proved nothing"
        stored = await storage.get_events("r1")
        assert [event.sequence for event in stored] == list(range(1, total + 1))
        assert writer.batches_written > 1


async def test_the_loop_keeps_ticking_while_50k_events_are_written_and_read(
    postgres_url: str,
) -> None:
    gaps: list[float] = []
    done = anyio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await anyio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async with storage_at(postgres_url) as storage, EventWriter(storage) as writer:
        async with anyio.create_task_group() as group:
            group.start_soon(ticker)
            started = time.perf_counter()
            for run in range(10):
                for sequence in range(1, 5001):
                    writer.append(make_event(f"r{run}", sequence))
                    if sequence % 500 == 0:
                        await anyio.lowlevel.checkpoint()  # a producer yields now and then
            await writer.flush()
            read = [len(await storage.get_events(f"r{run}")) for run in range(10)]
            elapsed = time.perf_counter() - started
            done.set()
    assert read == [5000] * 10
    # Encoding, COPY and decoding took many ticker periods, and the ticker never
    # stalled on them: every gap is far below the total time.
    assert elapsed > 0.05
    assert len(gaps) > 10
    assert max(gaps) < max(0.1, elapsed / 4), (max(gaps), elapsed)


async def test_a_batch_large_enough_for_copy_round_trips_exactly(postgres_url: str) -> None:
    events = [
        make_event(run, sequence, step_key=None if sequence % 3 else f"stép_{sequence % 7}")
        for run in ("r1", "rün-2")
        for sequence in range(1, 151)
    ]
    async with storage_at(postgres_url) as storage:
        await storage.store_events(events)  # 300 events: through binary COPY
        assert await storage.get_events("r1") == events[:150]
        assert await storage.get_events("rün-2") == events[150:]
        assert await storage.last_sequence("rün-2") == 150
        with pytest.raises(StorageError, match=r"run r1 has sequence 150, which is already stored"):
            await storage.store_events([make_event("r1", 151), *events[149:150], *events[:120]])
        assert await storage.last_sequence("r1") == 150

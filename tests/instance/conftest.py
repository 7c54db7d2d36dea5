"""Fixtures of the instance tests: every registered storage backend, opened on a fresh database,
and the PostgreSQL server the postgres backend runs on.

The conformance suite (test_storage_conformance.py) runs once per entry of
BACKENDS. Adding a backend to it is one entry: its registered kind name and a
function giving the options of a fresh, empty database for one test (return
None to skip, e.g. when no server is configured); it may take fixtures from
`request`, whose teardown then removes that database.

PostgreSQL: the machine's server at 127.0.0.1:5432, else one the session starts
from PostgreSQL's binaries (tests/instance/postgres_server.py). Without either
the postgres tests fail when CI=true and are skipped elsewhere, saying how to
get a server. RUNTIME_TEST_POSTGRES=private makes every test use a server of
the session's own even where the machine has one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from runtime.instance.storage.postgres_kind import PostgresStorageConfig
from runtime.instance.storage.registry import StorageRegistry
from runtime.instance.storage.sqlite_kind import SqliteStorageConfig
from tests.instance.postgres_server import (
    HOW_TO_GET_ONE,
    PrivateServer,
    Schema,
    Server,
    server_binaries,
    shared_server,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from pathlib import Path

    from runtime.instance.storage.base import RunStorage
    from runtime.instance.storage.registry import StorageKind


def _postgres_options(request: pytest.FixtureRequest, tmp: Path) -> PostgresStorageConfig:
    url: str = request.getfixturevalue("postgres_url")
    return PostgresStorageConfig(postgres_url=url, reconnect_timeout=30)


# name -> options of a fresh database for one test (None: skip).
BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Any | None]] = {
    "sqlite": lambda request, tmp: SqliteStorageConfig(base_dir=str(tmp / "db")),
    "postgres": _postgres_options,
}


def no_server(reason: str) -> NoReturn:
    """Fail under CI (the tests must run there), skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true, so this fails instead of skipping)")
    pytest.skip(reason)


def _private_server() -> PrivateServer:
    bin_dir = server_binaries()
    if bin_dir is None:
        no_server(HOW_TO_GET_ONE)
    return PrivateServer(bin_dir)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    """The PostgreSQL server of the session: the machine's, else one started for it."""
    server = None if os.environ.get("RUNTIME_TEST_POSTGRES") == "private" else shared_server()
    if server is not None:
        yield server
        return
    private = _private_server()
    try:
        yield private
    finally:
        private.stop()


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivateServer]:
    """A server of the session's own, which tests may stop and restart."""
    private = _private_server()
    try:
        yield private
    finally:
        private.stop()


@pytest.fixture(scope="session")
def postgres_db(postgres_server: Server) -> Iterator[str]:
    """One database for the session's postgres tests, dropped at its end."""
    with postgres_server.database() as name:
        yield name


@pytest.fixture
def postgres_schema(postgres_server: Server, postgres_db: str) -> Iterator[Schema]:
    """A fresh schema for one test, dropped after it."""
    with postgres_server.schema(postgres_db) as schema:
        yield schema


@pytest.fixture
def postgres_url(postgres_schema: Schema) -> str:
    """The URL of the test's schema (search_path set in the URL)."""
    return postgres_schema.url()


class StorageBackend:
    """One registered backend on one fresh database; `storage()` is a new storage object on
    it each time, as another process would open it."""

    def __init__(self, kind: StorageKind[Any], home: Path, options: Any) -> None:
        self.kind = kind
        self.home = home
        self.options = options

    @property
    def name(self) -> str:
        return self.kind.name

    def storage(self) -> RunStorage:
        """A new, unopened storage object on the backend's database."""
        return self.kind.open(self.home, self.options)


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> StorageBackend:
    name: str = request.param
    kind = StorageRegistry().get(name)
    assert kind is not None, f"{name} is in BACKENDS but not registered"
    options = BACKENDS[name](request, tmp_path)
    if options is None:
        pytest.skip(f"the {name} backend is not configured on this machine")
    return StorageBackend(kind, tmp_path, options)


@pytest.fixture
async def storage(backend: StorageBackend) -> AsyncIterator[RunStorage]:
    async with backend.storage() as storage:
        yield storage


@pytest.fixture
async def other_storage(backend: StorageBackend, storage: RunStorage) -> AsyncIterator[RunStorage]:
    """A second storage object on the same database as `storage` (opened after it)."""
    async with backend.storage() as other:
        yield other

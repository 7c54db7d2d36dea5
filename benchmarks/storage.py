"""Which instance storage the storage-bound scenarios (events, launch) measure: `--storage`.

`sqlite` (the default) puts each database in the scratch folder. `postgres`
creates a scratch database on the server of `--postgres-url` (default: the
local server at 127.0.0.1:5432, as user postgres), a fresh schema in it for
each measurement, and drops the database at the end.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from benchmarks.settings import Settings

STORAGES = ("sqlite", "postgres")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TITLES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


@contextlib.contextmanager
def fresh_storages(settings: Settings, name: str) -> Iterator[Callable[[], tuple[str, Any]]]:
    """A function giving (storage kind, options) of a new, empty database on each call."""
    counter = iter(range(1_000_000))
    if settings.storage == "sqlite":
        from runtime.instance.storage.sqlite_kind import SqliteStorageConfig

        def sqlite() -> tuple[str, Any]:
            folder = settings.workdir / f"{name}_db{next(counter)}"
            return "sqlite", SqliteStorageConfig(base_dir=str(folder))

        yield sqlite
        return

    import psycopg

    from runtime.instance.storage.postgres_kind import PostgresStorageConfig

    admin = settings.postgres_url
    database = f"runtime_bench_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}" TEMPLATE template0'.encode())
    except psycopg.Error as exc:
        raise RuntimeError(
            f"cannot make a scratch database with --postgres-url {admin}: {exc}"
        ) from exc
    base, _, query = admin.partition("?")
    url = base.rsplit("/", 1)[0] + f"/{database}" + (f"?{query}" if query else "")
    try:

        def postgres() -> tuple[str, Any]:
            schema = f"{name}_{next(counter)}"
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"'.encode())
            options = quote(f"-csearch_path={schema}", safe="")
            separator = "&" if "?" in url else "?"
            return "postgres", PostgresStorageConfig(
                postgres_url=f"{url}{separator}options={options}"
            )

        yield postgres
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'.encode())


def open_storage(kind: str, options: Any) -> Any:
    """The (unopened) RunStorage of that kind and options, built through the registry."""
    from pathlib import Path

    from runtime.instance.storage.registry import StorageRegistry

    storage_kind = StorageRegistry().get(kind)
    assert storage_kind is not None
    return storage_kind.open(Path("."), options)

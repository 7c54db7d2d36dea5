"""Fixtures of the instance tests: every registered storage backend, opened on a fresh database.

The conformance suite (test_storage_conformance.py) runs once per entry of
BACKENDS. Adding a backend to it is one entry: its registered kind name and a
function giving the options of a fresh, empty database for one test (return
None to skip, e.g. when no server is configured).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from runtime.instance.storage.registry import StorageRegistry
from runtime.instance.storage.sqlite_kind import SqliteStorageConfig

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from runtime.instance.storage.base import RunStorage
    from runtime.instance.storage.registry import StorageKind

# name -> options of a fresh database under the test's temporary directory (None: skip).
BACKENDS: dict[str, Callable[[Path], Any | None]] = {
    "sqlite": lambda tmp: SqliteStorageConfig(base_dir=str(tmp / "db")),
}


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
    options = BACKENDS[name](tmp_path)
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

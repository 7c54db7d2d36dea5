"""SQLite as an instance storage: its options in instance.yaml and how to build it.

```yaml
storage:
  sqlite: {base_dir: history}    # the folder of runtime.db, relative to RUNTIME_HOME
```
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec

from runtime.instance.storage.registry import StorageKind

if TYPE_CHECKING:
    from runtime.instance.storage.base import RunStorage

# Where SQLite keeps its database, relative to RUNTIME_HOME, unless base_dir says otherwise.
DEFAULT_SQLITE_DIR = "history"


class SqliteStorageConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """SQLite storage; `base_dir` holds runtime.db (relative to RUNTIME_HOME; `~` expands)."""

    base_dir: Annotated[str, msgspec.Meta(min_length=1)] | None = None


def database_dir(home: Path, config: SqliteStorageConfig) -> Path:
    """The folder of runtime.db: `base_dir` (absolute, or relative to `home`), else home/history."""
    base_dir = Path(config.base_dir).expanduser() if config.base_dir else Path(DEFAULT_SQLITE_DIR)
    return home / base_dir  # an absolute base_dir wins over home


def open_sqlite_storage(home: Path, config: SqliteStorageConfig) -> RunStorage:
    """The SQLite storage of an instance at `home` (not opened yet)."""
    from runtime.instance.storage.sqlite import SqliteRunStorage

    return SqliteRunStorage(database_dir(home, config))


STORAGE_KIND = StorageKind(
    name="sqlite", title="SQLite", config_type=SqliteStorageConfig, open=open_sqlite_storage
)

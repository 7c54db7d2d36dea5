"""instance.yaml: which storage, run coordinator, run launcher and executor defaults an instance uses.

```yaml
storage:
  sqlite: {base_dir: history}          # or postgres: {...} (not available yet)
run_coordinator:
  queued: {max_concurrent_runs: 5, tag_concurrency_limits: [{key: team, value: data, limit: 2}]}
run_launcher:
  in_process: {}                       # or run_worker: {}
executor:
  max_concurrent: 8
  pools: {db: 2}
  kind: in_process                     # or multiprocess
```

Every section is optional; a missing file means all defaults. Each of
storage, run_coordinator and run_launcher chooses exactly one option. Relative
paths are relative to the file's folder (RUNTIME_HOME). Errors name the file,
line, column and key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from runtime.errors import InstanceConfigError

INSTANCE_FILE_NAME = "instance.yaml"

# Where SQLite keeps its database, relative to RUNTIME_HOME, unless base_dir says otherwise.
DEFAULT_SQLITE_DIR = "history"


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class NoOptions(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An option that takes no settings (`immediate: {}`, `in_process: {}`)."""


class SqliteStorageConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """SQLite storage; `base_dir` holds runtime.db (absolute once loaded)."""

    base_dir: Annotated[str, msgspec.Meta(min_length=1)] | None = None


class StorageConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Exactly one of `sqlite` and `postgres` is set once loaded."""

    sqlite: SqliteStorageConfig | None = None
    postgres: dict[str, Any] | None = None

    @property
    def kind(self) -> Literal["sqlite", "postgres"]:
        """The chosen storage."""
        return "postgres" if self.postgres is not None else "sqlite"


class TagConcurrencyLimit(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """At most `limit` runs at once carrying tag `key` (with `value`, when given)."""

    key: Annotated[str, msgspec.Meta(min_length=1)]
    value: str | None = None
    limit: Annotated[int, msgspec.Meta(ge=0)]


class QueuedRunCoordinatorConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Runs wait in a queue and start under these limits."""

    max_concurrent_runs: Annotated[int, msgspec.Meta(ge=1)] = 10
    tag_concurrency_limits: list[TagConcurrencyLimit] = []


class RunCoordinatorConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Exactly one of `immediate` and `queued` is set once loaded."""

    immediate: NoOptions | None = None
    queued: QueuedRunCoordinatorConfig | None = None

    @property
    def kind(self) -> Literal["immediate", "queued"]:
        """The chosen coordinator."""
        return "queued" if self.queued is not None else "immediate"


class RunLauncherConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Exactly one of `in_process` (the location's process) and `run_worker` (a fresh
    subprocess per run) is set once loaded."""

    in_process: NoOptions | None = None
    run_worker: NoOptions | None = None

    @property
    def kind(self) -> Literal["in_process", "run_worker"]:
        """The chosen launch mode."""
        return "run_worker" if self.run_worker is not None else "in_process"


class ExecutorConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Step execution defaults: `max_concurrent` steps at once (0: the executor's own
    default), per-pool limits, and where sync steps run."""

    max_concurrent: Annotated[int, msgspec.Meta(ge=0)] = 0
    pools: dict[str, Annotated[int, msgspec.Meta(ge=1)]] = {}
    kind: Literal["in_process", "multiprocess"] = "in_process"


class InstanceConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole of instance.yaml, with every choice made and defaults filled in."""

    storage: StorageConfig = StorageConfig(sqlite=SqliteStorageConfig())
    run_coordinator: RunCoordinatorConfig = RunCoordinatorConfig(immediate=NoOptions())
    run_launcher: RunLauncherConfig = RunLauncherConfig(in_process=NoOptions())
    executor: ExecutorConfig = ExecutorConfig()


def default_config(home: Path) -> InstanceConfig:
    """The configuration of an instance without instance.yaml."""
    return InstanceConfig(
        storage=StorageConfig(sqlite=SqliteStorageConfig(base_dir=str(home / DEFAULT_SQLITE_DIR)))
    )


def load_instance_config(home: Path) -> InstanceConfig:
    """Read `home/instance.yaml` (all defaults when it does not exist).

    Raises InstanceConfigError naming the file, line, column and key of what is
    wrong, including a choice of PostgreSQL storage, which is not available yet.
    """
    from runtime.config_file import read_yaml_document

    path = home / INSTANCE_FILE_NAME
    if not path.exists():
        return default_config(home)
    document = read_yaml_document(path, error=InstanceConfigError)
    if document.data is None:
        return default_config(home)
    config = document.convert(InstanceConfig, error=InstanceConfigError)
    raw: dict[str, Any] = document.data

    def choice(section: str, options: tuple[str, ...]) -> str | None:
        value = raw.get(section)
        if value is None:
            return None
        chosen = [key for key in options if key in value]
        if len(chosen) != 1:
            listed = " or ".join(f"`{option}`" for option in options)
            problem = "chooses none" if not chosen else "chooses more than one"
            raise document.error(
                InstanceConfigError,
                (section,),
                f"`$.{section}` {problem} of {listed}; it must name exactly one.",
                key=True,
            )
        return chosen[0]

    storage = choice("storage", ("sqlite", "postgres"))
    if storage == "postgres":
        raise document.error(
            InstanceConfigError,
            ("storage", "postgres"),
            "PostgreSQL storage (`$.storage.postgres`) is not available yet; "
            "use `sqlite` (the default) for now.",
            key=True,
        )
    base_dir = Path(
        config.storage.sqlite.base_dir
        if config.storage.sqlite is not None and config.storage.sqlite.base_dir is not None
        else DEFAULT_SQLITE_DIR
    )
    coordinator = choice("run_coordinator", ("immediate", "queued"))
    launcher = choice("run_launcher", ("in_process", "run_worker"))
    return msgspec.structs.replace(
        config,
        storage=StorageConfig(
            sqlite=SqliteStorageConfig(base_dir=str((home / base_dir.expanduser()).resolve()))
        ),
        run_coordinator=RunCoordinatorConfig(
            queued=config.run_coordinator.queued or QueuedRunCoordinatorConfig()
        )
        if coordinator == "queued"
        else RunCoordinatorConfig(immediate=NoOptions()),
        run_launcher=RunLauncherConfig(run_worker=NoOptions())
        if launcher == "run_worker"
        else RunLauncherConfig(in_process=NoOptions()),
    )

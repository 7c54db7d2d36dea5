"""instance.yaml: which storage, run coordinator, run launcher and executor defaults an instance uses.

```yaml
storage:
  sqlite: {base_dir: history}          # or postgres: {postgres_url: ...} or {postgres_db: {...}}
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
storage, run_coordinator and run_launcher chooses exactly one option. The
storage kinds and their options come from the storage registry
(runtime.instance.storage.registry). Relative paths are relative to the file's
folder (RUNTIME_HOME). Errors name the file, line, column and key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from runtime.errors import InstanceConfigError
from runtime.instance.storage.registry import DEFAULT_STORAGE, StorageRegistry
from runtime.instance.storage.sqlite_kind import DEFAULT_SQLITE_DIR, SqliteStorageConfig

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.config_file import YamlDocument

__all__ = [
    "DEFAULT_SQLITE_DIR",
    "INSTANCE_FILE_NAME",
    "ExecutorConfig",
    "InstanceConfig",
    "NoOptions",
    "QueuedRunCoordinatorConfig",
    "RunCoordinatorConfig",
    "RunLauncherConfig",
    "SqliteStorageConfig",
    "StorageConfig",
    "TagConcurrencyLimit",
    "default_config",
    "load_instance_config",
]

INSTANCE_FILE_NAME = "instance.yaml"


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class NoOptions(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An option that takes no settings (`immediate: {}`, `in_process: {}`)."""


class StorageConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The chosen storage: its kind's name and that kind's options (a frozen Struct).

    Built by `load_instance_config`, which validates `options` against the kind
    registered in runtime.instance.storage.registry.
    """

    kind: str = DEFAULT_STORAGE
    options: Any = SqliteStorageConfig()

    @property
    def sqlite(self) -> SqliteStorageConfig | None:
        """The SQLite options when SQLite is the chosen storage, else None."""
        return self.options if isinstance(self.options, SqliteStorageConfig) else None


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


class RunLauncherConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The chosen run launcher: its registered name and its options.

    `in_process` (the location's own code server) and `run_worker` (a fresh
    code server per run) are built in; the names are checked against the
    launcher registry (runtime.runs.launcher) when the first run launches.
    """

    kind: str = "in_process"
    options: dict[str, Any] = {}


class ExecutorConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Step execution defaults: `max_concurrent` steps at once (0: the executor's own
    default), per-pool limits, which executor runs the steps and its options.

    `kind` names an executor registered in the code server (`in_process`,
    `multiprocess`, or one a module registers); its options sit under a key of
    the same name (`executor: {kind: dask, dask: {scheduler_address: ...}}`).
    The code server checks both when a run is launched.
    """

    max_concurrent: Annotated[int, msgspec.Meta(ge=0)] = 0
    pools: dict[str, Annotated[int, msgspec.Meta(ge=1)]] = {}
    kind: str = "in_process"
    options: dict[str, Any] = {}


class _ExecutorFile(msgspec.Struct, frozen=True, kw_only=True):
    """The executor section as written: the known keys, plus one named after `kind`."""

    max_concurrent: Annotated[int, msgspec.Meta(ge=0)] = 0
    pools: dict[str, Annotated[int, msgspec.Meta(ge=1)]] = {}
    kind: str = "in_process"


class InstanceConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole of instance.yaml, with every choice made and defaults filled in."""

    storage: StorageConfig = StorageConfig()
    run_coordinator: RunCoordinatorConfig = RunCoordinatorConfig(immediate=NoOptions())
    run_launcher: RunLauncherConfig = RunLauncherConfig()
    executor: ExecutorConfig = ExecutorConfig()


class _InstanceFile(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """instance.yaml as written; `storage` is validated against the chosen kind's options."""

    storage: dict[str, Any] | None = None
    run_coordinator: RunCoordinatorConfig = RunCoordinatorConfig(immediate=NoOptions())
    run_launcher: dict[str, dict[str, Any] | None] | None = None
    executor: dict[str, Any] | None = None


def default_config() -> InstanceConfig:
    """The configuration of an instance without instance.yaml (SQLite under RUNTIME_HOME/history)."""
    return InstanceConfig()


def load_instance_config(home: Path, *, registry: StorageRegistry | None = None) -> InstanceConfig:
    """Read `home/instance.yaml` (all defaults when it does not exist).

    The storage section is validated against the kind it names in `registry`
    (default: the built-in kinds). Raises InstanceConfigError naming the file,
    line, column and key of what is wrong: an unknown storage (with the known
    ones), a planned one that is not available yet, a bad option.
    """
    from runtime.config_file import read_yaml_document

    path = home / INSTANCE_FILE_NAME
    if not path.is_file():
        return default_config()
    document = read_yaml_document(path, error=InstanceConfigError)
    if document.data is None:
        return default_config()
    file = document.convert(_InstanceFile, error=InstanceConfigError)
    raw: dict[str, Any] = document.data

    def choice(section: str, options: list[str] | tuple[str, ...]) -> str | None:
        value = raw.get(section)
        if value is None:
            return None
        chosen: list[str] = [key for key in value if key in options]
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

    registry = registry or StorageRegistry()
    # The other sections' Structs refused unknown keys already; the storage
    # section's keys are checked against the registry.
    for key in raw.get("storage") or {}:
        if key not in registry.all_names:
            raise document.error(
                InstanceConfigError,
                ("storage", key),
                f"`$.storage` names an unknown storage: {registry.explain_unknown(str(key))}",
                key=True,
            )
    storage = StorageConfig()
    storage_name = choice("storage", registry.all_names)
    if storage_name is not None:
        storage = _storage_config(document, registry, storage_name)
    coordinator = choice("run_coordinator", ("immediate", "queued"))
    launcher = RunLauncherConfig()
    if file.run_launcher is not None:
        names = list(file.run_launcher)
        if len(names) != 1:
            problem = "chooses none" if not names else f"chooses more than one ({', '.join(names)})"
            raise document.error(
                InstanceConfigError,
                ("run_launcher",),
                f"`$.run_launcher` {problem} of the run launchers (`in_process`, `run_worker`, "
                "or one a module registers); it must name exactly one.",
                key=True,
            )
        launcher = RunLauncherConfig(kind=names[0], options=dict(file.run_launcher[names[0]] or {}))
    return InstanceConfig(
        storage=storage,
        run_coordinator=RunCoordinatorConfig(
            queued=file.run_coordinator.queued or QueuedRunCoordinatorConfig()
        )
        if coordinator == "queued"
        else RunCoordinatorConfig(immediate=NoOptions()),
        run_launcher=launcher,
        executor=_executor_config(document, raw.get("executor")),
    )


def _storage_config(document: YamlDocument, registry: StorageRegistry, name: str) -> StorageConfig:
    """Validate `storage: {name: options}` against the registered kind `name`."""
    at = ("storage", name)
    kind = registry.get(name)
    if kind is None:  # known by name only: planned, not written yet
        problem = (
            f"{registry.planned_title(name)} (`$.storage.{name}`) is not available yet; "
            f"use `{DEFAULT_STORAGE}` (the default) for now."
        )
        raise document.error(InstanceConfigError, at, problem, key=True)
    if document.data["storage"][name] is None:  # `sqlite:` with nothing under it
        options = kind.config_type()
    else:
        options = document.convert(kind.config_type, error=InstanceConfigError, at=at)
    return StorageConfig(kind=name, options=options)


_EXECUTOR_KEYS = ("max_concurrent", "pools", "kind")


def _executor_config(document: YamlDocument, raw: Any) -> ExecutorConfig:
    """Validate `executor:`; a key besides the known ones must be the chosen kind's options."""
    if raw is None:
        return ExecutorConfig()
    if not isinstance(raw, dict):
        raise document.error(
            InstanceConfigError, ("executor",), "`$.executor` must be a mapping of settings."
        )
    known = document.convert(_ExecutorFile, error=InstanceConfigError, at=("executor",))
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _EXECUTOR_KEYS:
            continue
        if key != known.kind:
            import difflib

            close = difflib.get_close_matches(str(key), [*_EXECUTOR_KEYS, known.kind], n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            raise document.error(
                InstanceConfigError,
                ("executor", key),
                f"`$.executor.{key}` is not a setting of the executor: the keys are "
                f"{', '.join(f'`{k}`' for k in _EXECUTOR_KEYS)} and `{known.kind}` "
                f"(the options of the chosen kind){hint}",
                key=True,
            )
        if value is not None and not isinstance(value, dict):
            raise document.error(
                InstanceConfigError,
                ("executor", key),
                f"`$.executor.{key}` holds the options of executor `{key}`: it must be a mapping.",
            )
        options = dict(value or {})
    return ExecutorConfig(
        max_concurrent=known.max_concurrent, pools=known.pools, kind=known.kind, options=options
    )

"""instance.yaml: defaults, choices, and errors that name the file, line and key."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

from runtime.errors import InstanceConfigError
from runtime.instance.config import (
    INSTANCE_FILE_NAME,
    QueuedRunCoordinatorConfig,
    SqliteStorageConfig,
    TagConcurrencyLimit,
    load_instance_config,
)
from runtime.instance.storage.registry import StorageRegistry
from runtime.instance.storage.sqlite_kind import database_dir

if TYPE_CHECKING:
    from pathlib import Path


def _write(home: Path, text: str) -> Path:
    path = home / INSTANCE_FILE_NAME
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_no_file_means_defaults(tmp_path: Path) -> None:
    config = load_instance_config(tmp_path)
    assert config.storage.kind == "sqlite"
    assert config.storage.sqlite == SqliteStorageConfig()
    assert database_dir(tmp_path, config.storage.sqlite) == tmp_path / "history"
    assert config.run_coordinator.kind == "immediate"
    assert config.run_launcher.kind == "in_process"
    assert config.executor.kind == "in_process"
    assert config.executor.max_concurrent == 0


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    _write(tmp_path, "# nothing configured\n")
    assert load_instance_config(tmp_path).run_coordinator.kind == "immediate"


def test_every_section(tmp_path: Path) -> None:
    _write(
        tmp_path,
        """
        storage:
          sqlite:
            base_dir: data/db
        run_coordinator:
          queued:
            max_concurrent_runs: 3
            tag_concurrency_limits:
              - {key: team, value: data, limit: 1}
              - {key: heavy, limit: 2}
        run_launcher:
          run_worker: {}
        executor:
          max_concurrent: 8
          pools: {db: 2, api: 4}
          kind: multiprocess
        """,
    )
    config = load_instance_config(tmp_path)
    assert config.storage.sqlite == SqliteStorageConfig(base_dir="data/db")
    assert database_dir(tmp_path, config.storage.sqlite) == tmp_path / "data" / "db"
    assert config.run_coordinator.queued == QueuedRunCoordinatorConfig(
        max_concurrent_runs=3,
        tag_concurrency_limits=[
            TagConcurrencyLimit(key="team", value="data", limit=1),
            TagConcurrencyLimit(key="heavy", limit=2),
        ],
    )
    assert config.run_launcher.kind == "run_worker"
    assert config.executor.pools == {"db": 2, "api": 4}
    assert config.executor.kind == "multiprocess"


def test_options_may_be_left_empty(tmp_path: Path) -> None:
    _write(tmp_path, "run_coordinator:\n  queued:\nrun_launcher:\n  in_process:\n")
    config = load_instance_config(tmp_path)
    assert config.run_coordinator.queued == QueuedRunCoordinatorConfig()
    assert config.run_launcher.kind == "in_process"


def test_a_planned_storage_is_not_available_yet(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        executor:
          max_concurrent: 2
        storage:
          mongo:
            url: mongodb://localhost/runtime
        """,
    )
    with pytest.raises(InstanceConfigError) as caught:
        load_instance_config(
            tmp_path, registry=StorageRegistry(planned={"mongo": "MongoDB storage"})
        )
    message = str(caught.value)
    assert message.startswith(f"{path}, line 4,")
    assert "not available yet" in message and "$.storage.mongo" in message


def test_an_unknown_storage_names_the_line_and_suggests(tmp_path: Path) -> None:
    path = _write(tmp_path, "executor: {}\nstorage:\n  sqlte: {}\n")
    with pytest.raises(InstanceConfigError) as caught:
        load_instance_config(tmp_path)
    assert str(caught.value) == (
        f"{path}, line 3, column 3: `$.storage` names an unknown storage: there is no storage "
        "`sqlte`; did you mean `sqlite`? the known storages are `postgres`, `sqlite`."
    )


def test_storage_options_are_validated_against_the_kind(tmp_path: Path) -> None:
    path = _write(tmp_path, "storage:\n  sqlite:\n    base_directory: x\n")
    with pytest.raises(InstanceConfigError) as caught:
        load_instance_config(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}, line 3,")
    assert "`$.storage.sqlite`" in message and "did you mean `base_dir`?" in message
    _write(tmp_path, "storage:\n  sqlite:\n    base_dir: 3\n")
    with pytest.raises(InstanceConfigError, match=r"line 3, .*\$\.storage\.sqlite\.base_dir"):
        load_instance_config(tmp_path)
    _write(tmp_path, "storage:\n  sqlite:\n")
    assert load_instance_config(tmp_path).storage.sqlite == SqliteStorageConfig()


def test_storage_that_is_not_a_mapping(tmp_path: Path) -> None:
    _write(tmp_path, "storage: [sqlite]\n")
    with pytest.raises(InstanceConfigError, match=r"line 1, .*`\$\.storage`: expected a mapping"):
        load_instance_config(tmp_path)
    _write(tmp_path, "storage: {}\n")
    with pytest.raises(InstanceConfigError, match="chooses none of `postgres` or `sqlite`"):
        load_instance_config(tmp_path)
    _write(tmp_path, "storage: {sqlite: {}, postgres: {}}\n")
    with pytest.raises(InstanceConfigError, match="`\\$.storage` chooses more than one"):
        load_instance_config(tmp_path)


def test_two_choices_is_an_error_naming_the_section(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        run_coordinator:
          immediate: {}
          queued: {max_concurrent_runs: 2}
        """,
    )
    with pytest.raises(
        InstanceConfigError,
        match=rf"^{path}, line 1, .*`\$\.run_coordinator` chooses more than one of `immediate` or `queued`",
    ):
        load_instance_config(tmp_path)


def test_no_choice_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "run_launcher: {}\n")
    with pytest.raises(
        InstanceConfigError, match=r"`\$\.run_launcher` chooses none of the run launchers"
    ):
        load_instance_config(tmp_path)


def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        run_coordinator:
          queued:
            max_concurent_runs: 3
        """,
    )
    with pytest.raises(InstanceConfigError) as caught:
        load_instance_config(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}, line 3,")
    assert "max_concurent_runs" in message and "did you mean `max_concurrent_runs`" in message


def test_bad_value_names_line_and_path(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        executor:
          pools:
            db: 0
        """,
    )
    with pytest.raises(InstanceConfigError) as caught:
        load_instance_config(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}, line 3,")
    assert "$.executor.pools" in message


def test_executor_options_sit_under_the_kinds_name(tmp_path: Path) -> None:
    _write(tmp_path, "executor:\n  kind: dask\n  dask:\n    scheduler_address: tcp://h:8786\n")
    config = load_instance_config(tmp_path)
    assert config.executor.kind == "dask"
    assert config.executor.options == {"scheduler_address": "tcp://h:8786"}


def test_an_executor_key_of_another_kind_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "executor:\n  kind: dask\n  pool:\n    db: 1\n")
    with pytest.raises(
        InstanceConfigError,
        match=r"line 3, .*`\$\.executor\.pool` is not a setting.*did you mean `pools`",
    ):
        load_instance_config(tmp_path)


def test_invalid_yaml(tmp_path: Path) -> None:
    _write(tmp_path, "storage: [unclosed\n")
    with pytest.raises(InstanceConfigError, match="not valid YAML"):
        load_instance_config(tmp_path)
